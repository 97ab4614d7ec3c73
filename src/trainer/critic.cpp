// The PPO value model: see critic.h.
#include "trainer/critic.h"

#include "tinyzero/core/errors.h"
#include "tinyzero/io/checkpoint.h"
#include "tinyzero/model/weights.h"

namespace tinyzero {

Critic::Critic(const std::string& base_dir, at::ScalarType dtype, const at::Device& device, uint64_t seed)
    : dtype_(dtype) {
  backbone_ = load_causal_lm(base_dir, dtype, device);
  if (backbone_->lm_head) {  // the LM head is never used by the critic: free it
    backbone_->unregister_module("lm_head");
    backbone_->lm_head = nullptr;
  }
  const TransformerConfig& mc = backbone_->config();
  head_ = torch::nn::Linear(torch::nn::LinearOptions(mc.hidden_size, 1).bias(true));
  {
    torch::NoGradGuard no_grad;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    head_->weight.copy_(at::normal(0.0, mc.initializer_range, {1, mc.hidden_size}, gen));
    head_->bias.zero_();
  }
  head_->to(device, dtype);
}

at::Tensor Critic::values(const at::Tensor& ids, const at::Tensor& attention_mask) {
  at::Tensor hidden =
      backbone_->hidden_states(ids, attention_mask, positions_from_mask(attention_mask));  // (B, T, H)
  return head_->forward(hidden).squeeze(-1).to(at::kFloat);                                // (B, T)
}

std::vector<std::pair<std::string, at::Tensor>> Critic::named_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& item : backbone_->named_parameters()) out.emplace_back(item.key(), item.value());
  out.emplace_back("score.weight", head_->weight);
  out.emplace_back("score.bias", head_->bias);
  return out;
}

HfCheckpoint Critic::hf_checkpoint(at::ScalarType dtype) {
  HfCheckpoint ckpt = make_hf_checkpoint(*backbone_, dtype);
  ckpt.config["architectures"] = {"Qwen2ForTokenClassification"};
  ckpt.config["num_labels"] = 1;
  ckpt.config["id2label"] = {{"0", "LABEL_0"}};
  ckpt.config["label2id"] = {{"LABEL_0", 0}};
  ckpt.config["tie_word_embeddings"] = false;  // no LM head is stored or wanted
  ckpt.generation_config = nullptr;
  ckpt.tensors.emplace_back("score.weight", head_->weight);
  ckpt.tensors.emplace_back("score.bias", head_->bias);
  return ckpt;
}

void Critic::load(const std::string& dir) {
  HfWeights weights = HfWeights::open(dir);
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : named_parameters()) {
    const TensorEntry* entry = weights.find(name);
    if (!entry)
      throw Error("critic checkpoint " + dir + " has no tensor " + name +
                  "; it was not written by this trainer");
    at::Tensor t = weights.tensor(name);
    if (t.sizes() != param.sizes())
      throw Error("critic checkpoint " + dir + ": " + name + " has shape " + c10::str(t.sizes()) +
                  ", expected " + c10::str(param.sizes()) + "; the checkpoint belongs to another model");
    param.copy_(t.to(param.dtype()));
  }
}

void Critic::train(bool on) {
  backbone_->train(on);
  head_->train(on);
}

void Critic::to(const at::Device& device) {
  backbone_->to(device);
  head_->to(device);
}

}  // namespace tinyzero
