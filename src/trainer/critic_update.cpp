// PPO's value update (see critic_update.h).
#include "trainer/critic_update.h"

#include <cmath>

#include "tinyzero/rl/losses.h"
#include "trainer/log_prob_passes.h"
#include "trainer/rank_stats.h"
#include "trainer/stage_timer.h"
#include "trainer/train_context.h"
#include "trainer/update_schedule.h"

namespace tinyzero {

namespace {

void value_metrics(TrainContext& ctx, const RolloutBatch& r, Metrics& m) {
  const at::Tensor valid = r.response_mask > 0;
  const at::Tensor v = r.values.masked_select(valid).to(at::kDouble);
  const at::Tensor ret = r.returns.masked_select(valid).to(at::kDouble);
  const at::Tensor d = ret - v;
  RankStats sum(ReduceOp::kSum);
  sum.add("count", static_cast<double>(v.numel()))
      .add("values", v.sum().item<double>())
      .add("returns", ret.sum().item<double>())
      .add("returns^2", ret.pow(2).sum().item<double>())
      .add("diff", d.sum().item<double>())
      .add("diff^2", d.pow(2).sum().item<double>());
  sum.reduce(*ctx.pg);
  const bool any = v.numel() > 0;
  const double vmax = ctx.pg->all_reduce(any ? v.max().item<double>() : -INFINITY, ReduceOp::kMax);
  const double vmin = ctx.pg->all_reduce(any ? v.min().item<double>() : INFINITY, ReduceOp::kMin);
  const double count = sum["count"];
  if (count <= 1) return;
  auto var = [count](double s1, double s2) { return (s2 - s1 * s1 / count) / (count - 1); };
  m["critic/values/mean"] = sum["values"] / count;
  m["critic/values/max"] = vmax;
  m["critic/values/min"] = vmin;
  m["critic/returns/mean"] = sum["returns"] / count;
  // The share of the returns' variance the values explain (1 = perfect, 0 = no better than a constant).
  m["critic/vf_explained_var"] =
      1.0 - var(sum["diff"], sum["diff^2"]) / (var(sum["returns"], sum["returns^2"]) + 1e-8);
}

}  // namespace

void update_critic(TrainContext& ctx, const RolloutBatch& r, Metrics& m) {
  value_metrics(ctx, r, m);
  const TrainConfig& c = ctx.config;
  StageTimer timer(m, "timing_s/update_critic", ctx.device);
  ctx.place_critic(true, /*updating=*/true);
  ctx.critic->train(true);
  const auto [mini_rows, micro_rows] = update_batch_rows(ctx, r, c.critic.ppo_micro_batch_size);
  const std::vector<int64_t> row_lengths = response_lengths(r);
  LossAggregation agg;
  agg.mode = LossAggMode::kTokenMean;
  const double lr = learning_rate_at(c.critic.optim, ctx.step, c.trainer.total_steps);
  double loss_sum = 0, clip_sum = 0, weight_sum = 0, norm_sum = 0;
  int64_t steps = 0, minis = 0;
  for_each_update(
      r.rows(), mini_rows, micro_rows, c.actor.ppo_epochs, c.trainer.seed ^ 0xc417, ctx.step,
      [&](const std::vector<int64_t>& mini) {
        agg.denominator = ctx.sum_over_ranks(agg_loss_local_denominator(
            r.response_mask.index_select(0, row_index(mini, ctx.device)), agg.mode));
        ctx.critic_optimizer->zero_grad();
        ++minis;
      },
      [&](const std::vector<int64_t>& rows, bool last) {
        at::Tensor idx = row_index(rows, ctx.device);
        at::Tensor rmask = r.response_mask.index_select(0, idx);
        at::Tensor vpreds = critic_values(ctx, r, rows);  // (rows, R)
        ValueLossResult vl =
            compute_value_loss(vpreds, r.returns.index_select(0, idx), r.values.index_select(0, idx), rmask,
                               c.critic.cliprange_value, agg);
        if (last) ctx.critic_optimizer->arm_overlap();
        vl.vf_loss.backward();
        const double w = rmask.sum().item<double>();
        loss_sum += vl.vf_loss.item<double>();
        clip_sum += vl.vf_clipfrac.item<double>() * w;
        weight_sum += w;
      },
      [&] {
        const double norm = apply_update(ctx, *ctx.critic_optimizer, c.critic.optim, lr, "critic");
        if (std::isfinite(norm)) norm_sum += norm, ++steps;
      },
      &row_lengths);
  ctx.critic->train(false);
  ctx.place_critic(false);
  RankStats sum(ReduceOp::kSum);
  sum.add("loss", loss_sum).add("clipped", clip_sum).add("tokens", weight_sum);
  sum.reduce(*ctx.pg);
  m["critic/vf_loss"] = sum["loss"] / static_cast<double>(std::max<int64_t>(1, minis));
  m["critic/vf_clipfrac"] = sum["tokens"] > 0 ? sum["clipped"] / sum["tokens"] : 0;
  m["critic/grad_norm"] = steps ? norm_sum / static_cast<double>(steps) : NAN;
  m["critic/lr"] = lr;
}

}  // namespace tinyzero
