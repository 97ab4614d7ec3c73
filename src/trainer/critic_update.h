// PPO's value update (veRL's update_critic): the clipped value loss of the critic's new predictions
// against the GAE returns, over the same epochs and mini-batches as the actor.
#pragma once

#include "tinyzero/metrics/logger.h"
#include "trainer/rollout_batch.h"

namespace tinyzero {

struct TrainContext;

// The values' and returns' statistics over all ranks (critic/values/*, critic/returns/mean,
// critic/vf_explained_var), then the update (critic/vf_loss, vf_clipfrac, grad_norm, lr).
void update_critic(TrainContext& ctx, const RolloutBatch& r, Metrics& m);

}  // namespace tinyzero
