// Data-parallel communication over PyTorch's c10d: a TCPStore rendezvous (rank 0 serves it) and
// ProcessGroupGloo (CPU tensors) or ProcessGroupNCCL (CUDA tensors, one GPU per rank).
//
// Every collective must be called by all ranks in the same order with tensors of the same shapes and
// dtypes. Each one waits at most the configured timeout; a peer that died (connection closed) or hung
// (timeout) turns into tinyzero::Error with one line such as
//   "rank 0: all_reduce_sum timed out after 30 s waiting for rank 1; a peer may have died or hung - see its
//   log"
// and the group is unusable afterwards (every later call throws at once; its destructor neither blocks nor
// aborts), so the program can report and exit. A world of 1 is a trivial group: every collective is a
// no-op with no store and no sockets, so single-process code needs no special case.
//
// Typical data-parallel step:
//   auto env = detect_dist_env();
//   auto pg = init_process_group(env, cfg.distributed.backend, device, cfg.distributed.timeout_s);
//   pg->broadcast(params, 0);                          // identical start
//   ... backward ...
//   pg->all_reduce_sum(grads, cfg.distributed.bucket_mb << 20);   // then scale by 1/global count
//   auto m = pg->all_reduce({loss_sum, tokens}, ReduceOp::kSum);
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tinyzero/dist/dist_env.h"

namespace tinyzero {

enum class ReduceOp { kSum, kMax, kMin };

// Default size of the flat buffers collectives of many tensors are packed into.
constexpr int64_t kDefaultBucketBytes = int64_t{25} << 20;

// Collectives launched but not yet waited for (all_reduce_sum_start): lets a caller overlap
// communication with other work. wait() copies the results back; the destructor waits if wait() was not
// called (and swallows a failure then: call wait() to see it). Not thread-safe, like ProcessGroup: use
// both from one thread.
class PendingCollective {
 public:
  struct State;
  explicit PendingCollective(std::unique_ptr<State> state);
  PendingCollective(PendingCollective&&) noexcept;
  PendingCollective& operator=(PendingCollective&&) noexcept;
  ~PendingCollective();
  void wait();  // throws Error as the blocking collectives do
  bool done() const;

 private:
  std::unique_ptr<State> state_;
};

class ProcessGroup {
 public:
  struct Impl;
  // Use init_process_group(); this constructor is for it alone (impl == nullptr: world of 1).
  ProcessGroup(std::shared_ptr<Impl> impl, int rank, int world_size, std::string backend, double timeout_s);
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;
  ~ProcessGroup();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_main() const { return rank_ == 0; }
  const std::string& backend() const { return backend_; }  // "none" (world 1) | "gloo" | "nccl"
  double timeout_s() const { return timeout_s_; }
  // Where the tensors of its collectives must live (the CPU for a world of 1).
  c10::Device device() const;

  // Sums `tensor` over all ranks, in place.
  void all_reduce_sum(at::Tensor& tensor);
  // Sums each tensor over all ranks, in place: tensors of the same dtype are packed into flat buckets of
  // about bucket_bytes (a larger tensor is its own bucket), every bucket is launched before the first is
  // waited for, and the sums are copied back. Tensors may be non-contiguous (e.g. parameters' grads).
  void all_reduce_sum(std::vector<at::Tensor>& tensors, int64_t bucket_bytes = kDefaultBucketBytes);
  // The same, returning once every bucket is launched; wait() on the result before using the tensors.
  // The tensors must stay alive and untouched until then.
  PendingCollective all_reduce_sum_start(std::vector<at::Tensor> tensors,
                                         int64_t bucket_bytes = kDefaultBucketBytes);

  // Copies root's values of every tensor into the other ranks' tensors, in place (bucketed the same way).
  // Works on parameters that require grad (done under no-grad).
  void broadcast(std::vector<at::Tensor>& tensors, int root, int64_t bucket_bytes = kDefaultBucketBytes);
  // For each i, copies owners[i]'s values of tensors[i] to every other rank (ZeRO-1: each rank updates the
  // parameters it owns, then this makes every rank whole). Consecutive tensors of one owner and dtype are
  // packed into one bucket, so contiguous ownership (partition_by_size) means few, large transfers.
  void broadcast_from_owners(std::vector<at::Tensor>& tensors, const std::vector<int>& owners,
                             int64_t bucket_bytes = kDefaultBucketBytes);

