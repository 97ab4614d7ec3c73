// The recipe runner end to end through the CLI (`tinyzero-train recipe`), at tiny step counts: a
// warm-up corpus, 2 SFT steps from the stored warm model and 2 GRPO steps from the SFT checkpoint
// (--from-scratch) or from the stored model (by default). A finished recipe run again runs nothing; a
// training stage whose last checkpoint is gone resumes from the one before; a mistake in the last
// stage's overrides is refused before the first stage runs. Then trace-stats over what the GRPO
// validation wrote.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/cli.h"
#include "support/tiny_run.h"
#include "tinyzero/core/config.h"
#include "tinyzero/core/files.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using tinyzero::testing::run_cli;
using tinyzero::testing::shell_quote;

namespace {

const std::string kSource = TZ_SOURCE_DIR;
const std::string kWarm = std::string(TZ_TEST_DATA_DIR) + "/tiny-demo-warm";

class RecipeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tinyzero::testing::fresh_temp_dir("tz_recipe_cli");
    recipe_ = dir_ + "/recipe.yaml";
    std::ofstream(recipe_) << "dir: " << dir_ << "/run\n"
                           << "warm_model:\n  stored: " << kWarm << "\n  from_scratch: ${sft}\n"
                           << R"(overrides:
  data.val_size: 8
  data.val_batch_size: 8
  trainer.threads: 1
  logging.progress: false
  logging.tensorboard: false
stages:
  corpus:
    kind: countdown-sft
    config: )" << kSource << R"(/configs/tiny/grpo.yaml
    problems: 16
    order: fixed
    attempts: 8
    min_attempts: 1
    stop_prob: 0.2
    answer: last
    compare: true
  sft:
    kind: train
    config: )" << kSource << R"(/configs/tiny/sft.yaml
    steps: 2
    overrides:
      model.path: )" << kWarm
                           << R"(
      data.train_files: ${corpus}
      data.train_batch_size: 8
      actor.ppo_mini_batch_size: 8
      trainer.test_freq: 0
      trainer.save_freq: 1
      trainer.keep_last: 0
  grpo:
    kind: train
    config: )" << kSource << R"(/configs/tiny/grpo.yaml
    steps: 2
    overrides:
      model.path: ${warm_model}
      data.train_batch_size: 2
      data.max_response_length: 32
      rollout.n: 2
      actor.ppo_mini_batch_size: 2
      actor.ppo_micro_batch_size: 4
      trainer.test_freq: 2
      trainer.save_freq: 1
      trainer.keep_last: 0
      trainer.validation_data_dir: ${dir}/val
)";
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  tinyzero::testing::CliResult recipe(const std::string& args) {
    return run_cli("recipe " + shell_quote(recipe_) + " " + args);
  }
  std::string dir_, recipe_;
};

