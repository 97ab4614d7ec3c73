// The rollout stage: sample responses to prompts with the policy (KV cache, seeded sampling, stop
// strings) and decode them; with DAPO dynamic sampling, draw again until enough groups carry signal.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tinyzero/core/config.h"
#include "tinyzero/metrics/progress.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/tasks/task.h"
#include "tinyzero/tokenizer/tokenizer.h"
#include "trainer/data_parallel.h"
#include "trainer/rollout_batch.h"

namespace tinyzero {

struct TrainContext;

// What sampling needs: the policy, the tokenizer, the task (prompts and rewards), the stop tokens and
// the settings (data.max_prompt_length / max_response_length, rollout.*).
struct Sampler {
  CausalLMImpl& model;
  const Tokenizer& tokenizer;
  const Task& task;
  const TrainConfig& config;
  at::Device device;
  bool bf16_autocast;
  const std::vector<int64_t>& eos_ids;
  int64_t pad_id;
  bool layer_by_layer = false;  // ZeRO-3 weights gathered per layer: one engine, no fused copies
};
Sampler sampler_of(TrainContext& ctx);

// The actor's weights for a generation phase (rollouts, validation), on every rank: under ZeRO-3
// gathered whole once for the phase, or, with ctx.rollout_by_layer (distributed.rollout_gather), a
// layer at a time by every forward pass, the ranks in lockstep. finish() ends the phase: a rank that is
// done keeps gathering with the others until all are (collective; every rank calls it).
class GenerationWeights {
 public:
  explicit GenerationWeights(TrainContext& ctx);
  void finish();

 private:
  ParameterShards* lockstep_ = nullptr;
  std::optional<PinnedParameters> whole_;
};

// The stop tokens of a model: the tokenizer's EOS and config.json's eos_token_id(s). Throws ConfigError
// when neither names one.
std::vector<int64_t> stop_token_ids(const Tokenizer& tokenizer, const TransformerConfig& model,
                                    const std::string& tokenizer_dir, const std::string& model_dir);
// The token ids of a prompt; throws ConfigError when it has more than `max_prompt_length` tokens.
std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const std::string& text,
                                   int64_t max_prompt_length);

// `n` responses to each problem (greedy, or sampled at `temperature` with rollout.top_k / top_p) in one
// continuous-batching generate call, at most rollout.micro_batch_size rows decoding at once; group g of
// the result is problems[g]. Sample j of problems[i] draws from the stream keyed by (seed,
// first_index + i, j), so the same problems get the same samples whichever rank draws them. Rewards
// are not scored here.
RolloutBatch generate_rollouts(const Sampler& sampler, const std::vector<Problem>& problems, int64_t n,
                               bool greedy, double temperature, uint64_t seed,
                               ProgressBar* progress = nullptr, int64_t first_index = 0);

// A step's rollouts, scored: this rank's share of data.train_batch_size prompts x rollout.n. With
// algorithm.filter_groups, groups whose rewards are all equal are dropped and more are drawn (at most
// algorithm.max_num_gen_batches rounds); `batch` is then empty when no group carried signal.
struct StepRollouts {
  RolloutBatch batch;
  bool empty = false;
  int64_t rounds = 0;
  // Every response drawn, kept or not (the step's reward metrics).
  std::vector<float> scores;
  std::vector<bool> correct, format_ok;
};
StepRollouts collect_rollouts(TrainContext& ctx);

}  // namespace tinyzero
