// Allocated and peak bytes per device (see memory_meter.h).
#include "tinyzero/model/memory_meter.h"

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>
#ifdef TZ_HAVE_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

#include <algorithm>
#include <atomic>
#include <memory>

namespace tinyzero {
namespace {

// Receives c10's CPU allocation reports: total_allocated is the reporter's running count of live bytes
// allocated while reporting was on.
struct CpuMeter : public c10::MemoryReportingInfoBase {
  std::atomic<int64_t> current{0}, peak{0};
  void reportMemoryUsage(void* /*ptr*/, int64_t /*alloc_size*/, size_t total_allocated,
                         size_t /*total_reserved*/, c10::Device device) override {
    if (!device.is_cpu()) return;
    const auto now = static_cast<int64_t>(total_allocated);
    current.store(now, std::memory_order_relaxed);
    int64_t seen = peak.load(std::memory_order_relaxed);
    while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }
  bool memoryProfilingEnabled() const override { return true; }
};

std::shared_ptr<CpuMeter>& cpu_meter() {
  static std::shared_ptr<CpuMeter> meter;
  return meter;
}

}  // namespace

void start_cpu_memory_meter() {
  auto& meter = cpu_meter();
  if (!meter) meter = std::make_shared<CpuMeter>();
  if (c10::ThreadLocalDebugInfo::get(c10::DebugInfoKind::PROFILER_STATE) != meter.get())
    c10::ThreadLocalDebugInfo::_push(c10::DebugInfoKind::PROFILER_STATE, meter);
}

bool memory_meter_running(const c10::Device& device) {
#ifdef TZ_HAVE_CUDA
  if (device.is_cuda()) return true;
#endif
  return device.is_cpu() && cpu_meter() != nullptr;
}

double allocated_bytes(const c10::Device& device) {
#ifdef TZ_HAVE_CUDA
  if (device.is_cuda()) {
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return static_cast<double>(stats.allocated_bytes[0].current);  // 0: StatType::AGGREGATE
  }
#endif
  return cpu_meter() ? static_cast<double>(cpu_meter()->current.load()) : 0.0;
}

double peak_allocated_bytes(const c10::Device& device) {
#ifdef TZ_HAVE_CUDA
  if (device.is_cuda()) {
    const auto stats =
        c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
    return static_cast<double>(stats.allocated_bytes[0].peak);
  }
#endif
  return cpu_meter() ? static_cast<double>(cpu_meter()->peak.load()) : 0.0;
}

void reset_peak_allocated_bytes(const c10::Device& device) {
#ifdef TZ_HAVE_CUDA
  if (device.is_cuda()) {
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
    return;
  }
#endif
  if (cpu_meter()) cpu_meter()->peak.store(cpu_meter()->current.load());
}

}  // namespace tinyzero
