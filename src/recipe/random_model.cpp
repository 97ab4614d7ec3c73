// A random model of a given shape with its tokenizer (see random_model.h).
#include "tinyzero/recipe/random_model.h"

#include <torch/torch.h>

#include <filesystem>

#include "tinyzero/core/errors.h"
#include "tinyzero/model/model_config.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/tokenizer/tokenizer.h"

namespace tinyzero {

RandomModelInfo write_random_model(const RandomModelOptions& options, const std::string& out) {
  TransformerConfig config = load_transformer_config(options.model_config);
  const at::ScalarType dtype = parse_dtype(options.dtype);
  if (!options.tokenizer_dir.empty()) {
    namespace fs = std::filesystem;
    if (!fs::exists(fs::path(options.tokenizer_dir) / "tokenizer.json") &&
        !fs::exists(fs::path(options.tokenizer_dir) / "tokenizer.model"))
      throw ConfigError("tokenizer directory " + options.tokenizer_dir +
                        " has no tokenizer.json or tokenizer.model; give a model or tokenizer directory");
    if (config.eos_token_ids.empty()) {
      const auto tok = load_tokenizer(options.tokenizer_dir);
      if (tok->eos_id() && *tok->eos_id() < config.vocab_size) config.eos_token_ids = {*tok->eos_id()};
      if (!config.bos_token_id && tok->bos_id() && *tok->bos_id() < config.vocab_size)
        config.bos_token_id = tok->bos_id();
    }
  }
  torch::manual_seed(options.seed);
  CausalLM model(config);
  save_causal_lm(*model, out, dtype, options.tokenizer_dir);
  return {config.architecture, config.num_parameters()};
}

}  // namespace tinyzero
