// End to end through the CLI on the tiny model built from nothing (scripts/make-tiny-model.sh):
// a short GRPO run writes metrics and a Hugging Face checkpoint, and an interrupted run resumed from
// its checkpoint ends with the same weights and metrics as an uninterrupted one (bitwise on CPU).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "support/cli.h"
#include "support/tiny_run.h"
#include "tinyzero/core/files.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using tinyzero::testing::run_cli;
using tinyzero::testing::shell_quote;

namespace {

const std::string kSource = TZ_SOURCE_DIR;

class TrainRun : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    dir_ = tinyzero::testing::fresh_temp_dir("tz_train_run");
    ASSERT_EQ(tinyzero::testing::make_tiny_model(dir_ + "/tiny"), "");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static const std::string& dir() { return dir_; }

  // Runs the smoke config with the tiny model into `run`, plus overrides.
  static tinyzero::testing::CliResult train(const std::string& run, const std::string& overrides) {
    return run_cli("--config " + shell_quote(kSource + "/configs/smoke.yaml") + " model.path=" +
                   shell_quote(dir_ + "/tiny/model") + " trainer.run_dir=" + shell_quote(dir_ + "/" + run) +
                   " trainer.threads=1 logging.tensorboard=false " + overrides);
  }

  static std::vector<nlohmann::json> metrics(const std::string& run) {
    return tinyzero::testing::read_metrics(dir_ + "/" + run);
  }

 protected:
  static inline std::string dir_;
};

TEST_F(TrainRun, GrpoStepsWriteMetricsAndAHuggingFaceCheckpoint) {
  auto r = train("grpo", "trainer.validation_data_dir=" + shell_quote(dir_ + "/grpo_val"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = metrics("grpo");
  // Validation before training (step 0), two steps, validation at the end (step 2).
  bool saw_step2 = false;
  for (const auto& j : lines) {
    if (j.contains("actor/pg_loss")) {
      EXPECT_TRUE(j.contains("critic/score/mean"));
      EXPECT_TRUE(j.contains("response_length/mean"));
      EXPECT_TRUE(j.contains("actor/kl_loss"));
      EXPECT_TRUE(j.contains("actor/grad_norm"));
      EXPECT_TRUE(j.contains("timing_s/gen"));
      // rollout.micro_batch_size 0 (the default): all 4 prompts x 4 samples fit in memory at once.
      EXPECT_EQ(j.value("perf/rollout_rows_at_once", 0.0), 16.0) << j.dump();
      saw_step2 = saw_step2 || j["step"] == 2;
    }
  }
  EXPECT_TRUE(saw_step2) << r.output;
  EXPECT_TRUE(lines.front().contains("val/test_score/countdown"));
  // trainer.validation_data_dir: each validation's generations, one line per held-out problem, whose
  // scores and successes are the ones the metrics report.
  for (const auto& j : lines) {
    if (!j.contains("val/success_rate/countdown")) continue;
    const int64_t step = j["step"];
    char name[64];
    std::snprintf(name, sizeof name, "/grpo_val/step_%08lld.jsonl", static_cast<long long>(step));
    std::ifstream in(dir_ + name);
    ASSERT_TRUE(in) << name;
    double score = 0, correct = 0;
    std::vector<int64_t> index;
    for (std::string line; std::getline(in, line);) {
      const auto g = nlohmann::json::parse(line);
      EXPECT_THAT(g["prompt"].get<std::string>(), HasSubstr("Using the numbers"));
      EXPECT_TRUE(g.contains("response"));
      score += g["score"].get<double>(), correct += g["correct"].get<bool>();
      index.push_back(g["index"]);
    }
    ASSERT_EQ(index.size(), 16u) << name;  // data.val_size of the smoke config
    for (size_t i = 0; i < index.size(); ++i) EXPECT_EQ(index[i], static_cast<int64_t>(i));
    EXPECT_NEAR(score / 16, j["val/test_score/countdown"].get<double>(), 1e-9) << name;
    EXPECT_NEAR(correct / 16, j["val/success_rate/countdown"].get<double>(), 1e-9) << name;
  }
  const fs::path ckpt = fs::path(dir_) / "grpo/checkpoints/step_00000002";
  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "trainer_state.json",
                        "optimizer-rank0-of-1.safetensors"})
    EXPECT_TRUE(fs::exists(ckpt / f)) << f;
  // The checkpoint is itself a model directory the CLI (and transformers) can load.
  auto gen = run_cli("generate --model " + shell_quote(ckpt.string()) +
                     " --prompt 'Using the numbers' --greedy --max-new-tokens 4");
  EXPECT_EQ(gen.exit_code, 0) << gen.output;
}

