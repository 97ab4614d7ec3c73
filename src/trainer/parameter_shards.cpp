// Parameters, gradients and optimizer state sharded across ranks (see parameter_shards.h).
#include "trainer/parameter_shards.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <regex>

#include "tinyzero/core/errors.h"
#include "tinyzero/trainer/optimizer.h"

namespace tinyzero {

struct ParameterShards::Gather {
  std::optional<PendingCollective> pending;
  std::vector<at::Tensor> outputs;  // whole, padded, flat: one per parameter of the unit
};

struct ParameterShards::Reduction {
  std::optional<PendingCollective> pending;
  int64_t unit = 0;
  std::vector<at::Tensor> outputs;  // this rank's chunk of the sum: one per parameter of the unit
};

namespace {

// Decoder layer of a parameter name ("model.layers.3.mlp.up_proj.weight" -> 3), -1 for the rest.
int64_t layer_of(const std::string& name) {
  static const std::regex re("(^|\\.)layers\\.(\\d+)\\.");
  std::smatch m;
  return std::regex_search(name, m, re) ? std::stoll(m[2].str()) : -1;
}

}  // namespace

ParameterShards::ParameterShards(std::vector<std::pair<std::string, at::Tensor>> params, ProcessGroup& pg,
                                 bool free_parameters)
    : params_(std::move(params)), pg_(pg), world_(pg.world_size()), rank_(pg.rank()), free_(free_parameters) {
  int64_t layers = 0;
  for (const auto& [name, p] : params_) layers = std::max(layers, layer_of(name) + 1);
  units_.resize(static_cast<size_t>(layers) + 1);
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < params_.size(); ++k) {
    const auto& [name, p] = params_[k];
    const int64_t layer = layer_of(name);
    units_[static_cast<size_t>(layer < 0 ? layers : layer)].push_back(k);
    shapes_.push_back(p.sizes().vec());
    chunk_.push_back((p.numel() + world_ - 1) / world_);
    shards_.emplace_back(name, at::zeros({chunk_[k]}, p.options()));
  }
  whole_.assign(units_.size(), true);
  copy_chunks_from_parameters();
}

ParameterShards::~ParameterShards() {
  // Started collectives finish before the tensors they write go away (PendingCollective waits).
  gathers_.clear();
  reductions_.clear();
}

at::Tensor ParameterShards::chunk_of(size_t k, const at::Tensor& whole, const std::string& what) const {
  if (whole.sizes().vec() != shapes_[k])
    throw Error(what + " has shape " + c10::str(whole.sizes()) + ", but parameter " + params_[k].first +
                " has " + c10::str(at::IntArrayRef(shapes_[k])) +
                "; the checkpoint does not match this model");
  at::Tensor flat = whole.reshape({-1});
  if (flat.numel() != padded(k)) flat = at::constant_pad_nd(flat, {0, padded(k) - flat.numel()}, 0);
  return flat.narrow(0, rank_ * chunk_[k], chunk_[k]);
}

void ParameterShards::copy_chunks_from_parameters() {
  torch::NoGradGuard no_grad;
  for (size_t k = 0; k < params_.size(); ++k) shards_[k].second.copy_(chunk_of(k, params_[k].second));
}

void ParameterShards::shard_from_parameters() {
  for (size_t u = 0; u < units_.size(); ++u)
    if (!whole_[u])
      throw Error("sharding parameters needs them whole: unit " + std::to_string(u) + " is not");
  copy_chunks_from_parameters();
  release_all();
}

void ParameterShards::free_unit(int64_t unit) {
  torch::NoGradGuard no_grad;
  for (size_t k : units_[static_cast<size_t>(unit)]) {
    at::Tensor p = params_[k].second;
    p.set_data(at::empty({0}, p.options()));
  }
  whole_[static_cast<size_t>(unit)] = false;
}

void ParameterShards::start_gather(int64_t unit) {
  if (whole_[static_cast<size_t>(unit)] || gathers_.count(unit)) return;
  Gather g;
  std::vector<at::Tensor> inputs;
  for (size_t k : units_[static_cast<size_t>(unit)]) {
    g.outputs.push_back(at::empty({padded(k)}, shards_[k].second.options()));
    inputs.push_back(shards_[k].second);
  }
  g.pending.emplace(pg_.all_gather_start(g.outputs, inputs));
  gathers_.emplace(unit, std::move(g));
}

