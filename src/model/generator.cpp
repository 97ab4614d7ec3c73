// generate(): checks, the CPU row workers that each run a decode engine (decode_engine.cpp) and the
// assembly of their samples; generate_reference(), the no-cache path the tests compare against.
#include "tinyzero/model/generator.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <torch/torch.h>

#include <exception>
#include <thread>

#include "decode_engine.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/model/decode_memory.h"
#include "tinyzero/model/kv_cache.h"
#include "tinyzero/model/qwen2.h"

namespace tinyzero {
namespace {

void check_options(const CausalLMImpl& model, const GenerateOptions& o, int64_t longest_prompt) {
  if (o.max_new_tokens <= 0)
    throw ConfigError("generate: max_new_tokens must be > 0, got " + std::to_string(o.max_new_tokens));
  if (o.num_samples <= 0)
    throw ConfigError("generate: num_samples must be > 0, got " + std::to_string(o.num_samples));
  if (o.check_every <= 0) throw ConfigError("generate: check_every must be > 0");
  if (o.max_active_rows < 0) throw ConfigError("generate: max_active_rows must be >= 0 (0 = every row)");
  if (!o.sampling.greedy) {
    if (!(o.sampling.temperature > 0)) {
      throw ConfigError("generate: temperature must be > 0 (use greedy for argmax), got " +
                        std::to_string(o.sampling.temperature));
    }
    if (!(o.sampling.top_p > 0 && o.sampling.top_p <= 1)) {
      throw ConfigError("generate: top_p must be in (0, 1], got " + std::to_string(o.sampling.top_p));
    }
    if (o.sampling.top_k < 0) throw ConfigError("generate: top_k must be >= 0 (0 = off)");
  }
  int64_t vocab = model.config().vocab_size;
  if (o.pad_id < 0 || o.pad_id >= vocab) {
    throw ConfigError("generate: pad id " + std::to_string(o.pad_id) + " is outside the vocabulary [0, " +
                      std::to_string(vocab) + ")");
  }
  int64_t total = longest_prompt + o.max_new_tokens;
  if (total > model.config().max_position_embeddings) {
    throw ConfigError("generate: prompt length " + std::to_string(longest_prompt) + " + max_new_tokens " +
                      std::to_string(o.max_new_tokens) + " exceeds the model's max_position_embeddings " +
                      std::to_string(model.config().max_position_embeddings));
  }
}

// The shapes and left padding of a (B, P) prompt matrix.
void validate_matrix(const at::Tensor& ids, const at::Tensor& mask) {
  if (ids.dim() != 2 || ids.size(0) == 0 || ids.size(1) == 0) {
    throw Error("generate: prompt ids must be a non-empty (batch, tokens) matrix");
  }
  if (!mask.defined() || mask.sizes() != ids.sizes())
    throw Error("generate: prompt mask must have the ids' shape");
  if (!mask.to(at::kCPU).to(at::kLong).select(1, ids.size(1) - 1).eq(1).all().item<bool>()) {
    throw Error("generate: every prompt row must end with a real token (pad on the left, mask 1 at the end)");
  }
}

void check_prompt_id(int64_t id, int64_t vocab) {
  if (id < 0 || id >= vocab)
    throw Error("generate: prompt id " + std::to_string(id) + " outside the vocabulary [0, " +
                std::to_string(vocab) + ")");
}

// The sample keys of rows b * n + j (R) on `device`.
at::Tensor row_keys(int64_t prompts, const GenerateOptions& o, const at::Device& device) {
  std::vector<int64_t> keys;
  for (int64_t b = 0; b < prompts; ++b)
    for (int64_t j = 0; j < o.num_samples; ++j)
      keys.push_back(sample_key(o.seed, o.first_prompt + static_cast<uint64_t>(b), static_cast<uint64_t>(j)));
  return torch::tensor(keys, torch::kLong).to(device);
}

// Lengths (up to the first EOS, included), finish reasons, pad/zero after a row's end, width trimmed
// to the longest row.
void finalize(GenerateResult& r, const GenerateOptions& o, int64_t steps) {
  int64_t R = r.ids.size(0);
  at::Tensor lengths = at::full({R}, steps, r.ids.options());
  at::Tensor has_eos = at::zeros({R}, r.ids.options().dtype(at::kBool));
  if (!o.eos_ids.empty()) {
    at::Tensor eos = torch::tensor(o.eos_ids, torch::kLong).to(r.ids.device());
    at::Tensor is_eos = at::isin(r.ids.narrow(1, 0, steps), eos);  // (R, steps)
    has_eos = is_eos.any(1);
    at::Tensor first = is_eos.to(at::kInt).argmax(1);  // the first occurrence
    lengths = at::where(has_eos, first + 1, lengths);
  }
  at::Tensor eos_cpu = has_eos.to(at::kCPU).contiguous();
  r.finish.assign(R, FinishReason::kLength);
  const bool* ended = eos_cpu.data_ptr<bool>();
  for (int64_t i = 0; i < R; ++i)
    if (ended[i]) r.finish[i] = FinishReason::kEos;
  const int64_t width = std::max<int64_t>(lengths.max().item<int64_t>(), 1);
  r.lengths = lengths;
  at::Tensor col = at::arange(r.ids.size(1), r.ids.options()).unsqueeze(0);  // (1, N)
  at::Tensor beyond = col >= r.lengths.unsqueeze(1);                         // (R, N)
  r.ids.masked_fill_(beyond, o.pad_id);
  r.logprobs.masked_fill_(beyond, 0.0);
  r.ids = r.ids.narrow(1, 0, width).contiguous();
  r.logprobs = r.logprobs.narrow(1, 0, width).contiguous();
  r.steps = steps;
}

}  // namespace

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStop:
      return "stop";
    default:
      return "length";
  }
}

