// Load-time checks of problem sets: check_problem_sets() of task.h.
#include "tinyzero/tasks/task.h"

#include <algorithm>
#include <exception>
#include <optional>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/tasks/countdown.h"
#include "tinyzero/tasks/multiplication.h"
#include "tinyzero/tasks/pytext.h"

namespace tinyzero {
namespace {

constexpr int64_t kSolverMaxNumbers = 6;  // countdown_solvable's limit (and the generator's)

enum class IssueKind { kOutOfRange, kUnsolvable, kPromptTooLong, kPromptEmpty };

struct Issue {
  size_t index = 0;  // position in train then val
  IssueKind kind{};
  std::string what;  // "target 150 is above data.countdown.max_target = 100"
  std::string fix;   // "raise data.countdown.max_target to 150"
  int64_t tokens = 0;
};

std::string str(int64_t v) { return std::to_string(v); }

// `value` against [lo, hi] of config keys `lo_key` / `hi_key`; `floor` / `ceiling`: the most the keys
// may be widened to (their own checks), beyond which only removing or allowing the problem helps.
std::optional<std::pair<std::string, std::string>> outside(const std::string& name, int64_t value,
                                                           const std::string& lo_key, int64_t lo,
                                                           const std::string& hi_key, int64_t hi,
                                                           int64_t floor, int64_t ceiling) {
  if (value >= lo && value <= hi) return std::nullopt;
  const bool above = value > hi;
  std::string what =
      name + " is " + (above ? "above " + hi_key + " = " + str(hi) : "below " + lo_key + " = " + str(lo));
  std::string fix;
  if (above && value <= ceiling) fix = "raise " + hi_key + " to " + str(value) + ", ";
  if (!above && value >= floor) fix = "lower " + lo_key + " to " + str(value) + ", ";
  return std::make_pair(what, fix);
}

std::optional<Issue> countdown_issue(const Problem& p, const DataConfig& data) {
  const CountdownDataConfig& c = data.countdown;
  const std::string nums = pytext::python_list(p.nums);
  if (!data.allow_out_of_range) {
    std::optional<std::pair<std::string, std::string>> bad =
        outside("count " + str(static_cast<int64_t>(p.nums.size())) + " of numbers " + nums,
                static_cast<int64_t>(p.nums.size()), "data.countdown.min_numbers", c.min_numbers,
                "data.countdown.max_numbers", c.max_numbers, 2, kSolverMaxNumbers);
    for (size_t i = 0; !bad && i < p.nums.size(); ++i)
      bad = outside("number " + str(p.nums[i]) + " of " + nums, p.nums[i], "data.countdown.min_number",
                    c.min_number, "data.countdown.max_number", c.max_number, 1, 1000000);
    if (!bad)
      bad = outside("target " + str(p.target), p.target, "data.countdown.min_target", c.min_target,
                    "data.countdown.max_target", c.max_target, 0, INT64_MAX);
    if (bad)
      return Issue{
          0, IssueKind::kOutOfRange, bad->first,
          bad->second + "remove the line, or set data.allow_out_of_range=true to keep such problems"};
  }
  // More numbers than the solver takes (only when out-of-range problems are allowed): not decidable here.
  if (!data.allow_unsolvable && static_cast<int64_t>(p.nums.size()) <= kSolverMaxNumbers &&
      !countdown_solvable(p.nums, p.target))
    return Issue{
        0, IssueKind::kUnsolvable,
        "target " + str(p.target) + " cannot be reached from " + nums +
            " with + - * / and each number used once (no response can score correct)",
        "fix or remove the line, or set data.allow_unsolvable=true to train on such problems anyway"};
  return std::nullopt;
}

std::optional<Issue> multiplication_issue(const Problem& p, const DataConfig& data) {
  if (data.allow_out_of_range) return std::nullopt;
  const MultiplicationDataConfig& c = data.multiplication;
  for (const auto& [name, value, key, digits] :
       {std::make_tuple("a", p.a, "data.multiplication.digits_a", c.digits_a),
        std::make_tuple("b", p.b, "data.multiplication.digits_b", c.digits_b)}) {
    int64_t limit = 1;  // 10^digits, the first value with one digit more
    for (int64_t d = 0; d < digits; ++d) limit *= 10;
    if (value >= 0 && value < limit) continue;
    const int64_t needed = value < 0 ? 0 : static_cast<int64_t>(str(value).size());
    std::string what = std::string("operand ") + name + " = " + str(value) +
                       (value < 0 ? " is negative" : " has " + str(needed) + " digits") + ", outside " + key +
                       " = " + str(digits) + " (0.." + str(limit - 1) + ")";
    std::string fix =
        value >= 0 && needed <= 18 ? std::string("raise ") + key + " to " + str(needed) + ", " : "";
    return Issue{0, IssueKind::kOutOfRange, what,
                 fix + "remove the line, or set data.allow_out_of_range=true to keep such problems"};
  }
  return std::nullopt;
}

// The first issue of problem `p` (`from_file`: range and solvability apply too).
std::optional<Issue> problem_issue(const Problem& p, bool from_file, const Task& task, const DataConfig& data,
                                   const TokenCounter& count_tokens) {
  if (from_file) {
    std::optional<Issue> issue =
        task.kind() == TaskKind::kCountdown ? countdown_issue(p, data) : multiplication_issue(p, data);
    if (issue) return issue;
  }
  if (!count_tokens) return std::nullopt;
  const int64_t tokens = count_tokens(task.prompt(p));
  if (tokens == 0)
    return Issue{0, IssueKind::kPromptEmpty, "the prompt encodes to no token", "check data.prompt_template"};
  if (tokens > data.max_prompt_length)
    return Issue{0, IssueKind::kPromptTooLong,
                 "the prompt (data.prompt_template) is " + str(tokens) +
                     " tokens, more than data.max_prompt_length = " + str(data.max_prompt_length),
                 "", tokens};
  return std::nullopt;
}

}  // namespace

void check_problem_sets(const ProblemSets& sets, const Task& task, const DataConfig& data,
                        const TokenCounter& count_tokens) {
  const size_t n_train = sets.train.size(), total = n_train + sets.val.size();
  auto problem_at = [&](size_t i) -> const Problem& {
    return i < n_train ? sets.train[i] : sets.val[i - n_train];
  };

  // Tokenizing is most of the cost (~10 MB/s per thread): TinyZero's 327,680 prompts take seconds.
  const size_t hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t n_threads = std::min({hw, size_t{16}, total / 4096 + 1});
  std::vector<std::vector<Issue>> found(n_threads);
  std::vector<std::exception_ptr> errors(n_threads);
  auto work = [&](size_t t) {
    try {
      for (size_t i = total * t / n_threads; i < total * (t + 1) / n_threads; ++i) {
        const Problem& p = problem_at(i);
        if (std::optional<Issue> issue = problem_issue(p, !p.source.empty(), task, data, count_tokens)) {
          issue->index = i;
          found[t].push_back(std::move(*issue));
        }
      }
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n_threads; ++t) threads.emplace_back(work, t);
  work(0);
  for (auto& th : threads) th.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);

  std::vector<Issue> issues;
  for (auto& part : found) issues.insert(issues.end(), part.begin(), part.end());  // threads in index order
  if (issues.empty()) return;

  // "train.jsonl:17", or "generated training problem 3" (+ " (target 46, nums [3, 7, 25])").
  auto place = [&](size_t i, bool describe) {
    const Problem& p = problem_at(i);
    if (!p.source.empty()) return p.source;
    const bool train = i < n_train;
    return std::string("generated ") + (train ? "training" : "validation") + " problem " +
           str(static_cast<int64_t>(train ? i : i - n_train)) +
           (describe ? " (" + task.describe(p) + ")" : "");
  };
  const Issue& first = issues.front();
  const Problem& fp = problem_at(first.index);
  std::string msg =
      fp.source.empty()
          ? place(first.index, true)
          : std::string(first.index < n_train ? "data.train_files" : "data.val_files") + ": " + fp.source;
  msg += ": " + first.what + "; ";
  if (first.kind == IssueKind::kPromptTooLong) {
    int64_t longest = 0;
    for (const Issue& issue : issues)
      if (issue.kind == IssueKind::kPromptTooLong) longest = std::max(longest, issue.tokens);
    msg += "raise data.max_prompt_length to at least " + str(longest) + " or shorten data.prompt_template" +
           (fp.source.empty() ? "" : ", or remove the line");
  } else {
    msg += first.fix;
  }
  if (issues.size() > 1) {
    msg += " (" + str(static_cast<int64_t>(issues.size() - 1)) + " more problem" +
           (issues.size() > 2 ? "s fail" : " fails") + " the load checks: ";
    const size_t shown = std::min<size_t>(issues.size(), 6);
    for (size_t k = 1; k < shown; ++k) msg += (k > 1 ? ", " : "") + place(issues[k].index, false);
    if (issues.size() > shown) msg += ", ...";
    msg += ")";
  }
  throw ConfigError(msg);
}

}  // namespace tinyzero
