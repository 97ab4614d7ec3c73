// The training loop (see trainer.h): rollouts, rewards, advantages, the clipped policy update, SFT,
// validation, metrics, checkpoints and resume.
#include "tinyzero/trainer/trainer.h"

#include <torch/torch.h>
#include "tinyzero/core/log.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/dist/process_group.h"
#include "tinyzero/io/safetensors.h"
#include "tinyzero/metrics/names.h"
#include "tinyzero/metrics/progress.h"
#include "tinyzero/model/generator.h"
#include "tinyzero/model/logprobs.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/rl/advantages.h"
#include "tinyzero/rl/kl.h"
#include "tinyzero/rl/losses.h"
#include "tinyzero/tasks/task.h"
#include "tinyzero/tokenizer/stop_strings.h"
#include "tinyzero/tokenizer/tokenizer.h"
#include "tinyzero/trainer/optimizer.h"
#include "trainer/critic.h"
#include "trainer/data_parallel.h"
#include "trainer/data_order.h"
#include "trainer/sft_data.h"

namespace fs = std::filesystem;
namespace mn = tinyzero::metric_names;

namespace tinyzero {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Rows of a rollout batch: prompt (left-padded) followed by response (right-padded).
struct Rollout {
  at::Tensor input_ids;       // (B, P + R) int64
  at::Tensor attention_mask;  // (B, P + R) int64
  at::Tensor response_mask;   // (B, R) float32
  int64_t prompt_len = 0;     // P
  at::Tensor scores;          // (B) float32
  std::vector<int64_t> group;  // (B) prompt index of each row
  std::vector<bool> correct, format_ok, truncated;
  std::vector<std::string> prompts, responses;  // decoded, for sample logs
  at::Tensor sample_log_probs;  // (B, R) the sampler's log-prob of each response token, 0 after the end
  at::Tensor old_log_probs, ref_log_probs, advantages;  // (B, R)
  at::Tensor values, returns;  // (B, R), PPO only
  int64_t rows() const { return input_ids.size(0); }
  int64_t response_len() const { return response_mask.size(1); }
};

// Concatenates rollouts row-wise, padding prompts on the left and responses on the right.
Rollout concat_rollouts(std::vector<Rollout>& parts, int64_t pad_id) {
  if (parts.size() == 1) return std::move(parts[0]);
  int64_t P = 0, R = 0;
  for (auto& p : parts) P = std::max(P, p.prompt_len), R = std::max(R, p.response_len());
  Rollout out;
  out.prompt_len = P;
  std::vector<at::Tensor> ids, masks, rmasks, scores, sample_lps;
  int64_t group_offset = 0;
  for (auto& p : parts) {
    const int64_t lp = P - p.prompt_len, rp = R - p.response_len();
    at::Tensor prompt = p.input_ids.narrow(1, 0, p.prompt_len), resp = p.input_ids.narrow(1, p.prompt_len, p.response_len());
    at::Tensor pmask = p.attention_mask.narrow(1, 0, p.prompt_len), rmask = p.attention_mask.narrow(1, p.prompt_len, p.response_len());
    ids.push_back(torch::cat({torch::full({p.rows(), lp}, pad_id, prompt.options()), prompt, resp,
                              torch::full({p.rows(), rp}, pad_id, resp.options())}, 1));
    masks.push_back(torch::cat({torch::zeros({p.rows(), lp}, pmask.options()), pmask, rmask,
                                torch::zeros({p.rows(), rp}, rmask.options())}, 1));
    rmasks.push_back(torch::cat({p.response_mask, torch::zeros({p.rows(), rp}, p.response_mask.options())}, 1));
    sample_lps.push_back(at::constant_pad_nd(p.sample_log_probs, {0, rp}, 0.0));
    scores.push_back(p.scores);
    int64_t max_group = -1;
    for (auto g : p.group) out.group.push_back(g + group_offset), max_group = std::max(max_group, g);
    group_offset += max_group + 1;
    out.correct.insert(out.correct.end(), p.correct.begin(), p.correct.end());
    out.format_ok.insert(out.format_ok.end(), p.format_ok.begin(), p.format_ok.end());
    out.truncated.insert(out.truncated.end(), p.truncated.begin(), p.truncated.end());
    out.prompts.insert(out.prompts.end(), p.prompts.begin(), p.prompts.end());
    out.responses.insert(out.responses.end(), p.responses.begin(), p.responses.end());
  }
  out.input_ids = torch::cat(ids, 0);
  out.attention_mask = torch::cat(masks, 0);
  out.response_mask = torch::cat(rmasks, 0);
  out.sample_log_probs = torch::cat(sample_lps, 0);
  out.scores = torch::cat(scores, 0);
  return out;
}

// Keeps the rows `rows` (sorted) of a rollout.
Rollout select_rows(const Rollout& r, const std::vector<int64_t>& rows) {
  Rollout out;
  at::Tensor index = torch::tensor(rows, torch::kLong).to(r.input_ids.device());
  out.input_ids = r.input_ids.index_select(0, index);
  out.attention_mask = r.attention_mask.index_select(0, index);
  out.response_mask = r.response_mask.index_select(0, index);
  out.sample_log_probs = r.sample_log_probs.index_select(0, index);
  out.scores = r.scores.index_select(0, index.to(r.scores.device()));
  out.prompt_len = r.prompt_len;
  for (auto i : rows) {
    out.group.push_back(r.group[i]);
    out.correct.push_back(r.correct[i]);
    out.format_ok.push_back(r.format_ok[i]);
    out.truncated.push_back(r.truncated[i]);
    out.prompts.push_back(r.prompts[i]);
    out.responses.push_back(r.responses[i]);
  }
  return out;
}

double mean_of(const std::vector<bool>& flags) {
  if (flags.empty()) return 0;
  return static_cast<double>(std::count(flags.begin(), flags.end(), true)) / static_cast<double>(flags.size());
}

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

// Checkpoints under run_dir/checkpoints, newest first: (step, path) of directories named step_N that
// hold a trainer_state.json (written last, so its presence marks a complete checkpoint).
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) != 0 || !entry.is_directory()) continue;
    if (!fs::exists(entry.path() / "trainer_state.json")) continue;
    try {
      out.emplace_back(std::stoll(name.substr(5)), entry.path().string());
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

// The update schedule shared by the actor and the critic: `epochs` passes over the B rows, each in a
// random order from derive_seed(seed, step, epoch), cut into mini-batches of `mini_rows` (one optimizer
// step each) and those into micro-batches of `micro_rows` (gradient accumulation). Row lists are sorted,
// by `lengths` (then index) when given, so that a micro-batch holds rows of similar lengths: its log-prob
// pass is only as wide as its longest row (response_log_probs). The losses are sums over micro-batches
// with the mini-batch's denominator, so the grouping changes nothing but the padding.
void for_each_update(int64_t B, int64_t mini_rows, int64_t micro_rows, int64_t epochs, uint64_t seed, int64_t step,
                     const std::function<void(const std::vector<int64_t>& mini)>& begin_mini,
                     const std::function<void(const std::vector<int64_t>& rows, bool last)>& micro,
                     const std::function<void()>& end_mini, const std::vector<int64_t>* lengths = nullptr) {
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    std::vector<int64_t> order = permutation(B, derive_seed(seed, static_cast<uint64_t>(step), static_cast<uint64_t>(epoch)));
    for (int64_t mb = 0; mb < B; mb += mini_rows) {
      std::vector<int64_t> mini(order.begin() + mb, order.begin() + std::min(B, mb + mini_rows));
      std::sort(mini.begin(), mini.end(), [&](int64_t a, int64_t b) {
        if (!lengths) return a < b;
        const int64_t la = (*lengths)[static_cast<size_t>(a)], lb = (*lengths)[static_cast<size_t>(b)];
        return la != lb ? la < lb : a < b;
      });
      begin_mini(mini);
      for (size_t start = 0; start < mini.size(); start += static_cast<size_t>(micro_rows))
        micro(std::vector<int64_t>(mini.begin() + start, mini.begin() + std::min(mini.size(), start + micro_rows)),
              start + static_cast<size_t>(micro_rows) >= mini.size());
      end_mini();
    }
  }
}

at::Tensor row_index(const std::vector<int64_t>& rows, const at::Device& device) {
  return torch::tensor(rows, torch::kLong).to(device);
}

