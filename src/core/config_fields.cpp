// The declaration of every config field: name, default, one-line help, check. This file is the single
// source of truth; parsing, validation, --print-config and docs/config-reference.md derive from it.
#include "tinyzero/core/config.h"

namespace tinyzero {

namespace {
const std::vector<std::string> kKlEstimators = {"k1", "k2", "k3", "low_var_kl", "abs"};
}

void ModelConfig::describe(Schema& s) {
  s.field("path", &path, "",
          "local Hugging Face directory of the base model (config.json, *.safetensors, tokenizer)");
  s.field("tokenizer_path", &tokenizer_path, "", "tokenizer directory; empty = model.path");
  s.field("dtype", &dtype, "float32", "dtype of the trained parameters",
          Check::one_of({"float32", "bfloat16"}));
  s.field("autocast_bf16", &autocast_bf16, "false",
          "run matmuls under bf16 autocast (parameters stay in model.dtype); auto = on for CUDA and for CPUs "
          "whose bf16 matmuls beat fp32 (x86 AMX, Arm bf16), off on others: with avx512_bf16 alone fp32 is "
          "faster (the tiny demo 1.6x), and without native bf16 it is 10-30x faster",
          Check::one_of({"false", "true", "auto"}));
  s.field("activation_checkpointing", &activation_checkpointing, false,
          "recompute each layer in backward instead of storing its activations (saves memory on 3B+)");
}

void CountdownDataConfig::describe(Schema& s) {
  s.field("min_numbers", &min_numbers, 3, "fewest numbers in a problem", Check::range(2, 6));
  s.field("max_numbers", &max_numbers, 4, "most numbers in a problem", Check::range(2, 6));
  s.field("min_number", &min_number, 1, "smallest given number", Check::at_least(1));
  s.field("max_number", &max_number, 99, "largest given number", Check::at_least(1));
  s.field("min_target", &min_target, 1, "smallest target", Check::at_least(0));
  s.field("max_target", &max_target, 100, "largest target", Check::at_least(0));
}

void MultiplicationDataConfig::describe(Schema& s) {
  s.field("digits_a", &digits_a, 3, "digits of the first operand", Check::range(1, 18));
  s.field("digits_b", &digits_b, 3, "digits of the second operand", Check::range(1, 18));
}

void DataConfig::describe(Schema& s) {
  s.field("task", &task, "countdown", "problem family and reward",
          Check::one_of({"countdown", "multiplication"}));
  s.field("train_files", &train_files, "",
          "JSONL of training problems; empty = generate data.train_size problems");
  s.field("val_files", &val_files, "",
          "JSONL of held-out problems; empty = generate data.val_size problems disjoint from training");
  s.field("train_size", &train_size, 327680, "generated training problems (TinyZero: 327,680)",
          Check::at_least(1));
  s.field("val_size", &val_size, 1024, "generated held-out problems (TinyZero: 1,024)", Check::at_least(1));
  s.field("seed", &seed, 0, "seed of problem generation and of the data order", Check::non_negative());
  s.field("train_batch_size", &train_batch_size, 256, "prompts per RL step, before rollout.n samples each",
          Check::at_least(1));
  s.field("val_batch_size", &val_batch_size, 0,
          "prompts per validation generate call; 0 = all of a rank's share in one call (the rollout engine "
          "bounds the rows decoding at once)",
          Check::non_negative());
  s.field("max_prompt_length", &max_prompt_length, 256, "prompt tokens; longer prompts are an error",
          Check::at_least(1));
  s.field("max_response_length", &max_response_length, 1024, "new tokens per response", Check::at_least(1));
  s.field("prompt_template", &prompt_template, "base",
          "prompt: TinyZero's base or qwen-instruct text, or a custom string with {numbers} and {target} "
          "({a} and {b} for multiplication)",
          Check::one_of_or({"base", "qwen-instruct"}, "a custom template string"));
  s.field("shuffle", &shuffle, true, "shuffle the training problems each epoch");
  s.field("allow_unsolvable", &allow_unsolvable, false,
          "accept Countdown problems in data.train_files / data.val_files whose target the numbers cannot "
          "reach (no response can score correct); false = refused at load, with file:line");
  s.field("allow_out_of_range", &allow_out_of_range, false,
          "accept problems in data.train_files / data.val_files outside the ranges of data.countdown.* "
          "(numbers per problem, numbers, target) or data.multiplication.* (operand digits); false = refused "
          "at load, with file:line");
  s.section("countdown", &countdown,
            "Countdown problems: the generator's ranges, which problems from data files must keep too "
            "(unless data.allow_out_of_range)");
  s.section("multiplication", &multiplication,
            "multiplication problems: the generator's operand sizes, which problems from data files must "
            "keep too (unless data.allow_out_of_range)");
}

void RewardConfig::describe(Schema& s) {
  s.field("mode", &mode, "tinyzero",
          "tinyzero: TinyZero's exact scoring; strict: only + - * / ( ), exact rationals",
          Check::one_of({"tinyzero", "strict"}));
  s.field("format_score", &format_score, 0.1, "score of a well-formed but wrong answer",
          Check::non_negative());
  s.field("correct_score", &correct_score, 1.0, "score of a correct answer", Check::non_negative());
}

void RolloutConfig::describe(Schema& s) {
  s.field("n", &n, 5, "responses sampled per prompt (the GRPO group size; TinyZero's PPO uses 1)",
          Check::at_least(1));
  s.field("temperature", &temperature, 1.0, "sampling temperature of training rollouts; 0 = greedy",
          Check::non_negative());
  s.field("top_p", &top_p, 1.0, "nucleus sampling mass; 1 = off", Check::bounds(0.0, 1.0, true));
  s.field("top_k", &top_k, 0, "sample among the k most likely tokens; 0 = off", Check::non_negative());
  s.field("stop", &stop, std::vector<std::string>{}, "stop strings besides EOS, e.g. [\"</answer>\"]");
  s.field("micro_batch_size", &micro_batch_size, 0,
          "most rows decoding at once (continuous batching: a row that ends hands its slot to the next "
          "sample); 0 = as many as fit in rollout.memory_utilization of the memory free when the rollout "
          "starts (each row's KV cache and decode tensors; --dry-run shows the count)",
          Check::non_negative());
  s.field("memory_utilization", &memory_utilization, 0.9,
          "fraction of the device memory available at the start of a rollout phase that its KV cache and "
          "decode tensors may take; bounds the rows decoding at once",
          Check::bounds(0.0, 1.0, true));
  s.field("log_prob_micro_batch_size", &log_prob_micro_batch_size, 16,
          "sequences per forward pass for old/reference log-probs and values", Check::at_least(1));
  s.field("val_temperature", &val_temperature, 0.0, "temperature of validation; 0 = greedy",
          Check::non_negative());
  s.field("reuse_log_probs", &reuse_log_probs, false,
          "take the old policy's log-probs from the sampler instead of a separate pass over the rollouts "
          "(the same weights and temperature: equal up to rounding in fp32, close under bf16 autocast); "
          "needs unfiltered sampling (top_k 0, top_p 1, temperature > 0)");
  s.field("cuda_graphs", &cuda_graphs, true,
          "on a CUDA device, capture the decode step as a CUDA graph for each of a few batch shapes (rows a "
          "power of two, attention width a multiple of 64) and replay it: one launch per token instead of "
          "about a thousand; no effect on the CPU or while ZeRO-3 gathers the actor a layer at a time");
}

void KlControlConfig::describe(Schema& s) {
  s.field("type", &type, "fixed", "KL coefficient control", Check::one_of({"fixed", "adaptive"}));
  s.field("kl_coef", &kl_coef, 0.001, "KL-in-reward coefficient (initial value when adaptive)",
          Check::non_negative());
  s.field("target_kl", &target_kl, 0.1, "adaptive: KL the coefficient steers towards", Check::positive());
  s.field("horizon", &horizon, 10000, "adaptive: steps over which the coefficient adapts",
          Check::at_least(1));
}

void OverlongBufferConfig::describe(Schema& s) {
  s.field("enable", &enable, false, "DAPO overlong penalty for responses near data.max_response_length");
  s.field("len", &len, 256, "tokens before the limit where the penalty ramps from 0 to penalty_factor",
          Check::at_least(1));
  s.field("penalty_factor", &penalty_factor, 1.0, "penalty at the length limit", Check::non_negative());
}

void AlgorithmConfig::describe(Schema& s) {
  s.field("name", &name, "grpo",
          "ppo: critic + GAE (TinyZero); grpo: group-normalised; rloo: leave-one-out; sft: supervised",
          Check::one_of({"ppo", "grpo", "rloo", "sft"}));
  s.field("norm_adv_by_std", &norm_adv_by_std, true, "GRPO: divide by the group's std (false = Dr. GRPO)");
  s.field("gamma", &gamma, 1.0, "GAE discount", Check::range(0, 1));
  s.field("lam", &lam, 1.0, "GAE lambda", Check::range(0, 1));
  s.field("use_kl_in_reward", &use_kl_in_reward, false,
          "subtract kl_ctrl.kl_coef * KL(policy || reference) from the token rewards (TinyZero's PPO)");
  s.field("kl_penalty", &kl_penalty, "k1", "KL estimator used in the reward", Check::one_of(kKlEstimators));
  s.section("kl_ctrl", &kl_ctrl, "coefficient of the KL in the reward");
  s.field("filter_groups", &filter_groups, false,
          "DAPO dynamic sampling: drop groups whose rewards are all equal and refill the batch");
  s.field("max_num_gen_batches", &max_num_gen_batches, 10,
          "filter_groups: most generation rounds per step; 0 = unlimited", Check::non_negative());
  s.section("overlong_buffer", &overlong_buffer, "DAPO overlong penalty");
}

void OptimConfig::describe(Schema& s) {
  s.field("lr", &lr, 1e-6, "peak learning rate", Check::positive());
  s.field("beta1", &beta1, 0.9, "AdamW beta1", Check::bounds(0.0, 1.0, false, true));
  s.field("beta2", &beta2, 0.999, "AdamW beta2", Check::bounds(0.0, 1.0, false, true));
  s.field("eps", &eps, 1e-8, "AdamW epsilon", Check::positive());
  s.field("weight_decay", &weight_decay, 0.01, "AdamW decoupled weight decay", Check::non_negative());
  s.field("warmup_steps", &warmup_steps, 0, "linear warm-up steps from 0 to lr", Check::non_negative());
  s.field("schedule", &schedule, "constant", "learning rate after warm-up",
          Check::one_of({"constant", "cosine"}));
  s.field("min_lr_ratio", &min_lr_ratio, 0.0, "cosine: final lr as a fraction of lr", Check::range(0, 1));
  s.field("grad_clip", &grad_clip, 1.0, "clip the global gradient norm to this; 0 = off",
          Check::non_negative());
  s.field("offload", &offload, false,
          "keep the AdamW state (moments, fp32 master weights) in host memory and update there "
          "(ZeRO-Offload); needs distributed.zero_stage 2 or 3 on more than one rank");
}

void ActorConfig::describe(Schema& s) {
  s.section("optim", &optim, "optimizer of the policy");
  s.field("ppo_mini_batch_size", &ppo_mini_batch_size, 64,
          "prompts per optimizer step (times rollout.n sequences)", Check::at_least(1));
  s.field("ppo_micro_batch_size", &ppo_micro_batch_size, 8,
          "sequences per forward/backward on one device (gradient accumulation)", Check::at_least(1));
  s.field("use_dynamic_bsz", &use_dynamic_bsz, false,
          "form micro-batches by token count (actor.ppo_max_token_len) instead of sequence count");
  s.field("ppo_max_token_len", &ppo_max_token_len, 16384, "use_dynamic_bsz: most tokens per micro-batch",
          Check::at_least(1));
  s.field("ppo_epochs", &ppo_epochs, 1, "passes over each rollout batch", Check::at_least(1));
  s.field("clip_ratio_low", &clip_ratio_low, 0.2, "PPO clip below 1 (ratio >= 1 - low)", Check::range(0, 1));
  s.field("clip_ratio_high", &clip_ratio_high, 0.2,
          "PPO clip above 1 (ratio <= 1 + high; DAPO clip-higher: 0.28)", Check::non_negative());
  s.field("clip_ratio_c", &clip_ratio_c, 3.0, "dual-clip bound for negative advantages",
          Check::bounds(1.0, std::nullopt, true));
  s.field(
      "loss_agg_mode", &loss_agg_mode, "token-mean", "how token losses are averaged",
      Check::one_of({"token-mean", "seq-mean-token-sum", "seq-mean-token-mean", "seq-mean-token-sum-norm"}));
  s.field("entropy_coeff", &entropy_coeff, 0.0, "entropy bonus coefficient (TinyZero: 0.001); 0 = off",
          Check::non_negative());
  s.field("use_kl_loss", &use_kl_loss, false,
          "add kl_loss_coef * KL(policy || reference) to the loss (GRPO)");
  s.field("kl_loss_coef", &kl_loss_coef, 0.001, "coefficient of the KL loss", Check::non_negative());
  s.field("kl_loss_type", &kl_loss_type, "low_var_kl",
          "KL estimator of the loss (low_var_kl = k3 with veRL's clamps)", Check::one_of(kKlEstimators));
}

void CriticConfig::describe(Schema& s) {
  s.section("optim", &optim, "optimizer of the critic (algorithm.name: ppo)");
  s.field("ppo_micro_batch_size", &ppo_micro_batch_size, 8,
          "sequences per critic forward/backward on one device", Check::at_least(1));
  s.field("cliprange_value", &cliprange_value, 0.5, "value clipping around the old values",
          Check::positive());
  s.field("offload", &offload, false,
          "CUDA: keep the critic (weights, gradients, AdamW state; under ZeRO each rank's shards) on the CPU "
          "except during its values pass and update");
}

void ReferenceConfig::describe(Schema& s) {
  s.field("dtype", &dtype, "same", "dtype of the frozen reference model; same = model.dtype",
          Check::one_of({"same", "float32", "bfloat16"}));
  s.field("offload", &offload, false,
          "CUDA: keep the reference model (under ZeRO-3 each rank's shard) on the CPU except during its "
          "log-prob pass");
}

void TrainerConfig::describe(Schema& s) {
  s.field("total_steps", &total_steps, 100, "RL (or SFT) optimizer steps to run", Check::at_least(1));
  s.field("device", &device, "auto", "auto = cuda when available, else cpu",
          Check::one_of({"auto", "cpu", "cuda"}));
  s.field("seed", &seed, 1, "seed of initialisation, sampling and mini-batch order", Check::non_negative());
  s.field("threads", &threads, 0,
          "intra-op CPU threads; 0 = OMP_NUM_THREADS if set, else all cores (LibTorch alone would use 1)",
          Check::non_negative());
  s.field("run_dir", &run_dir, "runs/default",
          "directory for logs, checkpoints, plots and the resolved config");
  s.field("save_freq", &save_freq, 100, "checkpoint every N steps (and at the end); 0 = only at the end",
          Check::non_negative());
  s.field("keep_last", &keep_last, 2, "checkpoints kept; 0 = keep all", Check::non_negative());
  s.field("checkpoint_timeout_s", &checkpoint_timeout_s, 3600.0,
          "seconds the other ranks wait for rank 0 to write a checkpoint (beyond distributed.timeout_s: "
          "a 3B PPO checkpoint is ~86 GB)",
          Check::positive());
  s.field("resume", &resume, "auto",
          "auto = continue from the newest complete checkpoint in run_dir; off = refuse an existing run_dir",
          Check::one_of_or({"auto", "off"}, "a checkpoint directory"));
  s.field("test_freq", &test_freq, 100, "validate every N steps (and at the end); 0 = never",
          Check::non_negative());
  s.field("val_before_train", &val_before_train, true, "validate the base model before the first step");
  s.field("validation_data_dir", &validation_data_dir, "",
          "write each validation's generations to DIR/step_N.jsonl (one line per held-out problem: index, "
          "prompt, "
          "response, score, correct; DIR/step_N.rankR.jsonl per rank when distributed); empty = off");
  s.field("max_consecutive_nonfinite", &max_consecutive_nonfinite, 5,
          "stop after this many steps in a row with non-finite gradients", Check::at_least(1));
  s.field("allow_config_change", &allow_config_change, false,
          "resume even when settings that change the run (lr, batch sizes, seeds, ...) differ from the "
          "checkpoint's; "
          "the earlier config is kept in run_dir/config_history");
}

void LoggingConfig::describe(Schema& s) {
  s.field("level", &level, "info", "console log level",
          Check::one_of({"trace", "debug", "info", "warn", "error"}));
  s.field("console", &console, true, "a compact metrics line per step on the console");
  s.field("jsonl", &jsonl, true, "metrics.jsonl in run_dir, one line per step");
  s.field("tensorboard", &tensorboard, true, "TensorBoard event files in run_dir/tensorboard");
  s.field("plot", &plot, true, "redraw run_dir/plot.svg as the run goes");
  s.field("progress", &progress, true, "progress bars on a terminal");
  s.field("sample_freq", &sample_freq, 10,
          "log a few prompts with responses and rewards every N steps; 0 = off", Check::non_negative());
  s.field("num_samples", &num_samples, 2, "samples logged each time", Check::non_negative());
}

void DistributedConfig::describe(Schema& s) {
  s.field("backend", &backend, "auto", "collective backend; auto = nccl on cuda, gloo on cpu",
          Check::one_of({"auto", "gloo", "nccl"}));
  s.field("timeout_s", &timeout_s, 600.0,
          "seconds before a rendezvous or collective waiting on a dead rank fails", Check::positive());
  s.field("zero_stage", &zero_stage, 0,
          "sharding across ranks: 0 = none, 1 = AdamW state (ZeRO-1), 2 = + gradients (ZeRO-2), 3 = + "
          "parameters, gathered a layer at a time (ZeRO-3 / FSDP)",
          Check::range(0, 3));
  s.field("rollout_gather", &rollout_gather, "auto",
          "ZeRO-3 generation: whole = gather the actor once per rollout phase (fast), layer = gather each "
          "layer in every forward pass, the ranks in lockstep (least memory, slow); auto = whole unless "
          "--dry-run's estimate with it exceeds the device",
          Check::one_of({"auto", "whole", "layer"}));
  s.field("bucket_mb", &bucket_mb, 25, "gradient all-reduce bucket size in MiB", Check::at_least(1));
  s.field("overlap_grad_reduce", &overlap_grad_reduce, true,
          "all-reduce gradient buckets while the last backward pass of a step still runs");
}

void HardwareConfig::describe(Schema& s) {
  s.field("gpus", &gpus, 0,
          "GPUs (data-parallel ranks) the config is written for; --dry-run uses it without --world-size; 0 = "
          "not declared",
          Check::non_negative());
  s.field("gpu_memory_gb", &gpu_memory_gb, 0.0,
          "memory of one of those GPUs in GiB; --dry-run compares with it without --device-memory-gb; 0 = "
          "not declared",
          Check::non_negative());
}

void TrainConfig::describe(Schema& s) {
  s.section("model", &model, "the policy model");
  s.section("data", &data, "problems, prompts and batch size");
  s.section("reward", &reward, "rule-based reward");
  s.section("rollout", &rollout, "sampling of responses");
  s.section("algorithm", &algorithm, "advantage estimator and KL in the reward");
  s.section("actor", &actor, "policy update");
  s.section("critic", &critic, "value model (algorithm.name: ppo)");
  s.section("reference", &reference, "frozen reference model for the KL terms");
  s.section("trainer", &trainer, "the run: steps, device, checkpoints, validation");
  s.section("logging", &logging, "metrics, plots and samples");
  s.section("distributed", &distributed, "data-parallel training over c10d");
  s.section("hardware", &hardware, "the machine the config is written for (for --dry-run)");
}

}  // namespace tinyzero
