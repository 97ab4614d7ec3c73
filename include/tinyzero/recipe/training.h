// One training run as `tinyzero-train --config FILE` does it, callable in-process: check the inputs,
// prepare the run directory, set threads and device, train to trainer.total_steps (resuming as
// trainer.resume says). The root command and the recipe's train stages share it.
#pragma once

#include <cstdint>
#include <string>

#include "tinyzero/core/config.h"

namespace tinyzero {

struct TrainingOutcome {
  std::string run_dir;
  int64_t step = 0;          // the step reached (trainer.total_steps)
  int64_t resumed_from = 0;  // the checkpoint's step a resumed run started from; 0 for a fresh one
};

// Throws ConfigError for missing inputs (before the run directory is touched) and whatever the
// Trainer throws.
TrainingOutcome run_training(const LoadedConfig& loaded);

}  // namespace tinyzero
