// Log-prob and value passes over a rollout batch (see log_prob_passes.h).
#include "trainer/log_prob_passes.h"

#include <chrono>
#include <memory>

#include "tinyzero/metrics/names.h"
#include "tinyzero/model/logprobs.h"
#include "trainer/stage_timer.h"
#include "trainer/train_context.h"

namespace tinyzero {

at::Tensor response_log_probs(const TrainContext& ctx, CausalLMImpl& model, const RolloutBatch& r,
                              const std::vector<int64_t>& rows, bool with_grad, at::Tensor* entropy) {
  at::Tensor index = row_index(rows, ctx.device);
  const int64_t P = r.prompt_len, R = r.response_len();
  // Only as wide as the longest response among these rows, then padded back to R with zeros, which the
  // masks ignore.
  const int64_t width = response_width(r, index);
  at::Tensor ids = r.input_ids.index_select(0, index).narrow(1, 0, P + width);
  at::Tensor mask = r.attention_mask.index_select(0, index).narrow(1, 0, P + width);
  LogProbOptions opt;
  opt.temperature = ctx.config.rollout.temperature > 0 ? ctx.config.rollout.temperature : 1.0;
  opt.with_entropy = entropy != nullptr;
  std::unique_ptr<torch::NoGradGuard> no_grad;
  if (!with_grad) no_grad = std::make_unique<torch::NoGradGuard>();
  AutocastGuard autocast(ctx.device, ctx.bf16_autocast);
  TokenLogProbs lp = token_logprobs(model, ids, mask, opt);  // (rows, P + width - 1)
  auto to_full_width = [&](const at::Tensor& t) {
    return at::constant_pad_nd(t.narrow(1, P - 1, width), {0, R - width}, 0);
  };
  if (entropy) *entropy = to_full_width(lp.entropy);
  return to_full_width(lp.logprobs);
}

at::Tensor critic_values(const TrainContext& ctx, const RolloutBatch& r, const std::vector<int64_t>& rows) {
  at::Tensor index = row_index(rows, ctx.device);
  const int64_t P = r.prompt_len, R = r.response_len(), width = response_width(r, index);
  AutocastGuard autocast(ctx.device, ctx.bf16_autocast);
  at::Tensor v = ctx.critic->values(r.input_ids.index_select(0, index).narrow(1, 0, P + width),
                                    r.attention_mask.index_select(0, index).narrow(1, 0, P + width));
  return at::constant_pad_nd(v.narrow(1, P - 1, width), {0, R - width}, 0);
}

namespace {

at::Tensor batched_log_probs(const TrainContext& ctx, CausalLMImpl& model, const RolloutBatch& r) {
  return by_length_chunks(r, ctx.config.rollout.log_prob_micro_batch_size,
                          [&](const std::vector<int64_t>& rows) {
                            return response_log_probs(ctx, model, r, rows, false, nullptr);
                          });
}

at::Tensor batched_values(const TrainContext& ctx, const RolloutBatch& r) {
  torch::NoGradGuard no_grad;
  ctx.critic->train(false);
  return by_length_chunks(r, ctx.config.rollout.log_prob_micro_batch_size,
                          [&](const std::vector<int64_t>& rows) { return critic_values(ctx, r, rows); });
}

}  // namespace

void reference_and_critic_passes(TrainContext& ctx, RolloutBatch& r, bool on_policy, Metrics& m) {
  StageTimer timer(m, "timing_s/old_log_prob", ctx.device);
  if (!on_policy)
    r.old_log_probs =
        ctx.config.rollout.reuse_log_probs ? r.sample_log_probs : batched_log_probs(ctx, *ctx.actor, r);
  ctx.optimizer->release_gathered();
  timer.next(metric_names::kTimingRef);
  if (ctx.reference) {
    ctx.place_reference(true);
    r.ref_log_probs = batched_log_probs(ctx, *ctx.reference, r);
    ctx.place_reference(false);
  }
  timer.stop();
  if (ctx.critic) {
    timer.next("timing_s/values");
    ctx.place_critic(true);
    r.values = batched_values(ctx, r);
    ctx.place_critic(false);
    timer.stop();
  }
}

}  // namespace tinyzero
