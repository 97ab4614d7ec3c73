// Advantage estimators (GRPO, RLOO, GAE), masked statistics and reward shaping; see rl/advantages.h.
#include "tinyzero/rl/advantages.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <string>
#include <unordered_map>

#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

// The mask as a tensor of `like`'s dtype and device.
at::Tensor mask_like(const at::Tensor& mask, const at::Tensor& like) {
  return mask.to(like.device(), like.scalar_type());
}

// Statistics in at least float32 (scores may come in bf16).
at::ScalarType stats_dtype(const at::Tensor& t) {
  return at::isFloatingType(t.scalar_type()) && c10::elementSize(t.scalar_type()) >= 4 ? t.scalar_type()
                                                                                       : at::kFloat;
}

void check_same_shape(const at::Tensor& a, const char* a_name, const at::Tensor& b, const char* b_name,
                      const char* where) {
  if (a.sizes() != b.sizes())
    throw Error(std::string(where) + ": " + a_name + " has shape " + c10::str(a.sizes()) + " but " + b_name +
                " has shape " + c10::str(b.sizes()) + "; they must match (B, T)");
}

struct DenseGroups {
  at::Tensor ids;  // (B,) int64 in [0, num_groups)
  int64_t num_groups = 0;
};

// Maps arbitrary group ids to 0..G-1 (in order of first appearance), on `device`.
DenseGroups dense_groups(const std::vector<int64_t>& index, int64_t batch_size, const at::Device& device,
                         const char* where) {
  if (static_cast<int64_t>(index.size()) != batch_size)
    throw Error(std::string(where) + ": index has " + std::to_string(index.size()) +
                " group ids but the batch has " + std::to_string(batch_size) +
                " sequences; give one per sequence");
  std::unordered_map<int64_t, int64_t> dense;
  std::vector<int64_t> ids(index.size());
  for (size_t i = 0; i < index.size(); ++i) {
    auto it = dense.emplace(index[i], static_cast<int64_t>(dense.size())).first;
    ids[i] = it->second;
  }
  DenseGroups groups;
  groups.ids = at::tensor(ids, at::kLong).to(device);
  groups.num_groups = static_cast<int64_t>(dense.size());
  return groups;
}

// Per-sequence group statistics of scores (B,): centered = score - group mean, group size and unbiased
// group variance broadcast back to the sequences.
struct GroupStats {
  at::Tensor centered, count, var;  // (B,) each
};

GroupStats group_stats(const at::Tensor& scores, const DenseGroups& groups) {
  const auto opts = scores.options();
  at::Tensor count = at::zeros({groups.num_groups}, opts).index_add_(0, groups.ids, at::ones_like(scores));
  at::Tensor sum = at::zeros({groups.num_groups}, opts).index_add_(0, groups.ids, scores);
  at::Tensor mean = sum / count;  // (G,)
  GroupStats s;
  s.centered = scores - mean.index_select(0, groups.ids);
  at::Tensor sq = at::zeros({groups.num_groups}, opts).index_add_(0, groups.ids, s.centered * s.centered);
  at::Tensor var = sq / (count - 1).clamp_min(1);  // (G,) unbiased; groups of one are masked out by callers
  s.count = count.index_select(0, groups.ids);
  s.var = var.index_select(0, groups.ids);
  return s;
}

AdvantageResult broadcast_outcome(const at::Tensor& per_sequence, const at::Tensor& response_mask,
                                  const at::Tensor& like) {
  at::Tensor adv =
      per_sequence.to(like.scalar_type()).unsqueeze(-1) * mask_like(response_mask, like);  // (B, T)
  return {adv, adv};
}

}  // namespace

at::Tensor masked_sum(const at::Tensor& values, const at::Tensor& mask) {
  return (values * mask_like(mask, values)).sum();
}

at::Tensor masked_mean(const at::Tensor& values, const at::Tensor& mask) {
  const at::Tensor m = mask_like(mask, values);
  return (values * m).sum() / m.sum();
}

at::Tensor masked_mean(const at::Tensor& values, const at::Tensor& mask, int64_t dim) {
  const at::Tensor m = mask_like(mask, values);
  return (values * m).sum(dim) / m.sum(dim);
}

at::Tensor masked_var(const at::Tensor& values, const at::Tensor& mask, bool unbiased) {
  const at::Tensor m = mask_like(mask, values);
  const double n = m.sum().item<double>();
  if (n <= 0) throw Error("masked_var: the mask selects no element; the batch has no response tokens");
  if (unbiased && n == 1)
    throw Error(
        "masked_var: the mask selects a single element, so the unbiased variance divides by zero; "
        "use a batch with more than one response token");
  const at::Tensor mean = (values * m).sum() / n;
  const at::Tensor centered = values - mean;
  at::Tensor var = (centered * centered * m).sum() / n;
  if (unbiased) var = var * (n / (n - 1));
  return var;
}

