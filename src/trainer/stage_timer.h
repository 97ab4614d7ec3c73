// Wall time of a run's phases, recorded as metrics (timing_s/...).
#pragma once

#include <chrono>
#include <string>
#include <utility>

#include "tinyzero/metrics/logger.h"

namespace tinyzero {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Times one phase after another into `m`: the running phase's seconds are written under its name by
// next() (which starts the next phase), stop() or the destructor.
class StageTimer {
 public:
  StageTimer(Metrics& m, std::string name) : m_(m), name_(std::move(name)), start_(Clock::now()) {}
  ~StageTimer() { stop(); }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

  void next(std::string name) {
    stop();
    name_ = std::move(name);
    start_ = Clock::now();
  }
  void stop() {
    if (!name_.empty()) m_[name_] = seconds_since(start_);
    name_.clear();
  }

 private:
  Metrics& m_;
  std::string name_;
  Clock::time_point start_;
};

}  // namespace tinyzero
