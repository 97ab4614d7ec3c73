// `tinyzero-train bench [PHASE...]`: how close each phase of an RL step runs to the machine's limit.
//
// One run on one machine measures the fp32 and bf16 matmul peak, then (each selectable as a phase):
//   decode   rollout generation tokens/s at several batch sizes (prompt 64, 128 new tokens, sampling)
//   logprob  the no-grad log-prob pass (B x T), as for old / reference log-probs
//   train    forward + backward + grad clip + AdamW on B x T tokens (the actor update)
//   rl       one full GRPO step of the Trainer, its time split by phase (timing_s/*)
// Each model phase is reported as model FLOPs utilisation (MFU): its matmul FLOPs per second over the
// measured matmul peak of its precision (fp32 peak for fp32, bf16 peak for bf16 autocast); training
// counts 3x the forward FLOPs. A table on stdout; --json writes every figure for tracking.
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "cli/registry.h"
#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/model/generator.h"
#include "tinyzero/model/logprobs.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/tokenizer/bpe_trainer.h"
#include "tinyzero/trainer/optimizer.h"
#include "tinyzero/trainer/trainer.h"

namespace tinyzero::cli {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
namespace fs = std::filesystem;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void sync(const at::Device& d) {
  if (d.is_cuda()) at::zeros({1}, at::TensorOptions().device(d)).item<float>();  // waits for queued work
}

// The 1-minute load average (how busy the machine was), -1 where /proc/loadavg is missing.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double v = -1;
  if (!(in >> v)) return -1;
  return v;
}

// Best-of-reps time of fn() after one untimed call.
template <typename Fn>
double best_time(int64_t reps, const at::Device& device, Fn fn) {
  fn();
  sync(device);
  double best = 1e30;
  for (int64_t i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    fn();
    sync(device);
    best = std::min(best, seconds_since(t0));
  }
  return best;
}