// Response lengths of the rows of `r` (B,), on the host.
std::vector<int64_t> response_lengths(const Rollout& r) {
  const at::Tensor lengths = r.response_mask.sum(1).to(torch::kCPU).to(torch::kLong).contiguous();
  return std::vector<int64_t>(lengths.data_ptr<int64_t>(), lengths.data_ptr<int64_t>() + lengths.numel());
}

// Columns of the response block that rows `index` of `r` use: one past the last response token of the
// longest of them (at least 1). The rest is right padding, most of the batch when lengths vary.
int64_t response_width(const Rollout& r, const at::Tensor& index) {
  const at::Tensor used = (r.response_mask.index_select(0, index) != 0).any(0).nonzero();
  return used.numel() > 0 ? used.max().item<int64_t>() + 1 : std::min<int64_t>(r.response_len(), 1);
}

// All rows of `r`, shortest response first, cut into chunks of `micro` rows: a no-grad pass over a chunk
// is then only as wide as its own longest row, instead of the longest of `micro` rows in sampling order.
std::vector<std::vector<int64_t>> length_sorted_chunks(const Rollout& r, int64_t micro) {
  const std::vector<int64_t> len = response_lengths(r);
  std::vector<int64_t> order(static_cast<size_t>(r.rows()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return len[static_cast<size_t>(a)] < len[static_cast<size_t>(b)];
  });
  std::vector<std::vector<int64_t>> chunks;
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(micro))
    chunks.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                        order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), start + static_cast<size_t>(micro))));
  return chunks;
}

// Runs `pass` (rows -> (rows, R)) over the length-sorted chunks of `r` and puts each result back at its
// rows: (B, R) in the rollout's row order.
at::Tensor by_length_chunks(const Rollout& r, int64_t micro,
                            const std::function<at::Tensor(const std::vector<int64_t>&)>& pass) {
  at::Tensor out;
  for (const auto& rows : length_sorted_chunks(r, micro)) {
    at::Tensor part = pass(rows);
    if (!out.defined()) out = at::zeros({r.rows(), part.size(1)}, part.options());
    out.index_copy_(0, row_index(rows, part.device()), part);
  }
  return out;
}

}  // namespace

void check_run_inputs(const TrainConfig& c) {
  auto need_dir = [](const std::string& key, const std::string& dir, const std::string& file) {
    if (dir.empty())
      throw ConfigError(key + " is empty; set it to a Hugging Face model directory (config.json, *.safetensors, "
                        "tokenizer files); scripts/make-tiny-model.sh builds a tiny one");
    std::error_code ec;
    if (!fs::exists(fs::path(dir) / file, ec))
      throw ConfigError(key + " '" + dir + "' has no " + file +
                        "; point it at a Hugging Face model directory (scripts/make-tiny-model.sh DIR builds a tiny "
                        "one in DIR/model)");
  };
  need_dir("model.path", c.model.path, "config.json");
  if (!c.model.tokenizer_path.empty()) need_dir("model.tokenizer_path", c.model.tokenizer_path, "tokenizer_config.json");
  auto need_files = [](const std::string& key, const std::string& list) {
    std::stringstream ss(list);
    for (std::string path; std::getline(ss, path, ',');)
      if (!path.empty() && !fs::exists(path))
        throw ConfigError(key + " names '" + path + "', which does not exist; fix the path or leave " + key +
                          " empty to generate problems");
  };
  need_files("data.train_files", c.data.train_files);
  need_files("data.val_files", c.data.val_files);
  if (c.trainer.resume != "auto" && c.trainer.resume != "off" && !fs::exists(fs::path(c.trainer.resume) / "trainer_state.json"))
    throw ConfigError("trainer.resume '" + c.trainer.resume + "' is not a complete checkpoint (no trainer_state.json); "
                      "give a run_dir/checkpoints/step_N directory, or auto");
}

std::string latest_checkpoint(const std::string& run_dir) {
  auto all = list_checkpoints(run_dir);
  return all.empty() ? "" : all.front().second;
}

struct Trainer::State {
  TrainConfig config;
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
  bool bf16_autocast = false;  // model.autocast_bf16 resolved for this device
  std::string tokenizer_dir;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Task> task;
  ProblemSets problems;
  std::vector<SftExample> sft_examples;
  std::unique_ptr<DataCursor> cursor;
  CausalLM actor{nullptr}, reference{nullptr};
  DistEnv env;
  std::unique_ptr<ProcessGroup> pg;  // a trivial group (no collectives) for a single process
  std::unique_ptr<DataParallelOptimizer> optimizer;
  std::unique_ptr<Critic> critic;  // PPO only
  std::unique_ptr<DataParallelOptimizer> critic_optimizer;
  std::unique_ptr<KlController> kl_ctrl;
  std::unique_ptr<MetricsLogger> logger;  // rank 0 only
  std::vector<int64_t> eos_ids;
  int64_t pad_id = 0;
  int64_t step = 0, resumed_from = 0;
  int64_t nonfinite_in_a_row = 0, nonfinite_total = 0;
  int64_t last_validated = -1, last_saved = -1;

  bool is_sft() const { return config.algorithm.name == "sft"; }
  int rank() const { return pg->rank(); }
  int world() const { return pg->world_size(); }
  // This rank's share [begin, end) of `count` items split into equal contiguous parts.
  std::pair<int64_t, int64_t> my_share(int64_t count) const {
    return {count * rank() / world(), count * (rank() + 1) / world()};
  }
  double sum_over_ranks(double v) const { return pg->all_reduce(v, ReduceOp::kSum); }
  std::vector<int64_t> encode_prompt(const std::string& text) const;
  std::vector<Rollout> generate_rollouts(const std::vector<Problem>& problems, int64_t n, bool greedy,
                                         double temperature, uint64_t seed, ProgressBar* progress = nullptr,
                                         int64_t first_index = 0);
  at::Tensor response_log_probs(CausalLMImpl& model, const Rollout& r, const std::vector<int64_t>& rows,
                                bool with_grad, at::Tensor* entropy);
  at::Tensor batched_log_probs(CausalLMImpl& model, const Rollout& r);
  at::Tensor batched_values(const Rollout& r);
  at::Tensor critic_values(const Rollout& r, const std::vector<int64_t>& rows);
  // Clips the gradients of `opt`'s parameters and steps it; a non-finite norm skips the step (counted,
  // and too many in a row throw). Returns the norm, or NaN for a skipped step.
  double apply_update(DataParallelOptimizer& opt, const OptimConfig& optim, double lr, const char* what);
  void update_critic(const Rollout& r, Metrics& m);
  // Rows per mini-batch (this rank's share of actor.ppo_mini_batch_size * n) and per micro-batch (by
  // token count with use_dynamic_bsz, else `micro_batch_size`), shared by the actor and the critic.
  std::pair<int64_t, int64_t> update_batch_rows(const Rollout& r, int64_t micro_batch_size) const;
  // masked_whiten over the masked values of every rank (unbiased variance, as masked_whiten).
  at::Tensor whiten_over_ranks(const at::Tensor& values, const at::Tensor& mask);
  // Moves the reference / critic to the training device or back to the CPU when they are offloaded.
  void place_reference(bool in_use);
  void place_critic(bool in_use);
  Metrics rl_step();
  Metrics sft_step();
  void load_checkpoint(const std::string& dir);
};

// ------------------------------------------------------------------------------------------------
// Set-up.

