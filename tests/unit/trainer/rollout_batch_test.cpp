// The rollout batch's row operations: concatenating the chunks of a step (padding prompts on the left
// and responses on the right, renumbering groups), selecting rows (DAPO), and running a pass over rows
// in length-sorted chunks that puts each result back at its row.
#include "trainer/rollout_batch.h"

#include <gtest/gtest.h>

namespace tinyzero {
namespace {

// A batch of `groups` prompts x `n` rows, prompt length P, responses of the given lengths (R = max).
RolloutBatch make_batch(int64_t groups, int64_t n, int64_t P, const std::vector<int64_t>& lengths,
                        int64_t base) {
  const int64_t B = groups * n, R = *std::max_element(lengths.begin(), lengths.end());
  RolloutBatch r;
  r.prompt_len = P;
  r.input_ids = torch::arange(base, base + B * (P + R), torch::kLong).reshape({B, P + R});
  r.attention_mask = torch::ones({B, P + R}, torch::kLong);
  r.response_mask = torch::zeros({B, R});
  for (int64_t i = 0; i < B; ++i) r.response_mask[i].narrow(0, 0, lengths[i]).fill_(1);
  r.sample_log_probs = -torch::ones({B, R});
  r.scores = torch::arange(B, torch::kFloat) + static_cast<float>(base);
  for (int64_t i = 0; i < B; ++i) {
    r.group.push_back(i / n);
    r.correct.push_back(i % 2 == 0);
    r.format_ok.push_back(true);
    r.truncated.push_back(false);
    r.prompts.push_back("p" + std::to_string(base + i / n));
    r.responses.push_back("r" + std::to_string(base + i));
  }
  return r;
}

TEST(RolloutBatch, ConcatPadsPromptsLeftResponsesRightAndRenumbersGroups) {
  std::vector<RolloutBatch> parts;
  parts.push_back(make_batch(2, 2, 3, {1, 2, 2, 1}, 0));
  parts.push_back(make_batch(1, 2, 5, {4, 3}, 1000));
  const RolloutBatch r = concat_rollouts(parts, /*pad_id=*/-7);
  ASSERT_EQ(r.rows(), 6);
  EXPECT_EQ(r.prompt_len, 5);
  EXPECT_EQ(r.response_len(), 4);
  EXPECT_EQ(r.group, (std::vector<int64_t>{0, 0, 1, 1, 2, 2}));
  // Row 0: two pad ids on the left of its 3-token prompt, its 2 response columns, then 2 pads.
  EXPECT_EQ(r.input_ids[0][0].item<int64_t>(), -7);
  EXPECT_EQ(r.input_ids[0][1].item<int64_t>(), -7);
  EXPECT_EQ(r.input_ids[0][2].item<int64_t>(), 0);
  EXPECT_EQ(r.input_ids[0][7].item<int64_t>(), -7);
  EXPECT_EQ(r.attention_mask[0].sum().item<int64_t>(), 5);
  EXPECT_EQ(response_lengths(r), (std::vector<int64_t>{1, 2, 2, 1, 4, 3}));
  EXPECT_EQ(r.responses[4], "r1000");
  EXPECT_FLOAT_EQ(r.scores[5].item<float>(), 1001.0f);
  EXPECT_FLOAT_EQ(r.sample_log_probs[0][3].item<float>(), 0.0f);  // padded, not the part's -1
}

TEST(RolloutBatch, ConcatOfUnscoredChunksLeavesTheScoresForTheRewardStage) {
  std::vector<RolloutBatch> parts;
  parts.push_back(make_batch(1, 2, 3, {1, 2}, 0));
  parts.push_back(make_batch(1, 2, 3, {2, 2}, 100));
  for (auto& p : parts) p.scores = at::Tensor(), p.correct.clear(), p.format_ok.clear();
  const RolloutBatch r = concat_rollouts(parts, 0);
  EXPECT_EQ(r.rows(), 4);
  EXPECT_FALSE(r.scores.defined());
  EXPECT_TRUE(r.correct.empty());
}

TEST(RolloutBatch, SelectKeepsTheRowsAndTheirFields) {
  const RolloutBatch r = make_batch(3, 2, 2, {1, 2, 3, 1, 2, 3}, 0);
  const RolloutBatch s = select_rows(r, {2, 3});
  ASSERT_EQ(s.rows(), 2);
  EXPECT_EQ(s.group, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(s.responses, (std::vector<std::string>{"r2", "r3"}));
  EXPECT_EQ(s.correct, (std::vector<bool>{true, false}));
  EXPECT_TRUE(torch::equal(s.input_ids, r.input_ids.narrow(0, 2, 2)));
}

TEST(RolloutBatch, ResponseWidthIsTheLongestOfTheRows) {
  const RolloutBatch r = make_batch(1, 4, 2, {1, 5, 2, 0}, 0);
  EXPECT_EQ(response_width(r, row_index({0, 2}, at::kCPU)), 2);
  EXPECT_EQ(response_width(r, row_index({1}, at::kCPU)), 5);
  EXPECT_EQ(response_width(r, row_index({3}, at::kCPU)), 1);  // an empty response still has one column
}

TEST(RolloutBatch, LengthChunksVisitShortestFirstAndPutResultsBackInRowOrder) {
  const RolloutBatch r = make_batch(1, 5, 2, {4, 1, 3, 1, 2}, 0);
  std::vector<std::vector<int64_t>> seen;
  const at::Tensor out = by_length_chunks(r, 2, [&](const std::vector<int64_t>& rows) {
    seen.push_back(rows);
    return torch::tensor(rows, torch::kFloat).unsqueeze(1).repeat({1, 3});  // each row's own index
  });
  EXPECT_EQ(seen, (std::vector<std::vector<int64_t>>{{1, 3}, {4, 2}, {0}}));
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{5, 3}));
  for (int64_t i = 0; i < 5; ++i) EXPECT_FLOAT_EQ(out[i][2].item<float>(), static_cast<float>(i));
}

}  // namespace
}  // namespace tinyzero
