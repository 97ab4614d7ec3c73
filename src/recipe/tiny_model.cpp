// The tiny model and its tokenizer from generated text (see tiny_model.h).
#include "tinyzero/recipe/tiny_model.h"

#include <filesystem>
#include <random>

#include "tinyzero/core/errors.h"
#include "tinyzero/io/atomic_dir.h"
#include "tinyzero/recipe/random_model.h"
#include "tinyzero/tasks/prompt.h"
#include "tinyzero/tasks/task.h"
#include "tinyzero/tasks/warmup_corpus.h"
#include "tinyzero/tokenizer/bpe_trainer.h"

namespace tinyzero {

std::string tiny_model_tokenizer_corpus(const TinyModelSpec& spec) {
  if (spec.expression_problems < 1 || spec.trace_problems < 1)
    throw ConfigError("tiny model: expression_problems and trace_problems must be at least 1 (got " +
                      std::to_string(spec.expression_problems) + " and " +
                      std::to_string(spec.trace_problems) + ")");
  // Part 1. The operators come from std::mt19937_64, whose sequence the C++ standard fixes (no
  // distribution is used: those differ between standard libraries), so the text is the same everywhere.
  const std::vector<Problem> problems =
      warmup_problems(spec.expression_data, static_cast<size_t>(spec.expression_problems), spec.seed);
  const PromptTemplate prompt(TaskKind::kCountdown, spec.expression_data.prompt_template);
  std::mt19937_64 rng(spec.seed);
  const char* kOps[4] = {"+", "-", "*", "/"};
  std::string text;
  for (const auto& p : problems) {
    std::string expr = std::to_string(p.nums[0]);
    for (size_t i = 1; i < p.nums.size(); ++i)
      expr += std::string(" ") + kOps[rng() % 4] + " " + std::to_string(p.nums[i]);
    text += prompt.render(p) + " " + expr + " </think> <answer>" + expr + "</answer><|endoftext|>\n";
  }
  // Part 2: one warm-up trace of random attempts per problem.
  WarmupCorpusOptions traces;
  traces.problems = spec.trace_problems;
  traces.seed = spec.seed;
  return text + make_countdown_warmup_corpus(spec.trace_data, traces).text();
}

TinyModelResult make_tiny_model(const TinyModelSpec& spec, const std::string& out) {
  BpeTrainOptions options;
  options.vocab_size = spec.vocab_size;
  const BpeTrainResult tokenizer = train_bpe(tiny_model_tokenizer_corpus(spec), options);
  TinyModelResult result;
  result.vocab_size = tokenizer.vocab_size;
  result.merges = tokenizer.num_merges;
  AtomicDirOptions replace;
  replace.replaceable_marker = "model/config.json";
  write_directory_atomic(
      out,
      [&](const std::string& tmp) {
        const std::string tokenizer_dir = (std::filesystem::path(tmp) / "tokenizer").string();
        write_tokenizer_files(tokenizer, tokenizer_dir);
        const RandomModelInfo info =
            write_random_model({spec.model_config, tokenizer_dir, spec.init_seed, "float32"},
                               (std::filesystem::path(tmp) / "model").string());
        result.parameters = info.parameters;
      },
      replace);
  return result;
}

}  // namespace tinyzero
