// A randomly initialised causal LM of a given shape, written as a Hugging Face directory with its
// tokenizer: what `tinyzero-train init` writes and what the recipe's tiny-model stage starts from.
#pragma once

#include <cstdint>
#include <string>

namespace tinyzero {

struct RandomModelOptions {
  std::string model_config;       // a Hugging Face config.json (or its directory)
  std::string tokenizer_dir;      // tokenizer files copied in; "" = none
  uint64_t seed = 0;              // torch's seed for the initialisation
  std::string dtype = "float32";  // saved dtype: float32 | bfloat16
};

struct RandomModelInfo {
  std::string architecture;  // e.g. Qwen2ForCausalLM
  int64_t parameters = 0;
};

// Writes `out` (atomically, as every checkpoint). A model made for a tokenizer ends where that
// tokenizer's EOS is, as Hugging Face models say in config.json and generation_config.json (unless
// the config names its own): written there, generate, transformers and vLLM stop on it without being
// told. Throws ConfigError for a bad shape file, dtype or tokenizer directory.
RandomModelInfo write_random_model(const RandomModelOptions& options, const std::string& out);

}  // namespace tinyzero
