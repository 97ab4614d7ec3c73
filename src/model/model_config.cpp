// Parsing and validation of Hugging Face config.json files for Qwen2 / Llama / Mistral causal LMs.
#include "tinyzero/model/model_config.h"

#include <cmath>
#include <filesystem>
#include <sstream>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"

namespace tinyzero {
namespace {

std::string where_field(const std::string& where, const std::string& key) {
  return "field \"" + key + "\" of " + where;
}

int64_t get_int(const nlohmann::json& j, const std::string& key, const std::string& where,
                std::optional<int64_t> fallback = std::nullopt) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (fallback) return *fallback;
    throw ConfigError("missing " + where_field(where, key) + ": add it to the config.json");
  }
  if (!it->is_number_integer()) {
    throw ConfigError(where_field(where, key) + " is " + it->dump() + ": expected an integer");
  }
  return it->get<int64_t>();
}

int64_t get_positive(const nlohmann::json& j, const std::string& key, const std::string& where,
                     std::optional<int64_t> fallback = std::nullopt) {
  int64_t v = get_int(j, key, where, fallback);
  if (v <= 0) throw ConfigError(where_field(where, key) + " is " + std::to_string(v) + ": must be > 0");
  return v;
}

double get_double(const nlohmann::json& j, const std::string& key, const std::string& where,
                  double fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_number())
    throw ConfigError(where_field(where, key) + " is " + it->dump() + ": expected a number");
  return it->get<double>();
}

bool get_bool(const nlohmann::json& j, const std::string& key, const std::string& where, bool fallback) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean())
    throw ConfigError(where_field(where, key) + " is " + it->dump() + ": expected true/false");
  return it->get<bool>();
}

std::optional<int64_t> get_opt_id(const nlohmann::json& j, const std::string& key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer())
    throw ConfigError(where_field(where, key) + " is " + it->dump() + ": expected an id");
  return it->get<int64_t>();
}

}  // namespace

int64_t TransformerConfig::num_parameters() const {
  int64_t h = hidden_size, q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  int64_t attn = h * q + 2 * h * kv + q * h + (qkv_bias ? q + 2 * kv : 0) + (o_bias ? h : 0);
  int64_t mlp = 3 * h * intermediate_size + (mlp_bias ? 2 * intermediate_size + h : 0);
  int64_t layer = attn + mlp + 2 * h;
  int64_t embed = vocab_size * h;
  return embed + num_hidden_layers * layer + h + (tie_word_embeddings ? 0 : embed);
}

nlohmann::json TransformerConfig::to_json() const {
  nlohmann::json j = source_json.is_object() ? source_json : nlohmann::json::object();
  j["architectures"] = {architecture};
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  if (head_dim != hidden_size / num_attention_heads || j.contains("head_dim")) j["head_dim"] = head_dim;
  j["rope_theta"] = rope_theta;
  j["rms_norm_eps"] = rms_norm_eps;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["max_position_embeddings"] = max_position_embeddings;
  j["hidden_act"] = "silu";
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_ids.size() == 1)
    j["eos_token_id"] = eos_token_ids[0];
  else if (!eos_token_ids.empty())
    j["eos_token_id"] = eos_token_ids;
  if (pad_token_id) j["pad_token_id"] = *pad_token_id;
  j["torch_dtype"] = torch_dtype;
  j["initializer_range"] = initializer_range;
  if (model_type != "qwen2") {
    j["attention_bias"] = qkv_bias;
    if (model_type == "llama") j["mlp_bias"] = mlp_bias;
  }
  return j;
}