Trainer::Trainer(const LoadedConfig& loaded) : s_(std::make_unique<State>()) {
  State& s = *s_;
  s.config = loaded.config;
  const TrainConfig& c = s.config;
  check_run_inputs(c);
  s.device = at::Device(c.trainer.device == "cuda" ? at::kCUDA : at::kCPU);
  if (c.trainer.device == "auto" && torch::cuda::is_available()) s.device = at::Device(at::kCUDA);
  // Data parallel: one process per device, joined through c10d (torchrun / SLURM / launch-local.sh).
  s.env = detect_dist_env();
  if (s.device.is_cuda()) s.device = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(s.env.local_rank));
  if (s.env.is_distributed()) {
    const int64_t w = s.env.world_size;
    if (c.data.train_batch_size % w != 0 || (!s.is_sft() && c.actor.ppo_mini_batch_size % w != 0))
      throw ConfigError("data.train_batch_size (" + std::to_string(c.data.train_batch_size) +
                        ") and actor.ppo_mini_batch_size (" + std::to_string(c.actor.ppo_mini_batch_size) +
                        ") must be multiples of the world size " + std::to_string(w) +
                        "; change them or the number of ranks");
    if (c.algorithm.filter_groups)
      throw ConfigError("algorithm.filter_groups (DAPO dynamic sampling) runs on one process only in this version; "
                        "set algorithm.filter_groups=false or run a single rank");
    logging::info("data parallel: {}", describe(s.env));
  }
  s.pg = init_process_group(s.env, c.distributed.backend, s.device, c.distributed.timeout_s);
  s.dtype = parse_dtype(c.model.dtype);
  s.bf16_autocast = resolve_autocast_bf16(c.model.autocast_bf16, s.device.is_cuda() ? "cuda" : "cpu");
  if (s.device.is_cpu() && !cpu_has_native_bf16() && s.bf16_autocast) {
    logging::warn(
        "model.autocast_bf16=true on a CPU without native bf16 matmul (no avx512_bf16, amx_bf16 or bf16 in "
        "/proc/cpuinfo): bf16 matmuls run 10-30x slower than fp32 here; set model.autocast_bf16=auto or "
        "false");
  } else if (c.model.autocast_bf16 == "auto") {
    const char* why = !s.bf16_autocast         ? "off (this CPU has no native bf16 matmul; matmuls in fp32)"
                      : s.device.is_cuda() ? "on (CUDA)"
                                           : "on (this CPU has native bf16 matmul)";
    logging::info("model.autocast_bf16=auto: bf16 autocast {}", why);
  }
  torch::manual_seed(c.trainer.seed);

  s.tokenizer_dir = c.model.tokenizer_path.empty() ? c.model.path : c.model.tokenizer_path;
  s.tokenizer = load_tokenizer(s.tokenizer_dir);
  s.task = make_task(c.data, c.reward);
  if (s.is_sft()) {
    s.sft_examples = read_sft_examples(c.data.train_files);
    DataConfig val_only = c.data;
    val_only.train_files.clear();
    val_only.train_size = 1;
    s.problems.val = load_problem_sets(val_only).val;
    s.cursor = std::make_unique<DataCursor>(static_cast<int64_t>(s.sft_examples.size()), c.data.seed, c.data.shuffle);
  } else {
    s.problems = load_problem_sets(c.data);
    s.cursor = std::make_unique<DataCursor>(static_cast<int64_t>(s.problems.train.size()), c.data.seed, c.data.shuffle);
  }
  check_problem_sets(s.problems, *s.task, c.data,
                     [&](const std::string& t) -> int64_t { return s.tokenizer->encode(t).size(); });
  logging::info("data: {} training {}, {} validation problems",
                s.is_sft() ? s.sft_examples.size() : s.problems.train.size(),
                s.is_sft() ? "examples" : "problems", s.problems.val.size());

  s.actor = load_causal_lm(c.model.path, s.dtype, s.device);
  s.actor->set_activation_checkpointing(c.model.activation_checkpointing);
  const TransformerConfig& mc = s.actor->config();
  if (c.data.max_prompt_length + c.data.max_response_length > mc.max_position_embeddings && mc.max_position_embeddings > 0)
    throw ConfigError("data.max_prompt_length + data.max_response_length = " +
                      std::to_string(c.data.max_prompt_length + c.data.max_response_length) + " exceeds the model's " +
                      "max_position_embeddings " + std::to_string(mc.max_position_embeddings) + " (" + c.model.path +
                      "/config.json); shorten them");
  if (c.needs_reference()) {
    at::ScalarType ref_dtype = c.reference.dtype == "same" ? s.dtype : parse_dtype(c.reference.dtype);
    s.reference = load_causal_lm(c.model.path, ref_dtype, s.device);
    s.reference->eval();
    for (auto& p : s.reference->parameters()) p.set_requires_grad(false);
    s.place_reference(false);
  }
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (auto& item : s.actor->named_parameters()) params.emplace_back(item.key(), item.value());
  const int64_t bucket_bytes = c.distributed.bucket_mb << 20;
  s.optimizer = std::make_unique<DataParallelOptimizer>(params, c.actor.optim, *s.pg, c.distributed.zero_stage,
                                                        bucket_bytes, c.distributed.overlap_grad_reduce);
  if (c.needs_critic()) {
    s.critic = std::make_unique<Critic>(c.model.path, s.dtype, s.device, derive_seed(c.trainer.seed, 0xc417));
    s.critic->set_activation_checkpointing(c.model.activation_checkpointing);
    s.critic_optimizer =
        std::make_unique<DataParallelOptimizer>(s.critic->named_parameters(), c.critic.optim, *s.pg,
                                                c.distributed.zero_stage, bucket_bytes, c.distributed.overlap_grad_reduce);
  }
  s.kl_ctrl = make_kl_controller(c.algorithm.kl_ctrl);

  // Stop tokens: the tokenizer's EOS and the model's (generation) EOS ids.
  if (auto eos = s.tokenizer->eos_id()) s.eos_ids.push_back(*eos);
  for (auto id : mc.eos_token_ids)
    if (std::find(s.eos_ids.begin(), s.eos_ids.end(), id) == s.eos_ids.end()) s.eos_ids.push_back(id);
  if (s.eos_ids.empty())
    throw ConfigError("neither the tokenizer in '" + s.tokenizer_dir + "' nor " + c.model.path +
                      "/config.json names an EOS token; set eos_token in tokenizer_config.json");
  s.pad_id = s.tokenizer->pad_id().value_or(s.eos_ids.front());

  // Resume.
  std::string resume_dir;
  if (c.trainer.resume == "auto") resume_dir = latest_checkpoint(c.trainer.run_dir);
  else if (c.trainer.resume != "off") resume_dir = c.trainer.resume;
  if (!resume_dir.empty()) {
    // A corrupt newest checkpoint falls back to the previous one (auto only).
    auto candidates = c.trainer.resume == "auto" ? list_checkpoints(c.trainer.run_dir)
                                                 : std::vector<std::pair<int64_t, std::string>>{{-1, resume_dir}};
    std::string last_error;
    bool loaded_one = false;
    for (const auto& [step, dir] : candidates) {
      try {
        s.load_checkpoint(dir);
        loaded_one = true;
        break;
      } catch (const std::exception& e) {
        if (c.trainer.resume != "auto") throw;
        last_error = e.what();
        logging::warn("checkpoint {} cannot be loaded ({}); trying the previous one", dir, e.what());
      }
    }
    if (!loaded_one && !candidates.empty())
      throw Error("no checkpoint in " + c.trainer.run_dir + "/checkpoints could be loaded (last error: " + last_error +
                  "); move them away or set trainer.resume=off with a new run_dir");
  }
  // Every rank starts from rank 0's weights (also after a resume, which every rank read itself).
  s.optimizer->broadcast_parameters(0);
  if (s.critic) s.critic_optimizer->broadcast_parameters(0);
  if (s.critic) s.place_critic(false);
  if (s.optimizer->sharded())
    logging::info("ZeRO-1: this rank keeps the AdamW state of {:.2f}M of the actor's {:.2f}M parameters",
                  static_cast<double>(s.optimizer->owned_parameters()) / 1e6,
                  static_cast<double>(mc.num_parameters()) / 1e6);
  if (s.pg->is_main()) {
    MetricsLoggerOptions log_options = metrics_logger_options(c.logging);
    if (s.step > 0) log_options.resume_step = s.step;
    s.logger = std::make_unique<MetricsLogger>(c.trainer.run_dir, log_options);
  }
  logging::info("{}: actor {:.2f}M parameters ({}), reference {}, critic {}, {} steps{}", c.algorithm.name,
                static_cast<double>(mc.num_parameters()) / 1e6, dtype_name(s.dtype),
                s.reference ? "loaded" : "off", s.critic ? "loaded" : "off", c.trainer.total_steps,
                s.step ? ", resumed at step " + std::to_string(s.step) : "");
}

Trainer::~Trainer() = default;
int64_t Trainer::step() const { return s_->step; }
int64_t Trainer::resumed_from() const { return s_->resumed_from; }

// ------------------------------------------------------------------------------------------------
// Rollouts.

std::vector<int64_t> Trainer::State::encode_prompt(const std::string& text) const {
  std::vector<int64_t> ids = tokenizer->encode(text, false);
  if (static_cast<int64_t>(ids.size()) > config.data.max_prompt_length)
    throw ConfigError("a prompt has " + std::to_string(ids.size()) + " tokens, more than data.max_prompt_length = " +
                      std::to_string(config.data.max_prompt_length) + "; raise data.max_prompt_length");
  if (ids.empty()) throw Error("a prompt encodes to no token; check data.prompt_template");
  return ids;
}

