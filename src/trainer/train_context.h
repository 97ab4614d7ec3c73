// What every stage of a run works with: the config, the device, the models and their optimizers, the
// data, the process group and the run's counters. One TrainContext per Trainer; stages are functions
// of it (rollout_stage.h, reward_stage.h, log_prob_passes.h, advantage_stage.h, actor_update.h,
// critic_update.h, sft_step.h, validation.h, checkpointer.h).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tinyzero/core/config.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/dist/process_group.h"
#include "tinyzero/metrics/logger.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/rl/kl.h"
#include "tinyzero/tasks/task.h"
#include "tinyzero/tokenizer/tokenizer.h"
#include "trainer/algorithm.h"
#include "trainer/critic.h"
#include "trainer/data_order.h"
#include "trainer/data_parallel.h"
#include "trainer/sft_data.h"

namespace tinyzero {

struct TrainContext {
  TrainConfig config;
  Algorithm algorithm = Algorithm::kGrpo;
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;
  bool bf16_autocast = false;     // model.autocast_bf16 resolved for this device
  bool rollout_by_layer = false;  // distributed.rollout_gather resolved: ZeRO-3 generation per layer
  // Data.
  std::string tokenizer_dir;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Task> task;
  ProblemSets problems;
  std::vector<SftExample> sft_examples;
  std::unique_ptr<DataCursor> cursor;
  std::vector<int64_t> eos_ids;
  int64_t pad_id = 0;
  // Models and optimizers.
  CausalLM actor{nullptr}, reference{nullptr};
  DistEnv env;
  std::unique_ptr<ProcessGroup> pg;  // a trivial group (no collectives) for a single process
  std::unique_ptr<DataParallelOptimizer> optimizer;
  std::unique_ptr<Critic> critic;  // PPO only
  std::unique_ptr<DataParallelOptimizer> critic_optimizer;
  std::unique_ptr<ParameterShards> reference_shards;  // ZeRO-3 on more than one rank
  std::unique_ptr<KlController> kl_ctrl;
  std::unique_ptr<MetricsLogger> logger;  // rank 0 only
  // Counters (saved in checkpoints).
  int64_t step = 0, resumed_from = 0;
  int64_t nonfinite_in_a_row = 0, nonfinite_total = 0;
  int64_t last_validated = -1, last_saved = -1;

  bool is_sft() const { return algorithm == Algorithm::kSft; }
  int rank() const { return pg->rank(); }
  int world() const { return pg->world_size(); }
  // This rank's share [begin, end) of `count` items split into equal contiguous parts.
  std::pair<int64_t, int64_t> my_share(int64_t count) const {
    return {count * rank() / world(), count * (rank() + 1) / world()};
  }
  double sum_over_ranks(double v) const { return pg->all_reduce(v, ReduceOp::kSum); }
  // Moves the reference / critic to the training device, or back to the CPU when it is offloaded
  // (reference.offload / critic.offload on CUDA; under ZeRO-3 the rank's shards); when it is no longer
  // in use, frees what ZeRO-3 gathered of it. The critic's gradients and AdamW state come in only for
  // its update (`updating`); its values pass needs the weights alone.
  void place_reference(bool in_use);
  void place_critic(bool in_use, bool updating = false);
};

// The held-out problems of a run's config (data.val_files, else generated from data.seed), without
// generating or reading a training set that cannot change them (SFT: data.train_files holds examples).
std::vector<Problem> load_validation_problems(const TrainConfig& c);
// Prompt tokens as the run encodes them, for check_problem_sets (`tokenizer` must outlive the result).
TokenCounter prompt_token_counter(const Tokenizer& tokenizer);

// The device of this process: trainer.device (auto: CUDA when there is one); on CUDA the local rank's GPU,
// or cuda:0 when the process sees one GPU only. Throws ConfigError when the local rank has no GPU.
at::Device pick_device(const TrainConfig& c, const DistEnv& env);
// The CUDA index of local rank `local_rank` when the process sees `visible_gpus` GPUs: the local rank
// (torchrun: every rank sees the node's GPUs), or 0 when it sees one (SLURM --gpus-per-task=1). Throws
// ConfigError when the rank has none.
int gpu_of_rank(int local_rank, int visible_gpus);
// model.autocast_bf16 resolved for `device` (logs what auto chose; warns on a CPU without native bf16).
bool pick_autocast(const TrainConfig& c, const at::Device& device);

// Builds the context of a run (without resuming): device, process group, tokenizer, task and data,
// actor, reference, critic and their optimizers, stop tokens. Throws ConfigError / Error / IoError.
std::unique_ptr<TrainContext> make_train_context(const TrainConfig& config);

}  // namespace tinyzero
