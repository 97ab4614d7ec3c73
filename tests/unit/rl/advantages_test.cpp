// Advantage estimators, masked statistics and reward shaping against values computed by hand.
#include "tinyzero/rl/advantages.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "support/tensor.h"
#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

using ::tinyzero::testing::expect_tensor_near;
using ::tinyzero::testing::t2;

TEST(MaskedStats, MeanVarWhitenMatchHandValues) {
  auto v = torch::tensor({1.0, 2.0, 3.0, 4.0});
  auto m = torch::tensor({1, 1, 1, 0});
  EXPECT_NEAR(masked_mean(v, m).item<double>(), 2.0, 1e-6);
  EXPECT_NEAR(masked_sum(v, m).item<double>(), 6.0, 1e-6);
  // Biased: ((1-2)^2 + 0 + (3-2)^2) / 3 = 2/3; unbiased: 2/2 = 1.
  EXPECT_NEAR(masked_var(v, m, false).item<double>(), 2.0 / 3.0, 1e-6);
  EXPECT_NEAR(masked_var(v, m).item<double>(), 1.0, 1e-6);
  const double s = 1.0 / std::sqrt(1.0 + 1e-8);
  expect_tensor_near(masked_whiten(v, m), torch::tensor({-s, 0.0, s, 2 * s}));
  expect_tensor_near(masked_whiten(v, m, false), torch::tensor({2 - s, 2.0, 2 + s, 2 + 2 * s}));
  auto rows = t2({{1, 3, 9}, {4, 8, 9}});
  auto rmask = t2({{1, 1, 0}, {1, 0, 0}});
  expect_tensor_near(masked_mean(rows, rmask, -1), torch::tensor({2.0, 4.0}));
}

TEST(MaskedStats, VarianceOfTooFewElementsThrows) {
  auto v = torch::tensor({1.0, 2.0});
  EXPECT_THROW(masked_var(v, torch::tensor({0, 0})), Error);
  EXPECT_THROW(masked_var(v, torch::tensor({1, 0})), Error);
  EXPECT_NEAR(masked_var(v, torch::tensor({1, 0}), false).item<double>(), 0.0, 1e-9);
}

