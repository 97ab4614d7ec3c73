// Loading and saving CausalLM weights as Hugging Face directories (config.json + safetensors).
//
// Loading is name to name with shape checks: missing, unexpected and mis-shaped tensors are reported
// by name in one error. File dtypes F32/BF16/F16 are converted to the requested parameter dtype.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tinyzero/io/checkpoint.h"
#include "tinyzero/model/qwen2.h"

namespace tinyzero {

// "float32" | "bfloat16" | "float16" (also "fp32", "bf16", "fp16") -> dtype; ConfigError otherwise.
at::ScalarType parse_dtype(const std::string& name);
// kFloat -> "float32", kBFloat16 -> "bfloat16", kHalf -> "float16".
std::string dtype_name(at::ScalarType dtype);

// Copies every parameter of `model` from `weights` (converted to the parameter's dtype and device).
// Throws Error naming the missing, unexpected and mis-shaped tensors and the directory.
void load_weights(CausalLMImpl& model, const HfWeights& weights);

// Names and shapes of the parameters of CausalLM(config) (Hugging Face names), computed without
// allocating anything.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameter_shapes(
    const TransformerConfig& config);

// Checks `config` (read from `config_path`) against the tensor shapes of the safetensors headers in
// `weights`, reading no tensor data: vocab_size and hidden_size against model.embed_tokens.weight,
// num_hidden_layers against the layers present, intermediate_size and the head counts against layer 0's
// projections, tie_word_embeddings against lm_head.weight, then every tensor's name, shape and dtype.
// Throws ConfigError naming config.json, the key, its value, the shape found and the fix.
void check_config_against_weights(const TransformerConfig& config, const std::string& config_path,
                                  const HfWeights& weights);

// Reads config.json and the weights of a Hugging Face directory into a new model with parameters of
// `dtype` on `device`, after check_config_against_weights (nothing is allocated for a config.json that
// does not fit the weights).
CausalLM load_causal_lm(const std::string& dir, at::ScalarType dtype = at::kFloat,
                        const at::Device& device = at::Device(at::kCPU));

// The checkpoint of `model`: config.json (torch_dtype = save_dtype), generation_config.json (bos/eos/pad
// of the config), tensors in `save_dtype` under their HF names; a tied head is not stored.
HfCheckpoint make_hf_checkpoint(CausalLMImpl& model, at::ScalarType save_dtype);

// make_hf_checkpoint + save_hf_checkpoint (atomic directory write), copying tokenizer files from
// `tokenizer_source_dir` when it is not empty.
void save_causal_lm(CausalLMImpl& model, const std::string& dir, at::ScalarType save_dtype,
                    const std::string& tokenizer_source_dir = "");

}  // namespace tinyzero
