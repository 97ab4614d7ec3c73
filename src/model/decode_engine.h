// The continuous-batching decode engine behind generate() (see tinyzero/model/generator.h).
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "tinyzero/model/decode_memory.h"
#include "tinyzero/model/generator.h"

namespace tinyzero {

// One finished sample.
struct SampleOutput {
  std::vector<int64_t> ids;
  std::vector<float> logprobs;
  FinishReason finish = FinishReason::kLength;
  int64_t generated = 0;  // tokens generated before stop trimming
};

// The prompts of one generate() call and what its engines share: the outputs (sample j of prompt i at
// i * n + j, each written by the engine that ran it).
struct GenerationJob {
  GenerationJob(const std::vector<std::vector<int64_t>>& p, const GenerateOptions& o);
  const std::vector<std::vector<int64_t>>& prompts;
  const GenerateOptions& options;
  int64_t longest_prompt = 0;
  std::vector<SampleOutput> outputs;
  // Tokens of the longest row: the longest prompt and every new token.
  int64_t tokens() const { return longest_prompt + options.max_new_tokens; }
  // Columns of an engine's KV slab (decode_memory.h).
  int64_t capacity() const { return cache_columns(tokens()); }
  std::mutex progress_mutex;  // serialises options.on_rows_done
};

// The dtype of the engines' KV cache: bf16 under autocast, else the model's.
at::ScalarType decode_cache_dtype(CausalLMImpl& model);

// Decodes the samples of the job's prompts [first_prompt, end_prompt) with up to `slots` rows at once
// on the calling thread, starting prompts in order as slots free up. (A fixed share per engine, not a
// shared queue: which rows share a batch, and so the rounding of their logits, stays reproducible.)
// Returns the CUDA graphs it captured.
int64_t run_decode_engine(CausalLMImpl& model, GenerationJob& job, int64_t slots, int64_t first_prompt,
                          int64_t end_prompt);

}  // namespace tinyzero
