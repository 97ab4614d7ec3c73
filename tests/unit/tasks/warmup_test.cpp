// Tests of the warm-up corpus (tasks/warmup.h): every worked step's arithmetic is checked with the
// project's Python-semantics evaluator, every attempt uses each given number exactly once, answers
// are one of the attempts picked without looking at the target, and the TinyZero reward reads them.
#include "tinyzero/tasks/warmup.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <regex>
#include <set>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/tasks/countdown.h"
#include "tinyzero/tasks/prompt.h"
#include "tinyzero/tasks/python_eval.h"

namespace tinyzero {
namespace {

// The tiny demo's prompt (configs/tiny/grpo.yaml).
PromptTemplate demo_prompt() {
  return PromptTemplate(TaskKind::kCountdown, "Numbers {numbers}, target {target}.\nAssistant: <think>");
}

std::vector<int64_t> integers_in(const std::string& text) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < text.size();) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    out.push_back(std::stoll(text.substr(i, j - i)));
    i = j;
  }
  return out;
}

std::vector<std::string> split(const std::string& text, const std::string& sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t at; (at = text.find(sep, start)) != std::string::npos; start = at + sep.size())
    out.push_back(text.substr(start, at - start));
  out.push_back(text.substr(start));
  return out;
}

// Checks one attempt: "E=S1=...=V" where every part evaluates (Python semantics) to the same integer
// V, E is the expression, V the value, and E's integers sorted are `nums` sorted. Each step differs
// from the one before by exactly one operation (one fewer operator).
void check_attempt(const CountdownAttempt& a, std::vector<int64_t> nums) {
  SCOPED_TRACE(a.worked);
  const auto parts = split(a.worked, "=");
  ASSERT_EQ(parts.front(), a.expression);
  ASSERT_EQ(parts.back(), std::to_string(a.value));
  EXPECT_EQ(parts.size(), nums.size()) << "one step per operation";
  for (size_t k = 0; k < parts.size(); ++k) {
    auto v = python_eval(parts[k]);
    ASSERT_TRUE(v.has_value()) << parts[k];
    // An int, or a float from true division ("/") that python_close() finds equal to the value.
    if (parts[k].find('/') == std::string::npos) {
      EXPECT_EQ(v->kind, PyNumber::Kind::kInt) << parts[k];
    }
    EXPECT_TRUE(python_close(*v, a.value)) << parts[k] << " = " << python_repr(*v) << ", not " << a.value;
    const auto ops =
        std::count_if(parts[k].begin(), parts[k].end(), [](char c) { return std::strchr("+-*/", c); });
    EXPECT_EQ(static_cast<size_t>(ops), nums.size() - 1 - k) << parts[k];
  }
  auto used = integers_in(a.expression);
  std::sort(used.begin(), used.end());
  std::sort(nums.begin(), nums.end());
  EXPECT_EQ(used, nums) << "each number exactly once";
  EXPECT_EQ(a.expression.find(' '), std::string::npos);
}

TEST(Warmup, EveryTraceHasCorrectArithmeticAndUsesEachNumberOnce) {
  uint64_t index = 0;
  for (int size : {2, 3, 4, 5, 6}) {
    for (int trial = 0; trial < 60; ++trial, ++index) {
      std::vector<int64_t> nums;
      for (int k = 0; k < size; ++k) nums.push_back(static_cast<int64_t>((index * 7 + k * 13 + trial) % 25));
      const auto attempts = random_countdown_attempts(nums, 8, 5, index);
      if (size >= 4) {
        EXPECT_EQ(attempts.size(), 8u);
      }
      EXPECT_GE(attempts.size(), 1u);
      std::set<int64_t> distinct;
      for (const auto& a : attempts) {
        check_attempt(a, nums);
        distinct.insert(a.value);
      }
      EXPECT_EQ(distinct.size(), attempts.size()) << "attempts have distinct values";
    }
  }
}

