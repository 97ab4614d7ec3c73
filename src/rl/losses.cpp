// Loss aggregation, PPO policy loss, entropy and value loss; see rl/losses.h.
#include "tinyzero/rl/losses.h"

#include <ATen/ATen.h>

#include <cmath>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

void check_same_shape(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name,
                      const char* where) {
  if (a.sizes() != b.sizes())
    throw Error(std::string(where) + ": " + a_name + " has shape " + c10::str(a.sizes()) + " but " + b_name +
                " has shape " + c10::str(b.sizes()) + "; they must match");
}

// Masked mean for metrics: 0 for an empty mask instead of NaN. Detached.
at::Tensor metric_mean(const at::Tensor& values, const at::Tensor& mask) {
  return ((values * mask).sum() / mask.sum().clamp_min(1)).detach();
}

}  // namespace

LossAggMode parse_loss_agg_mode(const std::string& name) {
  if (name == "token-mean") return LossAggMode::kTokenMean;
  if (name == "seq-mean-token-sum") return LossAggMode::kSeqMeanTokenSum;
  if (name == "seq-mean-token-mean") return LossAggMode::kSeqMeanTokenMean;
  if (name == "seq-mean-token-sum-norm") return LossAggMode::kSeqMeanTokenSumNorm;
  throw ConfigError(
      "unknown loss_agg_mode '" + name +
      "'; use one of: token-mean, seq-mean-token-sum, seq-mean-token-mean, seq-mean-token-sum-norm");
}

std::string to_string(LossAggMode mode) {
  switch (mode) {
    case LossAggMode::kTokenMean:
      return "token-mean";
    case LossAggMode::kSeqMeanTokenSum:
      return "seq-mean-token-sum";
    case LossAggMode::kSeqMeanTokenMean:
      return "seq-mean-token-mean";
    case LossAggMode::kSeqMeanTokenSumNorm:
      return "seq-mean-token-sum-norm";
  }
  return "unknown";
}

bool agg_loss_denominator_is_count(LossAggMode mode) { return mode != LossAggMode::kSeqMeanTokenSumNorm; }

double agg_loss_local_denominator(const at::Tensor& loss_mask, LossAggMode mode) {
  if (loss_mask.dim() != 2)
    throw Error("agg_loss: loss_mask must be (B, T); got " + c10::str(loss_mask.sizes()));
  const at::Tensor m = loss_mask != 0;  // (B, T) bool
  switch (mode) {
    case LossAggMode::kTokenMean:
      return m.sum().item<double>();
    case LossAggMode::kSeqMeanTokenSum:
    case LossAggMode::kSeqMeanTokenMean:
      return m.any(-1).sum().item<double>();
    case LossAggMode::kSeqMeanTokenSumNorm:
      return static_cast<double>(loss_mask.size(1));
  }
  return 0;
}

at::Tensor agg_loss(const at::Tensor& loss_mat, const at::Tensor& loss_mask, const LossAggregation& agg) {
  check_same_shape(loss_mat, "loss_mat", loss_mask, "loss_mask", "agg_loss");
  if (loss_mat.dim() != 2)
    throw Error("agg_loss: loss_mat must be (B, T); got " + c10::str(loss_mat.sizes()));
  if (!(agg.denominator >= 0) || !std::isfinite(agg.denominator))
    throw Error("agg_loss: denominator " + std::to_string(agg.denominator) +
                " must be a finite number >= 0 (0 = this batch's own count)");
  const at::Tensor m = loss_mask.to(loss_mat.device(), loss_mat.scalar_type());  // (B, T)
  const at::Tensor masked = loss_mat * m;                                        // (B, T)
  at::Tensor numerator, count;  // count: the default denominator (a tensor, so no device sync)
  switch (agg.mode) {
    case LossAggMode::kTokenMean:
      numerator = masked.sum();
      count = m.sum();
      break;
    case LossAggMode::kSeqMeanTokenSum:
      numerator = masked.sum();  // sum over sequences of their token sums
      count = (m.sum(-1) > 0).to(m.scalar_type()).sum();
      break;
    case LossAggMode::kSeqMeanTokenMean: {
      const at::Tensor tokens = m.sum(-1);                       // (B,)
      numerator = (masked.sum(-1) / tokens.clamp_min(1)).sum();  // sum of per-sequence means
      count = (tokens > 0).to(m.scalar_type()).sum();
      break;
    }
    case LossAggMode::kSeqMeanTokenSumNorm:
      numerator = masked.sum();
      return numerator / (agg.denominator > 0 ? agg.denominator : static_cast<double>(loss_mat.size(1)));
  }
  if (agg.denominator > 0) return numerator / agg.denominator;
  return numerator / count.clamp_min(1);
}

