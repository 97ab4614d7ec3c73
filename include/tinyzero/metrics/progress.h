// A one-line progress bar on stderr for long phases (rollout, validation), drawn only when stderr is a
// terminal, so logs and CI output never fill with carriage returns.
//
//   ProgressBar bar("rollout", rows, config.logging.progress);
//   for (...) { ...; bar.advance(chunk_rows); }   // the line is cleared when `bar` goes away
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace tinyzero {

class ProgressBar {
 public:
  // Shown when `enabled` and stderr is a terminal (or when `force`, for tests).
  ProgressBar(std::string label, int64_t total, bool enabled, bool force = false);
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void advance(int64_t n = 1);
  bool shown() const { return shown_; }
  // The line as drawn for `done` of `total` after `seconds` (no carriage return), e.g.
  // "rollout [#########...........]  48/128  3.1 s  eta 5.2 s".
  static std::string render(const std::string& label, int64_t done, int64_t total, double seconds,
                            int width = 24);

 private:
  std::string label_;
  int64_t total_, done_ = 0;
  bool shown_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace tinyzero
