// The run directory: where a run's resolved config, logs, checkpoints and plots live.
#pragma once

#include <string>

#include "tinyzero/core/config.h"
#include "tinyzero/core/run_lock.h"

namespace tinyzero {

// Creates trainer.run_dir, locks it for this run (RunDirLock: a second run on it is refused, naming the
// holder), removes staging directories that an interrupted checkpoint left behind, and writes the
// resolved config to run_dir/config.yaml; when that replaces a different config (a resume with changed
// settings), the earlier one is kept as run_dir/config_history/config.<N>.yaml. With trainer.resume =
// off, an existing run (anything but the lock file) is refused (ConfigError) so nothing is overwritten.
// Returns the lock, to be held for the whole run.
RunDirLock prepare_run_dir(const TrainConfig& config);

}  // namespace tinyzero