TEST(Warmup, TwoNumbersGiveOneAttemptPerReachableNonNegativeIntegerValue) {
  // 2 and 3: 2+3 or 3+2 = 5, 3-2 = 1, 2*3 or 3*2 = 6 (2-3 is negative, 3/2 and 2/3 are not integers).
  const std::map<std::string, std::string> valid = {
      {"2+3", "2+3=5"}, {"3+2", "3+2=5"}, {"3-2", "3-2=1"}, {"2*3", "2*3=6"}, {"3*2", "3*2=6"}};
  const auto attempts = random_countdown_attempts({2, 3}, 50, 1, 0);
  std::set<int64_t> values;
  for (const auto& a : attempts) {
    ASSERT_TRUE(valid.count(a.expression)) << a.expression;
    EXPECT_EQ(valid.at(a.expression), a.worked);
    values.insert(a.value);
  }
  EXPECT_EQ(attempts.size(), 3u);
  EXPECT_EQ(values, (std::set<int64_t>{1, 5, 6}));
  // 6 and 3: the divisions 6/3 = 2 is exact, 3/6 is not.
  std::set<std::string> div;
  for (const auto& a : random_countdown_attempts({6, 3}, 50, 1, 0)) div.insert(a.worked);
  EXPECT_TRUE(div.count("6/3=2"));
  EXPECT_FALSE(div.count("3/6=0"));
}

TEST(Warmup, InnerOperationsAreParenthesisedAndReducedLeftFirst) {
  // Over many draws of [3, 7, 5], find "(3+7)*5" and check its worked form by hand.
  bool seen = false;
  for (uint64_t i = 0; i < 200 && !seen; ++i)
    for (const auto& a : random_countdown_attempts({3, 7, 5}, 8, 2, i))
      if (a.expression == "(3+7)*5") {
        EXPECT_EQ(a.worked, "(3+7)*5=10*5=50");
        EXPECT_EQ(a.value, 50);
        seen = true;
      }
  EXPECT_TRUE(seen);
  // Four numbers: two inner operations, the left one first.
  for (uint64_t i = 0; i < 400; ++i)
    for (const auto& a : random_countdown_attempts({2, 3, 4, 5}, 8, 3, i))
      if (a.expression == "(2+3)*(5-4)") {
        EXPECT_EQ(a.worked, "(2+3)*(5-4)=5*(5-4)=5*1=5");
      }
}

TEST(Warmup, DeterministicInSeedAndIndex) {
  const auto a = random_countdown_attempts({4, 9, 2}, 8, 7, 3);
  const auto b = random_countdown_attempts({4, 9, 2}, 8, 7, 3);
  const auto c = random_countdown_attempts({4, 9, 2}, 8, 7, 4);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].worked, b[i].worked);
  bool differs = false;
  for (size_t i = 0; i < a.size(); ++i) differs |= a[i].worked != c[i].worked;
  EXPECT_TRUE(differs);
}

TEST(Warmup, RejectsImpossibleNumberLists) {
  EXPECT_THROW(random_countdown_attempts({4}, 8, 0, 0), ConfigError);
  EXPECT_THROW(random_countdown_attempts({1, 2, 3, 4, 5, 6, 7}, 8, 0, 0), ConfigError);
  EXPECT_THROW(random_countdown_attempts({1, -2, 3}, 8, 0, 0), ConfigError);
}

TEST(Warmup, ResponseIsOneLineThatTheTinyZeroRewardReads) {
  Problem p;
  p.nums = {3, 7, 5};
  p.target = 26;
  const std::vector<CountdownAttempt> attempts = {{"(3+7)*5", "(3+7)*5=10*5=50", 50, ""},
                                                  {"(3*7)+5", "(3*7)+5=21+5=26", 26, ""}};
  const std::string wrong = countdown_warmup_response(attempts, 0);
  EXPECT_EQ(wrong, " (3+7)*5=10*5=50, (3*7)+5=21+5=26 </think> <answer>(3+7)*5</answer>");
  const std::string right = countdown_warmup_response(attempts, 1);
  const RewardWeights w;
  auto r0 = score_countdown_tinyzero(wrong, p, w);
  EXPECT_TRUE(r0.format_ok);
  EXPECT_FALSE(r0.correct);
  EXPECT_DOUBLE_EQ(r0.score, 0.1);
  auto r1 = score_countdown_tinyzero(right, p, w);
  EXPECT_TRUE(r1.correct);
  EXPECT_DOUBLE_EQ(r1.score, 1.0);
  EXPECT_THROW(countdown_warmup_response(attempts, 2), Error);
}

