// Row operations of a rollout batch (see rollout_batch.h).
#include "trainer/rollout_batch.h"

#include <algorithm>
#include <numeric>

namespace tinyzero {

RolloutBatch concat_rollouts(std::vector<RolloutBatch>& parts, int64_t pad_id) {
  if (parts.size() == 1) return std::move(parts[0]);
  int64_t P = 0, R = 0;
  for (auto& p : parts) P = std::max(P, p.prompt_len), R = std::max(R, p.response_len());
  RolloutBatch out;
  out.prompt_len = P;
  for (const auto& p : parts) out.rows_at_once = std::max(out.rows_at_once, p.rows_at_once);
  std::vector<at::Tensor> ids, masks, rmasks, scores, sample_lps;
  int64_t group_offset = 0;
  for (auto& p : parts) {
    const int64_t lp = P - p.prompt_len, rp = R - p.response_len();
    at::Tensor prompt = p.input_ids.narrow(1, 0, p.prompt_len);
    at::Tensor resp = p.input_ids.narrow(1, p.prompt_len, p.response_len());
    at::Tensor pmask = p.attention_mask.narrow(1, 0, p.prompt_len);
    at::Tensor rmask = p.attention_mask.narrow(1, p.prompt_len, p.response_len());
    ids.push_back(torch::cat({torch::full({p.rows(), lp}, pad_id, prompt.options()), prompt, resp,
                              torch::full({p.rows(), rp}, pad_id, resp.options())},
                             1));
    masks.push_back(torch::cat({torch::zeros({p.rows(), lp}, pmask.options()), pmask, rmask,
                                torch::zeros({p.rows(), rp}, rmask.options())},
                               1));
    rmasks.push_back(
        torch::cat({p.response_mask, torch::zeros({p.rows(), rp}, p.response_mask.options())}, 1));
    sample_lps.push_back(at::constant_pad_nd(p.sample_log_probs, {0, rp}, 0.0));
    if (p.scores.defined()) scores.push_back(p.scores);  // scored batches (DAPO's rounds)
    int64_t max_group = -1;
    for (auto g : p.group) out.group.push_back(g + group_offset), max_group = std::max(max_group, g);
    group_offset += max_group + 1;
    out.correct.insert(out.correct.end(), p.correct.begin(), p.correct.end());
    out.format_ok.insert(out.format_ok.end(), p.format_ok.begin(), p.format_ok.end());
    out.truncated.insert(out.truncated.end(), p.truncated.begin(), p.truncated.end());
    out.prompts.insert(out.prompts.end(), p.prompts.begin(), p.prompts.end());
    out.responses.insert(out.responses.end(), p.responses.begin(), p.responses.end());
  }
  out.input_ids = torch::cat(ids, 0);
  out.attention_mask = torch::cat(masks, 0);
  out.response_mask = torch::cat(rmasks, 0);
  out.sample_log_probs = torch::cat(sample_lps, 0);
  if (scores.size() == parts.size()) out.scores = torch::cat(scores, 0);
  return out;
}

RolloutBatch select_rows(const RolloutBatch& r, const std::vector<int64_t>& rows) {
  RolloutBatch out;
  at::Tensor index = torch::tensor(rows, torch::kLong).to(r.input_ids.device());
  out.input_ids = r.input_ids.index_select(0, index);
  out.attention_mask = r.attention_mask.index_select(0, index);
  out.response_mask = r.response_mask.index_select(0, index);
  out.sample_log_probs = r.sample_log_probs.index_select(0, index);
  out.scores = r.scores.index_select(0, index.to(r.scores.device()));
  out.prompt_len = r.prompt_len;
  out.rows_at_once = r.rows_at_once;
  for (auto i : rows) {
    out.group.push_back(r.group[i]);
    out.correct.push_back(r.correct[i]);
    out.format_ok.push_back(r.format_ok[i]);
    out.truncated.push_back(r.truncated[i]);
    out.prompts.push_back(r.prompts[i]);
    out.responses.push_back(r.responses[i]);
  }
  return out;
}

at::Tensor row_index(const std::vector<int64_t>& rows, const at::Device& device) {
  return torch::tensor(rows, torch::kLong).to(device);
}

std::vector<int64_t> response_lengths(const RolloutBatch& r) {
  const at::Tensor lengths = r.response_mask.sum(1).to(torch::kCPU).to(torch::kLong).contiguous();
  return std::vector<int64_t>(lengths.data_ptr<int64_t>(), lengths.data_ptr<int64_t>() + lengths.numel());
}

int64_t response_width(const RolloutBatch& r, const at::Tensor& index) {
  const at::Tensor used = (r.response_mask.index_select(0, index) != 0).any(0).nonzero();
  return used.numel() > 0 ? used.max().item<int64_t>() + 1 : std::min<int64_t>(r.response_len(), 1);
}

namespace {

// All rows, shortest response first, cut into chunks of `micro` rows.
std::vector<std::vector<int64_t>> length_sorted_chunks(const RolloutBatch& r, int64_t micro) {
  const std::vector<int64_t> len = response_lengths(r);
  std::vector<int64_t> order(static_cast<size_t>(r.rows()));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return len[static_cast<size_t>(a)] < len[static_cast<size_t>(b)];
  });
  std::vector<std::vector<int64_t>> chunks;
  const size_t step = static_cast<size_t>(micro);
  for (size_t start = 0; start < order.size(); start += step)
    chunks.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(start),
                        order.begin() + static_cast<std::ptrdiff_t>(std::min(order.size(), start + step)));
  return chunks;
}

}  // namespace

at::Tensor by_length_chunks(const RolloutBatch& r, int64_t micro,
                            const std::function<at::Tensor(const std::vector<int64_t>&)>& pass) {
  at::Tensor out;
  for (const auto& rows : length_sorted_chunks(r, micro)) {
    at::Tensor part = pass(rows);
    if (!out.defined()) out = at::zeros({r.rows(), part.size(1)}, part.options());
    out.index_copy_(0, row_index(rows, part.device()), part);
  }
  return out;
}

}  // namespace tinyzero
