// ProcessGroup over c10d: TCPStore rendezvous, ProcessGroupGloo / ProcessGroupNCCL, bucketed collectives
// that wait with a timeout and turn a dead or hung peer into tinyzero::Error.
// Gloo is compiled where its headers exist (TZ_HAVE_GLOO), NCCL wherever LibTorch has CUDA
// (TZ_HAVE_NCCL); see src/CMakeLists.txt.
#include "tinyzero/dist/process_group.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#ifdef TZ_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef TZ_HAVE_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <nccl.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <thread>

#include "tinyzero/core/errors.h"

namespace tinyzero {

using C10dBackend = c10d::Backend;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string format_seconds(double s) {
  std::ostringstream out;
  out.precision(s < 10 ? 2 : 4);
  out << s;
  return out.str();
}

// The first line of a c10d/Gloo message, without LibTorch's backtrace, at most 300 characters.
std::string short_detail(const std::exception& e) {
  std::string text;
  if (auto* c10 = dynamic_cast<const c10::Error*>(&e))
    text = c10->what_without_backtrace();
  else
    text = e.what();
  auto nl = text.find('\n');
  if (nl != std::string::npos) text.resize(nl);
  if (text.size() > 300) text = text.substr(0, 300) + "...";
  while (!text.empty() && (text.back() == '.' || std::isspace(static_cast<unsigned char>(text.back()))))
    text.pop_back();
  return text;
}

bool mentions_any(const std::string& detail, std::initializer_list<const char*> words) {
  std::string lower = detail;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* w : words)
    if (lower.find(w) != std::string::npos) return true;
  return false;
}

bool mentions_timeout(const std::string& detail) { return mentions_any(detail, {"timed out", "timeout"}); }

// Gloo: "Connection closed by peer", "Read error ...: Connection reset by peer", "Broken pipe"; NCCL:
// "remote process exited or there was a network error".
bool mentions_lost_peer(const std::string& detail) {
  return mentions_any(detail,
                      {"connection", "closed", "reset by peer", "broken pipe", "remote process", "eof"});
}

}  // namespace

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<C10dBackend> backend;
  std::string name;  // gloo | nccl
  c10::Device device{c10::kCPU};
  std::chrono::milliseconds timeout{0};
  double timeout_s = 0;
  int rank = 0;
  int world = 1;
  std::atomic<bool> broken{false};
  std::string broken_reason;

  // CPU flat buffers of finished collectives, reused by later ones of the same dtype and size (each step
  // packs the same gradients the same way): saves allocating and page-faulting a copy of them every step
  // (measured: 100 MB all-reduced in 100 tensors, 0.28 s -> 0.15 s). At most kMaxPooledBytes are kept.
  // CUDA tensors need no pool: LibTorch's caching allocator does this already.
  static constexpr int64_t kMaxPooledBytes = int64_t{256} << 20;
  std::vector<at::Tensor> pool;
  int64_t pooled_bytes = 0;

  at::Tensor take_buffer(int64_t numel, const at::TensorOptions& options) {
    for (size_t i = 0; i < pool.size(); ++i) {
      if (pool[i].numel() == numel && pool[i].scalar_type() == options.dtype().toScalarType() &&
          pool[i].device() == options.device()) {
        at::Tensor t = std::move(pool[i]);
        pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(i));
        pooled_bytes -= t.nbytes();
        return t;
      }
    }
    return at::empty({numel}, options);
  }

  void give_back(at::Tensor buffer) {
    const int64_t bytes = static_cast<int64_t>(buffer.nbytes());
    if (!buffer.is_cpu() || pooled_bytes + bytes > kMaxPooledBytes) return;
    pooled_bytes += bytes;
    pool.push_back(std::move(buffer));
  }

  std::string peers() const {
    if (world == 2) return "rank " + std::to_string(1 - rank);
    return "the other " + std::to_string(world - 1) + " ranks";
  }

  // Marks the group unusable and throws the one-line message for a failed or timed-out collective.
  [[noreturn]] void fail(const std::string& op, const std::string& detail, double elapsed_s) {
    std::ostringstream m;
    m << "rank " << rank << ": " << op;
    if (mentions_timeout(detail) || elapsed_s >= 0.95 * timeout_s)
      m << " timed out after " << format_seconds(timeout_s) << " s waiting for " << peers();
    else if (mentions_lost_peer(detail))
      m << " failed after " << format_seconds(elapsed_s) << " s: lost the connection to " << peers();
    else
      m << " failed after " << format_seconds(elapsed_s) << " s";
    m << "; a peer may have died or hung - see its log (" << name << ": " << detail << ")";
    broken_reason = m.str();
    broken = true;
    throw Error(broken_reason);
  }

  void check_usable(const std::string& op) const {
    if (broken)
      throw Error("rank " + std::to_string(rank) + ": " + op +
                  " called after the process group failed: " + broken_reason);
  }

  void check_tensor(const std::string& op, const at::Tensor& t, size_t index) const {
    if (!t.defined())
      throw Error("rank " + std::to_string(rank) + ": " + op + " got an undefined tensor at index " +
                  std::to_string(index) +
                  " (e.g. a parameter without a gradient); every rank must pass the same "
                  "defined tensors");
    bool ok =
        t.device().type() == device.type() && (!device.has_index() || t.device().index() == device.index());
    if (!ok)
      throw Error("rank " + std::to_string(rank) + ": " + op + " got a tensor on " + t.device().str() +
                  " at index " + std::to_string(index) + ", but the " + name + " process group works on " +
                  device.str() + "; move it there first");
  }

  // Runs one launch. A failure to start (e.g. a dtype the backend lacks) breaks the group too: the other
  // ranks are now out of step with this one.
  template <typename F>
  c10::intrusive_ptr<c10d::Work> launch(const std::string& op, F&& start_fn) {
    try {
      return start_fn();
    } catch (const std::exception& e) {
      broken_reason = "rank " + std::to_string(rank) + ": " + op + " could not be started on " + name + " (" +
                      short_detail(e) + ")";
      broken = true;
      throw Error(broken_reason);
    }
  }

  void wait(const std::string& op, const c10::intrusive_ptr<c10d::Work>& work) {
    auto start = Clock::now();
    try {
      work->wait(timeout);
    } catch (const std::exception& e) {
      fail(op, short_detail(e), seconds_since(start));
    }
  }
};

