// Tests of the config system: parsing, every error path, overrides, validation and the
// --print-config round trip.
#include "tinyzero/core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tinyzero/core/config_diff.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/core/run_dir.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace tinyzero {
namespace {

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("tz_config_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = (path_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  std::string path(const std::string& name = "") const { return (path_ / name).string(); }

 private:
  fs::path path_;
  static inline int counter_ = 0;
};

// The message of the ConfigError thrown by `f`, or a failure when none is thrown.
template <class F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a ConfigError";
  return "";
}

TEST(Config, DefaultsAreValid) {
  TrainConfig c;
  EXPECT_NO_THROW(validate_config(c));
  EXPECT_EQ(c.actor.optim.lr, 1e-6);
  EXPECT_EQ(c.critic.optim.lr, 1e-6);  // OptimConfig default; configs set the critic's own
  EXPECT_EQ(c.data.train_batch_size, 256);
  EXPECT_EQ(c.actor.loss_agg_mode, "token-mean");
  EXPECT_TRUE(c.rollout.stop.empty());
}

TEST(Config, SectionsStandAloneHaveDefaults) {
  OptimConfig o;
  EXPECT_EQ(o.beta2, 0.999);
  CountdownDataConfig cd;
  EXPECT_EQ(cd.max_numbers, 4);
}

TEST(Config, LoadsFileAndRecordsOrigins) {
  TempDir dir;
  auto path = dir.write("a.yaml",
                        "trainer:\n  total_steps: 7\n  device: cpu\n"
                        "actor:\n  optim:\n    lr: 3.0e-6\n    schedule: cosine\n"
                        "rollout:\n  n: 8\n  stop: [\"</answer>\", \"\\n\\n\"]\n");
  LoadedConfig loaded = load_config(path);
  EXPECT_EQ(loaded.config.trainer.total_steps, 7);
  EXPECT_EQ(loaded.config.trainer.device, "cpu");
  EXPECT_DOUBLE_EQ(loaded.config.actor.optim.lr, 3e-6);
  EXPECT_EQ(loaded.config.actor.optim.schedule, "cosine");
  EXPECT_EQ(loaded.config.rollout.n, 8);
  ASSERT_EQ(loaded.config.rollout.stop.size(), 2u);
  EXPECT_EQ(loaded.config.rollout.stop[1], "\n\n");
  EXPECT_EQ(loaded.origins.at("actor.optim.lr"), path + ":6");
  EXPECT_EQ(loaded.origins.count("actor.optim.eps"), 0u);
}

TEST(Config, EmptyFileGivesDefaults) {
  TempDir dir;
  LoadedConfig loaded = load_config(dir.write("empty.yaml", "# nothing\n"));
  EXPECT_EQ(dump_config(loaded.config), dump_config(TrainConfig{}));
}

TEST(Config, ExtendsAppliesBaseFirstThenOwnKeys) {
  TempDir dir;
  dir.write("base.yaml", "trainer:\n  total_steps: 10\n  seed: 5\n");
  auto child = dir.write("child.yaml", "extends: base.yaml\ntrainer:\n  total_steps: 20\n");
  LoadedConfig loaded = load_config(child);
  EXPECT_EQ(loaded.config.trainer.total_steps, 20);
  EXPECT_EQ(loaded.config.trainer.seed, 5);
}

TEST(Config, ExtendsCycleIsAnError) {
  TempDir dir;
  dir.write("a.yaml", "extends: b.yaml\n");
  auto b = dir.write("b.yaml", "extends: a.yaml\n");
  EXPECT_THAT(config_error([&] { load_config(b); }), HasSubstr("cycle"));
}

TEST(Config, UnknownKeySuggestsTheClosestKey) {
  TempDir dir;
  auto path = dir.write("typo.yaml", "actor:\n  optim:\n    lrr: 1.0e-6\n");
  std::string msg = config_error([&] { load_config(path); });
  EXPECT_THAT(msg, HasSubstr("'actor.optim.lrr'"));
  EXPECT_THAT(msg, HasSubstr(path + ":3"));
  EXPECT_THAT(msg, HasSubstr("did you mean 'actor.optim.lr'"));
}

TEST(Config, KeyInTheWrongSectionSuggestsWhereItLives) {
  TempDir dir;
  auto path = dir.write("wrong.yaml", "trainer:\n  ppo_epochs: 2\n");
  EXPECT_THAT(config_error([&] { load_config(path); }), HasSubstr("did you mean 'actor.ppo_epochs'"));
}

