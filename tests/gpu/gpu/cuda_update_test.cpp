// One PPO policy update on the GPU against the same update on the CPU, both under bf16 autocast with
// activation checkpointing, as the trainer runs it (src/trainer/trainer.cpp, update_actor): log-probs
// and entropy of a fixed batch through token_logprobs, the clipped policy loss (compute_policy_loss)
// minus the entropy bonus, backward, global-norm clipping and one step of the project's AdamW. The
// loss, clip fractions, gradients and updated parameters are compared.
//
// Same ids, masks, advantages and old/new log-ratios on both devices. The old log-probs are computed
// as the trainer computes them (batched_log_probs: the same model, no grad, bf16 autocast, on its own
// device) and then shifted, so every token starts at a chosen log-ratio on both devices. (Fixed old
// log-probs would not do: bf16 moves log-probs by up to ~0.16 from fp32, more than the distance of a
// ratio from a clip boundary, so the two devices could clip different tokens.)
//
// Device under test: cuda:0; the test skips without a usable CUDA device. With
// TINYZERO_GPU_TESTS_DEVICE=cpu the CPU stands in for the GPU (a rehearsal of the test logic on a
// machine without one; see gpu_device.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gpu/gpu/gpu_device.h"
#include "tinyzero/core/config.h"
#include "tinyzero/model/logprobs.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/rl/losses.h"
#include "tinyzero/trainer/optimizer.h"
#include "unit/model/fixture.h"

