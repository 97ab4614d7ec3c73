// CausalLM <-> Hugging Face directory: name-to-name loading with shape checks, and checkpoint writing.
#include "tinyzero/model/weights.h"

#include <torch/torch.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

std::string join_limited(const std::vector<std::string>& names, size_t limit = 8) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

// Tensors some checkpoints carry that are not parameters of ours.
bool ignorable(const std::string& name, bool tied) {
  if (name.find("rotary_emb.inv_freq") != std::string::npos) return true;
  return tied && name == "lm_head.weight";  // some tied checkpoints store the head anyway
}

std::string quoted(const std::string& key) { return "\"" + key + "\""; }

// "field "key" of PATH is VALUE, but TENSOR in FILE has shape [..]" + what + ": " + fix.
[[noreturn]] void refuse(const std::string& config_path, const std::string& key, const std::string& value,
                         const HfWeights& weights, const std::string& tensor, const std::string& what,
                         const std::string& fix) {
  throw ConfigError("field " + quoted(key) + " of " + config_path + " is " + value + ", but " + tensor +
                    " in " + weights.file_of(tensor) + " has shape " +
                    shape_str(weights.find(tensor)->shape) + what + ": " + fix +
                    " (or use the config.json that belongs to these weights)");
}

// The head counts the q/k projections' rows allow, for the message of a mismatch: "num_attention_heads
// 6 (with num_key_value_heads 2)" and/or "num_key_value_heads 4 (with num_attention_heads 12)".
std::string head_count_fixes(const TransformerConfig& c, bool head_dim_given, int64_t q_rows,
                             int64_t kv_rows) {
  std::vector<std::string> fixes;
  // Keep num_key_value_heads: the head dimension follows from the k rows.
  if (kv_rows % c.num_key_value_heads == 0) {
    const int64_t d = kv_rows / c.num_key_value_heads;
    if (d > 0 && q_rows % d == 0) {
      const int64_t heads = q_rows / d;
      const bool consistent =
          heads % c.num_key_value_heads == 0 &&
          (head_dim_given ? d == c.head_dim : c.hidden_size % heads == 0 && c.hidden_size / heads == d);
      if (consistent && heads != c.num_attention_heads)
        fixes.push_back("\"num_attention_heads\": " + std::to_string(heads) + " (with num_key_value_heads " +
                        std::to_string(c.num_key_value_heads) + ")");
    }
  }
  // Keep num_attention_heads (and so head_dim).
  if (kv_rows % c.head_dim == 0 && q_rows == c.num_attention_heads * c.head_dim) {
    const int64_t kv = kv_rows / c.head_dim;
    if (kv > 0 && c.num_attention_heads % kv == 0 && kv != c.num_key_value_heads)
      fixes.push_back("\"num_key_value_heads\": " + std::to_string(kv) + " (with num_attention_heads " +
                      std::to_string(c.num_attention_heads) + ")");
  }
  if (fixes.empty())
    return "set num_attention_heads, num_key_value_heads" +
           std::string(head_dim_given ? " and head_dim" : "") + " to the model's own";
  std::string out = "set " + fixes[0];
  if (fixes.size() > 1) out += " or " + fixes[1] + ", whichever the model was trained with";
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameter_shapes(
    const TransformerConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  const int64_t h = c.hidden_size, i = c.intermediate_size;
  const int64_t q = c.num_attention_heads * c.head_dim, kv = c.num_key_value_heads * c.head_dim;
  auto linear = [&](const std::string& name, int64_t in, int64_t n_out, bool bias) {
    out.push_back({name + ".weight", {n_out, in}});
    if (bias) out.push_back({name + ".bias", {n_out}});
  };
  out.push_back({"model.embed_tokens.weight", {c.vocab_size, h}});
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    linear(p + "self_attn.q_proj", h, q, c.qkv_bias);
    linear(p + "self_attn.k_proj", h, kv, c.qkv_bias);
    linear(p + "self_attn.v_proj", h, kv, c.qkv_bias);
    linear(p + "self_attn.o_proj", q, h, c.o_bias);
    linear(p + "mlp.gate_proj", h, i, c.mlp_bias);
    linear(p + "mlp.up_proj", h, i, c.mlp_bias);
    linear(p + "mlp.down_proj", i, h, c.mlp_bias);
    out.push_back({p + "input_layernorm.weight", {h}});
    out.push_back({p + "post_attention_layernorm.weight", {h}});
  }
  out.push_back({"model.norm.weight", {h}});
  if (!c.tie_word_embeddings) linear("lm_head", h, c.vocab_size, false);
  return out;
}

