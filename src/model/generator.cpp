// Batched generation with a KV cache (and the no-cache reference): sampling, EOS/stop handling,
// compaction of finished rows, and the final lengths / finish reasons.
#include "tinyzero/model/generator.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <torch/torch.h>

#include <exception>
#include <thread>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/model/kv_cache.h"
#include "tinyzero/model/qwen2.h"

namespace tinyzero {
namespace {

at::Generator make_generator(const at::Device& device, uint64_t seed) {
  if (device.is_cuda()) {
    // A private copy of the device's default generator, reseeded: sampling never moves the global one.
    at::Device index_device(at::kCUDA, device.index() < 0 ? 0 : device.index());
    at::Generator g = at::globalContext().defaultGenerator(index_device).clone();
    g.set_current_seed(seed);
    return g;
  }
  return at::make_generator<at::CPUGeneratorImpl>(seed);
}

void validate(const CausalLMImpl& model, const at::Tensor& ids, const at::Tensor& mask,
              const GenerateOptions& o) {
  if (ids.dim() != 2 || ids.size(0) == 0 || ids.size(1) == 0) {
    throw Error("generate: prompt ids must be a non-empty (batch, tokens) matrix");
  }
  if (!mask.defined() || mask.sizes() != ids.sizes())
    throw Error("generate: prompt mask must have the ids' shape");
  if (o.max_new_tokens <= 0)
    throw ConfigError("generate: max_new_tokens must be > 0, got " + std::to_string(o.max_new_tokens));
  if (o.num_samples <= 0)
    throw ConfigError("generate: num_samples must be > 0, got " + std::to_string(o.num_samples));
  if (o.check_every <= 0) throw ConfigError("generate: check_every must be > 0");
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
  at::Tensor cpu_ids = ids.to(at::kCPU), cpu_mask = mask.to(at::kCPU).to(at::kLong);
  if (cpu_ids.min().item<int64_t>() < 0 || cpu_ids.max().item<int64_t>() >= vocab) {
    throw Error("generate: prompt ids outside the vocabulary [0, " + std::to_string(vocab) + ")");
  }
  if (!cpu_mask.select(1, ids.size(1) - 1).eq(1).all().item<bool>()) {
    throw Error("generate: every prompt row must end with a real token (pad on the left, mask 1 at the end)");
  }
  int64_t total = ids.size(1) + o.max_new_tokens;
  if (total > model.config().max_position_embeddings) {
    throw ConfigError("generate: prompt length " + std::to_string(ids.size(1)) + " + max_new_tokens " +
                      std::to_string(o.max_new_tokens) + " exceeds the model's max_position_embeddings " +
                      std::to_string(model.config().max_position_embeddings));
  }
}

// Picks the next token of each row from logits (A, V) fp32; returns {token (A), log-prob (A)}.
std::pair<at::Tensor, at::Tensor> sample(const at::Tensor& logits, const SamplingParams& s,
                                         at::Generator& gen) {
  if (s.greedy) {
    at::Tensor next = logits.argmax(-1);
    at::Tensor lp = at::log_softmax(logits, -1).gather(1, next.unsqueeze(1)).squeeze(1);
    return {next, lp};
  }
  bool filter = (s.top_k > 0 && s.top_k < logits.size(1)) || s.top_p < 1.0;
  at::Tensor z =
      s.temperature != 1.0 ? logits / s.temperature : (filter ? logits.clone() : logits);  // (A, V)
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (s.top_k > 0 && s.top_k < z.size(1)) {
    at::Tensor kth = std::get<0>(z.topk(s.top_k, -1)).narrow(1, s.top_k - 1, 1);  // (A, 1)
    z.masked_fill_(z < kth, neg_inf);
  }
  if (s.top_p < 1.0) {
    auto sorted = z.sort(-1, /*descending=*/true);
    at::Tensor vals = std::get<0>(sorted), idx = std::get<1>(sorted);
    at::Tensor probs = at::softmax(vals, -1);
    at::Tensor mass_before = probs.cumsum(-1) - probs;  // mass of the strictly more likely tokens
    vals.masked_fill_(mass_before > s.top_p, neg_inf);
    z = at::empty_like(z).scatter_(1, idx, vals);
  }
  at::Tensor logp = at::log_softmax(z, -1);
  // Exponential race (= Gumbel-max): argmax p / q with q ~ Exp(1) samples from p, no host sync.
  at::Tensor q = at::empty_like(logp).exponential_(1.0, gen).clamp_min_(1e-20);
  at::Tensor next = (logp.exp() / q).argmax(-1);
  at::Tensor lp = logp.gather(1, next.unsqueeze(1)).squeeze(1);
  return {next, lp};
}

// Lengths, finish reasons, pad/zero after a stop, width trimmed to the longest row.
void finalize(GenerateResult& r, const GenerateOptions& o, const std::vector<int64_t>& stop_len,
              int64_t steps) {
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
  at::Tensor len_cpu = lengths.to(at::kCPU).contiguous(), eos_cpu = has_eos.to(at::kCPU).contiguous();
  r.finish.assign(R, FinishReason::kLength);
  auto* L = len_cpu.data_ptr<int64_t>();
  auto* E = eos_cpu.data_ptr<bool>();
  for (int64_t i = 0; i < R; ++i) {
    if (stop_len[i] >= 0 && (!E[i] || stop_len[i] < L[i])) {
      L[i] = stop_len[i];
      r.finish[i] = FinishReason::kStop;
    } else if (E[i]) {
      r.finish[i] = FinishReason::kEos;
    }
  }
  int64_t width = 0;
  for (int64_t i = 0; i < R; ++i) width = std::max(width, L[i]);
  r.lengths = len_cpu.to(r.ids.device());
  at::Tensor col = at::arange(r.ids.size(1), r.ids.options()).unsqueeze(0);  // (1, N)
  at::Tensor beyond = col >= r.lengths.unsqueeze(1);                         // (R, N)
  r.ids.masked_fill_(beyond, o.pad_id);
  r.logprobs.masked_fill_(beyond, 0.0);
  r.ids = r.ids.narrow(1, 0, std::max<int64_t>(width, 1)).contiguous();
  r.logprobs = r.logprobs.narrow(1, 0, std::max<int64_t>(width, 1)).contiguous();
  r.steps = steps;
}

std::vector<std::vector<int64_t>> rows_to_host(const at::Tensor& ids) {  // (A, t) -> vectors
  at::Tensor c = ids.to(at::kCPU).contiguous();
  std::vector<std::vector<int64_t>> out(c.size(0));
  const int64_t* p = c.data_ptr<int64_t>();
  for (int64_t i = 0; i < c.size(0); ++i) out[i].assign(p + i * c.size(1), p + (i + 1) * c.size(1));
  return out;
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

// generate() for one group of prompts on the calling thread (inputs already validated).
GenerateResult generate_rows(CausalLMImpl& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                             const GenerateOptions& o) {
  torch::NoGradGuard no_grad;
  at::Device dev = model.device();
  at::Generator gen = make_generator(dev, o.seed);
  const int64_t B = prompt_ids.size(0), P = prompt_ids.size(1), n = o.num_samples, R = B * n,
                N = o.max_new_tokens;
  auto lopts = at::TensorOptions().dtype(at::kLong).device(dev);
  at::Tensor ids = prompt_ids.to(dev).to(at::kLong);
  at::Tensor mask = prompt_mask.to(dev).to(at::kLong);
  at::Tensor pos = positions_from_mask(mask);  // (B, P)

  FuseGuard fuse(model, o.fuse_weights);

  // Prefill once per prompt, then repeat cache rows for the n samples.
  at::ScalarType cache_dtype = autocast_enabled(dev) ? at::kBFloat16 : model.dtype();
  KVCache cache = KVCache::allocate(model.config(), B, P + N, cache_dtype, dev);
  at::Tensor h = model.hidden_states(ids, mask, pos, &cache, 0);      // (B, P, H)
  at::Tensor logits = model.logits(h.select(1, P - 1));               // (B, V)
  at::Tensor last_pos = pos.select(1, P - 1).clone();                 // (B)
  at::Tensor key_mask = at::cat({mask, at::ones({B, N}, lopts)}, 1);  // (B, P + N)
  at::Tensor key_bias =
      at::zeros({B, P + N}, lopts.dtype(at::kFloat))
          .masked_fill_(key_mask == 0, -std::numeric_limits<float>::infinity());  // (B, P + N)
  if (n > 1) {
    at::Tensor rows = at::arange(B, lopts).repeat_interleave(n);  // (R)
    key_bias = key_bias.index_select(0, rows);
    cache.select_rows(rows, P);
    logits = logits.index_select(0, rows);
    last_pos = last_pos.index_select(0, rows);
    key_mask = key_mask.index_select(0, rows);
  }

  GenerateResult r;
  r.ids = at::full({R, N}, o.pad_id, lopts);
  r.logprobs = at::zeros({R, N}, lopts.dtype(at::kFloat));
  at::Tensor active = at::arange(R, lopts);  // output row of each batch row
  bool all_rows = true;                      // active == arange(R)
  at::Tensor finished = at::zeros({R}, lopts.dtype(at::kBool));
  at::Tensor eos = o.eos_ids.empty() ? at::Tensor() : torch::tensor(o.eos_ids, torch::kLong).to(dev);
  std::vector<int64_t> stop_len(R, -1);
  int64_t steps = 0;
  for (int64_t t = 0; t < N; ++t) {
    auto [next, lp] = sample(logits, o.sampling, gen);  // (A), (A)
    next.masked_fill_(finished, o.pad_id);
    lp.masked_fill_(finished, 0.0);
    if (all_rows) {
      r.ids.select(1, t).copy_(next);
      r.logprobs.select(1, t).copy_(lp);
    } else {
      r.ids.select(1, t).index_copy_(0, active, next);
      r.logprobs.select(1, t).index_copy_(0, active, lp);
    }
    if (eos.defined()) finished.logical_or_(at::isin(next, eos));
    steps = t + 1;
    const bool last = t == N - 1;

    // The only host syncs of the loop; also after the last step, so that a stop string in the final
    // window still ends its row there.
    if ((t + 1) % o.check_every == 0 || last) {
      if (o.stop_check) {
        at::Tensor running = (~finished).nonzero().squeeze(1);
        at::Tensor running_out = active.index_select(0, running);
        auto rows = rows_to_host(r.ids.narrow(1, 0, t + 1).index_select(0, running_out));
        if (!rows.empty()) {
          std::vector<int64_t> keep = o.stop_check(rows);
          if (keep.size() != rows.size()) throw Error("generate: stop_check returned a wrong number of rows");
          at::Tensor out_cpu = running_out.to(at::kCPU), run_cpu = running.to(at::kCPU);
          std::vector<int64_t> newly;
          for (size_t i = 0; i < keep.size(); ++i) {
            if (keep[i] < 0) continue;
            stop_len[out_cpu[i].item<int64_t>()] = std::min<int64_t>(keep[i], t + 1);
            newly.push_back(run_cpu[i].item<int64_t>());
          }
          if (!newly.empty()) finished.index_fill_(0, torch::tensor(newly, torch::kLong).to(dev), true);
        }
      }
      if (last) break;
      int64_t done = finished.sum().item<int64_t>();
      int64_t A = finished.size(0);
      if (done == A) break;
      if (o.compact && done * 2 >= A) {
        at::Tensor keep = (~finished).nonzero().squeeze(1);  // (A')
        cache.select_rows(keep, P + t + 1);
        active = active.index_select(0, keep);
        key_mask = key_mask.index_select(0, keep);
        key_bias = key_bias.index_select(0, keep);
        last_pos = last_pos.index_select(0, keep);
        next = next.index_select(0, keep);
        finished = finished.index_select(0, keep);
        all_rows = false;
      }
    }
    last_pos.add_(1);
    int64_t S = P + t + 1;
    h = model.hidden_states(next.unsqueeze(1), key_mask.narrow(1, 0, S), last_pos.unsqueeze(1), &cache, S - 1,
                            nullptr, key_bias);
    logits = model.logits(h.select(1, 0));  // (A, V)
  }
  finalize(r, o, stop_len, steps);
  return r;
}

// Row groups to generate at once on the CPU: one per intra-op thread (at most one per prompt), or
// options.row_workers when set; 1 on other devices.
int64_t row_workers(CausalLMImpl& model, const GenerateOptions& o, int64_t prompts) {
  if (!model.device().is_cpu()) return 1;
  const int64_t want = o.row_workers > 0 ? o.row_workers : static_cast<int64_t>(at::get_num_threads());
  return std::max<int64_t>(1, std::min(want, prompts));
}

// The groups' results one after the other, as one call over all prompts would lay them out.
GenerateResult concat_results(std::vector<GenerateResult>& parts, const GenerateOptions& o) {
  int64_t width = 0;
  for (const auto& p : parts) width = std::max(width, p.ids.size(1));
  std::vector<at::Tensor> ids, logprobs, lengths;
  GenerateResult r;
  for (auto& p : parts) {
    const int64_t extra = width - p.ids.size(1);
    ids.push_back(at::constant_pad_nd(p.ids, {0, extra}, static_cast<double>(o.pad_id)));
    logprobs.push_back(at::constant_pad_nd(p.logprobs, {0, extra}, 0.0));
    lengths.push_back(p.lengths);
    r.finish.insert(r.finish.end(), p.finish.begin(), p.finish.end());
    r.steps = std::max(r.steps, p.steps);
  }
  r.ids = at::cat(ids, 0);
  r.logprobs = at::cat(logprobs, 0);
  r.lengths = at::cat(lengths, 0);
  return r;
}

}  // namespace

GenerateResult generate(CausalLMImpl& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                        const GenerateOptions& o) {
  validate(model, prompt_ids, prompt_mask, o);
  torch::NoGradGuard no_grad;
  const int64_t B = prompt_ids.size(0), workers = row_workers(model, o, B);
  if (workers <= 1) return generate_rows(model, prompt_ids, prompt_mask, o);

  // Small decode steps spend most of their time in per-operation overhead that a second intra-op
  // thread does not shorten; whole row groups on their own threads do. The model is read-only here:
  // weights fused and lazily built tables made before the threads start.
  FuseGuard fuse(model, o.fuse_weights);
  model.prepare_concurrent_inference();
  const at::ThreadLocalState state;  // grad mode and autocast of this thread, for the workers
  std::vector<GenerateResult> parts(static_cast<size_t>(workers));
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
      const int64_t begin = B * g / workers, end = B * (g + 1) / workers;
      joiner.threads.emplace_back([&, g, begin, end] {
        try {
          at::ThreadLocalStateGuard guard(state);
          at::set_num_threads(1);  // this thread's ATen and BLAS work stays on this thread
          GenerateOptions og = o;
          og.seed = o.seed + static_cast<uint64_t>(g) * 0x9E3779B97F4A7C15ULL;  // group 0 keeps the seed
          parts[g] = generate_rows(model, prompt_ids.narrow(0, begin, end - begin),
                                   prompt_mask.narrow(0, begin, end - begin), og);
        } catch (...) {
          errors[g] = std::current_exception();
        }
      });
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return concat_results(parts, o);
}

GenerateResult generate_reference(CausalLMImpl& model, const at::Tensor& prompt_ids,
                                  const at::Tensor& prompt_mask, const GenerateOptions& o) {
  validate(model, prompt_ids, prompt_mask, o);
  torch::NoGradGuard no_grad;
  at::Device dev = model.device();
  at::Generator gen = make_generator(dev, o.seed);
  const int64_t n = o.num_samples, N = o.max_new_tokens;
  auto lopts = at::TensorOptions().dtype(at::kLong).device(dev);
  at::Tensor ids = prompt_ids.to(dev).to(at::kLong).repeat_interleave(n, 0);  // (R, P)
  at::Tensor mask = prompt_mask.to(dev).to(at::kLong).repeat_interleave(n, 0);
  const int64_t R = ids.size(0);
  GenerateResult r;
  r.ids = at::full({R, N}, o.pad_id, lopts);
  r.logprobs = at::zeros({R, N}, lopts.dtype(at::kFloat));
  at::Tensor finished = at::zeros({R}, lopts.dtype(at::kBool));
  at::Tensor eos = o.eos_ids.empty() ? at::Tensor() : torch::tensor(o.eos_ids, torch::kLong).to(dev);
  int64_t steps = 0;
  for (int64_t t = 0; t < N; ++t) {
    at::Tensor logits = model.forward(ids, mask).select(1, ids.size(1) - 1);  // (R, V)
    auto [next, lp] = sample(logits, o.sampling, gen);
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
  finalize(r, o, std::vector<int64_t>(R, -1), steps);
  return r;
}

}  // namespace tinyzero
