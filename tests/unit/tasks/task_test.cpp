// Tests of the multiplication task, prompt templates, make_task, JSONL problem files and
// load_problem_sets.
#include "tinyzero/tasks/task.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/tasks/countdown.h"
#include "tinyzero/tasks/dataset.h"
#include "tinyzero/tasks/multiplication.h"
#include "tinyzero/tasks/prompt.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("tz_tasks_test_" + std::to_string(::getpid()) + "_" + std::to_string(n_++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = (path_ / name).string();
    std::ofstream(p) << text;
    return p;
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
  static inline int n_ = 0;
};

const RewardWeights kW{0.1, 1.0};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// --- multiplication -----------------------------------------------------------------------------------

TEST(Multiplication, PromptIsTinyZeros) {
  EXPECT_EQ(
      multiplication_base_prompt(multiplication_problem(123, 45)),
      "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
      "assistant first thinks about the reasoning process in the mind and then provides the user with the "
      "answer. The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> "
      "tags, respectively, i.e., <think> reasoning process here </think> <answer> RESULT_NUMBER </answer>. "
      "User: Give me the answer of the following equation: 123 * 45 = Assistant: Ok let me think about "
      "it.\n<think>");
}

TEST(Multiplication, ProductBeyondInt64) {
  EXPECT_EQ(multiplication_problem(999999999999999999, 999999999999999999).answer,
            "999999999999999998000000000000000001");
  EXPECT_EQ(multiplication_problem(0, 5).answer, "0");
  EXPECT_EQ(multiplication_problem(-3, 5).answer, "-15");
}

TEST(Multiplication, TinyZeroRewardRules) {
  const Problem p = multiplication_problem(123, 45);  // 5535
  auto s = [&](const std::string& sol) { return score_multiplication_tinyzero(sol, p, kW); };
  EXPECT_EQ(s("<answer>5535</answer>").score, 1.0);
  EXPECT_EQ(s("<answer> +5_535 </answer>").score, 1.0);  // Python int() accepts these
  EXPECT_EQ(s("<answer>\u0665\u0665\u0663\u0665</answer>").score, 1.0);
  EXPECT_EQ(s("<answer>005535</answer>").score, 1.0);
  EXPECT_EQ(s("<answer>5536</answer>").score, 0.1);
  EXPECT_TRUE(s("<answer>5536</answer>").format_ok);
  EXPECT_EQ(s("<answer>5535.0</answer>").score, 0.0);  // not an int: no answer
  EXPECT_FALSE(s("<answer>5535.0</answer>").format_ok);
  EXPECT_EQ(s("<answer>5,535</answer>").score, 0.0);
  EXPECT_EQ(s("<answer>5__535</answer>").score, 0.0);
  EXPECT_EQ(s("<answer>5535</answer>\nnot the last line").score, 1.0);  // whole text, not last line
  EXPECT_EQ(s("<answer>\n5535</answer>").score, 0.0);                   // but not across a newline
  EXPECT_EQ(s("<answer>5535</answer> <answer>1</answer>").score, 0.1);  // last answer
  // The marker: only "Assistant:"; the im_start marker does not count for multiplication.
  DataConfig data;
  data.task = "multiplication";
  auto task = make_task(data, RewardConfig{});
  EXPECT_EQ(task->score("<|im_start|>assistant <answer>5535</answer>", p).score, 0.0);
  EXPECT_EQ(task->score(multiplication_base_prompt(p) + "</think> <answer>5535</answer>", p).score, 1.0);
  // The prompt's own "<answer> RESULT_NUMBER </answer>" comes before "Assistant:" and is ignored.
  EXPECT_EQ(task->score(multiplication_base_prompt(p), p).score, 0.0);
}

TEST(Multiplication, StrictReward) {
  const Problem p = multiplication_problem(123, 45);
  auto s = [&](const std::string& sol) { return score_multiplication_strict(sol, p, kW).score; };
  EXPECT_EQ(s("<answer>\n5535\n</answer>"), 1.0);
  EXPECT_EQ(s("<answer>+5535</answer>"), 0.0);
  EXPECT_EQ(s("<answer>5_535</answer>"), 0.0);
  EXPECT_EQ(s("<answer>05535</answer>"), 0.0);
  EXPECT_EQ(s("<answer>5534</answer>"), 0.1);
  EXPECT_EQ(score_multiplication_strict("<answer>-15</answer>", multiplication_problem(-3, 5), kW).score,
            1.0);
}