void check_config_against_weights(const TransformerConfig& c, const std::string& config_path,
                                  const HfWeights& weights) {
  const nlohmann::json& src = c.source_json;
  auto value_of = [&](const char* key, int64_t v) {
    return std::to_string(v) + (src.contains(key) ? "" : " (by default)");
  };
  auto rows = [&](const TensorEntry* e) { return e->shape.size() == 2 ? e->shape[0] : -1; };
  auto cols = [&](const TensorEntry* e) { return e->shape.size() == 2 ? e->shape[1] : -1; };

  // The embedding sizes the vocabulary and the hidden size.
  const std::string embed_name = "model.embed_tokens.weight";
  if (const TensorEntry* embed = weights.find(embed_name); embed != nullptr && embed->shape.size() == 2) {
    if (rows(embed) != c.vocab_size)
      refuse(config_path, "vocab_size", std::to_string(c.vocab_size), weights, embed_name,
             " (one row per token)", "set \"vocab_size\": " + std::to_string(rows(embed)));
    if (cols(embed) != c.hidden_size)
      refuse(config_path, "hidden_size", std::to_string(c.hidden_size), weights, embed_name,
             " (one column per hidden unit)", "set \"hidden_size\": " + std::to_string(cols(embed)));
  }

  // Layers present: model.layers.N.* for N = 0..count-1.
  std::set<int64_t> layers;
  const std::string prefix = "model.layers.";
  for (const auto& name : weights.names()) {
    if (name.rfind(prefix, 0) != 0) continue;
    const size_t dot = name.find('.', prefix.size());
    const std::string index =
        name.substr(prefix.size(), dot == std::string::npos ? std::string::npos : dot - prefix.size());
    if (!index.empty() && index.size() < 10 && index.find_first_not_of("0123456789") == std::string::npos)
      layers.insert(std::stoll(index));
  }
  if (!layers.empty() && c.num_hidden_layers != static_cast<int64_t>(layers.size())) {
    throw ConfigError(
        "field \"num_hidden_layers\" of " + config_path + " is " + std::to_string(c.num_hidden_layers) +
        ", but the weights in " + weights.dir() + " hold " + std::to_string(layers.size()) +
        " layers (model.layers." + std::to_string(*layers.begin()) + " to model.layers." +
        std::to_string(*layers.rbegin()) + "): set \"num_hidden_layers\": " + std::to_string(layers.size()) +
        " (or use the config.json that belongs to these weights)");
  }

  // The first layer's projections size the MLP and the attention heads.
  const std::string gate = "model.layers.0.mlp.gate_proj.weight";
  if (const TensorEntry* e = weights.find(gate);
      e != nullptr && rows(e) > 0 && rows(e) != c.intermediate_size)
    refuse(config_path, "intermediate_size", std::to_string(c.intermediate_size), weights, gate, "",
           "set \"intermediate_size\": " + std::to_string(rows(e)));
  const std::string qn = "model.layers.0.self_attn.q_proj.weight",
                    kn = "model.layers.0.self_attn.k_proj.weight";
  const TensorEntry* qe = weights.find(qn);
  const TensorEntry* ke = weights.find(kn);
  if (qe != nullptr && ke != nullptr && rows(qe) > 0 && rows(ke) > 0) {
    const bool head_dim_given = src.contains("head_dim") && !src["head_dim"].is_null();
    const std::string head_dim =
        std::to_string(c.head_dim) + (head_dim_given ? ""
                                                     : " = hidden_size " + std::to_string(c.hidden_size) +
                                                           " / " + std::to_string(c.num_attention_heads));
    const std::string fix = head_count_fixes(c, head_dim_given, rows(qe), rows(ke));
    if (rows(qe) != c.num_attention_heads * c.head_dim)
      refuse(config_path, "num_attention_heads", std::to_string(c.num_attention_heads), weights, qn,
             " (num_attention_heads * head_dim rows, head_dim " + head_dim + ")", fix);
    if (rows(ke) != c.num_key_value_heads * c.head_dim) {
      // Without an explicit head_dim either count may be the wrong one: both are named.
      const std::string kv = value_of("num_key_value_heads", c.num_key_value_heads);
      throw ConfigError(
          (head_dim_given ? "field \"num_key_value_heads\" of " + config_path + " is " + kv
                          : "fields \"num_attention_heads\" and \"num_key_value_heads\" of " + config_path +
                                " are " + std::to_string(c.num_attention_heads) + " and " + kv) +
          ", but " + kn + " in " + weights.file_of(kn) + " has shape " + shape_str(ke->shape) +
          " (num_key_value_heads * head_dim = " + std::to_string(c.num_key_value_heads * c.head_dim) +
          " rows expected, head_dim " + head_dim + "): " + fix +
          " (or use the config.json that belongs to these weights)");
    }
  }

  // An untied model needs its own head.
  if (!c.tie_word_embeddings && !weights.contains("lm_head.weight") && weights.contains(embed_name)) {
    throw ConfigError(
        "field \"tie_word_embeddings\" of " + config_path + " is " +
        (src.contains("tie_word_embeddings") ? "false" : "missing (false by default)") +
        ", but the weights in " + weights.dir() +
        " hold no lm_head.weight (the output head is the embedding): set \"tie_word_embeddings\": "
        "true (or use the config.json that belongs to these weights)");
  }

  // Then every tensor by name, shape and dtype.
  std::vector<std::string> missing, mismatched, unexpected;
  std::set<std::string> ours;
  for (const auto& [name, shape] : expected_parameter_shapes(c)) {
    ours.insert(name);
    const TensorEntry* e = weights.find(name);
    if (e == nullptr)
      missing.push_back(name);
    else if (e->shape != shape)
      mismatched.push_back(name + " (expected " + shape_str(shape) + ", got " + shape_str(e->shape) + ")");
    else if (e->dtype != "F32" && e->dtype != "BF16" && e->dtype != "F16")
      mismatched.push_back(name + " (dtype " + e->dtype + ", expected F32, BF16 or F16)");
  }
  for (const auto& name : weights.names())
    if (!ours.count(name) && !ignorable(name, c.tie_word_embeddings)) unexpected.push_back(name);
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::string msg = "weights in " + weights.dir() + " do not match the model of " + config_path + ":";
    if (!missing.empty()) msg += " missing " + join_limited(missing) + ";";
    if (!mismatched.empty()) msg += " wrong shape/dtype " + join_limited(mismatched) + ";";
    if (!unexpected.empty()) msg += " unexpected " + join_limited(unexpected) + ";";
    msg += " check that config.json belongs to these weights";
    throw ConfigError(msg);
  }
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32" || name == "float") return at::kFloat;
  if (name == "bfloat16" || name == "bf16") return at::kBFloat16;
  if (name == "float16" || name == "fp16" || name == "half") return at::kHalf;
  throw ConfigError("dtype \"" + name + "\" is not supported: use float32, bfloat16 or float16");
}

