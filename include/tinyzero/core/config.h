// TrainConfig: every setting of a run, one struct per concern.
//
// Fields are declared once, in each section's describe() (config.cpp): name, default, one-line help
// and check. Loading: YAML file (optionally `extends:` another file) -> dotted overrides from the
// command line (`actor.optim.lr=1e-6`) -> per-field checks -> cross-field rules. Every problem is a
// ConfigError naming the key, where its value came from (file:line or the override) and the fix.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyzero/core/schema.h"

namespace tinyzero {

struct ModelConfig {
  std::string path;            // local Hugging Face directory of the base model
  std::string tokenizer_path;  // tokenizer directory; empty = model.path
  std::string dtype;           // parameter dtype of the trained model
  std::string autocast_bf16;   // bf16 autocast for matmuls: true | false | auto (resolve_autocast_bf16)
  bool activation_checkpointing;
  ModelConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct CountdownDataConfig {
  int64_t min_numbers, max_numbers;  // numbers per problem
  int64_t min_number, max_number;    // range of each given number
  int64_t min_target, max_target;    // range of the target
  CountdownDataConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct MultiplicationDataConfig {
  int64_t digits_a, digits_b;  // operand sizes
  MultiplicationDataConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct DataConfig {
  std::string task;  // countdown | multiplication
  std::string train_files, val_files;
  int64_t train_size, val_size, seed;
  int64_t train_batch_size, val_batch_size;
  int64_t max_prompt_length, max_response_length;
  std::string prompt_template;
  bool shuffle;
  bool allow_unsolvable, allow_out_of_range;  // accept such problems from data files (else refused at load)
  CountdownDataConfig countdown;
  MultiplicationDataConfig multiplication;
  DataConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct RewardConfig {
  std::string mode;  // tinyzero | strict
  double format_score, correct_score;
  RewardConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct RolloutConfig {
  int64_t n;
  double temperature, top_p;
  int64_t top_k;
  std::vector<std::string> stop;
  int64_t micro_batch_size, log_prob_micro_batch_size;
  double memory_utilization;
  double val_temperature;
  bool reuse_log_probs;  // the sampler's log-probs serve as the old policy's (no old-log-prob pass)
  bool cuda_graphs;      // decode steps captured and replayed as CUDA graphs (on a CUDA device)
  RolloutConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct KlControlConfig {
  std::string type;  // fixed | adaptive
  double kl_coef, target_kl;
  int64_t horizon;
  KlControlConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct OverlongBufferConfig {
  bool enable;
  int64_t len;
  double penalty_factor;
  OverlongBufferConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct AlgorithmConfig {
  std::string name;  // ppo | grpo | rloo | sft
  bool norm_adv_by_std;
  double gamma, lam;
  bool use_kl_in_reward;
  std::string kl_penalty;
  KlControlConfig kl_ctrl;
  bool filter_groups;
  int64_t max_num_gen_batches;
  OverlongBufferConfig overlong_buffer;
  AlgorithmConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct OptimConfig {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t warmup_steps;
  std::string schedule;  // constant | cosine
  double min_lr_ratio, grad_clip;
  bool offload;
  OptimConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct ActorConfig {
  OptimConfig optim;
  int64_t ppo_mini_batch_size, ppo_micro_batch_size;
  bool use_dynamic_bsz;
  int64_t ppo_max_token_len;
  int64_t ppo_epochs;
  double clip_ratio_low, clip_ratio_high, clip_ratio_c;
  std::string loss_agg_mode;
  double entropy_coeff;
  bool use_kl_loss;
  double kl_loss_coef;
  std::string kl_loss_type;
  ActorConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct CriticConfig {
  OptimConfig optim;
  int64_t ppo_micro_batch_size;
  double cliprange_value;
  bool offload;
  CriticConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct ReferenceConfig {
  std::string dtype;  // same | float32 | bfloat16
  bool offload;
  ReferenceConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct TrainerConfig {
  int64_t total_steps;
  std::string device;
  int64_t seed, threads;
  std::string run_dir;
  int64_t save_freq, keep_last;
  double checkpoint_timeout_s;
  std::string resume;
  int64_t test_freq;
  bool val_before_train;
  std::string validation_data_dir;
  int64_t max_consecutive_nonfinite;
  bool allow_config_change;
  TrainerConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct LoggingConfig {
  std::string level;
  bool console, jsonl, tensorboard, plot, progress;
  int64_t sample_freq, num_samples;
  LoggingConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct DistributedConfig {
  std::string backend;  // auto | gloo | nccl
  double timeout_s;
  int64_t zero_stage, bucket_mb;
  std::string rollout_gather;  // auto | whole | layer (ZeRO-3 generation)
  bool overlap_grad_reduce;
  DistributedConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

// The machine a config is written for; --dry-run compares against it when given no --world-size or
// --device-memory-gb. 0 = not declared (CPU configs).
struct HardwareConfig {
  int64_t gpus;          // data-parallel ranks, one GPU each
  double gpu_memory_gb;  // memory of one GPU in GiB
  HardwareConfig() { apply_section_defaults(this); }
  void describe(Schema& s);
};

struct TrainConfig {
  ModelConfig model;
  DataConfig data;
  RewardConfig reward;
  RolloutConfig rollout;
  AlgorithmConfig algorithm;
  ActorConfig actor;
  CriticConfig critic;
  ReferenceConfig reference;
  TrainerConfig trainer;
  LoggingConfig logging;
  DistributedConfig distributed;
  HardwareConfig hardware;

  void describe(Schema& s);
  Schema schema();  // the schema bound to this object

  bool needs_reference() const;  // a KL term is active
  bool needs_critic() const;     // PPO with GAE
};

// Where each field's value came from: "configs/x.yaml:12", "override 'a.b=1'"; absent = default.
using ConfigOrigins = std::map<std::string, std::string>;

struct LoadedConfig {
  TrainConfig config;
  ConfigOrigins origins;
};

// Reads `path` (following `extends:`), applies `overrides` ("a.b=value"), checks every field and the
// cross-field rules. Throws ConfigError.
LoadedConfig load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same from YAML text (`source` names it in messages); no `extends:` resolution relative to a file.
LoadedConfig load_config_text(const std::string& yaml_text, const std::string& source,
                              const std::vector<std::string>& overrides = {});
// Applies one override "a.b=value" (value in YAML syntax) to an existing config.
void apply_override(TrainConfig& config, ConfigOrigins& origins, const std::string& override_text);
// Per-field checks and cross-field rules. Throws ConfigError naming the key(s), origin and fix.
void validate_config(const TrainConfig& config, const ConfigOrigins& origins = {});

// The resolved config as YAML (with each field's help as a comment); parses back to the same config.
std::string dump_config(const TrainConfig& config, bool with_comments = true);
// Markdown tables of every section and field: key, type, default, allowed values, description.
std::string config_reference_markdown();

// Closest candidate by edit distance, or "" when nothing is close enough.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace tinyzero
