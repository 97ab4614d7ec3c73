// The training loop: rollout -> reward -> log-probs -> advantages -> policy update, with validation,
// metrics, checkpoints and resume. One Trainer is one run in config.trainer.run_dir.
//
// Step, as data flows (design.md section 1):
//   problems (data order cursor) -> prompts -> token ids (left-padded)
//   -> generate n responses per prompt (KV cache, seeded sampling)
//   -> decode prompt + response -> rule-based reward (score, format_ok, correct)
//   -> old log-probs (skipped when exactly on-policy) -> reference log-probs (when a KL term is on)
//   -> advantages (GRPO | Dr. GRPO | RLOO) -> ppo_epochs x mini-batches x micro-batches -> AdamW
// SFT (algorithm.name: sft) replaces the RL part by the cross-entropy of response tokens.
#pragma once

#include <memory>
#include <string>

#include "tinyzero/core/config.h"
#include "tinyzero/metrics/logger.h"

namespace tinyzero {

struct TrainContext;

class Trainer {
 public:
  // Loads tokenizer, data, model(s) and, with trainer.resume, the newest complete checkpoint. Throws
  // ConfigError / Error / IoError with the usual one-line messages.
  explicit Trainer(const LoadedConfig& loaded);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Runs until trainer.total_steps (validating and checkpointing on the configured schedule). After a
  // stop signal (core/stop_signal.h) on any rank, every rank finishes the current step, the checkpoint of
  // that step is written, and StoppedBySignal is thrown.
  void run();
  // One optimizer step of the configured algorithm; returns its metrics (also logged).
  Metrics train_step();
  // Greedy (or rollout.val_temperature) validation over the held-out set.
  Metrics validate();
  // Writes run_dir/checkpoints/step_<N> (HF directory + trainer state), prunes to keep_last.
  std::string save_checkpoint();

  int64_t step() const;
  // The step a resumed run started from (0 for a fresh run).
  int64_t resumed_from() const;

 private:
  std::unique_ptr<TrainContext> s_;  // src/trainer/train_context.h
};

// Checks that the files a run needs exist (model directory, tokenizer, data files, a resume
// checkpoint) before anything is created or loaded. Throws ConfigError naming the key and the fix.
void check_run_inputs(const TrainConfig& config);

// Refuses (ConfigError, listing each key with its old and new value) to resume a checkpoint whose config
// differs from `config` in settings that change what the run computes (lr, batch sizes, seeds, rollout.n,
// ...), unless trainer.allow_config_change; run length, save / validation / logging frequencies, devices,
// threads and micro-batch sizes may change. Nothing to resume: a no-op. check_run_inputs calls it.
void check_resume_config(const TrainConfig& config);

// The newest complete checkpoint directory under run_dir/checkpoints ("" when none).
std::string latest_checkpoint(const std::string& run_dir);

}  // namespace tinyzero