std::vector<Rollout> Trainer::State::generate_rollouts(const std::vector<Problem>& batch, int64_t n, bool greedy,
                                                       double temperature, uint64_t seed, ProgressBar* progress,
                                                       int64_t first_index) {
  const TrainConfig& c = config;
  std::vector<Rollout> out;
  const int64_t prompts_per_chunk = std::max<int64_t>(1, c.rollout.micro_batch_size / n);
  actor->eval();
  AutocastGuard autocast(device, bf16_autocast);
  for (size_t start = 0; start < batch.size(); start += prompts_per_chunk) {
    const size_t end = std::min(batch.size(), start + static_cast<size_t>(prompts_per_chunk));
    std::vector<std::string> prompt_texts;
    std::vector<std::vector<int64_t>> prompt_ids;
    int64_t P = 0;
    for (size_t i = start; i < end; ++i) {
      prompt_texts.push_back(task->prompt(batch[i]));
      prompt_ids.push_back(encode_prompt(prompt_texts.back()));
      P = std::max<int64_t>(P, static_cast<int64_t>(prompt_ids.back().size()));
    }
    const int64_t B = static_cast<int64_t>(prompt_ids.size());
    at::Tensor ids = torch::full({B, P}, pad_id, torch::kLong);
    at::Tensor mask = torch::zeros({B, P}, torch::kLong);
    for (int64_t b = 0; b < B; ++b) {
      const auto& p = prompt_ids[b];
      const int64_t len = static_cast<int64_t>(p.size());
      ids[b].narrow(0, P - len, len).copy_(torch::tensor(p, torch::kLong));
      mask[b].narrow(0, P - len, len).fill_(1);
    }
    ids = ids.to(device);
    mask = mask.to(device);
    GenerateOptions opt;
    opt.max_new_tokens = c.data.max_response_length;
    opt.sampling.greedy = greedy || temperature == 0;
    opt.sampling.temperature = temperature > 0 ? temperature : 1.0;
    opt.sampling.top_k = greedy ? 0 : c.rollout.top_k;
    opt.sampling.top_p = greedy ? 1.0 : c.rollout.top_p;
    opt.eos_ids = eos_ids;
    opt.pad_id = pad_id;
    opt.num_samples = n;
    // Seeded by the chunk's first prompt's index in the global batch: the same prompts get the same
    // samples whichever rank generates them.
    opt.seed = derive_seed(seed, static_cast<uint64_t>(first_index) + start);
    if (!c.rollout.stop.empty()) {
      const Tokenizer* tok = tokenizer.get();
      const std::vector<std::string> stops = c.rollout.stop;
      opt.stop_check = [tok, stops](const std::vector<std::vector<int64_t>>& rows) {
        return stop_string_lengths(*tok, rows, stops);
      };
    }
    GenerateResult gen = generate(*actor, ids, mask, opt);

    Rollout r;
    const int64_t rows = B * n;
    const int64_t R = std::max<int64_t>(1, gen.ids.size(1));
    at::Tensor resp = gen.ids.size(1) > 0 ? gen.ids : torch::full({rows, 1}, pad_id, torch::kLong).to(device);
    at::Tensor lengths = gen.lengths.to(torch::kCPU);
    at::Tensor rmask = (torch::arange(R).unsqueeze(0) < lengths.unsqueeze(1)).to(torch::kFloat);  // (rows, R)
    r.prompt_len = P;
    r.input_ids = torch::cat({ids.repeat_interleave(n, 0), resp}, 1);
    r.attention_mask = torch::cat({mask.repeat_interleave(n, 0), rmask.to(torch::kLong).to(device)}, 1);
    r.response_mask = rmask.to(device);
    r.sample_log_probs =
        gen.ids.size(1) > 0 ? gen.logprobs : torch::zeros({rows, 1}, torch::kFloat).to(device);  // (rows, R)
    std::vector<float> scores(static_cast<size_t>(rows));
    at::Tensor resp_cpu = resp.to(torch::kCPU);
    auto acc = resp_cpu.accessor<int64_t, 2>();
    auto len_acc = lengths.accessor<int64_t, 1>();
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t b = row / n;
      std::vector<int64_t> resp_ids(acc[row].data(), acc[row].data() + len_acc[row]);
      const std::string response = tokenizer->decode(resp_ids, false);
      RewardResult reward = task->score(prompt_texts[b], response, batch[start + b]);
      scores[row] = static_cast<float>(reward.score);
      r.group.push_back(static_cast<int64_t>(b));
      r.correct.push_back(reward.correct);
      r.format_ok.push_back(reward.format_ok);
      r.truncated.push_back(gen.finish[row] == FinishReason::kLength);
      r.prompts.push_back(prompt_texts[b]);
      r.responses.push_back(response);
    }
    r.scores = torch::tensor(scores);
    out.push_back(std::move(r));
    if (progress) progress->advance(rows);
  }
  return out;
}

// Log-probs of the response tokens of `rows` of `r` under `model`: (rows, R). The token at response
// position j is predicted at sequence position P - 1 + j.
at::Tensor Trainer::State::response_log_probs(CausalLMImpl& model, const Rollout& r, const std::vector<int64_t>& rows,
                                              bool with_grad, at::Tensor* entropy) {
  at::Tensor index = row_index(rows, device);
  const int64_t P = r.prompt_len, R = r.response_len();
  // Only as wide as the longest response among these rows, then padded back to R with zeros, which the
  // masks ignore.
  const int64_t width = response_width(r, index);
  at::Tensor ids = r.input_ids.index_select(0, index).narrow(1, 0, P + width);
  at::Tensor mask = r.attention_mask.index_select(0, index).narrow(1, 0, P + width);
  LogProbOptions opt;
  opt.temperature = config.rollout.temperature > 0 ? config.rollout.temperature : 1.0;
  opt.with_entropy = entropy != nullptr;
  std::unique_ptr<torch::NoGradGuard> no_grad;
  if (!with_grad) no_grad = std::make_unique<torch::NoGradGuard>();
  AutocastGuard autocast(device, bf16_autocast);
  TokenLogProbs lp = token_logprobs(model, ids, mask, opt);  // (rows, P + width - 1)
  auto to_full_width = [&](const at::Tensor& t) {
    return at::constant_pad_nd(t.narrow(1, P - 1, width), {0, R - width}, 0);
  };
  if (entropy) *entropy = to_full_width(lp.entropy);
  return to_full_width(lp.logprobs);
}

at::Tensor Trainer::State::batched_log_probs(CausalLMImpl& model, const Rollout& r) {
  return by_length_chunks(r, config.rollout.log_prob_micro_batch_size, [&](const std::vector<int64_t>& rows) {
    return response_log_probs(model, r, rows, false, nullptr);
  });
}

// Critic values of the response positions of `rows`, (rows, R): the value of the state before response
// token j is read at sequence position P - 1 + j, where the token's log-prob is. Like response_log_probs,
// the pass is only as wide as the longest of these responses.
at::Tensor Trainer::State::critic_values(const Rollout& r, const std::vector<int64_t>& rows) {
  at::Tensor index = row_index(rows, device);
  const int64_t P = r.prompt_len, R = r.response_len(), width = response_width(r, index);
  AutocastGuard autocast(device, bf16_autocast);
  at::Tensor v = critic->values(r.input_ids.index_select(0, index).narrow(1, 0, P + width),
                                r.attention_mask.index_select(0, index).narrow(1, 0, P + width));
  return at::constant_pad_nd(v.narrow(1, P - 1, width), {0, R - width}, 0);
}

at::Tensor Trainer::State::batched_values(const Rollout& r) {
  torch::NoGradGuard no_grad;
  critic->train(false);
  return by_length_chunks(r, config.rollout.log_prob_micro_batch_size,
                          [&](const std::vector<int64_t>& rows) { return critic_values(r, rows); });
}

std::pair<int64_t, int64_t> Trainer::State::update_batch_rows(const Rollout& r, int64_t micro_batch_size) const {
  const TrainConfig& c = config;
  const int64_t mini_rows = std::min<int64_t>(r.rows(), c.actor.ppo_mini_batch_size * c.rollout.n / world());
  const int64_t micro_rows =
      c.actor.use_dynamic_bsz ? std::max<int64_t>(1, c.actor.ppo_max_token_len / (r.prompt_len + r.response_len()))
                              : micro_batch_size;
  return {mini_rows, micro_rows};
}