// One flat buffer sent by one collective, and the tensors it is copied back into.
struct Bucket {
  std::vector<at::Tensor> tensors;
  at::Tensor flat;        // (sum of numels,) in the tensors' dtype; aliases tensors[0] when in_place
  bool in_place = false;  // a single contiguous tensor: no copies
  int root = -1;          // -1: all-reduce; else the rank broadcasting
};

struct PendingCollective::State {
  std::shared_ptr<ProcessGroup::Impl> impl;
  std::string op;
  std::vector<Bucket> buckets;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  std::vector<at::Tensor> keep_alive;  // a sharding collective's tensors, held until it is waited for
  bool waited = false;
};

PendingCollective::PendingCollective(std::unique_ptr<State> state) : state_(std::move(state)) {}
PendingCollective::PendingCollective(PendingCollective&&) noexcept = default;
PendingCollective& PendingCollective::operator=(PendingCollective&&) noexcept = default;

PendingCollective::~PendingCollective() {
  if (!state_ || state_->waited || state_->impl->broken) return;
  try {
    wait();
  } catch (const std::exception&) {
    // Reported by the next call on the group, which is now broken.
  }
}

bool PendingCollective::done() const { return !state_ || state_->waited; }

void PendingCollective::wait() {
  if (!state_ || state_->waited) return;
  state_->waited = true;
  auto& impl = *state_->impl;
  impl.check_usable(state_->op);
  for (auto& work : state_->works) impl.wait(state_->op, work);
  state_->keep_alive.clear();
  at::NoGradGuard no_grad;
  for (auto& b : state_->buckets) {
    if (b.in_place || b.root == impl.rank) continue;
    int64_t offset = 0;
    for (auto& t : b.tensors) {
      int64_t n = t.numel();
      t.copy_(b.flat.narrow(0, offset, n).view(t.sizes()));
      offset += n;
    }
  }
  for (auto& b : state_->buckets)
    if (!b.in_place) impl.give_back(std::move(b.flat));
}