TEST_F(TrainRun, SmokeConfigRunsEveryAlgorithm) {
  // GRPO runs in the test above and SFT below; here Dr. GRPO, RLOO and PPO (KL in the reward), 2 steps each.
  const std::vector<std::pair<std::string, std::string>> algorithms = {
      {"drgrpo", "algorithm.norm_adv_by_std=false actor.loss_agg_mode=seq-mean-token-sum-norm"},
      {"rloo", "algorithm.name=rloo"},
      {"ppo",
       "algorithm.name=ppo rollout.n=1 data.train_batch_size=8 actor.ppo_mini_batch_size=8 "
       "algorithm.use_kl_in_reward=true actor.use_kl_loss=false"}};
  for (const auto& [name, overrides] : algorithms) {
    auto r = train("smoke_" + name, "trainer.test_freq=0 trainer.save_freq=0 " + overrides);
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.output;
    auto lines = metrics("smoke_" + name);
    ASSERT_EQ(lines.size(), 2u) << name;
    for (const auto& j : lines) {
      EXPECT_TRUE(j.contains("actor/pg_loss")) << name;
      EXPECT_TRUE(std::isfinite(j["actor/grad_norm"].get<double>())) << name;
    }
    if (name == "ppo") {
      EXPECT_TRUE(lines.back().contains("critic/vf_loss"));
      EXPECT_TRUE(lines.back().contains("critic/vf_explained_var"));
      EXPECT_TRUE(lines.back().contains("actor/reward_kl_penalty"));
    }
  }
}

// N steps straight versus N/2, stop, resume, N/2: identical weights, optimizer state and metrics.
// PPO also checks the critic and its optimizer.
void expect_exact_resume(const std::string& name, const std::string& overrides, bool critic) {
  const std::string common =
      " trainer.save_freq=2 trainer.test_freq=0 trainer.val_before_train=false " + overrides;
  const std::string straight = name + "_straight", resumed = name + "_resumed";
  auto full = TrainRun::train(straight, "trainer.total_steps=4" + common);
  ASSERT_EQ(full.exit_code, 0) << full.output;
  auto first =
      TrainRun::train(resumed, "trainer.total_steps=2" + common);  // "killed" after step 2's checkpoint
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto second = TrainRun::train(resumed, "trainer.total_steps=4" + common);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("resumed from"));
  std::vector<std::string> files = {"model.safetensors", "optimizer-rank0-of-1.safetensors"};
  if (critic)
    files.insert(files.end(), {"critic/model.safetensors", "critic_optimizer-rank0-of-1.safetensors"});
  for (const auto& f : files)
    EXPECT_TRUE(tinyzero::read_file(TrainRun::dir() + "/" + straight + "/checkpoints/step_00000004/" + f) ==
                tinyzero::read_file(TrainRun::dir() + "/" + resumed + "/checkpoints/step_00000004/" + f))
        << f << " differs after resume";
  auto ma = TrainRun::metrics(straight), mb = TrainRun::metrics(resumed);
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i) {
    for (auto& [key, value] : ma[i].items()) {
      // Wall-clock figures, and the process's allocations (a resumed process has a shorter history).
      if (key.rfind("timing_s/", 0) == 0 || key.rfind("perf/", 0) == 0 || key.rfind("memory/", 0) == 0)
        continue;
      EXPECT_EQ(value, mb[i][key]) << "step " << ma[i]["step"] << " " << key;
    }
  }
}

TEST_F(TrainRun, ResumeAfterInterruptionMatchesAnUninterruptedRun) { expect_exact_resume("grpo", "", false); }

TEST_F(TrainRun, PpoResumeRestoresTheCriticExactly) {
  expect_exact_resume(
      "ppo",
      "algorithm.name=ppo rollout.n=1 data.train_batch_size=8 actor.ppo_mini_batch_size=4 "
      "actor.ppo_micro_batch_size=4 critic.ppo_micro_batch_size=2 algorithm.use_kl_in_reward=true "
      "actor.use_kl_loss=false",
      true);
}

