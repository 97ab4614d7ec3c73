// `tinyzero-train eval` end to end on the stored warmed-up tiny model (tests/data/tiny-demo-warm) and the
// tiny demo's settings (configs/tiny/grpo.yaml): the summary agrees with the responses it wrote, greedy
// evaluation gives exactly the responses the trainer's own validation gives, pass@k follows from the
// per-problem counts, a checkpoint's saved settings are used by default, and bad options are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "support/cli.h"
#include "support/tiny_run.h"
#include "tinyzero/core/files.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using tinyzero::testing::read_jsonl;
using tinyzero::testing::run_cli;
using tinyzero::testing::shell_quote;

namespace {

const std::string kSource = TZ_SOURCE_DIR;
const std::string kWarm = kSource + "/tests/data/tiny-demo-warm";
const std::string kDemo = kSource + "/configs/tiny/grpo.yaml";

class EvalCli : public ::testing::Test {
 public:
  static void SetUpTestSuite() { dir_ = tinyzero::testing::fresh_temp_dir("tz_eval_cli"); }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // eval of `model` with `args`, responses into dir/<name>.jsonl (summary beside it).
  static tinyzero::testing::CliResult eval(const std::string& model, const std::string& name,
                                           const std::string& args) {
    return run_cli("eval " + shell_quote(model) + " -o " + shell_quote(dir_ + "/" + name + ".jsonl") +
                   " trainer.threads=1 " + args);
  }
  static nlohmann::json summary(const std::string& name) {
    return nlohmann::json::parse(tinyzero::read_file(dir_ + "/" + name + ".summary.json"));
  }

 protected:
  static inline std::string dir_;
};

TEST_F(EvalCli, HelpDescribesTheCommand) {
  auto r = run_cli("eval --help");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* option :
       {"--samples", "--temperature", "--k", "--data", "--limit", "--output", "--config"})
    EXPECT_THAT(r.output, HasSubstr(option));
  EXPECT_THAT(r.output, HasSubstr("pass@k"));
}

TEST_F(EvalCli, GreedySummaryAgreesWithItsResponses) {
  auto r = eval(kWarm, "greedy", "--config " + shell_quote(kDemo) + " --limit 24");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("eval: countdown, 24 problems x 1 response(s) (greedy)"));
  const auto lines = read_jsonl(dir_ + "/greedy.jsonl");
  ASSERT_EQ(lines.size(), 24u);
  double score = 0, correct = 0, format = 0, tokens = 0, truncated = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto& j = lines[i];
    EXPECT_EQ(j["index"], static_cast<int64_t>(i));
    EXPECT_EQ(j["sample"], 0);
    EXPECT_THAT(j["prompt"].get<std::string>(), HasSubstr("Numbers "));
    EXPECT_THAT(j["problem"].get<std::string>(), HasSubstr("target"));
    EXPECT_GT(j["response_tokens"].get<int64_t>(), 0);
    score += j["score"].get<double>(), correct += j["correct"].get<bool>(),
        format += j["format_ok"].get<bool>();
    tokens += j["response_tokens"].get<double>(), truncated += j["truncated"].get<bool>();
    // The warmed-up model works candidates out ("2+9=11: 11+3=14<25, ..."): the weights were read.
    EXPECT_THAT(j["response"].get<std::string>(), ::testing::ContainsRegex("[0-9]+[-+*/][0-9]+=[0-9]+")) << i;
  }
  const auto s = summary("greedy");
  EXPECT_EQ(s["problems"], 24);
  EXPECT_EQ(s["task"], "countdown");
  EXPECT_NEAR(s["score_mean"].get<double>(), score / 24, 1e-6);
  EXPECT_NEAR(s["success_rate"].get<double>(), correct / 24, 1e-12);
  EXPECT_NEAR(s["pass@1"].get<double>(), correct / 24, 1e-12);
  EXPECT_NEAR(s["format_rate"].get<double>(), format / 24, 1e-12);
  EXPECT_NEAR(s["response_tokens_mean"].get<double>(), tokens / 24, 1e-9);
  EXPECT_NEAR(s["truncated_rate"].get<double>(), truncated / 24, 1e-12);
  EXPECT_GT(s["tokens_per_s"].get<double>(), 0);
}

// Greedy eval of a model is the trainer's validation of it: same problems, same responses, same scores.
TEST_F(EvalCli, GreedyEvalGivesTheTrainersValidationResponses) {
  const std::string run = dir_ + "/val_run";
  auto t =
      run_cli("--config " + shell_quote(kDemo) + " model.path=" + shell_quote(kWarm) + " trainer.run_dir=" +
              shell_quote(run) + " trainer.validation_data_dir=" + shell_quote(run + "/val") +
              " data.val_size=16 data.val_batch_size=16 rollout.micro_batch_size=16 trainer.total_steps=1"
              " data.train_batch_size=2 rollout.n=2 actor.ppo_mini_batch_size=2 actor.ppo_micro_batch_size=4"
              " trainer.test_freq=1"
              " trainer.save_freq=0 logging.tensorboard=false trainer.threads=1");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  const auto val = read_jsonl(run + "/val/step_00000000.jsonl");
  ASSERT_EQ(val.size(), 16u);
  auto e = eval(kWarm, "as_validation",
                "--config " + shell_quote(kDemo) + " data.val_size=16 rollout.micro_batch_size=16");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  const auto lines = read_jsonl(dir_ + "/as_validation.jsonl");
  ASSERT_EQ(lines.size(), val.size());
  for (size_t i = 0; i < val.size(); ++i) {
    EXPECT_EQ(lines[i]["prompt"], val[i]["prompt"]) << i;
    EXPECT_EQ(lines[i]["response"], val[i]["response"]) << i;
    EXPECT_EQ(lines[i]["score"], val[i]["score"]) << i;
  }
}

