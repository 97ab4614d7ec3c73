// CausalLM <-> Hugging Face directory: name-to-name loading with shape checks, and checkpoint writing.
#include "tinyzero/model/weights.h"

#include <torch/torch.h>

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

}  // namespace

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
