// Problem sets on disk (JSONL, one problem per line, TinyZero's field names) and generated ones.
//   countdown:      {"target": 46, "nums": [3, 7, 25]}          ("numbers" is accepted for "nums")
//   multiplication: {"a": 123, "b": 456, "answer": 56088}      ("num1"/"num2" accepted; "answer"
//                   optional on input, checked against a * b when present)
#pragma once

#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

#include "tinyzero/tasks/task.h"

namespace tinyzero {

struct CountdownDataConfig;
struct MultiplicationDataConfig;

// One JSONL line (no newline) for a problem.
std::string problem_to_json(TaskKind kind, const Problem& problem);
// Parses one line. Throws IoError "<where>: <what>; expected ..." (`where` is e.g. "file.jsonl:12").
Problem problem_from_json(TaskKind kind, const std::string& line, const std::string& where);

// Reads a JSONL file; each problem's `source` is "path:N". Throws IoError naming the file and line of
// a bad line, a blank line included.
std::vector<Problem> read_problems(TaskKind kind, const std::string& path);
// read_problems of each file of a comma-separated list (as data.train_files / data.val_files), in order.
std::vector<Problem> read_problem_files(TaskKind kind, const std::string& paths);
// Writes a JSONL file atomically.
void write_problems(TaskKind kind, const std::string& path, const std::vector<Problem>& problems);

// Identity of a problem for de-duplication (countdown: target and sorted numbers; multiplication:
// a and b).
std::string problem_key(TaskKind kind, const Problem& problem);

// Stream ids of the generators: validation and training problems come from independent streams of
// one seed, so the validation set does not change with the training size.
constexpr uint64_t kValStream = 1;
constexpr uint64_t kTrainStream = 2;

// `count` generated problems of `kind` from stream `stream` of `seed`, none of whose keys is in
// `exclude`.
std::vector<Problem> generate_problems(TaskKind kind, size_t count, uint64_t seed, uint64_t stream,
                                       const CountdownDataConfig& countdown,
                                       const MultiplicationDataConfig& multiplication,
                                       const std::unordered_set<std::string>& exclude = {});

// Validation set first (stream kValStream), then a training set disjoint from it (kTrainStream).
ProblemSets generate_problem_sets(TaskKind kind, size_t train_size, size_t val_size, uint64_t seed,
                                  const CountdownDataConfig& countdown,
                                  const MultiplicationDataConfig& multiplication);

}  // namespace tinyzero
