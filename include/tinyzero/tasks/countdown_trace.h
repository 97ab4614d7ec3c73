// The thinking traces of the tiny demo's warm-up layouts (tasks/warmup.h), read back from what a model
// wrote, so that its attempts can be checked one by one (trace_stats.h):
//
//   random attempts   " (3+7)*5=10*5=50>26, 7-(5-3)=7-2=5<26 </think> <answer>7-(5-3)</answer>"
//   fixed order       " 3+7=10: 10+5=15<26, 10*5=50>26; 3*7=21: 21+5=26=26 </think> <answer>(3*7)+5</answer>"
//
// Attempts are read as the --compare layout writes them: the last "=N" (or "<N", ">N", "?N>") of an
// attempt is its comparison with the target. Digits are ASCII here; arithmetic is evaluated with
// python_eval (Python's semantics, bounded), never by an interpreter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tinyzero/tasks/python_eval.h"

namespace tinyzero {

// The thinking part of a response: what comes before the first "</think>" (all of it when none).
std::string_view thinking_part(std::string_view response);

struct TraceAttempt {
  std::string text;   // stripped, e.g. "10*5=50>26"
  std::string group;  // fixed order: the group's first step, e.g. "3+7=10"; random attempts: ""
  int position = 0;   // which ";"-separated chunk of the trace it is in, from 1 (a group of the fixed order)
};

// The attempts of a thinking trace: it is cut at ";" into chunks; a chunk that starts with a step
// and a colon ("3+7=10: ...") is a group of the fixed order; each chunk's attempts are its non-blank
// ","-separated pieces.
std::vector<TraceAttempt> trace_attempts(std::string_view think);

struct TraceComparison {
  char relation = 0;   // '<', '=' or '>'
  std::string target;  // the number compared with, as written (ASCII digits)
  size_t start = 0;    // where the comparison starts in the attempt ("50>26": at '>')
};

// The comparison an attempt ends with: "...=50>26" (relation first) or "...=50?26>" (target first);
// nullopt without one.
std::optional<TraceComparison> trace_comparison(std::string_view attempt);

// A fixed-order step written on its group's value, with the group put back: "10+5" in group "3+7=10"
// -> "(3+7)+5", "5-10" -> "5-(3+7)"; any other step unchanged.
std::string expand_group_step(std::string_view step, std::string_view group);

// The value of a step, an answer or a number as written: only digits, + - * / ( ) and spaces,
// evaluated with Python's semantics; nullopt where Python would raise (or the text has anything
// else).
std::optional<PyNumber> trace_value(std::string_view text);

struct TraceLastEquals {
  std::string step;     // the step before the value, e.g. "16+1"
  std::string written;  // the value written after it, e.g. "17" (ASCII digits)
  char relation = 0;    // the comparison after that value
};

// The last "STEP=VALUE" followed by a comparison in `think` (STEP made of digits and + - * /): where
// the trace decided whether it had hit the target. nullopt when there is none.
std::optional<TraceLastEquals> last_compared_step(std::string_view think);

}  // namespace tinyzero
