// KL estimators, KL in the reward and the KL coefficient controllers; see rl/kl.h.
#include "tinyzero/rl/kl.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"

namespace tinyzero {

KlEstimator parse_kl_estimator(const std::string& name) {
  if (name == "k1" || name == "kl") return KlEstimator::kK1;
  if (name == "k2" || name == "mse") return KlEstimator::kK2;
  if (name == "k3" || name == "low_var_kl") return KlEstimator::kK3;
  if (name == "abs") return KlEstimator::kAbs;
  throw ConfigError("unknown KL estimator '" + name +
                    "'; use one of: k1 (kl), k2 (mse), k3 (low_var_kl), abs");
}

std::string to_string(KlEstimator estimator) {
  switch (estimator) {
    case KlEstimator::kK1:
      return "k1";
    case KlEstimator::kK2:
      return "k2";
    case KlEstimator::kK3:
      return "low_var_kl";
    case KlEstimator::kAbs:
      return "abs";
  }
  return "unknown";
}

at::Tensor kl_penalty(const at::Tensor& log_prob, const at::Tensor& ref_log_prob, KlEstimator estimator) {
  if (log_prob.sizes() != ref_log_prob.sizes())
    throw Error("kl_penalty: log_prob has shape " + c10::str(log_prob.sizes()) + " but ref_log_prob has " +
                c10::str(ref_log_prob.sizes()) + "; they must match (B, T)");
  const at::Tensor ref = ref_log_prob.detach().to(log_prob.scalar_type());
  switch (estimator) {
    case KlEstimator::kK1:
      return log_prob - ref;
    case KlEstimator::kK2:
      return 0.5 * (log_prob - ref).square();
    case KlEstimator::kAbs:
      return (log_prob - ref).abs();
    case KlEstimator::kK3: {
      const at::Tensor d = (ref - log_prob).clamp(-20.0, 20.0);  // log(ref / policy)
      return (d.exp() - d - 1).clamp(-10.0, 10.0);
    }
  }
  throw Error("kl_penalty: unknown estimator");
}

KlRewardResult apply_kl_penalty(const at::Tensor& token_level_scores, const at::Tensor& old_log_prob,
                                const at::Tensor& ref_log_prob, const at::Tensor& response_mask,
                                double kl_coef, KlEstimator estimator) {
  at::NoGradGuard no_grad;
  if (token_level_scores.sizes() != old_log_prob.sizes() || response_mask.sizes() != old_log_prob.sizes())
    throw Error("apply_kl_penalty: token_level_scores " + c10::str(token_level_scores.sizes()) +
                ", old_log_prob " + c10::str(old_log_prob.sizes()) + " and response_mask " +
                c10::str(response_mask.sizes()) + " must all be (B, T)");
  const at::Tensor mask = response_mask.to(old_log_prob.device(), old_log_prob.scalar_type());  // (B, T)
  const at::Tensor kld = kl_penalty(old_log_prob, ref_log_prob, estimator) * mask;              // (B, T)
  KlRewardResult result;
  result.token_level_rewards = token_level_scores - kl_coef * kld.to(token_level_scores.scalar_type());
  const at::Tensor per_sequence = kld.sum(-1) / mask.sum(-1).clamp_min(1);  // (B,)
  result.current_kl = per_sequence.numel() > 0 ? per_sequence.mean().item<double>() : 0.0;
  return result;
}

AdaptiveKlController::AdaptiveKlController(double init_kl_coef, double target_kl, int64_t horizon)
    : KlController(init_kl_coef), target_kl_(target_kl), horizon_(horizon) {
  if (!(target_kl > 0))
    throw ConfigError("algorithm.kl_ctrl.target_kl = " + std::to_string(target_kl) +
                      " must be > 0 for the adaptive controller");
  if (horizon < 1)
    throw ConfigError("algorithm.kl_ctrl.horizon = " + std::to_string(horizon) +
                      " must be >= 1 for the adaptive controller");
}

void AdaptiveKlController::update(double current_kl, int64_t n_steps) {
  const double error = std::clamp(current_kl / target_kl_ - 1.0, -0.2, 0.2);
  value_ *= 1.0 + error * static_cast<double>(n_steps) / static_cast<double>(horizon_);
}

std::unique_ptr<KlController> make_kl_controller(const KlControlConfig& config) {
  if (config.type == "fixed") return std::make_unique<FixedKlController>(config.kl_coef);
  if (config.type == "adaptive")
    return std::make_unique<AdaptiveKlController>(config.kl_coef, config.target_kl, config.horizon);
  throw ConfigError("algorithm.kl_ctrl.type = '" + config.type + "' is unknown; use fixed or adaptive");
}

}  // namespace tinyzero