// Eight prompt/response pairs ("i + 2 + 3") for SFT, written to dir_/sft.jsonl; returns the path.
std::string write_sft_pairs() {
  const std::string data = TrainRun::dir() + "/sft.jsonl";
  std::ofstream out(data);
  for (int i = 1; i <= 8; ++i)
    out << nlohmann::json{{"prompt", "Using the numbers [" + std::to_string(i) +
                                         ", 2, 3], create an equation that "
                                         "equals " +
                                         std::to_string(i + 5) + ".\nAssistant: <think>"},
                          {"response", " " + std::to_string(i) + " + 2 + 3 </think> <answer>" +
                                           std::to_string(i) + " + 2 + 3</answer>"}}
               .dump()
        << "\n";
  return data;
}

const char* kSftOverrides =
    " trainer.total_steps=30 actor.optim.lr=3e-3 actor.use_kl_loss=false "
    "data.train_batch_size=8 actor.ppo_mini_batch_size=8 actor.ppo_micro_batch_size=4 "
    "trainer.test_freq=0 trainer.save_freq=0";

TEST_F(TrainRun, SftLearnsItsResponses) {
  // Eight prompt/response pairs; 30 SFT steps over them must cut the response loss well down.
  auto r =
      train("sft", "algorithm.name=sft data.train_files=" + shell_quote(write_sft_pairs()) + kSftOverrides);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto lines = metrics("sft");
  ASSERT_EQ(lines.size(), 30u);
  const double first = lines.front()["sft/loss"], last = lines.back()["sft/loss"];
  EXPECT_LT(last, first * 0.5) << "SFT loss " << first << " -> " << last;
}

TEST_F(TrainRun, RlMicroBatchesGiveTheWholeBatchGradient) {
  // The policy update sorts a mini-batch by response length and runs each micro-batch only as wide as
  // its longest response. From a model that ends its responses (30 SFT steps on the eight pairs), one
  // GRPO step with KL loss and entropy bonus must give the same loss and gradient norm whether
  // micro-batches hold 1, 4 or all 16 rows. The reference log-probs are computed over chunks sorted by
  // length and put back at their rows: at step 1 the policy is the reference, so the KL is zero only if
  // every row got its own.
  auto sft = train("sft_for_rl", "algorithm.name=sft data.train_files=" + shell_quote(write_sft_pairs()) +
                                     kSftOverrides + " trainer.save_freq=30");
  ASSERT_EQ(sft.exit_code, 0) << sft.output;
  const std::string model = dir_ + "/sft_for_rl/checkpoints/step_00000030";
  std::vector<nlohmann::json> step1;
  for (int micro : {1, 4, 16}) {
    const std::string run = "rl_micro" + std::to_string(micro);
    auto r =
        train(run, "model.path=" + shell_quote(model) +
                       " trainer.total_steps=1 trainer.test_freq=0 "
                       "trainer.save_freq=0 trainer.val_before_train=false data.max_response_length=48 " +
                       shell_quote("rollout.stop=[\"</answer>\"]") +
                       " "
                       "actor.ppo_micro_batch_size=" +
                       std::to_string(micro) + " rollout.log_prob_micro_batch_size=" + std::to_string(micro));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    auto lines = metrics(run);
    ASSERT_EQ(lines.size(), 1u);
    step1.push_back(lines[0]);
  }
  // The responses differ in length, so the shorter micro-batches are narrower than the batch.
  EXPECT_LT(step1[0]["response_length/min"].get<double>(), step1[0]["response_length/max"].get<double>());
  for (const char* key : {"actor/pg_loss", "actor/kl_loss", "actor/grad_norm"})
    for (size_t m = 1; m < step1.size(); ++m) {
      const double want = step1[0][key].get<double>(), got = step1[m][key].get<double>();
      EXPECT_NEAR(got, want, 1e-4 * std::abs(want) + 1e-7) << key << ", micro-batch case " << m;
    }
  for (const auto& m : step1) EXPECT_LT(std::abs(m["actor/kl_loss"].get<double>()), 1e-6);
}

