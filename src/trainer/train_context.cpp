// Set-up of a run's context (see train_context.h).
#include "trainer/train_context.h"

#include <algorithm>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/log.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/model/memory_meter.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/trainer/memory_estimate.h"
#include "trainer/rollout_stage.h"

namespace tinyzero {

namespace {

// optim.offload needs sharding: one clear line before anything is loaded.
void check_offload(const TrainConfig& c, int64_t w) {
  for (const auto& [key, optim] : {std::pair<std::string, const OptimConfig*>{"actor", &c.actor.optim},
                                   std::pair<std::string, const OptimConfig*>{"critic", &c.critic.optim}})
    if (optim->offload && (key == "actor" || c.needs_critic()) && (w < 2 || c.distributed.zero_stage < 2))
      throw ConfigError(key +
                        ".optim.offload=true keeps each rank's shard of the AdamW state in host memory: it "
                        "needs distributed.zero_stage 2 or 3 and more than one rank (this run: stage " +
                        std::to_string(c.distributed.zero_stage) + ", " + std::to_string(w) +
                        " rank(s)); set the stage, or offload=false");
}

void check_world_size(const TrainConfig& c, const DistEnv& env, bool sft) {
  const int64_t w = env.world_size;
  if (c.data.train_batch_size % w != 0 || (!sft && c.actor.ppo_mini_batch_size % w != 0))
    throw ConfigError("data.train_batch_size (" + std::to_string(c.data.train_batch_size) +
                      ") and actor.ppo_mini_batch_size (" + std::to_string(c.actor.ppo_mini_batch_size) +
                      ") must be multiples of the world size " + std::to_string(w) +
                      "; change them or the number of ranks");
  if (c.algorithm.filter_groups)
    throw ConfigError(
        "algorithm.filter_groups (DAPO dynamic sampling) runs on one process only in this version; "
        "set algorithm.filter_groups=false or run a single rank");
}

void load_data(TrainContext& s) {
  const TrainConfig& c = s.config;
  s.task = make_task(c.data, c.reward);
  if (s.is_sft()) {
    s.sft_examples = read_sft_examples(c.data.train_files);
    s.problems.val = load_validation_problems(c);
    s.cursor = std::make_unique<DataCursor>(static_cast<int64_t>(s.sft_examples.size()), c.data.seed,
                                            c.data.shuffle);
  } else {
    s.problems = load_problem_sets(c.data);
    s.cursor = std::make_unique<DataCursor>(static_cast<int64_t>(s.problems.train.size()), c.data.seed,
                                            c.data.shuffle);
  }
  // Every problem checked before the first step (file:line in the errors): prompt length, numbers,
  // solvability.
  check_problem_sets(s.problems, *s.task, c.data, prompt_token_counter(*s.tokenizer));
  logging::info("data: {} training {}, {} validation problems",
                s.is_sft() ? s.sft_examples.size() : s.problems.train.size(),
                s.is_sft() ? "examples" : "problems", s.problems.val.size());
}

void load_models(TrainContext& s) {
  const TrainConfig& c = s.config;
  s.actor = load_causal_lm(c.model.path, s.dtype, s.device);
  s.actor->set_activation_checkpointing(c.model.activation_checkpointing);
  const TransformerConfig& mc = s.actor->config();
  const int64_t positions = c.data.max_prompt_length + c.data.max_response_length;
  if (positions > mc.max_position_embeddings && mc.max_position_embeddings > 0)
    throw ConfigError("data.max_prompt_length + data.max_response_length = " + std::to_string(positions) +
                      " exceeds the model's max_position_embeddings " +
                      std::to_string(mc.max_position_embeddings) + " (" + c.model.path +
                      "/config.json); shorten them");
  if (c.needs_reference()) {
    at::ScalarType ref_dtype = c.reference.dtype == "same" ? s.dtype : parse_dtype(c.reference.dtype);
    s.reference = load_causal_lm(c.model.path, ref_dtype, s.device);
    s.reference->eval();
    for (auto& p : s.reference->parameters()) p.set_requires_grad(false);
    if (c.distributed.zero_stage == 3 && s.world() > 1) {  // every rank loaded the same weights
      std::vector<std::pair<std::string, at::Tensor>> ref_params;
      for (auto& item : s.reference->named_parameters()) ref_params.emplace_back(item.key(), item.value());
      s.reference_shards = std::make_unique<ParameterShards>(ref_params, *s.pg, true);
      s.reference_shards->shard_from_parameters();
      s.reference->set_parameter_host(s.reference_shards.get());
    }
    s.place_reference(false);
  }
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (auto& item : s.actor->named_parameters()) params.emplace_back(item.key(), item.value());
  const int64_t bucket_bytes = c.distributed.bucket_mb << 20;
  s.optimizer =
      std::make_unique<DataParallelOptimizer>(params, c.actor.optim, *s.pg, c.distributed.zero_stage,
                                              bucket_bytes, c.distributed.overlap_grad_reduce);
  s.actor->set_parameter_host(s.optimizer->host());
  if (c.needs_critic()) {
    s.critic = std::make_unique<Critic>(c.model.path, s.dtype, s.device, derive_seed(c.trainer.seed, 0xc417));
    s.critic->set_activation_checkpointing(c.model.activation_checkpointing);
    s.critic_optimizer = std::make_unique<DataParallelOptimizer>(
        s.critic->named_parameters(), c.critic.optim, *s.pg, c.distributed.zero_stage, bucket_bytes,
        c.distributed.overlap_grad_reduce);
    s.critic->set_parameter_host(s.critic_optimizer->host());
  }
  s.kl_ctrl = make_kl_controller(c.algorithm.kl_ctrl);
}

}  // namespace

std::vector<Problem> load_validation_problems(const TrainConfig& c) {
  DataConfig data = c.data;
  // The training set matters only when it comes from problem files and the validation set is generated
  // (disjoint from it); SFT's data.train_files holds examples, not problems.
  if (parse_algorithm(c.algorithm.name) == Algorithm::kSft || !data.val_files.empty())
    data.train_files.clear();
  if (data.train_files.empty()) data.train_size = 1;
  return load_problem_sets(data).val;
}

TokenCounter prompt_token_counter(const Tokenizer& tokenizer) {
  return [&tokenizer](const std::string& text) -> int64_t {
    return static_cast<int64_t>(tokenizer.encode(text, false).size());
  };
}

at::Device pick_device(const TrainConfig& c, const DistEnv& env) {
  at::Device device(c.trainer.device == "cuda" ? at::kCUDA : at::kCPU);
  if (c.trainer.device == "auto" && torch::cuda::is_available()) device = at::Device(at::kCUDA);
  if (!device.is_cuda()) return device;
  const int index = gpu_of_rank(env.local_rank, static_cast<int>(torch::cuda::device_count()));
  return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
}

int gpu_of_rank(int local_rank, int visible_gpus) {
  // One GPU per rank: cuda:<local rank> when the rank sees all of the node's GPUs (torchrun), cuda:0 when
  // the launcher shows each task only its own (SLURM --gpus-per-task=1, CUDA_VISIBLE_DEVICES per rank).
  const int index = visible_gpus == 1 ? 0 : local_rank;
  if (index >= visible_gpus || index < 0)
    throw ConfigError("local rank " + std::to_string(local_rank) + " has no GPU: this process sees " +
                      std::to_string(visible_gpus) +
                      " CUDA device(s); start at most one rank per visible GPU, or give each rank its "
                      "own GPU (CUDA_VISIBLE_DEVICES, SLURM --gpus-per-task=1)");
  return index;
}

bool pick_autocast(const TrainConfig& c, const at::Device& device) {
  const bool on = resolve_autocast_bf16(c.model.autocast_bf16, device.is_cuda() ? "cuda" : "cpu");
  if (device.is_cpu() && !cpu_has_native_bf16() && on) {
    logging::warn(
        "model.autocast_bf16=true on a CPU without native bf16 matmul (no avx512_bf16, amx_bf16 or bf16 in "
        "/proc/cpuinfo): bf16 matmuls run 10-30x slower than fp32 here; set model.autocast_bf16=auto or "
        "false");
  } else if (c.model.autocast_bf16 == "auto") {
    const char* why =
        on ? (device.is_cuda() ? "on (CUDA)" : "on (this CPU's bf16 matmuls run on AMX or Arm bf16)")
        : cpu_has_native_bf16()
            ? "off (this CPU has bf16 instructions but no AMX: its fp32 matmuls are faster)"
            : "off (this CPU has no native bf16 matmul; matmuls in fp32)";
    logging::info("model.autocast_bf16=auto: bf16 autocast {}", why);
  }
  return on;
}

std::unique_ptr<TrainContext> make_train_context(const TrainConfig& config) {
  auto context = std::make_unique<TrainContext>();
  TrainContext& s = *context;
  s.config = config;
  const TrainConfig& c = s.config;
  s.algorithm = parse_algorithm(c.algorithm.name);
  // Data parallel: one process per device, joined through c10d (torchrun / SLURM / launch-local.sh).
  s.env = detect_dist_env();
  s.device = pick_device(c, s.env);
  if (s.device.is_cpu()) start_cpu_memory_meter();  // each phase's peak in the metrics (CUDA has its own)
  check_offload(c, s.env.world_size);
  if (s.env.is_distributed()) {
    check_world_size(c, s.env, s.is_sft());
    logging::info("data parallel: {}", describe(s.env));
  }
  s.pg = init_process_group(s.env, c.distributed.backend, s.device, c.distributed.timeout_s);
  s.dtype = parse_dtype(c.model.dtype);
  s.bf16_autocast = pick_autocast(c, s.device);
  // Before any model is loaded; it also says whether ZeRO-3 generation must gather a layer at a time.
  const std::optional<MemoryEstimate> fit =
      check_fits_on_device(c, s.device, static_cast<int>(s.env.world_size));
  s.rollout_by_layer = c.distributed.zero_stage == 3 && s.env.world_size > 1 &&
                       (c.distributed.rollout_gather == "layer" || (fit && fit->rollout_by_layer));
  if (s.rollout_by_layer)
    logging::info(
        "ZeRO-3 generation gathers the actor a layer at a time in every forward pass "
        "(distributed.rollout_gather={}): least memory, slower rollouts",
        c.distributed.rollout_gather);
  torch::manual_seed(c.trainer.seed);

  s.tokenizer_dir = c.model.tokenizer_path.empty() ? c.model.path : c.model.tokenizer_path;
  s.tokenizer = load_tokenizer(s.tokenizer_dir);
  load_data(s);
  load_models(s);
  s.eos_ids = stop_token_ids(*s.tokenizer, s.actor->config(), s.tokenizer_dir, c.model.path);
  s.pad_id = s.tokenizer->pad_id().value_or(s.eos_ids.front());
  return context;
}

void TrainContext::place_reference(bool in_use) {
  if (!in_use && reference_shards) reference_shards->release_all();
  if (!reference || !config.reference.offload || !device.is_cuda()) return;
  const at::Device to = in_use ? device : at::Device(at::kCPU);
  reference->to(to);
  if (reference_shards) reference_shards->to(to, /*gradients=*/false);
}

void TrainContext::place_critic(bool in_use, bool updating) {
  if (!in_use && critic_optimizer) critic_optimizer->release_gathered();
  if (!critic || !config.critic.offload || !device.is_cuda()) return;
  const at::Device to = in_use ? device : at::Device(at::kCPU);
  critic->to(to);
  critic_optimizer->move_to(to, /*with_state=*/!in_use || updating);
}

}  // namespace tinyzero
