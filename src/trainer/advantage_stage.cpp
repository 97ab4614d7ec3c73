// The advantage stage (see advantage_stage.h).
#include "trainer/advantage_stage.h"

#include <cmath>

#include "tinyzero/core/errors.h"
#include "tinyzero/metrics/names.h"
#include "tinyzero/rl/advantages.h"
#include "tinyzero/rl/kl.h"
#include "trainer/stage_timer.h"
#include "trainer/train_context.h"

namespace tinyzero {

namespace {

namespace mn = metric_names;

// masked_whiten over the masked values of every rank (unbiased variance, as masked_whiten).
at::Tensor whiten_over_ranks(TrainContext& ctx, const at::Tensor& values, const at::Tensor& mask) {
  const at::Tensor v = values.to(at::kDouble) * mask, m = mask.to(at::kDouble);
  std::vector<double> sums =
      ctx.pg->all_reduce({m.sum().item<double>(), v.sum().item<double>()}, ReduceOp::kSum);
  const double count = sums[0], mean = sums[1] / std::max(1.0, count);
  const double sq = ctx.sum_over_ranks((((values.to(at::kDouble) - mean) * m).pow(2)).sum().item<double>());
  const double var = count > 1 ? sq / (count - 1) : 0.0;
  return ((values - mean) * (1.0 / std::sqrt(var + 1e-8))).to(values.scalar_type()) * mask;
}

// token rewards = scores - kl_coef * KL(old || reference) per response token; updates the controller.
void apply_kl_in_reward(TrainContext& ctx, RolloutBatch& r, Metrics& m) {
  const TrainConfig& c = ctx.config;
  KlRewardResult kr = apply_kl_penalty(r.token_rewards, r.old_log_probs, r.ref_log_probs, r.response_mask,
                                       ctx.kl_ctrl->value(), parse_kl_estimator(c.algorithm.kl_penalty));
  r.token_rewards = kr.token_level_rewards;
  // The batch's mean KL over all ranks (current_kl is this rank's mean over its B sequences).
  const int64_t B = r.rows();
  const double current_kl =
      ctx.sum_over_ranks(kr.current_kl * static_cast<double>(B)) / static_cast<double>(B * ctx.world());
  m[mn::kRewardKlPenalty] = current_kl;
  m[mn::kRewardKlPenaltyCoeff] = ctx.kl_ctrl->value();
  ctx.kl_ctrl->update(current_kl, B * ctx.world());
}

}  // namespace

void compute_advantages(TrainContext& ctx, RolloutBatch& r, Metrics& m) {
  const AlgorithmConfig& a = ctx.config.algorithm;
  if (a.use_kl_in_reward && ctx.reference) apply_kl_in_reward(ctx, r, m);
  StageTimer timer(m, "timing_s/adv", ctx.device);
  AdvantageResult adv;
  switch (ctx.algorithm) {
    case Algorithm::kPpo:  // whitened over the whole batch: across ranks when there are several
      adv = compute_gae_advantage_return(r.token_rewards, r.values, r.response_mask, a.gamma, a.lam,
                                         ctx.world() == 1);
      if (ctx.world() > 1) adv.advantages = whiten_over_ranks(ctx, adv.advantages, r.response_mask);
      r.returns = adv.returns;
      break;
    case Algorithm::kRloo:
      adv = compute_rloo_outcome_advantage(r.token_rewards, r.response_mask, r.group);
      break;
    case Algorithm::kGrpo:
      adv =
          compute_grpo_outcome_advantage(r.token_rewards, r.response_mask, r.group, 1e-6, a.norm_adv_by_std);
      break;
    case Algorithm::kSft:
      throw Error("internal: algorithm sft has no advantages");
  }
  r.advantages = adv.advantages;
}

}  // namespace tinyzero
