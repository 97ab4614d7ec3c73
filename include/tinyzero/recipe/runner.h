// Runs a recipe: plans it (plan.h), checks every stage it will run before running any (configs,
// overrides, shapes, and the inputs that already exist), then runs the needed stages in order,
// in-process, skipping those already done; an interrupted training stage resumes from its newest
// checkpoint.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "tinyzero/core/config.h"
#include "tinyzero/recipe/plan.h"
#include "tinyzero/recipe/recipe.h"

namespace tinyzero {

struct RecipeRunOptions {
  bool from_scratch = false;  // make the warm model with the recipe's own stages (warm_model.from_scratch)
  std::string until;          // end with this stage; "" = the last one
  bool plan_only = false;     // check and print the plan, run nothing
};

struct RecipeOutcome {
  RecipePlan plan;                   // as found before running
  std::vector<std::string> ran;      // stages run (or resumed) now
  std::vector<std::string> skipped;  // needed stages that were already done
  // The target stage's run directory and resolved config, when it is a training stage.
  std::string target_run_dir;
  std::optional<TrainConfig> target_config;
};

// Progress lines go to `log`. Throws ConfigError for a recipe or config that cannot run (before any
// stage runs where it can be known then), UsageError when started with several ranks, and whatever a
// stage throws.
RecipeOutcome run_recipe(const Recipe& recipe, const RecipeRunOptions& options, std::ostream& log);

}  // namespace tinyzero