TEST_F(RecipeCli, RunsSkipsWhatIsDoneAndResumesWhatWasInterrupted) {
  const std::string run = dir_ + "/run";
  // The plan alone writes nothing.
  auto r = recipe("--from-scratch --plan");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[run]        corpus"));
  EXPECT_THAT(r.output, HasSubstr("[run]        sft (train"));
  EXPECT_FALSE(fs::exists(run));

  // Everything, from scratch.
  r = recipe("--from-scratch");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("== [1/3] corpus (countdown-sft): running"));
  EXPECT_THAT(r.output, HasSubstr("== [3/3] grpo (train): running"));
  EXPECT_THAT(r.output, HasSubstr("held-out countdown success (8 problems never trained on, greedy"));
  EXPECT_THAT(r.output, HasSubstr("base (before training), step 0:"));
  EXPECT_THAT(r.output, HasSubstr("trained,                step 2:"));
  EXPECT_THAT(r.output, HasSubstr("learning curve: " + run + "/grpo/plot.svg"));
  EXPECT_THAT(r.output, HasSubstr("stages run: 3, already done: 0"));
  EXPECT_EQ(tinyzero::testing::read_jsonl(run + "/corpus.jsonl").size(), 16u);
  EXPECT_TRUE(fs::exists(run + "/sft/checkpoints/step_00000002/trainer_state.json"));
  EXPECT_TRUE(fs::exists(run + "/grpo/checkpoints/step_00000002/trainer_state.json"));
  // GRPO started from the SFT checkpoint.
  EXPECT_EQ(tinyzero::load_config(run + "/grpo/config.yaml").config.model.path,
            run + "/sft/checkpoints/step_00000002");

  // Again: nothing to do, the same summary.
  const std::string metrics = tinyzero::read_file(run + "/grpo/metrics.jsonl");
  r = recipe("--from-scratch");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("== [1/3] corpus (countdown-sft): done, skipped"));
  EXPECT_THAT(r.output, HasSubstr("== [3/3] grpo (train): done, skipped"));
  EXPECT_THAT(r.output, HasSubstr("stages run: 0, already done: 3"));
  EXPECT_THAT(r.output, HasSubstr("trained,                step 2:"));
  EXPECT_EQ(tinyzero::read_file(run + "/grpo/metrics.jsonl"), metrics);

  // GRPO interrupted after step 1 (its last checkpoint gone): it alone resumes, from step 1.
  fs::remove_all(run + "/grpo/checkpoints/step_00000002");
  r = recipe("--from-scratch");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[resume]     grpo (train"));
  EXPECT_THAT(r.output, HasSubstr("resuming from the checkpoint at step 1 of 2"));
  EXPECT_THAT(r.output, HasSubstr("resumed from " + run + "/grpo/checkpoints/step_00000001 (step 1)"));
  EXPECT_THAT(r.output, HasSubstr("stages run: 1, already done: 2"));
  EXPECT_TRUE(fs::exists(run + "/grpo/checkpoints/step_00000002/trainer_state.json"));

  // SFT interrupted the same way: it resumes; GRPO, already done, is not run again.
  fs::remove_all(run + "/sft/checkpoints/step_00000002");
  r = recipe("--from-scratch");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("resumed from " + run + "/sft/checkpoints/step_00000001 (step 1)"));
  EXPECT_THAT(r.output, HasSubstr("== [3/3] grpo (train): done, skipped"));
  EXPECT_THAT(r.output, HasSubstr("stages run: 1, already done: 2"));

  // By default GRPO starts from the stored model: the warm-up stages are not needed.
  // (A key=value after --set is the last stage's override, not a second --set.)
  r = recipe("--dir " + shell_quote(dir_ + "/stored") + " --set grpo.steps=1 trainer.seed=7");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("[not needed] corpus"));
  EXPECT_THAT(r.output, HasSubstr("[not needed] sft"));
  EXPECT_THAT(r.output, HasSubstr("stages run: 1, already done: 0"));
  const auto stored = tinyzero::load_config(dir_ + "/stored/grpo/config.yaml").config;
  EXPECT_EQ(stored.model.path, kWarm);
  EXPECT_EQ(stored.trainer.seed, 7);
  EXPECT_EQ(stored.trainer.total_steps, 1);
  EXPECT_FALSE(fs::exists(dir_ + "/stored/corpus.jsonl"));

  // trace-stats over the validation the GRPO stage wrote (8 held-out problems).
  r = run_cli("trace-stats --generations " + shell_quote(dir_ + "/run/val/step_00000002.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("8 problems, "));
  EXPECT_THAT(r.output, HasSubstr("outcomes: "));
}

TEST_F(RecipeCli, AMistakeInTheLastStageIsRefusedBeforeAnyStageRuns) {
  auto r = recipe("--from-scratch actor.optim.lrr=1e-4");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("stage grpo ("));
  EXPECT_THAT(r.output, HasSubstr("unknown config key 'actor.optim.lrr'"));
  EXPECT_THAT(r.output, HasSubstr("did you mean 'actor.optim.lr'?"));
  EXPECT_FALSE(fs::exists(dir_ + "/run/corpus.jsonl"));
  EXPECT_THAT(r.output, Not(HasSubstr("running")));

  r = recipe("--set sft.stepz=1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output,
              HasSubstr("--set 'sft.stepz=1': stage sft has no field 'stepz'; did you mean 'steps'?"));
  r = recipe("--until sft trainer.seed=3");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--set sft.overrides.KEY=VALUE"));
  // The stored model missing: found before anything runs too (nothing else is needed by default).
  r = recipe("--set warm_model.stored=" + shell_quote(dir_ + "/no-model"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr(dir_ + "/no-model"));
  EXPECT_FALSE(fs::exists(dir_ + "/run/grpo"));
}

TEST_F(RecipeCli, TraceStatsNamesTheLineItCannotRead) {
  const std::string demo_line =
      "{\"prompt\": \"Numbers [3, 7, 5], target 26.\\nAssistant: <think>\", \"response\": "
      "\" 3+7=10: 10+5=15<26; 3*7=21: 21+5=26=26 </think> <answer>(3*7)+5</answer>\"}\n";
  tinyzero::write_file_atomic(dir_ + "/g.jsonl",
                              demo_line + "{\"prompt\": \"Make 26 from 3, 7, 5\", \"response\": \"\"}\n");
  auto r = run_cli("trace-stats --generations " + shell_quote(dir_ + "/g.jsonl"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr(dir_ + "/g.jsonl:2: the prompt is not the demo's"));
  tinyzero::write_file_atomic(dir_ + "/g.jsonl", demo_line);
  r = run_cli("trace-stats --generations " + shell_quote(dir_ + "/g.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1 problems, 2.0 attempts each"));
  EXPECT_THAT(r.output, HasSubstr("outcomes: right 100.0%"));
  r = run_cli("trace-stats");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(
      r.output,
      HasSubstr("trace-stats needs PROBLEMS.jsonl MODEL_DIR, --generations FILE or --first-hit FILE"));
}

}  // namespace
