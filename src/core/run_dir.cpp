// Run directory set-up.
#include "tinyzero/core/run_dir.h"

#include <filesystem>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/core/log.h"

namespace fs = std::filesystem;

namespace tinyzero {

namespace {

bool holds_a_run(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename() != ".lock") return true;
  return false;
}

// Checkpoint staging directories (".step_N.staging...") of a run that was killed while saving.
void remove_stale_staging(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir / "checkpoints", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".step_", 0) == 0 && name.find(".staging") != std::string::npos) {
      logging::warn("removing {}, left by a checkpoint that was interrupted", entry.path().string());
      fs::remove_all(entry.path(), ec);
    }
  }
}

// Keeps a replaced config.yaml as config_history/config.<N>.yaml (N = 1, 2, ...).
void keep_in_history(const fs::path& dir, const std::string& old_config) {
  const fs::path history = dir / "config_history";
  fs::create_directories(history);
  int n = 1;
  while (fs::exists(history / ("config." + std::to_string(n) + ".yaml"))) ++n;
  const fs::path kept = history / ("config." + std::to_string(n) + ".yaml");
  write_file_atomic(kept.string(), old_config);
  logging::info("the config differs from the run's earlier one; that one is kept as {}", kept.string());
}

}  // namespace

RunDirLock prepare_run_dir(const TrainConfig& config) {
  const std::string& dir = config.trainer.run_dir;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw ConfigError("trainer.run_dir '" + dir +
                      "' exists and is not a directory; choose another trainer.run_dir");
  RunDirLock lock = RunDirLock::acquire(dir);
  if (config.trainer.resume == "off" && holds_a_run(dir))
    throw ConfigError("trainer.run_dir '" + dir +
                      "' already holds a run and trainer.resume is off; choose a new trainer.run_dir, or set "
                      "trainer.resume=auto to continue it");
  remove_stale_staging(dir);
  const fs::path config_file = fs::path(dir) / "config.yaml";
  const std::string resolved = dump_config(config);
  if (fs::exists(config_file, ec)) {
    const std::string old_config = read_file(config_file.string());
    if (old_config != resolved) keep_in_history(dir, old_config);
  }
  write_file_atomic(config_file.string(), resolved);
  return lock;
}

}  // namespace tinyzero
