// `tinyzero-train recipe FILE`: run the stages a recipe declares (recipe/recipe.h), skipping those
// done and resuming the interrupted one, then say what the last stage's training reached.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli/registry.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/recipe/recipe.h"
#include "tinyzero/recipe/runner.h"
#include "tinyzero/recipe/summary.h"

namespace tinyzero::cli {
namespace {

struct RecipeArgs {
  std::string path;
  RecipeEdits edits;
  RecipeRunOptions run;
};

void run_recipe_command(const RecipeArgs& args) {
  const auto start = std::chrono::steady_clock::now();
  const Recipe recipe = load_recipe(args.path, args.edits);
  if (!args.edits.final_overrides.empty() && !args.run.until.empty() &&
      args.run.until != recipe.stages.back().name)
    throw UsageError("the key=value overrides apply to the last stage, " + recipe.stages.back().name +
                     ", which --until " + args.run.until + " does not run; give them as --set " +
                     args.run.until + ".overrides.KEY=VALUE");
  const RecipeOutcome outcome = run_recipe(recipe, args.run, std::cout);
  if (args.run.plan_only) {
    std::cout << "plan checked; nothing run (--plan)\n";
    return;
  }
  std::cout << "\n";
  if (outcome.target_config)
    std::cout << format_run_summary(summarize_run(outcome.target_run_dir, *outcome.target_config));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("stages run: %zu, already done: %zu; wall time of this invocation: %.0f s\n",
              outcome.ran.size(), outcome.skipped.size(), seconds);
}

CommandRegistration reg([](CLI::App& app) {
  auto args = std::make_shared<RecipeArgs>();
  auto* cmd = app.add_subcommand(
      "recipe",
      "Run the stages a recipe declares (e.g. configs/tiny/demo.yaml: a tiny model from nothing, warm-up "
      "corpora, SFT, GRPO) in order, skipping the finished ones and resuming an interrupted training stage; "
      "then print the held-out success of the last stage's base and trained model");
  cmd->add_option("recipe", args->path, "recipe file, e.g. configs/tiny/demo.yaml")->required();
  cmd->add_option("overrides", args->edits.final_overrides,
                  "key.path=value config overrides of the last stage (e.g. GRPO's actor.optim.lr=1e-4)");
  cmd->add_flag("--from-scratch", args->run.from_scratch,
                "make the warmed-up model with the recipe's own stages (warm_model.from_scratch) instead of "
                "using the stored one (warm_model.stored)");
  cmd->add_option("--dir", args->edits.dir, "output directory of the stages (the recipe's dir)");
  cmd->add_option("--profile", args->edits.profiles,
                  "apply a profile the recipe declares, e.g. quick (repeatable; before --set)")
      ->allow_extra_args(false);  // one value each: what follows is the next argument
  cmd->add_option(
         "--set", args->edits.sets,
         "change the recipe: PATH=VALUE with PATH one of dir, warm_model.stored, warm_model.from_scratch, "
         "overrides.KEY, STAGE.FIELD, STAGE.overrides.KEY (repeatable), e.g. --set sft.steps=100")
      ->allow_extra_args(false);
  cmd->add_option("--until", args->run.until, "end with this stage (and run only what it needs)");
  cmd->add_flag("--plan", args->run.plan_only,
                "check the recipe and every config it will run, print the plan, run nothing");
  cmd->footer("Stage fields:\n" + recipe_fields_reference());
  cmd->callback([args] { run_recipe_command(*args); });
});

}  // namespace
}  // namespace tinyzero::cli