namespace {

// Packs tensors into buckets keyed by (root, dtype) and launches each bucket as soon as it is full, so the
// packing of later buckets overlaps the transfer of earlier ones. Same tensor shapes, dtypes and roots on
// every rank give the same buckets in the same order.
class BucketLauncher {
 public:
  BucketLauncher(ProcessGroup::Impl& impl, PendingCollective::State& state, int64_t bucket_bytes)
      : impl_(impl), state_(state), bucket_bytes_(std::max<int64_t>(bucket_bytes, 1)) {}

  void add(const at::Tensor& t, int root) {
    if (t.numel() == 0) return;
    if (root != last_root_) flush_all();  // owner changed: send what the previous owner had
    last_root_ = root;
    Open* open = nullptr;
    for (auto& o : open_)
      if (o.dtype == t.scalar_type()) open = &o;
    if (!open) {
      open_.push_back(Open{t.scalar_type(), {}, 0});
      open = &open_.back();
    }
    const int64_t bytes = t.numel() * static_cast<int64_t>(t.element_size());
    if (open->bytes > 0 && open->bytes + bytes > bucket_bytes_) launch(*open, root);
    open->tensors.push_back(t);
    open->bytes += bytes;
    if (open->bytes >= bucket_bytes_) launch(*open, root);
  }

  void finish() { flush_all(); }

 private:
  struct Open {
    at::ScalarType dtype;
    std::vector<at::Tensor> tensors;
    int64_t bytes;
  };

  void flush_all() {
    for (auto& o : open_)
      if (!o.tensors.empty()) launch(o, last_root_);
    open_.clear();
  }

  void launch(Open& open, int root) {
    at::NoGradGuard no_grad;
    Bucket b;
    b.root = root;
    b.tensors = std::move(open.tensors);
    open.tensors.clear();
    open.bytes = 0;
    const bool sends = root < 0 || root == impl_.rank;  // this rank's values go out
    if (b.tensors.size() == 1 && b.tensors[0].is_contiguous()) {
      b.in_place = true;
      b.flat = b.tensors[0].view({-1});
    } else {
      int64_t numel = 0;
      for (auto& t : b.tensors) numel += t.numel();
      const auto& like = b.tensors[0];
      b.flat = impl_.take_buffer(numel, at::TensorOptions().dtype(like.scalar_type()).device(like.device()));
      if (sends) {  // pack, converting strides on the way
        int64_t offset = 0;
        for (auto& t : b.tensors) {
          b.flat.narrow(0, offset, t.numel()).view(t.sizes()).copy_(t);
          offset += t.numel();
        }
      }
    }
    std::vector<at::Tensor> wire_tensors{b.flat};
    C10dBackend& backend = *impl_.backend;
    auto work = impl_.launch(state_.op, [&] {
      if (root < 0) {
        c10d::AllreduceOptions opts;
        opts.reduceOp = c10d::ReduceOp::SUM;
        opts.timeout = impl_.timeout;
        return backend.allreduce(wire_tensors, opts);
      }
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      opts.rootTensor = 0;
      opts.timeout = impl_.timeout;
      return backend.broadcast(wire_tensors, opts);
    });
    state_.works.push_back(std::move(work));
    state_.buckets.push_back(std::move(b));
  }

  ProcessGroup::Impl& impl_;
  PendingCollective::State& state_;
  int64_t bucket_bytes_;
  std::vector<Open> open_;
  int last_root_ = -2;
};

// Checks the group and the tensors, then launches `op` on every bucket of `tensors` (roots[i] < 0:
// all-reduce, else broadcast from roots[i]).
std::unique_ptr<PendingCollective::State> launch_buckets(const std::shared_ptr<ProcessGroup::Impl>& impl,
                                                         const std::string& op,
                                                         const std::vector<at::Tensor>& tensors,
                                                         const std::vector<int>& roots,
                                                         int64_t bucket_bytes) {
  impl->check_usable(op);
  for (size_t i = 0; i < tensors.size(); ++i) impl->check_tensor(op, tensors[i], i);
  auto state = std::make_unique<PendingCollective::State>();
  state->impl = impl;
  state->op = op;
  BucketLauncher launcher(*impl, *state, bucket_bytes);
  for (size_t i = 0; i < tensors.size(); ++i) launcher.add(tensors[i], roots[i]);
  launcher.finish();
  return state;
}

}  // namespace

ProcessGroup::ProcessGroup(std::shared_ptr<Impl> impl, int rank, int world_size, std::string backend,
                           double timeout_s)
    : impl_(std::move(impl)),
      rank_(rank),
      world_size_(world_size),
      backend_(std::move(backend)),
      timeout_s_(timeout_s) {}

