// Data-parallel optimizer (see data_parallel.h).
#include "trainer/data_parallel.h"

#include <cmath>
#include <map>

#include "tinyzero/core/errors.h"
#include "tinyzero/dist/partition.h"
#include "tinyzero/io/safetensors.h"

namespace tinyzero {

DataParallelOptimizer::DataParallelOptimizer(std::vector<std::pair<std::string, at::Tensor>> params,
                                             const OptimConfig& config, ProcessGroup& pg, int64_t zero_stage,
                                             int64_t bucket_bytes)
    : params_(std::move(params)), pg_(pg), bucket_bytes_(bucket_bytes) {
  std::vector<std::pair<std::string, at::Tensor>> mine = params_;
  if (zero_stage >= 1 && pg.world_size() > 1) {
    std::vector<int64_t> numels;
    for (const auto& [name, p] : params_) numels.push_back(p.numel());
    owners_ = partition_by_size(numels, pg.world_size());
    mine.clear();
    for (size_t i = 0; i < params_.size(); ++i)
      if (owners_[i] == pg.rank()) mine.push_back(params_[i]);
  }
  adam_ = std::make_unique<AdamW>(std::move(mine), config);
}

int64_t DataParallelOptimizer::owned_parameters() const {
  int64_t n = 0;
  for (const auto& [name, p] : adam_->params()) n += p.numel();
  return n;
}

void DataParallelOptimizer::zero_grad() { zero_grads(params_); }

void DataParallelOptimizer::broadcast_parameters(int root) {
  if (pg_.world_size() == 1) return;
  std::vector<at::Tensor> tensors;
  for (auto& [name, p] : params_) tensors.push_back(p);
  pg_.broadcast(tensors, root, bucket_bytes_);
}

double DataParallelOptimizer::reduce_and_clip(double max_norm) {
  if (pg_.world_size() > 1) {
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
  adam_->step(lr);
  if (!sharded()) return;
  std::vector<at::Tensor> tensors;
  for (auto& [name, p] : params_) tensors.push_back(p);
  torch::NoGradGuard no_grad;
  pg_.broadcast_from_owners(tensors, owners_, bucket_bytes_);
}

std::vector<std::pair<std::string, at::Tensor>> DataParallelOptimizer::gather_state() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  if (!sharded()) {
    if (pg_.is_main())
      for (auto& [name, t] : adam_->state_tensors()) out.emplace_back(name, t.to(at::kCPU));
    return out;
  }
  std::map<std::string, at::Tensor> mine;
  for (auto& [name, t] : adam_->state_tensors()) mine[name] = t;
  // Parameter by parameter, so no rank holds more than one parameter's foreign state at a time.
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    std::vector<std::string> names = {"exp_avg." + name, "exp_avg_sq." + name};
    if (p.scalar_type() != at::kFloat) names.push_back("master." + name);
    std::vector<at::Tensor> tensors;
    for (const auto& n : names)
      tensors.push_back(owners_[i] == pg_.rank() ? mine.at(n) : torch::empty_like(p, p.options().dtype(at::kFloat)));
    pg_.broadcast(tensors, owners_[i], bucket_bytes_);
    if (pg_.is_main())
      for (size_t k = 0; k < names.size(); ++k) out.emplace_back(names[k], tensors[k].to(at::kCPU));
  }
  return out;
}

void DataParallelOptimizer::load_state(const std::string& file, int64_t steps_taken, const at::Device& device) {
  SafetensorsFile f = SafetensorsFile::open(file);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, p] : adam_->params())
    for (const std::string prefix : {"exp_avg.", "exp_avg_sq.", "master."})
      if (f.find(prefix + name)) tensors[prefix + name] = f.tensor(prefix + name).to(device);
  adam_->load_state(tensors, steps_taken);
}

uint64_t DataParallelOptimizer::check_in_sync(const std::string& what) {
  // FNV-1a over the raw bytes of every parameter, in order.
  uint64_t h = 1469598103934665603ull;
  for (const auto& [name, p] : params_) {
    at::Tensor cpu = p.detach().to(at::kCPU).contiguous();
    const auto* bytes = static_cast<const unsigned char*>(cpu.data_ptr());
    const size_t n = static_cast<size_t>(cpu.numel()) * cpu.element_size();
    for (size_t k = 0; k < n; ++k) h = (h ^ bytes[k]) * 1099511628211ull;
  }
  if (pg_.world_size() == 1) return h;
  // Exact in doubles: compare the two 32-bit halves.
  const std::vector<double> halves = {static_cast<double>(h >> 32), static_cast<double>(h & 0xffffffffu)};
  const std::vector<double> hi = pg_.all_reduce(halves, ReduceOp::kMax), lo = pg_.all_reduce(halves, ReduceOp::kMin);
  if (hi != lo)
    throw Error(what + " parameters differ between ranks (rank " + std::to_string(pg_.rank()) +
                "'s hash differs from another's): the ranks ran different updates; check that every rank runs "
                "the same build, config and thread count");
  return h;
}

}  // namespace tinyzero