TEST(Multiplication, AgreesWithCPythonOnReferenceTexts) {
  std::ifstream in(std::string(TZ_SOURCE_DIR) + "/tests/unit/tasks/data/python_reference.jsonl");
  ASSERT_TRUE(in.good());
  DataConfig data;
  data.task = "multiplication";
  auto task = make_task(data, RewardConfig{});
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] != "multiplication") continue;
    Problem p;
    p.answer = std::to_string(j["answer"].get<int64_t>());
    EXPECT_EQ(task->score(j["text"].get<std::string>(), p).score, j["score"].get<double>()) << j.dump();
    ++n;
  }
  EXPECT_GT(n, 500);
}

TEST(Multiplication, GeneratorFollowsTinyZeroBuckets) {
  MultiplicationOptions o;  // 3 digits: buckets 0-9 (1/4), 0-99 (1/4), 0-999 (1/2)
  const auto a = generate_multiplication(20000, 5, kTrainStream, o);
  EXPECT_EQ(a, generate_multiplication(20000, 5, kTrainStream, o));
  std::set<std::string> keys;
  int small = 0;
  for (const auto& p : a) {
    ASSERT_TRUE(p.a >= 0 && p.a <= 999 && p.b >= 0 && p.b <= 999);
    ASSERT_EQ(p.answer, std::to_string(p.a * p.b));
    ASSERT_TRUE(keys.insert(multiplication_key(p)).second);
    small += p.a < 100;
  }
  // P(a < 100) = 1/4 + 1/4 + 1/2 * 1/10 = 0.55 before de-duplication.
  EXPECT_GT(small, 20000 * 0.45);
  EXPECT_LT(small, 20000 * 0.60);
  o.digits_a = o.digits_b = 1;
  EXPECT_THROW(generate_multiplication(200, 5, kTrainStream, o), ConfigError);  // only 100 pairs exist
  o.digits_a = 19;
  EXPECT_THROW(generate_multiplication(1, 5, kTrainStream, o), ConfigError);
}

// --- prompt templates and the factory -----------------------------------------------------------------

TEST(PromptTemplates, BuiltinsAndCustom) {
  Problem p;
  p.target = 46, p.nums = {3, 7, 25};
  EXPECT_EQ(PromptTemplate(TaskKind::kCountdown, "base").render(p), countdown_base_prompt(p));
  EXPECT_EQ(PromptTemplate(TaskKind::kCountdown, "qwen-instruct").render(p),
            countdown_qwen_instruct_prompt(p));
  EXPECT_EQ(PromptTemplate(TaskKind::kCountdown, "{numbers} -> {target} {{x}}:").render(p),
            "[3, 7, 25] -> 46 {x}:");
  const Problem m = multiplication_problem(12, 34);
  EXPECT_EQ(PromptTemplate(TaskKind::kMultiplication, "{a}*{b}=").render(m), "12*34=");
}

TEST(PromptTemplates, ErrorsAreConfigErrors) {
  auto err = [](TaskKind k, const std::string& t) { return error_of([&] { PromptTemplate(k, t); }); };
  EXPECT_NE(err(TaskKind::kCountdown, "{numbers} {targt}").find("unknown placeholder {targt}"),
            std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "{numbers} {targt}").find("did you mean {target}"), std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "{numbers} only").find("lacks {target}"), std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "qwen_instruct").find("did you mean 'qwen-instruct'"),
            std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "{numbers} {target").find("never closed"), std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "{numbers} } {target}").find("closes nothing"), std::string::npos);
  EXPECT_NE(err(TaskKind::kMultiplication, "{a} {numbers}").find("unknown placeholder"), std::string::npos);
  EXPECT_NE(err(TaskKind::kMultiplication, "qwen-instruct").find("countdown only"), std::string::npos);
  EXPECT_THROW(PromptTemplate(TaskKind::kCountdown, "{numbers}"), ConfigError);
}

