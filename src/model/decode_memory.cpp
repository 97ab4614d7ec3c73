// Memory of a decoding row and of the device (see decode_memory.h).
#include "tinyzero/model/decode_memory.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#ifdef TZ_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#endif

#include "tinyzero/core/errors.h"

namespace tinyzero {

DecodeRowBytes decode_row_bytes(const TransformerConfig& m, int64_t tokens, int64_t cache_bytes) {
  const double C = static_cast<double>(cache_columns(tokens)), e = static_cast<double>(cache_bytes);
  const double L = static_cast<double>(m.num_hidden_layers), V = static_cast<double>(m.vocab_size);
  const double h = static_cast<double>(m.hidden_size), I = static_cast<double>(m.intermediate_size);
  const double q = static_cast<double>(m.num_attention_heads * m.head_dim);
  const double kv = static_cast<double>(m.num_key_value_heads * m.head_dim);
  DecodeRowBytes r;
  r.kv = 2.0 * L * kv * C * e;
  // Sampling: the keyed noise is hashed in int64 (up to three vocabulary-wide temporaries alive at
  // once), the logits, log-probs and ratios in fp32 (up to four): 40 bytes per vocabulary id, rounded
  // up to 48 for the head's output in its own dtype.
  const double sampling = 48.0 * V;
  // One layer's activations for one token (the layers run one after another): the residual stream,
  // norms, q/k/v, attention output, gate/up (2I) and their product, in the cache's dtype.
  const double layer = (6.0 * h + q + 2.0 * kv + 3.0 * I) * e;
  // Attention scores and probabilities (fp32) of each query head over the row's columns, and the row's
  // fp32 bias and output buffers.
  const double attention = 2.0 * static_cast<double>(m.num_attention_heads) * C * 4.0;
  r.step = sampling + layer + attention + C * 4.0 + 12.0 * C;
  return r;
}

double fused_weight_bytes(const TransformerConfig& m, int64_t param_bytes, bool bf16_copies) {
  const double H = static_cast<double>(m.hidden_size), I = static_cast<double>(m.intermediate_size);
  const double qkv = static_cast<double>((m.num_attention_heads + 2 * m.num_key_value_heads) * m.head_dim);
  const double per_layer = qkv * H + (m.qkv_bias ? qkv : 0) + 2 * I * H + (m.mlp_bias ? 2 * I : 0);
  const double out_layer = static_cast<double>(m.num_attention_heads * m.head_dim) * H + I * H;  // o, down
  return static_cast<double>(m.num_hidden_layers) *
         (per_layer * static_cast<double>(param_bytes + (bf16_copies ? 2 : 0)) +
          (bf16_copies ? 2 * out_layer : 0));
}

int64_t rows_within(double budget_bytes, const DecodeRowBytes& row) {
  if (!(budget_bytes > 0) || !(row.total() > 0)) return 0;
  return static_cast<int64_t>(std::floor(budget_bytes / row.total()));
}

double available_device_bytes(const at::Device& device) {
  if (device.is_cuda()) {
#ifdef TZ_HAVE_CUDA
    c10::cuda::CUDAGuard guard(device);
    size_t free_bytes = 0, total_bytes = 0;
    const cudaError_t err = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (err != cudaSuccess)
      throw Error(std::string("cannot read the free memory of ") + device.str() + ": " +
                  cudaGetErrorString(err));
    using c10::CachingAllocator::StatType;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    const auto aggregate = static_cast<size_t>(StatType::AGGREGATE);
    const double unused_reserved = static_cast<double>(stats.reserved_bytes[aggregate].current -
                                                       stats.allocated_bytes[aggregate].current);
    return static_cast<double>(free_bytes) + std::max(0.0, unused_reserved);
#else
    throw Error("available_device_bytes: this build has no CUDA");
#endif
  }
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string key;
    double kib = 0;
    if (s >> key >> kib && key == "MemAvailable:") return kib * 1024.0;
  }
  throw Error("cannot read MemAvailable from /proc/meminfo (the memory left for rollouts)");
}

std::string format_gib(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

}  // namespace tinyzero
