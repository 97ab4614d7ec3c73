// The reward stage: the task's rule scores each response (score, correct, format_ok), and the scores
// become token-level rewards on each response's last token (with DAPO's overlong penalty when on).
#pragma once

#include <vector>

#include "tinyzero/metrics/logger.h"
#include "tinyzero/tasks/task.h"
#include "trainer/rollout_batch.h"

namespace tinyzero {

struct TrainContext;

// Scores every row of `r` with `task`; row i answers problems[r.group[i]].
void score_rollouts(const Task& task, const std::vector<Problem>& problems, RolloutBatch& r);

// Sets r.token_rewards, (B, R) on ctx's device: each row's score (plus the overlong penalty of
// algorithm.overlong_buffer) on its last response token.
void assign_token_rewards(const TrainContext& ctx, RolloutBatch& r, Metrics& m);

}  // namespace tinyzero
