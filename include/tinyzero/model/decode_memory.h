// What one decoding row of the rollout engine costs in memory, and how many rows fit in a budget. The
// engine sizes its batch of active rows with it (GenerateOptions::memory_budget_bytes) and `--dry-run`
// reports the same figure, so the two agree.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "tinyzero/model/model_config.h"

namespace tinyzero {

struct DecodeRowBytes {
  double kv = 0;    // its K and V slab: every layer, every KV head, `capacity` columns
  double step = 0;  // its share of a decode step's transient tensors: vocabulary-wide logits and
                    // sampling (fp32 and int64), the layer activations, attention scores, its bias row
  double total() const { return kv + step; }
};

// The rollout engine's attention widths (prefill and decode) and KV slabs are multiples of this many
// cache columns. Each row's keys start at column 0, so a row's real keys then lie in whole 16-column
// groups of any width its batch has, and the attention kernels (SDPA's CPU kernel rounds a partial last
// group its own way) give the row the same bits in any batch: a sample does not depend on the prompts
// it was generated with.
constexpr int64_t kCacheColumnAlign = 16;

// The columns of a row's KV slab for `tokens` (longest prompt + max new tokens): rounded up to
// kCacheColumnAlign.
inline int64_t cache_columns(int64_t tokens) {
  return (tokens + kCacheColumnAlign - 1) / kCacheColumnAlign * kCacheColumnAlign;
}

// A row of `tokens` tokens (longest prompt + max new tokens; its slab holds cache_columns(tokens)) with
// its cache in `cache_bytes`-byte elements (2 under bf16 autocast or bf16 weights, else 4).
DecodeRowBytes decode_row_bytes(const TransformerConfig& model, int64_t tokens, int64_t cache_bytes);

// The copies generate() makes for a call (CausalLMImpl::set_fused_inference): q/k/v and gate/up weights
// (and biases) concatenated per layer in `param_bytes`-byte elements, plus, when `bf16_copies` (fp32
// weights under bf16 autocast), a bf16 copy of each and of the o_proj and down_proj weights.
double fused_weight_bytes(const TransformerConfig& model, int64_t param_bytes, bool bf16_copies);

// Rows that fit in `budget_bytes` (0 when not even one does).
int64_t rows_within(double budget_bytes, const DecodeRowBytes& row);

// The bytes this process can still allocate on `device`: on CUDA the device's free memory plus what
// LibTorch's caching allocator holds unused; on the CPU the kernel's MemAvailable (/proc/meminfo).
// Throws Error when it cannot be read.
double available_device_bytes(const at::Device& device);

// "1.23 GiB"
std::string format_gib(double bytes);

}  // namespace tinyzero
