// The tiny demo in CI size: the README's main command (scripts/quickstart.sh, which runs the recipe
// configs/tiny/demo.yaml) with the binary under test, from the stored warmed-up model as by default.
// The warm-up is the recipe's own (its --from-scratch stages: a tiny model and tokenizer built from
// nothing, SFT on a corpus that never shows a held-out problem, in two legs), stored in
// tests/data/tiny-demo-warm (its README says how it was made), because its SFT takes 30-50 minutes.
// From it, GRPO on Countdown with TinyZero's reward for 10 steps, with the demo's own GRPO config
// (configs/tiny/grpo.yaml, the recipe's grpo stage), must raise the held-out
// success rate (greedy, the same 500 problems before and after, scored by the reward) above the
// warmed-up base by more than chance can explain, judged problem by problem. About 8 minutes on one core.
//
// TZ_DEMO_SEED=N (environment) runs it with trainer.seed=N, to measure the spread over seeds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <unordered_set>
#include <vector>

#include "support/cli.h"
#include "support/tiny_run.h"
#include "tinyzero/core/config.h"
#include "tinyzero/tasks/countdown.h"
#include "tinyzero/tasks/task.h"

namespace fs = std::filesystem;
using tinyzero::testing::fresh_temp_dir;
using tinyzero::testing::read_jsonl;
using tinyzero::testing::run_shell;
using tinyzero::testing::shell_quote;

namespace {

constexpr int kGrpoSteps = 10;

// P(X >= k) for X ~ Binomial(n, 1/2): the one-sided exact (McNemar) p-value of k gains among n
// problems whose outcome changed, if GRPO had changed nothing (each change as likely either way).
double binomial_half_upper_tail(int64_t k, int64_t n) {
  double p = 0;
  for (int64_t i = k; i <= n; ++i)
    p += std::exp(std::lgamma(static_cast<double>(n + 1)) - std::lgamma(static_cast<double>(i + 1)) -
                  std::lgamma(static_cast<double>(n - i + 1)) - static_cast<double>(n) * std::log(2.0));
  return p;
}

// "Numbers [3, 7, 25], target 46." -> the problem.
tinyzero::Problem parse_prompt(const std::string& prompt) {
  static const std::regex re(R"(Numbers \[([0-9, ]+)\], target (\d+)\.)");
  std::smatch m;
  tinyzero::Problem p;
  if (!std::regex_search(prompt, m, re)) return p;
  p.target = std::stoll(m[2]);
  const std::string list = m[1];
  for (size_t at = 0; at < list.size();) {
    const size_t end = std::min(list.find(',', at), list.size());
    p.nums.push_back(std::stoll(list.substr(at, end - at)));
    at = end + 2;
  }
  return p;
}

class DemoLearn : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fresh_temp_dir("tz_demo_learn"); }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(DemoLearn, WarmUpCorpusNeverShowsAHeldOutProblem) {
  // The recipe's first corpus (what --from-scratch makes), one example per problem it draws from.
  const std::string corpus = dir_ + "/warmup.jsonl";
  const auto made = run_shell("cd " + shell_quote(TZ_SOURCE_DIR) + " && " + shell_quote(TZ_CLI_PATH) +
                              " recipe configs/tiny/demo.yaml --from-scratch --until warmup"
                              " --set warmup.examples=1300 --dir " +
                              shell_quote(dir_));
  ASSERT_EQ(made.exit_code, 0) << made.output;
  EXPECT_THAT(made.output,
              ::testing::HasSubstr("1300 examples over 1300 problems (none of the 500 held-out ones)"));
  const auto config = tinyzero::load_config(std::string(TZ_SOURCE_DIR) + "/configs/tiny/grpo.yaml").config;
  const tinyzero::ProblemSets sets = tinyzero::load_problem_sets(config.data);
  std::unordered_set<std::string> held_out, seen;
  for (const auto& p : sets.val) held_out.insert(tinyzero::countdown_key(p));
  ASSERT_EQ(held_out.size(), 500u);
  for (const auto& ex : read_jsonl(corpus)) {
    const tinyzero::Problem p = parse_prompt(ex["prompt"]);
    ASSERT_EQ(p.nums.size(), 3u) << ex["prompt"];
    EXPECT_FALSE(held_out.count(tinyzero::countdown_key(p)))
        << "held-out problem in the warm-up corpus: " << ex["prompt"];
    seen.insert(tinyzero::countdown_key(p));
  }
  EXPECT_EQ(seen.size(), 1300u);
}