void ParameterShards::finish_gather(int64_t unit) {
  auto it = gathers_.find(unit);
  if (it == gathers_.end()) return;
  it->second.pending->wait();
  torch::NoGradGuard no_grad;
  const auto& members = units_[static_cast<size_t>(unit)];
  for (size_t i = 0; i < members.size(); ++i) {
    const size_t k = members[i];
    at::Tensor p = params_[k].second;
    p.set_data(it->second.outputs[i].narrow(0, 0, c10::multiply_integers(shapes_[k])).view(shapes_[k]));
  }
  whole_[static_cast<size_t>(unit)] = true;
  gathers_.erase(it);
}

void ParameterShards::acquire(int64_t unit) {
  if (!free_) return;
  const int64_t layers = units() - 1;
  start_gather(unit);
  // A gather started for another unit that this pass no longer needs first (a pass that ended early)
  // is completed and dropped, so at most the current unit and the next are whole at once.
  for (auto it = gathers_.begin(); it != gathers_.end();) {
    const int64_t other = it++->first;
    if (other != unit && other != last_acquired_ + 1 && other != last_acquired_ - 1) {
      finish_gather(other);
      if (!pinned_) free_unit(other);
    }
  }
  finish_gather(unit);
  if (unit < layers) {  // prefetch the next layer the way this pass travels
    int64_t next = unit == 0                ? 1
                   : unit == layers - 1     ? unit - 1
                   : unit >= last_acquired_ ? unit + 1
                                            : unit - 1;
    if (next >= 0 && next < layers) start_gather(next);
    last_acquired_ = unit;
  }
}

void ParameterShards::release(int64_t unit) {
  if (!free_ || pinned_) return;
  free_unit(unit);
}

void ParameterShards::release_all() {
  if (!free_ || pinned_) return;
  free_whole_units();
}

void ParameterShards::free_whole_units() {
  for (auto it = gathers_.begin(); it != gathers_.end();) finish_gather(it++->first);
  for (size_t u = 0; u < units_.size(); ++u)
    if (whole_[u]) free_unit(static_cast<int64_t>(u));
  last_acquired_ = -1;
}

void ParameterShards::to(const at::Device& device, bool gradients) {
  if (pinned_)
    throw Error("cannot move sharded parameters to " + device.str() + " while they are pinned whole");
  if (!reductions_.empty())
    throw Error("cannot move sharded parameters to " + device.str() + " while gradients are being reduced");
  if (free_) free_whole_units();
  move_parameters(params_, device, /*gradients=*/false);
  move_parameters(shards_, device, gradients);
}

void ParameterShards::start_lockstep() { lockstep_ = free_ && world_ > 1; }

void ParameterShards::begin_pass() {
  if (lockstep_) pg_.all_reduce(1.0, ReduceOp::kSum);
}

void ParameterShards::finish_lockstep() {
  if (!lockstep_) return;
  lockstep_ = false;
  const int64_t layers = units() - 1;
  while (pg_.all_reduce(0.0, ReduceOp::kSum) > 0) {  // another rank runs a pass: gather with it
    acquire(layers);                                 // the root, as the model acquires it first
    for (int64_t layer = 0; layer < layers; ++layer) {
      acquire(layer);
      release(layer);
    }
  }
}

void ParameterShards::hold(int64_t unit) {
  if (!free_) return;
  for (auto it = gathers_.begin(); it != gathers_.end();) finish_gather(it++->first);
  for (size_t u = 0; u < units_.size(); ++u)
    if (static_cast<int64_t>(u) != unit && whole_[u] && !pinned_) free_unit(static_cast<int64_t>(u));
  start_gather(unit);
  finish_gather(unit);
}

std::optional<size_t> ParameterShards::index_of(const std::string& name) const {
  for (size_t k = 0; k < params_.size(); ++k)
    if (params_[k].first == name) return k;
  return std::nullopt;
}

