// The advantage stage: the KL penalty in the reward (algorithm.use_kl_in_reward, with the adaptive or
// fixed KL controller), then the algorithm's advantages: GAE from the critic's values (PPO, whitened
// over all ranks), group-normalised outcome advantages (GRPO, Dr. GRPO without the std), or the
// leave-one-out baseline (RLOO).
#pragma once

#include "tinyzero/metrics/logger.h"
#include "trainer/rollout_batch.h"

namespace tinyzero {

struct TrainContext;

// Reads r.token_rewards, r.old_log_probs / ref_log_probs / values; sets r.token_rewards (with the KL
// penalty), r.advantages and, for PPO, r.returns.
void compute_advantages(TrainContext& ctx, RolloutBatch& r, Metrics& m);

}  // namespace tinyzero
