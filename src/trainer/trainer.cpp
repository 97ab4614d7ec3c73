// The training loop (see trainer.h). One RL step is a pipeline of stages over a RolloutBatch, each in
// its own file:
//   rollout (rollout_stage) -> score (reward_stage) -> reference / critic passes (log_prob_passes)
//   -> advantages (advantage_stage) -> update (critic_update, actor_update) -> log (step_metrics)
#include "tinyzero/trainer/trainer.h"

#include <filesystem>
#include <sstream>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/log.h"
#include "tinyzero/core/stop_signal.h"
#include "tinyzero/metrics/names.h"
#include "tinyzero/model/weights.h"
#include "trainer/actor_update.h"
#include "trainer/advantage_stage.h"
#include "trainer/checkpointer.h"
#include "trainer/critic_update.h"
#include "trainer/log_prob_passes.h"
#include "trainer/reward_stage.h"
#include "trainer/rollout_stage.h"
#include "trainer/sft_step.h"
#include "trainer/stage_timer.h"
#include "trainer/step_metrics.h"
#include "trainer/train_context.h"
#include "trainer/validation.h"

namespace fs = std::filesystem;

namespace tinyzero {

namespace {

// One RL step of the configured algorithm (PPO, GRPO, RLOO; DAPO's options on any of them).
Metrics rl_step(TrainContext& ctx) {
  const TrainConfig& c = ctx.config;
  const auto t_step = Clock::now();
  Metrics m;
  StageTimer timer(m, metric_names::kTimingGen, ctx.device);
  // 1. Rollouts, scored by the task's rule (with DAPO dynamic sampling: only groups whose rewards differ).
  StepRollouts drawn = collect_rollouts(ctx);
  timer.stop();
  m["dapo/generation_rounds"] = static_cast<double>(drawn.rounds);
  if (drawn.empty) {
    add_no_signal_metrics(drawn, t_step, m);
    return m;
  }
  RolloutBatch& r = drawn.batch;
  // 2. Token-level rewards: the score on the last response token, DAPO's overlong penalty.
  assign_token_rewards(ctx, r, m);
  // 3. Old (off-policy only), reference and critic passes. Exactly on-policy (one epoch, one mini-batch,
  // no KL in the reward) the old log-probs equal the current ones at update time: no extra pass.
  const bool on_policy = c.actor.ppo_epochs == 1 && c.actor.ppo_mini_batch_size == c.data.train_batch_size &&
                         !c.algorithm.use_kl_in_reward && !c.algorithm.filter_groups;
  reference_and_critic_passes(ctx, r, on_policy, m);
  // 4. KL in the reward, advantages (GAE | GRPO | Dr. GRPO | RLOO).
  compute_advantages(ctx, r, m);
  // 5. Updates: the critic (PPO), then the policy.
  if (ctx.critic) update_critic(ctx, r, m);
  timer.next(metric_names::kTimingUpdateActor);
  const ActorUpdateStats update = update_actor(ctx, r, on_policy);
  timer.stop();
  // 6. Metrics over all ranks, and a sample or two in the log.
  add_rl_step_metrics(ctx, drawn, update, t_step, m);
  log_samples(ctx, r);
  return m;
}

}  // namespace

void check_run_inputs(const TrainConfig& c) {
  auto need_dir = [](const std::string& key, const std::string& dir, const std::string& file) {
    if (dir.empty())
      throw ConfigError(key +
                        " is empty; set it to a Hugging Face model directory (config.json, *.safetensors, "
                        "tokenizer files); scripts/make-tiny-model.sh builds a tiny one");
    std::error_code ec;
    if (!fs::exists(fs::path(dir) / file, ec))
      throw ConfigError(
          key + " '" + dir + "' has no " + file +
          "; point it at a Hugging Face model directory (scripts/make-tiny-model.sh DIR builds a "
          "tiny one in DIR/model)");
  };
  need_dir("model.path", c.model.path, "config.json");
  if (!c.model.tokenizer_path.empty())
    need_dir("model.tokenizer_path", c.model.tokenizer_path, "tokenizer_config.json");
  auto need_files = [](const std::string& key, const std::string& list) {
    std::stringstream ss(list);
    for (std::string path; std::getline(ss, path, ',');)
      if (!path.empty() && !fs::exists(path))
        throw ConfigError(key + " names '" + path + "', which does not exist; fix the path or leave " + key +
                          " empty to generate problems");
  };
  need_files("data.train_files", c.data.train_files);
  need_files("data.val_files", c.data.val_files);
  if (c.trainer.resume != "auto" && c.trainer.resume != "off" &&
      !fs::exists(fs::path(c.trainer.resume) / "trainer_state.json"))
    throw ConfigError("trainer.resume '" + c.trainer.resume +
                      "' is not a complete checkpoint (no trainer_state.json); give a "
                      "run_dir/checkpoints/step_N directory, or auto");
  check_resume_config(c);
}

Trainer::Trainer(const LoadedConfig& loaded) {
  check_run_inputs(loaded.config);
  s_ = make_train_context(loaded.config);
  TrainContext& s = *s_;
  const TrainConfig& c = s.config;
  resume(s);
  // Every rank starts from rank 0's weights (also after a resume, which every rank read itself).
  s.optimizer->broadcast_parameters(0);
  if (s.critic) s.critic_optimizer->broadcast_parameters(0);
  if (s.critic) s.place_critic(false);
  const double actor_params = static_cast<double>(s.actor->config().num_parameters()) / 1e6;
  if (s.optimizer->sharded())
    logging::info("ZeRO-{}: this rank keeps the AdamW state{} of {:.2f}M of the actor's {:.2f}M parameters",
                  s.optimizer->stage(),
                  s.optimizer->stage() == 3   ? ", gradients and weights"
                  : s.optimizer->stage() == 2 ? " and gradients"
                                              : "",
                  static_cast<double>(s.optimizer->owned_parameters()) / 1e6, actor_params);
  if (s.pg->is_main()) {
    MetricsLoggerOptions log_options = metrics_logger_options(c.logging);
    if (s.step > 0) log_options.resume_step = s.step;
    s.logger = std::make_unique<MetricsLogger>(c.trainer.run_dir, log_options);
  }
  logging::info("{}: actor {:.2f}M parameters ({}), reference {}, critic {}, {} steps{}", c.algorithm.name,
                actor_params, dtype_name(s.dtype), s.reference ? "loaded" : "off",
                s.critic ? "loaded" : "off", c.trainer.total_steps,
                s.step ? ", resumed at step " + std::to_string(s.step) : "");
}

Trainer::~Trainer() = default;
int64_t Trainer::step() const { return s_->step; }
int64_t Trainer::resumed_from() const { return s_->resumed_from; }

Metrics Trainer::train_step() {
  Metrics m = s_->is_sft() ? sft_step(*s_) : rl_step(*s_);
  ++s_->step;
  m["training/global_step"] = static_cast<double>(s_->step);
  if (s_->logger) s_->logger->log(s_->step, m);
  return m;
}

Metrics Trainer::validate() {
  Metrics m = tinyzero::validate(*s_);
  if (m.empty()) return m;
  s_->last_validated = s_->step;
  if (s_->logger) s_->logger->log(s_->step, m);
  return m;
}

std::string Trainer::save_checkpoint() { return tinyzero::save_checkpoint(*s_); }

void Trainer::run() {
  const TrainConfig& c = s_->config;
  if (s_->step == 0 && c.trainer.val_before_train && c.trainer.test_freq > 0) validate();
  while (s_->step < c.trainer.total_steps) {
    train_step();
    const bool last = s_->step == c.trainer.total_steps;
    // A stop signal on any rank stops every rank after the same step (see stop_signal.h).
    const int stop = static_cast<int>(s_->pg->all_reduce(static_cast<double>(stop_signal()), ReduceOp::kMax));
    if (stop != 0) {
      const std::string dir = save_checkpoint();
      throw StoppedBySignal(std::string("stopped by ") + stop_signal_name(stop) + " at step " +
                                std::to_string(s_->step) + " of " + std::to_string(c.trainer.total_steps) +
                                " (checkpoint " + dir + "); run the same command to resume",
                            stop);
    }
    if (c.trainer.test_freq > 0 && (s_->step % c.trainer.test_freq == 0 || last)) validate();
    if ((c.trainer.save_freq > 0 && s_->step % c.trainer.save_freq == 0) || last) save_checkpoint();
  }
}

}  // namespace tinyzero
