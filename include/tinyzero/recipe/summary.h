// What a training run reached, read back from its metrics.jsonl: the held-out success rate of the
// first validation (before training, when trainer.val_before_train: the base) and of the last, for the
// recipe's closing lines.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "tinyzero/core/config.h"

namespace tinyzero {

struct ValidationPoint {
  int64_t step = 0;
  double success_rate = 0;  // share of held-out problems solved (the reward's correct score)
};

struct RunSummary {
  std::string run_dir, metrics_path, plot_path;  // plot_path "" when the run draws none
  std::string task;                              // countdown | multiplication
  std::optional<ValidationPoint> first, last;    // none when the run never validated
  std::string held_out;  // e.g. "500 problems never trained on, greedy, TinyZero's reward"
};

// Reads RUN_DIR/metrics.jsonl (val/success_rate/<task> of each validation). Throws IoError naming the
// file when it cannot be read.
RunSummary summarize_run(const std::string& run_dir, const TrainConfig& config);

// The closing lines: the two success rates (or why there are none), the plot and the metrics file.
std::string format_run_summary(const RunSummary& summary);

}  // namespace tinyzero