TEST(Warmup, ExamplesAnswerOneOfTheirAttemptsPickedWithoutLookingAtTheTarget) {
  std::vector<Problem> problems = generate_countdown(300, 4, 3, CountdownOptions{3, 3, 1, 10, 1, 100});
  const PromptTemplate prompt = demo_prompt();
  const size_t count = 1200;
  const auto examples = countdown_warmup_examples(problems, count, prompt, WarmupOptions{6, 6, false}, 9);
  ASSERT_EQ(examples.size(), count);
  std::vector<int> picked_at(6, 0);
  size_t hits = 0, full = 0;
  double expected_hits = 0;  // sum over examples of (hitting attempts / attempts)
  for (size_t i = 0; i < count; ++i) {
    const Problem& p = problems[i % problems.size()];
    const WarmupExample& e = examples[i];
    EXPECT_EQ(e.prompt, prompt.render(p));
    EXPECT_EQ(e.response.find('\n'), std::string::npos);
    const size_t think_end = e.response.find(" </think> <answer>");
    ASSERT_NE(think_end, std::string::npos);
    const auto tries = split(e.response.substr(1, think_end - 1), ", ");
    ASSERT_GE(tries.size(), 1u);
    ASSERT_LE(tries.size(), 6u);  // fewer when the numbers reach fewer than 6 distinct values
    const std::string answer = e.response.substr(
        think_end + 18, e.response.size() - (think_end + 18) - std::string("</answer>").size());
    int at = -1;
    size_t hitting = 0;
    for (size_t k = 0; k < tries.size(); ++k) {
      const auto parts = split(tries[k], "=");
      CountdownAttempt a{parts.front(), tries[k], std::stoll(parts.back()), ""};
      check_attempt(a, p.nums);
      hitting += a.value == p.target;
      if (a.expression == answer) at = static_cast<int>(k);
    }
    ASSERT_GE(at, 0) << "the answer " << answer << " is one of the attempts";
    if (tries.size() == 6) ++picked_at[static_cast<size_t>(at)], ++full;
    const bool hit = std::stoll(split(tries[static_cast<size_t>(at)], "=").back()) == p.target;
    EXPECT_EQ(e.answer_hits, hit);
    EXPECT_EQ(score_countdown_tinyzero(e.response, p, RewardWeights{}).correct, hit);
    hits += hit;
    expected_hits += static_cast<double>(hitting) / static_cast<double>(tries.size());
  }
  // Picks are uniform over positions: of the `full` examples with 6 attempts each position gets
  // full / 6, within 4 standard deviations sqrt(full * 1/6 * 5/6).
  ASSERT_GT(full, count / 2);
  for (int n : picked_at) EXPECT_NEAR(n, full / 6.0, 4 * std::sqrt(full * 5.0 / 36));
  // Not chosen for hitting: answers hit the target as often as a uniformly picked attempt would,
  // q = mean over examples of (hitting attempts / attempts); |h - q| within 4 standard errors.
  const double h = static_cast<double>(hits) / count, q = expected_hits / count;
  EXPECT_NEAR(h, q, 4 * std::sqrt(q * (1 - q) / count)) << "answers hit " << h << ", attempts " << q;
  EXPECT_LT(h, 0.2);
}

TEST(Warmup, LastAnswerOptionAnswersTheLastOfAVaryingNumberOfAttempts) {
  std::vector<Problem> problems = generate_countdown(200, 5, 3, CountdownOptions{3, 3, 1, 9, 1, 50});
  const PromptTemplate prompt = demo_prompt();
  const size_t count = 1400;
  const auto examples = countdown_warmup_examples(problems, count, prompt, WarmupOptions{1, 7, true}, 4);
  std::vector<int> lengths(8, 0);
  size_t hits = 0;
  for (size_t i = 0; i < count; ++i) {
    const Problem& p = problems[i % problems.size()];
    const WarmupExample& e = examples[i];
    const size_t think_end = e.response.find(" </think> <answer>");
    ASSERT_NE(think_end, std::string::npos);
    const auto tries = split(e.response.substr(1, think_end - 1), ", ");
    ASSERT_GE(tries.size(), 1u);
    ASSERT_LE(tries.size(), 7u);
    ++lengths[tries.size()];
    const auto parts = split(tries.back(), "=");
    check_attempt(CountdownAttempt{parts.front(), tries.back(), std::stoll(parts.back()), ""}, p.nums);
    EXPECT_EQ(e.response.substr(think_end + 18), parts.front() + "</answer>");
    EXPECT_EQ(e.answer_hits, std::stoll(parts.back()) == p.target);
    hits += e.answer_hits;
  }
  // The number of attempts is uniform in 1..7 (numbers 1-9 reach at least 7 distinct values in almost
  // every problem): each count within 4 standard deviations of count / 7.
  for (size_t k = 1; k <= 7; ++k)
    EXPECT_NEAR(lengths[k], count / 7.0, 4 * std::sqrt(count * 6.0 / 49)) << k << " attempts";
  // A random attempt hits a solvable target now and then (the corpus never looks at it).
  EXPECT_GT(hits, 0u);
  EXPECT_LT(static_cast<double>(hits) / count, 0.2);
}

