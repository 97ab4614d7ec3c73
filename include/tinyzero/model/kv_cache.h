// KVCache: preallocated per-layer keys and values for generation. The model holds weights only; the
// cache is created by the caller (the generator) and passed into each forward.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "tinyzero/model/model_config.h"

namespace tinyzero {

struct KVCache {
  std::vector<at::Tensor> k, v;  // one per layer, each (B, KV heads, capacity, head_dim)

  // Zero-filled cache of `capacity` positions for `batch` rows.
  static KVCache allocate(const TransformerConfig& c, int64_t batch, int64_t capacity, at::ScalarType dtype,
                          const at::Device& device);
  int64_t batch() const { return k.empty() ? 0 : k[0].size(0); }
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(2); }
  // Moves rows `rows` (int64 indices) to rows 0 .. rows.size(0) - 1 in place (the tensors keep their
  // storage, as a captured decode step needs), copying the first `used` positions only.
  void move_rows_to_front(const at::Tensor& rows, int64_t used);
  // The first `n` rows, as views of this cache's tensors.
  KVCache first_rows(int64_t n) const;
};

}  // namespace tinyzero