TEST_F(TrainRun, ReusedSamplerLogProbsGiveTheSameUpdates) {
  // Two mini-batches per step make the update off-policy, so it needs the old policy's log-probs:
  // recomputed by a pass over the rollouts, or (rollout.reuse_log_probs) the sampler's own, drawn from
  // the same weights at the same temperature. Both must give the same losses and gradients.
  std::vector<std::vector<nlohmann::json>> runs;
  for (const std::string reuse : {"false", "true"}) {
    auto r = train("reuse_" + reuse,
                   "trainer.total_steps=2 trainer.test_freq=0 trainer.save_freq=0 "
                   "trainer.val_before_train=false actor.ppo_mini_batch_size=2 "
                   "rollout.temperature=0.8 rollout.reuse_log_probs=" +
                       reuse);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    runs.push_back(metrics("reuse_" + reuse));
    ASSERT_EQ(runs.back().size(), 2u);
  }
  for (size_t step = 0; step < 2; ++step) {
    for (const char* key : {"actor/pg_loss", "actor/kl_loss", "actor/grad_norm", "actor/entropy"}) {
      const double want = runs[0][step][key].get<double>(), got = runs[1][step][key].get<double>();
      EXPECT_NEAR(got, want, 1e-4 * std::abs(want) + 1e-7) << key << ", step " << step + 1;
    }
    EXPECT_LT(runs[1][step]["timing_s/old_log_prob"].get<double>(), 0.01);  // no pass
  }
  // Filtered sampling changes the distribution sampled from: refused, with the keys to change.
  auto bad = train("reuse_top_k", "rollout.reuse_log_probs=true rollout.top_k=5");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("rollout.reuse_log_probs"));
  EXPECT_THAT(bad.output, HasSubstr("rollout.top_k=0"));
}

TEST_F(TrainRun, SftMicroBatchesGiveTheWholeBatchLoss) {
  // Responses from 1 to 16 attempts long: SFT sorts a batch by length and pads each micro-batch to its
  // own longest row. One row per micro-batch (no padding at all), 4 per micro-batch and the whole batch
  // at once must give the same loss, at step 1 and, after the same update, at step 2.
  const std::string data = dir_ + "/sft_lengths.jsonl";
  {
    std::ofstream out(data);
    for (int i = 0; i < 16; ++i) {
      std::string response;
      for (int k = 0; k <= (i * 7) % 16; ++k)
        response += " " + std::to_string(k + i) + "+2=" + std::to_string(k + i + 2) + ",";
      out << nlohmann::json{{"prompt", "Using the numbers [" + std::to_string(i) +
                                           ", 2], create an equation that "
                                           "equals " +
                                           std::to_string(i + 2) + ".\nAssistant: <think>"},
                            {"response", response + " </think> <answer>" + std::to_string(i) + "+2</answer>"}}
                 .dump()
          << "\n";
    }
  }
  std::vector<std::vector<double>> losses;
  for (int micro : {1, 4, 8}) {
    const std::string run = "sft_micro" + std::to_string(micro);
    auto r = train(
        run, "algorithm.name=sft data.train_files=" + shell_quote(data) +
                 " trainer.total_steps=2 actor.optim.lr=3e-3 actor.use_kl_loss=false data.shuffle=false "
                 "data.train_batch_size=8 actor.ppo_mini_batch_size=8 actor.ppo_micro_batch_size=" +
                 std::to_string(micro) +
                 " data.max_response_length=256 trainer.test_freq=0 trainer.save_freq=0");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    losses.emplace_back();
    for (const auto& j : metrics(run)) losses.back().push_back(j["sft/loss"].get<double>());
    ASSERT_EQ(losses.back().size(), 2u);
  }
  EXPECT_NE(losses[0][0], losses[0][1]);  // the first update changed the model
  for (size_t m = 1; m < losses.size(); ++m)
    for (size_t step = 0; step < 2; ++step)
      EXPECT_NEAR(losses[m][step], losses[0][step], 1e-5 * losses[0][step])
          << "micro-batch case " << m << ", step " << step + 1;
}

TEST_F(TrainRun, DryRunEstimatesTheShippedModelShapes) {
  auto r = run_cli("--config " + shell_quote(kSource + "/configs/smoke.yaml") + " --dry-run --model-config " +
                   shell_quote(kSource + "/configs/models/qwen2.5-3b.json") + " --device-memory-gb 80");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("actor weights"));
  EXPECT_THAT(r.output, HasSubstr("fits"));
  auto missing = run_cli("--config " + shell_quote(kSource + "/configs/smoke.yaml") +
                         " model.path=/nonexistent --dry-run");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("--model-config"));
}

}  // namespace