void Trainer::State::place_reference(bool in_use) {
  if (reference && config.reference.offload && device.is_cuda()) reference->to(in_use ? device : at::Device(at::kCPU));
}

void Trainer::State::place_critic(bool in_use) {
  if (critic && config.critic.offload && device.is_cuda()) critic->to(in_use ? device : at::Device(at::kCPU));
}

double Trainer::State::apply_update(DataParallelOptimizer& opt, const OptimConfig& optim, double lr,
                                    const char* what) {
  const double norm = opt.reduce_and_clip(optim.grad_clip);  // the same norm on every rank
  if (!std::isfinite(norm)) {
    ++nonfinite_total;
    if (++nonfinite_in_a_row >= config.trainer.max_consecutive_nonfinite)
      throw Error(std::string(what) + " gradients were non-finite in " + std::to_string(nonfinite_in_a_row) +
                  " optimizer steps in a row (step " + std::to_string(step) + "); lower " + what +
                  ".optim.lr, keep " + what + ".optim.grad_clip on, or use model.dtype=float32");
    opt.zero_grad();
    return NAN;
  }
  nonfinite_in_a_row = 0;
  opt.step(lr);
  return norm;
}

at::Tensor Trainer::State::whiten_over_ranks(const at::Tensor& values, const at::Tensor& mask) {
  const at::Tensor v = values.to(at::kDouble) * mask, m = mask.to(at::kDouble);
  std::vector<double> sums = pg->all_reduce({m.sum().item<double>(), v.sum().item<double>()}, ReduceOp::kSum);
  const double count = sums[0], mean = sums[1] / std::max(1.0, count);
  const double sq = sum_over_ranks((((values.to(at::kDouble) - mean) * m).pow(2)).sum().item<double>());
  const double var = count > 1 ? sq / (count - 1) : 0.0;
  return ((values - mean) * (1.0 / std::sqrt(var + 1e-8))).to(values.scalar_type()) * mask;
}

// PPO's value update (veRL's update_critic): the clipped value loss of the critic's new predictions
// against the GAE returns, over the same epochs and mini-batches as the actor.
void Trainer::State::update_critic(const Rollout& r, Metrics& m) {
  const TrainConfig& c = config;
  const auto t0 = Clock::now();
  place_critic(true);
  critic->train(true);
  const int64_t B = r.rows();
  const auto [mini_rows, micro_rows] = update_batch_rows(r, c.critic.ppo_micro_batch_size);
  const std::vector<int64_t> row_lengths = response_lengths(r);
  LossAggregation agg;
  agg.mode = LossAggMode::kTokenMean;
  const double lr = learning_rate_at(c.critic.optim, step, c.trainer.total_steps);
  double loss_sum = 0, clip_sum = 0, weight_sum = 0, norm_sum = 0;
  int64_t steps = 0, minis = 0;
  for_each_update(
      B, mini_rows, micro_rows, c.actor.ppo_epochs, c.trainer.seed ^ 0xc417, step,
      [&](const std::vector<int64_t>& mini) {
        agg.denominator = sum_over_ranks(
            agg_loss_local_denominator(r.response_mask.index_select(0, row_index(mini, device)), agg.mode));
        critic_optimizer->zero_grad();
        ++minis;
      },
      [&](const std::vector<int64_t>& rows, bool last) {
        at::Tensor idx = row_index(rows, device);
        at::Tensor rmask = r.response_mask.index_select(0, idx);
        at::Tensor vpreds = critic_values(r, rows);  // (rows, R)
        ValueLossResult vl = compute_value_loss(vpreds, r.returns.index_select(0, idx), r.values.index_select(0, idx),
                                                rmask, c.critic.cliprange_value, agg);
        if (last) critic_optimizer->arm_overlap();
        vl.vf_loss.backward();
        const double w = rmask.sum().item<double>();
        loss_sum += vl.vf_loss.item<double>();
        clip_sum += vl.vf_clipfrac.item<double>() * w;
        weight_sum += w;
      },
      [&] {
        const double norm = apply_update(*critic_optimizer, c.critic.optim, lr, "critic");
        if (std::isfinite(norm)) norm_sum += norm, ++steps;
      },
      &row_lengths);
  critic->train(false);
  place_critic(false);
  const std::vector<double> sum = pg->all_reduce({loss_sum, clip_sum, weight_sum}, ReduceOp::kSum);
  m["critic/vf_loss"] = sum[0] / static_cast<double>(std::max<int64_t>(1, minis));
  m["critic/vf_clipfrac"] = sum[2] > 0 ? sum[1] / sum[2] : 0;
  m["critic/grad_norm"] = steps ? norm_sum / static_cast<double>(steps) : NAN;
  m["critic/lr"] = lr;
  m["timing_s/update_critic"] = seconds_since(t0);
}

// ------------------------------------------------------------------------------------------------
// The RL step.

