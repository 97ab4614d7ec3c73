// Data-parallel training of one model (the actor, or the critic): its parameters, its AdamW, and the
// collectives that keep every rank's copy identical.
//
// After each rank's backward over its share of the batch (losses divided by the GLOBAL denominator, so
// gradients add up), reduce_and_clip() sums the gradients over ranks in buckets and clips them by their
// global norm; step() updates. Plain data parallel: every rank keeps the whole AdamW state and applies
// the same update. ZeRO stage 1: each rank keeps and updates the state of a contiguous slice of the
// parameters (partition_by_size), then every parameter is broadcast from its owner. World 1: no
// collectives at all.
//
// Overlap: arm_overlap() before the last backward pass of an optimizer step registers that pass's
// gradients, through parameter hooks, as they are produced; each bucket (parameters in reverse model
// order, the order backward produces them) starts its all-reduce as soon as it is complete and every
// bucket before it has started (the same order on every rank), while backward goes on with the layers
// below. reduce_and_clip() then waits for them.
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
                        ProcessGroup& pg, int64_t zero_stage, int64_t bucket_bytes, bool overlap = true);
  ~DataParallelOptimizer();
  DataParallelOptimizer(const DataParallelOptimizer&) = delete;
  DataParallelOptimizer& operator=(const DataParallelOptimizer&) = delete;

  // The next backward pass is the last before reduce_and_clip(): reduce its gradients while it runs.
  // A no-op for a single process or with overlap off.
  void arm_overlap();
  // Of the gradient buckets reduced so far, the share started while backward was still running.
  double overlapped_share() const {
    return reduced_buckets_ ? static_cast<double>(overlapped_buckets_) / static_cast<double>(reduced_buckets_)
                            : 0.0;
  }

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
  // differ (they must be bitwise identical). Returns the hash (0 for a single process, which skips it).
  uint64_t check_in_sync(const std::string& what);

  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }
  bool sharded() const { return !owners_.empty(); }
  // Parameters whose AdamW state this rank keeps (all of them unless sharded).
  int64_t owned_parameters() const;

 private:
  struct Bucket;
  void on_gradient(size_t index, const at::Tensor& grad);
  void launch_ready_buckets();
  void finish_overlap();

  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<int> owners_;  // owner rank of each parameter (ZeRO-1), empty otherwise
  std::unique_ptr<AdamW> adam_;
  ProcessGroup& pg_;
  int64_t bucket_bytes_;
  // Overlap state: buckets in launch order, each parameter's bucket, the accumulated gradients of the
  // armed pass, the hooks' handles.
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;
  std::vector<at::Tensor> full_grads_;
  std::vector<unsigned> hooks_;
  size_t next_launch_ = 0;
  bool armed_ = false, used_ = false;
  int64_t overlapped_buckets_ = 0, reduced_buckets_ = 0;
};

}  // namespace tinyzero
