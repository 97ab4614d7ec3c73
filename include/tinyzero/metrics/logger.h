// Per-step metrics: one JSONL line (run_dir/metrics.jsonl), a compact console line, TensorBoard events
// (run_dir/tensorboard/) and the plot (run_dir/plot.svg), each flushed or rewritten every step so a
// killed run keeps what it logged.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tinyzero/metrics/plot.h"

namespace tinyzero {

struct LoggingConfig;
class TensorBoardWriter;

using Metrics = std::map<std::string, double>;  // name -> value (veRL's names, see metrics/names.h)

struct MetricsLoggerOptions {
  bool console = true;      // a compact line per step through the log (info)
  bool jsonl = true;        // run_dir/metrics.jsonl
  bool tensorboard = true;  // run_dir/tensorboard/events.out.tfevents.*
  bool plot = true;         // run_dir/plot.svg, redrawn every step
  // nullopt: a fresh run; an existing metrics.jsonl is replaced. A step k: the run resumes from the
  // checkpoint of step k, so lines of metrics.jsonl with step > k (logged by the killed run after its
  // checkpoint) are dropped, and TensorBoard is told to hide its earlier events after k.
  std::optional<int64_t> resume_step;
};
// console/jsonl/tensorboard/plot from the logging section; resume_step left empty.
MetricsLoggerOptions metrics_logger_options(const LoggingConfig& logging);

class MetricsLogger {
 public:
  // Creates run_dir if needed. Throws IoError when a file cannot be written.
  MetricsLogger(const std::string& run_dir, const MetricsLoggerOptions& options = {});
  ~MetricsLogger();
  MetricsLogger(const MetricsLogger&) = delete;
  MetricsLogger& operator=(const MetricsLogger&) = delete;

  // Logs one step: appends {"step": step, name: value, ...} (names sorted; NaN and inf as null) to
  // metrics.jsonl, prints the console line, writes a TensorBoard event and redraws the plot.
  void log(int64_t step, const Metrics& metrics);

  // Everything logged so far in this run directory (including what was kept on resume).
  const std::vector<MetricsRecord>& records() const { return records_; }
  std::string jsonl_path() const;
  std::string plot_path() const;

 private:
  std::string run_dir_;
  MetricsLoggerOptions options_;
  std::vector<MetricsRecord> records_;
  std::FILE* jsonl_ = nullptr;  // open for appending when options_.jsonl
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

// The JSONL line for one step (no trailing newline): {"step":3,"actor/pg_loss":-0.01,...}.
std::string metrics_json_line(int64_t step, const Metrics& metrics);

// The compact console line: "step 3 | score 0.450 | success 0.300 | len 123.4 | kl 0.0012 | ..." with
// the metrics that are present.
std::string format_console_line(int64_t step, const Metrics& metrics);

}  // namespace tinyzero