// Best GFLOP/s of square matmuls of the sizes given (the machine's reachable peak for `dtype`).
double matmul_gflops(at::ScalarType dtype, const at::Device& device, const std::vector<int64_t>& sizes,
                     int64_t reps) {
  double best = 0;
  for (int64_t n : sizes) {
    auto opts = at::TensorOptions().dtype(dtype).device(device);
    at::Tensor a = at::randn({n, n}, opts), b = at::randn({n, n}, opts), c = at::empty({n, n}, opts);
    double s = best_time(reps, device, [&] { at::mm_out(c, a, b); });
    best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

// The device's memory bandwidth as a large copy achieves it: bytes read plus bytes written per second.
double copy_gbps(const at::Device& device) {
  const int64_t n = device.is_cuda() ? (int64_t{1} << 28) : (int64_t{1} << 25);  // 1 GiB / 128 MiB of fp32
  at::Tensor src = at::ones({n}, at::TensorOptions().dtype(at::kFloat).device(device)),
             dst = at::empty_like(src);
  const double s = best_time(5, device, [&] { dst.copy_(src); });
  return 2.0 * static_cast<double>(n) * 4 / s / 1e9;
}

// Matmul FLOPs of the model (attention scores and values included; elementwise work not counted).
struct FlopModel {
  double linear = 0;          // per token, all layers: q/k/v/o and the MLP
  double per_key = 0;         // per (query, key) pair, all layers: q.k and p.v
  double head = 0;            // per token whose logits are computed
  double cached_per_key = 0;  // KV-cache elements per cached token, all layers
  explicit FlopModel(const TransformerConfig& c) {
    double h = c.hidden_size, q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
    linear = 2.0 * c.num_hidden_layers * (h * q + 2 * h * kv + q * h + 3 * h * c.intermediate_size);
    per_key = 4.0 * c.num_hidden_layers * q;
    head = 2.0 * h * c.vocab_size;
    cached_per_key = 2.0 * c.num_hidden_layers * kv;
  }
  // The least a decode step over `rows` rows attending to `keys` cached tokens each must read from
  // memory: every matmul weight once and the rows' cached keys and values.
  double decode_step_bytes(double rows, double keys, double weight_bytes, double cache_bytes) const {
    return (linear + head) / 2 * weight_bytes + rows * keys * cached_per_key * cache_bytes;
  }
  // n tokens at positions start .. start + n - 1, each attending to itself and everything before it.
  double span(double start, double n, double head_tokens) const {
    return n * linear + per_key * (n * start + n * (n + 1) / 2) + head_tokens * head;
  }
};

// The comma-separated items of an option's value.
std::vector<std::string> comma_items(const std::string& s) {
  std::vector<std::string> items;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) items.push_back(item);
  return items;
}

std::vector<int64_t> parse_list(const std::string& s, const std::string& option) {
  std::vector<int64_t> out;
  for (const std::string& item : comma_items(s)) {
    try {
      size_t used = 0;
      int64_t v = std::stoll(item, &used);
      if (used != item.size() || v <= 0) throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception&) {
      throw UsageError(option + " \"" + s +
                       "\": expected positive integers separated by commas, e.g. 16,64,256");
    }
  }
  if (out.empty()) throw UsageError(option + " is empty: give e.g. 16,64,256");
  return out;
}

// "on", "off" or a comma-separated list of them.
std::vector<bool> parse_switches(const std::string& s, const std::string& option) {
  std::vector<bool> out;
  for (const std::string& item : comma_items(s))
    if (item == "on" || item == "off")
      out.push_back(item == "on");
    else
      throw UsageError(option + " \"" + s + "\": expected on, off or on,off");
  if (out.empty()) throw UsageError(option + " is empty: give on, off or on,off");
  return out;
}

struct BenchArgs {
  std::vector<std::string> phases;
  std::string model, model_config, batches = "16,64,256", device = "cpu", dtype = "float32";
  std::string precisions, json_path, matmul_sizes;  // precisions "" = fp32 (train: fp32,bf16)
  std::string row_workers;                          // decode: "" = generate's default (auto)
  std::string graphs = "on";                        // decode: CUDA graphs on, off or on,off
  int64_t prompt_len = 64, new_tokens = 128, threads = 0, reps = 1, train_reps = 3;
  int64_t train_batch = 16, seq_len = 256;
  int64_t rl_prompts = 16, rl_n = 8, rl_response = 128, rl_steps = 2;
  std::vector<std::string> rl_set;
  bool autocast = false, greedy = false;
};

// One way of running the model: parameters in `dtype`, optionally under bf16 autocast.
struct Precision {
  std::string name;  // fp32 | bf16-autocast | bf16
  bool autocast = false;
  bool low = false;  // measured against the bf16 peak
};

std::vector<Precision> parse_precisions(const BenchArgs& a, at::ScalarType dtype,
                                        const std::string& fallback) {
  std::vector<Precision> out;
  std::set<std::string> seen;
  for (const std::string& item : comma_items(a.autocast             ? std::string("bf16")
                                             : a.precisions.empty() ? fallback
                                                                    : a.precisions)) {
    if (item != "fp32" && item != "bf16")
      throw UsageError("--precision \"" + a.precisions + "\": expected fp32, bf16 or fp32,bf16");
    if (!seen.insert(item).second) continue;
    if (dtype != at::kFloat) {  // bf16 parameters: one precision only
      if (out.empty()) out.push_back({dtype_name(dtype), false, true});
      continue;
    }
    out.push_back(item == "fp32" ? Precision{"fp32", false, false} : Precision{"bf16-autocast", true, true});
  }
  if (out.empty()) throw UsageError("--precision is empty: give fp32, bf16 or fp32,bf16");
  return out;
}

struct Bench {
  BenchArgs a;
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
  CausalLM model{nullptr};
  TransformerConfig config;
  std::string model_name;
  std::vector<Precision> precisions, train_precisions;
  double peak_f32 = 0, peak_bf16 = 0;
  double copy_gbps = 0;  // measured when decode runs
  int threads = 1;
  json out;

  double peak(const Precision& p) const { return p.low ? peak_bf16 : peak_f32; }
  at::Tensor random_ids(int64_t B, int64_t T) {
    return torch::randint(0, config.vocab_size, {B, T}, torch::kLong).to(device);
  }
  void add(json record) { out["results"].push_back(std::move(record)); }
  // Adds `record` with its achieved GFLOP/s, the peak of its precision and their ratio (MFU).
  void add(json record, double gflops, const Precision& p) {
    record["gflops"] = gflops;
    record["peak_gflops"] = peak(p);
    record["fraction_of_matmul_peak"] = gflops / peak(p);
    add(std::move(record));
  }
  // A pass over B full sequences of T tokens (log-prob, train) that took `seconds`.
  void add_sequence_pass(const char* phase, const Precision& p, int64_t B, int64_t T, double seconds,
                         double gflops) {
    add({{"phase", phase},
         {"precision", p.name},
         {"batch", B},
         {"seq_len", T},
         {"seconds", seconds},
         {"tokens_per_s", static_cast<double>(B * T) / seconds}},
        gflops, p);
  }
};

// ---------------------------------------------------------------------------------------------------
void bench_decode(Bench& b) {
  const BenchArgs& a = b.a;
  // (batch, row workers, CUDA graphs) runs; 0 workers = generate()'s own choice (one row group per CPU
  // thread).
  struct Run {
    int64_t batch, workers;
    bool graphs;
  };
  std::vector<Run> runs;
  for (int64_t B : parse_list(a.batches, "--batch"))
    for (int64_t w :
         a.row_workers.empty() ? std::vector<int64_t>{0} : parse_list(a.row_workers, "--row-workers"))
      for (bool g : parse_switches(a.graphs, "--graphs")) runs.push_back({B, w, g});
  if (a.prompt_len + a.new_tokens > b.config.max_position_embeddings) {
    throw UsageError("bench: --prompt-len + --new-tokens exceeds max_position_embeddings " +
                     std::to_string(b.config.max_position_embeddings));
  }
  FlopModel fm(b.config);
  const double P = static_cast<double>(a.prompt_len), N = static_cast<double>(a.new_tokens);
  GenerateOptions o;
  o.max_new_tokens = a.new_tokens;
  o.sampling.greedy = a.greedy;
  o.pad_id = 0;  // no EOS: every row generates exactly new_tokens
  o.seed = 1;
  b.model->eval();
  b.copy_gbps = copy_gbps(b.device);
  b.out["copy_gbps"] = b.copy_gbps;
  for (const Precision& p : b.precisions) {
    AutocastGuard autocast(b.device, p.autocast);
    const double cache_bytes = p.autocast ? 2.0 : static_cast<double>(c10::elementSize(b.dtype));
    for (const Run& run : runs) {
      const int64_t B = run.batch, workers = run.workers;
      at::Tensor ids = b.random_ids(B, a.prompt_len), mask = torch::ones_like(ids);
      o.row_workers = workers;
      o.cuda_graphs = run.graphs;
      GenerateOptions warm = o, one = o;
      warm.max_new_tokens = std::min<int64_t>(8, a.new_tokens);
      one.max_new_tokens = 1;
      generate(*b.model, ids, mask, warm);
      double prefill =
          best_time(std::max<int64_t>(1, a.reps), b.device, [&] { generate(*b.model, ids, mask, one); });
      double best = 1e30;
      int64_t graphs = 0;
      for (int64_t rep = 0; rep < a.reps; ++rep) {
        auto t0 = Clock::now();
        graphs = generate(*b.model, ids, mask, o).graphs_captured;
        sync(b.device);
        best = std::min(best, seconds_since(t0));
      }
      double prefill_flops = B * (fm.span(0, P, 0) + fm.head);
      double decode_flops = B * fm.span(P, N - 1, N - 1);
      // The decode steps alone (the call minus a 1-token call); 0 when timing noise hides them.
      double decode_s = best > prefill && N > 1 ? best - prefill : 0.0;
      double gflops = (prefill_flops + decode_flops) / best / 1e9;
      // Memory roofline of the decode steps: the bytes they must read (keys: P + N / 2 on average) at the
      // measured copy bandwidth.
      const double step_bytes = fm.decode_step_bytes(B, P + N / 2, p.low ? 2.0 : 4.0, cache_bytes);
      const double roofline_ms = step_bytes / (b.copy_gbps * 1e9) * 1e3;
      const double ms_per_step = decode_s > 0 ? decode_s * 1e3 / (N - 1) : 0.0;
      b.add({{"phase", "decode"},
             {"precision", p.name},
             {"batch", B},
             {"prompt_len", a.prompt_len},
             {"new_tokens", a.new_tokens},
             {"sampling", a.greedy ? "greedy" : "temperature 1"},
             {"row_workers", workers},
             {"cuda_graphs", run.graphs},
             {"graphs_captured", graphs},
             {"seconds", best},
             {"prefill_seconds", prefill},
             {"tokens_per_s", B * N / best},
             {"ms_per_step", ms_per_step},
             {"bytes_per_step", step_bytes},
             {"roofline_ms_per_step", roofline_ms},
             {"fraction_of_roofline", ms_per_step > 0 ? roofline_ms / ms_per_step : 0.0},
             {"decode_tokens_per_s", decode_s > 0 ? B * (N - 1) / decode_s : 0.0},
             {"decode_fraction_of_matmul_peak",
              decode_s > 0 ? decode_flops / decode_s / 1e9 / b.peak(p) : 0.0}},
            gflops, p);
    }
  }
}

void bench_logprob(Bench& b) {
  const int64_t B = b.a.train_batch, T = b.a.seq_len;
  FlopModel fm(b.config);
  at::Tensor ids = b.random_ids(B, T), mask = torch::ones_like(ids);
  b.model->eval();
  for (const Precision& p : b.precisions) {
    torch::NoGradGuard no_grad;
    AutocastGuard autocast(b.device, p.autocast);
    double s = best_time(b.a.train_reps, b.device, [&] { token_logprobs(*b.model, ids, mask); });
    b.add_sequence_pass("logprob", p, B, T, s, B * fm.span(0, T, T - 1) / s / 1e9);
  }
}

// The actor update of one micro-batch: log-probs with grad, a policy-gradient-shaped loss, backward,
// global-norm clip and AdamW (the Trainer's optimizer). Updates the model's weights.
void bench_train(Bench& b) {
  const int64_t B = b.a.train_batch, T = b.a.seq_len;
  FlopModel fm(b.config);
  at::Tensor ids = b.random_ids(B, T), mask = torch::ones_like(ids);
  at::Tensor advantages = torch::randn({B, T - 1}).to(b.device);  // (B, T-1)
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (auto& item : b.model->named_parameters()) params.emplace_back(item.key(), item.value());
  OptimConfig oc;
  oc.lr = 1e-5;
  AdamW optimizer(params, oc);
  b.model->train();
  for (const Precision& p : b.train_precisions) {
    auto step = [&] {
      optimizer.zero_grad();
      at::Tensor loss;
      {
        AutocastGuard autocast(b.device, p.autocast);
        TokenLogProbs lp = token_logprobs(*b.model, ids, mask);
        loss = -(lp.logprobs * advantages).mean();
      }
      loss.backward();
      clip_grad_norm(params, 1.0);
      optimizer.step(oc.lr);
    };
    double s = best_time(b.a.train_reps, b.device, step);
    b.add_sequence_pass("train", p, B, T, s, 3.0 * B * fm.span(0, T, T - 1) / s / 1e9);
  }
  optimizer.zero_grad();
  b.model->eval();
}

// ---------------------------------------------------------------------------------------------------
// The RL step needs a model directory with a tokenizer. With --model-config one is made in a temporary
// directory: a byte-level BPE trained on Countdown-like text (as scripts/make-tiny-model.sh does) and
// the random model saved with it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tinyzero-bench-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw IoError("cannot create a temporary directory under " + tmpl);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string countdown_corpus(int64_t lines, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> num(1, 20), target(1, 100), op(0, 3);
  const char* ops[] = {" + ", " - ", " * ", " / "};
  std::ostringstream s;
  for (int64_t i = 0; i < lines; ++i) {
    int x = num(rng), y = num(rng), z = num(rng);
    std::string expr =
        std::to_string(x) + ops[op(rng)] + std::to_string(y) + ops[op(rng)] + std::to_string(z);
    s << "Numbers [" << x << ", " << y << ", " << z << "], target " << target(rng) << ".\nAssistant: <think> "
      << expr << " </think> <answer>" << expr << "</answer><|endoftext|>\n";
  }
  return s.str();
}

