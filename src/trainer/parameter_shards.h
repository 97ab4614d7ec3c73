// A model's parameters sharded across the ranks of a process group (ZeRO stages 2 and 3).
//
// Every parameter, flattened and zero-padded to a multiple of the world size W, is cut into W equal
// chunks; rank r keeps chunk r as its shard (a flat tensor named like the parameter, which the
// optimizer updates). Units are the model's decoder layers plus the root (everything else), as the
// model's ParameterHost calls see them.
//  - Gradients (stages 2 and 3): when backward has finished a decoder layer, its gradients are
//    reduce-scattered at once (summed over ranks, each rank receiving its chunk) and freed; each rank
//    accumulates its chunks over the step's micro-batches. The root's gradients wait for
//    finish_gradients().
//  - Parameters (stage 3 only): outside acquire()/release() a parameter holds no data. acquire() gathers
//    the unit from every rank's shard (one coalesced all-gather), and starts gathering the next layer in
//    the direction of travel (forward up, backward down) so that transfer overlaps compute. The root is
//    gathered on first use and freed by release_all() at the end of a phase. pin() keeps everything
//    whole (generation); hold() keeps one unit whole at a time (checkpoints). Stage 2 keeps every parameter
//    whole and, after each update, gathers the updated shards back into them.
// Every rank must make the same calls in the same order (they are collectives): the trainer's passes do.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tinyzero/dist/process_group.h"
#include "tinyzero/model/qwen2.h"

namespace tinyzero {

class ParameterShards : public ParameterHost {
 public:
  // `params`: the model's parameters in model order, named as the model names them (decoder layer i's
  // contain "layers.<i>."), whole. The shards start as copies of this rank's chunks; the parameters stay
  // whole until shard_from_parameters() (after every rank has the same ones). free_parameters: stage 3.
  ParameterShards(std::vector<std::pair<std::string, at::Tensor>> params, ProcessGroup& pg,
                  bool free_parameters);
  ~ParameterShards() override;
  ParameterShards(const ParameterShards&) = delete;
  ParameterShards& operator=(const ParameterShards&) = delete;

  void acquire(int64_t unit) override;
  void release(int64_t unit) override;
  void gradients_ready(int64_t layer) override;
  bool frees_parameters() const override { return free_; }
  void begin_pass() override;
  bool passes_are_static() const override { return !free_ || (pinned_ && !lockstep_); }

  // This rank's shard of every parameter (flat, ceil(numel / W) elements, the parameter's dtype), named
  // like it. After finish_gradients() their .grad() hold this rank's chunk of the summed gradients.
  const std::vector<std::pair<std::string, at::Tensor>>& shards() const { return shards_; }
  int64_t units() const { return static_cast<int64_t>(units_.size()); }

  // Copies this rank's chunks out of the whole parameters into the shards; stage 3 then frees them.
  void shard_from_parameters();
  // Every parameter whole (and kept whole) until unpin(). Collective.
  void pin();
  void unpin();
  // Stage 3: frees every gathered unit (the root after a phase); a no-op while pinned or for stage 2.
  void release_all();
  // Stage 3, generation with the weights gathered a layer at a time: each forward pass gathers, so every
  // rank must run as many passes, while the ranks' prompts end after different numbers of decode steps.
  // From start_lockstep() each pass first tells the others that it runs (an all-reduce);
  // finish_lockstep() then runs passes of gathers alone until every rank has finished. Collective.
  void start_lockstep();
  void finish_lockstep();
  // Stage 3: gathers `unit` whole (nothing prefetched) and frees every other unit, for visiting the
  // model a unit at a time in any order (a checkpoint's write order). Collective; a no-op for stage 2.
  void hold(int64_t unit);
  // Moves the shards (and, with `gradients`, their gradients) and the parameters (whole for stage 2,
  // their empty stand-ins for stage 3, which first frees whatever is gathered) to `device`: offloading a
  // model to the host while it is idle. Not collective; throws Error while pinned or while gradients are
  // being reduced. Collectives need the shards on the process group's device again first.
  void to(const at::Device& device, bool gradients);
  at::Device device() const { return shards_.front().second.device(); }

  // Reduces what gradients are left in the parameters' .grad() (the root's) and waits for every
  // reduction: the shards' .grad() then hold the sums of the step (zeros where nothing was produced).
  void finish_gradients();
  void zero_grad();
  // After the optimizer changed the shards: stage 2 gathers them into the whole parameters; stage 3
  // frees any whole copy, now stale. Collective for stage 2.
  void parameters_updated();

  // Parameter `index`'s whole shape, and the elements [begin, end) of it, flattened, that this rank's
  // shard holds (end - begin may be less than the shard's length, whose tail is padding, or 0).
  const std::vector<int64_t>& shape(size_t index) const { return shapes_[index]; }
  // The parameter called `name` (as given to the constructor): its index (nullopt when there is none),
  // its unit, and itself (whole only while its unit is).
  std::optional<size_t> index_of(const std::string& name) const;
  int64_t unit_of(size_t index) const;
  const at::Tensor& parameter(size_t index) const { return params_[index].second; }
  std::pair<int64_t, int64_t> shard_range(size_t index) const;
  // This rank's chunk of `whole`, a tensor shaped like parameter `index` (throws Error naming `what`
  // when its shape differs).
  at::Tensor chunk_of(size_t index, const at::Tensor& whole, const std::string& what = "tensor") const;

 private:
  struct Gather;
  struct Reduction;
  void start_gather(int64_t unit);
  void finish_gather(int64_t unit);
  void free_unit(int64_t unit);
  void free_whole_units();             // whatever is gathered or being gathered, pinned or not
  void copy_chunks_from_parameters();  // this rank's chunk of each whole parameter into its shard
  void start_reduction(int64_t unit);
  void finish_oldest_reduction();
  int64_t padded(size_t k) const { return chunk_[k] * world_; }

  std::vector<std::pair<std::string, at::Tensor>> params_;
  std::vector<std::pair<std::string, at::Tensor>> shards_;
  std::vector<std::vector<int64_t>> shapes_;
  std::vector<int64_t> chunk_;
  std::vector<std::vector<size_t>> units_;  // parameters of each unit; the root is the last
  std::vector<bool> whole_;
  std::map<int64_t, Gather> gathers_;  // started, not yet waited for
  std::deque<Reduction> reductions_;   // started, not yet added to the shards' gradients
  ProcessGroup& pg_;
  int world_ = 1, rank_ = 0;
  bool free_ = false, pinned_ = false, lockstep_ = false;
  int64_t last_acquired_ = -1;
};

}  // namespace tinyzero
