// The metrics of an RL step (see step_metrics.h).
#include "trainer/step_metrics.h"

#include <algorithm>
#include <cmath>

#include "tinyzero/core/log.h"
#include "tinyzero/metrics/names.h"
#include "trainer/rank_stats.h"
#include "trainer/train_context.h"

namespace tinyzero {

namespace {

namespace mn = metric_names;

double count_of(const std::vector<bool>& flags) {
  return static_cast<double>(std::count(flags.begin(), flags.end(), true));
}

double mean_of(const std::vector<bool>& flags) {
  return flags.empty() ? 0.0 : count_of(flags) / static_cast<double>(flags.size());
}

}  // namespace

void add_rl_step_metrics(TrainContext& ctx, const StepRollouts& drawn, const ActorUpdateStats& u,
                         Clock::time_point step_start, Metrics& m) {
  const TrainConfig& c = ctx.config;
  const RolloutBatch& r = drawn.batch;
  const at::Tensor seq_scores = torch::tensor(drawn.scores).to(torch::kDouble);  // every response drawn
  const at::Tensor adv_valid =
      r.advantages.masked_select(r.response_mask > 0).to(torch::kCPU).to(torch::kDouble);
  const bool has_adv = adv_valid.numel() > 0;
  const at::Tensor lengths = torch::tensor(response_lengths(r)).to(torch::kDouble);
  RankStats sum(ReduceOp::kSum), max(ReduceOp::kMax), min(ReduceOp::kMin);
  sum.add("scored", static_cast<double>(seq_scores.numel()))
      .add("score", seq_scores.sum().item<double>())
      .add("reward", r.token_rewards.sum().item<double>())
      .add("rows", static_cast<double>(r.rows()))
      .add("advantage", adv_valid.sum().item<double>())
      .add("advantage_tokens", static_cast<double>(adv_valid.numel()))
      .add("correct", count_of(drawn.correct))
      .add("format_ok", count_of(drawn.format_ok))
      .add("response_length", lengths.sum().item<double>())
      .add("truncated", count_of(r.truncated))
      .add("prompt_length", r.attention_mask.narrow(1, 0, r.prompt_len).sum().item<double>())
      .add("pg_loss", u.pg_loss)
      .add("kl_loss", u.kl_loss)
      .add("entropy", u.entropy)
      .add("clipped", u.clipped)
      .add("clipped_lower", u.clipped_lower)
      .add("ppo_kl", u.ppo_kl)
      .add("update_tokens", u.tokens)
      .add("tokens", r.attention_mask.sum().item<double>());
  max.add("score", seq_scores.max().item<double>())
      .add("advantage", has_adv ? adv_valid.max().item<double>() : -INFINITY)
      .add("response_length", lengths.max().item<double>())
      .add("rows_at_once", static_cast<double>(r.rows_at_once));
  min.add("score", seq_scores.min().item<double>())
      .add("advantage", has_adv ? adv_valid.min().item<double>() : INFINITY)
      .add("response_length", lengths.min().item<double>());
  sum.reduce(*ctx.pg);
  max.reduce(*ctx.pg);
  min.reduce(*ctx.pg);
  const double scored = sum["scored"], rows = sum["rows"], weight = sum["update_tokens"];
  const bool any_adv = sum["advantage_tokens"] > 0;
  const double updates = static_cast<double>(u.mini_batches);
  m[mn::kScoreMean] = sum["score"] / scored;
  m["critic/score/max"] = max["score"];
  m["critic/score/min"] = min["score"];
  m[mn::kRewardsMean] = sum["reward"] / rows;
  m[mn::kAdvantagesMean] = any_adv ? sum["advantage"] / sum["advantage_tokens"] : 0.0;
  m["critic/advantages/max"] = any_adv ? max["advantage"] : 0.0;
  m["critic/advantages/min"] = any_adv ? min["advantage"] : 0.0;
  m[mn::kSuccessRate] = sum["correct"] / scored;
  m[mn::kFormatRate] = sum["format_ok"] / scored;
  m[mn::kResponseLengthMean] = sum["response_length"] / rows;
  m["response_length/max"] = max["response_length"];
  m["response_length/min"] = min["response_length"];
  m[mn::kResponseLengthClipRatio] = sum["truncated"] / rows;
  m["prompt_length/mean"] = sum["prompt_length"] / rows;
  m[mn::kPgLoss] = sum["pg_loss"] / updates;
  if (c.actor.use_kl_loss && ctx.reference) m[mn::kKlLoss] = sum["kl_loss"] / updates;
  if (c.actor.entropy_coeff > 0) m[mn::kEntropy] = sum["entropy"] / updates;
  m[mn::kPgClipfrac] = weight > 0 ? sum["clipped"] / weight : 0;
  m[mn::kPgClipfracLower] = weight > 0 ? sum["clipped_lower"] / weight : 0;
  m[mn::kPpoKl] = weight > 0 ? sum["ppo_kl"] / weight : 0;
  m[mn::kGradNorm] = u.optimizer_steps ? u.grad_norm_sum / static_cast<double>(u.optimizer_steps) : NAN;
  m[mn::kLr] = u.lr;
  m["training/nonfinite_skipped"] = static_cast<double>(u.skipped_steps);
  m["training/epoch"] = static_cast<double>(ctx.cursor->epoch());
  if (ctx.world() > 1) m["perf/grad_buckets_overlapped"] = ctx.optimizer->overlapped_share();
  const double step_time = seconds_since(step_start);
  m[mn::kTimingStep] = step_time;
  m[mn::kThroughput] = sum["tokens"] / step_time;
  m["perf/gen_tokens_per_s"] = sum["response_length"] / std::max(1e-9, m[mn::kTimingGen]);
  m["perf/total_num_tokens"] = sum["tokens"];
  m["perf/rollout_rows_at_once"] = max["rows_at_once"];  // memory-sized: see rollout.memory_utilization
}

void add_no_signal_metrics(const StepRollouts& drawn, Clock::time_point step_start, Metrics& m) {
  m["training/skipped_no_signal"] = 1;
  m[mn::kScoreMean] = at::mean(torch::tensor(drawn.scores)).item<double>();
  m[mn::kSuccessRate] = mean_of(drawn.correct);
  m[mn::kFormatRate] = mean_of(drawn.format_ok);
  m[mn::kTimingStep] = seconds_since(step_start);
}

void log_samples(const TrainContext& ctx, const RolloutBatch& r) {
  const LoggingConfig& l = ctx.config.logging;
  if (l.sample_freq <= 0 || ctx.step % l.sample_freq != 0 || !ctx.pg->is_main()) return;
  for (int64_t i = 0; i < std::min<int64_t>(l.num_samples, r.rows()); ++i) {
    const std::string& prompt = r.prompts[i];
    logging::info("sample (step {}, score {:.2f}): {}{}", ctx.step, r.scores[i].item<double>(),
                  prompt.substr(prompt.size() > 160 ? prompt.size() - 160 : 0), r.responses[i]);
  }
}

}  // namespace tinyzero