ProcessGroup::~ProcessGroup() {
  if (impl_ && impl_->broken) {
    // Backend threads may still be blocked in a collective with a dead or hung peer, and destroying the
    // backend waits for every queued collective (up to a timeout each). The process is about to report the
    // error and exit, so the group is left to the OS instead.
    new std::shared_ptr<Impl>(std::move(impl_));
  }
}

c10::Device ProcessGroup::device() const { return impl_ ? impl_->device : c10::Device(c10::kCPU); }

void ProcessGroup::all_reduce_sum(at::Tensor& tensor) {
  if (!impl_) return;
  std::vector<at::Tensor> one{tensor};
  all_reduce_sum(one, std::numeric_limits<int64_t>::max());
}

void ProcessGroup::all_reduce_sum(std::vector<at::Tensor>& tensors, int64_t bucket_bytes) {
  all_reduce_sum_start(tensors, bucket_bytes).wait();
}

PendingCollective ProcessGroup::all_reduce_sum_start(std::vector<at::Tensor> tensors, int64_t bucket_bytes) {
  if (!impl_) return PendingCollective(nullptr);
  return PendingCollective(
      launch_buckets(impl_, "all_reduce_sum", tensors, std::vector<int>(tensors.size(), -1), bucket_bytes));
}

void ProcessGroup::broadcast(std::vector<at::Tensor>& tensors, int root, int64_t bucket_bytes) {
  if (root < 0 || root >= world_size_)
    throw Error("broadcast: root rank " + std::to_string(root) + " is outside 0.." +
                std::to_string(world_size_ - 1));
  std::vector<int> owners(tensors.size(), root);
  broadcast_from_owners(tensors, owners, bucket_bytes);
}

void ProcessGroup::broadcast_from_owners(std::vector<at::Tensor>& tensors, const std::vector<int>& owners,
                                         int64_t bucket_bytes) {
  if (owners.size() != tensors.size())
    throw Error("broadcast_from_owners: " + std::to_string(owners.size()) + " owners for " +
                std::to_string(tensors.size()) + " tensors");
  for (size_t i = 0; i < owners.size(); ++i)
    if (owners[i] < 0 || owners[i] >= world_size_)
      throw Error("broadcast_from_owners: owner " + std::to_string(owners[i]) + " of tensor " +
                  std::to_string(i) + " is outside 0.." + std::to_string(world_size_ - 1));
  if (!impl_) return;
  PendingCollective(launch_buckets(impl_, "broadcast", tensors, owners, bucket_bytes)).wait();
}

namespace {

// Checks a sharding collective's tensor pairs: defined, contiguous, on the group's device, one dtype per
// pair, and output = world x input (all-gather) or input = world x output (reduce-scatter).
void check_shard_pairs(const ProcessGroup::Impl& impl, const std::string& op,
                       const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& inputs,
                       bool gather) {
  impl.check_usable(op);
  if (outputs.size() != inputs.size())
    throw Error(op + ": " + std::to_string(outputs.size()) + " outputs for " + std::to_string(inputs.size()) +
                " inputs");
  for (size_t i = 0; i < inputs.size(); ++i) {
    impl.check_tensor(op, inputs[i], i);
    impl.check_tensor(op, outputs[i], i);
    const int64_t big = gather ? outputs[i].numel() : inputs[i].numel();
    const int64_t small = gather ? inputs[i].numel() : outputs[i].numel();
    if (!inputs[i].is_contiguous() || !outputs[i].is_contiguous() ||
        inputs[i].scalar_type() != outputs[i].scalar_type() || big != small * impl.world)
      throw Error(op + ": tensor pair " + std::to_string(i) + " must be contiguous, of one dtype, with " +
                  (gather ? "output" : "input") + " = " + std::to_string(impl.world) + " x " +
                  (gather ? "input" : "output") + " elements (got " + std::to_string(inputs[i].numel()) +
                  " -> " + std::to_string(outputs[i].numel()) + ")");
  }
}

// Launches one sharding collective (gather: all-gather, else reduce-scatter) on checked pairs: one call
// for a single pair, a coalesced one for several. A world of 1 copies input to output.
PendingCollective launch_sharding(const std::shared_ptr<ProcessGroup::Impl>& impl, bool gather,
                                  std::vector<at::Tensor> outputs, std::vector<at::Tensor> inputs) {
  if (!impl) {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < inputs.size(); ++i) outputs[i].view({-1}).copy_(inputs[i].view({-1}));
    return PendingCollective(nullptr);
  }
  const std::string op = gather ? "all_gather" : "reduce_scatter_sum";
  check_shard_pairs(*impl, op, outputs, inputs, gather);
  auto state = std::make_unique<PendingCollective::State>();
  state->impl = impl;
  state->op = op;
  state->keep_alive = outputs;
  state->keep_alive.insert(state->keep_alive.end(), inputs.begin(), inputs.end());
  if (!inputs.empty()) {
    C10dBackend& backend = *impl->backend;
    state->works.push_back(impl->launch(op, [&] {
      if (gather) {
        c10d::AllgatherOptions opts;
        opts.timeout = impl->timeout;
        return outputs.size() == 1 ? backend._allgather_base(outputs[0], inputs[0], opts)
                                   : backend.allgather_into_tensor_coalesced(outputs, inputs, opts);
      }
      c10d::ReduceScatterOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      opts.timeout = impl->timeout;
      return outputs.size() == 1 ? backend._reduce_scatter_base(outputs[0], inputs[0], opts)
                                 : backend.reduce_scatter_tensor_coalesced(outputs, inputs, opts);
    }));
  }
  return PendingCollective(std::move(state));
}

}  // namespace

