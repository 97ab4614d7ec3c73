// MetricsLogger: JSONL, console, TensorBoard and plot per step; see metrics/logger.h.
#include "tinyzero/metrics/logger.h"

#include "tinyzero/core/log.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/metrics/names.h"
#include "tinyzero/metrics/tensorboard.h"

namespace fs = std::filesystem;

namespace tinyzero {

MetricsLoggerOptions metrics_logger_options(const LoggingConfig& logging) {
  MetricsLoggerOptions options;
  options.console = logging.console;
  options.jsonl = logging.jsonl;
  options.tensorboard = logging.tensorboard;
  options.plot = logging.plot;
  return options;
}

MetricsLogger::MetricsLogger(const std::string& run_dir, const MetricsLoggerOptions& options)
    : run_dir_(run_dir), options_(options) {
  std::error_code ec;
  fs::create_directories(run_dir_, ec);
  if (ec) throw IoError("cannot create the run directory '" + run_dir_ + "': " + ec.message());
  if (options_.jsonl) {
    const std::string path = jsonl_path();
    std::string kept;  // lines of an earlier run to keep, byte for byte
    if (options_.resume_step && fs::exists(path, ec)) {
      std::istringstream in(read_file(path));
      std::string line;
      while (std::getline(in, line)) {
        std::vector<MetricsRecord> parsed = parse_metrics_jsonl(line);
        if (parsed.size() != 1 || parsed[0].step > *options_.resume_step) continue;  // later or half-written
        kept += line + "\n";
        records_.push_back(std::move(parsed[0]));
      }
    }
    write_file_atomic(path, kept);
    jsonl_ = std::fopen(path.c_str(), "ab");
    if (!jsonl_) throw IoError("cannot open '" + path + "' for appending: " + std::strerror(errno));
  }
  if (options_.tensorboard) {
    tensorboard_ = std::make_unique<TensorBoardWriter>((fs::path(run_dir_) / "tensorboard").string());
    if (options_.resume_step) tensorboard_->add_session_start(*options_.resume_step + 1);
  }
}

MetricsLogger::~MetricsLogger() {
  if (jsonl_) std::fclose(jsonl_);
}

std::string MetricsLogger::jsonl_path() const { return (fs::path(run_dir_) / "metrics.jsonl").string(); }
std::string MetricsLogger::plot_path() const { return (fs::path(run_dir_) / "plot.svg").string(); }

void MetricsLogger::log(int64_t step, const Metrics& metrics) {
  if (jsonl_) {
    const std::string line = metrics_json_line(step, metrics) + "\n";
    if (std::fwrite(line.data(), 1, line.size(), jsonl_) != line.size() || std::fflush(jsonl_) != 0)
      throw IoError("cannot append to '" + jsonl_path() + "': " + std::strerror(errno) +
                    "; check the disk space of the run directory");
  }
  MetricsRecord record;
  record.step = step;
  for (const auto& [name, value] : metrics)
    if (std::isfinite(value)) record.values[name] = value;
  records_.push_back(std::move(record));
  if (tensorboard_) tensorboard_->add_scalars(step, ScalarList(metrics.begin(), metrics.end()));
  if (options_.console) logging::info("{}", format_console_line(step, metrics));
  if (options_.plot) write_file_atomic(plot_path(), render_metrics_svg(records_, run_dir_));
}

std::string metrics_json_line(int64_t step, const Metrics& metrics) {
  nlohmann::ordered_json j;
  j["step"] = step;
  for (const auto& [name, value] : metrics) {
    if (std::isfinite(value))
      j[name] = value;
    else
      j[name] = nullptr;
  }
  return j.dump();
}

std::string format_console_line(int64_t step, const Metrics& metrics) {
  namespace n = metric_names;
  struct Field {
    const char* name;
    const char* label;
    const char* format;
  };
  static const Field kFields[] = {
      {n::kScoreMean, "score", "%.3f"},
      {n::kSuccessRate, "success", "%.3f"},
      {n::kResponseLengthMean, "len", "%.1f"},
      {n::kPgLoss, "pg_loss", "%.4f"},
      {n::kKlLoss, "kl", "%.4g"},
      {n::kRewardKlPenalty, "kl_reward", "%.4g"},
      {n::kEntropy, "entropy", "%.3f"},
      {n::kVfLoss, "vf_loss", "%.4f"},
      {n::kGradNorm, "grad_norm", "%.3f"},
      {n::kLr, "lr", "%.2e"},
      {n::kThroughput, "tok/s", "%.0f"},
      {n::kTimingStep, "s/step", "%.2f"},
  };
  std::string line = "step " + std::to_string(step);
  char buf[64];
  for (const Field& f : kFields) {
    auto it = metrics.find(f.name);
    if (it == metrics.end()) continue;
    std::snprintf(buf, sizeof buf, f.format, it->second);
    line += std::string(" | ") + f.label + " " + buf;
  }
  const std::string val_prefix = n::kValTestScorePrefix;
  for (auto it = metrics.lower_bound(val_prefix); it != metrics.end() && it->first.rfind(val_prefix, 0) == 0;
       ++it) {
    std::snprintf(buf, sizeof buf, "%.3f", it->second);
    line += " | val " + it->first.substr(val_prefix.size()) + " " + buf;
  }
  return line;
}

}  // namespace tinyzero
