// Data-parallel optimizer (see data_parallel.h).
#include "trainer/data_parallel.h"

#include <cmath>
#include <map>

#include "tinyzero/core/errors.h"
#include "tinyzero/dist/partition.h"
#include "tinyzero/io/safetensors.h"

namespace tinyzero {

struct DataParallelOptimizer::Bucket {
  std::vector<size_t> params;  // indices into params_
  size_t ready = 0;            // how many of them have their gradient for the armed pass
  std::unique_ptr<PendingCollective> pending;
};

DataParallelOptimizer::DataParallelOptimizer(std::vector<std::pair<std::string, at::Tensor>> params,
                                             const OptimConfig& config, ProcessGroup& pg, int64_t zero_stage,
                                             int64_t bucket_bytes, bool overlap)
    : params_(std::move(params)), pg_(pg), bucket_bytes_(bucket_bytes) {
  stage_ = pg.world_size() > 1 ? zero_stage : 0;
  if (stage_ >= 2) {
    shards_ = std::make_unique<ParameterShards>(params_, pg, stage_ == 3);
    if (config.offload) {
      for (const auto& [name, shard] : shards_->shards())
        host_shards_.emplace_back(name, shard.detach().to(at::kCPU, /*non_blocking=*/false, /*copy=*/true));
      adam_ = std::make_unique<AdamW>(host_shards_, config);
    } else {
      adam_ = std::make_unique<AdamW>(shards_->shards(), config);
    }
    return;
  }
  if (overlap && pg.world_size() > 1) {
    // Buckets of about bucket_bytes over the parameters in reverse order, one dtype per bucket.
    bucket_of_.resize(params_.size());
    int64_t bytes = 0;
    for (size_t k = params_.size(); k-- > 0;) {
      const at::Tensor& p = params_[k].second;
      const int64_t size = p.numel() * static_cast<int64_t>(p.element_size());
      if (buckets_.empty() || bytes + size > bucket_bytes_ ||
          params_[buckets_.back().params.front()].second.scalar_type() != p.scalar_type()) {
        buckets_.emplace_back();
        bytes = 0;
      }
      buckets_.back().params.push_back(k);
      bucket_of_[k] = buckets_.size() - 1;
      bytes += size;
    }
    full_grads_.resize(params_.size());
    for (size_t k = 0; k < params_.size(); ++k)
      hooks_.push_back(params_[k].second.register_hook([this, k](const at::Tensor& grad) -> at::Tensor {
        if (!armed_) return grad;
        on_gradient(k, grad);
        return at::zeros_like(grad);  // the sum is in full_grads_[k]; .grad gets it after the reduction
      }));
  }
  std::vector<std::pair<std::string, at::Tensor>> mine = params_;
  if (stage_ == 1) {
    std::vector<int64_t> numels;
    for (const auto& [name, p] : params_) numels.push_back(p.numel());
    owners_ = partition_by_size(numels, pg.world_size());
    mine.clear();
    for (size_t i = 0; i < params_.size(); ++i)
      if (owners_[i] == pg.rank()) mine.push_back(params_[i]);
  }
  adam_ = std::make_unique<AdamW>(std::move(mine), config);
}

DataParallelOptimizer::~DataParallelOptimizer() {
  for (size_t k = 0; k < hooks_.size(); ++k) params_[k].second.remove_hook(hooks_[k]);
}

void DataParallelOptimizer::arm_overlap() {
  if (buckets_.empty()) return;
  armed_ = used_ = true;
}

void DataParallelOptimizer::on_gradient(size_t k, const at::Tensor& grad) {
  at::NoGradGuard no_grad;
  const at::Tensor& p = params_[k].second;
  // What .grad would hold after this pass: earlier micro-batches' sum plus this one.
  full_grads_[k] = p.grad().defined() ? p.grad() + grad : grad.clone();
  ++buckets_[bucket_of_[k]].ready;
  launch_ready_buckets();
}

// Starts complete buckets in bucket order only, so every rank launches the same collectives in the same
// order whatever order its gradients arrive in.
void DataParallelOptimizer::launch_ready_buckets() {
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == buckets_[next_launch_].params.size()) {
    Bucket& b = buckets_[next_launch_++];
    std::vector<at::Tensor> grads;
    for (size_t k : b.params) grads.push_back(full_grads_[k]);
    b.pending = std::make_unique<PendingCollective>(pg_.all_reduce_sum_start(grads, INT64_MAX));
    overlapped_buckets_ += armed_ ? 1 : 0;
    ++reduced_buckets_;
  }
}