PendingCollective ProcessGroup::all_gather_start(std::vector<at::Tensor> outputs,
                                                 std::vector<at::Tensor> inputs) {
  return launch_sharding(impl_, true, std::move(outputs), std::move(inputs));
}

PendingCollective ProcessGroup::reduce_scatter_sum_start(std::vector<at::Tensor> outputs,
                                                         std::vector<at::Tensor> inputs) {
  return launch_sharding(impl_, false, std::move(outputs), std::move(inputs));
}

namespace {

std::vector<double> reduce_values(ProcessGroup::Impl& impl, std::vector<double> values, ReduceOp op,
                                  const std::string& name) {
  impl.check_usable(name);
  if (values.empty()) return values;
  at::NoGradGuard no_grad;
  auto host = at::from_blob(values.data(), {static_cast<int64_t>(values.size())}, at::kDouble);
  std::vector<at::Tensor> wire{host.to(impl.device, /*non_blocking=*/false, /*copy=*/true)};
  c10d::AllreduceOptions opts;
  opts.reduceOp = op == ReduceOp::kSum   ? c10d::ReduceOp::SUM
                  : op == ReduceOp::kMax ? c10d::ReduceOp::MAX
                                         : c10d::ReduceOp::MIN;
  opts.timeout = impl.timeout;
  auto work = impl.launch(name, [&] { return impl.backend->allreduce(wire, opts); });
  impl.wait(name, work);
  auto result = wire[0].to(at::kCPU).contiguous();
  std::copy(result.data_ptr<double>(), result.data_ptr<double>() + values.size(), values.begin());
  return values;
}

}  // namespace

std::vector<double> ProcessGroup::all_reduce(std::vector<double> values, ReduceOp op) {
  if (!impl_) return values;
  return reduce_values(*impl_, std::move(values), op, "all_reduce");
}

double ProcessGroup::all_reduce(double value, ReduceOp op) {
  return all_reduce(std::vector<double>{value}, op)[0];
}

std::vector<std::string> ProcessGroup::all_gather_strings(const std::string& mine) {
  if (!impl_) return {mine};
  std::vector<double> lengths(static_cast<size_t>(world_size_), 0.0);
  lengths[static_cast<size_t>(rank_)] = static_cast<double>(mine.size());
  lengths = reduce_values(*impl_, std::move(lengths), ReduceOp::kSum, "all_gather_strings");
  // One byte tensor per rank with something to send, broadcast from that rank (one launch of buckets).
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> bytes;
  std::vector<int> owners;
  for (int r = 0; r < world_size_; ++r) {
    const auto n = static_cast<int64_t>(lengths[static_cast<size_t>(r)]);
    if (n == 0) continue;
    if (r == rank_) {
      auto host = at::from_blob(const_cast<char*>(mine.data()), {n}, at::kByte);
      bytes.push_back(host.to(impl_->device, /*non_blocking=*/false, /*copy=*/true));
    } else {
      bytes.push_back(at::empty({n}, at::TensorOptions().dtype(at::kByte).device(impl_->device)));
    }
    owners.push_back(r);
  }
  if (!bytes.empty())
    PendingCollective(launch_buckets(impl_, "all_gather_strings", bytes, owners, kDefaultBucketBytes)).wait();
  std::vector<std::string> out(static_cast<size_t>(world_size_));
  for (size_t i = 0; i < bytes.size(); ++i) {
    const at::Tensor host = bytes[i].to(at::kCPU).contiguous();
    const auto* data = reinterpret_cast<const char*>(host.data_ptr<uint8_t>());
    out[static_cast<size_t>(owners[i])].assign(data, data + host.numel());
  }
  return out;
}

