// Memory estimate of a run per device, computed from the config and the model's config.json before
// anything heavy is loaded (`tinyzero-train --config FILE --dry-run`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyzero/core/config.h"
#include "tinyzero/model/model_config.h"

namespace tinyzero {

struct MemoryItem {
  std::string name;  // "actor weights", "KV cache (rollout)", ...
  double bytes = 0;
  std::string detail;  // how it was computed, e.g. "494M params x 4 B (float32)"
};

struct MemoryEstimate {
  int64_t actor_parameters = 0;
  int64_t critic_parameters = 0;  // 0 without a critic
  int world_size = 1;
  double capacity_bytes = 0;       // the device's memory, as given to estimate_memory (0 = unknown)
  int64_t rollout_rows = 0;        // rows decoding at once on a device
  int64_t rollout_rows_total = 0;  // rows a device generates per step (train_batch_size x n / ranks)
  // Items resident for the whole run (weights, gradients, optimizer state, reference, critic).
  std::vector<MemoryItem> resident;
  // Peaks of the phases; they do not overlap in time, so the device needs resident + the largest.
  MemoryItem rollout_peak;  // KV cache + logits of the generation batch
  MemoryItem train_peak;    // activations of one micro-batch (+ the head's chunked logits)
  double total_bytes() const;
  double resident_bytes() const;
};

// `world_size` ranks share the batch (data parallel); ZeRO-1 divides the optimizer state by it. With
// rollout.micro_batch_size 0 the rows decoding at once are those that fit in rollout.memory_utilization of
// what `capacity_bytes` leaves after the resident items (all of a rank's rows when it is 0 = unknown),
// as the rollout engine sizes itself at run time.
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

}  // namespace tinyzero