Metrics Trainer::State::rl_step() {
  const TrainConfig& c = config;
  const auto t_step = Clock::now();
  Metrics m;
  const int64_t n = c.rollout.n;
  // Every rank draws the same global batch from the data order and keeps its contiguous share.
  const auto [share_begin, share_end] = my_share(c.data.train_batch_size);
  const int64_t want_groups = share_end - share_begin;

  // 1. Rollouts (with DAPO dynamic sampling: keep only groups whose rewards differ, refill).
  auto t0 = Clock::now();
  std::vector<Rollout> kept;
  int64_t kept_groups = 0, rounds = 0;
  std::vector<float> all_scores;
  std::vector<bool> all_correct, all_format;
  while (kept_groups < want_groups) {
    std::vector<Problem> batch;
    const std::vector<int64_t> picks = cursor->next(c.data.train_batch_size);
    for (int64_t i = share_begin; i < share_end; ++i) batch.push_back(problems.train[static_cast<size_t>(picks[i])]);
    ProgressBar bar("rollout", static_cast<int64_t>(batch.size()) * n, c.logging.progress && pg->is_main());
    auto parts = generate_rollouts(batch, n, false, c.rollout.temperature,
                                   derive_seed(c.trainer.seed, static_cast<uint64_t>(step), static_cast<uint64_t>(rounds)),
                                   &bar, share_begin);
    Rollout r = concat_rollouts(parts, pad_id);
    ++rounds;
    auto score_of = r.scores.accessor<float, 1>();
    for (int64_t i = 0; i < r.rows(); ++i) {
      all_scores.push_back(score_of[i]);
      all_correct.push_back(r.correct[i]);
      all_format.push_back(r.format_ok[i]);
    }
    if (!c.algorithm.filter_groups) {
      kept.push_back(std::move(r));
      kept_groups = want_groups;
      break;
    }
    std::vector<bool> keep = dynamic_sampling_keep(r.scores, r.group);
    std::vector<int64_t> rows;
    for (int64_t row = 0; row < r.rows(); row += n) {
      if (!keep[row] || kept_groups >= want_groups) continue;
      for (int64_t j = 0; j < n; ++j) rows.push_back(row + j);
      ++kept_groups;
    }
    if (!rows.empty()) kept.push_back(select_rows(r, rows));
    if (c.algorithm.max_num_gen_batches > 0 && rounds >= c.algorithm.max_num_gen_batches) break;
  }
  m["timing_s/gen"] = seconds_since(t0);
  m["dapo/generation_rounds"] = static_cast<double>(rounds);
  if (kept.empty()) {
    // Every group had equal rewards in every round: nothing to learn from this step.
    m["training/skipped_no_signal"] = 1;
    m[mn::kScoreMean] = at::mean(torch::tensor(all_scores)).item<double>();
    m[mn::kSuccessRate] = mean_of(all_correct);
    m[mn::kFormatRate] = mean_of(all_format);
    m[mn::kTimingStep] = seconds_since(t_step);
    return m;
  }
  Rollout r = concat_rollouts(kept, pad_id);
  const int64_t B = r.rows();

  // 2. Rewards: score on the last response token, optional overlong penalty.
  at::Tensor scores = r.scores.to(device);
  if (c.algorithm.overlong_buffer.enable) {
    at::Tensor penalty = overlong_penalty(r.response_mask, c.data.max_response_length, c.algorithm.overlong_buffer.len,
                                          c.algorithm.overlong_buffer.penalty_factor);
    m["dapo/overlong_penalty/mean"] = penalty.mean().item<double>();
    scores = scores + penalty.to(scores.device());
  }
  at::Tensor token_scores = scores_to_token_level(scores, r.response_mask);  // (B, R)

  // 3. Old and reference log-probs. Exactly on-policy (one epoch, one mini-batch, no KL in the reward)
  // the old log-probs equal the current ones at update time, so no extra pass is needed.
  const bool on_policy = c.actor.ppo_epochs == 1 && c.actor.ppo_mini_batch_size == c.data.train_batch_size &&
                         !c.algorithm.use_kl_in_reward && !c.algorithm.filter_groups;
  // With rollout.reuse_log_probs the sampler's own log-probs (same weights, same temperature) stand in.
  t0 = Clock::now();
  if (!on_policy)
    r.old_log_probs = c.rollout.reuse_log_probs ? r.sample_log_probs : batched_log_probs(*actor, r);
  m["timing_s/old_log_prob"] = seconds_since(t0);
  t0 = Clock::now();
  if (reference) {
    place_reference(true);
    r.ref_log_probs = batched_log_probs(*reference, r);
    place_reference(false);
  }
  m[mn::kTimingRef] = seconds_since(t0);
  if (critic) {
    t0 = Clock::now();
    place_critic(true);
    r.values = batched_values(r);
    place_critic(false);
    m["timing_s/values"] = seconds_since(t0);
  }

  // 4. KL in the reward and advantages.
  at::Tensor token_rewards = token_scores;
  if (c.algorithm.use_kl_in_reward && reference) {
    KlRewardResult kr = apply_kl_penalty(token_scores, r.old_log_probs, r.ref_log_probs, r.response_mask,
                                         kl_ctrl->value(), parse_kl_estimator(c.algorithm.kl_penalty));
    token_rewards = kr.token_level_rewards;
    // The batch's mean KL over all ranks (current_kl is this rank's mean over its B sequences).
    const double current_kl = sum_over_ranks(kr.current_kl * static_cast<double>(B)) / static_cast<double>(B * world());
    m[mn::kRewardKlPenalty] = current_kl;
    m[mn::kRewardKlPenaltyCoeff] = kl_ctrl->value();
    kl_ctrl->update(current_kl, B * world());
  }
  t0 = Clock::now();
  AdvantageResult adv;
  if (critic) {
    // Whitened over the whole batch: across ranks when there are several.
    adv = compute_gae_advantage_return(token_rewards, r.values, r.response_mask, c.algorithm.gamma, c.algorithm.lam,
                                       world() == 1);
    if (world() > 1) adv.advantages = whiten_over_ranks(adv.advantages, r.response_mask);
  } else if (c.algorithm.name == "rloo")
    adv = compute_rloo_outcome_advantage(token_rewards, r.response_mask, r.group);
  else
    adv = compute_grpo_outcome_advantage(token_rewards, r.response_mask, r.group, 1e-6, c.algorithm.norm_adv_by_std);
  r.advantages = adv.advantages;
  m["timing_s/adv"] = seconds_since(t0);
  if (critic) {
    r.returns = adv.returns;
    const at::Tensor valid = r.response_mask > 0;
    const at::Tensor v = r.values.masked_select(valid).to(at::kDouble), ret = r.returns.masked_select(valid).to(at::kDouble);
    const at::Tensor d = ret - v;
    const std::vector<double> sum = pg->all_reduce({static_cast<double>(v.numel()), v.sum().item<double>(),
                                                    ret.sum().item<double>(), ret.pow(2).sum().item<double>(),
                                                    d.sum().item<double>(), d.pow(2).sum().item<double>()},
                                                   ReduceOp::kSum);
    const bool any = v.numel() > 0;
    const double vmax = pg->all_reduce(any ? v.max().item<double>() : -INFINITY, ReduceOp::kMax);
    const double vmin = pg->all_reduce(any ? v.min().item<double>() : INFINITY, ReduceOp::kMin);
    const double count = sum[0];
    if (count > 1) {
      auto var = [count](double s1, double s2) { return (s2 - s1 * s1 / count) / (count - 1); };
      m["critic/values/mean"] = sum[1] / count;
      m["critic/values/max"] = vmax;
      m["critic/values/min"] = vmin;
      m["critic/returns/mean"] = sum[2] / count;
      // The share of the returns' variance the values explain (1 = perfect, 0 = no better than a constant).
      m["critic/vf_explained_var"] = 1.0 - var(sum[4], sum[5]) / (var(sum[2], sum[3]) + 1e-8);
    }
    update_critic(r, m);
  }

  // 5. Policy update: ppo_epochs x mini-batches x micro-batches.
  t0 = Clock::now();
  actor->train();
  PolicyLossOptions pl = policy_loss_options(c.actor);
  const KlEstimator kl_type = parse_kl_estimator(c.actor.kl_loss_type);
  const bool kl_loss = c.actor.use_kl_loss && reference;
  const auto [mini_rows, micro_rows] = update_batch_rows(r, c.actor.ppo_micro_batch_size);
  double pg_loss_sum = 0, kl_sum = 0, ent_sum = 0, clip_sum = 0, clip_lower_sum = 0, ppo_kl_sum = 0, weight_sum = 0;
  double grad_norm_sum = 0;
  int64_t optimizer_steps = 0, skipped = 0;
  const double lr = learning_rate_at(c.actor.optim, step, c.trainer.total_steps);
  // Response lengths: the update's micro-batch grouping, then the length metrics.
  const std::vector<int64_t> row_lengths = response_lengths(r);
  for_each_update(
      B, mini_rows, micro_rows, c.actor.ppo_epochs, c.trainer.seed ^ 0x5eed, step,
      [&](const std::vector<int64_t>& mini) {
        // The mini-batch's own count over all ranks, so micro-batch losses (and ranks' gradients) add up to
        // the mini-batch loss.
        pl.agg.denominator = sum_over_ranks(
            agg_loss_local_denominator(r.response_mask.index_select(0, row_index(mini, device)), pl.agg.mode));
        optimizer->zero_grad();
      },
      [&](const std::vector<int64_t>& rows, bool last) {
        at::Tensor idx = row_index(rows, device);
        at::Tensor entropy;
        at::Tensor log_prob = response_log_probs(*actor, r, rows, true, c.actor.entropy_coeff > 0 ? &entropy : nullptr);
        at::Tensor rmask = r.response_mask.index_select(0, idx);
        at::Tensor old = on_policy ? log_prob.detach() : r.old_log_probs.index_select(0, idx);
        PolicyLossResult res = compute_policy_loss(old, log_prob, r.advantages.index_select(0, idx), rmask, pl);
        at::Tensor loss = res.pg_loss;
        if (c.actor.entropy_coeff > 0) {
          at::Tensor ent = agg_loss(entropy, rmask, pl.agg);
          loss = loss - c.actor.entropy_coeff * ent;
          ent_sum += ent.item<double>();
        }
        if (kl_loss) {
          at::Tensor kl = agg_loss(kl_penalty(log_prob, r.ref_log_probs.index_select(0, idx), kl_type), rmask, pl.agg);
          loss = loss + c.actor.kl_loss_coef * kl;
          kl_sum += kl.item<double>();
        }
        if (last) optimizer->arm_overlap();
        loss.backward();
        const double w = rmask.sum().item<double>();
        pg_loss_sum += res.pg_loss.item<double>();
        clip_sum += res.pg_clipfrac.item<double>() * w;
        clip_lower_sum += res.pg_clipfrac_lower.item<double>() * w;
        ppo_kl_sum += res.ppo_kl.item<double>() * w;
        weight_sum += w;
      },
      [&] {
        const double norm = apply_update(*optimizer, c.actor.optim, lr, "actor");
        if (!std::isfinite(norm)) {
          ++skipped;
          return;
        }
        grad_norm_sum += norm;
        ++optimizer_steps;
      },
      &row_lengths);
  m[mn::kTimingUpdateActor] = seconds_since(t0);

  // 6. Metrics over all ranks: sums and counts are added and extremes reduced before dividing.
  const int64_t mini_batches = std::max<int64_t>(1, c.actor.ppo_epochs * ((B + mini_rows - 1) / mini_rows));
  const double updates = static_cast<double>(mini_batches);
  const at::Tensor seq_scores = torch::tensor(all_scores).to(torch::kDouble);
  const at::Tensor adv_valid = r.advantages.masked_select(r.response_mask > 0).to(torch::kCPU).to(torch::kDouble);
  const bool has_adv = adv_valid.numel() > 0;
  const at::Tensor lengths = torch::tensor(row_lengths).to(torch::kDouble);
  auto count_of = [](const std::vector<bool>& flags) {
    return static_cast<double>(std::count(flags.begin(), flags.end(), true));
  };
  const std::vector<double> sum = pg->all_reduce(
      {static_cast<double>(seq_scores.numel()), seq_scores.sum().item<double>(), token_rewards.sum().item<double>(),
       static_cast<double>(B), adv_valid.sum().item<double>(), static_cast<double>(adv_valid.numel()),
       count_of(all_correct), count_of(all_format), lengths.sum().item<double>(), count_of(r.truncated),
       r.attention_mask.narrow(1, 0, r.prompt_len).sum().item<double>(), pg_loss_sum, kl_sum, ent_sum, clip_sum,
       clip_lower_sum, ppo_kl_sum, weight_sum, r.attention_mask.sum().item<double>()},
      ReduceOp::kSum);
  const std::vector<double> max = pg->all_reduce(
      {seq_scores.max().item<double>(), has_adv ? adv_valid.max().item<double>() : -INFINITY, lengths.max().item<double>()},
      ReduceOp::kMax);
  const std::vector<double> min = pg->all_reduce(
      {seq_scores.min().item<double>(), has_adv ? adv_valid.min().item<double>() : INFINITY, lengths.min().item<double>()},
      ReduceOp::kMin);
  const double scored = sum[0], rows = sum[3], adv_count = sum[5], weight = sum[17], tokens = sum[18];
  m[mn::kScoreMean] = sum[1] / scored;
  m["critic/score/max"] = max[0];
  m["critic/score/min"] = min[0];
  m[mn::kRewardsMean] = sum[2] / rows;
  m[mn::kAdvantagesMean] = adv_count > 0 ? sum[4] / adv_count : 0.0;
  m["critic/advantages/max"] = adv_count > 0 ? max[1] : 0.0;
  m["critic/advantages/min"] = adv_count > 0 ? min[1] : 0.0;
  m[mn::kSuccessRate] = sum[6] / scored;
  m[mn::kFormatRate] = sum[7] / scored;
  m[mn::kResponseLengthMean] = sum[8] / rows;
  m["response_length/max"] = max[2];
  m["response_length/min"] = min[2];
  m[mn::kResponseLengthClipRatio] = sum[9] / rows;
  m["prompt_length/mean"] = sum[10] / rows;
  m[mn::kPgLoss] = sum[11] / updates;
  if (kl_loss) m[mn::kKlLoss] = sum[12] / updates;
  if (c.actor.entropy_coeff > 0) m[mn::kEntropy] = sum[13] / updates;
  m[mn::kPgClipfrac] = weight > 0 ? sum[14] / weight : 0;
  m[mn::kPgClipfracLower] = weight > 0 ? sum[15] / weight : 0;
  m[mn::kPpoKl] = weight > 0 ? sum[16] / weight : 0;
  m[mn::kGradNorm] = optimizer_steps ? grad_norm_sum / static_cast<double>(optimizer_steps) : NAN;
  m[mn::kLr] = lr;
  m["training/nonfinite_skipped"] = static_cast<double>(skipped);
  m["training/epoch"] = static_cast<double>(cursor->epoch());
  if (world() > 1) m["perf/grad_buckets_overlapped"] = optimizer->overlapped_share();
  const double step_time = seconds_since(t_step);
  m[mn::kTimingStep] = step_time;
  m[mn::kThroughput] = tokens / step_time;
  m["perf/gen_tokens_per_s"] = sum[8] / std::max(1e-9, m["timing_s/gen"]);
  m["perf/total_num_tokens"] = tokens;

  if (c.logging.sample_freq > 0 && step % c.logging.sample_freq == 0 && pg->is_main()) {
    for (int64_t i = 0; i < std::min<int64_t>(c.logging.num_samples, B); ++i)
      logging::info("sample (step {}, score {:.2f}): {}{}", step, r.scores[i].item<double>(),
                    r.prompts[i].substr(r.prompts[i].size() > 160 ? r.prompts[i].size() - 160 : 0),
                    r.responses[i]);
  }
  return m;
}