TEST(Config, UnknownSectionIsAnError) {
  TempDir dir;
  auto path = dir.write("sec.yaml", "trainr:\n  total_steps: 2\n");
  EXPECT_THAT(config_error([&] { load_config(path); }), HasSubstr("did you mean 'trainer'"));
}

TEST(Config, WrongTypesNameKeyTypeAndLine) {
  TempDir dir;
  auto p1 = dir.write("t1.yaml", "data:\n  train_batch_size: lots\n");
  std::string m1 = config_error([&] { load_config(p1); });
  EXPECT_THAT(m1, HasSubstr("'data.train_batch_size' must be int"));
  EXPECT_THAT(m1, HasSubstr("'lots'"));
  EXPECT_THAT(m1, HasSubstr(p1 + ":2"));

  auto p2 = dir.write("t2.yaml", "data:\n  shuffle: maybe\n");
  EXPECT_THAT(config_error([&] { load_config(p2); }), HasSubstr("must be bool"));

  auto p3 = dir.write("t3.yaml", "data:\n  train_batch_size: 64.5\n");
  EXPECT_THAT(config_error([&] { load_config(p3); }), HasSubstr("must be int"));

  auto p4 = dir.write("t4.yaml", "actor:\n  optim:\n    lr: [1, 2]\n");
  EXPECT_THAT(config_error([&] { load_config(p4); }), HasSubstr("must be float, got a list"));

  auto p5 = dir.write("t5.yaml", "trainer: 3\n");
  EXPECT_THAT(config_error([&] { load_config(p5); }), HasSubstr("'trainer' is a section"));

  auto p6 = dir.write("t6.yaml", "rollout:\n  stop: {a: 1}\n");
  EXPECT_THAT(config_error([&] { load_config(p6); }), HasSubstr("must be list of string"));
}

TEST(Config, IntegersAcceptExactScientificNotation) {
  auto loaded = load_config_text("data:\n  train_size: 1e4\n", "inline");
  EXPECT_EQ(loaded.config.data.train_size, 10000);
}

TEST(Config, DuplicateKeyIsAnError) {
  EXPECT_THAT(config_error([] { load_config_text("trainer:\n  seed: 1\n  seed: 2\n", "dup.yaml"); }),
              HasSubstr("appears twice"));
}

TEST(Config, YamlSyntaxErrorNamesTheLine) {
  std::string msg = config_error([] { load_config_text("trainer:\n  seed: [1, 2\n", "bad.yaml"); });
  EXPECT_THAT(msg, HasSubstr("bad.yaml:"));
  EXPECT_THAT(msg, HasSubstr("YAML syntax error"));
}

TEST(Config, TopLevelMustBeAMapping) {
  EXPECT_THAT(config_error([] { load_config_text("- a\n- b\n", "list.yaml"); }), HasSubstr("mapping"));
}

TEST(Config, MissingFileIsAConfigError) {
  EXPECT_THAT(config_error([] { load_config("/nonexistent/x.yaml"); }), HasSubstr("does not exist"));
}

TEST(Config, RangeAndChoiceChecks) {
  EXPECT_THAT(config_error([] { load_config_text("actor:\n  optim:\n    lr: -1\n", "r.yaml"); }),
              HasSubstr("'actor.optim.lr' must be > 0, got -1.0 (r.yaml:3)"));
  EXPECT_THAT(config_error([] { load_config_text("actor:\n  loss_agg_mode: token-sum\n", "c.yaml"); }),
              HasSubstr("must be one of: token-mean, seq-mean-token-sum"));
  EXPECT_THAT(config_error([] { load_config_text("rollout:\n  top_p: 0\n", "p.yaml"); }),
              HasSubstr("'rollout.top_p' must be in (0, 1]"));
  EXPECT_THAT(config_error([] { load_config_text("actor:\n  optim:\n    beta2: 1\n", "b.yaml"); }),
              HasSubstr("in [0, 1)"));
  EXPECT_THAT(config_error([] { load_config_text("actor:\n  clip_ratio_c: 1\n", "d.yaml"); }),
              HasSubstr("> 1"));
  EXPECT_THAT(config_error([] { load_config_text("actor:\n  optim:\n    lr: .nan\n", "n.yaml"); }),
              HasSubstr("'actor.optim.lr' must be > 0"));
  // A string field with choices that also accepts other text (a checkpoint path).
  EXPECT_NO_THROW(load_config_text("trainer:\n  resume: runs/x/checkpoint-10\n", "ok.yaml"));
}