TEST_F(EvalCli, SampledPassAtKFollowsFromEachProblemsCorrectCount) {
  auto r =
      eval(kWarm, "sampled",
           "--config " + shell_quote(kDemo) + " --limit 12 --samples 8 --temperature 1 --k 1,3,8 --seed 5");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lines = read_jsonl(dir_ + "/sampled.jsonl");
  ASSERT_EQ(lines.size(), 96u);
  std::map<int64_t, int> right;
  std::set<std::string> distinct;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i]["index"], static_cast<int64_t>(i / 8));
    EXPECT_EQ(lines[i]["sample"], static_cast<int64_t>(i % 8));
    right[lines[i]["index"]] += lines[i]["correct"].get<bool>();
    distinct.insert(lines[i]["response"].get<std::string>());
  }
  EXPECT_GT(distinct.size(), 48u) << "sampling at temperature 1 should rarely repeat a response";
  // pass@k = mean over problems of 1 - C(8 - c, k) / C(8, k).
  auto choose = [](int n, int k) {
    double v = 1;
    for (int i = 0; i < k; ++i) v = v * (n - i) / (i + 1);
    return n < k ? 0.0 : v;
  };
  const auto s = summary("sampled");
  for (int k : {1, 3, 8}) {
    double expected = 0;
    for (const auto& [index, c] : right) expected += 1 - choose(8 - c, k) / choose(8, k);
    EXPECT_NEAR(s["pass@" + std::to_string(k)].get<double>(), expected / 12, 1e-9) << "k=" << k;
  }
  EXPECT_EQ(s["pass@1"], s["success_rate"]);
  EXPECT_LE(s["pass@1"].get<double>(), s["pass@3"].get<double>());
  EXPECT_LE(s["pass@3"].get<double>(), s["pass@8"].get<double>());
  // The same seed gives the same responses.
  auto again =
      eval(kWarm, "sampled_again",
           "--config " + shell_quote(kDemo) + " --limit 12 --samples 8 --temperature 1 --k 1,3,8 --seed 5");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(tinyzero::read_file(dir_ + "/sampled.jsonl"), tinyzero::read_file(dir_ + "/sampled_again.jsonl"));
}

// A checkpoint directory carries its run's settings (trainer_config.yaml): eval uses them without --config,
// and a JSONL file of problems replaces the held-out set.
TEST_F(EvalCli, ACheckpointsOwnSettingsAndAProblemFile) {
  const std::string ckpt = dir_ + "/checkpoint";
  fs::create_directories(ckpt);
  for (const auto& entry : fs::directory_iterator(kWarm))
    fs::copy(entry.path(), ckpt / entry.path().filename());
  auto printed = run_cli("--config " + shell_quote(kDemo) + " data.val_size=5 --print-config");
  ASSERT_EQ(printed.exit_code, 0) << printed.output;
  tinyzero::write_file_atomic(ckpt + "/trainer_config.yaml", printed.output);
  auto r = run_cli("eval " + shell_quote(ckpt) + " trainer.threads=1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("5 problems"));
  EXPECT_EQ(read_jsonl(ckpt + "/eval/heldout.jsonl").size(), 5u);
  EXPECT_TRUE(fs::exists(ckpt + "/eval/heldout.summary.json"));

  tinyzero::write_file_atomic(dir_ + "/two.jsonl",
                              "{\"target\": 10, \"nums\": [2, 5, 1]}\n"
                              "{\"target\": 12, \"nums\": [3, 4, 9]}\n");
  auto f = run_cli("eval " + shell_quote(ckpt) + " --data " + shell_quote(dir_ + "/two.jsonl") +
                   " trainer.threads=1");
  ASSERT_EQ(f.exit_code, 0) << f.output;
  const auto lines = read_jsonl(ckpt + "/eval/two.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["source"], dir_ + "/two.jsonl:2");
  EXPECT_THAT(lines[1]["prompt"].get<std::string>(), HasSubstr("target 12"));
}

TEST_F(EvalCli, BadOptionsAreRefusedWithTheFix) {
  auto greedy_many = eval(kWarm, "bad", "--config " + shell_quote(kDemo) + " --samples 4");
  EXPECT_EQ(greedy_many.exit_code, 2);
  EXPECT_THAT(greedy_many.output, HasSubstr("--temperature"));
  auto big_k = eval(kWarm, "bad", "--config " + shell_quote(kDemo) + " --samples 2 -t 1 --k 4");
  EXPECT_EQ(big_k.exit_code, 2);
  EXPECT_THAT(big_k.output, HasSubstr("--k 4"));
  auto no_model = run_cli("eval " + shell_quote(dir_ + "/nothing"));
  EXPECT_EQ(no_model.exit_code, 2);
  EXPECT_THAT(no_model.output, HasSubstr("no config.json"));
  tinyzero::write_file_atomic(dir_ + "/broken.jsonl", "{\"target\": 10}\n");
  auto bad_data =
      eval(kWarm, "bad", "--config " + shell_quote(kDemo) + " --data " + shell_quote(dir_ + "/broken.jsonl"));
  EXPECT_NE(bad_data.exit_code, 0);
  EXPECT_THAT(bad_data.output, HasSubstr("broken.jsonl:1"));
  EXPECT_FALSE(fs::exists(dir_ + "/bad.jsonl"));
}

}  // namespace
