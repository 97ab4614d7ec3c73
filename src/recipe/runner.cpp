// Running a recipe's stages in-process (see runner.h).
#include "tinyzero/recipe/runner.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/model/model_config.h"
#include "tinyzero/recipe/stage_state.h"
#include "tinyzero/recipe/tiny_model.h"
#include "tinyzero/recipe/training.h"
#include "tinyzero/tasks/task.h"
#include "tinyzero/tasks/warmup_corpus.h"
#include "tinyzero/trainer/trainer.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

// A YAML double-quoted scalar: the config loader reads it back as exactly `s` whatever it holds
// (braces, colons, a leading "[" ...).
std::string yaml_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// A needed stage with every ${name} resolved against the plan as it stands.
struct ResolvedStage {
  const PlannedStage* planned = nullptr;
  std::string label;                   // "stage sft (configs/tiny/demo.yaml:40)"
  std::vector<std::string> overrides;  // the recipe's, then the stage's: "key=value"
  std::string config, model_config, expression_config, trace_config;
  bool inputs_ready = false;  // every stage it names is done
};

ResolvedStage resolve_stage(const RecipePlan& plan, const Recipe& recipe, const PlannedStage& stage) {
  ResolvedStage r;
  r.planned = &stage;
  const StageSpec& s = stage.spec;
  r.label = "stage " + s.name + " (" + s.where + ")";
  bool ready = true;
  auto resolve = [&](const std::string& text, const std::string& where) {
    ready = ready && references_ready(plan, recipe, text, where);
    return resolve_references(plan, recipe, text, where);
  };
  for (const auto* list : {&recipe.overrides, &s.overrides}) {
    for (const auto& o : *list) {
      std::string value;
      for (const auto& v : o.values) value += (value.empty() ? "" : ", ") + yaml_quote(resolve(v, o.where));
      r.overrides.push_back(o.key + "=" + (o.is_list ? "[" + value + "]" : value));
    }
  }
  const std::string field = s.where + ": stage " + s.name;
  if (s.kind == StageKind::kTinyModel) {
    r.model_config = resolve(s.tiny_model.model_config, field + "'s model_config");
    r.expression_config = resolve(s.tiny_model.expression_config, field + "'s expression_config");
    r.trace_config = resolve(s.tiny_model.trace_config, field + "'s trace_config");
  } else if (s.kind == StageKind::kCorpus) {
    r.config = resolve(s.corpus.config, field + "'s config");
  } else {
    r.config = resolve(s.train.config, field + "'s config");
  }
  r.inputs_ready = ready;
  return r;
}

LoadedConfig load_stage_config(const ResolvedStage& r, const std::string& path,
                               const std::vector<std::string>& extra = {}) {
  std::vector<std::string> overrides = r.overrides;
  overrides.insert(overrides.end(), extra.begin(), extra.end());
  try {
    return load_config(path, overrides);
  } catch (const ConfigError& e) {
    throw ConfigError(r.label + ": " + e.what());
  }
}

std::vector<std::string> train_overrides(const ResolvedStage& r) {
  return {"trainer.total_steps=" + std::to_string(r.planned->spec.train.steps),
          "trainer.run_dir=" + yaml_quote(r.planned->out), "trainer.resume=auto"};
}

TinyModelSpec tiny_model_spec(const ResolvedStage& r) {
  const TinyModelStageFields& f = r.planned->spec.tiny_model;
  TinyModelSpec spec;
  spec.model_config = r.model_config;
  spec.vocab_size = f.vocab_size;
  spec.expression_data = load_stage_config(r, r.expression_config).config.data;
  spec.expression_problems = f.expression_problems;
  spec.trace_data = load_stage_config(r, r.trace_config).config.data;
  spec.trace_problems = f.trace_problems;
  spec.seed = static_cast<uint64_t>(f.seed);
  spec.init_seed = static_cast<uint64_t>(f.init_seed);
  return spec;
}

WarmupCorpusOptions corpus_options(const CorpusStageFields& f) {
  WarmupCorpusOptions o;
  o.problems = f.problems;
  o.examples = f.examples;
  o.attempts = f.attempts;
  o.min_attempts = f.min_attempts;
  o.stop_prob = f.stop_prob;
  o.answer_last = f.answer == "last";
  o.ordered = f.order == "fixed";
  o.compare = f.compare;
  o.compare_target_first = f.compare_layout == "target-first";
  o.seed = static_cast<uint64_t>(f.seed);
  return o;
}

// Everything about a stage that can be checked before it runs: its configs with their overrides, its
// options, and (when the stages it uses are done) the inputs a training run reads.
void check_stage(const ResolvedStage& r) {
  const StageSpec& s = r.planned->spec;
  if (s.kind == StageKind::kTinyModel) {
    const TinyModelSpec spec = tiny_model_spec(r);
    TransformerConfig shape;
    try {
      shape = load_transformer_config(spec.model_config);
    } catch (const Error& e) {
      throw ConfigError(r.label + ": model_config: " + e.what());
    }
    if (spec.vocab_size > shape.vocab_size)
      throw ConfigError(r.label + ": vocab_size " + std::to_string(spec.vocab_size) + " is more than the " +
                        std::to_string(shape.vocab_size) + " ids of " + spec.model_config +
                        "; give at most that many");
    for (const DataConfig* data : {&spec.expression_data, &spec.trace_data})
      if (parse_task_kind(data->task) != TaskKind::kCountdown)
        throw ConfigError(r.label + ": its configs must be of data.task countdown, not " + data->task);
  } else if (s.kind == StageKind::kCorpus) {
    const DataConfig data = load_stage_config(r, r.config).config.data;
    validate_warmup_corpus_options(corpus_options(s.corpus), r.label);
    if (parse_task_kind(data.task) != TaskKind::kCountdown)
      throw ConfigError(r.label + ": " + r.config + " has data.task " + data.task +
                        "; a warm-up corpus needs data.task: countdown");
  } else {
    const LoadedConfig loaded = load_stage_config(r, r.config, train_overrides(r));
    if (r.inputs_ready) {
      try {
        check_run_inputs(loaded.config);
      } catch (const ConfigError& e) {
        throw ConfigError(r.label + ": " + e.what());
      }
    }
  }
}