namespace {

// Concatenated q/k/v and gate/up weights for the duration of a call (when asked for and not on yet).
struct FuseGuard {
  CausalLMImpl& m;
  bool on;
  FuseGuard(CausalLMImpl& model, bool fuse) : m(model), on(fuse && !model.fused_inference()) {
    if (on) m.set_fused_inference(true);
  }
  ~FuseGuard() {
    if (on) m.set_fused_inference(false);
  }
};

// Row groups to generate at once on the CPU: one per intra-op thread (at most one per prompt), or
// options.row_workers when set; 1 on other devices.
int64_t row_workers(CausalLMImpl& model, const GenerateOptions& o, int64_t prompts) {
  if (!model.device().is_cpu()) return 1;
  const int64_t want = o.row_workers > 0 ? o.row_workers : static_cast<int64_t>(at::get_num_threads());
  return std::max<int64_t>(1, std::min(want, prompts));
}

// The samples of a job as one result: row b * n + j is sample j of prompt b, padded to the longest.
GenerateResult assemble(GenerationJob& job, const GenerateOptions& o, const at::Device& device) {
  const int64_t R = static_cast<int64_t>(job.outputs.size());
  int64_t width = 1;
  for (const auto& s : job.outputs) width = std::max(width, static_cast<int64_t>(s.ids.size()));
  at::Tensor ids = at::full({R, width}, o.pad_id, at::kLong), lps = at::zeros({R, width}, at::kFloat);
  at::Tensor lengths = at::empty({R}, at::kLong);
  GenerateResult r;
  auto* I = ids.data_ptr<int64_t>();
  auto* L = lps.data_ptr<float>();
  for (int64_t i = 0; i < R; ++i) {
    const SampleOutput& s = job.outputs[static_cast<size_t>(i)];
    std::copy(s.ids.begin(), s.ids.end(), I + i * width);
    std::copy(s.logprobs.begin(), s.logprobs.end(), L + i * width);
    lengths[i] = static_cast<int64_t>(s.ids.size());
    r.finish.push_back(s.finish);
    r.steps = std::max(r.steps, s.generated);
  }
  r.ids = ids.to(device);
  r.logprobs = lps.to(device);
  r.lengths = lengths.to(device);
  return r;
}

// Rows decoding at once: every row, at most max_active_rows, and at most what `budget` bytes hold (each
// row's KV cache at the engine's capacity, in the engine's cache dtype, and its decode tensors); a
// budget <= 0 sets no bound.
int64_t active_rows(CausalLMImpl& model, const GenerationJob& job, int64_t R, double budget) {
  const GenerateOptions& o = job.options;
  int64_t rows = o.max_active_rows > 0 ? std::min(o.max_active_rows, R) : R;
  if (budget <= 0) return rows;
  const DecodeRowBytes row = decode_row_bytes(
      model.config(), job.tokens(), static_cast<int64_t>(c10::elementSize(decode_cache_dtype(model))));
  const int64_t fit = rows_within(budget, row);
  if (fit < 1)
    throw Error("generate: one decoding row of " + std::to_string(job.tokens()) + " tokens needs " +
                format_gib(row.total()) + " (KV cache " + format_gib(row.kv) + ", decode tensors " +
                format_gib(row.step) + "), but only " + format_gib(budget) +
                " is left for the rollout (after the fused inference weights); shorten "
                "data.max_prompt_length or data.max_response_length, "
                "free device memory (reference.offload=true, critic.offload=true), or raise "
                "rollout.memory_utilization");
  return std::min(rows, fit);
}

}  // namespace

