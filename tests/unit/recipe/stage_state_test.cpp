// Tests of stage completion (recipe/stage_state.h) on hand-made outputs, and of the closing summary
// read from a hand-written metrics.jsonl (recipe/summary.h).
#include "tinyzero/recipe/stage_state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/recipe/plan.h"
#include "tinyzero/recipe/summary.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

using ::testing::HasSubstr;

class StageOutputs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("tz_stage_state_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static StageSpec stage(StageKind kind, int64_t steps = 0) {
    StageSpec s;
    s.name = "s";
    s.kind = kind;
    s.train.steps = steps;
    return s;
  }
  // A complete checkpoint of `step` (trainer_state.json is what marks one complete).
  void checkpoint(const std::string& run, int64_t step) {
    char name[32];
    std::snprintf(name, sizeof name, "step_%08lld", static_cast<long long>(step));
    const fs::path ckpt = fs::path(run) / "checkpoints" / name;
    fs::create_directories(ckpt);
    write_file_atomic((ckpt / "trainer_state.json").string(), "{\"step\": " + std::to_string(step) + "}\n");
  }
  std::string dir_;
};

TEST_F(StageOutputs, ACorpusIsDoneWhenItsFileIsThere) {
  const StageSpec s = stage(StageKind::kCorpus);
  EXPECT_EQ(default_stage_out(s, "runs/x"), "runs/x/s.jsonl");
  const std::string out = dir_ + "/c.jsonl";
  EXPECT_EQ(stage_progress(s, out).state, StageState::kNotStarted);
  write_file_atomic(out, "{}\n");
  const StageProgress p = stage_progress(s, out);
  EXPECT_EQ(p.state, StageState::kDone);
  EXPECT_EQ(p.product, out);
}

TEST_F(StageOutputs, ATinyModelIsDoneWithItsModelAndTokenizer) {
  const StageSpec s = stage(StageKind::kTinyModel);
  EXPECT_EQ(default_stage_out(s, "runs/x"), "runs/x/s");
  const std::string out = dir_ + "/tiny";
  fs::create_directories(out + "/model");
  write_file_atomic(out + "/model/config.json", "{}");
  EXPECT_EQ(stage_progress(s, out).state, StageState::kNotStarted);  // no tokenizer
  fs::create_directories(out + "/tokenizer");
  write_file_atomic(out + "/tokenizer/tokenizer.json", "{}");
  const StageProgress p = stage_progress(s, out);
  EXPECT_EQ(p.state, StageState::kDone);
  EXPECT_EQ(p.product, out + "/model");
}

TEST_F(StageOutputs, ATrainingRunIsDoneAtItsStepsAndResumesBefore) {
  const StageSpec s = stage(StageKind::kTrain, 2);
  const std::string run = dir_ + "/sft";
  EXPECT_EQ(stage_progress(s, run).state, StageState::kNotStarted);
  // A checkpoint being written (no trainer_state.json yet) does not count.
  fs::create_directories(run + "/checkpoints/step_00000002");
  EXPECT_EQ(stage_progress(s, run).state, StageState::kNotStarted);
  checkpoint(run, 1);
  StageProgress p = stage_progress(s, run);
  EXPECT_EQ(p.state, StageState::kPartial);
  EXPECT_EQ(p.checkpoint_step, 1);
  EXPECT_EQ(p.product, "");
  EXPECT_THAT(p.detail, HasSubstr("checkpoint at step 1 of 2"));
  checkpoint(run, 2);
  p = stage_progress(s, run);
  EXPECT_EQ(p.state, StageState::kDone);
  EXPECT_EQ(p.product, run + "/checkpoints/step_00000002");
  // A run that went past the stage's steps cannot give the checkpoint asked for.
  try {
    stage_progress(stage(StageKind::kTrain, 1), run);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("already holds a checkpoint at step 2, past the stage's steps 1"));
    EXPECT_THAT(e.what(), HasSubstr("--set s.steps=2"));
  }
}