TEST(Config, BatchSizesMustDivide) {
  std::string msg = config_error([] {
    load_config_text("data:\n  train_batch_size: 100\nactor:\n  ppo_mini_batch_size: 64\n", "b.yaml");
  });
  EXPECT_THAT(msg, HasSubstr("data.train_batch_size = 100 (b.yaml:2)"));
  EXPECT_THAT(msg, HasSubstr("actor.ppo_mini_batch_size = 64 (b.yaml:4)"));
  EXPECT_THAT(msg, HasSubstr("e.g. 50"));

  std::string micro = config_error([] {
    load_config_text("rollout:\n  n: 5\nactor:\n  ppo_mini_batch_size: 4\n  ppo_micro_batch_size: 8\n",
                     "m.yaml");
  });
  EXPECT_THAT(micro, HasSubstr("divisor of 20"));
  // Dynamic batch size forms micro-batches by tokens: no divisibility needed.
  EXPECT_NO_THROW(
      load_config_text("rollout:\n  n: 5\nactor:\n  ppo_mini_batch_size: 4\n  ppo_micro_batch_size: 8\n  "
                       "use_dynamic_bsz: true\n",
                       "m.yaml"));
}

TEST(Config, CriticMicroBatchCheckedOnlyForPpo) {
  const char* text =
      "algorithm:\n  name: ppo\nactor:\n  ppo_mini_batch_size: 4\n  ppo_micro_batch_size: 4\n"
      "critic:\n  ppo_micro_batch_size: 3\ndata:\n  train_batch_size: 8\n";
  EXPECT_THAT(config_error([&] { load_config_text(text, "c.yaml"); }),
              HasSubstr("critic.ppo_micro_batch_size"));
  EXPECT_NO_THROW(load_config_text(std::string(text) + "rollout:\n  n: 2\n", "c.yaml",
                                   {"algorithm.name=grpo", "critic.ppo_micro_batch_size=8"}));
}

TEST(Config, CrossFieldRules) {
  EXPECT_THAT(
      config_error([] { load_config_text("algorithm:\n  name: grpo\nrollout:\n  n: 1\n", "g.yaml"); }),
      HasSubstr("set rollout.n >= 2"));
  EXPECT_THAT(config_error([] { load_config_text("rollout:\n  n: 4\n  temperature: 0\n", "t.yaml"); }),
              HasSubstr("rollout.temperature > 0"));
  EXPECT_THAT(config_error([] { load_config_text("algorithm:\n  name: sft\n", "s.yaml"); }),
              HasSubstr("data.train_files"));
  EXPECT_THAT(config_error([] {
                load_config_text(
                    "rollout:\n  n: 2\nalgorithm:\n  use_kl_in_reward: true\nactor:\n  use_kl_loss: true\n",
                    "k.yaml");
              }),
              HasSubstr("counted twice"));
  EXPECT_THAT(config_error([] {
                load_config_text("data:\n  countdown:\n    min_number: 50\n    max_number: 10\n", "r.yaml");
              }),
              HasSubstr("min_number exceeds max_number"));
  EXPECT_THAT(config_error([] {
                load_config_text("rollout:\n  n: 2\ndistributed:\n  backend: nccl\ntrainer:\n  device: cpu\n",
                                 "d.yaml");
              }),
              HasSubstr("NCCL"));
  EXPECT_THAT(config_error([] {
                load_config_text(
                    "rollout:\n  n: 2\nalgorithm:\n  overlong_buffer:\n    enable: true\n    len: 64\n"
                    "data:\n  max_response_length: 64\n",
                    "o.yaml");
              }),
              HasSubstr("overlong buffer"));
}

TEST(Config, NeedsReferenceAndCritic) {
  TrainConfig c;
  EXPECT_FALSE(c.needs_reference());
  c.actor.use_kl_loss = true;
  EXPECT_TRUE(c.needs_reference());
  c.actor.kl_loss_coef = 0;  // coefficient 0 = off: no reference model is loaded
  EXPECT_FALSE(c.needs_reference());
  EXPECT_FALSE(c.needs_critic());
  c.algorithm.name = "ppo";
  EXPECT_TRUE(c.needs_critic());
}

