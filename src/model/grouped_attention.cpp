// Grouped-head attention of a decode step (see grouped_attention.h).
#include "grouped_attention.h"

#include <ATen/ATen.h>

#include <cmath>

namespace tinyzero {

at::Tensor grouped_decode_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    const at::Tensor& bias) {
  const int64_t B = q.size(0), H = q.size(2), D = q.size(3), KV = k.size(1), S = k.size(2);
  at::Tensor groups = q.reshape({B, KV, H / KV, D});                           // (B, KV, rep, D)
  at::Tensor scores = at::matmul(groups, k.transpose(-1, -2)).to(at::kFloat);  // (B, KV, rep, S)
  scores.mul_(1.0 / std::sqrt(static_cast<double>(D))).add_(bias.reshape({B, 1, 1, S}));
  at::Tensor probs = at::softmax(scores, -1).to(v.scalar_type());
  return at::matmul(probs, v).to(q.scalar_type()).reshape({B, 1, H * D});  // (B, KV, rep, D) -> (B, 1, H*D)
}

}  // namespace tinyzero