TEST(Warmup, CompareEndsEachAttemptWithItsValuesRelationToTheTarget) {
  const std::vector<CountdownAttempt> attempts = {{"(3+7)*5", "(3+7)*5=10*5=50", 50, ""},
                                                  {"7-(5-3)", "7-(5-3)=7-2=5", 5, ""},
                                                  {"(3*7)+5", "(3*7)+5=21+5=26", 26, ""}};
  EXPECT_EQ(countdown_warmup_response(attempts, 2, 26),
            " (3+7)*5=10*5=50>26, 7-(5-3)=7-2=5<26, (3*7)+5=21+5=26=26 </think> <answer>(3*7)+5</answer>");
  // In a corpus, the comparisons are with each problem's own target, and the trace is otherwise the
  // same as without them.
  std::vector<Problem> problems = generate_countdown(50, 5, 3, CountdownOptions{3, 3, 1, 9, 1, 50});
  const PromptTemplate prompt(TaskKind::kCountdown, "{numbers} {target}");
  const auto plain = countdown_warmup_examples(problems, 50, prompt, WarmupOptions{1, 6, true, false}, 2);
  const auto compared = countdown_warmup_examples(problems, 50, prompt, WarmupOptions{1, 6, true, true}, 2);
  for (size_t i = 0; i < problems.size(); ++i) {
    const std::string t = std::to_string(problems[i].target);
    std::string stripped =
        std::regex_replace(compared[i].response, std::regex("[<=>]" + t + "(,| </think>)"), "$1");
    EXPECT_EQ(stripped, plain[i].response) << compared[i].response;
    EXPECT_EQ(compared[i].answer_hits, plain[i].answer_hits);
  }
}

TEST(Warmup, TargetFirstComparisonsWriteTheTargetBeforeTheRelation) {
  const std::vector<CountdownAttempt> attempts = {{"(3+7)*5", "(3+7)*5=10*5=50", 50, ""},
                                                  {"7-(5-3)", "7-(5-3)=7-2=5", 5, ""},
                                                  {"(3*7)+5", "(3*7)+5=21+5=26", 26, ""}};
  EXPECT_EQ(countdown_warmup_response(attempts, 2, 26, true),
            " (3+7)*5=10*5=50?26>, 7-(5-3)=7-2=5?26<, (3*7)+5=21+5=26?26= </think> <answer>(3*7)+5</answer>");
  // In a corpus, the same traces as the relation-first layout with each "R" + target swapped for
  // "?" + target + "R".
  std::vector<Problem> problems = generate_countdown(50, 5, 3, CountdownOptions{3, 3, 1, 9, 1, 50});
  const PromptTemplate prompt(TaskKind::kCountdown, "{numbers} {target}");
  WarmupOptions options{1, 40, true, true, true, 0.2};
  const auto relation_first = countdown_warmup_examples(problems, 50, prompt, options, 2);
  options.compare_target_first = true;
  const auto target_first = countdown_warmup_examples(problems, 50, prompt, options, 2);
  size_t equal = 0;
  for (size_t i = 0; i < problems.size(); ++i) {
    const std::string t = std::to_string(problems[i].target);
    EXPECT_EQ(std::regex_replace(target_first[i].response, std::regex("\\?(" + t + ")([<=>])"), "$2$1"),
              relation_first[i].response);
    EXPECT_EQ(target_first[i].answer_hits, relation_first[i].answer_hits);
    equal += target_first[i].response.find("?" + t + "=") != std::string::npos;
  }
  EXPECT_GT(equal, 0u);  // some traces pass a hit
}