// Returns the model directory to train, or "" (with `note` set) when the phase cannot run.
std::string rl_model_dir(Bench& b, const TempDir& tmp, std::string& note) {
  if (!b.a.model.empty()) {
    if (!fs::exists(fs::path(b.a.model) / "tokenizer.json") &&
        !fs::exists(fs::path(b.a.model) / "tokenizer.model")) {
      note = b.a.model + " has no tokenizer.json or tokenizer.model; the RL step needs one";
      return "";
    }
    return b.a.model;
  }
  if (b.config.vocab_size < 300) {
    note = "vocab_size " + std::to_string(b.config.vocab_size) +
           " is too small for a byte-level tokenizer (>= 300)";
    return "";
  }
  BpeTrainOptions bo;
  bo.vocab_size = std::min<int64_t>(b.config.vocab_size, 512);
  BpeTrainResult tok = train_bpe(countdown_corpus(2000, 11), bo);
  std::string tok_dir = (tmp.path / "tokenizer").string(), model_dir = (tmp.path / "model").string();
  write_tokenizer_files(tok, tok_dir);
  torch::manual_seed(1);
  CausalLM fresh(b.config);
  save_causal_lm(*fresh, model_dir, b.dtype, tok_dir);
  return model_dir;
}

void bench_rl(Bench& b) {
  const BenchArgs& a = b.a;
  TempDir tmp;
  std::string note;
  std::string dir = rl_model_dir(b, tmp, note);
  if (dir.empty()) {
    b.out["rl_step"] = {{"skipped", note}};
    return;
  }
  std::ostringstream yaml;
  yaml << "model:\n  path: " << json(dir).dump() << "\n  dtype: " << dtype_name(b.dtype) << "\n"
       << "algorithm:\n  name: grpo\n"
       << "data:\n  train_size: " << std::max<int64_t>(64, a.rl_prompts * a.rl_steps) << "\n  val_size: 4\n"
       << "  train_batch_size: " << a.rl_prompts
       << "\n  max_prompt_length: 96\n  max_response_length: " << a.rl_response << "\n"
       << "  prompt_template: \"Numbers {numbers}, target {target}.\\nAssistant: <think>\"\n"
       << "  countdown: {min_numbers: 3, max_numbers: 3, min_number: 1, max_number: 20, min_target: 1, "
          "max_target: 100}\n"
       << "rollout:\n  n: " << a.rl_n << "\n  micro_batch_size: 256\n  log_prob_micro_batch_size: 64\n"
       << "actor:\n  ppo_mini_batch_size: " << std::max<int64_t>(1, a.rl_prompts / 2)
       << "\n  ppo_micro_batch_size: " << std::max<int64_t>(1, a.rl_prompts / 2) * a.rl_n
       << "\n  use_kl_loss: true\n  optim: {lr: 1.0e-5}\n"
       << "trainer:\n  device: " << (b.device.is_cuda() ? "cuda" : "cpu") << "\n  threads: " << b.threads
       << "\n  total_steps: " << a.rl_steps << "\n  run_dir: " << json((tmp.path / "run").string()).dump()
       << "\n  test_freq: 0\n  save_freq: 0\n  val_before_train: false\n  resume: \"off\"\n"
       << "logging: {level: warn, console: false, jsonl: false, tensorboard: false, plot: false, progress: "
          "false, "
          "sample_freq: 0}\n";
  LoadedConfig loaded = load_config_text(yaml.str(), "bench RL config", a.rl_set);
  set_log_level(loaded.config.logging.level);
  Trainer trainer(loaded);
  json steps = json::array();
  Metrics last;
  for (int64_t i = 0; i < a.rl_steps; ++i) {
    last = trainer.train_step();
    json t;
    for (const auto& [k, v] : last)
      if (k.rfind("timing_s/", 0) == 0 || k.rfind("perf/", 0) == 0 || k == "response_length/mean") t[k] = v;
    steps.push_back(t);
  }
  const TrainConfig& c = loaded.config;
  b.out["rl_step"] = {
      {"model_dir", b.a.model.empty() ? "(random model + BPE tokenizer in a temporary directory)" : dir},
      {"algorithm", c.algorithm.name},
      {"prompts", c.data.train_batch_size},
      {"n", c.rollout.n},
      {"max_response_length", c.data.max_response_length},
      {"ppo_mini_batch_size", c.actor.ppo_mini_batch_size},
      {"autocast_bf16", c.model.autocast_bf16},
      {"overrides", a.rl_set},
      {"steps", steps},
      {"reported_step", a.rl_steps}};
}

