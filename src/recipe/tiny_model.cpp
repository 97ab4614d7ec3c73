// The tiny model and its tokenizer from generated text (see tiny_model.h).
#include "tinyzero/recipe/tiny_model.h"

#include <algorithm>
#include <filesystem>

#include "tinyzero/core/errors.h"
#include "tinyzero/io/atomic_dir.h"
#include "tinyzero/recipe/random_model.h"
#include "tinyzero/tasks/dataset.h"
#include "tinyzero/tasks/prompt.h"
#include "tinyzero/tasks/task.h"
#include "tinyzero/tasks/warmup_corpus.h"
#include "tinyzero/tokenizer/bpe_trainer.h"

namespace tinyzero {

namespace {

// glibc's random() after srandom(seed) (its default TYPE_3 additive feedback generator), which mawk's
// rand() called in the shell script this stage replaced. Reproduced exactly, so that the tokenizer's
// corpus, and with it the tokenizer, are byte for byte those of the stored warm-up
// (tests/data/tiny-demo-warm), on any platform.
class GlibcRandom {
 public:
  explicit GlibcRandom(uint32_t seed) {
    r_[0] = static_cast<int32_t>(seed == 0 ? 1 : seed);
    for (int i = 1; i < 31; ++i) {  // 16807 * r mod (2^31 - 1), as glibc computes it (Schrage)
      const int32_t hi = r_[i - 1] / 127773, lo = r_[i - 1] % 127773;
      int32_t word = 16807 * lo - 2836 * hi;
      if (word < 0) word += 2147483647;
      r_[i] = word;
    }
    for (int i = 31; i < 34; ++i) r_[i] = r_[i - 31];
    for (int i = 34; i < 344; ++i) next();  // glibc discards the first 310 outputs
  }
  // The next value in [0, 2^31).
  uint32_t next() {
    const size_t i = n_++ % 34;
    r_[i] = static_cast<int32_t>(static_cast<uint32_t>(r_[(i + 34 - 31) % 34]) +
                                 static_cast<uint32_t>(r_[(i + 34 - 3) % 34]));
    return static_cast<uint32_t>(r_[i]) >> 1;
  }

 private:
  int32_t r_[34] = {};
  size_t n_ = 34;
};

// The script drew part 1's problems as `data countdown --train N --test 16 --seed S` does: the training
// split, disjoint from 16 held-out ones.
constexpr size_t kScriptHeldOut = 16;

}  // namespace

std::string tiny_model_tokenizer_corpus(const TinyModelSpec& spec) {
  if (spec.expression_problems < 1 || spec.trace_problems < 1)
    throw ConfigError("tiny model: expression_problems and trace_problems must be at least 1 (got " +
                      std::to_string(spec.expression_problems) + " and " +
                      std::to_string(spec.trace_problems) + ")");
  if (parse_task_kind(spec.expression_data.task) != TaskKind::kCountdown)
    throw ConfigError("tiny model: the expression config's data.task is " + spec.expression_data.task +
                      "; it must be countdown");
  // Part 1: each problem in the expression config's template, answered with its numbers in order
  // joined by random operators, rand() * 4 picking each (mawk: random() / (2^31 - 1)).
  const std::vector<Problem> problems =
      generate_problem_sets(TaskKind::kCountdown, static_cast<size_t>(spec.expression_problems),
                            kScriptHeldOut, spec.seed, spec.expression_data.countdown,
                            spec.expression_data.multiplication)
          .train;
  const PromptTemplate prompt(TaskKind::kCountdown, spec.expression_data.prompt_template);
  GlibcRandom rng(static_cast<uint32_t>(spec.seed));
  const char* kOps[4] = {"+", "-", "*", "/"};
  std::string text;
  for (const auto& p : problems) {
    std::string expr = std::to_string(p.nums[0]);
    for (size_t i = 1; i < p.nums.size(); ++i) {
      const double r = static_cast<double>(rng.next()) / 2147483647.0;
      expr += std::string(" ") + kOps[std::min(3, static_cast<int>(r * 4))] + " " + std::to_string(p.nums[i]);
    }
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