std::string dtype_name(at::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return "float32";
    case at::kBFloat16:
      return "bfloat16";
    case at::kHalf:
      return "float16";
    default:
      throw Error(std::string("no checkpoint dtype name for ") + c10::toString(dtype));
  }
}

void load_weights(CausalLMImpl& model, const HfWeights& weights) {
  bool tied = model.config().tie_word_embeddings;
  std::vector<std::string> missing, mismatched, unexpected;
  std::set<std::string> ours;
  auto params = model.named_parameters(true);
  for (const auto& p : params) {
    ours.insert(p.key());
    const TensorEntry* e = weights.find(p.key());
    if (e == nullptr) {
      missing.push_back(p.key());
    } else if (at::IntArrayRef(e->shape) != p.value().sizes()) {
      mismatched.push_back(p.key() + " (expected " + shape_str(p.value().sizes()) + ", got " +
                           shape_str(e->shape) + ")");
    } else if (e->dtype != "F32" && e->dtype != "BF16" && e->dtype != "F16") {
      mismatched.push_back(p.key() + " (dtype " + e->dtype + ", expected F32, BF16 or F16)");
    }
  }
  for (const auto& name : weights.names()) {
    if (!ours.count(name) && !ignorable(name, tied)) unexpected.push_back(name);
  }
  // A tied model whose file also stores a head: accepted only when it is the embedding itself.
  if (tied && weights.contains("lm_head.weight") && mismatched.empty() && missing.empty()) {
    at::Tensor head = weights.tensor("lm_head.weight"), embed = weights.tensor("model.embed_tokens.weight");
    if (head.sizes() != embed.sizes() || !head.to(at::kFloat).equal(embed.to(at::kFloat))) {
      unexpected.push_back(
          "lm_head.weight (differs from model.embed_tokens.weight, but tie_word_embeddings is true)");
    }
  }
  if (!missing.empty() || !mismatched.empty() || !unexpected.empty()) {
    std::string msg = "weights in " + weights.dir() + " do not match the model of its config.json:";
    if (!missing.empty()) msg += " missing " + join_limited(missing) + ";";
    if (!mismatched.empty()) msg += " wrong shape/dtype " + join_limited(mismatched) + ";";
    if (!unexpected.empty()) msg += " unexpected " + join_limited(unexpected) + ";";
    msg += " check that config.json belongs to these weights";
    throw Error(msg);
  }
  torch::NoGradGuard no_grad;
  for (auto& p : params) {
    const at::Tensor source = weights.tensor(p.key());
    // One reduction per tensor: NaN or Inf in a base model would otherwise surface steps later as a
    // nan loss, after checkpoints of it were written.
    if (!at::isfinite(source).all().item<bool>()) {
      const int64_t bad = source.numel() - at::isfinite(source).sum().item<int64_t>();
      throw Error("weights: " + p.key() + " in " + weights.file_of(p.key()) + " has " + std::to_string(bad) +
                  " NaN or infinite value(s) of " + std::to_string(source.numel()) +
                  "; the checkpoint is corrupt or was saved from a diverged run: use an earlier or the "
                  "original checkpoint");
    }
    p.value().copy_(source);  // converts dtype and device
  }
}