// ------------------------------------------------------------------------------------------------
// SFT.

Metrics Trainer::State::sft_step() {
  const TrainConfig& c = config;
  const auto t_step = Clock::now();
  actor->train();
  const std::vector<int64_t> all_picks = cursor->next(c.data.train_batch_size);
  const auto [share_begin, share_end] = my_share(c.data.train_batch_size);  // this rank's examples
  const std::vector<int64_t> picks(all_picks.begin() + share_begin, all_picks.begin() + share_end);
  // Tokenise: prompt tokens then response tokens (+ EOS); loss on response tokens only.
  struct Row {
    std::vector<int64_t> ids;
    int64_t prompt_len;
  };
  std::vector<Row> rows;
  for (int64_t i : picks) {
    const SftExample& ex = sft_examples[static_cast<size_t>(i)];
    Row row;
    row.ids = encode_prompt(ex.prompt);
    row.prompt_len = static_cast<int64_t>(row.ids.size());
    std::vector<int64_t> resp = tokenizer->encode(ex.response, false);
    resp.push_back(eos_ids.front());
    if (static_cast<int64_t>(resp.size()) > c.data.max_response_length) resp.resize(c.data.max_response_length);
    row.ids.insert(row.ids.end(), resp.begin(), resp.end());
    rows.push_back(std::move(row));
  }
  const double lr = learning_rate_at(c.actor.optim, step, c.trainer.total_steps);
  const int64_t micro = c.actor.ppo_micro_batch_size;
  // Micro-batches of similar lengths, each padded to its own longest row: with traces of varying length
  // most of a batch padded to its longest row is padding. The loss is a sum, so the order is free.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.ids.size() < b.ids.size(); });
  // Token-mean over the whole batch: each micro-batch's sum is divided by the batch's response tokens.
  double total_tokens = 0;
  for (const auto& row : rows) total_tokens += static_cast<double>(row.ids.size()) - static_cast<double>(row.prompt_len);
  total_tokens = sum_over_ranks(total_tokens);
  optimizer->zero_grad();
  double loss_sum = 0;
  AutocastGuard autocast(device, bf16_autocast);
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(micro)) {
    const size_t end = std::min(rows.size(), start + static_cast<size_t>(micro));
    int64_t T = 0;
    for (size_t i = start; i < end; ++i) T = std::max<int64_t>(T, static_cast<int64_t>(rows[i].ids.size()));
    const int64_t mb = static_cast<int64_t>(end - start);
    at::Tensor ids = torch::full({mb, T}, pad_id, torch::kLong);
    at::Tensor mask = torch::zeros({mb, T}, torch::kLong);
    at::Tensor target_mask = torch::zeros({mb, T - 1}, torch::kFloat);  // 1 where ids[t+1] is a response token
    for (int64_t b = 0; b < mb; ++b) {
      const Row& row = rows[start + static_cast<size_t>(b)];
      const int64_t len = static_cast<int64_t>(row.ids.size());
      ids[b].narrow(0, T - len, len).copy_(torch::tensor(row.ids, torch::kLong));  // left padding, as in rollouts
      mask[b].narrow(0, T - len, len).fill_(1);
      target_mask[b].narrow(0, T - len + row.prompt_len - 1, len - row.prompt_len).fill_(1);
    }
    TokenLogProbs lp = token_logprobs(*actor, ids.to(device), mask.to(device), LogProbOptions{});
    at::Tensor loss = -(lp.logprobs * target_mask.to(device)).sum() / total_tokens;
    if (end == rows.size()) optimizer->arm_overlap();
    loss.backward();
    loss_sum += loss.item<double>();
  }
  const double norm = apply_update(*optimizer, c.actor.optim, lr, "actor");
  Metrics m;
  if (!std::isfinite(norm)) m["training/nonfinite_skipped"] = 1;
  m["sft/loss"] = sum_over_ranks(loss_sum);
  m[mn::kGradNorm] = norm;
  m[mn::kLr] = lr;
  m["training/epoch"] = static_cast<double>(cursor->epoch());
  m[mn::kTimingStep] = seconds_since(t_step);
  m[mn::kThroughput] = total_tokens / m[mn::kTimingStep];
  return m;
}

// ------------------------------------------------------------------------------------------------
// Validation, checkpoints, the loop.

Metrics Trainer::train_step() {
  Metrics m = s_->is_sft() ? s_->sft_step() : s_->rl_step();
  ++s_->step;
  m["training/global_step"] = static_cast<double>(s_->step);
  if (s_->logger) s_->logger->log(s_->step, m);
  return m;
}

