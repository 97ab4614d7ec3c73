// Token sampling with one random stream per sample. Each row draws its noise from a counter-based
// hash of (its sample key, its token index, the vocabulary id), not from a shared generator, so a
// sample's tokens do not depend on which other rows share its batch, on the batch size, on the CPU
// thread or rank that runs it, or on the device: the same seed gives the same samples everywhere.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

namespace tinyzero {

struct SamplingParams {
  bool greedy = false;       // argmax; temperature/top-k/top-p are ignored
  double temperature = 1.0;  // > 0
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = off
  double top_p = 1.0;        // nucleus: keep the smallest set with mass >= top_p; 1 = off
};

// The key of sample `sample` of prompt `prompt` under `seed` (prompt = its index in the run's numbering,
// e.g. in the step's global batch, so that every rank gives it the same stream).
int64_t sample_key(uint64_t seed, uint64_t prompt, uint64_t sample);

// Uniform noise in (0, 1), (A, V) fp32: element (r, v) is a hash of (keys[r], steps[r], v).
// keys and steps are (A) int64 on the logits' device.
at::Tensor keyed_uniform(const at::Tensor& keys, const at::Tensor& steps, int64_t vocab);

// Picks each row's next token from logits (A, V) fp32, with row r's noise at (keys[r], steps[r]);
// returns {token (A) int64, log-prob (A) fp32 of the token under the distribution sampled from (after
// temperature, top-k, top-p; the raw softmax when greedy)}. No host synchronisation.
std::pair<at::Tensor, at::Tensor> sample_tokens(const at::Tensor& logits, const SamplingParams& params,
                                                const at::Tensor& keys, const at::Tensor& steps);

}  // namespace tinyzero
