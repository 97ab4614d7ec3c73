// Statistics of warm-up-layout thinking traces (see trace_stats.h).
#include "tinyzero/tasks/trace_stats.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "tinyzero/tasks/countdown_trace.h"
#include "tinyzero/tasks/pytext.h"

namespace tinyzero {
namespace {

// The integers written in `text` (runs of digits), sorted, equal the given numbers sorted.
bool uses_numbers(std::string_view text, const std::vector<int64_t>& nums) {
  std::vector<int64_t> used;
  for (const auto& run : pytext::digit_runs(text)) {
    if (!run) return false;  // too large to be any given number
    used.push_back(*run);
  }
  std::vector<int64_t> given = nums;
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  return used == given;
}

// Python's value < target, == and > for a number and an int: nullopt where Python raises (a complex
// value is not ordered). An int too large for a float is compared by its sign.
std::optional<int> py_order(const PyNumber& v, const BigInt& target) {
  if (v.kind == PyNumber::Kind::kInt) return compare(v.integer, target);
  if (v.kind == PyNumber::Kind::kComplex) return std::nullopt;
  if (std::isnan(v.real)) return 2;  // unordered: none of <, ==, > holds
  double t = 0;
  if (!target.to_double(&t)) return target < BigInt(0) ? 1 : -1;
  return v.real < t ? -1 : v.real > t ? 1 : 0;
}

// The operation of a step, and whether its operands are single digits: the first "a op b" in it
// (`(\d+)([-+*/])(\d+)`), or ('?', "") when there is none.
std::pair<char, std::string> step_key(std::string_view x) {
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  for (size_t at = 0; at < x.size();) {
    if (!is_digit(x[at])) {
      ++at;
      continue;
    }
    size_t end = at;
    while (end < x.size() && is_digit(x[end])) ++end;
    const char op = end < x.size() ? x[end] : 0;
    if ((op == '+' || op == '-' || op == '*' || op == '/') && end + 1 < x.size() && is_digit(x[end + 1])) {
      size_t y_end = end + 1;
      while (y_end < x.size() && is_digit(x[y_end])) ++y_end;
      // Above 9: more than one digit once leading zeros are dropped.
      auto big = [](std::string_view d) {
        const size_t nz = d.find_first_not_of('0');
        return nz != std::string_view::npos && d.size() - nz > 1;
      };
      return {op, big(x.substr(at, end - at)) || big(x.substr(end + 1, y_end - end - 1)) ? "big" : "small"};
    }
    at = end;
  }
  return {'?', ""};
}

std::vector<std::string_view> split_equals(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  for (size_t next; (next = s.find('=', at)) != std::string_view::npos; at = next + 1)
    parts.push_back(s.substr(at, next - at));
  parts.push_back(s.substr(at));
  return parts;
}

double pct(size_t a, size_t b) {
  return 100.0 * static_cast<double>(a) / static_cast<double>(std::max<size_t>(b, 1));
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, args);
  va_end(args);
  return buf;
}

}  // namespace

std::string trace_outcome_name(TraceOutcome outcome) {
  switch (outcome) {
    case TraceOutcome::kRight:
      return "right";
    case TraceOutcome::kRanOut:
      return "ran out";
    case TraceOutcome::kStoppedAtAMiss:
      return "stopped at a miss";
    case TraceOutcome::kFalseEqualsNear:
      return "false \"=\": near";
    case TraceOutcome::kFalseEqualsFar:
      return "false \"=\": far";
    case TraceOutcome::kFalseEqualsArith:
      return "false \"=\": arith";
    case TraceOutcome::kWrongNumbers:
      return "wrong numbers";
  }
  return "?";
}

bool answer_right(const Problem& p, std::string_view response) {
  const auto answer = pytext::last_answer(response);
  if (!answer || !uses_numbers(*answer, p.nums)) return false;
  const auto value = trace_value(*answer);
  return value && python_close(*value, p.target, 1e-9);
}

TraceOutcome trace_outcome(const Problem& p, std::string_view response, bool right) {
  if (right) return TraceOutcome::kRight;
  if (response.find("<answer>") == std::string_view::npos) return TraceOutcome::kRanOut;
  const auto last = last_compared_step(thinking_part(response));
  if (!last || last->relation != '=') return TraceOutcome::kStoppedAtAMiss;
  const BigInt written = BigInt::from_decimal(last->written);
  if (written != BigInt(p.target)) {
    const BigInt gap = written < BigInt(p.target) ? BigInt(p.target) - written : written - BigInt(p.target);
    return gap < BigInt(3) ? TraceOutcome::kFalseEqualsNear : TraceOutcome::kFalseEqualsFar;
  }
  const auto value = trace_value(last->step);
  PyNumber target;
  target.integer = written;
  return value && python_close(*value, target, 1e-9) ? TraceOutcome::kWrongNumbers
                                                     : TraceOutcome::kFalseEqualsArith;
}