void DataParallelOptimizer::finish_overlap() {
  armed_ = false;  // buckets launched from here on started after backward
  // Parameters the pass gave no gradient: their accumulated .grad (or zeros) joins the reduction.
  for (auto& b : buckets_)
    for (size_t k : b.params)
      if (!full_grads_[k].defined()) {
        const at::Tensor& p = params_[k].second;
        full_grads_[k] = p.grad().defined() ? p.grad().clone() : torch::zeros_like(p);
        ++b.ready;
      }
  launch_ready_buckets();
  for (auto& b : buckets_) {
    b.pending->wait();
    b.pending.reset();
    b.ready = 0;
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    at::Tensor p = params_[k].second;
    p.mutable_grad() = full_grads_[k];
    full_grads_[k] = at::Tensor();
  }
  next_launch_ = 0;
  used_ = false;
}

int64_t DataParallelOptimizer::owned_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : adam_->params()) n += p.numel();
  return n;
}

void DataParallelOptimizer::zero_grad() {
  if (shards_)
    shards_->zero_grad();
  else
    zero_grads(params_);
}

void DataParallelOptimizer::broadcast_parameters(int root) {
  if (pg_.world_size() == 1) return;
  if (shards_) shards_->pin();
  std::vector<at::Tensor> tensors;
  for (auto& [name, p] : params_) tensors.push_back(p);
  pg_.broadcast(tensors, root, bucket_bytes_);
  if (!shards_) return;
  shards_->shard_from_parameters();
  shards_->unpin();
  copy_shards_to_host();
}

void DataParallelOptimizer::copy_shards_to_host() {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < host_shards_.size(); ++k) host_shards_[k].second.copy_(shards_->shards()[k].second);
}

void DataParallelOptimizer::pin_parameters() {
  if (shards_) shards_->pin();
}

void DataParallelOptimizer::unpin_parameters() {
  if (shards_) shards_->unpin();
}

void DataParallelOptimizer::release_gathered() {
  if (shards_) shards_->release_all();
}

void DataParallelOptimizer::move_to(const at::Device& device, bool with_state) {
  if (shards_)
    shards_->to(device, with_state);
  else
    move_parameters(params_, device, with_state);
  if (with_state && host_shards_.empty()) adam_->state_to(device);
}

double DataParallelOptimizer::reduce_and_clip(double max_norm) {
  if (shards_) {
    // The global norm from every rank's sum of squares over its chunks (padding adds zeros).
    shards_->finish_gradients();
    torch::NoGradGuard no_grad;
    at::Tensor local = at::zeros({}, shards_->shards().front().second.options().dtype(at::kDouble));
    for (const auto& [name, shard] : shards_->shards()) local += shard.grad().to(at::kFloat).pow(2).sum();
    const double norm = std::sqrt(pg_.all_reduce(local.item<double>(), ReduceOp::kSum));  // one sync
    if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
      const double scale = max_norm / (norm + 1e-6);
      for (const auto& [name, shard] : shards_->shards()) shard.grad().mul_(scale);
    }
    return norm;
  }
  if (used_) {
    finish_overlap();
  } else if (pg_.world_size() > 1) {
    std::vector<at::Tensor> grads;
    for (auto& [name, p] : params_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);  // every rank sends the same set
      grads.push_back(p.grad());
    }
    pg_.all_reduce_sum(grads, bucket_bytes_);
  }
  return clip_grad_norm(params_, max_norm);
}

