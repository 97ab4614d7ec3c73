// Fused CPU kernels (see cpu_kernels.h). Plain C++ loops written so that the compiler vectorises them
// (fixed-width partial sums, no reassociation needed), compiled twice on x86-64 GCC (AVX2 and the
// baseline) and picked at load time, parallel over (row, KV head) with at::parallel_for.
#include "model/cpu_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>

#include <cmath>
#include <limits>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define TZ_TARGET_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define TZ_TARGET_CLONES
#endif

namespace tinyzero::kernels {
namespace detail {

inline float to_float(float x) { return x; }
inline float to_float(c10::BFloat16 x) { return static_cast<float>(x); }
template <typename T>
inline float round_to(float x) {  // x as the element type would hold it
  return static_cast<float>(static_cast<T>(x));
}

// a . b with 8 partial sums: vectorises without -ffast-math.
inline float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float tail = 0;
  for (; i < n; ++i) tail += a[i] * b[i];
  return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail;
}

// The `rep` query heads of one (row, KV head): q (rep, D), k/v (S, D) rows of the cache, bias (S).
// Scratch: scores (rep * S), qf (rep * D), row (D), acc (rep * D).
template <typename T>
inline void attend_group(const T* q, const T* k, const T* v, const float* bias, T* out, int64_t rep,
                         int64_t D, int64_t S, float scale, float* scores, float* qf, float* row,
                         float* acc) {
  constexpr bool kFloat = std::is_same<T, float>::value;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < rep * D; ++i) qf[i] = to_float(q[i]);
  for (int64_t s = 0; s < S; ++s) {
    if (bias[s] == neg_inf) {
      for (int64_t r = 0; r < rep; ++r) scores[r * S + s] = neg_inf;
      continue;
    }
    const float* kr;
    if constexpr (kFloat) {
      kr = k + s * D;
    } else {
      for (int64_t d = 0; d < D; ++d) row[d] = to_float(k[s * D + d]);
      kr = row;
    }
    for (int64_t r = 0; r < rep; ++r) {
      // As matmul -> mul_(scale) -> add_(bias) in the element type.
      float x = round_to<T>(round_to<T>(dot(qf + r * D, kr, D)) * scale);
      scores[r * S + s] = round_to<T>(x + bias[s]);
    }
  }
  for (int64_t r = 0; r < rep; ++r) {  // softmax in fp32, probabilities rounded to the value dtype
    float* x = scores + r * S;
    float m = neg_inf;
    for (int64_t s = 0; s < S; ++s) m = std::max(m, x[s]);
    float sum = 0;
    for (int64_t s = 0; s < S; ++s) {
      x[s] = x[s] == neg_inf ? 0.0f : std::exp(x[s] - m);
      sum += x[s];
    }
    float inv = 1.0f / sum;
    for (int64_t s = 0; s < S; ++s) x[s] = round_to<T>(x[s] * inv);
  }
  for (int64_t i = 0; i < rep * D; ++i) acc[i] = 0;
  for (int64_t s = 0; s < S; ++s) {
    if (bias[s] == neg_inf) continue;
    const float* vr;
    if constexpr (kFloat) {
      vr = v + s * D;
    } else {
      for (int64_t d = 0; d < D; ++d) row[d] = to_float(v[s * D + d]);
      vr = row;
    }
    for (int64_t r = 0; r < rep; ++r) {
      const float p = scores[r * S + s];
      float* a = acc + r * D;
      for (int64_t d = 0; d < D; ++d) a[d] += p * vr[d];
    }
  }
  for (int64_t i = 0; i < rep * D; ++i) out[i] = static_cast<T>(acc[i]);
}

struct DecodeArgs {
  int64_t B, H, KV, D, S, capacity, bias_stride;
  float scale;
};

