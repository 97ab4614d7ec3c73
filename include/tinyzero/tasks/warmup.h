// Warm-up (SFT) corpus for the tiny Countdown demo: responses that teach the answer format and
// correct arithmetic but not how to solve Countdown. Each response's thinking trace tries random
// well-formed equations over the given numbers (each used once, every step worked out exactly), and
// the answer is one of those attempts picked at random, not the one that hits the target:
//
//   prompt   "Numbers [3, 7, 5], target 26.\nAssistant: <think>"
//   response " (3+7)*5=10*5=50, 7-(5-3)=7-2=5, (3*7)+5=21+5=26 </think> <answer>7-(5-3)</answer>"
//
// (the attempts' values are distinct; the answer here misses the target, as most do).
//
// Reinforcement learning then has something to learn: answer the attempt whose value is the target.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "tinyzero/tasks/task.h"

namespace tinyzero {

class PromptTemplate;

// One random equation over all the numbers of a problem.
struct CountdownAttempt {
  std::string expression;  // e.g. "(3+7)*5": no spaces, parentheses around every inner operation
  std::string worked;      // the expression reduced one operation at a time: "(3+7)*5=10*5=50"
  int64_t value = 0;       // the final value (every intermediate value is a non-negative integer)
};

// Up to `count` random attempts over `nums` (2-6 numbers, each >= 0) with distinct values: numbers
// combined in random pairs with + - * / until one value is left, where - never goes below zero and /
// divides exactly (so the arithmetic stays in non-negative integers). An attempt whose value was
// already tried is redrawn (a search habit, blind to the target: the trace never repeats a result),
// so fewer come back only when fewer distinct values exist. A pure function of (nums, seed, index).
std::vector<CountdownAttempt> random_countdown_attempts(const std::vector<int64_t>& nums, int64_t count,
                                                        uint64_t seed, uint64_t index);

// " a1, a2, ... </think> <answer>E</answer>" with the attempts' worked forms and E the expression of
// attempts[answer]. One line: TinyZero's reward reads only the last line of the response.
std::string countdown_warmup_response(const std::vector<CountdownAttempt>& attempts, size_t answer);

struct WarmupExample {
  std::string prompt, response;
  bool answer_hits = false;  // the picked attempt's value is the target (by chance)
};

// One example per problem, cycling through `problems` until `count` examples are made: prompt from
// `prompt`, `attempts` random attempts and one of them, uniformly at random, as the answer. A pure
// function of its arguments.
std::vector<WarmupExample> countdown_warmup_examples(const std::vector<Problem>& problems, size_t count,
                                                     const PromptTemplate& prompt, int64_t attempts,
                                                     uint64_t seed);

}  // namespace tinyzero
