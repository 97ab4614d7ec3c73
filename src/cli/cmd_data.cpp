// `tinyzero-train data countdown|multiplication`: generate train/test problem files (JSONL) exactly as
// the trainer generates them from data.seed, so a run's data can be inspected or shared.
// `tinyzero-train data countdown-sft`: the warm-up corpus of the tiny demo (tasks/warmup.h) as SFT
// JSONL, over problems disjoint from the held-out set of a training config.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "cli/registry.h"
#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/tasks/dataset.h"
#include "tinyzero/tasks/warmup_corpus.h"

namespace tinyzero::cli {
namespace {

struct DataArgs {
  int64_t train = 327680, test = 1024, seed = 0;
  std::string out;
  DataConfig data;
};

void run_data(TaskKind kind, const DataArgs& args) {
  if (args.out.empty()) throw UsageError("--out DIR is required, e.g. --out data/countdown");
  if (args.train < 1 || args.test < 1)
    throw UsageError("--train and --test must be at least 1 (got " + std::to_string(args.train) + " and " +
                     std::to_string(args.test) + ")");
  if (args.seed < 0) throw UsageError("--seed must be >= 0 (got " + std::to_string(args.seed) + ")");
  std::error_code ec;
  std::filesystem::create_directories(args.out, ec);
  if (ec) throw IoError("cannot create --out directory " + args.out + ": " + ec.message());
  const auto start = std::chrono::steady_clock::now();
  const ProblemSets sets =
      generate_problem_sets(kind, static_cast<size_t>(args.train), static_cast<size_t>(args.test),
                            static_cast<uint64_t>(args.seed), args.data.countdown, args.data.multiplication);
  const double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string train_path = (std::filesystem::path(args.out) / "train.jsonl").string();
  const std::string test_path = (std::filesystem::path(args.out) / "test.jsonl").string();
  write_problems(kind, train_path, sets.train);
  write_problems(kind, test_path, sets.val);
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr,
               "wrote %zu train and %zu test problems to %s and %s (generated in %.2f s, %.2f s in all)\n",
               sets.train.size(), sets.val.size(), train_path.c_str(), test_path.c_str(), gen_s, total_s);
}

struct SftArgs {
  std::string config, out, text;
  std::vector<std::string> overrides;
  int64_t problems = 4000, examples = 0, attempts = 8, min_attempts = 0, seed = 0;
  std::string answer = "random", order = "random", compare_layout = "relation-first";
  bool compare = false;
  double stop_prob = 0;
};

void run_countdown_sft(const SftArgs& args) {
  if (args.problems < 1 || args.examples < 0 || args.attempts < 1 || args.seed < 0)
    throw UsageError("--problems and --attempts must be >= 1, --examples and --seed >= 0 (got " +
                     std::to_string(args.problems) + ", " + std::to_string(args.attempts) + ", " +
                     std::to_string(args.examples) + ", " + std::to_string(args.seed) + ")");
  if (args.compare_layout != "relation-first" && !args.compare)
    throw UsageError("--compare-layout " + args.compare_layout +
                     " lays out comparisons, but there are none: add --compare");
  if (args.min_attempts < 0 || args.min_attempts > args.attempts)
    throw UsageError("--min-attempts " + std::to_string(args.min_attempts) + " is not in [0, --attempts " +
                     std::to_string(args.attempts) + "]; 0 means every trace has --attempts attempts");
  const LoadedConfig loaded = load_config(args.config, args.overrides);
  const DataConfig& data = loaded.config.data;
  if (parse_task_kind(data.task) != TaskKind::kCountdown)
    throw ConfigError(args.config + ": data.task is " + data.task +
                      "; countdown-sft needs data.task: countdown");
  WarmupCorpusOptions options;
  options.problems = args.problems;
  options.examples = args.examples;
  options.attempts = args.attempts;
  options.min_attempts = args.min_attempts;
  options.stop_prob = args.stop_prob;
  options.answer_last = args.answer == "last";
  options.ordered = args.order == "fixed";
  options.compare = args.compare;
  options.compare_target_first = args.compare_layout == "target-first";
  options.seed = static_cast<uint64_t>(args.seed);
  const WarmupCorpus corpus = make_countdown_warmup_corpus(data, options);
  for (const std::string& path : {args.out, args.text}) {
    const auto parent = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec)
      throw IoError("cannot create directory " + parent.string() + " for " + path + ": " + ec.message());
  }
  write_file_atomic(args.out, corpus.jsonl());
  if (!args.text.empty()) write_file_atomic(args.text, corpus.text());
  std::fprintf(stderr,
               "wrote %zu warm-up examples over %zu problems (none of the %zu held-out ones) to %s; "
               "answers that hit the target by chance: %.1f%%, mean response %.0f characters\n",
               corpus.examples.size(), corpus.problems, corpus.held_out, args.out.c_str(),
               100.0 * corpus.chance_hit_rate(), corpus.mean_response_chars());
}