namespace tinyzero {
namespace {

using namespace testing_fixture;
using testing_gpu::GpuTest;

constexpr int64_t kRows = 4, kPrompt = 6, kResponse = 10, kTokens = kPrompt + kResponse;  // B, P, R, T
constexpr int64_t kPad = 699;
constexpr double kLr = 1e-3;            // large enough that one step moves every weight by ~lr
constexpr double kGradClip = 1.0;       // the trainer's default
constexpr double kEntropyCoeff = 1e-3;  // TinyZero's entropy bonus
// The log-ratio (new - old log-prob) each response token starts at: unclipped (+-0.05), clipped (-0.5
// or +0.5 against the [log 0.8, log 1.2] band) and dual-clipped (1.5 > log 3 for negative advantages).
// Each lies >= 0.13 from a boundary.
const std::vector<float> kLogRatios{-0.5f, -0.05f, 0.05f, 0.5f, 1.5f};
// The no-grad pass (old log-probs) and the checkpointed training pass compute the same thing: their
// log-ratios may leave kLogRatios by at most this (checked, so every token takes the chosen branch).
constexpr double kLogRatioTol = 1e-3;

// GPU against CPU, both under bf16 autocast: two bf16 roundings of one computation, which differ from
// each other at most ~sqrt(2) times as much as either differs from fp32. Measured on the CPU, bf16
// autocast against fp32 on this batch: loss 4e-6 apart, grad norm 0.5%, per-tensor gradients 0.087
// (the worst, layers.1 k_proj.bias; most below 0.05), 1.2% of the weights stepping the other way.
// The bounds below are ~1.2 x sqrt(2) of those, or looser.
// The loss (~0.06): its policy term is set by the log-ratios; bf16 noise enters through the entropy
// bonus (1e-3 x ~6).
constexpr double kLossTol = 2e-4;
constexpr double kGradNormRelTol = 0.03;  // relative, of the global norm before clipping
constexpr double kGradRelTol = 0.15;      // per tensor, |g_gpu - g_cpu| / |g_cpu| in L2
// AdamW's first step is lr * m / (sqrt(v) + eps) = lr * sign(g) wherever |g| >> eps: a weight whose
// gradient is within bf16 noise of 0 may step the other way (a difference of 2 lr). At most this
// share of all weights may do so, and no weight may differ by more than 2 lr.
constexpr double kMaxFlippedShare = 0.03;

struct Batch {
  at::Tensor ids;         // (B, T) int64: prompts left-padded, responses right-padded with kPad
  at::Tensor mask;        // (B, T) int64: 1 = real token
  at::Tensor response;    // (B, T-1) fp32: 1 where position t predicts a response token
  at::Tensor fp32_logp;   // (B, T-1) fp32: the CPU fp32 model's log-probs (no autocast)
  at::Tensor log_ratio;   // (B, T-1) fp32: one of kLogRatios per response token, 0 elsewhere
  at::Tensor advantages;  // (B, T-1) fp32: N(0, 1) on response tokens
};

// A fixed batch of 4 sequences of 6 prompt + 10 response tokens, some rows padded on either side.
Batch make_batch() {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const std::vector<int64_t> prompt_pad{0, 2, 0, 4}, response_len{10, 7, 10, 4};
  Batch b;
  b.ids = at::randint(0, kPad, {kRows, kTokens}, gen, at::kLong);
  b.mask = at::ones({kRows, kTokens}, at::kLong);
  b.response = at::zeros({kRows, kTokens - 1}, at::kFloat);
  for (int64_t r = 0; r < kRows; ++r) {
    b.mask[r].narrow(0, 0, prompt_pad[r]).fill_(0);
    b.mask[r].narrow(0, kPrompt + response_len[r], kResponse - response_len[r]).fill_(0);
    b.response[r].narrow(0, kPrompt - 1, response_len[r]).fill_(1);
  }
  b.ids.masked_fill_(b.mask == 0, kPad);
  CausalLM model = load_causal_lm(fixture_dir("tied-f32"), at::kFloat);
  {
    torch::NoGradGuard no_grad;
    b.fp32_logp = token_logprobs(*model, b.ids, b.mask).logprobs;  // (B, T-1)
  }
  const at::Tensor pick =
      at::randint(0, static_cast<int64_t>(kLogRatios.size()), {kRows, kTokens - 1}, gen, at::kLong);
  b.log_ratio = torch::tensor(kLogRatios).index({pick}) * b.response;  // (B, T-1)
  b.advantages = at::randn({kRows, kTokens - 1}, gen, at::kFloat) * b.response;
  return b;
}

struct UpdateResult {
  double loss = 0, clipfrac = 0, clipfrac_lower = 0, grad_norm = 0;
  double bf16_shift = 0;        // max |log-prob - fp32_logp| over response tokens
  double ratio_error = 0;       // max |(log-prob - old log-prob) - log_ratio| over response tokens
  int checkpointed_layers = 0;  // CheckpointedLayer nodes in the loss's autograd graph
  std::map<std::string, at::Tensor> before, grads, after;  // CPU copies: weights, clipped grads, weights
};

// Autograd nodes reachable from `root` whose name contains `needle`.
int count_nodes(const std::shared_ptr<torch::autograd::Node>& root, const std::string& needle) {
  std::set<torch::autograd::Node*> seen;
  std::vector<torch::autograd::Node*> todo{root.get()};
  int count = 0;
  while (!todo.empty()) {
    torch::autograd::Node* n = todo.back();
    todo.pop_back();
    if (n == nullptr || !seen.insert(n).second) continue;
    if (n->name().find(needle) != std::string::npos) ++count;
    for (const auto& edge : n->next_edges()) todo.push_back(edge.function.get());
  }
  return count;
}

// The update of update_actor for one micro-batch that is the whole mini-batch, on `device`.
UpdateResult run_update(const c10::Device& device, const Batch& batch) {
  CausalLM model = load_causal_lm(fixture_dir("tied-f32"), at::kFloat, device);
  model->train();
  model->set_activation_checkpointing(true);
  UpdateResult out;
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (const auto& p : model->named_parameters()) {
    params.emplace_back(p.key(), p.value());
    out.before[p.key()] = p.value().detach().cpu().clone();
  }
  OptimConfig optim;  // betas 0.9 / 0.999, eps 1e-8, weight decay 0.01
  optim.lr = kLr;
  optim.grad_clip = kGradClip;
  AdamW adam(params, optim);
  adam.zero_grad();

  const at::Tensor ids = batch.ids.to(device), mask = batch.mask.to(device);  // (B, T)
  const at::Tensor response = batch.response.to(device);                      // (B, T-1)
  LogProbOptions o;
  o.with_entropy = true;
  o.chunk_tokens = 16;  // 60 positions: several chunks of the head
  at::Tensor old_logp;  // (B, T-1)
  {
    torch::NoGradGuard no_grad;  // as batched_log_probs
    AutocastGuard autocast(device, true);
    old_logp = (token_logprobs(*model, ids, mask, o).logprobs - batch.log_ratio.to(device)) * response;
  }
  TokenLogProbs lp;
  {
    AutocastGuard autocast(device, true);       // as response_log_probs: bf16 autocast around the forward
    lp = token_logprobs(*model, ids, mask, o);  // (B, T-1) each
  }
  const at::Tensor new_logp = lp.logprobs.detach().cpu();
  out.bf16_shift = ((new_logp - batch.fp32_logp) * batch.response).abs().max().item<double>();
  out.ratio_error =
      ((new_logp - old_logp.cpu() - batch.log_ratio) * batch.response).abs().max().item<double>();
  PolicyLossOptions pl;  // clip 0.2 / 0.2, dual clip 3, token-mean
  PolicyLossResult res =
      compute_policy_loss(old_logp, lp.logprobs, batch.advantages.to(device), response, pl);
  at::Tensor loss = res.pg_loss - kEntropyCoeff * agg_loss(lp.entropy, response, pl.agg);
  out.checkpointed_layers = count_nodes(loss.grad_fn(), "CheckpointedLayer");
  loss.backward();
  out.loss = loss.item<double>();
  out.clipfrac = res.pg_clipfrac.item<double>();
  out.clipfrac_lower = res.pg_clipfrac_lower.item<double>();
  out.grad_norm = clip_grad_norm(params, optim.grad_clip);
  for (const auto& [name, p] : params) {
    EXPECT_EQ(p.device(), device) << name;
    EXPECT_TRUE(p.grad().defined()) << name;
    if (p.grad().defined()) out.grads[name] = p.grad().cpu().clone();
  }
  adam.step(optim.lr);
  for (const auto& [name, p] : params) out.after[name] = p.detach().cpu().clone();
  return out;
}

double rel_l2(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want.to(at::kDouble)).norm().item<double>() /
         std::max(want.to(at::kDouble).norm().item<double>(), 1e-30);
}

class CudaUpdate : public GpuTest {};

TEST_F(CudaUpdate, PpoStepWithBf16AutocastAndCheckpointingMatchesTheCpu) {
  const Batch batch = make_batch();
  const UpdateResult cpu = run_update(c10::Device(c10::kCPU), batch);
  const UpdateResult gpu = run_update(device(), batch);

  // The batch does what it is for: checkpointing is on (one node per layer), bf16 autocast ran, and
  // every branch of the clipped loss is taken, with no token near a boundary on either device.
  for (const UpdateResult* r : {&cpu, &gpu}) {
    EXPECT_EQ(r->checkpointed_layers, 3);
    EXPECT_GT(r->bf16_shift, 0.0) << "log-probs equal fp32's: bf16 autocast did not run";
    EXPECT_LE(r->ratio_error, kLogRatioTol) << "the no-grad and the training pass disagree";
    EXPECT_GT(r->clipfrac, 0.0);
    EXPECT_LT(r->clipfrac, 1.0);
    EXPECT_GT(r->clipfrac_lower, 0.0);
    EXPECT_GT(r->grad_norm, kGradClip) << "the gradient was not clipped: the clipping path did not run";
    EXPECT_TRUE(std::isfinite(r->loss));
  }
  EXPECT_NEAR(gpu.loss, cpu.loss, kLossTol);
  EXPECT_EQ(gpu.clipfrac, cpu.clipfrac);  // the same tokens clipped
  EXPECT_EQ(gpu.clipfrac_lower, cpu.clipfrac_lower);
  EXPECT_NEAR(gpu.grad_norm, cpu.grad_norm, kGradNormRelTol * cpu.grad_norm);

  double worst_grad = 0, worst_param = 0;
  int64_t flipped = 0, weights = 0;
  for (const auto& [name, g_cpu] : cpu.grads) {
    ASSERT_TRUE(gpu.grads.count(name)) << name;
    const double rel = rel_l2(gpu.grads.at(name), g_cpu);
    EXPECT_LE(rel, kGradRelTol) << name;
    worst_grad = std::max(worst_grad, rel);

    const at::Tensor before = cpu.before.at(name).to(at::kDouble);
    const at::Tensor p_cpu = cpu.after.at(name).to(at::kDouble), p_gpu = gpu.after.at(name).to(at::kDouble);
    EXPECT_TRUE(gpu.before.at(name).equal(cpu.before.at(name))) << name;  // the same start
    EXPECT_GE((p_cpu - before).abs().max().item<double>(), 0.5 * kLr) << name << ": the step did not move it";
    const at::Tensor diff = (p_gpu - p_cpu).abs();
    EXPECT_LE(diff.max().item<double>(), 2 * kLr * (1 + 1e-3)) << name;
    flipped += (diff > 0.1 * kLr).sum().item<int64_t>();
    weights += diff.numel();
    worst_param = std::max(worst_param, diff.max().item<double>());
  }
  const double flipped_share = static_cast<double>(flipped) / static_cast<double>(weights);
  EXPECT_LE(flipped_share, kMaxFlippedShare);
  std::printf(
      "%s vs cpu, one PPO step (bf16 autocast, checkpointing): loss %.6f vs %.6f, grad norm %.5f vs "
      "%.5f, worst per-tensor grad rel L2 %.3g (bound %.2g), weights stepping differently %lld of %lld "
      "(max diff %.3g, lr %.0e), clipfrac %.3f, dual-clip %.3f, bf16 log-prob shift from fp32 %.3g\n",
      dut_.name().c_str(), gpu.loss, cpu.loss, gpu.grad_norm, cpu.grad_norm, worst_grad, kGradRelTol,
      static_cast<long long>(flipped), static_cast<long long>(weights), worst_param, kLr, cpu.clipfrac,
      cpu.clipfrac_lower, gpu.bf16_shift);
}

}  // namespace
}  // namespace tinyzero
