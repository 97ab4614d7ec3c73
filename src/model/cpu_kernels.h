// Fused CPU kernels of the model's hot loops where LibTorch's generic ops are slow on small shapes:
// one-token decode attention over the KV cache (LibTorch's CPU bmm without MKL runs one tiny GEMM per
// batch row and head, ~10 ms per decode step at batch 64 on the tiny shape). Module-private: called
// by qwen2.cpp, tested against the plain formulas in tests/unit/model/cpu_kernels_test.cpp.
#pragma once

#include <ATen/core/Tensor.h>

namespace tinyzero::kernels {

// Whether decode_attention() handles these tensors (CPU, one dtype, fp32 or bf16, contiguous caches).
bool decode_attention_supported(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache);

// One new query per row attending to the first S cached keys, grouped-query heads, softmax in fp32:
//   q       (B, H, D) contiguous, fp32 or bf16
//   k, v    (B, KV, capacity, D) contiguous caches, the dtype of q; columns [0, S) are used
//   bias    (B, S) fp32 additive mask (0 = attend, -inf = padding), row stride `bias_stride`
// Returns (B, H * D) in q's dtype. Probabilities are rounded to the cache dtype before they weight
// the values, as softmax(...).to(v.dtype) @ v does.
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t S,
                            const at::Tensor& bias, double scale);

}  // namespace tinyzero::kernels
