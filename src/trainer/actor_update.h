// The policy update: actor.ppo_epochs x mini-batches x micro-batches of the clipped policy loss (with
// the entropy bonus and the KL loss to the reference when on), one AdamW step per mini-batch.
#pragma once

#include <cstdint>

#include "trainer/rollout_batch.h"

namespace tinyzero {

struct TrainContext;

// This rank's sums over the update (losses summed over mini-batches; clip fractions and ppo_kl weighted
// by response tokens) and its optimizer steps.
struct ActorUpdateStats {
  double pg_loss = 0, kl_loss = 0, entropy = 0;
  double clipped = 0, clipped_lower = 0, ppo_kl = 0, tokens = 0;  // token-weighted
  double grad_norm_sum = 0;
  int64_t optimizer_steps = 0, skipped_steps = 0, mini_batches = 0;
  double lr = 0;
};

// `on_policy`: the old log-probs are the current ones (one epoch, one mini-batch), not r.old_log_probs.
ActorUpdateStats update_actor(TrainContext& ctx, const RolloutBatch& r, bool on_policy);

}  // namespace tinyzero
