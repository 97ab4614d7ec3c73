// One SFT step (see sft_step.h).
#include "trainer/sft_step.h"

#include <algorithm>
#include <cmath>

#include "tinyzero/metrics/names.h"
#include "tinyzero/model/logprobs.h"
#include "trainer/rollout_stage.h"
#include "trainer/stage_timer.h"
#include "trainer/train_context.h"
#include "trainer/update_schedule.h"

namespace tinyzero {

namespace {

namespace mn = metric_names;

// Prompt tokens then response tokens (+ EOS, cut at data.max_response_length).
struct SftRow {
  std::vector<int64_t> ids;
  int64_t prompt_len;
};

std::vector<SftRow> tokenize_examples(const TrainContext& ctx, const std::vector<int64_t>& picks) {
  const TrainConfig& c = ctx.config;
  std::vector<SftRow> rows;
  for (int64_t i : picks) {
    const SftExample& ex = ctx.sft_examples[static_cast<size_t>(i)];
    SftRow row;
    row.ids = encode_prompt(*ctx.tokenizer, ex.prompt, c.data.max_prompt_length);
    row.prompt_len = static_cast<int64_t>(row.ids.size());
    std::vector<int64_t> resp = ctx.tokenizer->encode(ex.response, false);
    resp.push_back(ctx.eos_ids.front());
    if (static_cast<int64_t>(resp.size()) > c.data.max_response_length)
      resp.resize(c.data.max_response_length);
    row.ids.insert(row.ids.end(), resp.begin(), resp.end());
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

Metrics sft_step(TrainContext& ctx) {
  const TrainConfig& c = ctx.config;
  const auto t_step = Clock::now();
  ctx.actor->train();
  const std::vector<int64_t> all_picks = ctx.cursor->next(c.data.train_batch_size);
  const auto [share_begin, share_end] = ctx.my_share(c.data.train_batch_size);  // this rank's examples
  std::vector<SftRow> rows = tokenize_examples(
      ctx, std::vector<int64_t>(all_picks.begin() + share_begin, all_picks.begin() + share_end));
  const double lr = learning_rate_at(c.actor.optim, ctx.step, c.trainer.total_steps);
  const size_t micro = static_cast<size_t>(c.actor.ppo_micro_batch_size);
  // Micro-batches of similar lengths, each padded to its own longest row: with traces of varying length
  // most of a batch padded to its longest row is padding. The loss is a sum, so the order is free.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const SftRow& a, const SftRow& b) { return a.ids.size() < b.ids.size(); });
  // Token-mean over the whole batch: each micro-batch's sum is divided by the batch's response tokens.
  double total_tokens = 0;
  for (const auto& row : rows)
    total_tokens += static_cast<double>(row.ids.size()) - static_cast<double>(row.prompt_len);
  total_tokens = ctx.sum_over_ranks(total_tokens);
  ctx.optimizer->zero_grad();
  double loss_sum = 0;
  AutocastGuard autocast(ctx.device, ctx.bf16_autocast);
  for (size_t start = 0; start < rows.size(); start += micro) {
    const size_t end = std::min(rows.size(), start + micro);
    int64_t T = 0;
    for (size_t i = start; i < end; ++i) T = std::max<int64_t>(T, static_cast<int64_t>(rows[i].ids.size()));
    const int64_t mb = static_cast<int64_t>(end - start);
    at::Tensor ids = torch::full({mb, T}, ctx.pad_id, torch::kLong);
    at::Tensor mask = torch::zeros({mb, T}, torch::kLong);
    at::Tensor target_mask =
        torch::zeros({mb, T - 1}, torch::kFloat);  // 1 where ids[t+1] is a response token
    for (int64_t b = 0; b < mb; ++b) {
      const SftRow& row = rows[start + static_cast<size_t>(b)];
      const int64_t len = static_cast<int64_t>(row.ids.size());
      ids[b]
          .narrow(0, T - len, len)
          .copy_(torch::tensor(row.ids, torch::kLong));  // left padding, as in rollouts
      mask[b].narrow(0, T - len, len).fill_(1);
      target_mask[b].narrow(0, T - len + row.prompt_len - 1, len - row.prompt_len).fill_(1);
    }
    TokenLogProbs lp = token_logprobs(*ctx.actor, ids.to(ctx.device), mask.to(ctx.device), LogProbOptions{});
    at::Tensor loss = -(lp.logprobs * target_mask.to(ctx.device)).sum() / total_tokens;
    if (end == rows.size()) ctx.optimizer->arm_overlap();
    loss.backward();
    loss_sum += loss.item<double>();
  }
  const double norm = apply_update(ctx, *ctx.optimizer, c.actor.optim, lr, "actor");
  Metrics m;
  if (!std::isfinite(norm)) m["training/nonfinite_skipped"] = 1;
  m["sft/loss"] = ctx.sum_over_ranks(loss_sum);
  m[mn::kGradNorm] = norm;
  m[mn::kLr] = lr;
  m["training/epoch"] = static_cast<double>(ctx.cursor->epoch());
  m[mn::kTimingStep] = seconds_since(t_step);
  m[mn::kThroughput] = total_tokens / m[mn::kTimingStep];
  return m;
}

}  // namespace tinyzero
