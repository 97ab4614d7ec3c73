// A run's first and last validation from metrics.jsonl (see summary.h).
#include "tinyzero/recipe/summary.h"

#include <cstdio>
#include <filesystem>

#include "tinyzero/metrics/names.h"
#include "tinyzero/metrics/plot.h"

namespace tinyzero {

RunSummary summarize_run(const std::string& run_dir, const TrainConfig& config) {
  RunSummary s;
  s.run_dir = run_dir;
  s.metrics_path = (std::filesystem::path(run_dir) / "metrics.jsonl").string();
  if (config.logging.plot) s.plot_path = (std::filesystem::path(run_dir) / "plot.svg").string();
  s.task = config.data.task;
  const std::string metric = std::string(metric_names::kValSuccessRatePrefix) + s.task;
  for (const auto& record : read_metrics_jsonl(s.metrics_path)) {
    auto it = record.values.find(metric);
    if (it == record.values.end()) continue;
    const ValidationPoint point{record.step, it->second};
    if (!s.first) s.first = point;
    s.last = point;
  }
  std::string problems = config.data.val_files.empty() ? std::to_string(config.data.val_size) + " problems"
                                                       : "the problems of " + config.data.val_files;
  char temperature[64];
  std::snprintf(temperature, sizeof temperature, "temperature %g", config.rollout.val_temperature);
  s.held_out = problems + " never trained on, " +
               (config.rollout.val_temperature == 0 ? std::string("greedy") : std::string(temperature)) +
               ", " +
               (config.reward.mode == "tinyzero" ? "TinyZero's reward" : config.reward.mode + " reward");
  return s;
}

std::string format_run_summary(const RunSummary& s) {
  std::string out;
  char line[256];
  if (!s.first) {
    out += "no held-out validation in " + s.metrics_path + " (trainer.test_freq is 0)\n";
  } else {
    out += "held-out " + s.task + " success (" + s.held_out + "):\n";
    const bool base = s.first->step == 0;
    std::snprintf(line, sizeof line, "  %-23s step %lld: %5.1f%%\n",
                  base ? "base (before training)," : "first validation,",
                  static_cast<long long>(s.first->step), 100 * s.first->success_rate);
    out += line;
    if (s.last->step != s.first->step) {
      std::snprintf(line, sizeof line, "  %-23s step %lld: %5.1f%%\n", "trained,",
                    static_cast<long long>(s.last->step), 100 * s.last->success_rate);
      out += line;
    }
  }
  if (!s.plot_path.empty())
    out += "learning curve: " + s.plot_path + "  (metrics: " + s.metrics_path + ")\n";
  else
    out += "metrics: " + s.metrics_path + "\n";
  return out;
}

}  // namespace tinyzero
