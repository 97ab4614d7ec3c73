// Stage selection and ${name} resolution (see plan.h).
#include "tinyzero/recipe/plan.h"

#include <set>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/recipe/references.h"

namespace tinyzero {

PlannedStage* RecipePlan::find(const std::string& name) {
  for (auto& s : stages)
    if (s.spec.name == name) return &s;
  return nullptr;
}

const PlannedStage* RecipePlan::find(const std::string& name) const {
  for (const auto& s : stages)
    if (s.spec.name == name) return &s;
  return nullptr;
}

namespace {

// Every string of a stage that may name products, the recipe's overrides included.
std::vector<std::string> strings_of(const Recipe& recipe, const StageSpec& s) {
  std::vector<std::string> out = {s.out};
  if (s.kind == StageKind::kTinyModel) {
    out.insert(out.end(),
               {s.tiny_model.model_config, s.tiny_model.expression_config, s.tiny_model.trace_config});
  } else if (s.kind == StageKind::kCorpus) {
    out.push_back(s.corpus.config);
  } else {
    out.push_back(s.train.config);
  }
  for (const auto* list : {&recipe.overrides, &s.overrides})
    for (const auto& o : *list) out.insert(out.end(), o.values.begin(), o.values.end());
  return out;
}

const std::string& warm_text(const Recipe& recipe, bool from_scratch) {
  return from_scratch ? recipe.warm_from_scratch : recipe.warm_stored;
}

// The stages `text` names, through ${warm_model} too.
void stages_named(const Recipe& recipe, bool from_scratch, const std::string& text, const std::string& where,
                  std::set<std::string>* out) {
  for (const auto& n : referenced_names(text, where)) {
    if (n == "dir") continue;
    if (n == "warm_model") {
      stages_named(recipe, from_scratch, warm_text(recipe, from_scratch), recipe.source + ": warm_model",
                   out);
    } else {
      out->insert(n);
    }
  }
}

}  // namespace

RecipePlan plan_recipe(const Recipe& recipe, bool from_scratch, const std::string& until) {
  RecipePlan plan;
  plan.dir = recipe.dir;
  plan.from_scratch = from_scratch;
  plan.target = until.empty() ? recipe.stages.back().name : until;
  if (!recipe.find(plan.target)) {
    const auto names = recipe.stage_names();
    const std::string best = closest_match(until, names);
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw ConfigError("--until " + until + ": " + recipe.source + " has no such stage (" + list + ")" +
                      (best.empty() ? "" : "; did you mean '" + best + "'?"));
  }
  for (const auto& spec : recipe.stages) plan.stages.push_back({spec, false, "", {}});
  // The target and, walking back, every stage a needed stage names (only earlier ones: recipe.h).
  std::set<std::string> needed = {plan.target};
  for (auto it = recipe.stages.rbegin(); it != recipe.stages.rend(); ++it) {
    if (!needed.count(it->name)) continue;
    for (const auto& text : strings_of(recipe, *it))
      stages_named(recipe, from_scratch, text, it->where, &needed);
  }
  for (auto& s : plan.stages) {
    s.needed = needed.count(s.spec.name) > 0;
    s.out = substitute_references(
        default_stage_out(s.spec, recipe.dir),
        [&](const std::string& n) -> std::string {
          if (n == "dir") return recipe.dir;
          throw ConfigError(s.spec.where + ": stage " + s.spec.name + "'s out may name only ${dir}, not ${" +
                            n + "}");
        },
        s.spec.where);
    if (s.needed) s.progress = stage_progress(s.spec, s.out);
  }
  return plan;
}

std::string resolve_references(const RecipePlan& plan, const Recipe& recipe, const std::string& text,
                               const std::string& where) {
  return substitute_references(
      text,
      [&](const std::string& n) -> std::string {
        if (n == "dir") return plan.dir;
        if (n == "warm_model")
          return resolve_references(plan, recipe, warm_text(recipe, plan.from_scratch),
                                    recipe.source + ": warm_model");
        const PlannedStage* s = plan.find(n);
        if (!s) throw ConfigError(where + " names ${" + n + "}, which is no stage");  // checked when read
        return s->progress.state == StageState::kDone ? s->progress.product : s->out;
      },
      where);
}

bool references_ready(const RecipePlan& plan, const Recipe& recipe, const std::string& text,
                      const std::string& where) {
  std::set<std::string> names;
  stages_named(recipe, plan.from_scratch, text, where, &names);
  for (const auto& n : names) {
    const PlannedStage* s = plan.find(n);
    if (!s || s->progress.state != StageState::kDone) return false;
  }
  return true;
}

std::string describe_plan(const RecipePlan& plan) {
  std::string out;
  for (const auto& s : plan.stages) {
    std::string what = stage_kind_name(s.spec.kind);
    if (s.spec.kind == StageKind::kTinyModel) what += " " + s.spec.tiny_model.model_config;
    if (s.spec.kind == StageKind::kCorpus) what += " " + s.spec.corpus.config;
    if (s.spec.kind == StageKind::kTrain)
      what += " " + s.spec.train.config + ", " + std::to_string(s.spec.train.steps) + " steps";
    std::string state;
    if (!s.needed) {
      state = "[not needed]";
    } else if (s.progress.state == StageState::kDone) {
      state = "[done]      ";
    } else if (s.progress.state == StageState::kPartial) {
      state = "[resume]    ";
    } else {
      state = "[run]       ";
    }
    out += "  " + state + " " + s.spec.name + " (" + what + ")";
    out += s.needed ? ": " + s.progress.detail + "\n" : "\n";
  }
  return out;
}

}  // namespace tinyzero
