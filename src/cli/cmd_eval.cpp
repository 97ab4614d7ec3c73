// `tinyzero-train eval MODEL_DIR`: a checkpoint (or any Hugging Face directory) on the held-out problems
// of its run (or a JSONL file): success rate and pass@k, every response as JSONL, a summary as JSON.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/generation.h"
#include "cli/registry.h"
#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/trainer/evaluation.h"

namespace fs = std::filesystem;

namespace tinyzero::cli {
namespace {

struct EvalArgs {
  std::string model_dir;
  std::string config_path;
  std::vector<std::string> overrides;
  EvalOptions options;
  std::string output;
};

// The settings the model is evaluated with: --config, else the checkpoint's own trainer_config.yaml,
// else the defaults; then the overrides; the model is always MODEL_DIR.
std::pair<TrainConfig, std::string> eval_config(const EvalArgs& args) {
  std::vector<std::string> overrides = args.overrides;
  overrides.push_back("model.path=" + args.model_dir);
  std::string source = args.config_path;
  const fs::path saved = fs::path(args.model_dir) / "trainer_config.yaml";
  if (source.empty() && fs::exists(saved)) source = saved.string();
  TrainConfig config = source.empty() ? load_config_text("{}", "(defaults)", overrides).config
                                      : load_config(source, overrides).config;
  if (has_tokenizer(args.model_dir)) config.model.tokenizer_path.clear();
  return {config, source.empty() ? "defaults" : source};
}

// Where the responses go: --output, else MODEL_DIR/eval/<set>[_n<samples>_t<temperature>].jsonl.
std::string output_path(const EvalArgs& args) {
  if (!args.output.empty()) return args.output;
  std::string name =
      args.options.data_file.empty() ? "heldout" : fs::path(args.options.data_file).stem().string();
  if (args.options.temperature > 0) {
    std::ostringstream suffix;
    suffix << "_n" << args.options.samples << "_t" << args.options.temperature;
    name += suffix.str();
  }
  return (fs::path(args.model_dir) / "eval" / (name + ".jsonl")).string();
}

void write_outputs(const std::string& path, const EvalResult& r, const nlohmann::json& summary) {
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);
  if (ec)
    throw IoError("cannot create " + parent.string() + " for the responses (" + ec.message() +
                  "); give --output FILE somewhere writable");
  const std::string summary_path = (parent / (fs::path(path).stem().string() + ".summary.json")).string();
  write_file_atomic(path, r.jsonl);
  write_file_atomic(summary_path, summary.dump(2) + "\n");
  std::cout << "responses: " << path << "\nsummary:   " << summary_path << "\n";
}

void run_eval(const EvalArgs& args) {
  if (!fs::exists(fs::path(args.model_dir) / "config.json"))
    throw UsageError("MODEL_DIR '" + args.model_dir +
                     "' has no config.json; give a checkpoint (run_dir/checkpoints/step_N) or a Hugging Face "
                     "model directory");
  const auto [config, source] = eval_config(args);
  EvalOptions options = args.options;
  options.progress = config.logging.progress;
  const std::string out = output_path(args);
  const EvalResult r = evaluate(config, options);
  if (detect_dist_env().rank != 0) return;

  const auto& s = r.summary;
  nlohmann::json summary{
      {"model", args.model_dir},
      {"settings", source},
      {"task", r.task},
      {"data", args.options.data_file.empty() ? "held-out set of the settings" : args.options.data_file},
      {"temperature", args.options.temperature},
      {"seed", args.options.seed}};
  for (const auto& [key, value] : s) summary[key] = value;
  std::printf("eval: %s, %.0f problems x %.0f response(s) (%s), %.0f rank(s), %.1f s, %.0f tokens/s\n",
              r.task.c_str(), s.at("problems"), s.at("samples"),
              args.options.temperature == 0 ? "greedy" : "sampled", s.at("world_size"), s.at("seconds"),
              s.at("tokens_per_s"));
  std::printf("  success rate  %.4f\n", s.at("success_rate"));
  for (int64_t k : r.ks) {
    const std::string key = "pass@" + std::to_string(k);
    std::printf("  %-12s  %.4f\n", key.c_str(), s.at(key));
  }
  std::printf(
      "  format rate   %.4f\n  mean score    %.4f\n  mean length   %.1f tokens (%.1f%% cut at %lld)\n",
      s.at("format_rate"), s.at("score_mean"), s.at("response_tokens_mean"), 100 * s.at("truncated_rate"),
      static_cast<long long>(config.data.max_response_length));
  std::fflush(stdout);
  write_outputs(out, r, summary);
}

CommandRegistration reg([](CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval",
      "Evaluate a checkpoint (run_dir/checkpoints/step_N) or a Hugging Face model directory on the held-out "
      "problems of its run, or on a JSONL file: success rate, pass@k, format rate, every response with its "
      "score (JSONL) and a summary (JSON). Runs on several ranks under torchrun or SLURM like training.");
  cmd->add_option("model", args->model_dir, "checkpoint or Hugging Face model directory")->required();
  cmd->add_option("overrides", args->overrides,
                  "key.path=value settings, e.g. data.max_response_length=512 rollout.micro_batch_size=64");
  cmd->add_option(
      "--config,-c", args->config_path,
      "settings (task, prompt template, lengths, data): default MODEL_DIR/trainer_config.yaml when "
      "it is a checkpoint, else the built-in defaults");
  cmd->add_option("--data", args->options.data_file,
                  "JSONL problems of the task (default: the settings' held-out set, data.val_files or "
                  "data.val_size generated problems)");
  cmd->add_option("--limit", args->options.limit, "only the first N problems (default all)");
  cmd->add_option("--samples,-n", args->options.samples, "responses per problem (default 1)");
  cmd->add_option("--temperature,-t", args->options.temperature,
                  "sampling temperature; 0 = greedy (default 0; sampling needs it above 0)");
  cmd->add_option("--k", args->options.ks, "pass@k values to report (default 1, 2, 4, ... up to --samples)")
      ->delimiter(',');
  cmd->add_option("--seed", args->options.seed, "seed of the sampler (default 0)");
  cmd->add_option("--output,-o", args->output,
                  "JSONL of every response (default MODEL_DIR/eval/<set>.jsonl); the summary goes beside it "
                  "as <name>.summary.json");
  cmd->callback([args] { run_eval(*args); });
});

}  // namespace
}  // namespace tinyzero::cli
