// The PPO critic: a transformer with a scalar head in Hugging Face's Qwen2ForTokenClassification
// layout; values read where the log-probs are; left padding changes nothing; save/load is exact.
#include "trainer/critic.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/io/checkpoint.h"
#include "tinyzero/model/weights.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

const std::string kModel = std::string(TZ_TEST_DATA_DIR) + "/qwen2-tiny/tied-f32";

TEST(Critic, ValuesAreTheHeadAppliedToTheFinalHiddenStates) {
  Critic critic(kModel, at::kFloat, at::Device(at::kCPU), 7);
  at::Tensor ids = torch::tensor({{3, 17, 42, 5, 9}}, torch::kLong), mask = torch::ones_like(ids);
  torch::NoGradGuard no_grad;
  at::Tensor v = critic.values(ids, mask);  // (1, 5)
  ASSERT_EQ(v.sizes(), (std::vector<int64_t>{1, 5}));
  // By hand: the base model's hidden states (the same trunk) times score.weight plus score.bias.
  CausalLM base = load_causal_lm(kModel);
  at::Tensor hidden = base->hidden_states(ids, mask, positions_from_mask(mask));  // (1, 5, H)
  at::Tensor w, b;
  for (auto& [name, p] : critic.named_parameters()) {
    if (name == "score.weight") w = p;
    if (name == "score.bias") b = p;
  }
  ASSERT_TRUE(w.defined() && b.defined());
  EXPECT_TRUE(torch::allclose(v, torch::matmul(hidden, w.t()).squeeze(-1) + b, 1e-5, 1e-6));
  // The head starts as transformers initialises it: small random weights, zero bias.
  EXPECT_EQ(b.item<float>(), 0.0f);
  EXPECT_GT(w.abs().sum().item<float>(), 0.0f);
}

TEST(Critic, LeftPaddingDoesNotChangeTheValues) {
  Critic critic(kModel, at::kFloat, at::Device(at::kCPU), 7);
  torch::NoGradGuard no_grad;
  at::Tensor ids = torch::tensor({{3, 17, 42}}, torch::kLong);
  at::Tensor padded = torch::tensor({{0, 0, 3, 17, 42}}, torch::kLong);
  at::Tensor pmask = torch::tensor({{0, 0, 1, 1, 1}}, torch::kLong);
  at::Tensor a = critic.values(ids, torch::ones_like(ids));
  at::Tensor b = critic.values(padded, pmask).narrow(1, 2, 3);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6)) << a << b;
}

TEST(Critic, SavesAHuggingFaceTokenClassificationDirectoryAndLoadsItBack) {
  const std::string dir = ::testing::TempDir() + "/tz_critic_" + std::to_string(::getpid());
  fs::remove_all(dir);
  Critic critic(kModel, at::kFloat, at::Device(at::kCPU), 7);
  critic.save(dir, at::kFloat);
  auto config = nlohmann::json::parse(read_file(dir + "/config.json"));
  EXPECT_EQ(config["architectures"][0], "Qwen2ForTokenClassification");
  EXPECT_EQ(config["num_labels"], 1);
  HfWeights weights = HfWeights::open(dir);
  EXPECT_TRUE(weights.contains("score.weight"));
  EXPECT_TRUE(weights.contains("score.bias"));
  EXPECT_TRUE(weights.contains("model.embed_tokens.weight"));
  EXPECT_FALSE(weights.contains("lm_head.weight"));

  Critic other(kModel, at::kFloat, at::Device(at::kCPU), 99);  // another head
  at::Tensor ids = torch::tensor({{3, 17, 42, 5}}, torch::kLong), mask = torch::ones_like(ids);
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(torch::equal(critic.values(ids, mask), other.values(ids, mask)));
  other.load(dir);
  EXPECT_TRUE(torch::equal(critic.values(ids, mask), other.values(ids, mask)));
  // A directory without the head is refused by name.
  EXPECT_THROW(
      {
        try {
          other.load(kModel);
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("score.weight"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tinyzero
