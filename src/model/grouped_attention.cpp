// Grouped-head attention without copies of K and V (see grouped_attention.h).
#include "grouped_attention.h"

#include <ATen/ATen.h>

#include <cmath>

namespace tinyzero {

at::Tensor grouped_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             const at::Tensor& bias) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3), KV = k.size(1), S = k.size(2);
  const int64_t rep = H / KV;
  // (B, T, KV, rep, D) -> (B, KV, rep * T, D): a copy of the queries only (none when T == 1).
  at::Tensor groups = q.reshape({B, T, KV, rep, D}).permute({0, 2, 3, 1, 4}).reshape({B, KV, rep * T, D});
  at::Tensor scores = at::matmul(groups, k.transpose(-1, -2)).to(at::kFloat);  // (B, KV, rep * T, S)
  scores.mul_(1.0 / std::sqrt(static_cast<double>(D)));
  scores.view({B, KV, rep, T, S}).add_(bias.reshape({B, 1, 1, T, S}));
  at::Tensor probs = at::softmax(scores, -1).to(v.scalar_type());
  at::Tensor out = at::matmul(probs, v).to(q.scalar_type());  // (B, KV, rep * T, D)
  return out.view({B, KV, rep, T, D}).permute({0, 3, 1, 2, 4}).reshape({B, T, H * D});
}

}  // namespace tinyzero