template <typename T>
inline void decode_groups(const T* q, const T* k, const T* v, const float* bias, T* out, const DecodeArgs& a,
                          int64_t begin, int64_t end) {
  const int64_t rep = a.H / a.KV;
  std::vector<float> scratch(rep * a.S + 2 * rep * a.D + a.D);
  float* scores = scratch.data();
  float* qf = scores + rep * a.S;
  float* acc = qf + rep * a.D;
  float* row = acc + rep * a.D;
  for (int64_t i = begin; i < end; ++i) {
    const int64_t b = i / a.KV, g = i % a.KV;
    const int64_t cache_off = (b * a.KV + g) * a.capacity * a.D;
    const int64_t q_off = (b * a.H + g * rep) * a.D;
    attend_group<T>(q + q_off, k + cache_off, v + cache_off, bias + b * a.bias_stride, out + q_off, rep, a.D,
                    a.S, a.scale, scores, qf, row, acc);
  }
}

TZ_TARGET_CLONES void decode_groups_f32(const float* q, const float* k, const float* v, const float* bias,
                                        float* out, const DecodeArgs& a, int64_t begin, int64_t end) {
  decode_groups<float>(q, k, v, bias, out, a, begin, end);
}

TZ_TARGET_CLONES void decode_groups_bf16(const c10::BFloat16* q, const c10::BFloat16* k,
                                         const c10::BFloat16* v, const float* bias, c10::BFloat16* out,
                                         const DecodeArgs& a, int64_t begin, int64_t end) {
  decode_groups<c10::BFloat16>(q, k, v, bias, out, a, begin, end);
}

}  // namespace detail

bool decode_attention_supported(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache) {
  return q.device().is_cpu() && k_cache.device().is_cpu() && q.scalar_type() == k_cache.scalar_type() &&
         v_cache.scalar_type() == k_cache.scalar_type() && k_cache.is_contiguous() &&
         v_cache.is_contiguous() && (q.scalar_type() == at::kFloat || q.scalar_type() == at::kBFloat16);
}

at::Tensor decode_attention(const at::Tensor& q_in, const at::Tensor& k, const at::Tensor& v, int64_t S,
                            const at::Tensor& bias_in, double scale) {
  TORCH_CHECK(q_in.dim() == 3 && k.dim() == 4 && v.sizes() == k.sizes(), "decode_attention: bad ranks");
  TORCH_CHECK(k.is_contiguous() && v.is_contiguous(), "decode_attention: caches must be contiguous");
  TORCH_CHECK(q_in.scalar_type() == k.scalar_type() && v.scalar_type() == k.scalar_type(),
              "decode_attention: q and caches must share a dtype");
  at::Tensor q = q_in.contiguous();
  at::Tensor bias = bias_in.to(at::kFloat);
  if (bias.stride(1) != 1) bias = bias.contiguous();
  detail::DecodeArgs a{q.size(0), q.size(1), k.size(1),      q.size(2),
                       S,         k.size(2), bias.stride(0), static_cast<float>(scale)};
  TORCH_CHECK(k.size(0) == a.B && k.size(3) == a.D && a.H % a.KV == 0 && S <= a.capacity &&
                  bias.size(0) == a.B && bias.size(1) >= S,
              "decode_attention: shapes disagree");
  at::Tensor out = at::empty({a.B, a.H * a.D}, q.options());
  const int64_t work = std::max<int64_t>(1, S * (a.H / a.KV) * a.D * 4);
  const int64_t grain = std::max<int64_t>(1, 65536 / work);
  const float* bp = bias.data_ptr<float>();
  if (q.scalar_type() == at::kFloat) {
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float* op = out.data_ptr<float>();
    at::parallel_for(0, a.B * a.KV, grain, [&](int64_t begin, int64_t end) {
      detail::decode_groups_f32(qp, kp, vp, bp, op, a, begin, end);
    });
  } else {
    using BF = c10::BFloat16;
    const BF *qp = q.data_ptr<BF>(), *kp = k.data_ptr<BF>(), *vp = v.data_ptr<BF>();
    BF* op = out.data_ptr<BF>();
    at::parallel_for(0, a.B * a.KV, grain, [&](int64_t begin, int64_t end) {
      detail::decode_groups_bf16(qp, kp, vp, bp, op, a, begin, end);
    });
  }
  return out;
}

}  // namespace tinyzero::kernels
