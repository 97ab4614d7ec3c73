// The root command: `tinyzero-train --config FILE [key.path=value ...]` trains; --print-config and
// --dry-run check a config without training.
#include "tinyzero/core/log.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/registry.h"
#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/model/model_config.h"
#include "tinyzero/recipe/training.h"
#include "tinyzero/tasks/dataset.h"
#include "tinyzero/tasks/task.h"
#include "tinyzero/tokenizer/tokenizer.h"
#include "tinyzero/trainer/memory_estimate.h"

namespace fs = std::filesystem;

namespace tinyzero::cli {
namespace {

struct TrainArgs {
  std::string config_path;
  std::vector<std::string> overrides;
  bool print_config = false;
  bool dry_run = false;
  std::string model_config;     // --dry-run: shape file when model.path has no config.json yet
  double device_memory_gb = 0;  // --dry-run: capacity to compare against
  int world_size = 0;           // --dry-run: ranks (0 = WORLD_SIZE or 1)
};

double machine_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (meminfo >> key >> kb) {
    if (key == "MemTotal:") return kb * 1024.0;
    meminfo.ignore(256, '\n');
  }
  return 0;
}

// The problems of data.train_files / data.val_files checked as the trainer checks them at start-up
// (ranges, solvability, and prompt lengths when the tokenizer is at hand); a line for the report.
// Generated problems are not made here (TinyZero's 327,680 take seconds); the trainer checks them.
std::string dry_run_check_data(const TrainConfig& config) {
  const DataConfig& d = config.data;
  const bool sft = config.algorithm.name == "sft";  // data.train_files holds SFT examples, read at start-up
  const std::string train_files = sft ? "" : d.train_files;
  if (train_files.empty() && d.val_files.empty()) return "";
  const TaskKind kind = parse_task_kind(d.task);
  ProblemSets sets;
  if (!train_files.empty()) sets.train = read_problem_files(kind, train_files);
  if (!d.val_files.empty()) sets.val = read_problem_files(kind, d.val_files);
  const std::string tok_dir =
      config.model.tokenizer_path.empty() ? config.model.path : config.model.tokenizer_path;
  std::error_code ec;
  std::unique_ptr<Tokenizer> tokenizer;
  if (!tok_dir.empty() && (fs::exists(fs::path(tok_dir) / "tokenizer.json", ec) ||
                           fs::exists(fs::path(tok_dir) / "tokenizer.model", ec)))
    tokenizer = load_tokenizer(tok_dir);
  TokenCounter count_tokens;
  if (tokenizer) count_tokens = [&](const std::string& t) -> int64_t { return tokenizer->encode(t).size(); };
  check_problem_sets(sets, *make_task(d, config.reward), d, count_tokens);
  return "data: " + std::to_string(sets.train.size()) + " training and " + std::to_string(sets.val.size()) +
         " validation problems from files OK (ranges, solvability" +
         (tokenizer ? ", prompts of at most data.max_prompt_length tokens)"
                    : "; prompt lengths not checked: no tokenizer in '" + tok_dir + "')") +
         "\n";
}

void run_dry_run(const TrainArgs& args, const TrainConfig& config) {
  std::string shape = args.model_config;
  if (shape.empty()) {
    if (config.model.path.empty() || !fs::exists(fs::path(config.model.path) / "config.json"))
      throw ConfigError("--dry-run needs the model's config.json: model.path '" + config.model.path +
                        "' has none; give --model-config FILE (e.g. configs/models/qwen2.5-3b.json)");
    shape = (fs::path(config.model.path) / "config.json").string();
  }
  TransformerConfig model = load_transformer_config(shape);
  const std::string data = dry_run_check_data(config);
  // Ranks and capacity: the flags, else the hardware the config declares, else WORLD_SIZE / unknown.
  int world = args.world_size;
  if (world <= 0) world = declared_world_size(config);
  if (world <= 0) {
    const char* env = std::getenv("WORLD_SIZE");
    world = env ? std::max(1, std::atoi(env)) : 1;
  }
  std::string device = config.trainer.device == "auto" ? "cuda (auto)" : config.trainer.device;
  double capacity = args.device_memory_gb * 1024.0 * 1024.0 * 1024.0;
  std::string device_name = device;
  if (capacity > 0) {
    device_name = device + " (--device-memory-gb)";
  } else if (declared_capacity_bytes(config) > 0) {
    capacity = declared_capacity_bytes(config);
    device_name = device + " (hardware.gpu_memory_gb)";
  } else if (config.trainer.device == "cpu") {
    capacity = machine_memory_bytes();
    device_name = "this machine's memory";
  }
  std::cout << "config OK: " << args.config_path << "\nmodel: " << shape << " (" << model.architecture << ", "
            << model.num_hidden_layers << " layers, hidden " << model.hidden_size << ")\n"
            << data
            << format_memory_estimate(estimate_memory(config, model, world, capacity), config, model,
                                      capacity, device_name);
}

void run_train(const TrainArgs& args) {
  if (args.config_path.empty())
    throw UsageError("--config FILE is required to train, e.g. tinyzero-train --config configs/smoke.yaml");
  LoadedConfig loaded = load_config(args.config_path, args.overrides);
  const TrainConfig& config = loaded.config;
  if (args.print_config) {
    std::cout << dump_config(config);
    return;
  }
  if (args.dry_run) {
    run_dry_run(args, config);
    return;
  }
  run_training(loaded);
}

CommandRegistration reg([](CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  app.add_option("--config,-c", args->config_path, "YAML config file (see configs/)");
  app.add_option("overrides", args->overrides,
                 "key.path=value overrides applied after the file, e.g. actor.optim.lr=1e-6");
  app.add_flag("--print-config", args->print_config, "print the resolved config as YAML and exit");
  app.add_flag("--dry-run", args->dry_run,
               "check the config, the model and the problems of data files, print parameter counts and the "
               "memory needed per device, and exit");
  app.add_option("--model-config", args->model_config,
                 "--dry-run: a config.json to size the model by (configs/models/)");
  app.add_option("--device-memory-gb", args->device_memory_gb,
                 "--dry-run: device memory to compare with, in GiB (default hardware.gpu_memory_gb)");
  app.add_option("--world-size", args->world_size,
                 "--dry-run: number of data-parallel ranks (default hardware.gpus, else WORLD_SIZE or 1)");
  app.callback([&app, args] {
    if (!app.get_subcommands().empty()) return;  // a subcommand ran instead
    run_train(*args);
  });
});

}  // namespace
}  // namespace tinyzero::cli
