// A run stops and says why instead of carrying on (issue #28): a second run on a locked run_dir is
// refused naming the holder; a resume with changed settings is refused unless allowed, and the earlier
// config is kept; SIGTERM / SIGINT stop after the current step with a checkpoint and exit 128 + signal,
// a second signal at once; staging directories an interrupted save left behind are removed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <regex>

#include "support/cli.h"
#include "support/tiny_run.h"
#include "tinyzero/core/files.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using tinyzero::testing::run_shell;
using tinyzero::testing::shell_quote;

namespace {

const std::string kSource = TZ_SOURCE_DIR;

class RunSafety : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    dir_ = tinyzero::testing::fresh_temp_dir("tz_run_safety");
    ASSERT_EQ(tinyzero::testing::make_tiny_model(dir_ + "/tiny"), "");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static std::string run_dir(const std::string& run) { return dir_ + "/" + run; }
  // The command line of a smoke-config run on the tiny model into `run` (no validation, no checkpoint
  // but the last), plus overrides.
  static std::string command(const std::string& run, const std::string& overrides) {
    return shell_quote(TZ_CLI_PATH) + " --config " + shell_quote(kSource + "/configs/smoke.yaml") +
           " model.path=" + shell_quote(dir_ + "/tiny/model") +
           " trainer.run_dir=" + shell_quote(run_dir(run)) +
           " trainer.threads=1 logging.tensorboard=false trainer.test_freq=0 trainer.save_freq=0 " +
           overrides;
  }
  static tinyzero::testing::CliResult train(const std::string& run, const std::string& overrides) {
    return run_shell(command(run, overrides));
  }
  // Starts a long run in the background, waits until it has logged step `after`, runs `then` (shell,
  // with $pid), waits for the run and prints "exit=<code>" (128 + signal when a signal ended it).
  static tinyzero::testing::CliResult background(const std::string& run, int after, const std::string& then,
                                                 const std::string& log, const std::string& overrides = "") {
    return run_shell(command(run, "trainer.total_steps=500 " + overrides) + " > " + shell_quote(log) +
                     " 2>&1 & pid=$!; " + "for i in $(seq 1200); do grep -q '] step " +
                     std::to_string(after) + " ' " + shell_quote(log) + " && break; sleep 0.1; done; " +
                     then + "; wait $pid; echo exit=$?");
  }
  static int exit_of(const tinyzero::testing::CliResult& r) {
    std::smatch m;
    return std::regex_search(r.output, m, std::regex("(^|\\n)exit=(\\d+)")) ? std::stoi(m[2]) : -1;
  }

  static inline std::string dir_;
};

TEST_F(RunSafety, ASecondRunOnALockedRunDirIsRefusedNamingTheHolder) {
  const std::string log = dir_ + "/locked.log";
  auto r = background("locked", 1,
                      "echo second; " + command("locked", "trainer.total_steps=2 actor.optim.lr=1e-3") +
                          "; echo second_exit=$?; kill -TERM $pid",
                      log);
  EXPECT_THAT(r.output, HasSubstr("second_exit=2")) << r.output;
  EXPECT_THAT(r.output, ::testing::ContainsRegex("run_dir '.*locked' is in use by PID [0-9]+ on "))
      << r.output;
  EXPECT_EQ(exit_of(r), 143) << tinyzero::read_file(log);
  // Nothing of the second run reached the first's files: one line per step, its own lr.
  const auto metrics = tinyzero::testing::read_metrics(run_dir("locked"));
  for (size_t i = 0; i < metrics.size(); ++i) EXPECT_EQ(metrics[i]["step"].get<int64_t>(), int64_t(i + 1));
  EXPECT_THAT(tinyzero::read_file(run_dir("locked") + "/config.yaml"), Not(HasSubstr("lr: 0.001")));
  // Once it has ended, the run_dir is free again.
  auto after = train("locked", "trainer.total_steps=" + std::to_string(metrics.size() + 1));
  EXPECT_EQ(after.exit_code, 0) << after.output;
}

