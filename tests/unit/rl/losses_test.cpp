// Loss aggregation, PPO policy loss, KL estimators, entropy, value loss and the KL controllers against
// values computed by hand from the formulas.
#include "tinyzero/rl/losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "support/tensor.h"
#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/rl/kl.h"

namespace tinyzero {
namespace {

using ::tinyzero::testing::expect_tensor_near;
using ::tinyzero::testing::t2;

double agg(const torch::Tensor& loss, const torch::Tensor& mask, LossAggMode mode, double denominator = 0) {
  return agg_loss(loss, mask, {mode, denominator}).item<double>();
}

// ---- aggregation ---------------------------------------------------------------------------------------

TEST(AggLoss, EachModeByHand) {
  // Row 0 keeps {1, 2}, row 1 keeps {4}, row 2 is empty (padding); T = 4.
  auto loss = t2({{1, 2, 3, 9}, {4, 5, 6, 9}, {7, 7, 7, 7}});
  auto mask = t2({{1, 1, 0, 0}, {1, 0, 0, 0}, {0, 0, 0, 0}});
  EXPECT_NEAR(agg(loss, mask, LossAggMode::kTokenMean), 7.0 / 3, 1e-6);            // (1 + 2 + 4) / 3 tokens
  EXPECT_NEAR(agg(loss, mask, LossAggMode::kSeqMeanTokenSum), 3.5, 1e-6);          // (3 + 4) / 2 sequences
  EXPECT_NEAR(agg(loss, mask, LossAggMode::kSeqMeanTokenMean), 2.75, 1e-6);        // (1.5 + 4) / 2
  EXPECT_NEAR(agg(loss, mask, LossAggMode::kSeqMeanTokenSumNorm), 7.0 / 4, 1e-6);  // 7 / T
  EXPECT_NEAR(agg(loss, mask, LossAggMode::kTokenMean, 14), 0.5, 1e-6);            // explicit denominator
  EXPECT_NEAR(agg(loss, mask, LossAggMode::kSeqMeanTokenSumNorm, 2), 3.5, 1e-6);
  EXPECT_EQ(agg_loss_local_denominator(mask, LossAggMode::kTokenMean), 3);
  EXPECT_EQ(agg_loss_local_denominator(mask, LossAggMode::kSeqMeanTokenSum), 2);
  EXPECT_EQ(agg_loss_local_denominator(mask, LossAggMode::kSeqMeanTokenMean), 2);
  EXPECT_EQ(agg_loss_local_denominator(mask, LossAggMode::kSeqMeanTokenSumNorm), 4);
  // An empty mask gives 0, not NaN.
  EXPECT_EQ(agg(loss, torch::zeros_like(mask), LossAggMode::kTokenMean), 0.0);
  EXPECT_EQ(agg(loss, torch::zeros_like(mask), LossAggMode::kSeqMeanTokenMean), 0.0);
  EXPECT_THROW(agg_loss(loss, mask, {LossAggMode::kTokenMean, -1}), Error);
  EXPECT_THROW(agg_loss(loss, mask.slice(1, 0, 2), {}), Error);
}

TEST(AggLoss, MicroBatchesWithGlobalDenominatorAddUpToOneBigBatch) {
  torch::manual_seed(0);
  auto loss = torch::randn({6, 5});
  auto mask = (torch::rand({6, 5}) > 0.4).to(torch::kFloat);
  mask.index_put_({0}, 0);  // one empty sequence
  for (auto mode : {LossAggMode::kTokenMean, LossAggMode::kSeqMeanTokenSum, LossAggMode::kSeqMeanTokenMean,
                    LossAggMode::kSeqMeanTokenSumNorm}) {
    const double whole = agg(loss, mask, mode);
    double denominator = 0;
    for (int i = 0; i < 3; ++i) {
      const double local = agg_loss_local_denominator(mask.slice(0, 2 * i, 2 * i + 2), mode);
      denominator = agg_loss_denominator_is_count(mode) ? denominator + local : local;
    }
    double sum = 0;
    for (int i = 0; i < 3; ++i)
      sum += agg(loss.slice(0, 2 * i, 2 * i + 2), mask.slice(0, 2 * i, 2 * i + 2), mode, denominator);
    EXPECT_NEAR(sum, whole, 1e-5) << to_string(mode);
  }
}

TEST(AggLoss, ParseModes) {
  for (auto name : {"token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"})
    EXPECT_EQ(to_string(parse_loss_agg_mode(name)), name);
  EXPECT_THROW(parse_loss_agg_mode("token_mean"), ConfigError);
}

// ---- policy loss ----------------------------------------------------------------------------------------

TEST(PolicyLoss, ClipHigherAndDualClipByHand) {
  // clip low 0.2, high 0.28, c = 3. Per token (A, ratio) -> loss:
  //   a (1, 1.5):  max(-1.5, -1.28) = -1.28        clipped
  //   b (1, 0.5):  max(-0.5, -0.8) = -0.5
  //   c (-1, 0.5): max(0.5, 0.8) = 0.8, min(3, 0.8) = 0.8   clipped
  //   d (-1, 4):   max(4, 1.28) = 4, min(3, 4) = 3         dual clip (lower)
  //   e (2, 1.1):  max(-2.2, -2.2) = -2.2
  //   f (1, e^30): masked out; the log-ratio is clamped to 20 so nothing overflows.
  const std::vector<double> ratios{1.5, 0.5, 0.5, 4.0, 1.1};
  std::vector<double> log_ratio;
  for (double r : ratios) log_ratio.push_back(std::log(r));
  log_ratio.push_back(30.0);
  auto old_lp = torch::full({1, 6}, -2.0);
  auto lp = (old_lp + torch::tensor(log_ratio, torch::kFloat).unsqueeze(0)).requires_grad_(true);
  auto adv = t2({{1, 1, -1, -1, 2, 1}});
  auto mask = t2({{1, 1, 1, 1, 1, 0}});
  PolicyLossOptions opt;
  opt.clip_ratio_low = 0.2, opt.clip_ratio_high = 0.28, opt.clip_ratio_c = 3.0;
  auto res = compute_policy_loss(old_lp, lp, adv, mask, opt);
  EXPECT_NEAR(res.pg_loss.item<double>(), (-1.28 - 0.5 + 0.8 + 3 - 2.2) / 5, 1e-5);
  EXPECT_NEAR(res.pg_clipfrac.item<double>(), 2.0 / 5, 1e-6);
  EXPECT_NEAR(res.pg_clipfrac_lower.item<double>(), 1.0 / 5, 1e-6);
  double sum_log = 0;
  for (double r : ratios) sum_log += std::log(r);
  EXPECT_NEAR(res.ppo_kl.item<double>(), -sum_log / 5, 1e-5);
  // Gradient wrt log_prob: -A * ratio / 5 on unclipped tokens, 0 on clipped and masked ones.
  res.pg_loss.backward();
  expect_tensor_near(lp.grad(), t2({{0, -0.5 / 5, 0, 0, -2.2 / 5, 0}}));

  // Other aggregations reuse agg_loss: seq-mean-token-sum is the token sum for one sequence.
  opt.agg.mode = LossAggMode::kSeqMeanTokenSum;
  EXPECT_NEAR(compute_policy_loss(old_lp, lp, adv, mask, opt).pg_loss.item<double>(),
              -1.28 - 0.5 + 0.8 + 3 - 2.2, 1e-5);
}

TEST(PolicyLoss, OnPolicyIsMinusMeanAdvantageAndRejectsBadDualClip) {
  auto lp = t2({{-1, -2, -3}});
  auto res = compute_policy_loss(lp, lp, t2({{1, -2, 4}}), t2({{1, 1, 1}}));
  EXPECT_NEAR(res.pg_loss.item<double>(), -1.0, 1e-6);  // -(1 - 2 + 4) / 3
  EXPECT_EQ(res.pg_clipfrac.item<double>(), 0.0);
  EXPECT_EQ(res.ppo_kl.item<double>(), 0.0);
  PolicyLossOptions bad;
  bad.clip_ratio_c = 1.0;
  EXPECT_THROW(compute_policy_loss(lp, lp, lp, lp, bad), ConfigError);
  ActorConfig actor;
  actor.clip_ratio_high = 0.28;
  actor.loss_agg_mode = "seq-mean-token-mean";
  auto from_config = policy_loss_options(actor);
  EXPECT_EQ(from_config.clip_ratio_high, 0.28);
  EXPECT_EQ(from_config.agg.mode, LossAggMode::kSeqMeanTokenMean);
}

// ---- KL -------------------------------------------------------------------------------------------------

TEST(Kl, EstimatorsByHand) {
  auto lp = t2({{-1, -2, 0, -30}});
  auto ref = t2({{-1.5, -1, -30, 0}});
  // d = lp - ref = [0.5, -1, 30, -30]
  expect_tensor_near(kl_penalty(lp, ref, parse_kl_estimator("k1")), t2({{0.5, -1, 30, -30}}));
  expect_tensor_near(kl_penalty(lp, ref, parse_kl_estimator("kl")), t2({{0.5, -1, 30, -30}}));
  expect_tensor_near(kl_penalty(lp, ref, parse_kl_estimator("mse")), t2({{0.125, 0.5, 450, 450}}), 1e-3);
  expect_tensor_near(kl_penalty(lp, ref, parse_kl_estimator("abs")), t2({{0.5, 1, 30, 30}}));
  // k3: x = ref - lp = [-0.5, 1, -30 -> -20, 30 -> 20]; exp(x) - x - 1, clamped to [-10, 10].
  const double k3a = std::exp(-0.5) + 0.5 - 1, k3b = std::exp(1.0) - 2;
  expect_tensor_near(kl_penalty(lp, ref, parse_kl_estimator("low_var_kl")), t2({{k3a, k3b, 10, 10}}));
  EXPECT_EQ(parse_kl_estimator("k3"), KlEstimator::kK3);
  EXPECT_EQ(parse_kl_estimator("k2"), KlEstimator::kK2);
  EXPECT_THROW(parse_kl_estimator("k4"), ConfigError);
  // d k3 / d lp = 1 - exp(ref - lp) inside the clamps.
  auto lp2 = t2({{-1, -2}}).requires_grad_(true);
  kl_penalty(lp2, t2({{-1.5, -1}}), KlEstimator::kK3).sum().backward();
  expect_tensor_near(lp2.grad(), t2({{1 - std::exp(-0.5), 1 - std::exp(1.0)}}));
}

TEST(Kl, KlInRewardByHand) {
  auto scores = t2({{0, 0, 1}, {0, 2, 0}});
  auto mask = t2({{1, 1, 1}, {1, 1, 0}});
  auto old_lp = t2({{-1, -1, -1}, {-2, -2, -2}});
  auto ref = t2({{-1.5, -1, -0.5}, {-2, -1, -9}});
  // k1 = [[0.5, 0, -0.5], [0, -1, (7, masked)]]
  auto res = apply_kl_penalty(scores, old_lp, ref, mask, 0.1, KlEstimator::kK1);
  expect_tensor_near(res.token_level_rewards, t2({{-0.05, 0, 1.05}, {0, 2.1, 0}}));
  EXPECT_NEAR(res.current_kl, (0.0 + -0.5) / 2, 1e-6);  // mean of per-sequence means
}

TEST(Kl, Controllers) {
  AdaptiveKlController adaptive(0.001, 0.1, 10000);
  adaptive.update(0.2, 256);  // error clipped to +0.2
  EXPECT_NEAR(adaptive.value(), 0.001 * (1 + 0.2 * 256 / 10000.0), 1e-12);
  adaptive.update(0.05, 100);  // error -0.5 clipped to -0.2
  EXPECT_NEAR(adaptive.value(), 0.001 * (1 + 0.2 * 256 / 10000.0) * (1 - 0.2 * 100 / 10000.0), 1e-12);
  adaptive.update(0.11, 1000);  // error 0.1 unclipped
  EXPECT_NEAR(adaptive.value(), 0.001 * 1.00512 * 0.998 * (1 + 0.1 * 0.1), 1e-12);
  FixedKlController fixed(0.001);
  fixed.update(5.0, 100);
  EXPECT_EQ(fixed.value(), 0.001);
  KlControlConfig cfg;
  cfg.type = "adaptive";
  cfg.kl_coef = 0.5;
  auto ctrl = make_kl_controller(cfg);
  ctrl->update(cfg.target_kl, 10);  // at the target: unchanged
  EXPECT_DOUBLE_EQ(ctrl->value(), 0.5);
  cfg.type = "pid";
  EXPECT_THROW(make_kl_controller(cfg), ConfigError);
  EXPECT_THROW(AdaptiveKlController(0.1, 0.0, 10), ConfigError);
}

// ---- entropy --------------------------------------------------------------------------------------------

TEST(Entropy, KnownDistributionsAndStability) {
  const double ln2 = std::log(2.0);
  auto logits = torch::stack({torch::log(torch::tensor({0.5, 0.25, 0.25})),  // H = 1.5 ln 2
                              torch::zeros({3}),                             // uniform: ln 3
                              torch::tensor({1000.0, 1000.0, -1000.0})})     // large: ln 2
                    .to(torch::kFloat)
                    .view({1, 3, 3});
  expect_tensor_near(entropy_from_logits(logits), torch::tensor({{1.5 * ln2, std::log(3.0), ln2}}));
  // -inf logits (masked vocabulary) give the entropy of the rest and finite gradients.
  auto masked = torch::tensor({{0.0f, 0.0f, -INFINITY}}).requires_grad_(true);
  auto h = entropy_from_logits(masked);
  EXPECT_NEAR(h.item<double>(), ln2, 1e-6);
  h.sum().backward();
  EXPECT_TRUE(torch::isfinite(masked.grad()).all().item<bool>());
  // bf16 logits are computed in float32.
  auto bf = entropy_from_logits(torch::zeros({2, 4}, torch::kBFloat16));
  EXPECT_EQ(bf.scalar_type(), torch::kFloat);
  expect_tensor_near(bf, torch::full({2}, std::log(4.0)));
  // Gradient of H wrt logits: -p * (log p + H).
  auto x = torch::log(torch::tensor({{0.5, 0.25, 0.25}}, torch::kFloat)).requires_grad_(true);
  entropy_from_logits(x).sum().backward();
  const double H = 1.5 * ln2;
  expect_tensor_near(x.grad(), torch::tensor({{-0.5 * (std::log(0.5) + H), -0.25 * (std::log(0.25) + H),
                                               -0.25 * (std::log(0.25) + H)}}));
}

// ---- value loss -----------------------------------------------------------------------------------------

TEST(ValueLoss, ClippedByHand) {
  // cliprange 0.5, old values 0:
  //   (vpred 1, ret 1):   clip 0.5 -> max(0, 0.25) = 0.25  clipped
  //   (vpred 0.2, ret 1): clip 0.2 -> max(0.64, 0.64) = 0.64
  //   (vpred -1, ret 0):  clip -0.5 -> max(1, 0.25) = 1
  //   masked token with a huge error.
  auto vpreds = t2({{1, 0.2, -1, 100}}).requires_grad_(true);
  auto returns = t2({{1, 1, 0, 0}});
  auto values = torch::zeros({1, 4});
  auto mask = t2({{1, 1, 1, 0}});
  auto res = compute_value_loss(vpreds, returns, values, mask, 0.5);
  EXPECT_NEAR(res.vf_loss.item<double>(), 0.5 * (0.25 + 0.64 + 1) / 3, 1e-6);
  EXPECT_NEAR(res.vf_clipfrac.item<double>(), 1.0 / 3, 1e-6);
  res.vf_loss.backward();
  // d/dv 0.5 * (v - R)^2 / 3 = (v - R) / 3 on unclipped tokens; 0 where the clipped branch won.
  expect_tensor_near(vpreds.grad(), t2({{0, (0.2 - 1) / 3, -1.0 / 3, 0}}));
}

}  // namespace
}  // namespace tinyzero
