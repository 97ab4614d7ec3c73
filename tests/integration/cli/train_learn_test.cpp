// Learning, end to end: GRPO and PPO each raise the reward of the tiny model on a toy version of
// Countdown within a few dozen CPU steps.
//
// The toy: the tiny model (scripts/make-tiny-model.sh, random weights) is first fine-tuned (SFT) on
// prompts whose responses give a well-formed answer in <answer></answer> tags only a quarter of the
// time (and otherwise stop after </think>), with random equations. The real TinyZero reward pays 0.1
// for a well-formed answer and 1.0 for a correct one, so the first thing RL can learn is the format:
// the format rate must climb from where the warmed-up model starts to most responses. The rise is
// judged against the noise of the two measured rates (see expect_clear_rise).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "support/cli.h"
#include "support/tiny_run.h"

namespace fs = std::filesystem;
using tinyzero::testing::read_metrics;
using tinyzero::testing::run_cli;
using tinyzero::testing::shell_quote;

namespace {

const char* kToyConfig = R"(# the toy of train_learn_test.cpp
data:
  train_size: 512
  val_size: 16
  train_batch_size: 8
  max_prompt_length: 64
  max_response_length: 40
  prompt_template: "Using the numbers {numbers}, create an equation that equals {target}.\nAssistant: <think>"
  countdown: {min_numbers: 3, max_numbers: 3, min_number: 1, max_number: 20, min_target: 1, max_target: 100}
rollout:
  n: 4
actor:
  ppo_mini_batch_size: 8
  ppo_micro_batch_size: 32
critic:
  ppo_micro_batch_size: 32
trainer:
  device: cpu
  threads: 1
  test_freq: 0
  save_freq: 0
logging:
  tensorboard: false
  plot: false
  sample_freq: 0
)";

class TrainLearn : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = tinyzero::testing::fresh_temp_dir("tz_train_learn");
    ASSERT_EQ(tinyzero::testing::make_tiny_model(dir_ + "/tiny"), "");
    std::ofstream(dir_ + "/toy.yaml") << kToyConfig;
    // The warm-up corpus: random equations over the given numbers; a quarter end in an answer.
    std::mt19937 rng(5);
    std::ofstream sft(dir_ + "/sft.jsonl");
    auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    for (int i = 0; i < 2000; ++i) {
      const int a = pick(1, 20), b = pick(1, 20), c = pick(1, 20), target = pick(1, 100);
      const char* ops = "+-*";
      const std::string expr = std::to_string(a) + " " + ops[pick(0, 2)] + " " + std::to_string(b) + " " +
                               ops[pick(0, 2)] + " " + std::to_string(c);
      const std::string prompt = "Using the numbers [" + std::to_string(a) + ", " + std::to_string(b) + ", " +
                                 std::to_string(c) + "], create an equation that equals " +
                                 std::to_string(target) + ".\\nAssistant: <think>";
      const std::string response =
          pick(0, 3) == 0 ? " " + expr + " </think> <answer>" + expr + "</answer>" : " " + expr + " </think>";
      sft << R"({"prompt": ")" << prompt << R"(", "response": ")" << response << "\"}\n";
    }
    sft.close();
    auto r = train("sft", "algorithm.name=sft data.train_files=" + shell_quote(dir_ + "/sft.jsonl") +
                              " data.train_batch_size=32 actor.ppo_mini_batch_size=32 actor.optim.lr=3e-3"
                              " trainer.total_steps=60 trainer.save_freq=60");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    base_ = dir_ + "/sft/checkpoints/step_00000060";
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static tinyzero::testing::CliResult train(const std::string& run, const std::string& overrides,
                                            const std::string& model = "") {
    return run_cli("--config " + shell_quote(dir_ + "/toy.yaml") +
                   " model.path=" + shell_quote(model.empty() ? dir_ + "/tiny/model" : model) +
                   " trainer.run_dir=" + shell_quote(dir_ + "/" + run) + " " + overrides);
  }

  // The rate of `key` over `steps` training lines at the start and at the end of a run must differ by
  // more than 3 standard errors of the difference of two proportions (pooled p, n responses each):
  // 3 * sqrt(2 p (1 - p) / n). A run that learns nothing passes this by chance about once in 700.
  static void expect_clear_rise(const std::vector<nlohmann::json>& lines, const char* key, int steps,
                                int rows_per_step) {
    std::vector<double> rates;
    for (const auto& j : lines)
      if (j.contains(key)) rates.push_back(j[key].get<double>());
    ASSERT_GE(rates.size(), static_cast<size_t>(2 * steps));
    double early = 0, late = 0;
    for (int i = 0; i < steps; ++i) early += rates[i], late += rates[rates.size() - 1 - i];
    early /= steps;
    late /= steps;
    const double n = static_cast<double>(steps) * rows_per_step, p = (early + late) / 2;
    const double margin = 3 * std::sqrt(2 * p * (1 - p) / n);
    std::string curve;
    for (double r : rates) curve += std::to_string(r).substr(0, 5) + " ";
    EXPECT_GT(late - early, margin) << key << " per step: " << curve;
    EXPECT_GE(late, 0.5) << key << " per step: " << curve;
  }

  static inline std::string dir_, base_;
};

TEST_F(TrainLearn, GrpoLearnsTheAnswerFormat) {
  // 8 prompts x 4 responses per step; KL loss to the reference on, as in the GRPO recipes. lr 5e-4:
  // at 1e-3 the format rate collapsed after step 8 on a 2-core AVX2 EPYC (fp32 OpenBLAS ZEN kernels).
  auto r = train(
      "grpo", "algorithm.name=grpo actor.optim.lr=5e-4 actor.use_kl_loss=true trainer.total_steps=20", base_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  expect_clear_rise(read_metrics(dir_ + "/grpo"), "reward/format_rate", 3, 32);
}

TEST_F(TrainLearn, PpoWithCriticLearnsTheAnswerFormat) {
  // TinyZero's shape: one response per prompt, 32 prompts per step, GAE on a learned critic. lr 2e-4:
  // at 5e-4 the format rate collapsed with trainer.seed 1 and 3 (it learned with 2 and 4); at 2e-4 it
  // learned with 1 and 3 as well.
  auto r = train("ppo",
                 "algorithm.name=ppo rollout.n=1 data.train_batch_size=32 actor.ppo_mini_batch_size=32 "
                 "actor.optim.lr=2e-4 critic.optim.lr=1e-3 trainer.total_steps=30",
                 base_);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = read_metrics(dir_ + "/ppo");
  expect_clear_rise(lines, "reward/format_rate", 3, 32);
  // The critic learns too: its loss at the end is below its loss at the start.
  ASSERT_TRUE(lines.front().contains("critic/vf_loss"));
  EXPECT_LT(lines.back()["critic/vf_loss"].get<double>(), lines.front()["critic/vf_loss"].get<double>());
}

}  // namespace
