// Stage completion on disk (see stage_state.h).
#include "tinyzero/recipe/stage_state.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/trainer/trainer.h"

namespace fs = std::filesystem;

namespace tinyzero {

std::string default_stage_out(const StageSpec& stage, const std::string& dir) {
  if (!stage.out.empty()) return stage.out;
  return (fs::path(dir) / (stage.kind == StageKind::kCorpus ? stage.name + ".jsonl" : stage.name)).string();
}

StageProgress stage_progress(const StageSpec& stage, const std::string& out) {
  StageProgress p;
  std::error_code ec;
  switch (stage.kind) {
    case StageKind::kTinyModel:
      if (fs::is_regular_file(fs::path(out) / "model" / "config.json", ec) &&
          fs::is_regular_file(fs::path(out) / "tokenizer" / "tokenizer.json", ec)) {
        p.state = StageState::kDone;
        p.product = (fs::path(out) / "model").string();
        p.detail = "model and tokenizer in " + out;
      } else {
        p.detail = "no model in " + out + " yet";
      }
      return p;
    case StageKind::kCorpus:
      if (fs::is_regular_file(out, ec)) {
        p.state = StageState::kDone;
        p.product = out;
        p.detail = "corpus " + out;
      } else {
        p.detail = "no corpus at " + out + " yet";
      }
      return p;
    case StageKind::kTrain:
      break;
  }
  const std::string latest = latest_checkpoint(out);
  const int64_t steps = stage.train.steps;
  if (latest.empty()) {
    p.detail = "no checkpoint in " + out + " yet";
    return p;
  }
  const std::string state_path = (fs::path(latest) / "trainer_state.json").string();
  try {
    p.checkpoint_step = nlohmann::json::parse(read_file(state_path)).at("step").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    throw IoError(state_path + " has no step (" + e.what() + "); remove the checkpoint " + latest +
                  " to resume from the one before it");
  }
  if (p.checkpoint_step > steps)
    throw ConfigError("stage " + stage.name + ": " + out + " already holds a checkpoint at step " +
                      std::to_string(p.checkpoint_step) + ", past the stage's steps " +
                      std::to_string(steps) + "; raise its steps (--set " + stage.name +
                      ".steps=" + std::to_string(p.checkpoint_step) + ") or give another --dir");
  if (p.checkpoint_step == steps) {
    p.state = StageState::kDone;
    p.product = latest;
    p.detail = "checkpoint " + latest;
  } else {
    p.state = StageState::kPartial;
    p.detail = "checkpoint at step " + std::to_string(p.checkpoint_step) + " of " + std::to_string(steps) +
               " in " + out;
  }
  return p;
}

}  // namespace tinyzero
