// Tests of reading warm-up-layout thinking traces (tasks/countdown_trace.h) and of their statistics
// (tasks/trace_stats.h) on hand-written traces: both layouts, every outcome category, the report's
// counts worked out by hand, and where a whole fixed-order list first hits.
#include "tinyzero/tasks/trace_stats.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tinyzero/tasks/countdown_trace.h"

namespace tinyzero {
namespace {

using ::testing::ElementsAre;

Problem problem(std::vector<int64_t> nums, int64_t target) {
  Problem p;
  p.nums = std::move(nums);
  p.target = target;
  return p;
}

// Fixed order, a true hit that is answered: right.
const char* kFixedRight =
    " 3+7=10: 10+5=15<26, 10*5=50>26; 3*7=21: 21+5=26=26 </think> <answer>(3*7)+5</answer>";
// Random attempts, a slip in the first one's arithmetic (10*5 written as 40), stops at a miss.
const char* kRandomMiss = " (3+7)*5=10*5=40>26, 7-(5-3)=7-2=5<26 </think> <answer>7-(5-3)</answer>";

TEST(CountdownTrace, AttemptsCarryTheirGroupAndPosition) {
  const auto attempts = trace_attempts(thinking_part(kFixedRight));
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[0].text, "10+5=15<26");
  EXPECT_EQ(attempts[0].group, "3+7=10");
  EXPECT_EQ(attempts[0].position, 1);
  EXPECT_EQ(attempts[1].text, "10*5=50>26");
  EXPECT_EQ(attempts[2].text, "21+5=26=26");
  EXPECT_EQ(attempts[2].group, "3*7=21");
  EXPECT_EQ(attempts[2].position, 2);
  const auto random = trace_attempts(thinking_part(kRandomMiss));
  ASSERT_EQ(random.size(), 2u);
  EXPECT_EQ(random[1].text, "7-(5-3)=7-2=5<26");
  EXPECT_EQ(random[1].group, "");
  EXPECT_EQ(random[1].position, 1);
  // A head broken by a newline inside the chunk is not a group; blank pieces are no attempts.
  const auto broken = trace_attempts(" 3+7=10: 10+5=15<26\n, 1+1=2 ,, ");
  ASSERT_EQ(broken.size(), 2u);
  EXPECT_EQ(broken[0].text, "3+7=10: 10+5=15<26");
  EXPECT_EQ(broken[0].group, "");
}

TEST(CountdownTrace, ComparisonsOfBothLayouts) {
  auto c = trace_comparison("10*5=50>26");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->relation, '>');
  EXPECT_EQ(c->target, "26");
  EXPECT_EQ(c->start, 7u);
  c = trace_comparison("21+5=26=26");  // a hit: the last "=" is the comparison
  ASSERT_TRUE(c);
  EXPECT_EQ(c->relation, '=');
  EXPECT_EQ(c->start, 7u);
  c = trace_comparison("(3+7)*5=10*5=50?26<");  // target first
  ASSERT_TRUE(c);
  EXPECT_EQ(c->relation, '<');
  EXPECT_EQ(c->target, "26");
  EXPECT_EQ(c->start, 15u);
  EXPECT_FALSE(trace_comparison("10*5"));
  EXPECT_FALSE(trace_comparison("50?>"));
  EXPECT_FALSE(trace_comparison("26"));
}

TEST(CountdownTrace, GroupStepsExpandOnTheGroupsValue) {
  EXPECT_EQ(expand_group_step("10+5", "3+7=10"), "(3+7)+5");
  EXPECT_EQ(expand_group_step("5-10", "3+7=10"), "5-(3+7)");
  EXPECT_EQ(expand_group_step("10+10", "3+7=10"), "(3+7)+10");  // the left operand first
  EXPECT_EQ(expand_group_step("11+5", "3+7=10"), "11+5");
  EXPECT_EQ(expand_group_step("(10)+5", "3+7=10"), "(10)+5");
}

TEST(CountdownTrace, ValuesUsePythonsArithmeticAndOnlyArithmetic) {
  EXPECT_TRUE(python_close(*trace_value("(3*7)+5"), 26, 1e-9));
  EXPECT_TRUE(python_close(*trace_value("7/2"), *python_eval("3.5"), 1e-9));
  EXPECT_FALSE(trace_value("01+2"));  // a leading-zero literal is a SyntaxError
  EXPECT_FALSE(trace_value("5/0"));
  EXPECT_FALSE(trace_value("2.5"));  // '.' is not among the characters a step may hold
  EXPECT_FALSE(trace_value("__import__('os')"));
  EXPECT_FALSE(trace_value(""));
}

TEST(CountdownTrace, TheLastComparedStepIsWhereTheTraceDecided) {
  const auto last = last_compared_step(" (3+7)*5=10*5=40>26, 7-(5-3)=7-2=5<26 ");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->step, "7-2");
  EXPECT_EQ(last->written, "5");
  EXPECT_EQ(last->relation, '<');
  const auto target_first = last_compared_step(" 16+1=17?16= ");
  ASSERT_TRUE(target_first);
  EXPECT_EQ(target_first->step, "16+1");
  EXPECT_EQ(target_first->relation, '=');
  EXPECT_FALSE(last_compared_step(" 16+1=17, 3+4=7 "));
}

