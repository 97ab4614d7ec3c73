// The policy update (see actor_update.h).
#include "trainer/actor_update.h"

#include <cmath>

#include "tinyzero/rl/kl.h"
#include "tinyzero/rl/losses.h"
#include "trainer/log_prob_passes.h"
#include "trainer/train_context.h"
#include "trainer/update_schedule.h"

namespace tinyzero {

ActorUpdateStats update_actor(TrainContext& ctx, const RolloutBatch& r, bool on_policy) {
  const TrainConfig& c = ctx.config;
  ctx.actor->train();
  PolicyLossOptions pl = policy_loss_options(c.actor);
  const KlEstimator kl_type = parse_kl_estimator(c.actor.kl_loss_type);
  const bool kl_loss = c.actor.use_kl_loss && ctx.reference;
  const bool entropy_bonus = c.actor.entropy_coeff > 0;
  const auto [mini_rows, micro_rows] = update_batch_rows(ctx, r, c.actor.ppo_micro_batch_size);
  ActorUpdateStats s;
  s.lr = learning_rate_at(c.actor.optim, ctx.step, c.trainer.total_steps);
  s.mini_batches = std::max<int64_t>(1, c.actor.ppo_epochs * ((r.rows() + mini_rows - 1) / mini_rows));
  const std::vector<int64_t> row_lengths = response_lengths(r);  // micro-batches of similar lengths
  for_each_update(
      r.rows(), mini_rows, micro_rows, c.actor.ppo_epochs, c.trainer.seed ^ 0x5eed, ctx.step,
      [&](const std::vector<int64_t>& mini) {
        // The mini-batch's own count over all ranks, so micro-batch losses (and ranks' gradients) add up to
        // the mini-batch loss.
        pl.agg.denominator = ctx.sum_over_ranks(agg_loss_local_denominator(
            r.response_mask.index_select(0, row_index(mini, ctx.device)), pl.agg.mode));
        ctx.optimizer->zero_grad();
      },
      [&](const std::vector<int64_t>& rows, bool last) {
        at::Tensor idx = row_index(rows, ctx.device);
        at::Tensor entropy;
        at::Tensor log_prob =
            response_log_probs(ctx, *ctx.actor, r, rows, true, entropy_bonus ? &entropy : nullptr);
        at::Tensor rmask = r.response_mask.index_select(0, idx);
        at::Tensor old = on_policy ? log_prob.detach() : r.old_log_probs.index_select(0, idx);
        PolicyLossResult res =
            compute_policy_loss(old, log_prob, r.advantages.index_select(0, idx), rmask, pl);
        at::Tensor loss = res.pg_loss;
        if (entropy_bonus) {
          at::Tensor ent = agg_loss(entropy, rmask, pl.agg);
          loss = loss - c.actor.entropy_coeff * ent;
          s.entropy += ent.item<double>();
        }
        if (kl_loss) {
          at::Tensor kl =
              agg_loss(kl_penalty(log_prob, r.ref_log_probs.index_select(0, idx), kl_type), rmask, pl.agg);
          loss = loss + c.actor.kl_loss_coef * kl;
          s.kl_loss += kl.item<double>();
        }
        if (last) ctx.optimizer->arm_overlap();
        loss.backward();
        const double w = rmask.sum().item<double>();
        s.pg_loss += res.pg_loss.item<double>();
        s.clipped += res.pg_clipfrac.item<double>() * w;
        s.clipped_lower += res.pg_clipfrac_lower.item<double>() * w;
        s.ppo_kl += res.ppo_kl.item<double>() * w;
        s.tokens += w;
      },
      [&] {
        const double norm = apply_update(ctx, *ctx.optimizer, c.actor.optim, s.lr, "actor");
        if (!std::isfinite(norm)) {
          ++s.skipped_steps;
          return;
        }
        s.grad_norm_sum += norm;
        ++s.optimizer_steps;
      },
      &row_lengths);
  return s;
}

}  // namespace tinyzero
