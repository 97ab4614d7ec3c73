// Wall time of a run's phases, recorded as metrics (timing_s/...), and the peak of the memory allocated on
// the device during each (memory/peak_gib/..., where the memory meter runs: memory_meter.h).
#pragma once

#include <chrono>
#include <string>
#include <utility>

#include "tinyzero/metrics/logger.h"
#include "tinyzero/model/memory_meter.h"

namespace tinyzero {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Times one phase after another into `m`: the running phase's seconds are written under its name
// ("timing_s/gen") by next() (which starts the next phase), stop() or the destructor, and its peak
// allocated GiB on `device` under memory/peak_gib/<the name's last part>.
class StageTimer {
 public:
  StageTimer(Metrics& m, std::string name, const c10::Device& device) : m_(m), device_(device) {
    start(std::move(name));
  }
  ~StageTimer() { stop(); }
  StageTimer(const StageTimer&) = delete;
  StageTimer& operator=(const StageTimer&) = delete;

  void next(std::string name) {
    stop();
    start(std::move(name));
  }
  void stop() {
    if (name_.empty()) return;
    m_[name_] = seconds_since(start_);
    if (memory_meter_running(device_))
      m_["memory/peak_gib/" + name_.substr(name_.rfind('/') + 1)] = peak_allocated_bytes(device_) / (1 << 30);
    name_.clear();
  }

 private:
  void start(std::string name) {
    name_ = std::move(name);
    if (memory_meter_running(device_)) reset_peak_allocated_bytes(device_);
    start_ = Clock::now();
  }
  Metrics& m_;
  c10::Device device_;
  std::string name_;
  Clock::time_point start_;
};

}  // namespace tinyzero