CausalLM load_causal_lm(const std::string& dir, at::ScalarType dtype, const at::Device& device) {
  TransformerConfig config = load_transformer_config(dir);  // validated before any weight is read
  HfWeights weights = HfWeights::open(dir);
  // Against the headers' shapes before anything is allocated: an absurd size in config.json is a
  // one-line ConfigError, not an allocator failure.
  check_config_against_weights(config, (std::filesystem::path(dir) / "config.json").string(), weights);
  CausalLM model(config);
  model->to(device, dtype);
  load_weights(*model, weights);
  return model;
}

HfCheckpoint make_hf_checkpoint(CausalLMImpl& model, at::ScalarType save_dtype) {
  HfCheckpoint ckpt;
  TransformerConfig c = model.config();
  c.torch_dtype = dtype_name(save_dtype);
  ckpt.config = c.to_json();
  nlohmann::json gen = {{"_from_model_config", true}};
  if (c.bos_token_id) gen["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1)
    gen["eos_token_id"] = c.eos_token_ids[0];
  else if (!c.eos_token_ids.empty())
    gen["eos_token_id"] = c.eos_token_ids;
  if (c.pad_token_id) gen["pad_token_id"] = *c.pad_token_id;
  ckpt.generation_config = gen;
  torch::NoGradGuard no_grad;
  // The writer converts (and moves to the host) one tensor at a time while writing it, so saving
  // never holds a second copy of the whole model.
  ckpt.float_dtype = save_dtype;
  for (const auto& p : model.named_parameters(true)) ckpt.tensors.emplace_back(p.key(), p.value().detach());
  return ckpt;
}

void save_causal_lm(CausalLMImpl& model, const std::string& dir, at::ScalarType save_dtype,
                    const std::string& tokenizer_source_dir) {
  HfCheckpoint ckpt = make_hf_checkpoint(model, save_dtype);
  ckpt.tokenizer_source_dir = tokenizer_source_dir;
  save_hf_checkpoint(dir, ckpt);
}

}  // namespace tinyzero
