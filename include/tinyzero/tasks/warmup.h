// Warm-up (SFT) corpus for the tiny Countdown demo: responses that teach the answer format and
// correct arithmetic but not how to solve Countdown. Each response's thinking trace tries a random
// number of random well-formed equations over the given numbers (each used once, every step worked
// out exactly), and the answer is one of those attempts chosen without looking at the target: the
// last one (the demo's choice) or one picked at random. Optionally each attempt's value is compared
// with the target (arithmetic too: <, = or >), which the demo uses:
//
//   prompt   "Numbers [3, 7, 5], target 26.\nAssistant: <think>"
//   response " (3+7)*5=10*5=50>26, 7-(5-3)=7-2=5<26 </think> <answer>7-(5-3)</answer>"
//
// (the attempts' values are distinct; the answer here misses the target, as most do).
//
// Reinforcement learning then has something to learn: with the last attempt as the answer, to stop
// searching when an attempt reaches the target, and to go on searching until one does.
//
// The ordered layout lists the candidates in one fixed order instead (blind to the target): the
// pairs of numbers in prompt order, each combined with + - * / (a group), and each group's value
// with the remaining number, one operation per step; a trace is a random-length prefix of that list:
//
//   response " 3+7=10: 10+5=15<26, 10-5=5<26, 10*5=50>26, 10/5=2<26; 7-3=4: 4+5=9<26, 5-4=1<26,
//              4*5=20<26; 3*7=21: 21+5=26=26 </think> <answer>(3*7)+5</answer>"
//
// (here the 8-candidate prefix happens to end on the hit; its length never depends on the target).
// Over 3 numbers from 1..9 the whole list is 15 to 46 candidates (32 on average); a model that has learnt it
// lists candidates without repeating itself, which random attempts did not give greedy decoding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "tinyzero/tasks/task.h"

namespace tinyzero {

class PromptTemplate;

// One equation over all the numbers of a problem: a random attempt, or a candidate of the ordered layout.
struct CountdownAttempt {
  std::string expression;  // e.g. "(3+7)*5": no spaces, parentheses around every inner operation
  std::string worked;      // the expression reduced one operation at a time: "(3+7)*5=10*5=50";
                           // in the ordered layout the last step only: "10*5=50"
  int64_t value = 0;       // the final value (every intermediate value is a non-negative integer)
  std::string group;       // ordered layout: the first step, "3+7=10", shared by its group; else empty
};

// Up to `count` random attempts over `nums` (2-6 numbers, each >= 0) with distinct values: numbers
// combined in random pairs with + - * / until one value is left, where - never goes below zero and /
// divides exactly (so the arithmetic stays in non-negative integers). An attempt whose value was
// already tried is redrawn (a search habit, blind to the target: the trace never repeats a result),
// so fewer come back only when fewer distinct values exist. A pure function of (nums, seed, index).
std::vector<CountdownAttempt> random_countdown_attempts(const std::vector<int64_t>& nums, int64_t count,
                                                        uint64_t seed, uint64_t index);

// Every candidate over 2 or 3 numbers (each >= 0) in the ordered layout's fixed order, target-blind:
// for 3 numbers, the pairs (1st, 2nd), (1st, 3rd), (2nd, 3rd) in prompt order, each combined by a+b,
// the larger minus the smaller, a*b and the larger over the smaller when exact (a group, skipped when
// an earlier group reads the same), then the group's value r with the remaining number c in the same
// four ways (c-r and c/r when c is the larger). For 2 numbers, the four combinations alone.
std::vector<CountdownAttempt> ordered_countdown_attempts(const std::vector<int64_t>& nums);

// " a1, a2, ... </think> <answer>E</answer>" with the attempts' worked forms and E the expression of
// attempts[answer]; with `compare_to`, each worked form ends with its value's relation to it
// ("=10*5=50>26"), or with `target_first` the target and then the relation ("=10*5=50?26>": the two
// numbers side by side before the relation is written). Attempts with a group are written after
// their group's first step, "; " between groups: " 3+7=10: 10+5=15, 10-5=5; 3*7=21: 21+5=26". One
// line: TinyZero's reward reads only the last line of the response.
std::string countdown_warmup_response(const std::vector<CountdownAttempt>& attempts, size_t answer,
                                      std::optional<int64_t> compare_to = std::nullopt,
                                      bool target_first = false);

struct WarmupExample {
  std::string prompt, response;
  bool answer_hits = false;  // the picked attempt's value is the target (by chance)
};

struct WarmupOptions {
  int64_t min_attempts = 8, max_attempts = 8;  // attempts per trace: uniform in [min, max]
  bool answer_last = false;                    // answer the last attempt; else one picked uniformly
  bool compare = false;                        // compare each attempt's value with the target
  bool ordered = false;                        // a prefix of ordered_countdown_attempts(), not random ones
  // > 0: the number of attempts is geometric instead: from min_attempts on, the trace ends after each
  // attempt with this probability (at most max_attempts, and the list's end), so whether it ends
  // never depends on how far it got, nor on the target.
  double stop_prob = 0;
  bool compare_target_first = false;  // with compare: "50?26>" (target, then relation), not "50>26"
};

// One example per problem, cycling through `problems` until `count` examples are made: prompt from
// `prompt`, random attempts (their number uniform in [min_attempts, max_attempts]; fewer when the
// numbers reach fewer distinct values) or, with `ordered`, that many first candidates of the fixed
// order (fewer when the list is shorter), and one of them as the answer, per `options`. A pure
// function of its arguments.
std::vector<WarmupExample> countdown_warmup_examples(const std::vector<Problem>& problems, size_t count,
                                                     const PromptTemplate& prompt,
                                                     const WarmupOptions& options, uint64_t seed);

}  // namespace tinyzero