TransformerConfig parse_transformer_config(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw ConfigError(where + " is not a JSON object: expected a Hugging Face config.json");
  TransformerConfig c;
  c.source_json = j;

  // Architecture: from "architectures" (preferred) or "model_type".
  std::string arch;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty()) {
    if (j["architectures"].size() != 1 || !j["architectures"][0].is_string()) {
      throw ConfigError(where_field(where, "architectures") + " is " + j["architectures"].dump() +
                        ": expected exactly one architecture name");
    }
    arch = j["architectures"][0].get<std::string>();
  }
  std::string model_type =
      j.contains("model_type") && j["model_type"].is_string() ? j["model_type"].get<std::string>() : "";
  if (arch.empty()) {
    if (model_type == "qwen2")
      arch = "Qwen2ForCausalLM";
    else if (model_type == "llama")
      arch = "LlamaForCausalLM";
    else if (model_type == "mistral")
      arch = "MistralForCausalLM";
  }
  if (arch == "Qwen2ForCausalLM")
    c.model_type = "qwen2";
  else if (arch == "LlamaForCausalLM")
    c.model_type = "llama";
  else if (arch == "MistralForCausalLM")
    c.model_type = "mistral";
  else if (arch == "Qwen2ForTokenClassification") {
    throw ConfigError(where_field(where, "architectures") + " is \"" + arch +
                      "\": a value model (the critic/ directory of a PPO checkpoint), not a causal LM; give "
                      "the checkpoint directory above it (or a Qwen2ForCausalLM model)");
  } else {
    throw ConfigError(where_field(where, arch.empty() ? "model_type" : "architectures") + " is \"" +
                      (arch.empty() ? model_type : arch) +
                      "\": supported are Qwen2ForCausalLM, LlamaForCausalLM, MistralForCausalLM");
  }
  // "architectures" decides, but a model_type naming another family means the file was edited or
  // belongs to another model: its other fields cannot be trusted either.
  if (j.contains("model_type") && !j["model_type"].is_null() && model_type != c.model_type) {
    throw ConfigError(where_field(where, "model_type") + " is " + j["model_type"].dump() +
                      ", but \"architectures\" names " + arch + " (model_type \"" + c.model_type +
                      "\"): the file mixes two models; set \"model_type\": \"" + c.model_type +
                      "\" if the weights are " + arch + "'s, else use the model's own config.json");
  }
  c.architecture = arch;

  c.vocab_size = get_positive(j, "vocab_size", where);
  c.hidden_size = get_positive(j, "hidden_size", where);
  c.intermediate_size = get_positive(j, "intermediate_size", where);
  c.num_hidden_layers = get_positive(j, "num_hidden_layers", where);
  c.num_attention_heads = get_positive(j, "num_attention_heads", where);
  c.num_key_value_heads = get_positive(j, "num_key_value_heads", where, c.num_attention_heads);
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    throw ConfigError(where_field(where, "num_key_value_heads") + " is " +
                      std::to_string(c.num_key_value_heads) + ": must divide num_attention_heads (" +
                      std::to_string(c.num_attention_heads) + ")");
  }
  if (c.hidden_size % c.num_attention_heads != 0 && !j.contains("head_dim")) {
    throw ConfigError(where_field(where, "hidden_size") + " is " + std::to_string(c.hidden_size) +
                      ": not divisible by num_attention_heads (" + std::to_string(c.num_attention_heads) +
                      "); give head_dim explicitly");
  }
  c.head_dim = get_positive(j, "head_dim", where, c.hidden_size / c.num_attention_heads);
  if (c.head_dim % 2 != 0) {
    throw ConfigError(where_field(where, "head_dim") + " is " + std::to_string(c.head_dim) +
                      ": rotary embeddings need an even head dimension");
  }
  c.rope_theta = get_double(j, "rope_theta", where, 10000.0);
  if (!(c.rope_theta > 0) || !std::isfinite(c.rope_theta))
    throw ConfigError(where_field(where, "rope_theta") + " is " + j["rope_theta"].dump() +
                      ": must be a finite number > 0 (Qwen2.5: 1000000.0)");
  c.rms_norm_eps = get_double(j, "rms_norm_eps", where, 1e-6);
  if (!(c.rms_norm_eps > 0) || !std::isfinite(c.rms_norm_eps))
    throw ConfigError(where_field(where, "rms_norm_eps") + " is " + j["rms_norm_eps"].dump() +
                      ": must be a finite number > 0 (Qwen2.5: 1e-06)");
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", where, c.model_type == "qwen2" ? false : false);
  c.max_position_embeddings = get_positive(j, "max_position_embeddings", where, 2048);
  c.initializer_range = get_double(j, "initializer_range", where, 0.02);
  if (!(c.initializer_range >= 0) || !std::isfinite(c.initializer_range))
    throw ConfigError(where_field(where, "initializer_range") + " is " + j["initializer_range"].dump() +
                      ": must be a finite number >= 0 (the std of `init`'s weights; usually 0.02)");
  c.bos_token_id = get_opt_id(j, "bos_token_id", where);
  c.pad_token_id = get_opt_id(j, "pad_token_id", where);
  if (j.contains("eos_token_id") && j["eos_token_id"].is_array()) {
    for (const auto& e : j["eos_token_id"]) {
      if (!e.is_number_integer()) {
        throw ConfigError(where_field(where, "eos_token_id") + " is " + j["eos_token_id"].dump() +
                          ": expected an id or a list of ids");
      }
      c.eos_token_ids.push_back(e.get<int64_t>());
    }
  } else if (auto eos = get_opt_id(j, "eos_token_id", where)) {
    c.eos_token_ids.push_back(*eos);
  }

  // Special-token ids index the embedding: one past it would fail (or read garbage) only when the
  // token is first generated.
  auto check_id = [&](const char* key, int64_t id) {
    if (id < 0 || id >= c.vocab_size) {
      throw ConfigError(where_field(where, key) + " is " + std::to_string(id) +
                        ": not a token id of this model (" + "vocab_size " + std::to_string(c.vocab_size) +
                        ", ids 0.." + std::to_string(c.vocab_size - 1) +
                        "); set it to the id the tokenizer gives that " + "token, or remove the key");
    }
  };
  if (c.bos_token_id) check_id("bos_token_id", *c.bos_token_id);
  for (int64_t id : c.eos_token_ids) check_id("eos_token_id", id);
  if (c.pad_token_id) check_id("pad_token_id", *c.pad_token_id);

  if (j.contains("torch_dtype") && !j["torch_dtype"].is_null()) {
    if (!j["torch_dtype"].is_string())
      throw ConfigError(where_field(where, "torch_dtype") + ": expected a string");
    c.torch_dtype = j["torch_dtype"].get<std::string>();
    if (c.torch_dtype != "float32" && c.torch_dtype != "bfloat16" && c.torch_dtype != "float16") {
      throw ConfigError(where_field(where, "torch_dtype") + " is \"" + c.torch_dtype +
                        "\": supported are float32, bfloat16, float16");
    }
  }

  // Biases.
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;
    c.o_bias = false;
  } else {
    c.qkv_bias = c.o_bias = get_bool(j, "attention_bias", where, false);
    c.mlp_bias = get_bool(j, "mlp_bias", where, false);
  }

  // Features we do not implement.
  std::string act =
      j.contains("hidden_act") && j["hidden_act"].is_string() ? j["hidden_act"].get<std::string>() : "silu";
  if (act != "silu") {
    throw ConfigError(where_field(where, "hidden_act") + " is \"" + act +
                      "\": only silu (SwiGLU) is supported");
  }
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const auto& rs = j["rope_scaling"];
    std::string type;
    if (rs.is_object()) {
      if (rs.contains("rope_type") && rs["rope_type"].is_string())
        type = rs["rope_type"].get<std::string>();
      else if (rs.contains("type") && rs["type"].is_string())
        type = rs["type"].get<std::string>();
    }
    if (type != "default") {
      throw ConfigError(where_field(where, "rope_scaling") + " is " + rs.dump() +
                        ": rope scaling is not implemented (only null or type \"default\")");
    }
  }
  if (c.model_type == "qwen2") {
    bool use_sw = get_bool(j, "use_sliding_window", where, false);
    if (use_sw) {
      int64_t window = get_int(j, "sliding_window", where, c.max_position_embeddings);
      if (window < c.max_position_embeddings) {
        throw ConfigError(where_field(where, "use_sliding_window") + " is true with sliding_window " +
                          std::to_string(window) + " < max_position_embeddings " +
                          std::to_string(c.max_position_embeddings) +
                          ": sliding-window attention is not implemented; set use_sliding_window to false");
      }
    }
  } else if (c.model_type == "mistral") {
    if (j.contains("sliding_window") && !j["sliding_window"].is_null()) {
      int64_t window = get_int(j, "sliding_window", where);
      if (window < c.max_position_embeddings) {
        throw ConfigError(where_field(where, "sliding_window") + " is " + std::to_string(window) +
                          " < max_position_embeddings " + std::to_string(c.max_position_embeddings) +
                          ": sliding-window attention is not implemented; set it to null");
      }
    }
  }
  if (c.model_type == "llama" && get_int(j, "pretraining_tp", where, 1) != 1) {
    throw ConfigError(where_field(where, "pretraining_tp") +
                      " is not 1: tensor-parallel slicing is not supported");
  }
  double dropout = get_double(j, "attention_dropout", where, 0.0);
  if (dropout != 0.0) {
    throw ConfigError(where_field(where, "attention_dropout") + " is " + std::to_string(dropout) +
                      ": attention dropout is not implemented; set it to 0.0");
  }
  return c;
}

TransformerConfig load_transformer_config(const std::string& path) {
  std::filesystem::path p(path);
  if (std::filesystem::is_directory(p)) p /= "config.json";
  std::string text = read_file(p.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw ConfigError(p.string() + " is not valid JSON: " + e.what());
  }
  return parse_transformer_config(j, p.string());
}

}  // namespace tinyzero