TEST(Config, OverridesApplyAfterTheFile) {
  TempDir dir;
  auto path = dir.write("o.yaml", "rollout:\n  n: 4\nactor:\n  optim:\n    lr: 1.0e-6\n");
  LoadedConfig loaded =
      load_config(path, {"actor.optim.lr=2e-5", "rollout.stop=[\"</answer>\"]",
                         "data.prompt_template=", "trainer.run_dir=runs/a b", "logging.jsonl=off"});
  EXPECT_DOUBLE_EQ(loaded.config.actor.optim.lr, 2e-5);
  ASSERT_EQ(loaded.config.rollout.stop, std::vector<std::string>{"</answer>"});
  EXPECT_EQ(loaded.config.data.prompt_template, "");
  EXPECT_EQ(loaded.config.trainer.run_dir, "runs/a b");
  EXPECT_FALSE(loaded.config.logging.jsonl);
  EXPECT_EQ(loaded.origins.at("actor.optim.lr"), "command-line override 'actor.optim.lr=2e-5'");
}

TEST(Config, OverrideErrors) {
  TrainConfig c;
  ConfigOrigins o;
  EXPECT_THAT(config_error([&] { apply_override(c, o, "actor.optim.lrr=1"); }),
              HasSubstr("did you mean 'actor.optim.lr'"));
  EXPECT_THAT(config_error([&] { apply_override(c, o, "actor.optim"); }), HasSubstr("key.path=value"));
  EXPECT_THAT(config_error([&] { apply_override(c, o, "=3"); }), HasSubstr("key.path=value"));
  EXPECT_THAT(config_error([&] { apply_override(c, o, "actor.optim=3"); }), HasSubstr("names the section"));
  EXPECT_THAT(config_error([&] { apply_override(c, o, "data.train_batch_size=x"); }),
              HasSubstr("'data.train_batch_size' must be int, got 'x' (command-line override"));
  // Validation after overrides names the override as the origin.
  EXPECT_THAT(config_error([] { load_config_text("", "x.yaml", {"data.train_batch_size=100"}); }),
              HasSubstr("command-line override 'data.train_batch_size=100'"));
}

TEST(Config, PrintConfigRoundTrips) {
  TrainConfig c;
  c.actor.optim.lr = 0.1 + 0.2;  // needs all 17 digits
  c.critic.optim.lr = 1e-5;
  c.rollout.n = 16;
  c.rollout.stop = {"</answer>", "quote \" and colon: # hash", "\n"};
  c.data.prompt_template = "Use {numbers} to make {target}: 'single' \"double\"\tend";
  c.trainer.run_dir = "runs/with space";
  c.distributed.timeout_s = 600;
  c.model.autocast_bf16 = "auto";
  validate_config(c);
  const std::string yaml = dump_config(c);
  LoadedConfig back = load_config_text(yaml, "dumped.yaml");
  EXPECT_EQ(dump_config(back.config), yaml);
  EXPECT_EQ(back.config.actor.optim.lr, 0.1 + 0.2);
  EXPECT_EQ(back.config.rollout.stop, c.rollout.stop);
  EXPECT_EQ(back.config.data.prompt_template, c.data.prompt_template);
  // Without comments too.
  EXPECT_EQ(dump_config(load_config_text(dump_config(c, false), "plain.yaml").config), yaml);
}

TEST(Config, ReferenceListsEveryKey) {
  std::string ref = config_reference_markdown();
  TrainConfig c;
  for (const auto& f : c.schema().fields()) EXPECT_THAT(ref, HasSubstr("`" + f.path + "`"));
}

TEST(Config, EveryFieldHasHelpAndItsDefaultPassesItsCheck) {
  TrainConfig c;
  for (const auto& f : c.schema().fields()) {
    EXPECT_FALSE(f.help.empty()) << f.path;
    EXPECT_EQ(f.check.violation(f.default_value), "") << f.path;
  }
}

TEST(Config, ClosestMatch) {
  EXPECT_EQ(closest_match("lrr", {"lr", "eps", "beta1"}), "lr");
  EXPECT_EQ(closest_match("zzzzzzzz", {"lr", "eps"}), "");
}

