// The PPO value model (critic): the base model's transformer with a scalar head, laid out as Hugging
// Face's Qwen2ForTokenClassification with num_labels = 1 (model.* + score.weight + score.bias), as in
// veRL, so a saved critic loads in transformers with AutoModelForTokenClassification.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "tinyzero/io/checkpoint.h"
#include "tinyzero/model/qwen2.h"

namespace tinyzero {

class Critic {
 public:
  // The transformer of the base model in `base_dir` (its LM head is dropped) and a new value head
  // initialised as transformers does (normal(0, initializer_range), zero bias) from `seed`.
  Critic(const std::string& base_dir, at::ScalarType dtype, const at::Device& device, uint64_t seed);

  // Values at every position: (B, T) float32 for ids / attention_mask (B, T).
  at::Tensor values(const at::Tensor& ids, const at::Tensor& attention_mask);

  // Trainable parameters under their Hugging Face names.
  std::vector<std::pair<std::string, at::Tensor>> named_parameters();
  // The critic as a Hugging Face checkpoint with parameters stored in `dtype`, and its atomic write.
  HfCheckpoint hf_checkpoint(at::ScalarType dtype);
  void save(const std::string& dir, at::ScalarType dtype) { save_hf_checkpoint(dir, hf_checkpoint(dtype)); }
  // Loads weights written by save(); Throws Error naming a missing or mis-shaped tensor.
  void load(const std::string& dir);

  void train(bool on);
  void set_activation_checkpointing(bool on) { backbone_->set_activation_checkpointing(on); }
  // Sharded parameters (ZeRO-2/3); the value head belongs to the root unit.
  void set_parameter_host(ParameterHost* host) { backbone_->set_parameter_host(host); }
  // Moves the parameters (not the optimizer state) to `device`, e.g. for offloading between uses.
  void to(const at::Device& device);

 private:
  CausalLM backbone_{nullptr};
  torch::nn::Linear head_{nullptr};  // (hidden -> 1)
  at::ScalarType dtype_;
};

}  // namespace tinyzero
