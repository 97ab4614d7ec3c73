// Memory LibTorch has allocated on a device, and its peak since the last reset: what the trainer logs as
// each phase's peak (memory/peak_gib/*) and what the estimate of --dry-run is checked against.
//  - CUDA: the caching allocator's statistics (bytes in tensors, not the allocator's unused reserve).
//  - CPU: c10's allocation reports, which flow while start_cpu_memory_meter() is in effect on the
//    allocating thread (and on threads that take over its state, as generate's workers do); allocations
//    made before it started do not count.
#pragma once

#include <c10/core/Device.h>

namespace tinyzero {

// Starts counting this thread's CPU allocations (for the rest of the process; idempotent).
void start_cpu_memory_meter();
// Whether allocated_bytes() means something on `device` (CUDA, or the CPU once started).
bool memory_meter_running(const c10::Device& device);
double allocated_bytes(const c10::Device& device);
double peak_allocated_bytes(const c10::Device& device);
void reset_peak_allocated_bytes(const c10::Device& device);

}  // namespace tinyzero
