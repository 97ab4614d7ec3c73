// Validation over the held-out set (see validation.h).
#include "trainer/validation.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tinyzero/core/files.h"
#include "tinyzero/metrics/names.h"
#include "tinyzero/metrics/progress.h"
#include "trainer/checkpointer.h"
#include "trainer/data_order.h"
#include "trainer/rank_stats.h"
#include "trainer/reward_stage.h"
#include "trainer/rollout_stage.h"
#include "trainer/stage_timer.h"
#include "trainer/train_context.h"

namespace fs = std::filesystem;

namespace tinyzero {

Metrics validate(TrainContext& ctx) {
  const TrainConfig& c = ctx.config;
  Metrics m;
  if (ctx.problems.val.empty()) return m;
  StageTimer timer(m, "timing_s/validate", ctx.device);
  // Problems per generate call (its engine sizes its own batch of rows): data.val_batch_size, else all.
  const size_t batch =
      c.data.val_batch_size > 0 ? static_cast<size_t>(c.data.val_batch_size) : ctx.problems.val.size();
  const bool greedy = c.rollout.val_temperature == 0;
  double score_sum = 0, length_sum = 0;
  int64_t correct = 0, format = 0, count = 0;
  std::string generations;  // JSONL for trainer.validation_data_dir
  const auto [share_begin, share_end] = ctx.my_share(static_cast<int64_t>(ctx.problems.val.size()));
  ProgressBar bar("validation", share_end - share_begin, c.logging.progress && ctx.pg->is_main());
  const Sampler sampler = sampler_of(ctx);
  GenerationWeights weights(ctx);  // every rank, even one with no share (collective)
  for (size_t start = static_cast<size_t>(share_begin); start < static_cast<size_t>(share_end);
       start += batch) {
    const std::vector<Problem> chunk(
        ctx.problems.val.begin() + start,
        ctx.problems.val.begin() + std::min(static_cast<size_t>(share_end), start + batch));
    const uint64_t seed = derive_seed(c.trainer.seed, 0x7a1, static_cast<uint64_t>(ctx.step));
    RolloutBatch r = generate_rollouts(sampler, chunk, 1, greedy, c.rollout.val_temperature, seed, &bar,
                                       static_cast<int64_t>(start));
    score_rollouts(*ctx.task, chunk, r);
    length_sum += r.response_mask.sum().item<double>();
    auto scores = r.scores.accessor<float, 1>();
    for (int64_t i = 0; i < r.rows(); ++i) {
      score_sum += scores[i];
      correct += r.correct[i], format += r.format_ok[i], ++count;
      if (!c.trainer.validation_data_dir.empty())
        generations += nlohmann::json{{"index", static_cast<int64_t>(start) + i},
                                      {"prompt", r.prompts[i]},
                                      {"response", r.responses[i]},
                                      {"score", scores[i]},
                                      {"correct", static_cast<bool>(r.correct[i])}}
                           .dump() +
                       "\n";
    }
  }
  weights.finish();
  if (!c.trainer.validation_data_dir.empty()) {
    const fs::path dir(c.trainer.validation_data_dir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string name =
        checkpoint_name(ctx.step) + (ctx.world() > 1 ? ".rank" + std::to_string(ctx.rank()) : "");
    write_file_atomic((dir / (name + ".jsonl")).string(), generations);
  }
  RankStats sum(ReduceOp::kSum);
  sum.add("score", score_sum)
      .add("correct", static_cast<double>(correct))
      .add("format_ok", static_cast<double>(format))
      .add("response_length", length_sum)
      .add("count", static_cast<double>(count));
  sum.reduce(*ctx.pg);
  const std::string task = ctx.task->name();
  m[std::string(metric_names::kValTestScorePrefix) + task] = sum["score"] / sum["count"];
  m[std::string(metric_names::kValSuccessRatePrefix) + task] = sum["correct"] / sum["count"];
  m[std::string(metric_names::kValFormatRatePrefix) + task] = sum["format_ok"] / sum["count"];
  m["val/response_length/mean"] = sum["response_length"] / sum["count"];
  timer.stop();
  return m;
}

}  // namespace tinyzero