void DataParallelOptimizer::step(double lr) {
  if (!host_shards_.empty()) {  // the gradients to the host, the update there, the shards back
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < host_shards_.size(); ++k)
      host_shards_[k].second.mutable_grad() = shards_->shards()[k].second.grad().to(at::kCPU);
    adam_->step(lr);
    for (size_t k = 0; k < host_shards_.size(); ++k) {
      at::Tensor shard = shards_->shards()[k].second;
      shard.copy_(host_shards_[k].second);
      host_shards_[k].second.mutable_grad() = at::Tensor();
    }
  } else {
    adam_->step(lr);
  }
  if (shards_) {
    shards_->parameters_updated();
    return;
  }
  if (!sharded()) return;
  std::vector<at::Tensor> tensors;
  for (auto& [name, p] : params_) tensors.push_back(p);
  torch::NoGradGuard no_grad;
  pg_.broadcast_from_owners(tensors, owners_, bucket_bytes_);
}

std::vector<StatePiece> DataParallelOptimizer::state_pieces() const {
  std::vector<StatePiece> out;
  if (!sharded() && !pg_.is_main()) return out;
  std::map<std::string, size_t> index;  // parameter name -> position in params_
  for (size_t i = 0; i < params_.size(); ++i) index[params_[i].first] = i;
  for (const auto& [name, t] : adam_->state_tensors()) {
    const size_t i = index.at(name.substr(name.find('.') + 1));  // "exp_avg.<parameter>"
    if (!shards_) {
      out.push_back({name, params_[i].second.sizes().vec(), 0, t});
      continue;
    }
    const auto [begin, end] = shards_->shard_range(i);
    if (end > begin) out.push_back({name, shards_->shape(i), begin, t.narrow(0, 0, end - begin)});
  }
  return out;
}

void DataParallelOptimizer::load_state(const StateFiles& files, int64_t steps_taken) {
  std::map<std::string, at::Tensor> tensors;
  for (size_t i = 0; i < adam_->params().size(); ++i) {
    const std::string& name = adam_->params()[i].first;
    // Stages 2/3: AdamW's parameters are the shards, in the order of params_.
    const std::vector<int64_t> shape = shards_ ? shards_->shape(i) : adam_->params()[i].second.sizes().vec();
    for (const std::string prefix : {"exp_avg.", "exp_avg_sq.", "master."}) {
      const std::string key = prefix + name;
      if (!files.contains(key)) continue;  // AdamW names what it lacks
      if (files.shape(key) != shape)
        throw IoError("optimizer state " + key + " has shape " + c10::str(at::IntArrayRef(files.shape(key))) +
                      " in the checkpoint, but the parameter has " + c10::str(at::IntArrayRef(shape)) +
                      "; the checkpoint does not match this model");
      if (!shards_) {
        tensors[key] = files.whole(key);
        continue;
      }
      // This rank's range, zero-padded to the shard's length.
      const auto [begin, end] = shards_->shard_range(i);
      const at::Tensor part = files.read(key, begin, end);
      at::Tensor chunk = torch::zeros({adam_->params()[i].second.numel()}, part.options());
      chunk.narrow(0, 0, end - begin).copy_(part);
      tensors[key] = chunk;
    }
  }
  adam_->load_state(tensors, steps_taken);
}

uint64_t DataParallelOptimizer::check_in_sync(const std::string& what) {
  if (pg_.world_size() == 1 || stage_ == 3) return 0;  // nothing to compare with
  // FNV-1a over the raw bytes of every parameter, in order.
  uint64_t h = 1469598103934665603ull;
  for (const auto& [name, p] : params_) {
    at::Tensor cpu = p.detach().to(at::kCPU).contiguous();
    const auto* bytes = static_cast<const unsigned char*>(cpu.data_ptr());
    const size_t n = static_cast<size_t>(cpu.numel()) * cpu.element_size();
    for (size_t k = 0; k < n; ++k) h = (h ^ bytes[k]) * 1099511628211ull;
  }
  // Exact in doubles: compare the two 32-bit halves.
  const std::vector<double> halves = {static_cast<double>(h >> 32), static_cast<double>(h & 0xffffffffu)};
  const std::vector<double> hi = pg_.all_reduce(halves, ReduceOp::kMax),
                            lo = pg_.all_reduce(halves, ReduceOp::kMin);
  if (hi != lo)
    throw Error(
        what + " parameters differ between ranks (rank " + std::to_string(pg_.rank()) +
        "'s hash differs from another's): the ranks ran different updates; check that every rank runs "
        "the same build, config and thread count");
  return h;
}

}  // namespace tinyzero
