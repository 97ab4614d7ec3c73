// One training run in-process (see training.h).
#include "tinyzero/recipe/training.h"

#include "tinyzero/core/log.h"
#include "tinyzero/core/run_dir.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/core/stop_signal.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/trainer/trainer.h"

namespace tinyzero {

TrainingOutcome run_training(const LoadedConfig& loaded) {
  const TrainConfig& config = loaded.config;
  check_run_inputs(config);  // before the run directory is touched
  set_log_level(config.logging.level);
  const int threads = configure_threads(static_cast<int>(config.trainer.threads));
  const std::string device = resolve_device(config.trainer.device);
  // Data parallel: rank 0 alone locks and prepares the run directory (and alone writes logs and
  // checkpoints); the lock is held until the run ends. SIGTERM / SIGINT stop after the current step.
  const bool main_rank = detect_dist_env().is_main();
  RunDirLock lock;
  if (main_rank) lock = prepare_run_dir(config);
  const std::string& run_dir = config.trainer.run_dir;
  install_stop_handlers();
  if (main_rank) logging::info("run directory {} (resolved config in {}/config.yaml)", run_dir, run_dir);
  log_runtime_info(device, config.model.dtype, threads);
  Trainer trainer(loaded);
  trainer.run();
  logging::info("done: {} steps; checkpoints in {}/checkpoints, metrics in {}/metrics.jsonl", trainer.step(),
                run_dir, run_dir);
  return {run_dir, trainer.step(), trainer.resumed_from()};
}

}  // namespace tinyzero
