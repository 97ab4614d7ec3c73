// How a rollout batch is cut for the update, shared by the actor and the critic, and the guarded
// optimizer step (clip, skip non-finite gradients).
#pragma once

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "tinyzero/core/config.h"
#include "trainer/data_parallel.h"
#include "trainer/rollout_batch.h"

namespace tinyzero {

struct TrainContext;

// `epochs` passes over the B rows, each in a random order from derive_seed(seed, step, epoch), cut into
// mini-batches of `mini_rows` (one optimizer step each: begin_mini, micro..., end_mini) and those into
// micro-batches of `micro_rows` (gradient accumulation; `last` marks a mini-batch's last). Row lists
// are sorted, by `lengths` (then index) when given, so that a micro-batch holds rows of similar lengths
// and its pass is only as wide as its longest row. The losses are sums over micro-batches with the
// mini-batch's denominator, so the grouping changes nothing but the padding.
void for_each_update(int64_t B, int64_t mini_rows, int64_t micro_rows, int64_t epochs, uint64_t seed,
                     int64_t step, const std::function<void(const std::vector<int64_t>& mini)>& begin_mini,
                     const std::function<void(const std::vector<int64_t>& rows, bool last)>& micro,
                     const std::function<void()>& end_mini, const std::vector<int64_t>* lengths = nullptr);

// Rows per mini-batch (this rank's share of actor.ppo_mini_batch_size * n) and per micro-batch (by token
// count with actor.use_dynamic_bsz, else `micro_batch_size`).
std::pair<int64_t, int64_t> update_batch_rows(const TrainContext& ctx, const RolloutBatch& r,
                                              int64_t micro_batch_size);

// Clips the gradients of `opt`'s parameters and steps it at `lr`. A non-finite norm skips the step
// (counted in ctx; trainer.max_consecutive_nonfinite in a row throw Error naming `what`). Returns the
// norm, or NaN for a skipped step.
double apply_update(TrainContext& ctx, DataParallelOptimizer& opt, const OptimConfig& optim, double lr,
                    const char* what);

}  // namespace tinyzero