int64_t ParameterShards::unit_of(size_t index) const {
  for (size_t u = 0; u < units_.size(); ++u)
    if (std::find(units_[u].begin(), units_[u].end(), index) != units_[u].end())
      return static_cast<int64_t>(u);
  throw Error("parameter index " + std::to_string(index) + " is in no unit");
}

void ParameterShards::pin() {
  pinned_ = true;
  if (!free_) return;
  for (size_t u = 0; u < units_.size(); ++u) start_gather(static_cast<int64_t>(u));
  for (size_t u = 0; u < units_.size(); ++u) finish_gather(static_cast<int64_t>(u));
}

void ParameterShards::unpin() {
  pinned_ = false;
  release_all();
}

void ParameterShards::start_reduction(int64_t unit) {
  torch::NoGradGuard no_grad;
  Reduction r;
  r.unit = unit;
  std::vector<at::Tensor> inputs;
  for (size_t k : units_[static_cast<size_t>(unit)]) {
    at::Tensor p = params_[k].second;
    const at::Tensor& shard = shards_[k].second;
    at::Tensor g = p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({0}, shard.options());
    if (g.numel() != padded(k)) g = at::constant_pad_nd(g, {0, padded(k) - g.numel()}, 0);
    inputs.push_back(g.contiguous());
    r.outputs.push_back(at::empty({chunk_[k]}, shard.options()));
    p.mutable_grad() = at::Tensor();  // the reduction holds the input until it is done
  }
  r.pending.emplace(pg_.reduce_scatter_sum_start(r.outputs, inputs));
  reductions_.push_back(std::move(r));
}

void ParameterShards::finish_oldest_reduction() {
  Reduction& r = reductions_.front();
  r.pending->wait();
  torch::NoGradGuard no_grad;
  const auto& members = units_[static_cast<size_t>(r.unit)];
  for (size_t i = 0; i < members.size(); ++i) {
    at::Tensor shard = shards_[members[i]].second;
    if (shard.grad().defined())
      shard.mutable_grad().add_(r.outputs[i]);
    else
      shard.mutable_grad() = r.outputs[i];
  }
  reductions_.pop_front();
}

void ParameterShards::gradients_ready(int64_t layer) {
  start_reduction(layer);
  // Two in flight at most: one transferring while backward produces the next.
  while (reductions_.size() > 2) finish_oldest_reduction();
}

void ParameterShards::finish_gradients() {
  // The root every time (its gradients come last, the embedding's at the very end of backward); a layer
  // only if something left gradients in it after its reduction (the same on every rank: same graph).
  for (size_t u = units_.size(); u-- > 0;) {
    bool left = u + 1 == units_.size();
    for (size_t k : units_[u]) left = left || params_[k].second.grad().defined();
    if (left) start_reduction(static_cast<int64_t>(u));
  }
  while (!reductions_.empty()) finish_oldest_reduction();
  for (auto& [name, shard] : shards_)
    if (!shard.grad().defined()) shard.mutable_grad() = at::zeros_like(shard);
}

void ParameterShards::zero_grad() {
  while (!reductions_.empty()) finish_oldest_reduction();
  for (auto& [name, shard] : shards_) shard.mutable_grad() = at::Tensor();
  for (auto& [name, p] : params_) {
    at::Tensor t = p;
    t.mutable_grad() = at::Tensor();
  }
}

void ParameterShards::parameters_updated() {
  if (free_) {  // whole copies are stale: drop them (and gather again what is pinned)
    free_whole_units();
    if (pinned_) pin();
    return;
  }
  // Stage 2: the updated shards gathered into whole parameters, one unit at a time, so at most one
  // unit has two copies at once.
  for (size_t u = 0; u < units_.size(); ++u) {
    whole_[u] = false;
    start_gather(static_cast<int64_t>(u));
    finish_gather(static_cast<int64_t>(u));
  }
}

std::pair<int64_t, int64_t> ParameterShards::shard_range(size_t k) const {
  const int64_t numel = c10::multiply_integers(shapes_[k]);
  const int64_t begin = std::min(numel, rank_ * chunk_[k]);
  return {begin, std::min(numel, begin + chunk_[k])};
}

}  // namespace tinyzero
