// Memory estimate of a run per device, computed from the config and the model's config.json before
// anything heavy is loaded (`tinyzero-train --config FILE --dry-run`, and the trainer's start-up check).
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tinyzero/core/config.h"
#include "tinyzero/model/model_config.h"

namespace tinyzero {

struct MemoryItem {
  std::string name;  // "actor weights", "KV cache", ...
  double bytes = 0;
  std::string detail;  // how it was computed, e.g. "494.0M params x 2 B"
};

// What a phase of the step allocates on top of the resident items; phases do not overlap in time.
struct MemoryPhase {
  std::string name;  // "rollout", "log-prob passes", "actor update", "critic update", "optimizer step", ...
  std::vector<MemoryItem> items;
  double bytes() const;
};

struct MemoryEstimate {
  int64_t actor_parameters = 0;
  int64_t critic_parameters = 0;  // 0 without a critic
  int world_size = 1;
  int zero_stage = 0;
  bool cuda = false;                 // overhead terms (context, NCCL, fragmentation) apply
  double capacity_bytes = 0;         // the device's memory, as given to estimate_memory (0 = unknown)
  int64_t rollout_rows = 0;          // rows decoding at once on a device
  int64_t rollout_rows_total = 0;    // rows a device generates per step (train_batch_size x n / ranks)
  double checkpoint_disk_bytes = 0;  // one checkpoint's files: weights, AdamW state (critic's too)
  // ZeRO-3 generation gathers a layer at a time (distributed.rollout_gather: layer, or auto when the
  // whole gather does not fit capacity_bytes), not the whole actor once per phase.
  bool rollout_by_layer = false;
  // Items resident for the whole run (weights or their shards, gradients, optimizer state, reference,
  // critic).
  std::vector<MemoryItem> resident;
  // Per-phase peaks; the device needs resident + the largest of them.
  std::vector<MemoryPhase> phases;
  // CUDA context, NCCL buffers, allocator fragmentation (empty on the CPU).
  std::vector<MemoryItem> overhead;

  double resident_bytes() const;
  const MemoryPhase& largest_phase() const;
  const MemoryPhase* phase(const std::string& name) const;  // nullptr when absent
  double overhead_bytes() const;
  double total_bytes() const;  // resident + the largest phase + overhead
};

// `world_size` data-parallel ranks share the batch; distributed.zero_stage shards AdamW state (>= 1),
// gradients (>= 2) and parameters (3) over them. With rollout.micro_batch_size 0 the rows decoding at
// once are those that fit in rollout.memory_utilization of what `capacity_bytes` leaves after the resident
// items (all of a rank's rows when it is 0 = unknown), as the rollout engine sizes itself at run time.
MemoryEstimate estimate_memory(const TrainConfig& config, const TransformerConfig& model, int world_size,
                               double capacity_bytes = 0);

// A table of the estimate against `capacity_bytes` (0 = unknown), and, when it does not fit, what to
// change, largest saving first.
std::string format_memory_estimate(const MemoryEstimate& estimate, const TrainConfig& config,
                                   const TransformerConfig& model, double capacity_bytes,
                                   const std::string& device_name);

// Suggestions (config overrides with their saving) for a run that needs `excess_bytes` more.
std::vector<std::string> memory_suggestions(const MemoryEstimate& estimate, const TrainConfig& config,
                                            const TransformerConfig& model, double excess_bytes);

// Throws ConfigError naming the estimate, the capacity and memory_suggestions' advice when
// `estimate.total_bytes()` exceeds `capacity_bytes`.
void check_fits(const MemoryEstimate& estimate, const TrainConfig& config, const TransformerConfig& model,
                double capacity_bytes, const std::string& device_name);

// The trainer's start-up check, before any model is loaded: on a CUDA `device`, estimates the run (the
// shape from model.path's config.json) against the memory the device has free now (cudaMemGetInfo; the
// CUDA context already allocated is added back, since the estimate counts it) and calls check_fits.
// Does nothing on the CPU or when model.path has no config.json (loading the model reports that):
// returns the estimate it checked, if any.
std::optional<MemoryEstimate> check_fits_on_device(const TrainConfig& config, const c10::Device& device,
                                                   int world_size);

// The device a config declares (hardware.gpus x hardware.gpu_memory_gb); 0 = not declared.
int declared_world_size(const TrainConfig& config);
double declared_capacity_bytes(const TrainConfig& config);

}  // namespace tinyzero
