// A recipe: the stages of a multi-step run declared in YAML (configs/tiny/demo.yaml), each making
// one product from the products of earlier stages, so that one command can run them all, skip what
// is done and resume what was interrupted (plan.h, runner.h).
//
//   dir: runs/tiny-demo                      # every stage's output goes under it by default
//   warm_model:                              # ${warm_model}: what training starts from
//     stored: tests/data/tiny-demo-warm      #   by default, this stored model
//     from_scratch: ${sft2}                  #   with --from-scratch, this stage's product
//   overrides: {}                            # config overrides for every stage that reads a config
//   stages:
//     tiny-model: {kind: tiny-model, model_config: configs/tiny/model.json}
//     warmup: {kind: countdown-sft, config: configs/tiny/grpo.yaml, problems: 1300, examples: 51200}
//     sft:
//       kind: train
//       config: configs/tiny/sft.yaml
//       steps: 800
//       overrides: {model.path: "${tiny-model}", data.train_files: "${warmup}"}
//     ...
//   profiles:                                # --profile NAME: a named list of --set edits
//     quick: {dir: runs/tiny-demo-quick, sft.steps: 100}
//
// A string may name another stage's product as ${stage} (a tiny model's model directory, a corpus
// file, a training run's final checkpoint), ${warm_model} or ${dir}. A stage may only name stages
// declared before it. Paths are relative to the working directory, as in training configs.
//
// Edits (--profile, --set PATH=VALUE) change the document before it is read: PATH is `dir`,
// `warm_model.stored`, `warm_model.from_scratch`, `overrides.KEY`, `STAGE.FIELD` or
// `STAGE.overrides.KEY` (KEY a dotted config key such as actor.optim.lr); VALUE is YAML.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyzero/core/schema.h"

namespace tinyzero {

enum class StageKind { kTinyModel, kCorpus, kTrain };

// "tiny-model" | "countdown-sft" | "train".
std::string stage_kind_name(StageKind kind);

// kind: tiny-model: a byte-level BPE tokenizer trained on generated Countdown text and a randomly
// initialised model of a given shape with it (tiny_model.h). Product: OUT/model (OUT/tokenizer
// beside it).
struct TinyModelStageFields {
  std::string model_config;
  int64_t vocab_size;
  std::string expression_config;
  int64_t expression_problems;
  std::string trace_config;
  int64_t trace_problems;
  int64_t seed, init_seed;
  TinyModelStageFields() { apply_section_defaults(this); }
  void describe(Schema& s);
};

// kind: countdown-sft: a warm-up corpus (tasks/warmup_corpus.h) over problems none of which is held
// out by its config. Product: the JSONL file OUT.
struct CorpusStageFields {
  std::string config;
  int64_t problems, examples, attempts, min_attempts;
  double stop_prob;
  std::string answer, order;
  bool compare;
  std::string compare_layout;
  int64_t seed;
  CorpusStageFields() { apply_section_defaults(this); }
  void describe(Schema& s);
};

// kind: train: a training run of a config (SFT or RL) to `steps` in run directory OUT, resuming
// from its newest checkpoint. Product: the checkpoint at `steps`.
struct TrainStageFields {
  std::string config;
  int64_t steps;
  TrainStageFields() { apply_section_defaults(this); }
  void describe(Schema& s);
};

// One config override: a dotted key and its YAML value (a scalar, or a list of scalars), which may
// name products as ${...}.
struct ConfigOverride {
  std::string key;
  std::vector<std::string> values;  // one value for a scalar
  bool is_list = false;
  std::string where;  // where it was set, for messages
};

struct StageSpec {
  std::string name;
  StageKind kind = StageKind::kTrain;
  std::string out;    // where the product goes; "" = the default under the recipe's dir
  std::string where;  // "file:line" of its declaration
  TinyModelStageFields tiny_model;
  CorpusStageFields corpus;
  TrainStageFields train;
  std::vector<ConfigOverride> overrides;       // train stages: applied after the recipe's own
  std::map<std::string, std::string> origins;  // field -> where its value was set
};

struct Recipe {
  std::string source;  // the file (or the name given to parse_recipe_text)
  std::string dir;
  std::string warm_stored, warm_from_scratch;  // warm_model.stored / warm_model.from_scratch
  std::vector<ConfigOverride> overrides;       // for every stage that reads a config
  std::vector<StageSpec> stages;               // in declared order
  std::vector<std::string> profiles;           // the profiles the file declares

  const StageSpec* find(const std::string& name) const;  // nullptr when absent
  std::vector<std::string> stage_names() const;
};

struct RecipeEdits {
  std::vector<std::string> profiles;         // --profile NAME, applied first, in order
  std::vector<std::string> sets;             // --set PATH=VALUE, then these
  std::string dir;                           // --dir: replaces dir last when not empty
  std::vector<std::string> final_overrides;  // key=value config overrides of the last stage
};

// Reads and checks a recipe file with its edits. Throws ConfigError naming the file and line (or the
// edit), the field and the fix: unknown keys, kinds, stages or profiles, values of the wrong type or
// out of range, a ${name} that names nothing or a later stage, overrides of what the recipe owns
// (trainer.total_steps, trainer.run_dir, trainer.resume).
Recipe load_recipe(const std::string& path, const RecipeEdits& edits = {});
// The same from YAML text; `source` names it in messages.
Recipe parse_recipe_text(const std::string& yaml_text, const std::string& source,
                         const RecipeEdits& edits = {});

// The fields of every stage kind (name, type, default, description) as text, for --help.
std::string recipe_fields_reference();

}  // namespace tinyzero