TEST(TraceStats, EveryOutcomeCategory) {
  const Problem p = problem({3, 7, 5}, 26);
  auto outcome = [](const Problem& q, const std::string& r) {
    return trace_outcome_name(trace_outcome(q, r, answer_right(q, r)));
  };
  EXPECT_EQ(outcome(p, kFixedRight), "right");
  EXPECT_EQ(outcome(p, " 3+7=10: 10+5=15<26, 10*5=50>26; 3*7"), "ran out");
  EXPECT_EQ(outcome(p, kRandomMiss), "stopped at a miss");
  const Problem p16 = problem({3, 7, 5}, 16);
  EXPECT_EQ(outcome(p16, " 3+7=10: 10+5=15=16 </think> <answer>(3+7)+5</answer>"), "false \"=\": near");
  EXPECT_EQ(outcome(p16, " 3*7=21: 21+5=26=16 </think> <answer>(3*7)+5</answer>"), "false \"=\": far");
  EXPECT_EQ(outcome(problem({4, 4, 1}, 12), " 4*4=12=12 </think> <answer>4*4</answer>"),
            "false \"=\": arith");
  EXPECT_EQ(outcome(problem({3, 4, 5}, 12), " 3*4=12=12 </think> <answer>3*4</answer>"), "wrong numbers");
}

TEST(TraceStats, AnswersMustUseEachNumberOnceAndReachTheTarget) {
  const Problem p = problem({3, 7, 5}, 26);
  EXPECT_TRUE(answer_right(p, "x <answer>(3*7)+5</answer>"));
  EXPECT_TRUE(answer_right(p, "<answer>1</answer> then <answer> 5 + 3*7 </answer>"));  // the last one
  EXPECT_FALSE(answer_right(p, "<answer>(3*7)+5</answer> <answer>3+7+5</answer>"));
  EXPECT_FALSE(answer_right(p, "<answer>21+5</answer>"));       // not the given numbers
  EXPECT_FALSE(answer_right(p, "<answer>(3*7)+5\n</answer>"));  // `.` does not cross a newline
  EXPECT_FALSE(answer_right(p, "(3*7)+5"));
}

TEST(TraceStats, TheReportCountsWhatAHandCheckFinds) {
  // kFixedRight: 3 attempts, all sound (groups 1, 1, 2), a true hit, the answer right.
  // kRandomMiss: 2 attempts, the first with 10*5 written as 40 (arithmetic wrong, value 40 compared
  // right with 26), the second sound; no hit; stopped at a miss.
  TraceStats stats;
  const Problem p = problem({3, 7, 5}, 26);
  stats.add(p, kFixedRight);
  stats.add(p, kRandomMiss);
  EXPECT_EQ(stats.problems(), 2u);
  EXPECT_EQ(
      stats.report(),
      "2 problems, 2.5 attempts each: arithmetic right 80%, numbers right 100%; true hit in the trace 50%, "
      "answer right 50.0%\n"
      "comparisons: 5, right 100%, target copied right 100%\n"
      "steps that hold: *big 50% (2) +big 100% (2) +small 100% (1) -small 100% (2)\n"
      "sound attempts by group (steps, numbers and group right): 1 100% (2) 2 100% (1)\n"
      "outcomes: right 50.0%, stopped at a miss 50.0%\n");
  // A wrong comparison, a miscopied target and unused numbers.
  TraceStats slips;
  slips.add(p, " 3+7=10: 10+5=15>26, 10*5=50<62; 7+5=12: 12+5=17<26 ");
  EXPECT_EQ(
      slips.report(),
      "1 problems, 3.0 attempts each: arithmetic right 100%, numbers right 67%; true hit in the trace 0%, "
      "answer right 0.0%\n"
      "comparisons: 3, right 67%, target copied right 67%\n"
      "steps that hold: *big 100% (1) +big 100% (2)\n"
      "sound attempts by group (steps, numbers and group right): 1 100% (2) 2 0% (1)\n"
      "outcomes: ran out 100.0%\n");
}

TEST(TraceStats, FirstHitIsTheFirstAttemptComparedWithEquals) {
  const auto hit = first_hit(kFixedRight);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->group, 2);
  EXPECT_EQ(hit->cut,
            " 3+7=10: 10+5=15<26, 10*5=50>26; 3*7=21: 21+5=26=26 </think> <answer>(3*7)+5</answer>");
  const auto random = first_hit(" (3+7)*5=10*5=50>26, 3*7+5=21+5=26=26, 1+1=2=26 </think>");
  ASSERT_TRUE(random);
  EXPECT_EQ(random->group, 1);
  EXPECT_EQ(random->cut, " (3+7)*5=10*5=50>26, 3*7+5=21+5=26=26 </think> <answer>3*7+5</answer>");
  EXPECT_FALSE(first_hit(kRandomMiss));
  EXPECT_EQ(
      first_hit_report({1, 2, 2, 3}, {100, 200, 300, 500}),
      "4 problems; first hit by group (cumulative): 1 25.0% 2 75.0% 3 100.0%\n"
      "response tokens to the first hit: median 300; within 128: 25.0%, 192: 25.0%, 256: 50.0%, 288: 50.0%, "
      "384: 75.0%, 480: 75.0%\n");
  EXPECT_EQ(first_hit_report({2}), "1 problems; first hit by group (cumulative): 2 100.0%\n");
}

}  // namespace
}  // namespace tinyzero
