// Which stages of a recipe a run needs, in which state each one is, and what ${name} stands for.
//
// The run's target is the last stage (or the one --until names). A stage is needed when the target
// names its product, directly or through other stages (and through ${warm_model}: the stored model by
// default, so the warm-up stages are not needed; with --from-scratch the stage product that
// warm_model.from_scratch names). Needed stages run in declared order, those already done skipped.
#pragma once

#include <string>
#include <vector>

#include "tinyzero/recipe/recipe.h"
#include "tinyzero/recipe/stage_state.h"

namespace tinyzero {

struct PlannedStage {
  StageSpec spec;
  bool needed = false;
  std::string out;         // resolved output path
  StageProgress progress;  // on disk when planned (needed stages only)
};

struct RecipePlan {
  std::string dir;
  bool from_scratch = false;
  std::string target;                // the stage the run ends with
  std::vector<PlannedStage> stages;  // every stage, in declared order

  PlannedStage* find(const std::string& name);
  const PlannedStage* find(const std::string& name) const;
};

// Throws ConfigError for an --until that names no stage, and as stage_progress() does.
RecipePlan plan_recipe(const Recipe& recipe, bool from_scratch, const std::string& until = "");

// `text` with ${dir}, ${warm_model} and ${stage} replaced: a stage's product when it is done, else
// (for checking configs before anything runs) its output path.
std::string resolve_references(const RecipePlan& plan, const Recipe& recipe, const std::string& text,
                               const std::string& where);

// Whether every stage `text` leads to (through ${warm_model} too) is done.
bool references_ready(const RecipePlan& plan, const Recipe& recipe, const std::string& text,
                      const std::string& where);

// One line per stage: "  [run]    sft (train configs/tiny/sft.yaml, 800 steps): no checkpoint ...".
std::string describe_plan(const RecipePlan& plan);

}  // namespace tinyzero
