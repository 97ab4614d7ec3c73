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
//
// ZeRO stages 2 and 3 (more than one rank): a ParameterShards keeps each rank's shard of every
// parameter, gradient and AdamW state (parameter_shards.h); the model asks it for its parameters through
// its ParameterHost (attach host() with set_parameter_host). Gradients are reduce-scattered layer by layer
// during backward; the norm is summed over the ranks' shards; AdamW updates the shards; stage 2 then
// gathers the parameters whole again, stage 3 gathers them a layer at a time when the model uses them.
// With optim.offload the AdamW state lives in host memory with a host copy of the shards: each step
// copies the shards' gradients there, updates, and copies the shards back (ZeRO-Offload).
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
#include "trainer/parameter_shards.h"
#include "trainer/state_files.h"

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
  // Copies rank `root`'s parameters to every rank (an identical start); stages 2/3 then take their shards
  // from them (and stage 3 frees them).
  void broadcast_parameters(int root = 0);
  // Sums the gradients over ranks (missing gradients count as zero) and clips them to `max_norm` (<= 0:
  // off). Returns the global norm before clipping (non-finite when some gradient is).
  double reduce_and_clip(double max_norm);
  // The AdamW update with learning rate `lr` of this rank's parameters, then (ZeRO-1) the broadcast of
  // each parameter from its owner.
  void step(double lr);
  int64_t steps_taken() const { return adam_->steps_taken(); }

  // This rank's part of the optimizer state for a checkpoint, as pieces of the whole tensors (named as
  // AdamW::state_tensors() names them, shaped like the parameters): the whole state on rank 0 of plain
  // data parallel (every rank's copy is the same) and nothing on its other ranks; the parameters it
  // owns under ZeRO-1; its shard of every parameter's under stages 2/3. Views, not copies.
  std::vector<StatePiece> state_pieces() const;
  // How many ranks write state pieces: 1 for plain data parallel, every rank when sharded.
  int state_writers() const { return sharded() ? pg_.world_size() : 1; }
  // Loads this rank's part of a state written at any world size and stage (throws IoError naming a
  // missing or mis-shaped tensor).
  void load_state(const StateFiles& files, int64_t steps_taken);

  // A 64-bit hash of every parameter's bytes, compared across ranks: throws Error when the ranks' copies
  // differ (they must be bitwise identical). Returns the hash (0 for a single process or stage 3, whose
  // ranks hold different shards and no copies: they skip it).
  uint64_t check_in_sync(const std::string& what);

  const std::vector<std::pair<std::string, at::Tensor>>& params() const { return params_; }
  // ZeRO stage in effect (a single process runs stage 0 whatever was asked).
  int64_t stage() const { return stage_; }
  bool sharded() const { return stage_ >= 1; }
  // Stages 2/3: what the model's forward and backward call (set_parameter_host); nullptr otherwise.
  ParameterShards* host() const { return shards_.get(); }
  // Every parameter whole from pin_parameters() to unpin_parameters() (generation, saving weights);
  // release_gathered() frees what stage 3 gathered during a phase. Collective / no-ops below stage 3.
  void pin_parameters();
  void unpin_parameters();
  void release_gathered();
  // Offload (critic.offload): moves the parameters (stages 2/3: their shards) to `device`, and with
  // `with_state` also the gradients and the AdamW state (unless optim.offload keeps that on the host
  // already). Not collective; every collective needs them back on the process group's device first.
  void move_to(const at::Device& device, bool with_state);
  // Parameters whose AdamW state this rank keeps (all of them unless sharded).
  int64_t owned_parameters() const;

 private:
  struct Bucket;
  void on_gradient(size_t index, const at::Tensor& grad);
  void launch_ready_buckets();
  void finish_overlap();

  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<int> owners_;                  // owner rank of each parameter (ZeRO-1), empty otherwise
  std::unique_ptr<ParameterShards> shards_;  // stages 2 and 3
  // optim.offload: host copies of the shards, which AdamW (and its state) works on.
  std::vector<std::pair<std::string, at::Tensor>> host_shards_;
  void copy_shards_to_host();
  std::unique_ptr<AdamW> adam_;
  ProcessGroup& pg_;
  int64_t stage_ = 0;
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

// Keeps an optimizer's parameters whole while alive (pin_parameters / unpin_parameters); nullptr: none.
class PinnedParameters {
 public:
  explicit PinnedParameters(DataParallelOptimizer* optimizer) : optimizer_(optimizer) {
    if (optimizer_) optimizer_->pin_parameters();
  }
  ~PinnedParameters() {
    if (optimizer_) optimizer_->unpin_parameters();
  }
  PinnedParameters(const PinnedParameters&) = delete;
  PinnedParameters& operator=(const PinnedParameters&) = delete;

 private:
  DataParallelOptimizer* optimizer_;
};

}  // namespace tinyzero
