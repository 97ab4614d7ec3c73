// Test support for end-to-end runs: build the tiny model from nothing with scripts/make-tiny-model.sh
// and read a run's metrics.jsonl (or any JSONL file).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/cli.h"
#include "tinyzero/core/files.h"

namespace tinyzero::testing {

// A new empty directory temp/<name>_<pid> (removed first if it exists).
inline std::string fresh_temp_dir(const std::string& name) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// Builds the tiny model into out_dir/model (tokenizer in out_dir/tokenizer). Returns "" on success,
// else the script's log.
inline std::string make_tiny_model(const std::string& out_dir) {
  const std::string log = out_dir + ".make.log";
  std::string cmd = "cd " + shell_quote(TZ_SOURCE_DIR) + " && TINYZERO_BIN=" + shell_quote(TZ_CLI_PATH) +
                    " bash scripts/make-tiny-model.sh " + shell_quote(out_dir) + " > " + shell_quote(log) +
                    " 2>&1";
  return std::system(cmd.c_str()) == 0 ? "" : "make-tiny-model.sh failed:\n" + read_file(log);
}

// `ranks` ranks of `tinyzero-train ARGS` started by scripts/launch-local.sh from the source directory
// (relative paths in `args` are the repository's), each output line prefixed with "[rank i] ".
inline CliResult launch_local(int ranks, const std::string& args) {
  return run_shell("cd " + shell_quote(TZ_SOURCE_DIR) + " && TINYZERO_BIN=" + shell_quote(TZ_CLI_PATH) +
                   " bash scripts/launch-local.sh " + std::to_string(ranks) + " -- " + args);
}

// Every non-empty line of a JSONL file, parsed.
inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Every line of run_dir/metrics.jsonl.
inline std::vector<nlohmann::json> read_metrics(const std::string& run_dir) {
  return read_jsonl(run_dir + "/metrics.jsonl");
}

}  // namespace tinyzero::testing
