// AdamW, learning-rate schedule and gradient clipping (see optimizer.h).
#include "tinyzero/trainer/optimizer.h"

#include <torch/torch.h>

#include <cmath>

#include "tinyzero/core/errors.h"

namespace tinyzero {

AdamW::AdamW(std::vector<std::pair<std::string, at::Tensor>> params, const OptimConfig& config)
    : params_(std::move(params)), config_(config) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : params_) {
    const bool needs_master = p.scalar_type() != at::kFloat;
    at::Tensor master = needs_master ? p.detach().to(at::kFloat).clone() : at::Tensor();
    at::Tensor like = needs_master ? master : p;
    exp_avg_.push_back(torch::zeros_like(like, like.options().dtype(at::kFloat)));
    exp_avg_sq_.push_back(torch::zeros_like(like, like.options().dtype(at::kFloat)));
    master_.push_back(master);
  }
}

void zero_grads(const std::vector<std::pair<std::string, at::Tensor>>& params) {
  for (const auto& [name, param] : params) {
    at::Tensor p = param;  // a handle to the same parameter
    if (p.grad().defined()) {
      p.mutable_grad().detach_();
      p.mutable_grad().zero_();
    }
  }
}

void AdamW::zero_grad() { zero_grads(params_); }

void move_parameters(const std::vector<std::pair<std::string, at::Tensor>>& params, const at::Device& device,
                     bool gradients) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, param] : params) {
    at::Tensor p = param;  // a handle to the same parameter
    if (p.device() != device) p.set_data(p.data().to(device));
    if (gradients && p.grad().defined() && p.grad().device() != device)
      p.mutable_grad() = p.grad().to(device);
  }
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++step_;
  const double b1 = config_.beta1, b2 = config_.beta2;
  const double bias1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double bias2 = 1.0 - std::pow(b2, static_cast<double>(step_));
  const double step_size = lr / bias1;
  const double bias2_sqrt = std::sqrt(bias2);
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i].second;
    if (!p.grad().defined()) continue;  // PyTorch skips parameters without gradients
    at::Tensor target = master_[i].defined() ? master_[i] : p;
    at::Tensor g = p.grad().to(at::kFloat);
    target.mul_(1.0 - lr * config_.weight_decay);
    exp_avg_[i].mul_(b1).add_(g, 1.0 - b1);
    exp_avg_sq_[i].mul_(b2).addcmul_(g, g, 1.0 - b2);
    at::Tensor denom = (exp_avg_sq_[i].sqrt() / bias2_sqrt).add_(config_.eps);
    target.addcdiv_(exp_avg_[i], denom, -step_size);
    if (master_[i].defined()) p.copy_(master_[i]);
  }
}

void AdamW::state_to(const at::Device& device) {
  for (auto* tensors : {&exp_avg_, &exp_avg_sq_, &master_})
    for (at::Tensor& t : *tensors)
      if (t.defined() && t.device() != device) t = t.to(device);
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state_tensors() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back("exp_avg." + params_[i].first, exp_avg_[i]);
    out.emplace_back("exp_avg_sq." + params_[i].first, exp_avg_sq_[i]);
    if (master_[i].defined()) out.emplace_back("master." + params_[i].first, master_[i]);
  }
  return out;
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& tensors, int64_t steps_taken) {
  torch::NoGradGuard no_grad;
  auto take = [&](const std::string& key, at::Tensor& dst) {
    auto it = tensors.find(key);
    if (it == tensors.end())
      throw Error("optimizer state lacks '" + key + "'; the checkpoint does not match this model");
    if (it->second.sizes() != dst.sizes())
      throw Error("optimizer state '" + key + "' has shape " + c10::str(it->second.sizes()) + ", expected " +
                  c10::str(dst.sizes()));
    dst.copy_(it->second);
  };
  for (size_t i = 0; i < params_.size(); ++i) {
    take("exp_avg." + params_[i].first, exp_avg_[i]);
    take("exp_avg_sq." + params_[i].first, exp_avg_sq_[i]);
    if (master_[i].defined()) {
      take("master." + params_[i].first, master_[i]);
      params_[i].second.copy_(master_[i]);
    }
  }
  step_ = steps_taken;
}

double learning_rate_at(const OptimConfig& c, int64_t step, int64_t total_steps) {
  if (c.warmup_steps > 0 && step < c.warmup_steps)
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  if (c.schedule == "cosine") {
    const double span = static_cast<double>(std::max<int64_t>(1, total_steps - c.warmup_steps));
    const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / span);
    const double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
    return c.lr * (c.min_lr_ratio + (1.0 - c.min_lr_ratio) * cosine);
  }
  return c.lr;
}

at::Tensor global_grad_norm(const std::vector<std::pair<std::string, at::Tensor>>& params) {
  torch::NoGradGuard no_grad;
  at::Tensor total;
  for (const auto& [name, p] : params) {
    if (!p.grad().defined()) continue;
    at::Tensor sq = p.grad().to(at::kFloat).pow(2).sum();
    total = total.defined() ? total + sq : sq;
  }
  if (!total.defined()) return torch::zeros({});
  return total.sqrt();
}

double clip_grad_norm(const std::vector<std::pair<std::string, at::Tensor>>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  const double norm = global_grad_norm(params).item<double>();
  if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& [name, p] : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return norm;
}

}  // namespace tinyzero