TEST(MakeTask, FromConfig) {
  DataConfig data;
  RewardConfig reward;
  auto task = make_task(data, reward);
  EXPECT_EQ(task->name(), "countdown");
  Problem p;
  p.target = 46, p.nums = {3, 7, 25};
  EXPECT_EQ(task->prompt(p), countdown_base_prompt(p));
  EXPECT_EQ(task->reference_answer(p), "3 * 7 + 25");
  EXPECT_EQ(task->describe(p), "target 46, nums [3, 7, 25]");
  reward.mode = "strict";
  reward.format_score = 0.0;
  auto strict = make_task(data, reward);
  EXPECT_EQ(strict->score("Assistant: <answer>\n3 * 7 + 25\n</answer>\n", p).score, 1.0);
  EXPECT_EQ(strict->score("Assistant: <answer>3 * 7 + 24</answer>", p).score, 0.0);  // format score 0
  data.task = "multiplikation";
  EXPECT_NE(error_of([&] { make_task(data, reward); }).find("use countdown or multiplication"),
            std::string::npos);
  data.task = "countdown";
  reward.mode = "lenient";
  EXPECT_THROW(make_task(data, reward), ConfigError);
}

TEST(MakeTask, PromptAndResponseFallbackForCustomTemplates) {
  DataConfig data;
  data.prompt_template = "{numbers} -> {target}:";
  auto task = make_task(data, RewardConfig{});
  Problem p;
  p.target = 46, p.nums = {3, 7, 25};
  const std::string prompt = task->prompt(p);
  EXPECT_EQ(task->score(prompt + " <answer>3 * 7 + 25</answer>", p).score, 0.0);  // TinyZero: no marker
  EXPECT_EQ(task->score(prompt, " <answer>3 * 7 + 25</answer>", p).score, 1.0);   // response after prompt
  // With TinyZero's template the two forms agree.
  DataConfig base;
  auto tz = make_task(base, RewardConfig{});
  const std::string bp = tz->prompt(p);
  for (const std::string r :
       {" <answer>3 * 7 + 25</answer>", " <answer>3 * 7 + 25</answer>\n", "x Assistant: y"})
    EXPECT_EQ(tz->score(bp, r, p).score, tz->score(bp + r, p).score) << r;
}

// --- JSONL files and problem sets ---------------------------------------------------------------------