TEST_F(StageOutputs, ReferencesResolveToTheProductsOfDoneStages) {
  const std::string yaml = "dir: " + dir_ + R"(
stages:
  corpus: {kind: countdown-sft, config: c.yaml}
  sft: {kind: train, config: s.yaml, steps: 2, overrides: {data.train_files: "${corpus}"}}
  grpo:
    kind: train
    config: g.yaml
    steps: 1
    overrides: {model.path: "${sft}", trainer.validation_data_dir: "${dir}/v"}
)";
  const Recipe r = parse_recipe_text(yaml, "r.yaml");
  // Not done yet: a stage stands for its output path (for checking configs before anything runs).
  RecipePlan plan = plan_recipe(r, false);
  EXPECT_EQ(resolve_references(plan, r, "${sft}", "t"), dir_ + "/sft");
  EXPECT_FALSE(references_ready(plan, r, "${sft}", "t"));
  EXPECT_TRUE(references_ready(plan, r, "${dir}/v", "t"));
  checkpoint(dir_ + "/sft", 2);
  write_file_atomic(dir_ + "/corpus.jsonl", "{}\n");
  plan = plan_recipe(r, false);
  EXPECT_EQ(plan.find("corpus")->progress.state, StageState::kDone);
  EXPECT_EQ(plan.find("sft")->progress.state, StageState::kDone);
  EXPECT_EQ(plan.find("grpo")->progress.state, StageState::kNotStarted);
  EXPECT_EQ(resolve_references(plan, r, "${sft}", "t"), dir_ + "/sft/checkpoints/step_00000002");
  EXPECT_TRUE(references_ready(plan, r, "${sft}", "t"));
  EXPECT_THAT(describe_plan(plan), HasSubstr("[done]       sft (train s.yaml, 2 steps)"));
  EXPECT_THAT(describe_plan(plan), HasSubstr("[run]        grpo"));
}

TEST_F(StageOutputs, TheSummaryReadsTheFirstAndLastValidation) {
  std::ofstream(dir_ + "/metrics.jsonl")
      << "{\"step\": 0, \"val/success_rate/countdown\": 0.002, \"val/test_score/countdown\": 0.1}\n"
      << "{\"step\": 1, \"critic/score/mean\": 0.2}\n"
      << "{\"step\": 10, \"val/success_rate/countdown\": 0.25}\n"
      << "{\"step\": 20, \"val/success_rate/countdown\": 0.5}\n"
      << "{\"step\": 21, \"val/success_r";  // half-written by a killed run
  TrainConfig config;
  config.data.val_size = 500;
  const RunSummary s = summarize_run(dir_, config);
  ASSERT_TRUE(s.first && s.last);
  EXPECT_EQ(s.first->step, 0);
  EXPECT_DOUBLE_EQ(s.first->success_rate, 0.002);
  EXPECT_EQ(s.last->step, 20);
  EXPECT_DOUBLE_EQ(s.last->success_rate, 0.5);
  const std::string text = format_run_summary(s);
  EXPECT_THAT(
      text,
      HasSubstr("held-out countdown success (500 problems never trained on, greedy, TinyZero's reward)"));
  EXPECT_THAT(text, HasSubstr("  base (before training), step 0:   0.2%\n"));
  EXPECT_THAT(text, HasSubstr("  trained,                step 20:  50.0%\n"));
  EXPECT_THAT(text, HasSubstr("learning curve: " + dir_ + "/plot.svg"));

  std::ofstream(dir_ + "/metrics.jsonl") << "{\"step\": 1, \"critic/score/mean\": 0.2}\n";
  EXPECT_THAT(format_run_summary(summarize_run(dir_, config)), HasSubstr("no held-out validation"));
  fs::remove(dir_ + "/metrics.jsonl");
  EXPECT_THROW(summarize_run(dir_, config), IoError);
}

}  // namespace
}  // namespace tinyzero
