// Our AdamW against LibTorch's torch::optim::AdamW (the oracle), the LR schedule by hand, clipping.
#include "tinyzero/trainer/optimizer.h"

#include "tinyzero/core/errors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace tinyzero {
namespace {

TEST(AdamW, MatchesLibTorchAdamWOverSeveralSteps) {
  torch::manual_seed(0);
  OptimConfig c;
  c.lr = 1e-2;
  c.weight_decay = 0.1;
  c.beta1 = 0.8;
  c.beta2 = 0.95;
  c.eps = 1e-6;
  auto a = torch::randn({5, 3}).requires_grad_(true);
  auto b = a.detach().clone().requires_grad_(true);
  AdamW ours({{"w", a}}, c);
  torch::optim::AdamW theirs(
      {b},
      torch::optim::AdamWOptions(c.lr).betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(c.weight_decay));
  for (int step = 0; step < 5; ++step) {
    auto target = torch::randn({5, 3});
    ours.zero_grad();
    theirs.zero_grad();
    (a * target).pow(2).sum().backward();
    (b * target).pow(2).sum().backward();
    ours.step(c.lr);
    theirs.step();
    ASSERT_TRUE(torch::allclose(a, b, 1e-6, 1e-7)) << "step " << step << "\n" << (a - b).abs().max();
  }
  EXPECT_EQ(ours.steps_taken(), 5);
}

TEST(AdamW, Bf16ParametersUpdateAnFp32MasterCopy) {
  OptimConfig c;
  c.lr = 1e-6;  // far below bf16's resolution at 1.0 (2^-8): the master copy must keep the updates
  c.weight_decay = 0;
  auto p = torch::ones({4}, torch::kBFloat16).requires_grad_(true);
  AdamW opt({{"p", p}}, c);
  for (int i = 0; i < 3; ++i) {
    opt.zero_grad();
    p.sum().backward();
    opt.step(c.lr);
  }
  auto state = opt.state_tensors();
  ASSERT_EQ(state.size(), 3u);
  EXPECT_EQ(state[2].first, "master.p");
  // Three Adam steps of ~lr each (m_hat / sqrt(v_hat) = 1 for a constant gradient).
  EXPECT_NEAR(state[2].second[0].item<double>(), 1.0 - 3e-6, 1e-7);  // fp32 spacing at 1.0 is 6e-8
  EXPECT_EQ(p[0].item<double>(), 1.0);  // the bf16 copy cannot show a 3e-6 change yet
}

TEST(AdamW, StateRoundTripsAndMismatchIsAnError) {
  OptimConfig c;
  auto p = torch::randn({3}).requires_grad_(true);
  AdamW opt({{"p", p}}, c);
  p.sum().backward();
  opt.step(1e-3);
  std::map<std::string, at::Tensor> saved;
  for (auto& [k, v] : opt.state_tensors()) saved[k] = v.clone();
  auto q = p.detach().clone().requires_grad_(true);
  AdamW other({{"p", q}}, c);
  other.load_state(saved, opt.steps_taken());
  p.mutable_grad().fill_(0.5);
  q.mutable_grad() = torch::full({3}, 0.5);
  opt.step(1e-3);
  other.step(1e-3);
  EXPECT_TRUE(torch::equal(p, q));
  saved.erase("exp_avg.p");
  EXPECT_THROW(other.load_state(saved, 1), Error);
}

TEST(LearningRate, WarmupConstantAndCosine) {
  OptimConfig c;
  c.lr = 1.0;
  c.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 0, 20), 0.25);
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 3, 20), 1.0);
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 10, 20), 1.0);
  c.schedule = "cosine";
  c.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(learning_rate_at(c, 4, 20), 1.0);                 // start of the cosine
  EXPECT_NEAR(learning_rate_at(c, 12, 20), 0.1 + 0.9 * 0.5, 1e-12);  // halfway: cos(pi/2) = 0
  EXPECT_NEAR(learning_rate_at(c, 20, 20), 0.1, 1e-12);              // the end
}

TEST(GradClip, ScalesToMaxNormAndReportsTheNormBefore) {
  auto a = torch::zeros({2}).requires_grad_(true);
  auto b = torch::zeros({1}).requires_grad_(true);
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  std::vector<std::pair<std::string, at::Tensor>> params = {{"a", a}, {"b", b}};
  EXPECT_NEAR(clip_grad_norm(params, 1.0), 5.0, 1e-6);
  EXPECT_NEAR(global_grad_norm(params).item<double>(), 1.0, 1e-5);
  b.mutable_grad()[0] = std::nan("");
  EXPECT_TRUE(std::isnan(clip_grad_norm(params, 1.0)));  // reported, not applied
}

}  // namespace
}  // namespace tinyzero
