// AdamW with decoupled weight decay, learning-rate schedule and global-norm gradient clipping.
//
// Our own rather than torch::optim::AdamW so that its state is plain named tensors (saved in
// checkpoints as safetensors, readable by any LibTorch version), bf16 parameters can update an
// fp32 master copy, and the state can be sharded across ranks later (ZeRO-1). Same maths as PyTorch:
//   p <- p * (1 - lr * wd);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyzero/core/config.h"

namespace tinyzero {

class AdamW {
 public:
  // `params`: (name, parameter) pairs; the parameters are updated in place. Non-fp32 parameters get
  // an fp32 master copy that the update works on.
  AdamW(std::vector<std::pair<std::string, at::Tensor>> params, const OptimConfig& config);

  // One update with learning rate `lr` from the parameters' current .grad() (missing grads count as
  // zero). Returns nothing; the caller zeroes gradients.
  void step(double lr);
  void zero_grad();
  int64_t steps_taken() const { return step_; }

  // State as named tensors ("exp_avg.<param>", "exp_avg_sq.<param>", "master.<param>") and the step.
  std::vector<std::pair<std::string, at::Tensor>> state_tensors() const;
  // Restores state_tensors()/steps_taken(); throws Error naming a missing or mis-shaped tensor.
  void load_state(const std::map<std::string, at::Tensor>& tensors, int64_t steps_taken);

  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }
  // Moves the state (moments and master copies) to `device`; the parameters are the caller's to move.
  void state_to(const at::Device& device);

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<at::Tensor> exp_avg_, exp_avg_sq_, master_;  // master_[i] undefined for fp32 params
  OptimConfig config_;
  int64_t step_ = 0;
};

// Learning rate at optimizer step `step` (0-based) of `total_steps`: linear warm-up from 0 over
// warmup_steps, then constant, or cosine from lr down to lr * min_lr_ratio at total_steps.
double learning_rate_at(const OptimConfig& config, int64_t step, int64_t total_steps);

// Zeroes the gradients of `params` (detached from any graph); parameters without one are left alone.
void zero_grads(const std::vector<std::pair<std::string, at::Tensor>>& params);

// Moves each of `params` to `device` in place (the same tensors, as Module::to does), and with
// `gradients` their gradients too (offloading a model while it is idle).
void move_parameters(const std::vector<std::pair<std::string, at::Tensor>>& params, const at::Device& device,
                     bool gradients);

// Global L2 norm of the gradients of `params` (fp32 accumulation); a 0-dim tensor (may be inf/NaN).
at::Tensor global_grad_norm(const std::vector<std::pair<std::string, at::Tensor>>& params);
// Scales gradients so their global norm is at most max_norm (no-op when max_norm <= 0 or norm is
// smaller or non-finite). Returns the norm before clipping as a double.
double clip_grad_norm(const std::vector<std::pair<std::string, at::Tensor>>& params, double max_norm);

}  // namespace tinyzero