  // Parameter sharding (ZeRO-2/3). For each i, every rank's inputs[i] (n_i elements, the same n_i on every
  // rank), concatenated in rank order into outputs[i] (world * n_i elements); all launched as one
  // coalesced collective. Returns once launched: wait() before reading the outputs; inputs and outputs
  // must stay alive and untouched until then. Contiguous tensors of one dtype per pair.
  PendingCollective all_gather_start(std::vector<at::Tensor> outputs, std::vector<at::Tensor> inputs);
  // For each i, the sum over ranks of inputs[i] (world * n_i elements), of which rank r receives elements
  // [r * n_i, (r + 1) * n_i) in outputs[i] (n_i elements). Same rules as all_gather_start.
  PendingCollective reduce_scatter_sum_start(std::vector<at::Tensor> outputs, std::vector<at::Tensor> inputs);

  // Element-wise reduction of a few host values (metrics, counts); exact for integers below 2^53.
  std::vector<double> all_reduce(std::vector<double> values, ReduceOp op);
  double all_reduce(double value, ReduceOp op);

  // Every rank's `mine`, in rank order, on every rank (results and logs of evaluation); the bytes travel
  // through the group's device like any tensor (a few MB at most is the intended use).
  std::vector<std::string> all_gather_strings(const std::string& mine);

  // Returns once every rank has called it (or throws after the timeout).
  void barrier();
  // For a long task of rank 0 (writing an 86 GB checkpoint to a slow disk): rank 0 calls it once the
  // task is done, with its outcome `status` ("" for success, else what went wrong), and goes on; every
  // other rank waits there up to `timeout_s`, which may exceed the collectives' timeout, through the
  // rendezvous store rather than a collective, and gets rank 0's status. `tag` names the task (one call
  // per tag). Throws Error naming the tag and the timeout, or rank 0's loss.
  std::string wait_for_main(const std::string& tag, double timeout_s, const std::string& status = "");
  // The converse, for a task every rank does (each writes its shard of a checkpoint): each rank reports
  // its `status` ("" for success) and goes on, except rank 0, which waits up to `timeout_s` for every
  // rank's report and returns them in rank order (others get an empty vector). Throws as wait_for_main.
  std::vector<std::string> report_to_main(const std::string& tag, const std::string& status,
                                          double timeout_s);

 private:
  // Runs `wait` (store operations bounded by the given timeout); a failure breaks the group with a
  // message naming `op`, whom it waited for, and the timeout.
  void store_wait(const std::string& op, const std::string& waited_for, double timeout_s,
                  const std::function<void(std::chrono::milliseconds)>& wait);

  std::shared_ptr<Impl> impl_;  // shared with PendingCollective; null for a world of 1
  int rank_ = 0;
  int world_size_ = 1;
  std::string backend_;
  double timeout_s_ = 0;
};

// Joins the job described by `env` (world 1: returns the trivial group at once).
//   backend: "auto" (nccl for a CUDA device, else gloo), "gloo" or "nccl" (distributed.backend);
//   device: where the tensors passed to collectives live; for NCCL, cuda:<index> becomes this process's
//     current device (pass cuda:<env.local_rank>; a device without index means that);
//   timeout_s: limit for the rendezvous and for each collective.
// Throws ConfigError for an unknown backend, one not compiled into this build (naming those that are), or
// NCCL with a CPU device; Error when the rendezvous fails or times out (naming MASTER_ADDR:MASTER_PORT,
// the rank and the timeout).
std::unique_ptr<ProcessGroup> init_process_group(const DistEnv& env, const std::string& backend,
                                                 const c10::Device& device, double timeout_s);

// Backends compiled into this build: {"gloo", "nccl"} with the pinned CUDA wheel and libgloo-dev.
std::vector<std::string> available_backends();
// One line for --version: "distributed backends: nccl (NCCL 2.28.9), gloo" (or "none").
std::string backends_description();

}  // namespace tinyzero
