// Text generation helpers the CLI's commands share (generate, trace-stats): prompt padding, the stop
// and pad ids a model directory asks for, and prompts in -> decoded responses out.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tinyzero/model/model_config.h"
#include "tinyzero/tokenizer/tokenizer.h"

namespace tinyzero::cli {

// Whether `dir` holds tokenizer.json or tokenizer.model.
bool has_tokenizer(const std::string& dir);

// Left-pads ragged rows: ids (B, P) with pad, mask (B, P). Throws UsageError for an empty row.
std::pair<at::Tensor, at::Tensor> left_pad(const std::vector<std::vector<int64_t>>& rows, int64_t pad);

struct GenerationIds {
  std::vector<int64_t> eos;
  int64_t pad = 0;
};

// EOS ids: `eos` when given, else generation_config.json, else config.json, else the tokenizer's
// (none with no_eos). Pad: `pad`, the tokenizer's, generation_config's, config's, the first EOS, 0.
GenerationIds generation_ids(const std::string& model_dir, const TransformerConfig& config,
                             const Tokenizer* tok, const std::vector<int64_t>& eos,
                             const std::optional<int64_t>& pad, bool no_eos);

struct TextGeneration {
  int64_t max_new_tokens = 256;
  bool greedy = false;
  double temperature = 1.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // stop strings (the row ends with the token that completes one)
  int64_t batch_size = 128;       // prompts per generate() call
};

// The decoded responses (special tokens kept) of the model in `model_dir` (its own tokenizer) to
// `prompts`, on the CPU in float32, in prompt order.
std::vector<std::string> generate_texts(const std::string& model_dir, const std::vector<std::string>& prompts,
                                        const TextGeneration& options);

}  // namespace tinyzero::cli
