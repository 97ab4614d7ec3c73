// Attention with grouped key/value heads, for the shapes where SDPA has no fused kernel.
//
// SDPA's fused CUDA kernels take either a mask (memory-efficient attention) or grouped heads (flash
// attention), not both, and flash attention takes no fp32. Where none applies, SDPA falls back to its
// math kernel, which repeats K and V for every query head: in a decode step at 3B and 256 rows about
// 2 GiB written and read per layer and step, far more than the weights. Here the queries are viewed as
// (B, KV, H / KV * T, D), so each key/value head meets its group of query heads in one batched matmul
// over K and V as they are (strided views of a cache included): no copy of K or V, and the scores the
// math kernel makes too (B x H x T x S).
#pragma once

#include <ATen/core/Tensor.h>

namespace tinyzero {

// q (B, T, H, D); k, v (B, KV, S, D), KV dividing H; bias additive float with B x T x S elements,
// laid out (B, T, S) (0 = attend, -inf = masked; every query row attends at least one key). Query
// head h uses key/value head h / (H / KV), as SDPA's enable_gqa does. Returns (B, T, H * D) in q's
// dtype; the softmax in fp32. Differentiable.
at::Tensor grouped_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& bias);

}  // namespace tinyzero
