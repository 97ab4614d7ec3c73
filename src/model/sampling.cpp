// Keyed sampling (see sampling.h): splitmix64's finaliser evaluated elementwise on int64 tensors.
#include "tinyzero/model/sampling.h"

#include <ATen/ATen.h>

#include <limits>

namespace tinyzero {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

int64_t as_signed(uint64_t x) { return static_cast<int64_t>(x); }  // two's complement bits kept

// x >> s with zeros shifted in (ATen's right shift of int64 is arithmetic).
at::Tensor shift_right_logical(const at::Tensor& x, int64_t s) {
  return at::bitwise_and(at::bitwise_right_shift(x, s), as_signed((~0ULL) >> s));
}

// splitmix64's finaliser; int64 multiplication wraps around as uint64's does, bit for bit.
at::Tensor mix(at::Tensor x) {
  x = at::bitwise_xor(x, shift_right_logical(x, 30)).mul_(as_signed(0xBF58476D1CE4E5B9ULL));
  x = at::bitwise_xor(x, shift_right_logical(x, 27)).mul_(as_signed(0x94D049BB133111EBULL));
  return at::bitwise_xor(x, shift_right_logical(x, 31));
}

uint64_t mix_scalar(uint64_t x) {  // the same finaliser on one value, after a step of the sequence
  x += kGolden;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

}  // namespace

int64_t sample_key(uint64_t seed, uint64_t prompt, uint64_t sample) {
  return as_signed(mix_scalar(mix_scalar(mix_scalar(seed) ^ prompt) ^ sample));
}

at::Tensor keyed_uniform(const at::Tensor& keys, const at::Tensor& steps, int64_t vocab) {
  // One stream state per (row, step), then one draw per vocabulary id.
  at::Tensor row = mix(keys + steps * as_signed(kGolden)).unsqueeze(1);  // (A, 1)
  at::Tensor ids = at::arange(vocab, keys.options()).mul_(as_signed(0xD1B54A32D192ED03ULL)).unsqueeze(0);
  at::Tensor bits = mix(row + ids);                                 // (A, V)
  at::Tensor top24 = shift_right_logical(bits, 40).to(at::kFloat);  // [0, 2^24), exact in fp32
  return top24.add_(0.5).mul_(1.0 / 16777216.0);                    // (0, 1)
}

std::pair<at::Tensor, at::Tensor> sample_tokens(const at::Tensor& logits, const SamplingParams& s,
                                                const at::Tensor& keys, const at::Tensor& steps) {
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
  // Exponential race (= Gumbel-max): argmax p / q with q = -log(u) ~ Exp(1) samples from p.
  at::Tensor q = keyed_uniform(keys, steps, z.size(1)).log_().neg_();
  at::Tensor next = (logp.exp() / q).argmax(-1);
  at::Tensor lp = logp.gather(1, next.unsqueeze(1)).squeeze(1);
  return {next, lp};
}

}  // namespace tinyzero