// ---------------------------------------------------------------------------------------------------
std::string fmt(double v, int precision) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

void print_table(const Bench& b, std::ostream& os) {
  const json& o = b.out;
  os << "model " << b.model_name << " (" << b.config.num_parameters() << " parameters: vocab "
     << b.config.vocab_size << ", hidden " << b.config.hidden_size << ", " << b.config.num_hidden_layers
     << " layers), " << b.device.str() << ", " << b.threads << " threads, load average "
     << fmt(o["load_average"][0].get<double>(), 2) << " -> " << fmt(o["load_average"][1].get<double>(), 2)
     << "\n";
  os << "matmul peak: fp32 " << fmt(b.peak_f32, 1) << " GFLOP/s, bf16 " << fmt(b.peak_bf16, 1) << " GFLOP/s";
  if (b.copy_gbps > 0) os << "; copy bandwidth " << fmt(b.copy_gbps, 1) << " GB/s (read + write)";
  os << "\n";
  if (!o["results"].empty()) {
    os << "\nphase    precision      shape              tokens/s   GFLOP/s     MFU   detail\n";
    for (const auto& r : o["results"]) {
      std::string phase = r["phase"], shape, detail;
      if (phase == "decode") {
        shape = "B=" + std::to_string(r["batch"].get<int64_t>()) + " " +
                std::to_string(r["prompt_len"].get<int64_t>()) + "+" +
                std::to_string(r["new_tokens"].get<int64_t>());
        const int64_t workers = r.value("row_workers", int64_t{0});
        if (workers > 0) shape += " w" + std::to_string(workers);
        if (r.value("graphs_captured", int64_t{0}) > 0) shape += " graphs";
        detail = fmt(r["ms_per_step"].get<double>(), 2) + " ms/step, prefill " +
                 fmt(r["prefill_seconds"].get<double>(), 3) + " s, steps alone " +
                 fmt(100 * r["decode_fraction_of_matmul_peak"].get<double>(), 1) + "%, " +
                 fmt(100 * r.value("fraction_of_roofline", 0.0), 1) + "% of the memory roofline";
      } else {
        shape = std::to_string(r["batch"].get<int64_t>()) + "x" + std::to_string(r["seq_len"].get<int64_t>());
        detail = fmt(r["seconds"].get<double>(), 3) + " s";
      }
      os << std::left << std::setw(9) << phase << std::setw(15) << r["precision"].get<std::string>()
         << std::setw(15) << shape << std::right << std::setw(12) << fmt(r["tokens_per_s"].get<double>(), 0)
         << std::setw(10) << fmt(r["gflops"].get<double>(), 1) << std::setw(7)
         << fmt(100 * r["fraction_of_matmul_peak"].get<double>(), 1) << "%   " << detail << "\n";
    }
  }
  if (o.contains("rl_step")) {
    const json& rl = o["rl_step"];
    if (rl.contains("skipped")) {
      os << "\nRL step: skipped (" << rl["skipped"].get<std::string>() << ")\n";
    } else {
      const json& t = rl["steps"].back();
      os << "\nRL step (" << rl["algorithm"].get<std::string>() << ", " << rl["prompts"].get<int64_t>()
         << " prompts x " << rl["n"].get<int64_t>()
         << ", response <= " << rl["max_response_length"].get<int64_t>() << " tokens, mean "
         << fmt(t.value("response_length/mean", 0.0), 1) << "; step " << rl["reported_step"].get<int64_t>()
         << " of " << rl["steps"].size() << "):\n";
      double step = t.value("timing_s/step", 0.0);
      for (const char* k : {"timing_s/gen", "timing_s/old_log_prob", "timing_s/ref", "timing_s/adv",
                            "timing_s/update_actor", "timing_s/step"}) {
        double v = t.value(k, 0.0);
        os << "  " << std::left << std::setw(24) << k << std::right << std::setw(9) << fmt(v, 3) << " s"
           << (step > 0 ? "  " + fmt(100 * v / step, 1) + "%" : "") << "\n";
      }
      if (t.contains("perf/gen_tokens_per_s"))
        os << "  generation " << fmt(t["perf/gen_tokens_per_s"].get<double>(), 0) << " tokens/s, throughput "
           << fmt(t.value("perf/throughput", 0.0), 0) << " tokens/s\n";
    }
  }
}

