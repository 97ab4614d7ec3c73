// `tinyzero-train eval` on 2 ranks (scripts/launch-local.sh, Gloo): the same responses, in the same order,
// and the same summary as on 1 rank, written once by rank 0.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/cli.h"
#include "support/tiny_run.h"
#include "tinyzero/core/files.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using tinyzero::testing::shell_quote;

namespace {

tinyzero::testing::CliResult eval_on(int ranks, const std::string& out) {
  return tinyzero::testing::launch_local(ranks,
                                         "eval tests/data/tiny-demo-warm --config configs/tiny/grpo.yaml "
                                         "--limit 14 --samples 4 -t 1 --seed 3 -o " +
                                             shell_quote(out) +
                                             " rollout.micro_batch_size=12 trainer.threads=1");
}

TEST(EvalDist, TwoRanksGiveTheResponsesAndSummaryOfOne) {
  const std::string dir = tinyzero::testing::fresh_temp_dir("tz_eval_dist");
  // 14 problems in batches of 3 (12 rows / 4 samples): 5 batches, 2 on rank 0 and 3 on rank 1.
  auto one = eval_on(1, dir + "/one.jsonl");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = eval_on(2, dir + "/two.jsonl");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_THAT(two.output, HasSubstr("on 2 rank(s)"));
  const std::string a = tinyzero::read_file(dir + "/one.jsonl"), b = tinyzero::read_file(dir + "/two.jsonl");
  EXPECT_EQ(tinyzero::testing::read_jsonl(dir + "/two.jsonl").size(), 56u);
  EXPECT_TRUE(a == b) << "the 2-rank responses differ from the 1-rank ones";
  auto s1 = nlohmann::json::parse(tinyzero::read_file(dir + "/one.summary.json"));
  auto s2 = nlohmann::json::parse(tinyzero::read_file(dir + "/two.summary.json"));
  EXPECT_EQ(s2["world_size"], 2);
  for (const char* key : {"problems", "success_rate", "format_rate", "score_mean", "pass@1", "pass@4",
                          "response_tokens_mean", "truncated_rate"})
    EXPECT_NEAR(s1[key].get<double>(), s2[key].get<double>(), 1e-12) << key;
  // Rank 0 alone printed the summary.
  EXPECT_THAT(two.output, HasSubstr("[rank 0] eval: countdown, 14 problems"));
  EXPECT_THAT(two.output, ::testing::Not(HasSubstr("[rank 1] eval: countdown")));
  fs::remove_all(dir);
}

}  // namespace
