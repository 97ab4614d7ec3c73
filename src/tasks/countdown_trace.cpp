// Reading the warm-up layouts' thinking traces back (see countdown_trace.h).
#include "tinyzero/tasks/countdown_trace.h"

#include "tinyzero/tasks/pytext.h"

namespace tinyzero {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_op(char c) { return c == '+' || c == '-' || c == '*' || c == '/'; }
bool is_step_char(char c) { return is_digit(c) || is_op(c); }  // [0-9+\-*/]
bool is_relation(char c) { return c == '<' || c == '=' || c == '>'; }

// End of the run of digits starting at `at`.
size_t digits_end(std::string_view s, size_t at) {
  while (at < s.size() && is_digit(s[at])) ++at;
  return at;
}

// Skips leading Python whitespace (re `\s`).
size_t skip_space(std::string_view s, size_t at) {
  while (at < s.size()) {
    size_t next = at;
    if (!pytext::is_space(pytext::decode_utf8(s, next))) break;
    at = next;
  }
  return at;
}

// The head of a fixed-order group, `\s*([0-9+\-*/]+=\d+):(.*)$`: sets the group and the rest.
bool group_head(std::string_view chunk, std::string* group, std::string_view* rest) {
  size_t at = skip_space(chunk, 0);
  const size_t start = at;
  while (at < chunk.size() && is_step_char(chunk[at])) ++at;
  if (at == start || at >= chunk.size() || chunk[at] != '=') return false;
  const size_t value_end = digits_end(chunk, at + 1);
  if (value_end == at + 1 || value_end >= chunk.size() || chunk[value_end] != ':') return false;
  std::string_view tail = chunk.substr(value_end + 1);
  // `.` stops at a newline and `$` matches before a final one.
  const size_t newline = tail.find('\n');
  if (newline != std::string_view::npos) {
    if (newline != tail.size() - 1) return false;
    tail.remove_suffix(1);
  }
  *group = std::string(chunk.substr(start, value_end - start));
  *rest = tail;
  return true;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t at = 0;
  for (size_t next; (next = s.find(sep, at)) != std::string_view::npos; at = next + 1)
    parts.push_back(s.substr(at, next - at));
  parts.push_back(s.substr(at));
  return parts;
}

}  // namespace

std::string_view thinking_part(std::string_view response) {
  const size_t end = response.find("</think>");
  return end == std::string_view::npos ? response : response.substr(0, end);
}

std::vector<TraceAttempt> trace_attempts(std::string_view think) {
  std::vector<TraceAttempt> out;
  int position = 0;
  for (std::string_view chunk : split(think, ';')) {
    ++position;
    std::string group;
    std::string_view rest;
    if (group_head(chunk, &group, &rest)) chunk = rest;
    for (std::string_view piece : split(chunk, ',')) {
      const std::string_view a = pytext::strip(piece);
      if (!a.empty()) out.push_back({std::string(a), group, position});
    }
  }
  return out;
}

std::optional<TraceComparison> trace_comparison(std::string_view a) {
  // `([<=>])(\d+)$`: the digits that end the attempt, after a relation.
  size_t start = a.size();
  while (start > 0 && is_digit(a[start - 1])) --start;
  if (start < a.size() && start > 0 && is_relation(a[start - 1]))
    return TraceComparison{a[start - 1], std::string(a.substr(start)), start - 1};
  // `\?(\d+)([<=>])$`: a relation that ends the attempt, after "?" and digits.
  if (a.empty() || !is_relation(a.back())) return std::nullopt;
  size_t digits = a.size() - 1;
  while (digits > 0 && is_digit(a[digits - 1])) --digits;
  if (digits == a.size() - 1 || digits == 0 || a[digits - 1] != '?') return std::nullopt;
  return TraceComparison{a.back(), std::string(a.substr(digits, a.size() - 1 - digits)), digits - 1};
}

std::string expand_group_step(std::string_view step, std::string_view group) {
  const size_t eq = group.find('=');
  if (eq == std::string_view::npos) return std::string(step);
  const std::string_view inner = group.substr(0, eq), value = group.substr(eq + 1);
  // `(\d+)([-+*/])(\d+)` over the whole step.
  const size_t x_end = digits_end(step, 0);
  if (x_end == 0 || x_end >= step.size() || !is_op(step[x_end])) return std::string(step);
  if (digits_end(step, x_end + 1) != step.size() || x_end + 1 == step.size()) return std::string(step);
  const std::string_view x = step.substr(0, x_end), y = step.substr(x_end + 1);
  const char op = step[x_end];
  if (x == value) return "(" + std::string(inner) + ")" + op + std::string(y);
  if (y == value) return std::string(x) + op + "(" + std::string(inner) + ")";
  return std::string(step);
}

std::optional<PyNumber> trace_value(std::string_view text) {
  if (text.empty()) return std::nullopt;
  for (char c : text)
    if (!is_step_char(c) && c != '(' && c != ')' && c != ' ') return std::nullopt;
  return python_eval(text);
}

std::optional<TraceLastEquals> last_compared_step(std::string_view s) {
  // re.findall(r"([0-9+\-*/]+)=(\d+)(?:([<=>])\d+|\?\d+([<=>]))", s)[-1]. The step run cannot hold
  // "=", so a match starting inside a run that failed fails the same way: try each run once.
  std::optional<TraceLastEquals> last;
  size_t at = 0;
  while (at < s.size()) {
    if (!is_step_char(s[at])) {
      ++at;
      continue;
    }
    const size_t start = at;
    while (at < s.size() && is_step_char(s[at])) ++at;  // at: after the run
    if (at >= s.size() || s[at] != '=') continue;
    const size_t value_end = digits_end(s, at + 1);
    if (value_end == at + 1 || value_end >= s.size()) continue;
    size_t end = 0;
    char relation = 0;
    if (is_relation(s[value_end])) {
      end = digits_end(s, value_end + 1);
      if (end == value_end + 1) continue;
      relation = s[value_end];
    } else if (s[value_end] == '?') {
      const size_t target_end = digits_end(s, value_end + 1);
      if (target_end == value_end + 1 || target_end >= s.size() || !is_relation(s[target_end])) continue;
      relation = s[target_end];
      end = target_end + 1;
    } else {
      continue;
    }
    last = TraceLastEquals{std::string(s.substr(start, at - start)),
                           std::string(s.substr(at + 1, value_end - at - 1)), relation};
    at = end;
  }
  return last;
}

}  // namespace tinyzero
