// A rollout batch: the rows one RL step learns from, and the per-row tensors each stage adds to it
// (rewards, old / reference log-probs, values, advantages, returns). Rows are prompt (left-padded)
// followed by response (right-padded); the response token j of a row sits at column prompt_len + j.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tinyzero {

struct RolloutBatch {
  // Set by the rollout stage.
  at::Tensor input_ids;                         // (B, P + R) int64
  at::Tensor attention_mask;                    // (B, P + R) int64
  at::Tensor response_mask;                     // (B, R) float32
  int64_t prompt_len = 0;                       // P
  std::vector<int64_t> group;                   // (B) prompt index of each row
  std::vector<bool> truncated;                  // the response hit max_response_length
  std::vector<std::string> prompts, responses;  // decoded, for rewards and sample logs
  at::Tensor sample_log_probs;  // (B, R) the sampler's log-prob of each response token, 0 after the end
  int64_t rows_at_once = 0;     // rows the rollout engine decoded at once (the most over its calls)
  // Set by the reward stage.
  at::Tensor scores;  // (B) float32, the task's score of each response
  std::vector<bool> correct, format_ok;
  at::Tensor token_rewards;  // (B, R) the score on each response's last token (minus the KL in the reward)
  // Set by the reference / critic passes and the advantage stage.
  at::Tensor old_log_probs, ref_log_probs, advantages;  // (B, R)
  at::Tensor values, returns;                           // (B, R), PPO only

  int64_t rows() const { return input_ids.size(0); }
  int64_t response_len() const { return response_mask.size(1); }
};

// Concatenates batches row-wise, padding prompts on the left and responses on the right; groups are
// renumbered so that they stay distinct.
RolloutBatch concat_rollouts(std::vector<RolloutBatch>& parts, int64_t pad_id);
// The rows `rows` (sorted) of a batch (rollout and reward fields).
RolloutBatch select_rows(const RolloutBatch& r, const std::vector<int64_t>& rows);

at::Tensor row_index(const std::vector<int64_t>& rows, const at::Device& device);
// Response lengths of the rows (B,), on the host.
std::vector<int64_t> response_lengths(const RolloutBatch& r);
// Columns of the response block that rows `index` use: one past the last response token of the longest
// of them (at least 1). The rest is right padding, most of the batch when lengths vary.
int64_t response_width(const RolloutBatch& r, const at::Tensor& index);
// Runs `pass` (rows -> (rows, R)) over all rows, shortest response first in chunks of `micro` rows (so
// that a pass is only as wide as its own longest row), and puts each result back at its rows: (B, R) in
// the batch's row order.
at::Tensor by_length_chunks(const RolloutBatch& r, int64_t micro,
                            const std::function<at::Tensor(const std::vector<int64_t>&)>& pass);

}  // namespace tinyzero