TEST_F(DemoLearn, GrpoRaisesHeldOutSuccessAboveTheWarmedUpBaseBeyondChance) {
  const std::string demo = dir_ + "/demo", generations = dir_ + "/validation";
  const char* seed = std::getenv("TZ_DEMO_SEED");
  const auto run =
      run_shell("cd " + shell_quote(TZ_SOURCE_DIR) + " && TINYZERO_BIN=" + shell_quote(TZ_CLI_PATH) +
                " DEMO_DIR=" + shell_quote(demo) + " bash scripts/quickstart.sh --set warm_model.stored=" +
                shell_quote(std::string(TZ_TEST_DATA_DIR) + "/tiny-demo-warm") +
                " --set grpo.steps=" + std::to_string(kGrpoSteps) +
                " logging.progress=false trainer.test_freq=" + std::to_string(kGrpoSteps) +
                " trainer.validation_data_dir=" + shell_quote(generations) +
                (seed ? std::string(" trainer.seed=") + seed : std::string()));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const size_t summary = run.output.rfind("held-out countdown success");
  ASSERT_NE(summary, std::string::npos) << run.output;
  std::printf("%s", run.output.substr(summary).c_str());
  EXPECT_TRUE(fs::exists(demo + "/grpo/plot.svg"));

  // Base = the validation before any GRPO step (the warmed-up model), trained = the one after the last.
  const auto config = tinyzero::load_config(demo + "/grpo/config.yaml").config;
  const auto before = read_jsonl(generations + "/step_00000000.jsonl");
  char after_name[64];
  std::snprintf(after_name, sizeof after_name, "/step_%08d.jsonl", kGrpoSteps);
  const auto after = read_jsonl(generations + after_name);
  ASSERT_EQ(config.data.val_size, 500);
  ASSERT_EQ(before.size(), 500u);
  ASSERT_EQ(after.size(), 500u);
  int64_t base = 0, trained = 0, gained = 0, lost = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    ASSERT_EQ(before[i]["prompt"], after[i]["prompt"]) << "problem " << i;
    const bool was = before[i]["correct"], is = after[i]["correct"];
    base += was, trained += is, gained += is && !was, lost += was && !is;
  }
  // The metrics agree with the generations.
  std::vector<double> rates;
  for (const auto& m : read_jsonl(demo + "/grpo/metrics.jsonl"))
    if (m.contains("val/success_rate/countdown")) rates.push_back(m["val/success_rate/countdown"]);
  ASSERT_EQ(rates.size(), 2u);
  EXPECT_DOUBLE_EQ(rates.front(), static_cast<double>(base) / 500);
  EXPECT_DOUBLE_EQ(rates.back(), static_cast<double>(trained) / 500);

  // Paired exact test: if GRPO changed nothing, a problem that flips is as likely to be lost as gained,
  // so the number gained among those that flipped is Binomial(gained + lost, 1/2). Require a one-sided
  // p-value below 0.001 (chance alone fails this test once in a thousand runs).
  ASSERT_NEAR(binomial_half_upper_tail(3, 3), 0.125, 1e-12);
  ASSERT_NEAR(binomial_half_upper_tail(9, 10), 11.0 / 1024, 1e-12);
  const double p = binomial_half_upper_tail(gained, gained + lost);
  std::printf(
      "held-out success (n = 500): base %.1f%% -> trained %.1f%% after %d steps; %lld problems gained, "
      "%lld lost; exact one-sided p = %.2g\n",
      100.0 * static_cast<double>(base) / 500, 100.0 * static_cast<double>(trained) / 500, kGrpoSteps,
      static_cast<long long>(gained), static_cast<long long>(lost), p);
  EXPECT_LT(base, 50) << "the warmed-up base should solve fewer than 10% of the held-out problems";
  EXPECT_GT(trained, base);
  EXPECT_LT(p, 1e-3) << gained << " gained, " << lost << " lost";
}

}  // namespace