void run_bench(const BenchArgs& args) {
  Bench b;
  b.a = args;
  const BenchArgs& a = b.a;
  std::set<std::string> phases(a.phases.begin(), a.phases.end());
  if (phases.empty() || phases.count("all")) phases = {"matmul", "decode", "logprob", "train", "rl"};
  bool needs_model = phases.size() > 1 || !phases.count("matmul");
  if (needs_model && a.model.empty() == a.model_config.empty())
    throw UsageError("bench: give exactly one of --model DIR or --model-config FILE");
  if (a.prompt_len <= 0 || a.new_tokens <= 0 || a.reps <= 0 || a.train_reps <= 0 || a.train_batch <= 0 ||
      a.seq_len <= 1 || a.rl_prompts <= 0 || a.rl_n <= 0 || a.rl_response <= 0 || a.rl_steps <= 0)
    throw UsageError(
        "bench: --prompt-len, --new-tokens, --reps, --train-reps, --train-batch, --rl-* must be > 0 and "
        "--seq-len > 1");
  if (phases.count("decode")) {  // usage errors before any work
    parse_list(a.batches, "--batch");
    if (!a.row_workers.empty()) parse_list(a.row_workers, "--row-workers");
    parse_switches(a.graphs, "--graphs");
  }
  if (!a.matmul_sizes.empty()) parse_list(a.matmul_sizes, "--matmul-sizes");
  b.dtype = parse_dtype(a.dtype);
  b.precisions = parse_precisions(a, b.dtype, "fp32");
  b.train_precisions = parse_precisions(a, b.dtype, "fp32,bf16");
  b.threads = configure_threads(static_cast<int>(a.threads));
  b.device = at::Device(resolve_device(a.device));
  double load_start = load_average();

  if (needs_model) {
    torch::manual_seed(0);
    b.model = a.model.empty() ? CausalLM(load_transformer_config(a.model_config))
                              : load_causal_lm(a.model, b.dtype, b.device);
    b.model->to(b.device, b.dtype);
    b.model->eval();
    b.config = b.model->config();
    b.model_name = a.model.empty() ? a.model_config : a.model;
  }
  std::vector<int64_t> sizes = !a.matmul_sizes.empty() ? parse_list(a.matmul_sizes, "--matmul-sizes")
                               : b.device.is_cuda()    ? std::vector<int64_t>{4096, 8192}
                                                       : std::vector<int64_t>{1024, 2048};
  b.peak_f32 = matmul_gflops(at::kFloat, b.device, sizes, 5);
  b.peak_bf16 = matmul_gflops(at::kBFloat16, b.device, sizes, 5);
  b.out = {{"tool", "tinyzero-train bench"},
           {"version", version_string()},
           {"model", b.model_name},
           {"device", b.device.str()},
           {"dtype", dtype_name(b.dtype)},
           {"threads", b.threads},
           {"matmul_sizes", sizes},
           {"matmul_gflops_fp32", b.peak_f32},
           {"matmul_gflops_bf16", b.peak_bf16},
           {"results", json::array()}};
  if (needs_model) {
    const TransformerConfig& c = b.config;
    b.out["parameters"] = c.num_parameters();
    b.out["shape"] = {{"vocab_size", c.vocab_size},
                      {"hidden_size", c.hidden_size},
                      {"intermediate_size", c.intermediate_size},
                      {"num_hidden_layers", c.num_hidden_layers},
                      {"num_attention_heads", c.num_attention_heads},
                      {"num_key_value_heads", c.num_key_value_heads},
                      {"tie_word_embeddings", c.tie_word_embeddings}};
  }
  if (phases.count("decode")) bench_decode(b);
  if (phases.count("logprob")) bench_logprob(b);
  if (phases.count("train")) bench_train(b);  // changes the weights: after the inference phases
  if (phases.count("rl")) bench_rl(b);
  b.out["load_average"] = {load_start, load_average()};

  if (a.json_path == "-") {
    std::cout << b.out.dump(2) << "\n";
    return;
  }
  print_table(b, std::cout);
  if (!a.json_path.empty()) {
    write_file_atomic(a.json_path, b.out.dump(2) + "\n");
    std::cout << "\nwrote " << a.json_path << "\n";
  }
}

