// Attention of one new token per row (a decode step) over a KV cache with grouped key/value heads.
//
// SDPA's fused CUDA kernels take either a mask (memory-efficient attention) or grouped heads (flash
// attention), not both, so a masked decode step with enable_gqa falls back to SDPA's math kernel,
// which repeats K and V for every query head: at 3B and 256 rows about 2 GiB written and read per
// layer and step, far more than the weights. Here the queries are viewed as (B, KV, H / KV, D), so
// each key/value head meets its group of query heads in one batched matmul over the cache's own
// strides: no copy of K or V, and a score matrix of only B x H x S.
#pragma once

#include <ATen/core/Tensor.h>

namespace tinyzero {

// q (B, 1, H, D); k, v (B, KV, S, D), possibly strided views of a cache, KV dividing H; bias additive
// float, B x S elements (0 = attend, -inf = masked). Query head h uses key/value head h / (H / KV), as
// SDPA's enable_gqa does. Returns (B, 1, H * D) in q's dtype; softmax in fp32.
at::Tensor grouped_decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const at::Tensor& bias);

}  // namespace tinyzero
