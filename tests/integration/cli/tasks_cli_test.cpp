// End-to-end tests of `tinyzero-train data ...` and `tinyzero-train score ...`: files written, the
// same data as the library's generator, scores written back per line, errors with file:line and exit
// codes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "tinyzero/core/config.h"
#include "tinyzero/tasks/countdown.h"
#include "tinyzero/tasks/dataset.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

struct CliResult {
  int code;
  std::string out, err;
};

class TasksCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("tz_tasks_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path(name)) << text;
    return path(name);
  }
  static std::string read(const std::string& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  CliResult run(const std::string& args) const {
    const std::string cmd =
        std::string(TZ_CLI_PATH) + " " + args + " > " + path("stdout") + " 2> " + path("stderr");
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read(path("stdout")), read(path("stderr"))};
  }
  static std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream ss(text);
    for (std::string l; std::getline(ss, l);)
      if (!l.empty()) out.push_back(l);
    return out;
  }

  fs::path dir_;
};

TEST_F(TasksCli, DataCountdownWritesTheTrainersProblems) {
  const CliResult r = run(
      "data countdown --train 300 --test 40 --seed 3 --max-number 20 --max-target 50 --out " + path("cd"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("wrote 300 train and 40 test problems"), std::string::npos) << r.err;
  const auto train = read_problems(TaskKind::kCountdown, path("cd/train.jsonl"));
  const auto test = read_problems(TaskKind::kCountdown, path("cd/test.jsonl"));
  ASSERT_EQ(train.size(), 300u);
  ASSERT_EQ(test.size(), 40u);
  DataConfig data;
  data.countdown.max_number = 20;
  data.countdown.max_target = 50;
  const auto sets =
      generate_problem_sets(TaskKind::kCountdown, 300, 40, 3, data.countdown, data.multiplication);
  EXPECT_EQ(train, sets.train);
  EXPECT_EQ(test, sets.val);
  std::set<std::string> test_keys;
  for (const auto& p : test) test_keys.insert(countdown_key(p));
  for (const auto& p : train) {
    EXPECT_FALSE(test_keys.count(countdown_key(p)));
    EXPECT_TRUE(countdown_solvable(p.nums, p.target));
  }
  EXPECT_EQ(lines(read(path("cd/train.jsonl")))[0], problem_to_json(TaskKind::kCountdown, train[0]));
}

TEST_F(TasksCli, DataMultiplicationAndErrors) {
  CliResult r = run("data multiplication --train 50 --test 5 --digits-a 2 --digits-b 4 --out " + path("m"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto train = read_problems(TaskKind::kMultiplication, path("m/train.jsonl"));
  ASSERT_EQ(train.size(), 50u);
  for (const auto& p : train) EXPECT_TRUE(p.a < 100 && p.b < 10000);
  r = run("data countdown --train 10 --test 2 --min-number 9 --max-number 3 --out " + path("bad"));
  EXPECT_EQ(r.code, 2);  // ConfigError
  EXPECT_NE(r.err.find("min_number <= max_number"), std::string::npos) << r.err;
  r = run("data countdown --train 10");
  EXPECT_EQ(r.code, 2);  // --out missing
}

TEST_F(TasksCli, CountdownSftComparesTargetFirstOnlyWithCompare) {
  const std::string cfg = std::string(TZ_SOURCE_DIR) + "/configs/tiny/grpo.yaml";
  const std::string base = "data countdown-sft --config " + cfg +
                           " --set data.val_size=20 --problems 30 --order fixed"
                           " --attempts 40 --min-attempts 1 --stop-prob 0.2 --answer last ";
  CliResult r = run(base + "--compare --compare-layout target-first --out " + path("tf.jsonl"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto tf = lines(read(path("tf.jsonl")));
  ASSERT_EQ(tf.size(), 30u);
  size_t compared = 0;
  const std::regex relation_first("[<=>][0-9]+(,|;| </think>)");
  const std::regex target_first("=[0-9]+\\?[0-9]+[<=>](,|;| </think>)");
  for (const auto& l : tf) {
    const std::string response = nlohmann::json::parse(l).at("response").get<std::string>();
    EXPECT_FALSE(std::regex_search(response, relation_first)) << response;
    compared += std::regex_search(response, target_first);
  }
  EXPECT_EQ(compared, tf.size());
  r = run(base + "--compare-layout target-first --out " + path("none.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("add --compare"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(path("none.jsonl")));
}

TEST_F(TasksCli, ScoreCountdownWritesEachLineBack) {
  const std::string prompt = countdown_base_prompt([] {
    Problem p;
    p.target = 46, p.nums = {3, 7, 25};
    return p;
  }());
  auto line = [&](const std::string& response) {
    return nlohmann::json{{"text", prompt + response}, {"target", 46}, {"nums", {3, 7, 25}}, {"id", 1}}
        .dump();
  };
  const std::string input = write(
      "in.jsonl",
      line(" </think> <answer>25 + 3 * 7</answer>") + "\n" + line(" </think> <answer>25 - 3 * 7</answer>") +
          "\n\n" + line(" </think> no answer") + "\n" +
          R"({"text": "Assistant: <answer>1+2</answer>", "ground_truth": {"target": 3, "numbers": [2, 1]}})" +
          "\n");
  CliResult r = run("score --task countdown --input " + input);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 4u);
  const double want[] = {1.0, 0.1, 0.0, 1.0};
  for (size_t i = 0; i < out.size(); ++i) {
    const auto j = nlohmann::json::parse(out[i]);
    EXPECT_EQ(j["score"].get<double>(), want[i]) << out[i];
    EXPECT_EQ(j["format_ok"].get<bool>(), want[i] > 0);
    EXPECT_EQ(j["correct"].get<bool>(), want[i] == 1.0);
  }
  EXPECT_EQ(nlohmann::json::parse(out[0])["id"], 1);  // other fields are kept
  EXPECT_NE(r.err.find("scored 4 completions"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("correct 50.00%"), std::string::npos) << r.err;
  // --output and the strict mode: the answer may span lines there.
  write("strict.jsonl",
        nlohmann::json{
            {"text", "Assistant: <answer>\n25 + 3 * 7\n</answer>"}, {"target", 46}, {"nums", {3, 7, 25}}}
            .dump());
  r = run("score --task countdown --mode strict --input " + path("strict.jsonl") + " --output " +
          path("s.out"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(lines(read(path("s.out")))[0])["score"].get<double>(), 1.0);
}

TEST_F(TasksCli, ScoreMultiplicationAndBadLines) {
  const std::string input =
      write("m.jsonl", R"({"text": "x Assistant: <answer>56088</answer>", "answer": 56088})"
                       "\n"
                       R"({"text": "x Assistant: <answer>56088</answer>", "a": 123, "b": 457})"
                       "\n"
                       R"({"text": "x Assistant: <answer>999999999999999998000000000000000001</answer>", )"
                       R"("answer": "999999999999999998000000000000000001"})"
                       "\n");
  CliResult r = run("score --task multiplication --input " + input);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(nlohmann::json::parse(out[0])["score"].get<double>(), 1.0);
  EXPECT_EQ(nlohmann::json::parse(out[1])["score"].get<double>(), 0.1);
  EXPECT_EQ(nlohmann::json::parse(out[2])["score"].get<double>(), 1.0);
  // A bad line names the file and line; runtime error -> exit 1.
  const std::string bad = write("bad.jsonl", R"({"text": "a", "target": 1, "nums": [1]})"
                                             "\n"
                                             R"({"text": "a", "target": 1})"
                                             "\n");
  r = run("score --task countdown --input " + bad);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("bad.jsonl:2"), std::string::npos) << r.err;
  r = run("score --task countdown --input " + write("nojson.jsonl", "{oops\n"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("nojson.jsonl:1: not valid JSON"), std::string::npos) << r.err;
  r = run("score --task sudoku --input " + bad);
  EXPECT_EQ(r.code, 2);
  r = run("score --task countdown --input " + path("missing.jsonl"));
  EXPECT_EQ(r.code, 1);
}

}  // namespace
}  // namespace tinyzero