PolicyLossOptions policy_loss_options(const ActorConfig& actor) {
  PolicyLossOptions options;
  options.clip_ratio_low = actor.clip_ratio_low;
  options.clip_ratio_high = actor.clip_ratio_high;
  options.clip_ratio_c = actor.clip_ratio_c;
  options.agg.mode = parse_loss_agg_mode(actor.loss_agg_mode);
  return options;
}

PolicyLossResult compute_policy_loss(const at::Tensor& old_log_prob, const at::Tensor& log_prob,
                                     const at::Tensor& advantages, const at::Tensor& response_mask,
                                     const PolicyLossOptions& options) {
  if (!(options.clip_ratio_c > 1.0))
    throw ConfigError("actor.clip_ratio_c = " + std::to_string(options.clip_ratio_c) +
                      " must be > 1 (dual-clip PPO bound; the usual value is 3)");
  check_same_shape(log_prob, "log_prob", old_log_prob, "old_log_prob", "compute_policy_loss");
  check_same_shape(log_prob, "log_prob", advantages, "advantages", "compute_policy_loss");
  check_same_shape(log_prob, "log_prob", response_mask, "response_mask", "compute_policy_loss");
  const at::Tensor old_lp = old_log_prob.detach().to(log_prob.device(), log_prob.scalar_type());
  const at::Tensor adv = advantages.detach().to(log_prob.device(), log_prob.scalar_type());
  const at::Tensor mask = response_mask.to(log_prob.device(), log_prob.scalar_type());  // (B, T)

  const at::Tensor log_ratio = (log_prob - old_lp).clamp(-20.0, 20.0);  // (B, T)
  const at::Tensor ratio = log_ratio.exp();
  const at::Tensor losses1 = -adv * ratio;
  const at::Tensor losses2 = -adv * ratio.clamp(1.0 - options.clip_ratio_low, 1.0 + options.clip_ratio_high);
  const at::Tensor clipped1 = at::maximum(losses1, losses2);
  const at::Tensor losses3 = -adv * options.clip_ratio_c;
  const at::Tensor clipped2 = at::minimum(losses3, clipped1);
  const at::Tensor negative = adv < 0;
  const at::Tensor pg_losses = at::where(negative, clipped2, clipped1);  // (B, T)

  PolicyLossResult result;
  result.pg_loss = agg_loss(pg_losses, mask, options.agg);
  result.pg_clipfrac = metric_mean((losses2 > losses1).to(mask.scalar_type()), mask);
  result.pg_clipfrac_lower = metric_mean(((clipped1 > losses3) & negative).to(mask.scalar_type()), mask);
  result.ppo_kl = metric_mean(-log_ratio.detach(), mask);
  return result;
}

at::Tensor entropy_from_logits(const at::Tensor& logits) {
  const at::Tensor x = logits.scalar_type() == at::kDouble ? logits : logits.to(at::kFloat);  // (..., V)
  const at::Tensor logp = at::log_softmax(x, -1);
  const at::Tensor p = logp.exp();
  // -inf logits have p = 0; zero their log p so 0 * -inf gives no NaN (in value or gradient).
  const at::Tensor logp_finite = logp.masked_fill(at::isinf(logp), 0.0);
  return -(p * logp_finite).sum(-1);  // (...)
}

ValueLossResult compute_value_loss(const at::Tensor& vpreds, const at::Tensor& returns,
                                   const at::Tensor& values, const at::Tensor& response_mask,
                                   double cliprange_value, const LossAggregation& agg) {
  check_same_shape(vpreds, "vpreds", returns, "returns", "compute_value_loss");
  check_same_shape(vpreds, "vpreds", values, "values", "compute_value_loss");
  check_same_shape(vpreds, "vpreds", response_mask, "response_mask", "compute_value_loss");
  const at::Tensor ret = returns.detach().to(vpreds.device(), vpreds.scalar_type());
  const at::Tensor old_values = values.detach().to(vpreds.device(), vpreds.scalar_type());
  const at::Tensor mask = response_mask.to(vpreds.device(), vpreds.scalar_type());  // (B, T)
  const at::Tensor vclipped =
      at::maximum(at::minimum(vpreds, old_values + cliprange_value), old_values - cliprange_value);
  const at::Tensor losses1 = (vpreds - ret).square();
  const at::Tensor losses2 = (vclipped - ret).square();
  ValueLossResult result;
  result.vf_loss = 0.5 * agg_loss(at::maximum(losses1, losses2), mask, agg);
  result.vf_clipfrac = metric_mean((losses2 > losses1).to(mask.scalar_type()), mask);
  return result;
}

}  // namespace tinyzero
