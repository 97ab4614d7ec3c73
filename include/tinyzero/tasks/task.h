// The task interface the trainer uses: a problem, its prompt, and the rule-based reward of a
// completion; plus the factory from the config and the train/validation problem sets.
//
//   auto task = make_task(config.data, config.reward);
//   ProblemSets sets = load_problem_sets(config.data);
//   std::string prompt = task->prompt(sets.train[i]);
//   RewardResult r = task->score(prompt, decoded_response, sets.train[i]);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tinyzero {

struct DataConfig;
struct RewardConfig;

enum class TaskKind { kCountdown, kMultiplication };

// One problem of either task; the fields of the other task stay empty.
struct Problem {
  // Countdown: reach `target` using each of `nums` exactly once.
  int64_t target = 0;
  std::vector<int64_t> nums;
  // Multiplication: a * b; `answer` is the product in decimal (it may exceed int64).
  int64_t a = 0, b = 0;
  std::string answer;
  // Where it came from, for messages: "train.jsonl:17" for a problem read from a file, empty for a
  // generated one. Not part of the problem's identity (operator==, problem_key).
  std::string source;

  friend bool operator==(const Problem& x, const Problem& y) {
    return x.target == y.target && x.nums == y.nums && x.a == y.a && x.b == y.b && x.answer == y.answer;
  }
};

// A multiplication problem with its product filled in.
Problem multiplication_problem(int64_t a, int64_t b);

struct RewardResult {
  double score = 0;        // 0 (no answer), format score (answer found but wrong), correct score
  bool format_ok = false;  // an answer was found where the rule looks for it
  bool correct = false;    // the answer is right
};

// Reward weights (reward.format_score / reward.correct_score).
struct RewardWeights {
  double format_score = 0.1;
  double correct_score = 1.0;
};

enum class RewardMode { kTinyZero, kStrict };

class Task {
 public:
  virtual ~Task() = default;
  virtual TaskKind kind() const = 0;
  virtual std::string name() const = 0;  // "countdown" | "multiplication"
  // The prompt text (no chat template is applied beyond it, as in TinyZero).
  virtual std::string prompt(const Problem& problem) const = 0;
  // Scores `text` = prompt + response as decoded (special tokens kept), as the configured mode
  // defines it (tinyzero: TinyZero's compute_score on that string): the text after the first
  // "Assistant:" (countdown also: else after "<|im_start|>assistant") is scored; no marker -> 0.
  RewardResult score(std::string_view text, const Problem& problem) const;
  // The same when the prompt and the response are at hand separately: when the joined text holds
  // no marker, as with a custom prompt template, the response is scored as the text after the
  // marker instead of scoring 0.
  RewardResult score(std::string_view prompt, std::string_view response, const Problem& problem) const;
  // Scores the text after the assistant marker.
  virtual RewardResult score_after_marker(std::string_view solution, const Problem& problem) const = 0;
  // A correct answer, e.g. "(25 - 7) * 3" or "56088" (for tests, warm-up data, logs). Countdown
  // problems without a solution give "".
  virtual std::string reference_answer(const Problem& problem) const = 0;
  // One line for logs: "target 46, nums [3, 7, 25]" or "123 * 456".
  virtual std::string describe(const Problem& problem) const = 0;

 protected:
  // Whether "<|im_start|>assistant" also marks the response (TinyZero's countdown: yes;
  // multiplication: no).
  virtual bool im_start_marker() const = 0;
};

// The task of data.task with data.prompt_template and the reward settings. Throws ConfigError for
// an unknown task, mode or template name, or a custom template with an unknown or missing
// placeholder.
std::unique_ptr<Task> make_task(const DataConfig& data, const RewardConfig& reward);

TaskKind parse_task_kind(const std::string& name);      // throws ConfigError
RewardMode parse_reward_mode(const std::string& name);  // throws ConfigError

struct ProblemSets {
  std::vector<Problem> train, val;
};

// Train and validation problems from data.train_files / data.val_files (comma-separated JSONL
// paths), or generated (data.train_size / data.val_size, data.seed, data.countdown.* or
// data.multiplication.*). Generated validation problems are disjoint from the training ones and
// generated training problems from the validation ones. Throws IoError / ConfigError.
ProblemSets load_problem_sets(const DataConfig& data);

// Tokens of a prompt text as the run encodes it. Called from several threads at once.
using TokenCounter = std::function<int64_t(const std::string& text)>;

// Load-time checks of the problems a run will use (src/tasks/problem_check.cpp), so that a bad one is
// refused before training starts, with its file and line, not when it is first sampled (after
// checkpoints were written, and at the same step again on every resume). In train-then-validation,
// file order:
//  - problems read from data.train_files / data.val_files (those with a `source`): Countdown: count of
//    numbers, each number and the target within data.countdown.*, unless data.allow_out_of_range; the
//    target reachable from the numbers (countdown_solvable), unless data.allow_unsolvable.
//    Multiplication: operands of at most data.multiplication.digits_a / digits_b digits, not negative,
//    unless data.allow_out_of_range.
//  - every problem, generated ones too: its prompt (task.prompt()) is 1..data.max_prompt_length tokens
//    by `count_tokens` (skipped when it is empty: no tokenizer at hand).
// Throws ConfigError in one line: the first bad problem's place ("data.train_files: path:N", or the
// generated problem), the value, the config key and the fix, then how many more fail and where.
void check_problem_sets(const ProblemSets& sets, const Task& task, const DataConfig& data,
                        const TokenCounter& count_tokens);

}  // namespace tinyzero