at::Tensor masked_whiten(const at::Tensor& values, const at::Tensor& mask, bool shift_mean) {
  const at::Tensor mean = masked_mean(values, mask);
  const at::Tensor var = masked_var(values, mask, /*unbiased=*/true);
  at::Tensor whitened = (values - mean) * at::rsqrt(var + 1e-8);
  if (!shift_mean) whitened = whitened + mean;
  return whitened;
}

std::vector<int64_t> contiguous_group_index(int64_t batch_size, int64_t group_size) {
  if (group_size < 1 || batch_size < 0 || batch_size % group_size != 0)
    throw Error("contiguous_group_index: batch of " + std::to_string(batch_size) +
                " sequences cannot be split into groups of " + std::to_string(group_size) +
                "; the batch size must be a multiple of rollout.n");
  std::vector<int64_t> index(static_cast<size_t>(batch_size));
  for (int64_t i = 0; i < batch_size; ++i) index[static_cast<size_t>(i)] = i / group_size;
  return index;
}

// The outcome estimators' common start: checks, per-sequence scores (the sum of the token rewards) and
// their group statistics.
GroupStats outcome_group_stats(const at::Tensor& token_level_rewards, const at::Tensor& response_mask,
                               const std::vector<int64_t>& index, const char* caller) {
  check_same_shape(token_level_rewards, "token_level_rewards", response_mask, "response_mask", caller);
  // In float64: a group's mean of equal float32 scores is then exact, so their advantages are exactly 0.
  // Summed in float32 the mean of eight 0.1s is one ulp off, and dividing that by a std of the same size
  // plus epsilon gave every sequence of an all-equal group an advantage of -0.007 instead of 0.
  const at::Tensor scores = token_level_rewards.to(at::kDouble).sum(-1);  // (B,)
  return group_stats(scores, dense_groups(index, scores.size(0), scores.device(), caller));
}

AdvantageResult compute_grpo_outcome_advantage(const at::Tensor& token_level_rewards,
                                               const at::Tensor& response_mask,
                                               const std::vector<int64_t>& index, double epsilon,
                                               bool norm_adv_by_std) {
  at::NoGradGuard no_grad;
  const GroupStats s =
      outcome_group_stats(token_level_rewards, response_mask, index, "compute_grpo_outcome_advantage");
  at::Tensor adv = norm_adv_by_std ? s.centered / (s.var.sqrt() + epsilon) : s.centered;  // (B,)
  adv = at::where(s.count > 1, adv, at::zeros_like(adv));
  return broadcast_outcome(adv, response_mask, token_level_rewards);
}

AdvantageResult compute_rloo_outcome_advantage(const at::Tensor& token_level_rewards,
                                               const at::Tensor& response_mask,
                                               const std::vector<int64_t>& index) {
  at::NoGradGuard no_grad;
  const GroupStats s =
      outcome_group_stats(token_level_rewards, response_mask, index, "compute_rloo_outcome_advantage");
  at::Tensor adv = s.centered * s.count / (s.count - 1).clamp_min(1);  // (B,)
  adv = at::where(s.count > 1, adv, at::zeros_like(adv));
  return broadcast_outcome(adv, response_mask, token_level_rewards);
}

AdvantageResult compute_gae_advantage_return(const at::Tensor& token_level_rewards, const at::Tensor& values,
                                             const at::Tensor& response_mask, double gamma, double lam,
                                             bool whiten) {
  at::NoGradGuard no_grad;
  check_same_shape(token_level_rewards, "token_level_rewards", values, "values",
                   "compute_gae_advantage_return");
  check_same_shape(token_level_rewards, "token_level_rewards", response_mask, "response_mask",
                   "compute_gae_advantage_return");
  if (token_level_rewards.dim() != 2)
    throw Error("compute_gae_advantage_return: token_level_rewards must be (B, T); got " +
                c10::str(token_level_rewards.sizes()));
  const auto dtype = stats_dtype(token_level_rewards);
  const auto device = token_level_rewards.device();
  const int64_t batch = token_level_rewards.size(0), length = token_level_rewards.size(1);
  // The recursion runs backwards over T; a plain loop over host memory is ~1000x faster than T small
  // tensor ops (one copy each way, also for device tensors).
  const at::Tensor r = token_level_rewards.to(at::kCPU, at::kDouble).contiguous();  // (B, T)
  const at::Tensor v = values.to(at::kCPU, at::kDouble).contiguous();               // (B, T)
  const at::Tensor m = response_mask.to(at::kCPU, at::kDouble).contiguous();        // (B, T)
  at::Tensor adv = at::empty({batch, length}, r.options());                         // (B, T)
  const double *rp = r.data_ptr<double>(), *vp = v.data_ptr<double>(), *mp = m.data_ptr<double>();
  double* ap = adv.data_ptr<double>();
  for (int64_t b = 0; b < batch; ++b) {
    double next_value = 0, last_gae = 0;
    for (int64_t t = length - 1; t >= 0; --t) {
      const int64_t i = b * length + t;
      const double delta = rp[i] + gamma * next_value - vp[i];
      const double gae = delta + gamma * lam * last_gae;
      // Positions outside the mask carry the next in-mask value and advantage through unchanged.
      next_value = vp[i] * mp[i] + (1 - mp[i]) * next_value;
      last_gae = gae * mp[i] + (1 - mp[i]) * last_gae;
      ap[i] = last_gae;
    }
  }
  const at::Tensor mask = m.to(device, dtype);       // (B, T)
  at::Tensor advantages = adv.to(device, dtype);     // (B, T)
  at::Tensor returns = (adv + v).to(device, dtype);  // (B, T)
  if (whiten) advantages = masked_whiten(advantages, mask);
  advantages = advantages * mask;
  const auto out = token_level_rewards.scalar_type();
  return {advantages.to(out), returns.to(out)};
}

