// The update schedule and the guarded optimizer step (see update_schedule.h).
#include "trainer/update_schedule.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "tinyzero/core/errors.h"
#include "trainer/data_order.h"
#include "trainer/train_context.h"

namespace tinyzero {

void for_each_update(int64_t B, int64_t mini_rows, int64_t micro_rows, int64_t epochs, uint64_t seed,
                     int64_t step, const std::function<void(const std::vector<int64_t>& mini)>& begin_mini,
                     const std::function<void(const std::vector<int64_t>& rows, bool last)>& micro,
                     const std::function<void()>& end_mini, const std::vector<int64_t>* lengths) {
  const size_t micro_size = static_cast<size_t>(micro_rows);
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    std::vector<int64_t> order =
        permutation(B, derive_seed(seed, static_cast<uint64_t>(step), static_cast<uint64_t>(epoch)));
    for (int64_t mb = 0; mb < B; mb += mini_rows) {
      std::vector<int64_t> mini(order.begin() + mb, order.begin() + std::min(B, mb + mini_rows));
      std::sort(mini.begin(), mini.end(), [&](int64_t a, int64_t b) {
        if (!lengths) return a < b;
        const int64_t la = (*lengths)[static_cast<size_t>(a)], lb = (*lengths)[static_cast<size_t>(b)];
        return la != lb ? la < lb : a < b;
      });
      begin_mini(mini);
      for (size_t start = 0; start < mini.size(); start += micro_size)
        micro(std::vector<int64_t>(mini.begin() + start,
                                   mini.begin() + std::min(mini.size(), start + micro_size)),
              start + micro_size >= mini.size());
      end_mini();
    }
  }
}

std::pair<int64_t, int64_t> update_batch_rows(const TrainContext& ctx, const RolloutBatch& r,
                                              int64_t micro_batch_size) {
  const TrainConfig& c = ctx.config;
  const int64_t mini_rows =
      std::min<int64_t>(r.rows(), c.actor.ppo_mini_batch_size * c.rollout.n / ctx.world());
  const int64_t micro_rows =
      c.actor.use_dynamic_bsz
          ? std::max<int64_t>(1, c.actor.ppo_max_token_len / (r.prompt_len + r.response_len()))
          : micro_batch_size;
  return {mini_rows, micro_rows};
}

double apply_update(TrainContext& ctx, DataParallelOptimizer& opt, const OptimConfig& optim, double lr,
                    const char* what) {
  const double norm = opt.reduce_and_clip(optim.grad_clip);  // the same norm on every rank
  if (!std::isfinite(norm)) {
    ++ctx.nonfinite_total;
    if (++ctx.nonfinite_in_a_row >= ctx.config.trainer.max_consecutive_nonfinite)
      throw Error(std::string(what) + " gradients were non-finite in " +
                  std::to_string(ctx.nonfinite_in_a_row) + " optimizer steps in a row (step " +
                  std::to_string(ctx.step) + "); lower " + what + ".optim.lr, keep " + what +
                  ".optim.grad_clip on, or use model.dtype=float32");
    opt.zero_grad();
    return NAN;
  }
  ctx.nonfinite_in_a_row = 0;
  opt.step(lr);
  return norm;
}

}  // namespace tinyzero
