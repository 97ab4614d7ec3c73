// `tinyzero-train trace-stats`: how good a tiny-demo model's thinking traces are (tasks/trace_stats.h),
// over responses it generates here, over a validation's generations, or (--first-hit) where whole
// fixed-order lists first reach the target.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/generation.h"
#include "cli/registry.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/tasks/dataset.h"
#include "tinyzero/tasks/prompt.h"
#include "tinyzero/tasks/trace_stats.h"
#include "tinyzero/tokenizer/tokenizer.h"

namespace tinyzero::cli {
namespace {

using json = nlohmann::json;

struct TraceStatsArgs {
  std::string problems, model, generations, first_hit, tokenizer;
  int64_t n = 200, max_new_tokens = 256;
  bool greedy = false;
  uint64_t seed = 3;
  std::string prompt_template = "Numbers {numbers}, target {target}.\nAssistant: <think>";
};

// The JSON object of one JSONL line, or an IoError naming the line.
json parse_line(const std::string& line, const std::string& where) {
  try {
    json j = json::parse(line);
    if (j.is_object()) return j;
  } catch (const json::exception&) {
  }
  throw IoError(where + " is not a JSON object");
}

std::string string_field(const json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || !j[key].is_string())
    throw IoError(where + " has no string \"" + key +
                  "\"; give a validation's generations (trainer.validation_data_dir)");
  return j[key].get<std::string>();
}

// "Numbers [3, 7, 25], target 46." (the demo's prompt) -> the problem.
Problem problem_of_prompt(const std::string& prompt, const std::string& where) {
  const std::string head = "Numbers [";
  for (size_t at = prompt.find(head); at != std::string::npos; at = prompt.find(head, at + 1)) {
    const size_t list = at + head.size();
    const size_t close = prompt.find_first_not_of("0123456789, ", list);
    if (close == list || close == std::string::npos || prompt.compare(close, 10, "], target ") != 0) continue;
    const size_t digits = close + 10;
    const size_t end = prompt.find_first_not_of("0123456789", digits);
    if (end == digits) continue;
    Problem p;
    try {
      p.target = std::stoll(prompt.substr(digits, end - digits));
      const std::string numbers = prompt.substr(list, close - list);
      for (size_t from = 0; from <= numbers.size();) {
        const size_t comma = std::min(numbers.find(',', from), numbers.size());
        p.nums.push_back(std::stoll(numbers.substr(from, comma - from)));
        from = comma + 1;
      }
    } catch (const std::exception&) {
      break;  // an empty or huge number: not the demo's prompt
    }
    return p;
  }
  throw IoError(where + ": the prompt is not the demo's (\"Numbers [a, b, c], target t.\"): " +
                json(prompt.substr(0, 80)).dump());
}

void run_trace_stats(const TraceStatsArgs& a) {
  if ((!a.first_hit.empty() || !a.generations.empty()) && (!a.problems.empty() || !a.model.empty()))
    throw UsageError("trace-stats reads " +
                     std::string(a.first_hit.empty() ? "--generations" : "--first-hit") +
                     " or generates from PROBLEMS.jsonl MODEL_DIR, not both");
  if (!a.first_hit.empty()) {
    std::vector<int> groups;
    std::vector<std::string> cuts;
    for_each_line(a.first_hit, [&](const std::string& line, const std::string& where) {
      const auto hit = first_hit(string_field(parse_line(line, where), "response", where));
      if (!hit)
        throw IoError(where +
                      ": no attempt reaches the target: not a whole fixed-order list with comparisons "
                      "(data countdown-sft --order fixed --compare --stop-prob 0 --attempts 1000)");
      groups.push_back(hit->group);
      cuts.push_back(hit->cut);
    });
    if (groups.empty()) throw IoError(a.first_hit + " holds no responses");
    std::vector<size_t> tokens;
    if (!a.tokenizer.empty()) {
      const auto tok = load_tokenizer(a.tokenizer);
      for (const auto& cut : cuts) tokens.push_back(tok->encode(cut).size());
    }
    std::cout << first_hit_report(groups, tokens);
    return;
  }
  std::vector<Problem> problems;
  std::vector<std::string> responses;
  if (!a.generations.empty()) {
    for_each_line(a.generations, [&](const std::string& line, const std::string& where) {
      const json j = parse_line(line, where);
      problems.push_back(problem_of_prompt(string_field(j, "prompt", where), where));
      responses.push_back(string_field(j, "response", where));
    });
  } else if (!a.problems.empty() && !a.model.empty()) {
    if (a.n < 1) throw UsageError("--n must be at least 1, got " + std::to_string(a.n));
    if (a.max_new_tokens < 1)
      throw UsageError("--max-new-tokens must be at least 1, got " + std::to_string(a.max_new_tokens));
    problems = read_problems(TaskKind::kCountdown, a.problems);
    if (problems.size() > static_cast<size_t>(a.n)) problems.resize(static_cast<size_t>(a.n));
    const PromptTemplate prompt(TaskKind::kCountdown, a.prompt_template);
    std::vector<std::string> prompts;
    for (const auto& p : problems) prompts.push_back(prompt.render(p));
    TextGeneration g;
    g.max_new_tokens = a.max_new_tokens;
    g.greedy = a.greedy;
    g.seed = a.seed;
    g.stop = {"</answer>"};
    responses = generate_texts(a.model, prompts, g);
  } else {
    throw UsageError("trace-stats needs PROBLEMS.jsonl MODEL_DIR, --generations FILE or --first-hit FILE");
  }
  if (problems.empty())
    throw IoError("no problems to check: " + (a.generations.empty() ? a.problems : a.generations) +
                  " is empty");
  TraceStats stats;
  for (size_t i = 0; i < problems.size(); ++i) stats.add(problems[i], responses[i]);
  std::cout << stats.report();
}

CommandRegistration reg([](CLI::App& app) {
  auto a = std::make_shared<TraceStatsArgs>();
  auto* cmd = app.add_subcommand("trace-stats",
                                 "Check every attempt in a tiny-demo model's thinking traces (the warm-up "
                                 "layouts of data countdown-sft): "
                                 "arithmetic, numbers, comparisons, true hits, right answers, sound attempts "
                                 "by group of the fixed order, "
                                 "and why each wrong answer is wrong");
  cmd->add_option(
      "problems", a->problems,
      "problems JSONL to generate responses for (data countdown --out DIR writes DIR/test.jsonl)");
  cmd->add_option("model", a->model, "model directory (with its tokenizer) to generate with");
  auto* gen = cmd->add_option("--generations", a->generations,
                              "read responses from a validation's generations (trainer.validation_data_dir's "
                              "step_N.jsonl) instead of generating");
  auto* hit =
      cmd->add_option("--first-hit", a->first_hit,
                      "a corpus of whole fixed-order lists (data countdown-sft --order fixed --compare "
                      "--stop-prob 0 --attempts 1000): in which group, and after how many response tokens, "
                      "each first reaches the target");
  gen->excludes(hit);
  cmd->add_option("--tokenizer", a->tokenizer,
                  "--first-hit: a model or tokenizer directory to count tokens with")
      ->needs(hit);
  cmd->add_option("--n", a->n, "problems to generate for (the first N of the file)")->capture_default_str();
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "tokens per response")->capture_default_str();
  cmd->add_flag("--greedy", a->greedy, "greedy decoding (default: sampling at temperature 1)");
  cmd->add_option("--seed", a->seed, "sampler seed")->capture_default_str();
  cmd->add_option("--prompt-template", a->prompt_template,
                  "prompt of each problem (data.prompt_template); default: the demo's, "
                  "\"Numbers {numbers}, target {target}.\\nAssistant: <think>\"");
  cmd->callback([a] { run_trace_stats(*a); });
});

}  // namespace
}  // namespace tinyzero::cli