void ProcessGroup::barrier() {
  if (!impl_) return;
  // An all-reduce of one value on the group's device: the same code path (and timeout) on Gloo and NCCL,
  // and the count proves every rank arrived.
  double arrived = reduce_values(*impl_, {1.0}, ReduceOp::kSum, "barrier")[0];
  if (arrived != world_size_)
    throw Error("rank " + std::to_string(rank_) + ": barrier counted " + format_seconds(arrived) + " of " +
                std::to_string(world_size_) + " ranks; the ranks are out of step (different collectives)");
}

namespace {

// A status in the store: a leading byte, so that success ("") is not an empty value.
std::vector<uint8_t> encode_status(const std::string& status) {
  std::vector<uint8_t> bytes{'#'};
  bytes.insert(bytes.end(), status.begin(), status.end());
  return bytes;
}

std::string decode_status(const std::vector<uint8_t>& bytes) {
  return bytes.empty() ? std::string() : std::string(bytes.begin() + 1, bytes.end());
}

}  // namespace

void ProcessGroup::store_wait(const std::string& op, const std::string& waited_for, double timeout_s,
                              const std::function<void(std::chrono::milliseconds)>& wait) {
  impl_->check_usable(op);
  const auto start = Clock::now();
  try {
    wait(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  } catch (const std::exception& e) {
    const std::string detail = short_detail(e);
    const double elapsed = seconds_since(start);
    impl_->broken_reason = "rank " + std::to_string(rank_) + ": " + op +
                           (mentions_timeout(detail) || elapsed >= 0.95 * timeout_s
                                ? " timed out after " + format_seconds(timeout_s) + " s"
                                : " failed after " + format_seconds(elapsed) + " s") +
                           "; " + waited_for +
                           " may have died or be stuck - see its log, or raise the wait (" + detail + ")";
    impl_->broken = true;
    throw Error(impl_->broken_reason);
  }
}

std::string ProcessGroup::wait_for_main(const std::string& tag, double timeout_s, const std::string& status) {
  if (!impl_) return status;
  const std::string key = "tinyzero/main_done/" + tag;
  std::string result = status;
  store_wait("wait for rank 0 (" + tag + ")", "rank 0", timeout_s, [&](std::chrono::milliseconds timeout) {
    if (rank_ == 0) {
      impl_->store->set(key, encode_status(status));
    } else {
      impl_->store->wait({key}, timeout);
      result = decode_status(impl_->store->get(key));
    }
  });
  return result;
}

std::vector<std::string> ProcessGroup::report_to_main(const std::string& tag, const std::string& status,
                                                      double timeout_s) {
  if (!impl_) return {status};
  const std::string prefix = "tinyzero/rank_done/" + tag + "/";
  std::vector<std::string> statuses;
  store_wait("wait for every rank (" + tag + ")", "a rank", timeout_s,
             [&](std::chrono::milliseconds timeout) {
               if (rank_ != 0) {
                 impl_->store->set(prefix + std::to_string(rank_), encode_status(status));
                 return;
               }
               std::vector<std::string> keys;
               for (int r = 1; r < world_size_; ++r) keys.push_back(prefix + std::to_string(r));
               impl_->store->wait(keys, timeout);
               statuses.push_back(status);
               for (const auto& key : keys) statuses.push_back(decode_status(impl_->store->get(key)));
             });
  return statuses;
}

std::vector<std::string> available_backends() {
  std::vector<std::string> names;
#ifdef TZ_HAVE_GLOO
  names.push_back("gloo");
#endif
#ifdef TZ_HAVE_NCCL
  names.push_back("nccl");
#endif
  return names;
}

namespace {

std::string join(const std::vector<std::string>& items) {
  if (items.empty()) return "none";
  std::string out;
  for (auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

std::string backends_description() {
  std::vector<std::string> names;
#ifdef TZ_HAVE_NCCL
  names.push_back("nccl (NCCL " + std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." +
                  std::to_string(NCCL_PATCH) + " headers)");
#endif
#ifdef TZ_HAVE_GLOO
  names.push_back("gloo");
#endif
  return "distributed backends: " + join(names);
}

namespace {

// `detail` is what went wrong in a few words ("only 1 of 2 ranks arrived", "c10d: <its message>").
Error rendezvous_error(const DistEnv& env, double timeout_s, const std::string& what,
                       const std::string& detail, double elapsed_s) {
  std::ostringstream m;
  m << "rank " << env.rank << ": " << what << " at MASTER_ADDR:MASTER_PORT " << env.master_addr << ":"
    << env.master_port;
  if (mentions_timeout(detail) || elapsed_s >= 0.95 * timeout_s)
    m << " timed out after " << format_seconds(timeout_s) << " s";
  else
    m << " failed after " << format_seconds(elapsed_s) << " s";
  m << " (" << detail << "; world size " << env.world_size << ", from " << env.source
    << "); check that all ranks were started with the same MASTER_ADDR and MASTER_PORT, that rank 0's host "
       "is reachable and the port free, or raise distributed.timeout_s";
  return Error(m.str());
}

// Waits until something accepts TCP connections at addr:port, or `deadline` passes. Returns "" once one
// does, else what the last attempt said. LibTorch 2.11's TCPStore client retries its connect with
// back-off delays that can run seconds past its timeout; this wait keeps the rendezvous within ours.
std::string wait_for_listener(const std::string& addr, int port, Clock::time_point deadline) {
  std::string last = "no attempt made";
  while (true) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = ::getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (rc != 0) {
      last = "cannot resolve " + addr + ": " + ::gai_strerror(rc);
    } else {
      for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
        int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd < 0) continue;
        bool ok = ::connect(fd, a->ai_addr, a->ai_addrlen) == 0;
        last =
            ok ? "" : "nothing listens at " + addr + ":" + std::to_string(port) + ": " + std::strerror(errno);
        ::close(fd);
        if (ok) break;
      }
      ::freeaddrinfo(found);
      if (last.empty()) return "";
    }
    if (Clock::now() + std::chrono::milliseconds(50) >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

#ifdef TZ_HAVE_GLOO
bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// The network interface Gloo listens on: GLOO_SOCKET_IFNAME as torch.distributed reads it, loopback for a
// job on one machine, else the address this host's name resolves to.
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& master_addr) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    std::string first(ifname);
    first = first.substr(0, first.find(','));
    return c10d::ProcessGroupGloo::createDeviceForInterface(first);
  }
  if (is_loopback(master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

}  // namespace

std::unique_ptr<ProcessGroup> init_process_group(const DistEnv& env, const std::string& backend,
                                                 const c10::Device& device, double timeout_s) {
  if (backend != "auto" && backend != "gloo" && backend != "nccl")
    throw ConfigError("distributed.backend '" + backend + "' is unknown; use auto, gloo or nccl");
  if (!(timeout_s > 0) || !std::isfinite(timeout_s))
    throw ConfigError("distributed.timeout_s must be a positive number of seconds, got " +
                      format_seconds(timeout_s));
  if (env.world_size <= 1) return std::make_unique<ProcessGroup>(nullptr, 0, 1, "none", timeout_s);

  const std::string name = backend != "auto" ? backend : device.is_cuda() ? "nccl" : "gloo";
  const auto available = available_backends();
  if (std::find(available.begin(), available.end(), name) == available.end())
    throw ConfigError("distributed.backend " + name +
                      " is not compiled into this build (available: " + join(available) + "); " +
                      (name == "gloo"
                           ? "Gloo needs Gloo's headers when configuring (Debian: libgloo-dev, which "
                             "scripts/install-deps.sh installs); on GPUs use nccl with "
                             "trainer.device=cuda"
                           : "NCCL needs a LibTorch with CUDA (PyTorch's wheel); on CPU use gloo"));
  if (name == "nccl" && !device.is_cuda())
    throw ConfigError("distributed.backend nccl needs CUDA tensors but the device is " + device.str() +
                      "; set trainer.device=cuda, or distributed.backend=gloo for CPU training");
  if (name == "gloo" && !device.is_cpu())
    throw ConfigError("distributed.backend gloo works on CPU tensors here but the device is " + device.str() +
                      "; use distributed.backend=nccl (or auto) for CUDA");

  // Gloo writes to sockets with writev: a peer that died mid-transfer would raise SIGPIPE, whose default
  // action ends this process without a word. Python, torch.distributed's usual host, ignores SIGPIPE;
  // do the same (unless the program installed its own handler) so the write fails and is reported.
  struct sigaction old_action {};
  if (sigaction(SIGPIPE, nullptr, &old_action) == 0 && old_action.sa_handler == SIG_DFL)
    std::signal(SIGPIPE, SIG_IGN);

  auto impl = std::make_shared<ProcessGroup::Impl>();
  impl->name = name;
  impl->rank = env.rank;
  impl->world = env.world_size;
  impl->timeout_s = timeout_s;
  impl->timeout = std::chrono::milliseconds(static_cast<int64_t>(std::llround(timeout_s * 1000)));
  impl->device = device;

  // Rendezvous: wait for rank 0's store, connect, then count arrivals ourselves, so that a missing rank
  // is reported within the timeout with how many ranks did arrive.
  const auto start = Clock::now();
  if (env.rank != 0 || env.use_agent_store) {
    std::string why = wait_for_listener(env.master_addr, env.master_port, start + impl->timeout);
    if (!why.empty()) throw rendezvous_error(env, timeout_s, "rendezvous", why, timeout_s);
  }
  try {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(env.master_port);
    opts.isServer = env.rank == 0 && !env.use_agent_store;
    opts.numWorkers = static_cast<std::size_t>(env.world_size);
    opts.waitWorkers = false;
    opts.timeout = impl->timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, opts);
    if (env.use_agent_store)  // torchrun's store outlives restarts: keys of this attempt only
      impl->store = c10::make_intrusive<c10d::PrefixStore>(
          "/worker/attempt_" + std::to_string(env.restart_count), impl->store);
  } catch (const std::exception& e) {
    throw rendezvous_error(env, timeout_s, "rendezvous", "c10d: " + short_detail(e), seconds_since(start));
  }
  int64_t arrived = 0;
  try {
    const std::string key = "tinyzero/arrived";
    arrived = impl->store->add(key, 1);
    while (arrived < env.world_size && seconds_since(start) < timeout_s) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      arrived = impl->store->add(key, 0);
    }
  } catch (const std::exception& e) {
    throw rendezvous_error(env, timeout_s, "rendezvous", "c10d: " + short_detail(e), seconds_since(start));
  }
  if (arrived < env.world_size)
    throw rendezvous_error(
        env, timeout_s, "rendezvous",
        "only " + std::to_string(arrived) + " of " + std::to_string(env.world_size) + " ranks arrived",
        timeout_s);

  const auto connect_start = Clock::now();
  try {
#ifdef TZ_HAVE_GLOO
    if (name == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(impl->timeout);
      opts->devices.push_back(gloo_device(env.master_addr));
      impl->backend =
          c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, opts);
    }
#endif
#ifdef TZ_HAVE_NCCL
    if (name == "nccl") {
      const int index = device.has_index() ? device.index() : env.local_rank;
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(index));
      impl->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
      // Blocking waits make a timed-out collective throw in wait() (reported like Gloo's) instead of
      // the watchdog tearing the process down; a user's own setting wins.
      setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
      setenv("NCCL_BLOCKING_WAIT", "1", 0);
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = impl->timeout;
      impl->backend =
          c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, opts);
    }
#endif
  } catch (const std::exception& e) {
    throw rendezvous_error(env, timeout_s, "rendezvous", name + " connect: " + short_detail(e),
                           seconds_since(connect_start));
  }
  if (!impl->backend) throw Error("process group backend " + name + " was not created (internal error)");

  auto group = std::make_unique<ProcessGroup>(impl, env.rank, env.world_size, name, timeout_s);
  group->barrier();  // every rank reached the same point (for NCCL: creates the communicator)
  return group;
}

}  // namespace tinyzero
