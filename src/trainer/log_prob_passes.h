// Forward passes over a rollout batch: the response tokens' log-probs under a model (the actor, for the
// old policy and the update; the frozen reference) and the critic's values. Each pass is only as wide
// as the longest response among its rows.
#pragma once

#include <vector>

#include "tinyzero/metrics/logger.h"
#include "tinyzero/model/qwen2.h"
#include "trainer/rollout_batch.h"

namespace tinyzero {

struct TrainContext;

// Log-probs of the response tokens of `rows` of `r` under `model`: (rows, R), at rollout.temperature.
// The token at response position j is predicted at sequence position P - 1 + j. With `entropy`, also
// the entropy of each of those predictions.
at::Tensor response_log_probs(const TrainContext& ctx, CausalLMImpl& model, const RolloutBatch& r,
                              const std::vector<int64_t>& rows, bool with_grad, at::Tensor* entropy);
// The critic's values of the response positions of `rows`, (rows, R): the value of the state before
// response token j, read at sequence position P - 1 + j (where that token's log-prob is).
at::Tensor critic_values(const TrainContext& ctx, const RolloutBatch& r, const std::vector<int64_t>& rows);

// The stage before the advantages: the old policy's log-probs (skipped when `on_policy`: they equal the
// current ones at update time; the sampler's own with rollout.reuse_log_probs), the reference's
// log-probs when a KL term is on, and the critic's values (PPO), no-grad in length-sorted chunks of
// rollout.log_prob_micro_batch_size rows. Timings go to `m`.
void reference_and_critic_passes(TrainContext& ctx, RolloutBatch& r, bool on_policy, Metrics& m);

}  // namespace tinyzero
