// Batched generation with a KV cache (and the no-cache reference): sampling, EOS/stop handling,
// compaction of finished rows, and the final lengths / finish reasons.
#include "tinyzero/model/generator.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/torch.h>

#include "tinyzero/core/errors.h"
#include "tinyzero/model/kv_cache.h"
#include "tinyzero/model/qwen2.h"

namespace tinyzero {
namespace {

at::Generator make_generator(const at::Device& device, uint64_t seed) {
  if (device.is_cuda()) {
    at::Generator g =
        at::detail::getCUDAHooks().getDefaultCUDAGenerator(device.index() < 0 ? 0 : device.index()).clone();
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

GenerateResult generate(CausalLMImpl& model, const at::Tensor& prompt_ids, const at::Tensor& prompt_mask,
                        const GenerateOptions& o) {
  validate(model, prompt_ids, prompt_mask, o);
  torch::NoGradGuard no_grad;
  at::Device dev = model.device();
  at::Generator gen = make_generator(dev, o.seed);
  const int64_t B = prompt_ids.size(0), P = prompt_ids.size(1), n = o.num_samples, R = B * n,
                N = o.max_new_tokens;
  auto lopts = at::TensorOptions().dtype(at::kLong).device(dev);
  at::Tensor ids = prompt_ids.to(dev).to(at::kLong);
  at::Tensor mask = prompt_mask.to(dev).to(at::kLong);
  at::Tensor pos = positions_from_mask(mask);  // (B, P)

  // Concatenated q/k/v and gate/up weights for the duration of this call.
  struct FuseGuard {
    CausalLMImpl& m;
    bool on;
    ~FuseGuard() {
      if (on) m.set_fused_inference(false);
    }
  } fuse{model, o.fuse_weights && !model.fused_inference()};
  if (fuse.on) model.set_fused_inference(true);

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
