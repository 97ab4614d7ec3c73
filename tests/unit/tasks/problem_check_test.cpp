// Load-time checks of problem sets (check_problem_sets): ranges, solvability and prompt lengths,
// each refusal naming data.*_files, file:line, the value, the config key and the fix.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/tasks/countdown.h"
#include "tinyzero/tasks/dataset.h"
#include "tinyzero/tasks/task.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

// A byte-level tokenizer: one token per byte of the prompt text.
int64_t bytes_as_tokens(const std::string& text) { return static_cast<int64_t>(text.size()); }

class ProblemCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tz_problem_check_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    data_.train_size = 64;
    data_.val_size = 8;
    data_.max_prompt_length = 4096;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = (dir_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  // The ConfigError of loading and checking data_, or "(no error)".
  std::string error() const {
    try {
      const ProblemSets sets = load_problem_sets(data_);
      check_problem_sets(sets, *make_task(data_, RewardConfig()), data_, bytes_as_tokens);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }

  fs::path dir_;
  DataConfig data_;
};

TEST_F(ProblemCheck, UnsolvableCountdownTargetsAreRefusedWithFileAndLine) {
  // 1 + 2 + 3 = 6 and (1 + 2) * 3 = 9 are reachable, 97 is not.
  data_.train_files = write("train.jsonl",
                            "{\"target\": 6, \"nums\": [1, 2, 3]}\n{\"target\": 9, \"nums\": [1, 2, 3]}\n"
                            "{\"target\": 97, \"nums\": [1, 2, 3]}\n");
  const std::string e = error();
  EXPECT_NE(e.find("data.train_files: " + data_.train_files +
                   ":3: target 97 cannot be reached from [1, 2, 3] with + - * / and each number used once"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("fix or remove the line, or set data.allow_unsolvable=true"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  data_.allow_unsolvable = true;
  EXPECT_EQ(error(), "(no error)");
}

TEST_F(ProblemCheck, CountdownNumbersOutsideTheConfiguredRangesAreRefused) {
  const std::string good = "{\"target\": 6, \"nums\": [1, 2, 3]}\n";
  data_.val_files = write("val.jsonl", good + "{\"target\": 128, \"nums\": [3, 150, 25]}\n");
  std::string e = error();
  EXPECT_NE(e.find("data.val_files: " + data_.val_files +
                   ":2: number 150 of [3, 150, 25] is above data.countdown.max_number = 99; raise "
                   "data.countdown.max_number to 150, remove the line, or set data.allow_out_of_range=true"),
            std::string::npos)
      << e;
  data_.val_files = write("val2.jsonl", good + good + "{\"target\": 15, \"nums\": [1, 2, 3, 4, 5]}\n");
  e = error();
  EXPECT_NE(e.find(":3: count 5 of numbers [1, 2, 3, 4, 5] is above data.countdown.max_numbers = 4; raise "
                   "data.countdown.max_numbers to 5,"),
            std::string::npos)
      << e;
  data_.val_files = write("val3.jsonl", "{\"target\": 1000, \"nums\": [10, 10, 10]}\n");
  e = error();
  EXPECT_NE(
      e.find(":1: target 1000 is above data.countdown.max_target = 100; raise data.countdown.max_target"),
      std::string::npos)
      << e;
  data_.val_files = write("val4.jsonl", "{\"target\": 0, \"nums\": [0, 5, 5]}\n");
  e = error();
  // min_number may not go below 1: only removing or allowing the problem helps.
  EXPECT_NE(
      e.find(":1: number 0 of [0, 5, 5] is below data.countdown.min_number = 1; remove the line, or set "
             "data.allow_out_of_range=true"),
      std::string::npos)
      << e;
  // Allowed: kept, and still checked for solvability (0 * 5 * 5 = 0).
  data_.allow_out_of_range = true;
  EXPECT_EQ(error(), "(no error)");
  data_.val_files = write("val5.jsonl", "{\"target\": 1000, \"nums\": [1, 150]}\n");
  EXPECT_NE(error().find(":1: target 1000 cannot be reached from [1, 150]"), std::string::npos);
}

TEST_F(ProblemCheck, MultiplicationOperandsBeyondTheirDigitsAreRefused) {
  data_.task = "multiplication";
  data_.train_files = write("m.jsonl", "{\"a\": 123, \"b\": 456}\n{\"a\": 12345, \"b\": 6}\n");
  std::string e = error();
  EXPECT_NE(
      e.find("data.train_files: " + data_.train_files +
             ":2: operand a = 12345 has 5 digits, outside data.multiplication.digits_a = 3 (0..999); raise "
             "data.multiplication.digits_a to 5, remove the line, or set data.allow_out_of_range=true"),
      std::string::npos)
      << e;
  data_.train_files = write("m2.jsonl", "{\"a\": 12, \"b\": -4}\n");
  EXPECT_NE(error().find(":1: operand b = -4 is negative, outside data.multiplication.digits_b = 3 (0..999); "
                         "remove the line"),
            std::string::npos);
  data_.allow_out_of_range = true;
  EXPECT_EQ(error(), "(no error)");
}

TEST_F(ProblemCheck, OverlongPromptsAreFoundAtLoadNamingFileLineAndTheLengthNeeded) {
  // The base template around [1, 2, 3] / 6; bigger numbers make longer prompts.
  Problem small;
  small.target = 6, small.nums = {1, 2, 3};
  const auto task = make_task(data_, RewardConfig());
  data_.max_prompt_length = bytes_as_tokens(task->prompt(small));
  std::string lines;
  for (int i = 0; i < 20; ++i) lines += "{\"target\": 6, \"nums\": [1, 2, 3]}\n";
  lines += "{\"target\": 60, \"nums\": [10, 20, 30]}\n";  // line 21: 4 bytes longer
  lines += "{\"target\": 6, \"nums\": [1, 2, 3]}\n";
  lines += "{\"target\": 100, \"nums\": [10, 20, 30, 40]}\n";  // line 23: 9 bytes longer
  data_.train_files = write("train.jsonl", lines);
  data_.val_files =
      write("val.jsonl", "{\"target\": 6, \"nums\": [1, 2, 3]}\n");  // generated ones are longer
  const std::string e = error();
  EXPECT_NE(e.find("data.train_files: " + data_.train_files + ":21: the prompt (data.prompt_template) is " +
                   std::to_string(data_.max_prompt_length + 4) +
                   " tokens, more than data.max_prompt_length = " + std::to_string(data_.max_prompt_length)),
            std::string::npos)
      << e;
  EXPECT_NE(
      e.find("raise data.max_prompt_length to at least " + std::to_string(data_.max_prompt_length + 9) +
             " or shorten data.prompt_template, or remove the line (1 more problem fails the load checks: " +
             data_.train_files + ":23)"),
      std::string::npos)
      << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST_F(ProblemCheck, GeneratedProblemsGetThePromptCheckToo) {
  data_.prompt_template = "{numbers} -> {target}";
  data_.max_prompt_length = 12;  // "[1, 2, 3] -> 6" is 14 bytes
  std::string e = error();
  EXPECT_NE(e.find("generated training problem 0 (target "), std::string::npos) << e;
  EXPECT_NE(e.find("more than data.max_prompt_length = 12; raise data.max_prompt_length to at least"),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find("remove the line"), std::string::npos) << e;
  data_.max_prompt_length = 64;
  EXPECT_EQ(error(), "(no error)");
  // Generated problems are not range- or solver-checked again, files are: a file of good problems passes.
  ProblemSets sets = load_problem_sets(data_);
  write_problems(TaskKind::kCountdown, (dir_ / "gen.jsonl").string(), sets.train);
  data_.train_files = (dir_ / "gen.jsonl").string();
  EXPECT_EQ(error(), "(no error)");
}

TEST_F(ProblemCheck, AnEmptyPromptIsRefused) {
  data_.prompt_template = "{numbers}{target}";
  const ProblemSets sets = load_problem_sets(data_);
  auto no_tokens = [](const std::string&) { return int64_t{0}; };
  try {
    check_problem_sets(sets, *make_task(data_, RewardConfig()), data_, no_tokens);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("the prompt encodes to no token; check data.prompt_template"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(ProblemCheck, LargeFilesAreCheckedInOrderAcrossThreads) {
  // More than one thread's share (4096): the first bad line is named, however the work was split.
  data_.countdown.max_target = 1000;
  data_.countdown.max_number = 100;
  std::vector<Problem> problems = generate_countdown(10000, 7, 1, countdown_options(data_.countdown));
  problems[9000].target = 999999;  // out of range
  problems[6000].nums = {1, 1};    // count out of range
  problems[6000].target = 2;
  write_problems(TaskKind::kCountdown, (dir_ / "big.jsonl").string(), problems);
  data_.train_files = (dir_ / "big.jsonl").string();
  const std::string e = error();
  EXPECT_NE(
      e.find(data_.train_files + ":6001: count 2 of numbers [1, 1] is below data.countdown.min_numbers = 3"),
      std::string::npos)
      << e;
  EXPECT_NE(e.find("(1 more problem fails the load checks: " + data_.train_files + ":9001)"),
            std::string::npos)
      << e;
}

TEST_F(ProblemCheck, BlankLinesInDataFilesAreRefused) {
  data_.train_files =
      write("blank.jsonl", "{\"target\": 6, \"nums\": [1, 2, 3]}\n\n{\"target\": 6, \"nums\": [1, 2, 3]}\n");
  try {
    load_problem_sets(data_);
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(data_.train_files + ":2: blank line"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tinyzero
