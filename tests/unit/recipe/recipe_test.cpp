// Tests of reading recipes (recipe/recipe.h), their ${name} references (recipe/references.h) and which
// stages a run needs (recipe/plan.h): the demo's own recipe, edits (profiles, --set, --dir, the last
// stage's overrides), and the one-line errors of each kind of mistake.
#include "tinyzero/recipe/recipe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tinyzero/core/errors.h"
#include "tinyzero/recipe/plan.h"
#include "tinyzero/recipe/references.h"

namespace tinyzero {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kDemo = std::string(TZ_SOURCE_DIR) + "/configs/tiny/demo.yaml";

// A plan's needed stages, in order.
std::vector<std::string> needed(const RecipePlan& plan) {
  std::vector<std::string> out;
  for (const auto& s : plan.stages)
    if (s.needed) out.push_back(s.spec.name);
  return out;
}

// The message of the ConfigError that parsing `yaml` with `edits` throws ("" when it throws none).
std::string error_of(const std::string& yaml, const RecipeEdits& edits = {}) {
  try {
    parse_recipe_text(yaml, "r.yaml", edits);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

std::string override_value(const StageSpec& stage, const std::string& key) {
  for (const auto& o : stage.overrides)
    if (o.key == key) return o.values.at(0);
  return "<absent>";
}

// A small valid recipe the error tests change one thing of. The directory does not exist, so no
// stage is done.
const std::string kSmall = R"(dir: /nonexistent/tz-recipe-test
warm_model:
  stored: stored-model
  from_scratch: ${sft}
stages:
  corpus:
    kind: countdown-sft
    config: c.yaml
    problems: 10
  sft:
    kind: train
    config: sft.yaml
    steps: 2
    overrides:
      data.train_files: ${corpus}
  grpo:
    kind: train
    config: grpo.yaml
    steps: 3
    overrides:
      model.path: ${warm_model}
)";

TEST(Recipe, TheDemoRecipeDeclaresItsStagesInOrder) {
  const Recipe r = load_recipe(kDemo);
  EXPECT_EQ(r.dir, "runs/tiny-demo");
  EXPECT_THAT(r.stage_names(), ElementsAre("tiny-model", "warmup", "warmup2", "sft", "sft2", "grpo"));
  EXPECT_EQ(r.find("tiny-model")->kind, StageKind::kTinyModel);
  EXPECT_EQ(r.find("warmup")->kind, StageKind::kCorpus);
  EXPECT_EQ(r.find("warmup")->corpus.examples, 51200);
  EXPECT_EQ(r.find("warmup")->corpus.order, "fixed");
  EXPECT_EQ(r.find("warmup2")->corpus.seed, 1);
  EXPECT_EQ(r.find("sft")->train.steps, 800);
  EXPECT_EQ(override_value(*r.find("sft2"), "model.path"), "${sft}");
  EXPECT_EQ(override_value(*r.find("sft2"), "actor.optim.lr"), "1.0e-3");
  EXPECT_EQ(override_value(*r.find("grpo"), "model.path"), "${warm_model}");
  EXPECT_EQ(r.warm_stored, "tests/data/tiny-demo-warm");
  EXPECT_EQ(r.warm_from_scratch, "${sft2}");
  EXPECT_THAT(r.profiles, ElementsAre("quick", "smoke"));
}

TEST(Recipe, ByDefaultOnlyGrpoRunsAndFromScratchRunsTheWholeWarmUp) {
  RecipeEdits edits;
  edits.dir = "/nonexistent/tz-demo";  // nothing done there
  const Recipe r = load_recipe(kDemo, edits);
  EXPECT_THAT(needed(plan_recipe(r, false)), ElementsAre("grpo"));
  EXPECT_THAT(needed(plan_recipe(r, true)),
              ElementsAre("tiny-model", "warmup", "warmup2", "sft", "sft2", "grpo"));
  // --until: a stage and what it needs.
  EXPECT_THAT(needed(plan_recipe(r, true, "sft")), ElementsAre("tiny-model", "warmup", "sft"));
  EXPECT_THAT(needed(plan_recipe(r, false, "warmup2")), ElementsAre("warmup2"));
  // The stored model is what GRPO starts from by default; from scratch, the second leg's checkpoint.
  const RecipePlan plan = plan_recipe(r, false);
  EXPECT_EQ(resolve_references(plan, r, "${warm_model}", "test"), "tests/data/tiny-demo-warm");
  const RecipePlan scratch = plan_recipe(r, true);
  EXPECT_EQ(resolve_references(scratch, r, "${warm_model}", "test"), "/nonexistent/tz-demo/sft2");
  EXPECT_EQ(scratch.find("warmup")->out, "/nonexistent/tz-demo/warmup.jsonl");
  EXPECT_EQ(scratch.find("tiny-model")->progress.state, StageState::kNotStarted);
}

TEST(Recipe, TheQuickProfileShortensEveryStageAndDropsTheSecondLeg) {
  RecipeEdits edits;
  edits.profiles = {"quick"};
  const Recipe r = load_recipe(kDemo, edits);
  EXPECT_EQ(r.dir, "runs/tiny-demo-quick");
  EXPECT_EQ(r.find("sft")->train.steps, 100);
  EXPECT_EQ(r.find("grpo")->train.steps, 4);
  EXPECT_EQ(r.find("warmup")->corpus.examples, 6400);
  ASSERT_EQ(r.overrides.size(), 1u);
  EXPECT_EQ(r.overrides[0].key, "data.val_size");
  EXPECT_EQ(override_value(*r.find("grpo"), "data.train_batch_size"), "16");
  RecipeEdits away = edits;
  away.dir = "/nonexistent/tz-quick";  // --dir wins over the profile's dir
  const Recipe moved = load_recipe(kDemo, away);
  EXPECT_EQ(moved.dir, "/nonexistent/tz-quick");
  EXPECT_THAT(needed(plan_recipe(moved, true)), ElementsAre("tiny-model", "warmup", "sft", "grpo"));
}

TEST(Recipe, SetsAndTheLastStagesOverridesEditTheDocument) {
  RecipeEdits edits;
  edits.sets = {"sft.steps=5", "overrides.data.val_size=7", "grpo.overrides.actor.optim.lr=2e-4",
                "corpus.out=x.jsonl", "warm_model.stored=elsewhere"};
  edits.final_overrides = {"rollout.stop=[\"</answer>\", \"\\n\"]", "trainer.test_freq=1"};
  const Recipe r = parse_recipe_text(kSmall, "r.yaml", edits);
  EXPECT_EQ(r.find("sft")->train.steps, 5);
  EXPECT_EQ(r.find("sft")->origins.at("steps"), "--set 'sft.steps=5'");
  EXPECT_EQ(r.find("corpus")->out, "x.jsonl");
  EXPECT_EQ(r.warm_stored, "elsewhere");
  ASSERT_EQ(r.overrides.size(), 1u);
  EXPECT_EQ(r.overrides[0].values.at(0), "7");
  const StageSpec& grpo = *r.find("grpo");
  EXPECT_EQ(override_value(grpo, "actor.optim.lr"), "2e-4");
  EXPECT_EQ(override_value(grpo, "trainer.test_freq"), "1");
  // A list stays a list; the last stage's overrides come after its own.
  ASSERT_EQ(grpo.overrides.size(), 4u);
  EXPECT_EQ(grpo.overrides[0].key, "model.path");
  EXPECT_EQ(grpo.overrides[2].key, "rollout.stop");
  EXPECT_TRUE(grpo.overrides[2].is_list);
  EXPECT_THAT(grpo.overrides[2].values, ElementsAre("</answer>", "\n"));
}

TEST(Recipe, EachMistakeIsOneLineNamingThePlaceAndTheFix) {
  auto replace = [](std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  // An unknown field, with the line and the closest field.
  std::string e = error_of(replace(kSmall, "    steps: 2\n", "    stepz: 2\n"));
  EXPECT_THAT(e, HasSubstr("r.yaml:13"));
  EXPECT_THAT(e, HasSubstr("stage sft has no field 'stepz'; did you mean 'steps'?"));
  // A train stage without steps.
  EXPECT_THAT(error_of(replace(kSmall, "    steps: 2\n", "")), HasSubstr("stage sft needs steps: N"));
  // Values of the wrong type or out of range.
  EXPECT_THAT(error_of(replace(kSmall, "steps: 2", "steps: two")),
              HasSubstr("stage sft's steps must be int, got 'two'"));
  EXPECT_THAT(error_of(replace(kSmall, "problems: 10", "problems: 0")),
              HasSubstr("r.yaml:9: stage corpus's problems must be >= 1, got 0"));
  // An unknown kind.
  EXPECT_THAT(
      error_of(replace(kSmall, "kind: countdown-sft", "kind: countdown-stf")),
      HasSubstr("stage corpus's kind is 'countdown-stf'; give one of tiny-model, countdown-sft, train; did "
                "you mean 'countdown-sft'?"));
  // A reference to nothing, and one to a later stage.
  EXPECT_THAT(error_of(replace(kSmall, "${corpus}", "${corpsu}")),
              HasSubstr("names ${corpsu}, which is no stage, dir or warm_model; did you mean 'corpus'?"));
  EXPECT_THAT(error_of(replace(kSmall, "${corpus}", "${grpo}")), HasSubstr("a stage declared after it"));
  EXPECT_THAT(error_of(replace(kSmall, "${corpus}", "${sft}")), HasSubstr("its own product"));
  EXPECT_THAT(error_of(replace(kSmall, "${corpus}", "${corpus")), HasSubstr("never closes it"));
  // What the recipe sets itself.
  EXPECT_THAT(
      error_of(replace(kSmall, "data.train_files: ${corpus}", "trainer.total_steps: 9")),
      HasSubstr("stage sft overrides trainer.total_steps; the recipe sets it from the stage's steps: use "
                "--set sft.steps=N"));
  RecipeEdits last;
  last.final_overrides = {"trainer.run_dir=x"};
  EXPECT_THAT(error_of(kSmall, last), HasSubstr("override 'trainer.run_dir=x' (of the last stage, grpo)"));
  // Edits that name nothing.
  RecipeEdits set;
  set.sets = {"sfft.steps=3"};
  EXPECT_THAT(error_of(kSmall, set),
              HasSubstr("--set 'sfft.steps=3': 'sfft' is neither a stage (corpus, sft, grpo)"));
  set.sets = {"sft.optim.lr=3"};
  EXPECT_THAT(error_of(kSmall, set),
              HasSubstr("config keys go under overrides: sft.overrides.optim.lr=VALUE"));
  set.sets = {"sft.steps"};
  EXPECT_THAT(error_of(kSmall, set), HasSubstr("must look like PATH=VALUE"));
  set.sets = {"sft.stepz=3"};
  EXPECT_THAT(error_of(kSmall, set), HasSubstr("--set 'sft.stepz=3': stage sft has no field 'stepz'"));
  RecipeEdits profile;
  profile.profiles = {"quick"};
  EXPECT_THAT(error_of(kSmall, profile),
              HasSubstr("--profile quick: r.yaml has no such profile (it has none)"));
  // An unknown top-level key and a stage name that is a recipe key.
  EXPECT_THAT(error_of("dirr: x\n" + kSmall),
              HasSubstr("r.yaml:1: unknown recipe key 'dirr'; did you mean 'dir'?"));
  EXPECT_THAT(error_of(replace(kSmall, "  corpus:\n", "  overrides:\n")), HasSubstr("is a recipe key"));
  // A training config given as a recipe.
  EXPECT_THAT(
      error_of("model:\n  path: m\n"),
      HasSubstr("r.yaml:1: 'model' is a section of a training config, not a recipe key; train with it as "
                "tinyzero-train --config r.yaml"));
  // The valid recipe itself passes.
  EXPECT_EQ(error_of(kSmall), "");
}

TEST(Recipe, UntilMustNameAStage) {
  const Recipe r = parse_recipe_text(kSmall, "r.yaml");
  try {
    plan_recipe(r, false, "sfft");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("--until sfft: r.yaml has no such stage (corpus, sft, grpo); did you mean 'sft'?"));
  }
  EXPECT_THAT(needed(plan_recipe(r, false)), ElementsAre("grpo"));
  EXPECT_THAT(needed(plan_recipe(r, true)), ElementsAre("corpus", "sft", "grpo"));
}

TEST(RecipeReferences, NamesAreFoundAndReplacedInOrder) {
  EXPECT_THAT(referenced_names("${a}/x/${b}${a}", "w"), ElementsAre("a", "b", "a"));
  EXPECT_TRUE(referenced_names("$HOME/a{b}", "w").empty());
  EXPECT_EQ(substitute_references(
                "${dir}/m-${x}", [](const std::string& n) { return "<" + n + ">"; }, "w"),
            "<dir>/m-<x>");
  EXPECT_THROW(referenced_names("a ${", "w"), ConfigError);
  EXPECT_THROW(referenced_names("a ${}", "w"), ConfigError);
}

}  // namespace
}  // namespace tinyzero