void TraceStats::add(const Problem& p, std::string_view response) {
  ++problems_;
  bool found = false;
  for (const TraceAttempt& attempt : trace_attempts(thinking_part(response))) {
    std::string_view a = attempt.text;
    const auto comparison = trace_comparison(a);
    if (comparison) a = a.substr(0, comparison->start);
    std::vector<std::string> parts;
    for (std::string_view part : split_equals(a)) parts.emplace_back(pytext::strip(part));
    if (parts.size() < 2) continue;
    // Fixed order: "r op c" in the group "x op y=r" stands for "(x op y) op c".
    const std::string full = attempt.group.empty() ? parts[0] : expand_group_step(parts[0], attempt.group);
    ++attempts_;
    bool good = true;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto x = trace_value(parts[i]), y = trace_value(parts[i + 1]);
      const bool ok = x && y && python_close(*x, *y, 1e-9);
      auto& [count, wrong] = steps_[step_key(parts[i])];
      ++count;
      wrong += !ok;
      good = good && ok;
    }
    arithmetic_ += good;
    const bool numbers = uses_numbers(full, p.nums);
    numbers_ += numbers;
    // What the value and the whole equation come to; an error in either (or a complex value compared
    // with the target) makes the attempt unsound, after the comparison has been counted.
    bool sound = false;
    if (const auto v = trace_value(parts.back())) {
      bool raised = false;
      if (comparison) {
        ++comparisons_;
        const BigInt target = BigInt::from_decimal(comparison->target);
        const auto order = py_order(*v, target);
        if (!order) {
          raised = true;
        } else {
          const char r = comparison->relation;
          comparisons_right_ +=
              (*order == -1 && r == '<') || (*order == 0 && r == '=') || (*order == 1 && r == '>');
          targets_right_ += target == BigInt(p.target);
        }
      }
      const auto whole = raised ? std::nullopt : trace_value(full);
      if (whole) {
        found = found || (good && numbers && python_close(*whole, p.target, 1e-9));
        sound = good && numbers && python_close(*whole, *v, 1e-9);
      }
    }
    if (!attempt.group.empty()) {
      auto& [count, sound_count] = groups_[std::min(attempt.position, 10)];
      ++count;
      sound_count += sound;
    }
  }
  hits_ += found;
  const bool right = answer_right(p, response);
  answers_ += right;
  const TraceOutcome outcome = trace_outcome(p, response, right);
  auto it =
      std::find_if(outcomes_.begin(), outcomes_.end(), [&](const auto& o) { return o.first == outcome; });
  if (it == outcomes_.end()) {
    outcomes_.emplace_back(outcome, 1);
  } else {
    ++it->second;
  }
}

std::string TraceStats::report() const {
  const size_t n = problems_;
  std::string out = format(
      "%zu problems, %.1f attempts each: arithmetic right %.0f%%, numbers right %.0f%%; true hit in the "
      "trace "
      "%.0f%%, answer right %.1f%%\n",
      n, static_cast<double>(attempts_) / static_cast<double>(std::max<size_t>(n, 1)),
      pct(arithmetic_, attempts_), pct(numbers_, attempts_), pct(hits_, n), pct(answers_, n));
  if (comparisons_)
    out += format("comparisons: %zu, right %.0f%%, target copied right %.0f%%\n", comparisons_,
                  pct(comparisons_right_, comparisons_), pct(targets_right_, comparisons_));
  out += "steps that hold:";
  for (const auto& [key, counts] : steps_)
    out += format(" %c%s %.0f%% (%zu)", key.first, key.second.c_str(), 100 - pct(counts.second, counts.first),
                  counts.first);
  out += "\n";
  if (!groups_.empty()) {
    out += "sound attempts by group (steps, numbers and group right):";
    for (const auto& [group, counts] : groups_)
      out += format(" %s%d %.0f%% (%zu)", group < 10 ? "" : ">=", group, pct(counts.second, counts.first),
                    counts.first);
    out += "\n";
  }
  // Most common first; ties in order of first appearance.
  std::vector<std::pair<TraceOutcome, size_t>> sorted = outcomes_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  out += "outcomes:";
  for (size_t i = 0; i < sorted.size(); ++i)
    out += format("%s %s %.1f%%", i ? "," : "", trace_outcome_name(sorted[i].first).c_str(),
                  pct(sorted[i].second, n));
  return out + "\n";
}

std::optional<FirstHit> first_hit(std::string_view response) {
  const std::string_view think = thinking_part(response);
  size_t cursor = 0;
  for (const TraceAttempt& attempt : trace_attempts(think)) {
    cursor = think.find(attempt.text, cursor) + attempt.text.size();
    const auto comparison = trace_comparison(attempt.text);
    if (!comparison || comparison->relation != '=') continue;
    const std::string step = attempt.text.substr(0, attempt.text.find('='));
    const std::string expr = attempt.group.empty() ? step : expand_group_step(step, attempt.group);
    return FirstHit{attempt.position,
                    std::string(think.substr(0, cursor)) + " </think> <answer>" + expr + "</answer>"};
  }
  return std::nullopt;
}

std::string first_hit_report(const std::vector<int>& groups, const std::vector<size_t>& cut_tokens) {
  const size_t n = groups.size();
  std::vector<int> distinct = groups;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  std::string out = format("%zu problems; first hit by group (cumulative):", n);
  for (int k : distinct) {
    const size_t within =
        static_cast<size_t>(std::count_if(groups.begin(), groups.end(), [&](int g) { return g <= k; }));
    out += format(" %d %.1f%%", k, pct(within, n));
  }
  out += "\n";
  if (!cut_tokens.empty()) {
    std::vector<size_t> lengths = cut_tokens;
    std::sort(lengths.begin(), lengths.end());
    out += format("response tokens to the first hit: median %zu; within", lengths[lengths.size() / 2]);
    bool first = true;
    for (size_t limit : {128, 192, 256, 288, 384, 480}) {
      const size_t within = static_cast<size_t>(
          std::count_if(lengths.begin(), lengths.end(), [&](size_t l) { return l <= limit; }));
      out += format("%s %zu: %.1f%%", first ? "" : ",", limit, pct(within, lengths.size()));
      first = false;
    }
    out += "\n";
  }
  return out;
}

}  // namespace tinyzero