TEST(Groups, ContiguousIndex) {
  EXPECT_EQ(contiguous_group_index(6, 3), (std::vector<int64_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_THROW(contiguous_group_index(5, 3), Error);
}

// Outcome scores at the last response token of each row (B = 7, T = 3).
struct OutcomeBatch {
  torch::Tensor rewards, mask;
};
OutcomeBatch outcome_batch(const std::vector<double>& scores) {
  const int64_t b = static_cast<int64_t>(scores.size());
  auto mask = torch::ones({b, 3});
  mask.index_put_({torch::indexing::Slice(0, b, 2), 2}, 0);  // even rows have 2 response tokens
  auto rewards = scores_to_token_level(torch::tensor(scores, torch::kFloat), mask);
  return {rewards, mask};
}

TEST(Grpo, GroupNormalisedWithUnbiasedStd) {
  // Groups: {1, 0, 0} (id 5), {0.5, 0.5, 0.5} (id 2), {1} (id 9, alone).
  auto b = outcome_batch({1, 0, 0, 0.5, 0.5, 0.5, 1});
  std::vector<int64_t> index{5, 5, 5, 2, 2, 2, 9};
  auto res = compute_grpo_outcome_advantage(b.rewards, b.mask, index);
  // Group 5: mean 1/3, unbiased std sqrt(((2/3)^2 + 2 (1/3)^2) / 2) = sqrt(1/3).
  const double std5 = std::sqrt(1.0 / 3.0);
  const std::vector<double> want{
      (2.0 / 3) / (std5 + 1e-6), (-1.0 / 3) / (std5 + 1e-6), (-1.0 / 3) / (std5 + 1e-6), 0, 0, 0, 0};
  expect_tensor_near(res.advantages, torch::tensor(want, torch::kFloat).unsqueeze(1) * b.mask);
  expect_tensor_near(res.returns, res.advantages);
  // Dr. GRPO: no division by the std.
  auto dr = compute_grpo_outcome_advantage(b.rewards, b.mask, index, 1e-6, false);
  const std::vector<double> want_dr{2.0 / 3, -1.0 / 3, -1.0 / 3, 0, 0, 0, 0};
  expect_tensor_near(dr.advantages, torch::tensor(want_dr, torch::kFloat).unsqueeze(1) * b.mask);
}

TEST(Grpo, AllEqualGroupsGetExactlyZeroAdvantage) {
  // Eight responses that all earned TinyZero's format score 0.1 (float32), and eight that earned 0.1
  // but one 1.0. Summed in float32 the first group's mean is one ulp off, and dividing that by a std of
  // the same size + epsilon once gave each of its responses an advantage of -0.007: a push on every
  // all-failed group's tokens in the same direction.
  std::vector<double> scores(16, 0.1f);
  scores[12] = 1.0;
  auto b = outcome_batch(scores);
  auto res = compute_grpo_outcome_advantage(b.rewards, b.mask, contiguous_group_index(16, 8));
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(res.advantages[i].sum().item<float>(), 0.0f) << i;
  EXPECT_GT(res.advantages[12].sum().item<float>(), 2.0f);
  auto rloo = compute_rloo_outcome_advantage(b.rewards, b.mask, contiguous_group_index(16, 8));
  for (int64_t i = 0; i < 8; ++i) EXPECT_EQ(rloo.advantages[i].sum().item<float>(), 0.0f) << i;
}

TEST(Grpo, InterleavedGroupsAndWrongIndexLength) {
  auto b = outcome_batch({1, 3, 0, 5});
  auto res = compute_grpo_outcome_advantage(b.rewards, b.mask, {7, 3, 7, 3}, 1e-6, false);
  // Group 7: {1, 0}, mean 0.5; group 3: {3, 5}, mean 4.
  expect_tensor_near(res.advantages.sum(-1), torch::tensor({0.5 * 2, -1.0 * 3, -0.5 * 2, 1.0 * 3}));
  EXPECT_THROW(compute_grpo_outcome_advantage(b.rewards, b.mask, {1, 2}), Error);
}

TEST(Rloo, LeaveOneOutBaseline) {
  auto b = outcome_batch({1, 0, 0, 4});
  auto res = compute_rloo_outcome_advantage(b.rewards, b.mask, {0, 0, 0, 1});
  // 1 - mean(0, 0) = 1; 0 - mean(1, 0) = -0.5; a group of one gets 0.
  expect_tensor_near(res.advantages.select(1, 0), torch::tensor({1.0, -0.5, -0.5, 0.0}));
  expect_tensor_near(res.advantages, res.advantages.select(1, 0).unsqueeze(1) * b.mask);
}

TEST(Gae, HandComputedWithGapInMask) {
  // Row 0: mask [1, 1, 0], rewards [0, 1, 0], values [0.5, 0.2, 9]; gamma 0.9, lam 0.8.
  //   t=1: delta = 1 - 0.2 = 0.8, A = 0.8;  t=0: delta = 0.9 * 0.2 - 0.5 = -0.32, A = -0.32 + 0.72 * 0.8 =
  //   0.256.
  // Row 1: mask [1, 0, 1], rewards [0, 5, 1], values [0.5, 7, 0.3]: the middle token is skipped.
  //   t=2: A = 1 - 0.3 = 0.7;  t=0: delta = 0.9 * 0.3 - 0.5 = -0.23, A = -0.23 + 0.72 * 0.7 = 0.274.
  auto rewards = t2({{0, 1, 0}, {0, 5, 1}});
  auto values = t2({{0.5, 0.2, 9}, {0.5, 7, 0.3}});
  auto mask = t2({{1, 1, 0}, {1, 0, 1}});
  auto res = compute_gae_advantage_return(rewards, values, mask, 0.9, 0.8, /*whiten=*/false);
  expect_tensor_near(res.advantages, t2({{0.256, 0.8, 0}, {0.274, 0, 0.7}}));
  expect_tensor_near(res.returns * mask, t2({{0.756, 1.0, 0}, {0.774, 0, 1.0}}));
  // Whitened over the 4 masked advantages with the unbiased variance.
  auto whitened = compute_gae_advantage_return(rewards, values, mask, 0.9, 0.8);
  const double vals[] = {0.256, 0.8, 0.274, 0.7};
  const double mean = (vals[0] + vals[1] + vals[2] + vals[3]) / 4;
  double ss = 0;
  for (double x : vals) ss += (x - mean) * (x - mean);
  const double sd = std::sqrt(ss / 3 + 1e-8);
  expect_tensor_near(whitened.advantages, t2({{(0.256 - mean) / sd, (0.8 - mean) / sd, 0},
                                              {(0.274 - mean) / sd, 0, (0.7 - mean) / sd}}));
  expect_tensor_near(whitened.returns * mask, res.returns * mask);
}

TEST(Gae, GammaLambdaOneIsReturnMinusValue) {
  // TinyZero's recipe: gamma = lam = 1, so A_t = (sum of rewards from t) - V_t.
  auto res =
      compute_gae_advantage_return(t2({{0, 0, 1}}), t2({{0.2, 0.4, 0.6}}), t2({{1, 1, 1}}), 1.0, 1.0, false);
  expect_tensor_near(res.advantages, t2({{0.8, 0.6, 0.4}}));
  expect_tensor_near(res.returns, t2({{1, 1, 1}}));
}

// veRL's formulation, step by step on (B,) tensors: the slow reference for the host loop.
std::pair<torch::Tensor, torch::Tensor> reference_gae(const torch::Tensor& rewards,
                                                      const torch::Tensor& values, const torch::Tensor& mask,
                                                      double gamma, double lam) {
  auto next_values = torch::zeros({rewards.size(0)}, torch::kDouble), last = next_values.clone();
  std::vector<torch::Tensor> reversed;
  for (int64_t t = rewards.size(1) - 1; t >= 0; --t) {
    auto m = mask.select(1, t), v = values.select(1, t);
    auto delta = rewards.select(1, t) + gamma * next_values - v;
    auto gae = delta + gamma * lam * last;
    next_values = v * m + (1 - m) * next_values;
    last = gae * m + (1 - m) * last;
    reversed.push_back(last);
  }
  std::reverse(reversed.begin(), reversed.end());
  auto adv = torch::stack(reversed, 1);
  return {adv, adv + values};
}

TEST(Gae, MatchesStepByStepReferenceOnRandomBatches) {
  torch::manual_seed(3);
  auto rewards = torch::randn({5, 17}, torch::kDouble);
  auto values = torch::randn({5, 17}, torch::kDouble);
  auto mask = (torch::rand({5, 17}) > 0.3).to(torch::kDouble);
  auto [adv, ret] = reference_gae(rewards, values, mask, 0.97, 0.9);
  auto res = compute_gae_advantage_return(rewards, values, mask, 0.97, 0.9, /*whiten=*/false);
  expect_tensor_near(res.advantages, adv * mask, 1e-12);
  expect_tensor_near(res.returns, ret, 1e-12);
  auto whitened =
      compute_gae_advantage_return(rewards.to(torch::kFloat), values.to(torch::kFloat), mask, 0.97, 0.9);
  expect_tensor_near(whitened.advantages, masked_whiten(adv, mask) * mask, 1e-5);
  EXPECT_EQ(whitened.advantages.scalar_type(), torch::kFloat);
  EXPECT_THROW(compute_gae_advantage_return(rewards[0], values[0], mask[0], 1, 1), Error);
}

TEST(RewardShaping, ScoreAtLastResponseToken) {
  auto mask = t2({{1, 1, 0, 0}, {1, 1, 1, 1}, {0, 0, 0, 0}, {0, 1, 1, 0}});
  auto out = scores_to_token_level(torch::tensor({2.0f, 3.0f, 4.0f, 5.0f}), mask);
  expect_tensor_near(out, t2({{0, 2, 0, 0}, {0, 0, 0, 3}, {0, 0, 0, 0}, {0, 0, 5, 0}}));
  EXPECT_THROW(scores_to_token_level(torch::tensor({1.0f}), mask), Error);
}

TEST(RewardShaping, OverlongPenaltyIsLinearInTheBuffer) {
  // Limit 10, buffer 4: no penalty up to 6 tokens, -(len - 6) / 4 * factor after.
  EXPECT_DOUBLE_EQ(overlong_penalty(3, 10, 4, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(6, 10, 4, 1.0), 0.0);
  EXPECT_DOUBLE_EQ(overlong_penalty(8, 10, 4, 1.0), -0.5);
  EXPECT_DOUBLE_EQ(overlong_penalty(10, 10, 4, 2.0), -2.0);
  EXPECT_THROW(overlong_penalty(3, 10, 0, 1.0), ConfigError);
  EXPECT_THROW(overlong_penalty(3, 10, 11, 1.0), ConfigError);
  auto mask = torch::zeros({3, 10});
  mask.index_put_({0, torch::indexing::Slice(0, 3)}, 1);
  mask.index_put_({1, torch::indexing::Slice(0, 9)}, 1);
  mask.index_put_({2, torch::indexing::Slice()}, 1);
  expect_tensor_near(overlong_penalty(mask, 10, 4, 1.0), torch::tensor({0.0, -0.75, -1.0}));
  expect_tensor_near(overlong_penalty(mask.to(torch::kBool), 10, 4, 1.0), torch::tensor({0.0, -0.75, -1.0}));
}

TEST(DynamicSampling, DropsGroupsWithAllEqualScores) {
  auto scores = torch::tensor({1.0, 1.0, 0.0, 1.0, 0.1, 0.1, 5.0});
  auto keep = dynamic_sampling_keep(scores, {0, 0, 1, 1, 2, 2, 3});
  EXPECT_EQ(keep, (std::vector<bool>{false, false, true, true, false, false, true}));
  EXPECT_THROW(dynamic_sampling_keep(scores, {0, 1}), Error);
}

}  // namespace
}  // namespace tinyzero