void make_parent(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw IoError("cannot create directory " + parent.string() + " for " + path + ": " + ec.message());
}

void run_stage(const ResolvedStage& r, std::ostream& log) {
  const PlannedStage& p = *r.planned;
  const StageSpec& s = p.spec;
  if (s.kind == StageKind::kTinyModel) {
    const TinyModelResult made = make_tiny_model(tiny_model_spec(r), p.out);
    log << "   tokenizer: " << made.vocab_size << " ids (" << made.merges
        << " merges); model: " << made.parameters << " parameters (" << r.model_config << "), in " << p.out
        << std::endl;
  } else if (s.kind == StageKind::kCorpus) {
    const DataConfig data = load_stage_config(r, r.config).config.data;
    const WarmupCorpus corpus = make_countdown_warmup_corpus(data, corpus_options(s.corpus));
    make_parent(p.out);
    write_file_atomic(p.out, corpus.jsonl());
    char line[256];
    std::snprintf(
        line, sizeof line,
        "   %zu examples over %zu problems (none of the %zu held-out ones); answers that hit the target "
        "by chance: %.1f%%, mean response %.0f characters\n",
        corpus.examples.size(), corpus.problems, corpus.held_out, 100.0 * corpus.chance_hit_rate(),
        corpus.mean_response_chars());
    log << line << std::flush;
  } else {
    run_training(load_stage_config(r, r.config, train_overrides(r)));
  }
}

std::string seconds_text(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f s", s);
  return buf;
}

}  // namespace

RecipeOutcome run_recipe(const Recipe& recipe, const RecipeRunOptions& options, std::ostream& log) {
  if (detect_dist_env().world_size > 1)
    throw UsageError(
        "a recipe runs in one process; to train on several ranks, run a stage's config with "
        "torchrun ... tinyzero-train --config FILE");
  RecipeOutcome outcome;
  RecipePlan plan = plan_recipe(recipe, options.from_scratch, options.until);
  outcome.plan = plan;
  std::map<std::string, std::string> outs;  // output path -> stage, to refuse two stages writing one place
  size_t needed = 0;
  for (const auto& s : plan.stages) {
    if (!s.needed) continue;
    ++needed;
    const std::string key = fs::path(s.out).lexically_normal().string();
    if (outs.count(key))
      throw ConfigError("stages " + outs[key] + " and " + s.spec.name + " both write " + s.out +
                        "; give one of them another out");
    outs[key] = s.spec.name;
  }
  log << "recipe " << recipe.source << " in " << plan.dir << (plan.from_scratch ? ", from scratch" : "")
      << ", up to stage " << plan.target << ":\n"
      << describe_plan(plan) << std::flush;
  // Check every stage that will run before running any: a typo in the last stage's overrides must
  // not wait for the first stage's half hour.
  for (const auto& s : plan.stages)
    if (s.needed && s.progress.state != StageState::kDone) check_stage(resolve_stage(plan, recipe, s));
  if (options.plan_only) return outcome;

  size_t index = 0;
  for (auto& s : plan.stages) {
    if (!s.needed) continue;
    ++index;
    const std::string head = "== [" + std::to_string(index) + "/" + std::to_string(needed) + "] " +
                             s.spec.name + " (" + stage_kind_name(s.spec.kind) + ")";
    if (s.progress.state == StageState::kDone) {
      log << head << ": done, skipped (" << s.progress.detail << ")" << std::endl;
      outcome.skipped.push_back(s.spec.name);
      continue;
    }
    log << head << (s.progress.state == StageState::kPartial ? ": resuming from the " : ": running, ")
        << s.progress.detail << std::endl;
    const auto start = std::chrono::steady_clock::now();
    const ResolvedStage r = resolve_stage(plan, recipe, s);
    run_stage(r, log);
    s.progress = stage_progress(s.spec, s.out);
    if (s.progress.state != StageState::kDone)
      throw Error("stage " + s.spec.name + " finished but its output is not complete (" + s.progress.detail +
                  ")");
    outcome.ran.push_back(s.spec.name);
    log << "   done in "
        << seconds_text(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count())
        << ": " << s.progress.detail << std::endl;
  }
  const PlannedStage& target = *plan.find(plan.target);
  if (target.spec.kind == StageKind::kTrain) {
    const ResolvedStage r = resolve_stage(plan, recipe, target);
    outcome.target_run_dir = target.out;
    outcome.target_config = load_stage_config(r, r.config, train_overrides(r)).config;
  }
  return outcome;
}

}  // namespace tinyzero