TEST(Warmup, OrderedLayoutListsEveryCandidateOnceInTheFixedOrder) {
  const auto list = ordered_countdown_attempts({3, 7, 5});
  // (3, 7) then 5: 3+7, 7-3, 3*7 (7/3 is not exact); (3, 5) then 7; (7, 5) then 3; each group's value
  // r with the remaining c as r+c, larger-smaller, r*c, larger/smaller when exact.
  const std::vector<std::string> expected = {
      "10+5=15", "10-5=5",   "10*5=50",  "10/5=2",  "4+5=9",   "5-4=1",   "4*5=20", "21+5=26",
      "21-5=16", "21*5=105", "8+7=15",   "8-7=1",   "8*7=56",  "2+7=9",   "7-2=5",  "2*7=14",
      "15+7=22", "15-7=8",   "15*7=105", "12+3=15", "12-3=9",  "12*3=36", "12/3=4", "2+3=5",
      "3-2=1",   "2*3=6",    "35+3=38",  "35-3=32", "35*3=105"};
  ASSERT_EQ(list.size(), expected.size());
  for (size_t k = 0; k < list.size(); ++k) EXPECT_EQ(list[k].worked, expected[k]) << k;
  EXPECT_EQ(list[0].group, "3+7=10");
  EXPECT_EQ(list[4].group, "7-3=4");
  EXPECT_EQ(list[5].expression, "5-(7-3)");
  EXPECT_EQ(list[22].expression, "(7+5)/3");
  // Every candidate is a correct equation over all the numbers, and the values are exactly those that
  // random attempts (any pairing order, the same operator rules) can reach.
  for (const auto& nums :
       std::vector<std::vector<int64_t>>{{3, 7, 5}, {3, 3, 6}, {1, 1, 9}, {8, 2, 4}, {0, 6, 6}, {4, 9}}) {
    std::set<int64_t> ordered, random;
    std::set<std::string> groups_seen;
    std::string previous_group;
    for (const auto& a : ordered_countdown_attempts(nums)) {
      SCOPED_TRACE(a.expression);
      auto v = python_eval(a.expression);
      ASSERT_TRUE(v.has_value());
      EXPECT_TRUE(python_close(*v, a.value));
      auto used = integers_in(a.expression), sorted = nums;
      std::sort(used.begin(), used.end());
      std::sort(sorted.begin(), sorted.end());
      EXPECT_EQ(used, sorted);
      EXPECT_EQ(split(a.worked, "=").back(), std::to_string(a.value));
      EXPECT_EQ(a.group.empty(), nums.size() == 2);
      if (a.group != previous_group) {
        EXPECT_TRUE(groups_seen.insert(a.group).second) << "groups are contiguous and distinct";
      }
      previous_group = a.group;
      ordered.insert(a.value);
    }
    for (const auto& a : random_countdown_attempts(nums, 1000, 1, 0)) random.insert(a.value);
    EXPECT_EQ(ordered, random);
  }
  EXPECT_THROW(ordered_countdown_attempts({1, 2, 3, 4}), ConfigError);
  EXPECT_THROW(ordered_countdown_attempts({1, -2, 3}), ConfigError);
}