TEST(Dataset, JsonlRoundTripAndFormat) {
  TempDir dir;
  Problem p;
  p.target = 46, p.nums = {3, 7, 25};
  EXPECT_EQ(problem_to_json(TaskKind::kCountdown, p), R"({"target": 46, "nums": [3, 7, 25]})");
  EXPECT_EQ(problem_to_json(TaskKind::kMultiplication, multiplication_problem(123, 456)),
            R"({"a": 123, "b": 456, "answer": 56088})");
  EXPECT_EQ(problem_to_json(TaskKind::kMultiplication, multiplication_problem(999999999999999999, 10)),
            R"({"a": 999999999999999999, "b": 10, "answer": "9999999999999999990"})");
  std::vector<Problem> problems = {p, p};
  problems[1].nums = {1, 2, 3, 4};
  write_problems(TaskKind::kCountdown, dir.path("cd.jsonl"), problems);
  EXPECT_EQ(read_problems(TaskKind::kCountdown, dir.path("cd.jsonl")), problems);
  std::vector<Problem> mult = {multiplication_problem(1, 2), multiplication_problem(999999999999999999, 10)};
  write_problems(TaskKind::kMultiplication, dir.path("m.jsonl"), mult);
  EXPECT_EQ(read_problems(TaskKind::kMultiplication, dir.path("m.jsonl")), mult);
  // TinyZero's alternative field names.
  EXPECT_EQ(
      read_problems(TaskKind::kCountdown, dir.write("a1.jsonl", "{\"target\": 5, \"numbers\": [2, 3]}\n"))[0]
          .nums,
      (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(read_problems(TaskKind::kMultiplication,
                          dir.write("a2.jsonl", "{\"num1\": 2, \"num2\": 3, \"result\": 6}"))[0]
                .answer,
            "6");
  // Each problem knows its file and line.
  EXPECT_EQ(read_problems(TaskKind::kCountdown, dir.write("a3.jsonl",
                                                          "{\"target\": 5, \"nums\": [5]}\n"
                                                          "{\"target\": 6, \"nums\": [6]}\n"))[1]
                .source,
            dir.path("a3.jsonl") + ":2");
}

TEST(Dataset, BadLinesNameFileAndLine) {
  TempDir dir;
  auto err = [&](TaskKind k, const std::string& text) {
    const std::string path = dir.write("bad.jsonl", text);
    return error_of([&] { read_problems(k, path); });
  };
  EXPECT_NE(err(TaskKind::kCountdown, "{\"target\": 1, \"nums\": [1]}\n{oops}\n")
                .find("bad.jsonl:2: not valid JSON"),
            std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown,
                "{\"target\": 1, \"nums\": [1]}\n{\"target\": 1, \"nums\": [1]}\n{\"nums\": [1]}")
                .find("bad.jsonl:3: \"target\" is missing"),
            std::string::npos);
  // Blank lines are refused where they are (they were skipped): one may be a lost record.
  EXPECT_NE(err(TaskKind::kCountdown, "\n\n{\"nums\": [1]}").find("bad.jsonl:1: blank line"),
            std::string::npos);
  EXPECT_NE(
      err(TaskKind::kCountdown, "{\"target\": 1, \"nums\": [1]}\n \t\n").find("bad.jsonl:2: blank line"),
      std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "{\"target\": 1.5, \"nums\": [1]}").find("not an integer"),
            std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "{\"target\": 1, \"nums\": []}").find("non-empty list"),
            std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "{\"target\": 1, \"nums\": [1, \"2\"]}").find("nums[]"),
            std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "[1, 2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "").find("no problems"), std::string::npos);
  EXPECT_NE(err(TaskKind::kMultiplication, "{\"a\": 2, \"b\": 3, \"answer\": 7}").find("is not 2 * 3 = 6"),
            std::string::npos);
  EXPECT_NE(err(TaskKind::kCountdown, "{\"target\": 1, \"nums\": [1]}").find("(no error)"),
            std::string::npos);
  EXPECT_THROW(read_problems(TaskKind::kCountdown, dir.path("missing.jsonl")), IoError);
  EXPECT_THROW(read_problems(TaskKind::kCountdown, dir.write("e.jsonl", "{\"target\": 1}")), IoError);
}

TEST(Dataset, LoadProblemSetsFromFilesAndGenerator) {
  TempDir dir;
  DataConfig data;
  data.train_size = 300;
  data.val_size = 50;
  data.countdown.max_number = 12;
  data.countdown.max_target = 40;
  const ProblemSets generated = load_problem_sets(data);
  EXPECT_EQ(generated.train.size(), 300u);
  EXPECT_EQ(generated.val.size(), 50u);
  // Train from a file, validation generated: disjoint from the file's problems.
  write_problems(TaskKind::kCountdown, dir.path("train.jsonl"), generated.val);  // deliberately the val set
  data.train_files = dir.path("train.jsonl");
  const ProblemSets mixed = load_problem_sets(data);
  EXPECT_EQ(mixed.train, generated.val);
  std::set<std::string> train_keys;
  for (const auto& p : mixed.train) train_keys.insert(countdown_key(p));
  ASSERT_EQ(mixed.val.size(), 50u);
  for (const auto& p : mixed.val) EXPECT_FALSE(train_keys.count(countdown_key(p)));
  // Comma-separated files are concatenated.
  write_problems(TaskKind::kCountdown, dir.path("v1.jsonl"), {generated.train[0]});
  write_problems(TaskKind::kCountdown, dir.path("v2.jsonl"), {generated.train[1]});
  data.val_files = dir.path("v1.jsonl") + ", " + dir.path("v2.jsonl");
  const ProblemSets files = load_problem_sets(data);
  ASSERT_EQ(files.val.size(), 2u);
  EXPECT_EQ(files.val[1], generated.train[1]);
  // Multiplication.
  DataConfig mult;
  mult.task = "multiplication";
  mult.train_size = 100;
  mult.val_size = 10;
  const ProblemSets m = load_problem_sets(mult);
  EXPECT_EQ(m.train.size(), 100u);
  EXPECT_FALSE(m.train[0].answer.empty());
}

}  // namespace
}  // namespace tinyzero
