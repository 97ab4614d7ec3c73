// The warm-up corpus over problems disjoint from a config's held-out set (see warmup_corpus.h).
#include "tinyzero/tasks/warmup_corpus.h"

#include <nlohmann/json.hpp>
#include <unordered_set>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/tasks/countdown.h"
#include "tinyzero/tasks/prompt.h"
#include "tinyzero/tasks/task.h"

namespace tinyzero {
namespace {

// Problems come from their own stream of the seed (3: neither validation's 1 nor training's 2).
constexpr uint64_t kWarmupStream = 3;

}  // namespace

void validate_warmup_corpus_options(const WarmupCorpusOptions& o, const std::string& where) {
  auto fail = [&](const std::string& what) { throw ConfigError(where + ": " + what); };
  if (o.problems < 1) fail("problems is " + std::to_string(o.problems) + "; give at least 1");
  if (o.examples < 0)
    fail("examples is " + std::to_string(o.examples) + "; give 0 (one per problem) or more");
  if (o.attempts < 1) fail("attempts is " + std::to_string(o.attempts) + "; give at least 1");
  if (o.min_attempts < 0 || o.min_attempts > o.attempts)
    fail("min_attempts " + std::to_string(o.min_attempts) + " is not in [0, attempts " +
         std::to_string(o.attempts) + "]; 0 means every trace has `attempts` attempts");
  if (!(o.stop_prob >= 0 && o.stop_prob <= 1))
    fail("stop_prob " + std::to_string(o.stop_prob) + " is not in [0, 1]");
  if (o.compare_target_first && !o.compare)
    fail("the target-first layout lays out comparisons, but there are none: turn compare on");
}

double WarmupCorpus::chance_hit_rate() const {
  size_t hits = 0;
  for (const auto& e : examples) hits += e.answer_hits;
  return examples.empty() ? 0.0 : static_cast<double>(hits) / static_cast<double>(examples.size());
}

double WarmupCorpus::mean_response_chars() const {
  size_t chars = 0;
  for (const auto& e : examples) chars += e.response.size();
  return examples.empty() ? 0.0 : static_cast<double>(chars) / static_cast<double>(examples.size());
}

std::string WarmupCorpus::jsonl() const {
  std::string out;
  for (const auto& e : examples)
    out += nlohmann::json{{"prompt", e.prompt}, {"response", e.response}}.dump() + "\n";
  return out;
}

std::string WarmupCorpus::text() const {
  std::string out;
  for (const auto& e : examples) out += e.prompt + e.response + "<|endoftext|>\n";
  return out;
}

std::vector<Problem> warmup_problems(const DataConfig& data, size_t count, uint64_t seed, size_t* held_out) {
  if (parse_task_kind(data.task) != TaskKind::kCountdown)
    throw ConfigError("data.task is " + data.task + "; a warm-up corpus needs data.task: countdown");
  DataConfig val_only = data;  // the held-out set alone, as the trainer makes it
  val_only.train_files.clear();
  val_only.train_size = 1;
  const ProblemSets sets = load_problem_sets(val_only);
  std::unordered_set<std::string> keys;
  for (const auto& p : sets.val) keys.insert(countdown_key(p));
  if (held_out) *held_out = sets.val.size();
  return generate_countdown(count, seed, kWarmupStream, countdown_options(data.countdown), &keys);
}

WarmupCorpus make_countdown_warmup_corpus(const DataConfig& data, const WarmupCorpusOptions& options) {
  validate_warmup_corpus_options(options, "warm-up corpus");
  WarmupCorpus corpus;
  const std::vector<Problem> problems =
      warmup_problems(data, static_cast<size_t>(options.problems), options.seed, &corpus.held_out);
  const PromptTemplate prompt(TaskKind::kCountdown, data.prompt_template);
  const size_t count = static_cast<size_t>(options.examples > 0 ? options.examples : options.problems);
  WarmupOptions warmup;
  warmup.min_attempts = options.min_attempts > 0 ? options.min_attempts : options.attempts;
  warmup.max_attempts = options.attempts;
  warmup.answer_last = options.answer_last;
  warmup.compare = options.compare;
  warmup.ordered = options.ordered;
  warmup.stop_prob = options.stop_prob;
  warmup.compare_target_first = options.compare_target_first;
  corpus.examples = countdown_warmup_examples(problems, count, prompt, warmup, options.seed);
  corpus.problems = problems.size();
  return corpus;
}

}  // namespace tinyzero