at::Tensor scores_to_token_level(const at::Tensor& scores, const at::Tensor& response_mask) {
  at::NoGradGuard no_grad;
  if (scores.dim() != 1 || response_mask.dim() != 2 || scores.size(0) != response_mask.size(0))
    throw Error("scores_to_token_level: scores must be (B,) and response_mask (B, T); got " +
                c10::str(scores.sizes()) + " and " + c10::str(response_mask.sizes()));
  const int64_t length = response_mask.size(1);
  const at::Tensor positions =
      at::arange(1, length + 1, at::TensorOptions().dtype(at::kLong).device(response_mask.device()));  // (T,)
  const at::Tensor last = ((response_mask != 0).to(at::kLong) * positions).amax(-1) - 1;  // (B,), -1 = empty
  const at::Tensor has = (last >= 0).to(scores.scalar_type());
  at::Tensor out = at::zeros({scores.size(0), length}, scores.options().device(response_mask.device()));
  out.scatter_(1, last.clamp_min(0).unsqueeze(1),
               (scores.to(out.device()) * has.to(out.device())).unsqueeze(1));
  return out;
}

namespace {
void check_overlong_args(int64_t max_response_length, int64_t buffer_len) {
  if (buffer_len < 1 || buffer_len > max_response_length)
    throw ConfigError("algorithm.overlong_buffer.len = " + std::to_string(buffer_len) +
                      " must be in [1, data.max_response_length = " + std::to_string(max_response_length) +
                      "]; lower it");
}
}  // namespace

double overlong_penalty(int64_t response_length, int64_t max_response_length, int64_t buffer_len,
                        double penalty_factor) {
  check_overlong_args(max_response_length, buffer_len);
  const double expected = static_cast<double>(max_response_length - buffer_len);
  const double exceed = static_cast<double>(response_length) - expected;
  return std::min(0.0, -exceed / static_cast<double>(buffer_len) * penalty_factor);
}

at::Tensor overlong_penalty(const at::Tensor& response_mask, int64_t max_response_length, int64_t buffer_len,
                            double penalty_factor) {
  at::NoGradGuard no_grad;
  check_overlong_args(max_response_length, buffer_len);
  const auto dtype =
      at::isFloatingType(response_mask.scalar_type()) ? response_mask.scalar_type() : at::kFloat;
  const at::Tensor lengths = (response_mask != 0).to(dtype).sum(-1);  // (B,)
  const double expected = static_cast<double>(max_response_length - buffer_len);
  return (-(lengths - expected) / static_cast<double>(buffer_len) * penalty_factor).clamp_max(0.0);
}

std::vector<bool> dynamic_sampling_keep(const at::Tensor& scores, const std::vector<int64_t>& index) {
  const at::Tensor s = scores.detach().to(at::kCPU, at::kDouble).contiguous().view(-1);
  if (s.numel() != static_cast<int64_t>(index.size()))
    throw Error("dynamic_sampling_keep: " + std::to_string(s.numel()) + " scores but " +
                std::to_string(index.size()) + " group ids; give one id per sequence");
  const double* data = s.data_ptr<double>();
  struct Range {
    double lo, hi;
    int64_t n;
  };
  std::unordered_map<int64_t, Range> ranges;
  for (size_t i = 0; i < index.size(); ++i) {
    auto [it, fresh] = ranges.emplace(index[i], Range{data[i], data[i], 1});
    if (!fresh) {
      it->second.lo = std::min(it->second.lo, data[i]);
      it->second.hi = std::max(it->second.hi, data[i]);
      ++it->second.n;
    }
  }
  std::vector<bool> keep(index.size());
  for (size_t i = 0; i < index.size(); ++i) {
    const Range& r = ranges.at(index[i]);
    keep[i] = r.n == 1 || r.lo != r.hi;
  }
  return keep;
}

}  // namespace tinyzero