TEST_F(RunSafety, SigtermStopsAfterTheStepWithACheckpointAndTheRunResumes) {
  const std::string log = dir_ + "/term.log";
  auto r = background("term", 2, "kill -TERM $pid", log);
  const std::string out = tinyzero::read_file(log);
  EXPECT_EQ(exit_of(r), 143) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("stopped by SIGTERM at step (\\d+) of 500"))) << out;
  const int step = std::stoi(m[1]);
  EXPECT_GE(step, 2);
  char name[32];
  std::snprintf(name, sizeof name, "step_%08d", step);
  EXPECT_TRUE(fs::exists(run_dir("term") + "/checkpoints/" + name + "/trainer_state.json")) << out;
  EXPECT_EQ(tinyzero::testing::read_metrics(run_dir("term")).size(), static_cast<size_t>(step));
  for (const auto& entry : fs::directory_iterator(run_dir("term") + "/checkpoints"))
    EXPECT_THAT(entry.path().filename().string(), Not(HasSubstr("staging")));
  // A stale staging directory (a save killed with -9) is removed by the next run, which resumes.
  fs::create_directories(run_dir("term") + "/checkpoints/.step_00000099.staging.12345");
  auto resumed = train("term", "trainer.total_steps=" + std::to_string(step + 1));
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resumed from"));
  EXPECT_FALSE(fs::exists(run_dir("term") + "/checkpoints/.step_00000099.staging.12345"));
}

TEST_F(RunSafety, SigintStopsTooAndASecondSignalStopsAtOnce) {
  auto r = background("int", 1, "kill -INT $pid", dir_ + "/int.log");
  EXPECT_EQ(exit_of(r), 130) << tinyzero::read_file(dir_ + "/int.log");
  EXPECT_THAT(tinyzero::read_file(dir_ + "/int.log"), HasSubstr("stopped by SIGINT at step"));
  // Two signals: the second ends the process by the signal itself, without finishing the step (steps of
  // several seconds here).
  auto twice =
      background("twice", 1, "kill -TERM $pid; sleep 0.3; kill -TERM $pid", dir_ + "/twice.log",
                 "data.train_batch_size=64 actor.ppo_mini_batch_size=64 data.max_response_length=64");
  EXPECT_EQ(exit_of(twice), 143) << tinyzero::read_file(dir_ + "/twice.log");
  EXPECT_THAT(tinyzero::read_file(dir_ + "/twice.log"), Not(HasSubstr("stopped by SIGTERM at step")));
}

TEST_F(RunSafety, AResumeWithChangedSettingsIsRefusedUnlessAllowed) {
  ASSERT_EQ(train("changed", "trainer.total_steps=1").exit_code, 0);
  const std::string config_before = tinyzero::read_file(run_dir("changed") + "/config.yaml");
  auto refused = train("changed", "trainer.total_steps=2 actor.optim.lr=3e-3 data.seed=7");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("actor.optim.lr ("));
  EXPECT_THAT(refused.output, HasSubstr("data.seed (0 -> 7)"));
  EXPECT_THAT(refused.output, HasSubstr("trainer.allow_config_change=true"));
  EXPECT_THAT(refused.output, Not(HasSubstr("trainer.total_steps (")));  // a safe change is not listed
  EXPECT_EQ(tinyzero::read_file(run_dir("changed") + "/config.yaml"), config_before);  // untouched
  EXPECT_FALSE(fs::exists(run_dir("changed") + "/checkpoints/step_00000002"));
  // Safe changes pass; with allow_config_change the others too, and the earlier config is kept.
  auto safe = train("changed", "trainer.total_steps=2 logging.sample_freq=1");
  EXPECT_EQ(safe.exit_code, 0) << safe.output;
  auto allowed =
      train("changed", "trainer.total_steps=3 actor.optim.lr=3e-3 trainer.allow_config_change=true");
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
  EXPECT_THAT(allowed.output, HasSubstr("resuming"));
  EXPECT_THAT(allowed.output, HasSubstr("actor.optim.lr ("));
  EXPECT_TRUE(fs::exists(run_dir("changed") + "/config_history/config.1.yaml"));
  EXPECT_THAT(tinyzero::read_file(run_dir("changed") + "/config.yaml"), HasSubstr("0.003"));
}

}  // namespace