TEST(RunDir, WritesResolvedConfigAndRefusesToOverwriteWhenResumeIsOff) {
  TempDir dir;
  TrainConfig c;
  c.trainer.run_dir = dir.path("run");
  c.trainer.total_steps = 3;
  prepare_run_dir(c);
  LoadedConfig back = load_config(dir.path("run/config.yaml"));
  EXPECT_EQ(back.config.trainer.total_steps, 3);
  c.trainer.resume = "off";
  EXPECT_THAT(config_error([&] { prepare_run_dir(c); }), HasSubstr("trainer.resume is off"));
  c.trainer.resume = "auto";
  EXPECT_NO_THROW(prepare_run_dir(c));
}

TEST(RunDir, ALockedRunDirIsRefusedNamingTheHolderAndFreedWithTheLock) {
  TempDir dir;
  TrainConfig c;
  c.trainer.run_dir = dir.path("run");
  {
    RunDirLock held = prepare_run_dir(c);
    EXPECT_TRUE(held.held());
    const std::string message = config_error([&] { prepare_run_dir(c); });
    EXPECT_THAT(message, HasSubstr("is in use by PID " + std::to_string(::getpid()) + " on "));
    EXPECT_THAT(message, HasSubstr("another trainer.run_dir"));
  }
  EXPECT_NO_THROW(prepare_run_dir(c));  // released with the lock
  // The lock file alone is not a run: resume=off still accepts a run_dir holding only it.
  TrainConfig fresh;
  fresh.trainer.run_dir = dir.path("fresh");
  fresh.trainer.resume = "off";
  { RunDirLock lock = RunDirLock::acquire(fresh.trainer.run_dir); }
  EXPECT_NO_THROW(prepare_run_dir(fresh));
}

TEST(RunDir, AChangedConfigKeepsTheEarlierOneAndStaleStagingIsRemoved) {
  TempDir dir;
  TrainConfig c;
  c.trainer.run_dir = dir.path("run");
  prepare_run_dir(c);
  prepare_run_dir(c);  // the same config: no history
  EXPECT_FALSE(fs::exists(dir.path("run/config_history")));
  fs::create_directories(dir.path("run/checkpoints/.step_00000004.staging.999"));
  fs::create_directories(dir.path("run/checkpoints/step_00000002"));
  c.actor.optim.lr = 0.5;
  prepare_run_dir(c);
  EXPECT_EQ(load_config(dir.path("run/config_history/config.1.yaml")).config.actor.optim.lr,
            TrainConfig().actor.optim.lr);
  EXPECT_EQ(load_config(dir.path("run/config.yaml")).config.actor.optim.lr, 0.5);
  EXPECT_FALSE(fs::exists(dir.path("run/checkpoints/.step_00000004.staging.999")));
  EXPECT_TRUE(fs::exists(dir.path("run/checkpoints/step_00000002")));
}

TEST(ConfigDiff, ListsChangedAddedAndRemovedLeavesByDottedKey) {
  const auto changes = config_changes("a:\n  b: 1\n  c: [1, 2]\nd: x\n", "a:\n  b: 2\n  c: [1, 2]\ne: y\n");
  ASSERT_EQ(changes.size(), 3u);
  EXPECT_EQ(changes[0].key, "a.b");
  EXPECT_EQ(changes[0].before, "1");
  EXPECT_EQ(changes[0].after, "2");
  EXPECT_EQ(changes[1].key, "d");
  EXPECT_EQ(changes[1].after, "(absent)");
  EXPECT_EQ(changes[2].key, "e");
  EXPECT_EQ(changes[2].before, "(absent)");
  TrainConfig a, b;
  b.rollout.n = 3;
  b.data.seed = 9;
  const auto real = config_changes(dump_config(a), dump_config(b));
  ASSERT_EQ(real.size(), 2u);
  EXPECT_EQ(real[0].key, "data.seed");
  EXPECT_EQ(real[1].key, "rollout.n");
  EXPECT_TRUE(config_changes(dump_config(a), dump_config(a)).empty());
}

TEST(Files, AtomicWriteReplacesAndReadBack) {
  TempDir dir;
  std::string p = dir.path("f.txt");
  write_file_atomic(p, "one");
  write_file_atomic(p, std::string("two\0three", 9));
  EXPECT_EQ(read_file(p), std::string("two\0three", 9));
  for (const auto& e : fs::directory_iterator(dir.path())) EXPECT_EQ(e.path().filename(), "f.txt");
  EXPECT_THROW(read_file(dir.path("missing")), IoError);
  EXPECT_THROW(write_file_atomic(dir.path("no/such/dir/f"), "x"), IoError);
}

}  // namespace
}  // namespace tinyzero
