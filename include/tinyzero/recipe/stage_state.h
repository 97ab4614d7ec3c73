// Where a recipe stage's output goes and whether it is complete there: what the runner skips by.
//   tiny-model     OUT/model/config.json and OUT/tokenizer/tokenizer.json (OUT is written at once)
//   countdown-sft  the file OUT (written atomically: present means complete)
//   train          a complete checkpoint (trainer_state.json written last) at step `steps` in the run
//                  directory OUT; an earlier one means the run was interrupted and resumes from it
#pragma once

#include <cstdint>
#include <string>

#include "tinyzero/recipe/recipe.h"

namespace tinyzero {

// DIR/NAME (a corpus: DIR/NAME.jsonl) unless the stage gives its own out.
std::string default_stage_out(const StageSpec& stage, const std::string& dir);

enum class StageState {
  kNotStarted,  // no output yet
  kPartial,     // a training run with a checkpoint before `steps`: it resumes from there
  kDone,        // the product is complete
};

struct StageProgress {
  StageState state = StageState::kNotStarted;
  std::string product;          // the product's path when done ("" otherwise)
  int64_t checkpoint_step = 0;  // train: the newest complete checkpoint's step (0 = none)
  std::string detail;           // one line for the plan, e.g. "checkpoint at step 400 of 800"
};

// `out` is the stage's resolved output path. Throws ConfigError when a training run has already gone
// past the stage's steps (its checkpoint could not be the one asked for).
StageProgress stage_progress(const StageSpec& stage, const std::string& out);

}  // namespace tinyzero
