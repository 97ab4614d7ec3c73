// Data-parallel training of one model (the actor, or the critic): its parameters, its AdamW, and the
// collectives that keep every rank's copy identical.
//
// After each rank's backward over its share of the batch (losses divided by the GLOBAL denominator, so
// gradients add up), reduce_and_clip() sums the gradients over ranks in buckets and clips them by their
// global norm; step() updates. Plain data parallel: every rank keeps the whole AdamW state and applies
// the same update. ZeRO stage 1: each rank keeps and updates the state of a contiguous slice of the
// parameters (partition_by_size), then every parameter is broadcast from its owner. World 1: no
// collectives at all.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tinyzero/core/config.h"
#include "tinyzero/dist/process_group.h"
#include "tinyzero/trainer/optimizer.h"

namespace tinyzero {

class DataParallelOptimizer {
 public:
  DataParallelOptimizer(std::vector<std::pair<std::string, at::Tensor>> params, const OptimConfig& config,
                        ProcessGroup& pg, int64_t zero_stage, int64_t bucket_bytes);

  void zero_grad();
  // Copies rank `root`'s parameters to every rank (an identical start).
  void broadcast_parameters(int root = 0);
  // Sums the gradients over ranks (missing gradients count as zero) and clips them to `max_norm` (<= 0:
  // off). Returns the global norm before clipping (non-finite when some gradient is).
  double reduce_and_clip(double max_norm);
  // The AdamW update with learning rate `lr` of this rank's parameters, then (ZeRO-1) the broadcast of
  // each parameter from its owner.
  void step(double lr);
  int64_t steps_taken() const { return adam_->steps_taken(); }

  // The whole optimizer state, named as AdamW::state_tensors() names it, as CPU tensors on rank 0 (with
  // ZeRO-1 gathered from the owners); empty on other ranks. Every rank must call it.
  std::vector<std::pair<std::string, at::Tensor>> gather_state();
  // Loads this rank's share of a state written from gather_state() (any world size) from `file`.
  void load_state(const std::string& file, int64_t steps_taken, const at::Device& device);

  // A 64-bit hash of every parameter's bytes, compared across ranks: throws Error when the ranks' copies
  // differ (they must be bitwise identical). Returns the hash.
  uint64_t check_in_sync(const std::string& what);

  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }
  bool sharded() const { return !owners_.empty(); }
  // Parameters whose AdamW state this rank keeps (all of them unless sharded).
  int64_t owned_parameters() const;

 private:
  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<int> owners_;  // owner rank of each parameter (ZeRO-1), empty otherwise
  std::unique_ptr<AdamW> adam_;
  ProcessGroup& pg_;
  int64_t bucket_bytes_;
};

}  // namespace tinyzero