Metrics Trainer::validate() {
  State& s = *s_;
  const TrainConfig& c = s.config;
  Metrics m;
  if (s.problems.val.empty()) return m;
  const auto t0 = Clock::now();
  const int64_t batch = c.data.val_batch_size > 0 ? c.data.val_batch_size : c.rollout.micro_batch_size;
  double score_sum = 0;
  int64_t correct = 0, format = 0, count = 0;
  double length_sum = 0;
  std::string generations;  // JSONL for trainer.validation_data_dir
  // Each rank validates its contiguous share of the held-out set; the sums are added over ranks.
  const auto [share_begin, share_end] = s.my_share(static_cast<int64_t>(s.problems.val.size()));
  ProgressBar bar("validation", share_end - share_begin, c.logging.progress && s.pg->is_main());
  for (size_t start = static_cast<size_t>(share_begin); start < static_cast<size_t>(share_end);
       start += static_cast<size_t>(batch)) {
    std::vector<Problem> chunk(s.problems.val.begin() + start,
                               s.problems.val.begin() + std::min(static_cast<size_t>(share_end), start + static_cast<size_t>(batch)));
    const bool greedy = c.rollout.val_temperature == 0;
    auto parts = s.generate_rollouts(chunk, 1, greedy, c.rollout.val_temperature,
                                     derive_seed(c.trainer.seed, 0x7a1, static_cast<uint64_t>(s.step), start), &bar);
    int64_t index = static_cast<int64_t>(start);
    for (auto& r : parts) {
      score_sum += r.scores.sum().item<double>();
      length_sum += r.response_mask.sum().item<double>();
      for (int64_t i = 0; i < r.rows(); ++i) {
        correct += r.correct[i], format += r.format_ok[i], ++count;
        if (!c.trainer.validation_data_dir.empty())
          generations += nlohmann::json{{"index", index++}, {"prompt", r.prompts[i]}, {"response", r.responses[i]},
                                        {"score", r.scores[i].item<double>()}, {"correct", static_cast<bool>(r.correct[i])}}
                             .dump() + "\n";
      }
    }
  }
  if (!c.trainer.validation_data_dir.empty()) {
    const fs::path dir(c.trainer.validation_data_dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string name = checkpoint_name(s.step) + (s.world() > 1 ? ".rank" + std::to_string(s.pg->rank()) : "");
    write_file_atomic((dir / (name + ".jsonl")).string(), generations);
  }
  const std::vector<double> sum = s.pg->all_reduce(
      {score_sum, static_cast<double>(correct), static_cast<double>(format), length_sum, static_cast<double>(count)},
      ReduceOp::kSum);
  const std::string task = s.task->name();
  m[std::string(mn::kValTestScorePrefix) + task] = sum[0] / sum[4];
  m[std::string(mn::kValSuccessRatePrefix) + task] = sum[1] / sum[4];
  m[std::string(mn::kValFormatRatePrefix) + task] = sum[2] / sum[4];
  m["val/response_length/mean"] = sum[3] / sum[4];
  m["timing_s/validate"] = seconds_since(t0);
  s.last_validated = s.step;
  if (s.logger) s.logger->log(s.step, m);
  return m;
}

std::string Trainer::save_checkpoint() {
  State& s = *s_;
  const TrainConfig& c = s.config;
  // Every rank: check that the copies are identical, and gather sharded optimizer state to rank 0.
  const uint64_t hash = s.optimizer->check_in_sync("actor");
  if (s.critic) s.critic_optimizer->check_in_sync("critic");
  if (s.world() > 1)
    logging::info("step {}: actor parameters identical on all {} ranks (hash {:016x})", s.step, s.world(),
                  hash);
  std::vector<std::pair<std::string, at::Tensor>> actor_state = s.optimizer->gather_state(), critic_state;
  if (s.critic) critic_state = s.critic_optimizer->gather_state();
  fs::path root = fs::path(c.trainer.run_dir) / "checkpoints";
  const fs::path final_dir = root / checkpoint_name(s.step);
  if (!s.pg->is_main()) {  // rank 0 writes; the others wait until the checkpoint is complete
    s.pg->barrier();
    s.last_saved = s.step;
    return final_dir.string();
  }
  fs::create_directories(root);
  const fs::path staging = root / ("." + checkpoint_name(s.step) + ".staging");
  fs::remove_all(staging);
  // The actor as a Hugging Face directory (loads in transformers as is), then the trainer state;
  // trainer_state.json is written last and marks the checkpoint complete.
  save_causal_lm(*s.actor, staging.string(), s.dtype, s.tokenizer_dir);
  save_safetensors((staging / "optimizer.safetensors").string(), actor_state, {{"format", "tinyzero-adamw"}});
  if (s.critic) {  // PPO: the critic as its own HF directory (Qwen2ForTokenClassification) and its AdamW
    s.critic->save((staging / "critic").string(), s.dtype);
    save_safetensors((staging / "critic_optimizer.safetensors").string(), critic_state, {{"format", "tinyzero-adamw"}});
  }
  nlohmann::json state = {{"step", s.step},
                          {"optimizer_steps", s.optimizer->steps_taken()},
                          {"critic_optimizer_steps", s.critic_optimizer ? s.critic_optimizer->steps_taken() : 0},
                          {"data_epoch", s.cursor->epoch()},
                          {"data_position", s.cursor->position()},
                          {"kl_coef", s.kl_ctrl->value()},
                          {"nonfinite_total", s.nonfinite_total},
                          {"nonfinite_in_a_row", s.nonfinite_in_a_row},
                          {"algorithm", c.algorithm.name}};
  write_file_atomic((staging / "trainer_config.yaml").string(), dump_config(c));
  write_file_atomic((staging / "trainer_state.json").string(), state.dump(2) + "\n");
  fs::remove_all(final_dir);
  fs::rename(staging, final_dir);
  s.last_saved = s.step;
  // Prune older complete checkpoints beyond keep_last.
  if (c.trainer.keep_last > 0) {
    auto all = list_checkpoints(c.trainer.run_dir);
    for (size_t i = static_cast<size_t>(c.trainer.keep_last); i < all.size(); ++i) fs::remove_all(all[i].second);
  }
  logging::info("checkpoint {}", final_dir.string());
  s.pg->barrier();
  return final_dir.string();
}

void Trainer::State::load_checkpoint(const std::string& dir) {
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(read_file(dir + "/trainer_state.json"));
  } catch (const nlohmann::json::exception& e) {
    throw IoError("checkpoint " + dir + "/trainer_state.json is not valid JSON: " + e.what());
  }
  if (state.value("algorithm", config.algorithm.name) != config.algorithm.name)
    throw ConfigError("checkpoint " + dir + " was written by algorithm " + state.value("algorithm", std::string()) +
                      ", this run uses " + config.algorithm.name + "; use a new trainer.run_dir");
  HfWeights weights = HfWeights::open(dir);
  load_weights(*actor, weights);
  // Each rank reads the state of the parameters it updates (all of them unless ZeRO-1 shards them), so a
  // checkpoint resumes at any world size.
  optimizer->load_state(dir + "/optimizer.safetensors", state.at("optimizer_steps").get<int64_t>(), device);
  if (critic) {
    critic->load(dir + "/critic");
    critic_optimizer->load_state(dir + "/critic_optimizer.safetensors",
                                 state.at("critic_optimizer_steps").get<int64_t>(), device);
  }
  cursor->seek(state.at("data_epoch").get<int64_t>(), state.at("data_position").get<int64_t>());
  kl_ctrl->set_value(state.at("kl_coef").get<double>());
  nonfinite_total = state.value("nonfinite_total", int64_t{0});
  nonfinite_in_a_row = state.value("nonfinite_in_a_row", int64_t{0});
  step = resumed_from = state.at("step").get<int64_t>();
  last_saved = last_validated = step;
  logging::info("resumed from {} (step {})", dir, step);
}

void Trainer::run() {
  State& s = *s_;
  const TrainConfig& c = s.config;
  if (s.step == 0 && c.trainer.val_before_train && c.trainer.test_freq > 0) validate();
  while (s.step < c.trainer.total_steps) {
    train_step();
    const bool last = s.step == c.trainer.total_steps;
    if (c.trainer.test_freq > 0 && (s.step % c.trainer.test_freq == 0 || last)) validate();
    if ((c.trainer.save_freq > 0 && s.step % c.trainer.save_freq == 0) || last) save_checkpoint();
  }
}

}  // namespace tinyzero
