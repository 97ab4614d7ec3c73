// The reward stage (see reward_stage.h).
#include "trainer/reward_stage.h"

#include "tinyzero/rl/advantages.h"
#include "trainer/train_context.h"

namespace tinyzero {

void score_rollouts(const Task& task, const std::vector<Problem>& problems, RolloutBatch& r) {
  std::vector<float> scores(static_cast<size_t>(r.rows()));
  r.correct.assign(scores.size(), false);
  r.format_ok.assign(scores.size(), false);
  for (size_t row = 0; row < scores.size(); ++row) {
    const RewardResult reward =
        task.score(r.prompts[row], r.responses[row], problems[static_cast<size_t>(r.group[row])]);
    scores[row] = static_cast<float>(reward.score);
    r.correct[row] = reward.correct;
    r.format_ok[row] = reward.format_ok;
  }
  r.scores = torch::tensor(scores);
}

void assign_token_rewards(const TrainContext& ctx, RolloutBatch& r, Metrics& m) {
  const AlgorithmConfig& a = ctx.config.algorithm;
  at::Tensor scores = r.scores.to(ctx.device);
  if (a.overlong_buffer.enable) {
    at::Tensor penalty = overlong_penalty(r.response_mask, ctx.config.data.max_response_length,
                                          a.overlong_buffer.len, a.overlong_buffer.penalty_factor);
    m["dapo/overlong_penalty/mean"] = penalty.mean().item<double>();
    scores = scores + penalty.to(scores.device());
  }
  r.token_rewards = scores_to_token_level(scores, r.response_mask);
}

}  // namespace tinyzero
