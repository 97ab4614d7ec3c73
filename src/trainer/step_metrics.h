// The metrics of an RL step over all ranks (veRL's names where veRL has one): rewards, advantages,
// lengths, the update's losses, timings and throughput. Sums and counts are added and extremes reduced
// over ranks before dividing.
#pragma once

#include "tinyzero/metrics/logger.h"
#include "trainer/actor_update.h"
#include "trainer/rollout_stage.h"
#include "trainer/stage_timer.h"

namespace tinyzero {

struct TrainContext;

// Adds the step's metrics to `m` (which holds the stages' timings); `step_start` is when the step began.
void add_rl_step_metrics(TrainContext& ctx, const StepRollouts& drawn, const ActorUpdateStats& update,
                         Clock::time_point step_start, Metrics& m);
// The metrics of a step whose rollouts all had equal rewards in every group (nothing to learn from).
void add_no_signal_metrics(const StepRollouts& drawn, Clock::time_point step_start, Metrics& m);
// Logs logging.num_samples prompt + response pairs every logging.sample_freq steps (rank 0).
void log_samples(const TrainContext& ctx, const RolloutBatch& r);

}  // namespace tinyzero