TEST(Warmup, OrderedTracesAreTargetBlindPrefixesWrittenByGroup) {
  const auto list = ordered_countdown_attempts({3, 7, 5});
  const std::vector<CountdownAttempt> prefix(list.begin(), list.begin() + 8);
  EXPECT_EQ(countdown_warmup_response(prefix, 7, 26),
            " 3+7=10: 10+5=15<26, 10-5=5<26, 10*5=50>26, 10/5=2<26; 7-3=4: 4+5=9<26, 5-4=1<26, 4*5=20<26; "
            "3*7=21: 21+5=26=26 </think> <answer>(3*7)+5</answer>");
  // Two copies of every problem with a different target: the same prefix lengths example by example,
  // so where a trace stops never depends on the target.
  std::vector<Problem> problems = generate_countdown(60, 5, 3, CountdownOptions{3, 3, 1, 9, 1, 50});
  std::vector<Problem> moved = problems;
  for (auto& p : moved) p.target += 1;
  const PromptTemplate prompt(TaskKind::kCountdown, "{numbers} {target}");
  WarmupOptions o{1, 20, true, true, true};
  const auto a = countdown_warmup_examples(problems, 240, prompt, o, 7);
  const auto b = countdown_warmup_examples(moved, 240, prompt, o, 7);
  std::vector<int> lengths(21, 0);
  size_t hits = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const Problem& p = problems[i % problems.size()];
    auto count = [](const std::string& r) {
      return std::count(r.begin(), r.end(), ',') + std::count(r.begin(), r.end(), ';') + 1;
    };
    EXPECT_EQ(count(a[i].response), count(b[i].response)) << a[i].response;
    const auto n = static_cast<size_t>(count(a[i].response));
    ASSERT_LE(n, 20u);
    ++lengths[n];
    // The trace is the first n candidates, the answer the last of them.
    const auto all = ordered_countdown_attempts(p.nums);
    const std::vector<CountdownAttempt> first(
        all.begin(), all.begin() + static_cast<std::ptrdiff_t>(std::min(n, all.size())));
    EXPECT_EQ(a[i].response, countdown_warmup_response(first, first.size() - 1, p.target));
    EXPECT_EQ(a[i].answer_hits, first.back().value == p.target);
    EXPECT_EQ(score_countdown_tinyzero(a[i].response, p, RewardWeights{}).correct, a[i].answer_hits);
    hits += a[i].answer_hits;
  }
  for (size_t k = 1; k <= 20; ++k) EXPECT_GT(lengths[k], 0) << k << " candidates";
  EXPECT_LT(static_cast<double>(hits) / a.size(), 0.2);
}

TEST(Warmup, StopProbabilityGivesGeometricTargetBlindLengths) {
  // With a stop probability h every trace ends after each candidate with probability h, whatever it
  // reached: P(n candidates) = (1 - h)^(n - 1) h until the list ends, and the same example of the
  // same problem with another target has the same length.
  std::vector<Problem> problems = generate_countdown(60, 5, 3, CountdownOptions{3, 3, 1, 9, 1, 50});
  std::vector<Problem> moved = problems;
  for (auto& p : moved) p.target += 1;
  const PromptTemplate prompt(TaskKind::kCountdown, "{numbers} {target}");
  WarmupOptions o{1, 64, true, true, true, 0.25};
  const size_t count = 4000;
  const auto a = countdown_warmup_examples(problems, count, prompt, o, 7);
  const auto b = countdown_warmup_examples(moved, count, prompt, o, 7);
  auto candidates = [](const std::string& r) {
    return static_cast<size_t>(std::count(r.begin(), r.end(), ',') + std::count(r.begin(), r.end(), ';') + 1);
  };
  std::vector<size_t> at_least(8, 0);  // traces with at least k candidates, k < 8 (every list is longer)
  for (size_t i = 0; i < count; ++i) {
    const size_t n = candidates(a[i].response);
    ASSERT_EQ(n, candidates(b[i].response)) << a[i].response;
    ASSERT_LE(n, ordered_countdown_attempts(problems[i % problems.size()].nums).size());
    for (size_t k = 1; k < at_least.size() && k <= n; ++k) ++at_least[k];
  }
  EXPECT_EQ(at_least[1], count);
  // The chance of going on past each of the first candidates is 1 - h = 0.75 (4,000 traces: the
  // standard error of each ratio is under 0.015).
  for (size_t k = 2; k < at_least.size(); ++k)
    EXPECT_NEAR(static_cast<double>(at_least[k]) / at_least[k - 1], 0.75, 0.06) << k;
  o.stop_prob = 1.5;  // not a probability
  EXPECT_THROW(countdown_warmup_examples(problems, 4, prompt, o, 1), ConfigError);
}

TEST(Warmup, RejectsAnEmptyAttemptRange) {
  std::vector<Problem> problems = generate_countdown(4, 5, 3, CountdownOptions{3, 3, 1, 9, 1, 50});
  const PromptTemplate prompt(TaskKind::kCountdown, "{numbers} {target}");
  EXPECT_THROW(countdown_warmup_examples(problems, 4, prompt, WarmupOptions{0, 3, true}, 1), ConfigError);
  EXPECT_THROW(countdown_warmup_examples(problems, 4, prompt, WarmupOptions{4, 3, true}, 1), ConfigError);
}

}  // namespace
}  // namespace tinyzero
