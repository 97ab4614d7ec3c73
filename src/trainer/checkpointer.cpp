// Checkpoints of a run (see checkpointer.h).
#include "trainer/checkpointer.h"

#include <unistd.h>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "tinyzero/core/config_diff.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/core/log.h"
#include "tinyzero/io/safetensors.h"
#include "tinyzero/model/weights.h"
#include "tinyzero/trainer/trainer.h"
#include "trainer/stage_timer.h"
#include "trainer/state_files.h"
#include "trainer/train_context.h"

namespace fs = std::filesystem;

namespace tinyzero {

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run_dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  fs::path dir = fs::path(run_dir) / "checkpoints";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step_", 0) != 0 || !entry.is_directory()) continue;
    if (!fs::exists(entry.path() / "trainer_state.json")) continue;
    try {
      out.emplace_back(std::stoll(name.substr(5)), entry.path().string());
    } catch (const std::exception&) {
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  return out;
}

std::string latest_checkpoint(const std::string& run_dir) {
  auto all = list_checkpoints(run_dir);
  return all.empty() ? "" : all.front().second;
}

namespace {

// Settings a resume may change without changing what the run computes: how long it runs, how often it
// saves, validates and logs, where and with how many threads or ranks it runs, and memory knobs that
// regroup the same sums (micro-batches, activation checkpointing).
bool safe_to_change(const std::string& key) {
  static const char* const kSafe[] = {"trainer.total_steps",
                                      "trainer.save_freq",
                                      "trainer.keep_last",
                                      "trainer.checkpoint_timeout_s",
                                      "actor.optim.offload",
                                      "critic.optim.offload",
                                      "trainer.test_freq",
                                      "trainer.val_before_train",
                                      "trainer.validation_data_dir",
                                      "trainer.resume",
                                      "trainer.run_dir",
                                      "trainer.allow_config_change",
                                      "trainer.threads",
                                      "trainer.device",
                                      "trainer.max_consecutive_nonfinite",
                                      "data.val_batch_size",
                                      "actor.ppo_micro_batch_size",
                                      "critic.ppo_micro_batch_size",
                                      "rollout.log_prob_micro_batch_size",
                                      "model.activation_checkpointing"};
  static const char* const kSafeSections[] = {"logging.", "distributed.", "hardware."};
  for (const char* safe : kSafe)
    if (key == safe) return true;
  for (const char* section : kSafeSections)
    if (key.rfind(section, 0) == 0) return true;
  return false;
}

// The checkpoint trainer.resume will start from ("" for none).
std::string checkpoint_to_resume(const TrainConfig& c) {
  if (c.trainer.resume == "off") return "";
  if (c.trainer.resume == "auto") return latest_checkpoint(c.trainer.run_dir);
  return c.trainer.resume;
}

}  // namespace

void check_resume_config(const TrainConfig& config) {
  const std::string dir = checkpoint_to_resume(config);
  const fs::path saved = fs::path(dir) / "trainer_config.yaml";
  std::error_code ec;
  if (dir.empty() || !fs::exists(saved, ec)) return;
  std::vector<ConfigChange> changes = config_changes(read_file(saved.string()), dump_config(config));
  std::erase_if(changes, [](const ConfigChange& change) { return safe_to_change(change.key); });
  if (changes.empty()) return;
  std::string list;
  for (const auto& change : changes)
    list += (list.empty() ? "" : ", ") + change.key + " (" + change.before + " -> " + change.after + ")";
  if (config.trainer.allow_config_change) {
    logging::warn("resuming {} with changed settings, applied from its step on: {}", dir, list);
    return;
  }
  throw ConfigError(
      "resuming " + dir + " with settings that differ from its config: " + list +
      "; restore them, or set trainer.allow_config_change=true to apply them from the checkpoint's "
      "step on, or start a new trainer.run_dir");
}

namespace {

// The trainer state of a checkpoint (trainer_state.json): counters, data cursor, KL coefficient.
nlohmann::json trainer_state(const TrainContext& s) {
  return {{"step", s.step},
          {"optimizer_steps", s.optimizer->steps_taken()},
          {"critic_optimizer_steps", s.critic_optimizer ? s.critic_optimizer->steps_taken() : 0},
          {"data_epoch", s.cursor->epoch()},
          {"data_position", s.cursor->position()},
          {"kl_coef", s.kl_ctrl->value()},
          {"nonfinite_total", s.nonfinite_total},
          {"nonfinite_in_a_row", s.nonfinite_in_a_row},
          {"algorithm", s.config.algorithm.name}};
}

// Prunes complete checkpoints beyond keep_last (a failure only warns: the new one is complete).
void prune_checkpoints(const TrainConfig& c) {
  if (c.trainer.keep_last <= 0) return;
  auto all = list_checkpoints(c.trainer.run_dir);
  for (size_t i = static_cast<size_t>(c.trainer.keep_last); i < all.size(); ++i) {
    std::error_code ec;
    fs::remove_all(all[i].second, ec);
    if (ec) logging::warn("cannot remove old checkpoint {}: {}", all[i].second, ec.message());
  }
}

// Runs `part` unless `error` already holds this rank's failure, and records its failure there: every
// rank goes on to the next agreement point, where the failure is shared instead of leaving peers waiting.
void attempt(std::string& error, const std::function<void()>& part) {
  if (!error.empty()) return;
  try {
    part();
  } catch (const std::exception& e) {
    error = e.what();
  }
}

// Rank 0 (`write`) writes a model's weights as a Hugging Face directory, a tensor at a time, unless
// `error` already says why not (then, or when the write fails, `error` says so). Under ZeRO-3 every rank
// gathers the weights with it a unit at a time, in the order they are written (the write's collectives),
// so no rank ever holds the whole model; a rank 0 that stops early still takes part in the remaining
// gathers, so the others are not left waiting.
void write_weights(HfCheckpoint ckpt, DataParallelOptimizer& optimizer, bool write, const std::string& dir,
                   std::string& error) {
  auto save = [&] {
    if (write) attempt(error, [&] { save_hf_checkpoint(dir, ckpt); });
  };
  ParameterShards* shards = optimizer.host();
  if (shards == nullptr || !shards->frees_parameters()) return save();  // whole on every rank
  std::vector<size_t> param_of;
  for (auto& [name, tensor] : ckpt.tensors) {
    const std::optional<size_t> k = shards->index_of(name);
    if (!k) throw Error("checkpoint: tensor " + name + " is not a sharded parameter of the model");
    param_of.push_back(*k);
    tensor = at::empty(shards->shape(*k), tensor.options().device(at::kMeta));  // describes it
  }
  size_t fetched = 0;
  ckpt.fetch = [&](size_t i) {
    ++fetched;
    shards->hold(shards->unit_of(param_of[i]));
    return shards->parameter(param_of[i]);
  };
  save();
  const std::vector<size_t> order = hf_checkpoint_write_order(ckpt);
  for (size_t n = fetched; n < order.size(); ++n) ckpt.fetch(order[n]);
  shards->release_all();
}

}  // namespace

std::string save_checkpoint(TrainContext& s) {
  const TrainConfig& c = s.config;
  const double timeout_s = c.trainer.checkpoint_timeout_s;
  const auto started = Clock::now();  // the phase's time and memory peak go in the log
  if (memory_meter_running(s.device)) reset_peak_allocated_bytes(s.device);
  // Every rank: check that the copies are identical.
  const uint64_t hash = s.optimizer->check_in_sync("actor");
  if (s.critic) s.critic_optimizer->check_in_sync("critic");
  if (s.world() > 1 && s.optimizer->stage() < 3)
    logging::info("step {}: actor parameters identical on all {} ranks (hash {:016x})", s.step, s.world(),
                  hash);
  const fs::path root = fs::path(c.trainer.run_dir) / "checkpoints";
  const fs::path final_dir = root / checkpoint_name(s.step);
  const bool main = s.pg->is_main();
  static int64_t saves = 0;  // every rank saves as often: one tag per save, even of the same step
  const std::string tag = checkpoint_name(s.step) + "#" + std::to_string(saves++);

  // Rank 0 writes the weights into the staging directory, a tensor at a time: the actor as a Hugging
  // Face directory (loads in transformers as is), and PPO's critic as its own
  // (Qwen2ForTokenClassification). Under ZeRO-3 every rank gathers them with it a unit (decoder layer)
  // at a time. The others wait for each write through the store, as long as
  // trainer.checkpoint_timeout_s allows (a slow disk may take longer than a collective may), and hear
  // whether it failed.
  const fs::path staging = root / ("." + checkpoint_name(s.step) + ".staging");
  const std::string failed = "checkpoint " + final_dir.string() + " was not written: ";
  std::string error;  // what went wrong on this rank; the others must hear of it, not hang
  // Every rank learns rank 0's outcome of a part; on a failure every rank throws, and nothing is left.
  auto agree = [&](const std::string& part) {
    const std::string outcome = s.pg->wait_for_main(tag + "/" + part, timeout_s, error);
    if (outcome.empty()) return;
    std::error_code ec;
    if (main) fs::remove_all(staging, ec);
    throw IoError(failed + (main ? "" : "rank 0: ") + outcome +
                  "; earlier checkpoints are intact (check that trainer.run_dir is writable and its disk "
                  "has room)");
  };
  if (main)
    attempt(error, [&] {
      fs::create_directories(root);
      fs::remove_all(staging);
    });
  HfCheckpoint actor = make_hf_checkpoint(*s.actor, s.dtype);
  actor.tokenizer_source_dir = s.tokenizer_dir;
  write_weights(std::move(actor), *s.optimizer, main, staging.string(), error);
  agree("actor");
  if (s.critic) {
    // ZeRO-3 gathers the critic from its shards on the device (critic.offload keeps them on the host);
    // whole weights already on the host are written from there.
    const bool gather = s.critic_optimizer->stage() == 3;
    if (gather) s.place_critic(true);
    write_weights(s.critic->hf_checkpoint(s.dtype), *s.critic_optimizer, main, (staging / "critic").string(),
                  error);
    if (gather) s.place_critic(false);
    agree("critic");
  }
  // The optimizer states: each rank writes its own part (rank 0 alone when they are not sharded), so
  // no rank ever holds more than it keeps anyway.
  auto write_state = [&](const DataParallelOptimizer& optimizer, const std::string& stem) {
    if (!optimizer.sharded() && !main) return;
    write_state_file(staging.string(), stem, optimizer.sharded() ? s.pg->rank() : 0,
                     optimizer.state_writers(), optimizer.state_pieces());
  };
  attempt(error, [&] { write_state(*s.optimizer, "optimizer"); });
  if (s.critic) attempt(error, [&] { write_state(*s.critic_optimizer, "critic_optimizer"); });

  // Rank 0 waits for every rank's part, then completes the checkpoint; the others wait for that.
  const std::vector<std::string> reports = s.pg->report_to_main(tag + "/parts", error, timeout_s);
  for (size_t r = 1; r < reports.size() && error.empty(); ++r)
    if (!reports[r].empty()) error = "rank " + std::to_string(r) + ": " + reports[r];
  // The trainer state is written last: it marks the checkpoint complete.
  if (main)
    attempt(error, [&] {
      write_file_atomic((staging / "trainer_config.yaml").string(), dump_config(c));
      write_file_atomic((staging / "trainer_state.json").string(), trainer_state(s).dump(2) + "\n");
      fs::remove_all(final_dir);
      fs::rename(staging, final_dir);
    });
  if (!main) error.clear();  // reported to rank 0, whose outcome every rank now takes
  agree("complete");
  s.last_saved = s.step;
  if (main) {
    prune_checkpoints(c);
    logging::info("checkpoint {}", final_dir.string());
    if (memory_meter_running(s.device))
      logging::info("checkpoint phase: {:.2f} s, peak {:.1f} MiB allocated on {}", seconds_since(started),
                    peak_allocated_bytes(s.device) / (1 << 20), s.device.str());
  }
  return final_dir.string();
}

void load_checkpoint(TrainContext& s, const std::string& dir) {
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(read_file(dir + "/trainer_state.json"));
  } catch (const nlohmann::json::exception& e) {
    throw IoError("checkpoint " + dir + "/trainer_state.json is not valid JSON: " + e.what());
  }
  const std::string& algorithm = s.config.algorithm.name;
  if (state.value("algorithm", algorithm) != algorithm)
    throw ConfigError("checkpoint " + dir + " was written by algorithm " +
                      state.value("algorithm", std::string()) + ", this run uses " + algorithm +
                      "; use a new trainer.run_dir");
  HfWeights weights = HfWeights::open(dir);
  load_weights(*s.actor, weights);
  // Each rank reads the part of the optimizer state it keeps from whichever files hold it, so a
  // checkpoint resumes at any world size and stage.
  s.optimizer->load_state(StateFiles::open(dir, "optimizer"), state.at("optimizer_steps").get<int64_t>());
  if (s.critic) {
    s.critic->load(dir + "/critic");
    s.critic_optimizer->load_state(StateFiles::open(dir, "critic_optimizer"),
                                   state.at("critic_optimizer_steps").get<int64_t>());
  }
  s.cursor->seek(state.at("data_epoch").get<int64_t>(), state.at("data_position").get<int64_t>());
  s.kl_ctrl->set_value(state.at("kl_coef").get<double>());
  s.nonfinite_total = state.value("nonfinite_total", int64_t{0});
  s.nonfinite_in_a_row = state.value("nonfinite_in_a_row", int64_t{0});
  s.step = s.resumed_from = state.at("step").get<int64_t>();
  s.last_saved = s.last_validated = s.step;
  logging::info("resumed from {} (step {})", dir, s.step);
}

void resume(TrainContext& s) {
  const TrainConfig& c = s.config;
  if (c.trainer.resume == "off") return;
  const bool automatic = c.trainer.resume == "auto";
  // A corrupt newest checkpoint falls back to the previous one (auto only).
  const auto candidates = automatic ? list_checkpoints(c.trainer.run_dir)
                                    : std::vector<std::pair<int64_t, std::string>>{{-1, c.trainer.resume}};
  std::string last_error;
  for (const auto& [step, dir] : candidates) {
    try {
      load_checkpoint(s, dir);
      return;
    } catch (const std::exception& e) {
      if (!automatic) throw;
      last_error = e.what();
      logging::warn("checkpoint {} cannot be loaded ({}); trying the previous one", dir, e.what());
    }
  }
  if (!candidates.empty())
    throw Error("no checkpoint in " + c.trainer.run_dir + "/checkpoints could be loaded (last error: " +
                last_error + "); move them away or set trainer.resume=off with a new run_dir");
}

}  // namespace tinyzero