CommandRegistration reg([](CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* d = app.add_subcommand(
      "bench",
      "Matmul peak (fp32, bf16), then decode, log-prob pass, training step and a full RL step, each as a "
      "fraction of the matmul peak (MFU)");
  d->add_option("phases", a->phases,
                "Phases: all | matmul decode logprob train rl (default all; the peak is always measured)")
      ->check(CLI::IsMember({"all", "matmul", "decode", "logprob", "train", "rl"}));
  d->add_option("--model", a->model, "Hugging Face model directory (with a tokenizer for the rl phase)");
  d->add_option("--model-config", a->model_config,
                "config.json of a random model (e.g. configs/models/tiny.json)");
  d->add_option("--threads", a->threads, "CPU threads (0 = all cores)")->capture_default_str();
  d->add_option("--device", a->device, "auto | cpu | cuda")->capture_default_str();
  d->add_option("--dtype", a->dtype, "Parameter dtype: float32 | bfloat16")->capture_default_str();
  d->add_option("--precision", a->precisions,
                "With float32 parameters: fp32 and/or bf16 (autocast), comma-separated (default: fp32; "
                "train: fp32,bf16)");
  d->add_flag("--autocast", a->autocast, "Same as --precision bf16");
  d->add_option("--json", a->json_path,
                "Write every figure as JSON to FILE (no FILE or '-': JSON on stdout instead of the table)")
      ->expected(0, 1)
      ->default_str("-");
  d->add_option("--matmul-sizes", a->matmul_sizes,
                "Square matmul sizes whose best rate is the peak (default 1024,2048; 4096,8192 on CUDA)");
  d->add_option("--batch", a->batches, "decode: batch sizes, comma-separated")->capture_default_str();
  d->add_option("--row-workers", a->row_workers,
                "decode: row groups generated at once, each on its own thread, comma-separated to compare "
                "(e.g. 1,2; shown as wN; default: generate's choice, one per thread on the CPU)");
  d->add_option("--graphs", a->graphs,
                "decode: CUDA graphs of the decode step (rollout.cuda_graphs): on, off, or on,off for both; "
                "no effect on the CPU")
      ->capture_default_str();
  d->add_option("--prompt-len", a->prompt_len, "decode: prompt tokens")->capture_default_str();
  d->add_option("--new-tokens", a->new_tokens, "decode: new tokens per row")->capture_default_str();
  d->add_flag("--greedy", a->greedy, "decode: greedy instead of sampling at temperature 1");
  d->add_option("--reps", a->reps, "decode: timed runs per batch size (best is reported)")
      ->capture_default_str();
  d->add_option("--train-batch", a->train_batch, "logprob/train: sequences")->capture_default_str();
  d->add_option("--seq-len", a->seq_len, "logprob/train: tokens per sequence")->capture_default_str();
  d->add_option("--train-reps", a->train_reps, "logprob/train: timed runs (best is reported)")
      ->capture_default_str();
  d->add_option("--rl-prompts", a->rl_prompts, "rl: prompts per step")->capture_default_str();
  d->add_option("--rl-n", a->rl_n, "rl: responses per prompt")->capture_default_str();
  d->add_option("--rl-response", a->rl_response, "rl: max response tokens")->capture_default_str();
  d->add_option("--rl-steps", a->rl_steps, "rl: steps run (the last one is reported)")->capture_default_str();
  d->add_option("--rl-set", a->rl_set,
                "rl: config override key=value (repeatable), e.g. model.autocast_bf16=true")
      ->allow_extra_args(false);
  d->callback([a] { run_bench(*a); });
});

}  // namespace
}  // namespace tinyzero::cli
