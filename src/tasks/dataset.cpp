// JSONL problem files and generated problem sets (see dataset.h), and load_problem_sets() of task.h.
#include "tinyzero/tasks/dataset.h"

#include <nlohmann/json.hpp>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/tasks/countdown.h"
#include "tinyzero/tasks/multiplication.h"
#include "tinyzero/tasks/pytext.h"

namespace tinyzero {
namespace {

using json = nlohmann::json;

constexpr const char* kCountdownExample = R"(expected {"target": 46, "nums": [3, 7, 25]})";
constexpr const char* kMultiplicationExample =
    R"(expected {"a": 123, "b": 456} (optionally "answer": 56088))";

[[noreturn]] void bad_line(TaskKind kind, const std::string& where, const std::string& what) {
  throw IoError(where + ": " + what + "; " +
                (kind == TaskKind::kCountdown ? kCountdownExample : kMultiplicationExample));
}

int64_t get_int(TaskKind kind, const json& j, const char* name, const std::string& where) {
  if (!j.is_number_integer())
    bad_line(kind, where,
             std::string("\"") + name + "\" is " + (j.is_null() ? "missing" : j.dump()) + ", not an integer");
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    bad_line(kind, where, std::string("\"") + name + "\" = " + j.dump() + " does not fit in 64 bits");
  return j.get<int64_t>();
}

const json& field(const json& obj, std::initializer_list<const char*> names) {
  static const json kNull;
  for (const char* n : names) {
    auto it = obj.find(n);
    if (it != obj.end()) return *it;
  }
  return kNull;
}

std::vector<std::string> split_paths(const std::string& paths) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= paths.size()) {
    size_t comma = paths.find(',', start);
    if (comma == std::string::npos) comma = paths.size();
    std::string p = std::string(pytext::strip(std::string_view(paths).substr(start, comma - start)));
    if (!p.empty()) out.push_back(p);
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::vector<Problem> read_problem_files(TaskKind kind, const std::string& paths) {
  std::vector<Problem> out;
  for (const auto& path : split_paths(paths)) {
    std::vector<Problem> part = read_problems(kind, path);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

std::string problem_to_json(TaskKind kind, const Problem& p) {
  if (kind == TaskKind::kCountdown)
    return "{\"target\": " + std::to_string(p.target) + ", \"nums\": " + pytext::python_list(p.nums) + "}";
  const bool fits = p.answer.size() < 19;  // |answer| < 10^18 fits int64
  return "{\"a\": " + std::to_string(p.a) + ", \"b\": " + std::to_string(p.b) +
         ", \"answer\": " + (fits ? p.answer : "\"" + p.answer + "\"") + "}";
}

Problem problem_from_json(TaskKind kind, const std::string& line, const std::string& where) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::exception& e) {
    bad_line(kind, where, std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) bad_line(kind, where, "not a JSON object");
  if (kind == TaskKind::kCountdown) {
    Problem p;
    p.target = get_int(kind, field(j, {"target"}), "target", where);
    const json& nums = field(j, {"nums", "numbers"});
    if (!nums.is_array() || nums.empty())
      bad_line(kind, where, "\"nums\" is missing or not a non-empty list");
    for (const auto& x : nums) p.nums.push_back(get_int(kind, x, "nums[]", where));
    return p;
  }
  const int64_t a = get_int(kind, field(j, {"a", "num1"}), "a", where);
  const int64_t b = get_int(kind, field(j, {"b", "num2"}), "b", where);
  Problem p = multiplication_problem(a, b);
  const json& answer = field(j, {"answer", "result"});
  if (!answer.is_null()) {
    std::optional<std::string> given;
    if (answer.is_number_integer()) given = answer.dump();
    if (answer.is_string()) given = pytext::python_int(answer.get<std::string>());
    if (!given)
      bad_line(kind, where,
               "\"answer\" = " + answer.dump() + " is not an integer (write big ones as strings)");
    if (*given != p.answer)
      bad_line(kind, where,
               "\"answer\" = " + *given + " is not " + std::to_string(a) + " * " + std::to_string(b) + " = " +
                   p.answer);
  }
  return p;
}

std::vector<Problem> read_problems(TaskKind kind, const std::string& path) {
  std::vector<Problem> out;
  for_each_line(
      path,
      [&](const std::string& line, const std::string& where) {
        out.push_back(problem_from_json(kind, line, where));
        out.back().source = where;
      },
      BlankLines::kRefuse);
  if (out.empty())
    throw IoError(path + ": no problems in the file; " +
                  (kind == TaskKind::kCountdown ? kCountdownExample : kMultiplicationExample) + " per line");
  return out;
}

void write_problems(TaskKind kind, const std::string& path, const std::vector<Problem>& problems) {
  std::string text;
  text.reserve(problems.size() * 40);
  for (const auto& p : problems) {
    text += problem_to_json(kind, p);
    text += '\n';
  }
  write_file_atomic(path, text);
}

std::string problem_key(TaskKind kind, const Problem& p) {
  return kind == TaskKind::kCountdown ? countdown_key(p) : multiplication_key(p);
}

std::vector<Problem> generate_problems(TaskKind kind, size_t count, uint64_t seed, uint64_t stream,
                                       const CountdownDataConfig& countdown,
                                       const MultiplicationDataConfig& multiplication,
                                       const std::unordered_set<std::string>& exclude) {
  if (kind == TaskKind::kCountdown)
    return generate_countdown(count, seed, stream, countdown_options(countdown), &exclude);
  return generate_multiplication(count, seed, stream, multiplication_options(multiplication), &exclude);
}

ProblemSets generate_problem_sets(TaskKind kind, size_t train_size, size_t val_size, uint64_t seed,
                                  const CountdownDataConfig& countdown,
                                  const MultiplicationDataConfig& multiplication) {
  ProblemSets sets;
  sets.val = generate_problems(kind, val_size, seed, kValStream, countdown, multiplication);
  std::unordered_set<std::string> exclude;
  for (const auto& p : sets.val) exclude.insert(problem_key(kind, p));
  sets.train = generate_problems(kind, train_size, seed, kTrainStream, countdown, multiplication, exclude);
  return sets;
}

ProblemSets load_problem_sets(const DataConfig& data) {
  const TaskKind kind = parse_task_kind(data.task);
  const auto seed = static_cast<uint64_t>(data.seed);
  const bool train_from_file = !data.train_files.empty(), val_from_file = !data.val_files.empty();
  if (!train_from_file && !val_from_file)
    return generate_problem_sets(kind, static_cast<size_t>(data.train_size),
                                 static_cast<size_t>(data.val_size), seed, data.countdown,
                                 data.multiplication);
  ProblemSets sets;
  auto keys_of = [kind](const std::vector<Problem>& problems) {
    std::unordered_set<std::string> keys;
    for (const auto& p : problems) keys.insert(problem_key(kind, p));
    return keys;
  };
  if (train_from_file) sets.train = read_problem_files(kind, data.train_files);
  if (val_from_file) sets.val = read_problem_files(kind, data.val_files);
  if (!val_from_file)
    sets.val = generate_problems(kind, static_cast<size_t>(data.val_size), seed, kValStream, data.countdown,
                                 data.multiplication, keys_of(sets.train));
  if (!train_from_file)
    sets.train = generate_problems(kind, static_cast<size_t>(data.train_size), seed, kTrainStream,
                                   data.countdown, data.multiplication, keys_of(sets.val));
  return sets;
}

}  // namespace tinyzero