GenerateResult generate(CausalLMImpl& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                        const GenerateOptions& o) {
  validate_matrix(prompt_ids, prompt_mask);  // options and ids: checked as token lists below
  at::Tensor ids = prompt_ids.to(at::kCPU).to(at::kLong).contiguous();
  at::Tensor mask = prompt_mask.to(at::kCPU).to(at::kLong).contiguous();
  auto I = ids.accessor<int64_t, 2>();
  auto M = mask.accessor<int64_t, 2>();
  std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(ids.size(0)));
  for (int64_t b = 0; b < ids.size(0); ++b)
    for (int64_t t = 0; t < ids.size(1); ++t)
      if (M[b][t] != 0) prompts[static_cast<size_t>(b)].push_back(I[b][t]);
  return generate(model, prompts, o);
}

GenerateResult generate(CausalLMImpl& model, const std::vector<std::vector<int64_t>>& prompts,
                        const GenerateOptions& o) {
  if (prompts.empty()) throw Error("generate: no prompt given");
  GenerationJob job(prompts, o);
  check_options(model, o, job.longest_prompt);
  const int64_t vocab = model.config().vocab_size;
  for (const auto& p : prompts) {
    if (p.empty()) throw Error("generate: a prompt has no token");
    for (int64_t id : p) check_prompt_id(id, vocab);
  }
  torch::NoGradGuard no_grad;
  const int64_t B = static_cast<int64_t>(prompts.size()), R = B * o.num_samples;
  FuseGuard fuse(model, o.fuse_weights);
  double budget = o.memory_budget_bytes;
  if (fuse.on && budget > 0) {  // the budget was measured before these copies were made
    const bool copies16 = model.dtype() == at::kFloat && autocast_enabled(model.device());
    budget = std::max(
        1.0, budget - fused_weight_bytes(model.config(),
                                         static_cast<int64_t>(c10::elementSize(model.dtype())), copies16));
  }
  const int64_t rows = active_rows(model, job, R, budget);
  const int64_t workers = row_workers(model, o, B);
  if (workers <= 1) {
    const int64_t graphs = run_decode_engine(model, job, rows, 0, B);
    GenerateResult r = assemble(job, o, model.device());
    r.rows_at_once = rows;
    r.graphs_captured = graphs;
    return r;
  }

  // Small decode steps spend most of their time in per-operation overhead that a second intra-op
  // thread does not shorten; engines on their own threads do. The model is read-only here: weights
  // fused and lazily built tables made before the threads start.
  model.prepare_concurrent_inference();
  const at::ThreadLocalState state;  // grad mode and autocast of this thread, for the workers
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  {
    struct Joiner {  // joins the started threads and restores the thread counts however this scope ends
      int parent_threads = at::get_num_threads();
      std::vector<std::thread> threads;
      ~Joiner() {
        for (auto& t : threads)
          if (t.joinable()) t.join();
        at::set_num_threads(parent_threads);
        set_blas_threads(parent_threads);
      }
    } joiner;
    for (int64_t g = 0; g < workers; ++g) {
      const int64_t slots = rows * (g + 1) / workers - rows * g / workers;
      const int64_t first = B * g / workers, end = B * (g + 1) / workers;
      joiner.threads.emplace_back([&, g, slots, first, end] {
        try {
          at::ThreadLocalStateGuard guard(state);
          at::set_num_threads(1);  // this thread's ATen and BLAS work stays on this thread
          run_decode_engine(model, job, slots, first, end);
        } catch (...) {
          errors[static_cast<size_t>(g)] = std::current_exception();
        }
      });
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  GenerateResult r = assemble(job, o, model.device());
  r.rows_at_once = rows;
  return r;
}

GenerateResult generate_reference(CausalLMImpl& model, const at::Tensor& prompt_ids,
                                  const at::Tensor& prompt_mask, const GenerateOptions& o) {
  validate_matrix(prompt_ids, prompt_mask);
  check_options(model, o, prompt_ids.size(1));
  at::Tensor cpu_ids = prompt_ids.to(at::kCPU);
  check_prompt_id(cpu_ids.min().item<int64_t>(), model.config().vocab_size);
  check_prompt_id(cpu_ids.max().item<int64_t>(), model.config().vocab_size);
  torch::NoGradGuard no_grad;
  at::Device dev = model.device();
  const int64_t n = o.num_samples, N = o.max_new_tokens;
  auto lopts = at::TensorOptions().dtype(at::kLong).device(dev);
  at::Tensor ids = prompt_ids.to(dev).to(at::kLong).repeat_interleave(n, 0);  // (R, P)
  at::Tensor mask = prompt_mask.to(dev).to(at::kLong).repeat_interleave(n, 0);
  const int64_t R = ids.size(0);
  const at::Tensor keys = row_keys(prompt_ids.size(0), o, dev);
  GenerateResult r;
  r.ids = at::full({R, N}, o.pad_id, lopts);
  r.logprobs = at::zeros({R, N}, lopts.dtype(at::kFloat));
  at::Tensor finished = at::zeros({R}, lopts.dtype(at::kBool));
  at::Tensor eos = o.eos_ids.empty() ? at::Tensor() : torch::tensor(o.eos_ids, torch::kLong).to(dev);
  int64_t steps = 0;
  for (int64_t t = 0; t < N; ++t) {
    at::Tensor logits = model.forward(ids, mask).select(1, ids.size(1) - 1);  // (R, V)
    auto [next, lp] = sample_tokens(logits, o.sampling, keys, at::full({R}, t, lopts));
    next.masked_fill_(finished, o.pad_id);
    lp.masked_fill_(finished, 0.0);
    r.ids.select(1, t).copy_(next);
    r.logprobs.select(1, t).copy_(lp);
    if (eos.defined()) finished.logical_or_(at::isin(next, eos));
    steps = t + 1;
    if (finished.all().item<bool>()) break;
    ids = at::cat({ids, next.unsqueeze(1)}, 1);
    mask = at::cat({mask, at::ones({R, 1}, lopts)}, 1);
  }
  finalize(r, o, steps);
  return r;
}

}  // namespace tinyzero
