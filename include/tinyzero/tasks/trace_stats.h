// How good are a tiny-demo model's thinking traces? Every attempt of every response (the warm-up
// layouts of countdown_trace.h) is checked:
//
//   arithmetic right   every "=" step of the attempt holds
//   numbers right      the attempt uses exactly the given numbers
//   comparisons right  the "<", "=" or ">" after the value is true, and the target was copied right
//   true hit           some attempt is right, uses the numbers and reaches the target
//   answer right       the last <answer> does (what TinyZero's reward pays 1.0 for)
//
// per operation, how often a step whose operands are single digits ("small") or not ("big") holds;
// for the fixed order, the share of sound attempts (every step, the numbers and the group's own step
// right) by the group they are in; and why each wrong answer is wrong, judged at the last comparison
// before </think> (TraceOutcome).
//
// `tinyzero-train trace-stats` prints these for generated responses or a validation's generations;
// with --first-hit, where the whole fixed-order list first reaches the target (first_hit()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tinyzero/tasks/task.h"

namespace tinyzero {

// Why a response's answer is wrong (or that it is right).
enum class TraceOutcome {
  kRight,             // the answer is right
  kRanOut,            // no <answer> (the response reached the length limit)
  kStoppedAtAMiss,    // the last comparison was "<" or ">"
  kFalseEqualsNear,   // it wrote "=" after a value within 2 of the target ("16+1=17=16")
  kFalseEqualsFar,    // it wrote "=" after a value further from the target
  kFalseEqualsArith,  // the value before "=" is the target but its step is wrong ("4*4=12=12" for 12)
  kWrongNumbers,      // a true hit whose equation or answer does not use the given numbers once each
};

// "right", "ran out", "stopped at a miss", "false \"=\": near", ...
std::string trace_outcome_name(TraceOutcome outcome);

// The outcome of `response` to `problem`, whose answer is right or not (answer_right()).
TraceOutcome trace_outcome(const Problem& problem, std::string_view response, bool right);

// Whether the last <answer>...</answer> of the response uses the numbers once each and reaches the
// target (abs difference below 1e-9, Python's arithmetic).
bool answer_right(const Problem& problem, std::string_view response);

class TraceStats {
 public:
  // Checks one response to `problem`.
  void add(const Problem& problem, std::string_view response);
  size_t problems() const { return problems_; }
  // The report, one line per statistic, as the module comment lists them.
  std::string report() const;

 private:
  size_t problems_ = 0, attempts_ = 0, arithmetic_ = 0, numbers_ = 0, hits_ = 0, answers_ = 0;
  size_t comparisons_ = 0, comparisons_right_ = 0, targets_right_ = 0;
  std::map<std::pair<char, std::string>, std::pair<size_t, size_t>> steps_;  // (op, size) -> (steps, wrong)
  std::map<int, std::pair<size_t, size_t>> groups_;        // group (10 = 10 or later) -> (attempts, sound)
  std::vector<std::pair<TraceOutcome, size_t>> outcomes_;  // in order of first appearance
};

struct FirstHit {
  int group = 0;    // the fixed-order group (";"-separated chunk, from 1) of the first attempt that hits
  std::string cut;  // the response had it stopped and answered there: "<trace> </think> <answer>E</answer>"
};

// Where a whole fixed-order list with comparisons (`data countdown-sft --order fixed --compare
// --stop-prob 0 --attempts 1000`) first reaches the target: its first attempt compared with "=".
// nullopt when none does.
std::optional<FirstHit> first_hit(std::string_view response);

// "N problems; first hit by group (cumulative): 1 12.3% 2 40.1% ..." and, given the token lengths of
// the cuts, "response tokens to the first hit: median M; within 128: x%, ...".
std::string first_hit_report(const std::vector<int>& groups, const std::vector<size_t>& cut_tokens = {});

}  // namespace tinyzero
