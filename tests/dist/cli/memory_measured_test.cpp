// The memory estimate of --dry-run against what the trainer really allocates: GRPO (and PPO, its critic's
// values pass and update included) steps of the small
// test model (24M parameters) on the CPU, whose metrics give each phase's peak of LibTorch's allocated
// bytes (memory/peak_gib/*, c10's allocation reports). On 1 rank, and on 2 Gloo ranks with ZeRO-0 and
// ZeRO-3, the estimate of the run's peak and of each phase (rollout, log-prob passes, actor update, and
// the checkpoint written after the last step) plus what stays resident is within 15% of the measured
// one. The prompt length is set to what the prompts use, as the estimate counts full-length
// sequences.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <regex>

#include "support/cli.h"
#include "support/tiny_run.h"
#include "tinyzero/core/config.h"
#include "tinyzero/model/model_config.h"
#include "tinyzero/trainer/memory_estimate.h"

namespace fs = std::filesystem;
using tinyzero::testing::shell_quote;

namespace {

const std::string kSource = TZ_SOURCE_DIR;

class MemoryMeasured : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = tinyzero::testing::fresh_temp_dir("tz_memory_measured");
    ASSERT_EQ(tinyzero::testing::make_tiny_model(dir_ + "/tiny"), "");
    auto init = tinyzero::testing::run_cli(
        "init --model-config " + shell_quote(kSource + "/configs/models/small.json") + " --out " +
        shell_quote(dir_ + "/small") + " --tokenizer " + shell_quote(dir_ + "/tiny/model") + " --seed 1");
    ASSERT_EQ(init.exit_code, 0) << init.output;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::vector<std::string> overrides(const std::string& run, int stage, bool ppo) {
    std::vector<std::string> out = {"model.path=" + dir_ + "/small",
                                    "trainer.run_dir=" + dir_ + "/" + run,
                                    "data.train_batch_size=8",
                                    "actor.ppo_mini_batch_size=8",
                                    "actor.ppo_micro_batch_size=8",
                                    "data.max_prompt_length=34",
                                    "trainer.total_steps=3",
                                    "trainer.test_freq=0",
                                    "trainer.save_freq=0",
                                    "trainer.val_before_train=false",
                                    "logging.tensorboard=false",
                                    "logging.sample_freq=0",
                                    "trainer.threads=1",
                                    "distributed.zero_stage=" + std::to_string(stage)};
    if (ppo) out.insert(out.end(), {"algorithm.name=ppo", "critic.ppo_micro_batch_size=8"});
    return out;
  }

  // Runs 3 steps on `ranks` ranks and compares the last step's phase peaks with the estimate.
  static void check(int ranks, int stage, bool ppo = false) {
    const std::string run = "r" + std::to_string(ranks) + "_z" + std::to_string(stage) + (ppo ? "_ppo" : "");
    std::string args = "--config " + shell_quote(kSource + "/configs/smoke.yaml");
    for (const auto& o : overrides(run, stage, ppo)) args += " " + shell_quote(o);
    auto r = ranks == 1 ? tinyzero::testing::run_cli(args) : tinyzero::testing::launch_local(ranks, args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto metrics = tinyzero::testing::read_metrics(dir_ + "/" + run);
    ASSERT_FALSE(metrics.empty());
    const auto& last = metrics.back();
    auto measured = [&](const std::string& phase) {
      const std::string key = "memory/peak_gib/" + phase;
      EXPECT_TRUE(last.contains(key)) << key << " missing from the metrics";
      return last.contains(key) ? last[key].get<double>() * (1 << 30) : 0.0;
    };

    const tinyzero::TrainConfig config =
        tinyzero::load_config(kSource + "/configs/smoke.yaml", overrides(run, stage, ppo)).config;
    const tinyzero::TransformerConfig model = tinyzero::load_transformer_config(dir_ + "/small");
    const tinyzero::MemoryEstimate e = tinyzero::estimate_memory(config, model, ranks);
    std::map<std::string, double> estimated;  // resident + each phase
    for (const auto& phase : e.phases) estimated[phase.name] = e.resident_bytes() + phase.bytes();

    std::map<std::string, double> pairs = {
        {"rollout", measured("gen")},
        {"log-prob passes", std::max(measured("old_log_prob"), measured("ref"))},
        {"actor update", measured("update_actor")},
    };
    if (ppo) {  // the critic's values pass is one of the log-prob passes; its update a phase of its own
      pairs["log-prob passes"] = std::max(pairs["log-prob passes"], measured("values"));
      pairs["critic update"] = measured("update_critic");
    }
    // The checkpoint after the last step (rank 0 writes the weights) logs its own peak.
    std::map<std::string, double> pairs_with_checkpoint = pairs;
    std::smatch found;
    const std::regex line("checkpoint phase: [0-9.]+ s, peak ([0-9.]+) MiB allocated");
    EXPECT_TRUE(std::regex_search(r.output, found, line)) << r.output;
    if (!found.empty()) pairs_with_checkpoint["checkpoint"] = std::stod(found[1].str()) * (1 << 20);
    double peak = 0;
    for (const auto& [phase, bytes] : pairs_with_checkpoint) {
      peak = std::max(peak, bytes);
      ASSERT_TRUE(estimated.count(phase)) << phase;
      const double ratio = estimated[phase] / bytes;
      std::cout << run << " " << phase << ": estimated " << estimated[phase] / (1 << 20) << " MiB, measured "
                << bytes / (1 << 20) << " MiB (x" << ratio << ")\n";
      EXPECT_NEAR(ratio, 1.0, 0.15) << run << " " << phase;
    }
    const double ratio = e.total_bytes() / peak;
    std::cout << run << " run peak: estimated " << e.total_bytes() / (1 << 20) << " MiB, measured "
              << peak / (1 << 20) << " MiB (x" << ratio << ")\n";
    EXPECT_NEAR(ratio, 1.0, 0.15) << run;
  }

  static inline std::string dir_;
};

TEST_F(MemoryMeasured, OneRankIsWithin15Percent) { check(1, 0); }
TEST_F(MemoryMeasured, TwoRanksZeroStage0IsWithin15Percent) { check(2, 0); }
TEST_F(MemoryMeasured, TwoRanksZeroStage3IsWithin15Percent) { check(2, 3); }
TEST_F(MemoryMeasured, PpoWithItsCriticOnTwoRanksZeroStage3IsWithin15Percent) { check(2, 3, true); }

}  // namespace