void add_common(CLI::App* cmd, DataArgs* args) {
  cmd->add_option("--train", args->train, "training problems (TinyZero: 327680)")->capture_default_str();
  cmd->add_option("--test", args->test, "held-out problems, disjoint from training (TinyZero: 1024)")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "generator seed (data.seed); the same seed gives the same files")
      ->capture_default_str();
  cmd->add_option("--out", args->out, "output directory; writes train.jsonl and test.jsonl")->required();
}

CommandRegistration reg([](CLI::App& app) {
  auto* data = app.add_subcommand("data", "Generate problem files (JSONL) as the trainer would");
  data->require_subcommand(1);

  auto cd = std::make_shared<DataArgs>();
  auto* countdown = data->add_subcommand("countdown", "Countdown problems, each checked solvable");
  add_common(countdown, cd.get());
  auto& c = cd->data.countdown;
  countdown->add_option("--min-numbers", c.min_numbers, "fewest numbers per problem (2-6)")
      ->capture_default_str();
  countdown->add_option("--max-numbers", c.max_numbers, "most numbers per problem (2-6)")
      ->capture_default_str();
  countdown->add_option("--min-number", c.min_number, "smallest given number")->capture_default_str();
  countdown->add_option("--max-number", c.max_number, "largest given number")->capture_default_str();
  countdown->add_option("--min-target", c.min_target, "smallest target")->capture_default_str();
  countdown->add_option("--max-target", c.max_target, "largest target")->capture_default_str();
  countdown->callback([cd] { run_data(TaskKind::kCountdown, *cd); });

  auto sd = std::make_shared<SftArgs>();
  auto* sft = data->add_subcommand(
      "countdown-sft",
      "Warm-up corpus (SFT JSONL): random worked attempts per problem, the answer one of them chosen "
      "without looking at the target");
  sft->add_option(
         "--config", sd->config,
         "training config whose data.* (ranges, prompt_template, seed, held-out set) the corpus follows")
      ->required();
  sft->add_option("--set", sd->overrides, "config override key=value (repeatable), as for train");
  sft->add_option("--out", sd->out, "output JSONL of {\"prompt\", \"response\"} lines")->required();
  sft->add_option("--text", sd->text, "also write prompt+response<|endoftext|> lines (a tokenizer corpus)");
  sft->add_option("--problems", sd->problems, "distinct problems, none of them held out")
      ->capture_default_str();
  sft->add_option("--examples", sd->examples, "examples, cycling over the problems; 0 = one per problem")
      ->capture_default_str();
  sft->add_option("--attempts", sd->attempts,
                  "random attempts in each thinking trace (the most, with --min-attempts)")
      ->capture_default_str();
  sft->add_option("--min-attempts", sd->min_attempts,
                  "fewest attempts: each trace has a number uniform in [this, --attempts]; 0 = --attempts")
      ->capture_default_str();
  sft->add_option(
         "--stop-prob", sd->stop_prob,
         "> 0: trace lengths geometric instead of uniform: from --min-attempts on, a trace ends after "
         "each attempt with this probability (at most --attempts), whatever it reached")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  sft->add_option("--answer", sd->answer, "which attempt is the answer: last or random")
      ->check(CLI::IsMember({"last", "random"}))
      ->capture_default_str();
  sft->add_option("--order", sd->order,
                  "random: random attempts with distinct values; fixed: a random-length prefix of every "
                  "candidate in one fixed order, grouped by the pair combined first (2 or 3 numbers)")
      ->check(CLI::IsMember({"random", "fixed"}))
      ->capture_default_str();
  sft->add_flag("--compare", sd->compare,
                "end each attempt with its value's relation to the target (<, = or >)");
  sft->add_option("--compare-layout", sd->compare_layout,
                  "with --compare: relation-first writes \"50>26\", target-first \"50?26>\" (the two numbers "
                  "side by side before the relation)")
      ->check(CLI::IsMember({"relation-first", "target-first"}))
      ->capture_default_str();
  sft->add_option("--seed", sd->seed, "seed of the corpus' problems, attempts and answer picks")
      ->capture_default_str();
  sft->callback([sd] { run_countdown_sft(*sd); });

  auto md = std::make_shared<DataArgs>();
  md->train = 32768, md->test = 4096;  // TinyZero's multiply split sizes
  auto* mult = data->add_subcommand("multiplication", "a * b problems (TinyZero's operand distribution)");
  add_common(mult, md.get());
  auto& m = md->data.multiplication;
  mult->add_option("--digits-a", m.digits_a, "digits of the first operand (1-18)")->capture_default_str();
  mult->add_option("--digits-b", m.digits_b, "digits of the second operand (1-18)")->capture_default_str();
  mult->callback([md] { run_data(TaskKind::kMultiplication, *md); });
});

}  // namespace
}  // namespace tinyzero::cli
