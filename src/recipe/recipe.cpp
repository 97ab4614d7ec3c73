// Reading a recipe file: edits (profiles, --set), then the document into a checked Recipe (recipe.h).
#include "tinyzero/recipe/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/recipe/references.h"

namespace tinyzero {

std::string stage_kind_name(StageKind kind) {
  switch (kind) {
    case StageKind::kTinyModel:
      return "tiny-model";
    case StageKind::kCorpus:
      return "countdown-sft";
    case StageKind::kTrain:
      return "train";
  }
  return "?";
}

void TinyModelStageFields::describe(Schema& s) {
  s.field("model_config", &model_config, "configs/tiny/model.json",
          "the model's shape: a Hugging Face config.json");
  s.field("vocab_size", &vocab_size, 512,
          "ids of the BPE tokenizer trained for it (256 bytes + merges + specials)", Check::at_least(260));
  s.field(
      "expression_config", &expression_config, "configs/smoke.yaml",
      "tokenizer corpus, part 1: prompts of this config's template and ranges, each answered with a random "
      "expression over its numbers");
  s.field("expression_problems", &expression_problems, 4000, "problems in part 1", Check::at_least(1));
  s.field(
      "trace_config", &trace_config, "configs/tiny/grpo.yaml",
      "tokenizer corpus, part 2: prompts of this config's template and ranges, each with a warm-up trace of "
      "random attempts");
  s.field("trace_problems", &trace_problems, 1000, "problems in part 2", Check::at_least(1));
  s.field("seed", &seed, 11, "seed of the tokenizer corpus' problems and answers", Check::non_negative());
  s.field("init_seed", &init_seed, 1, "seed of the random weights", Check::non_negative());
}

void CorpusStageFields::describe(Schema& s) {
  s.field("config", &config, "",
          "training config whose data.* (ranges, prompt_template, seed, held-out set) the corpus follows");
  s.field("problems", &problems, 4000, "distinct problems, none of them held out", Check::at_least(1));
  s.field("examples", &examples, 0, "examples, cycling over the problems; 0 = one per problem",
          Check::non_negative());
  s.field("attempts", &attempts, 8, "attempts in each thinking trace (the most, with min_attempts)",
          Check::at_least(1));
  s.field("min_attempts", &min_attempts, 0, "fewest attempts per trace; 0 = attempts", Check::non_negative());
  s.field("stop_prob", &stop_prob, 0.0,
          "> 0: from min_attempts on, a trace ends after each attempt with this probability",
          Check::range(0, 1));
  s.field("answer", &answer, "random", "which attempt is the answer", Check::one_of({"last", "random"}));
  s.field("order", &order, "random",
          "random attempts, or a prefix of every candidate in one fixed order (fixed)",
          Check::one_of({"random", "fixed"}));
  s.field("compare", &compare, false, "end each attempt with its value's relation to the target (<, = or >)");
  s.field("compare_layout", &compare_layout, "relation-first", "with compare: \"50>26\" or \"50?26>\"",
          Check::one_of({"relation-first", "target-first"}));
  s.field("seed", &seed, 0, "seed of the corpus' problems, attempts and answer picks", Check::non_negative());
}

void TrainStageFields::describe(Schema& s) {
  s.field("config", &config, "", "the training config (SFT or RL)");
  s.field("steps", &steps, 0,
          "trainer.total_steps: the stage is done when its checkpoint at this step is complete",
          Check::at_least(1));
}

const StageSpec* Recipe::find(const std::string& name) const {
  for (const auto& s : stages)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<std::string> Recipe::stage_names() const {
  std::vector<std::string> names;
  for (const auto& s : stages) names.push_back(s.name);
  return names;
}

namespace {

const std::vector<std::string> kTopKeys = {"dir", "warm_model", "overrides", "stages", "profiles"};
const std::vector<std::string> kWarmKeys = {"stored", "from_scratch"};
// Config keys the recipe sets itself for each training stage.
const std::vector<std::pair<std::string, std::string>> kOwnedKeys = {
    {"trainer.total_steps", "the recipe sets it from the stage's steps: use --set STAGE.steps=N"},
    {"trainer.run_dir", "the recipe sets it from the stage's out: use --dir DIR or --set STAGE.out=DIR"},
    {"trainer.resume",
     "the recipe resumes every training stage from its newest checkpoint (trainer.resume: auto)"}};

// Where each part of the document came from: the file's line, or the edit that set it.
struct Origins {
  std::string source;
  std::map<std::string, std::string> edits;  // document path ("stages.sft.steps") -> the edit

  std::string at(const std::string& path, const YAML::Node& node) const {
    auto it = edits.find(path);
    if (it != edits.end()) return it->second;
    const YAML::Mark mark = node.Mark();
    if (mark.line < 0) return source;
    return source + ":" + std::to_string(mark.line + 1);
  }
};

std::string with_suggestion(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string best = closest_match(word, candidates);
  return best.empty() ? "" : "; did you mean '" + best + "'?";
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

YAML::Node parse_value(const std::string& value) {
  if (value.empty()) return YAML::Node(std::string());
  try {
    return YAML::Load(value);
  } catch (const YAML::Exception&) {
    return YAML::Node(value);  // not valid YAML: the text as a plain string
  }
}

// Applies one edit (PATH = value) to the document. `origin` names the edit in messages.
void apply_edit(YAML::Node& root, const std::string& path, const YAML::Node& value, const std::string& origin,
                Origins& origins) {
  const size_t dot = path.find('.');
  const std::string head = path.substr(0, dot);
  const std::string rest = dot == std::string::npos ? "" : path.substr(dot + 1);
  auto fail = [&](const std::string& what) { throw ConfigError(origin + ": " + what); };
  if (head == "dir") {
    if (!rest.empty()) fail("dir has no fields; set it with dir=DIR");
    root["dir"] = value;
    origins.edits["dir"] = origin;
  } else if (head == "warm_model") {
    if (std::find(kWarmKeys.begin(), kWarmKeys.end(), rest) == kWarmKeys.end())
      fail("warm_model has the fields stored and from_scratch, not '" + rest + "'" +
           with_suggestion(rest, kWarmKeys));
    root["warm_model"][rest] = value;
    origins.edits["warm_model." + rest] = origin;
  } else if (head == "overrides") {
    if (rest.empty()) fail("name the config key: overrides.KEY=VALUE, e.g. overrides.data.val_size=100");
    root["overrides"][rest] = value;
    origins.edits["overrides." + rest] = origin;
  } else if (head == "stages" || head == "profiles") {
    fail("edit a stage's field as STAGE.FIELD=VALUE (e.g. sft.steps=100); " + head + " itself cannot be set");
  } else {
    std::vector<std::string> names;
    bool found = false;
    if (root["stages"] && root["stages"].IsMap())
      for (const auto& kv : root["stages"]) {
        names.push_back(kv.first.as<std::string>());
        found = found || names.back() == head;
      }
    if (!found) {
      std::vector<std::string> all = names;
      all.insert(all.end(), kTopKeys.begin(), kTopKeys.end());
      fail("'" + head + "' is neither a stage (" + join(names) +
           ") nor one of dir, warm_model.*, overrides.*" + with_suggestion(head, all));
    }
    if (rest.empty()) fail("name the stage's field: " + head + ".FIELD=VALUE, e.g. " + head + ".out=DIR");
    YAML::Node stage = root["stages"][head];
    const size_t rest_dot = rest.find('.');
    if (rest.rfind("overrides.", 0) == 0 && rest.size() > 10) {
      const std::string key = rest.substr(10);
      stage["overrides"][key] = value;
      origins.edits["stages." + head + ".overrides." + key] = origin;
    } else if (rest_dot != std::string::npos) {
      fail("'" + rest + "' is not a field of stage " + head + "; config keys go under overrides: " + head +
           ".overrides." + rest + "=VALUE");
    } else {
      stage[rest] = value;
      origins.edits["stages." + head + "." + rest] = origin;
    }
  }
}

// One scalar of a field's type (bool, int, float or string), or a ConfigError naming it.
FieldValue convert_scalar(const FieldInfo& field, const YAML::Node& node, const std::string& what) {
  if (!node.IsScalar()) {
    if (std::holds_alternative<std::string*>(field.ptr) && node.IsNull()) return FieldValue(std::string());
    throw ConfigError(what + " must be " + type_name(field.ptr) + ", got " +
                      (node.IsSequence() ? "a list"
                       : node.IsMap()    ? "a mapping"
                                         : "nothing"));
  }
  try {
    return std::visit(
        [&](auto* p) -> FieldValue {
          using T = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, int64_t> || std::is_same_v<T, double> ||
                        std::is_same_v<T, std::string>) {
            return FieldValue(node.as<T>());
          } else {
            throw ConfigError(what + ": lists are not stage fields");
          }
        },
        field.ptr);
  } catch (const YAML::Exception&) {
    throw ConfigError(what + " must be " + type_name(field.ptr) + ", got '" + node.Scalar() + "'");
  }
}

// Reads the fields of `map` (other than the keys in `skip`) into the object behind `schema`.
void read_fields(const Schema& schema, const YAML::Node& map, const std::set<std::string>& skip,
                 const std::string& doc_prefix, const std::string& owner, const Origins& origins,
                 std::map<std::string, std::string>* field_origins) {
  std::vector<std::string> names;
  for (const auto& f : schema.fields()) names.push_back(f.path);
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (skip.count(key)) continue;
    const std::string where = origins.at(doc_prefix + key, kv.second);
    const FieldInfo* field = schema.find(key);
    if (!field) {
      std::vector<std::string> all = names;
      all.insert(all.end(), skip.begin(), skip.end());
      throw ConfigError(where + ": " + owner + " has no field '" + key + "'" + with_suggestion(key, all) +
                        " (its fields: " + join(names) + ")");
    }
    const std::string what = where + ": " + owner + "'s " + key;
    const FieldValue value = convert_scalar(*field, kv.second, what);
    const std::string bad = field->check.violation(value);
    if (!bad.empty()) throw ConfigError(what + " " + bad + ", got " + format_value(value));
    write_value(field->ptr, value);
    (*field_origins)[key] = where;
  }
}

std::vector<ConfigOverride> read_overrides(const YAML::Node& map, const std::string& doc_prefix,
                                           const std::string& owner, const Origins& origins) {
  std::vector<ConfigOverride> out;
  if (!map || map.IsNull()) return out;
  if (!map.IsMap())
    throw ConfigError(
        origins.at(doc_prefix, map) + ": " + owner +
        "'s overrides must be a mapping of config keys to values, e.g. {actor.optim.lr: 1.0e-3}");
  for (const auto& kv : map) {
    ConfigOverride o;
    o.key = kv.first.as<std::string>();
    o.where = origins.at(doc_prefix + "." + o.key, kv.second);
    for (auto [owned, why] : kOwnedKeys) {
      if (o.key != owned) continue;
      if (owner.rfind("stage ", 0) == 0)  // one stage's override: name that stage in the fix
        for (size_t at; (at = why.find("STAGE")) != std::string::npos;) why.replace(at, 5, owner.substr(6));
      throw ConfigError(o.where + ": " + owner + " overrides " + owned + "; " + why);
    }
    if (kv.second.IsSequence()) {
      o.is_list = true;
      for (const auto& item : kv.second) {
        if (!item.IsScalar())
          throw ConfigError(o.where + ": " + owner + "'s override " + o.key +
                            " must be a value or a list of values");
        o.values.push_back(item.Scalar());
      }
    } else if (kv.second.IsScalar() || kv.second.IsNull()) {
      o.values.push_back(kv.second.IsNull() ? "" : kv.second.Scalar());
    } else {
      throw ConfigError(o.where + ": " + owner + "'s override " + o.key +
                        " must be a value or a list of values");
    }
    out.push_back(std::move(o));
  }
  return out;
}

std::string read_string(const YAML::Node& node, const std::string& where, const std::string& what) {
  if (node.IsNull()) return "";
  if (!node.IsScalar()) throw ConfigError(where + ": " + what + " must be a string (a path)");
  return node.Scalar();
}

bool valid_stage_name(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  return true;
}

StageSpec read_stage(const std::string& name, const YAML::Node& node, const Origins& origins) {
  StageSpec stage;
  stage.name = name;
  const std::string prefix = "stages." + name + ".";
  stage.where = origins.at("stages." + name, node);
  const std::string owner = "stage " + name;
  if (!node.IsMap())
    throw ConfigError(stage.where + ": " + owner +
                      " must be a mapping with a kind (tiny-model, countdown-sft, train)");
  const YAML::Node kind = node["kind"];
  const std::vector<std::string> kinds = {"tiny-model", "countdown-sft", "train"};
  const std::string kind_name = kind && kind.IsScalar() ? kind.Scalar() : "";
  if (kind_name == "tiny-model") {
    stage.kind = StageKind::kTinyModel;
  } else if (kind_name == "countdown-sft") {
    stage.kind = StageKind::kCorpus;
  } else if (kind_name == "train") {
    stage.kind = StageKind::kTrain;
  } else {
    throw ConfigError((kind ? origins.at(prefix + "kind", kind) : stage.where) + ": " + owner +
                      "'s kind is " + (kind_name.empty() ? std::string("missing") : "'" + kind_name + "'") +
                      "; give one of " + join(kinds) + with_suggestion(kind_name, kinds));
  }
  if (node["out"])
    stage.out = read_string(node["out"], origins.at(prefix + "out", node["out"]), owner + "'s out");
  stage.overrides = read_overrides(node["overrides"], prefix + "overrides", owner, origins);
  const std::set<std::string> skip = {"kind", "out", "overrides"};
  if (stage.kind == StageKind::kTinyModel) {
    Schema s;
    stage.tiny_model.describe(s);
    read_fields(s, node, skip, prefix, owner, origins, &stage.origins);
  } else if (stage.kind == StageKind::kCorpus) {
    Schema s;
    stage.corpus.describe(s);
    read_fields(s, node, skip, prefix, owner, origins, &stage.origins);
    if (stage.corpus.config.empty())
      throw ConfigError(stage.where + ": " + owner + " needs config: FILE (the training config it serves)");
    if (stage.corpus.min_attempts > stage.corpus.attempts) {
      auto it = stage.origins.find("min_attempts");
      throw ConfigError((it == stage.origins.end() ? stage.where : it->second) + ": " + owner +
                        "'s min_attempts " + std::to_string(stage.corpus.min_attempts) +
                        " is more than its attempts " + std::to_string(stage.corpus.attempts) +
                        "; give at most attempts (0 = attempts)");
    }
    if (stage.corpus.compare_layout != "relation-first" && !stage.corpus.compare)
      throw ConfigError(stage.where + ": " + owner + "'s compare_layout " + stage.corpus.compare_layout +
                        " lays out comparisons, but there are none: add compare: true");
  } else {
    Schema s;
    stage.train.describe(s);
    read_fields(s, node, skip, prefix, owner, origins, &stage.origins);
    if (stage.train.config.empty())
      throw ConfigError(stage.where + ": " + owner + " needs config: FILE (a training config)");
    if (!stage.origins.count("steps"))
      throw ConfigError(stage.where + ": " + owner +
                        " needs steps: N (it is done when its checkpoint at step N is)");
  }
  return stage;
}

// Every string of a stage that may hold references, with where it was set.
std::vector<std::pair<std::string, std::string>> stage_strings(const StageSpec& s) {
  std::vector<std::pair<std::string, std::string>> out;
  auto add = [&](const std::string& field, const std::string& value) {
    auto it = s.origins.find(field);
    out.emplace_back(value,
                     (it == s.origins.end() ? s.where : it->second) + ": stage " + s.name + "'s " + field);
  };
  if (!s.out.empty()) add("out", s.out);
  if (s.kind == StageKind::kTinyModel) {
    add("model_config", s.tiny_model.model_config);
    add("expression_config", s.tiny_model.expression_config);
    add("trace_config", s.tiny_model.trace_config);
  } else if (s.kind == StageKind::kCorpus) {
    add("config", s.corpus.config);
  } else {
    add("config", s.train.config);
  }
  for (const auto& o : s.overrides)
    for (const auto& v : o.values)
      out.emplace_back(v, o.where + ": stage " + s.name + "'s override " + o.key);
  return out;
}

// Checks that every ${name} names dir, warm_model or an earlier stage (and what warm_model names
// comes before each stage that uses it).
void check_references(const Recipe& r) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < r.stages.size(); ++i) index[r.stages[i].name] = i;
  const std::vector<std::string> names = r.stage_names();
  std::vector<std::string> candidates = names;
  candidates.push_back("dir");
  candidates.push_back("warm_model");
  if (!referenced_names(r.dir, r.source + ": dir").empty())
    throw ConfigError(r.source + ": dir names a reference; give a plain path");
  // The stages warm_model may lead to.
  std::vector<std::pair<std::string, size_t>> warm_refs;
  for (const auto& [text, what] : {std::pair{r.warm_stored, std::string("warm_model.stored")},
                                   std::pair{r.warm_from_scratch, std::string("warm_model.from_scratch")}}) {
    for (const auto& n : referenced_names(text, r.source + ": " + what)) {
      if (n == "dir") continue;
      if (!index.count(n))
        throw ConfigError(r.source + ": " + what + " '" + text + "' names ${" + n + "}, which is no stage (" +
                          join(names) + ")" + with_suggestion(n, names));
      warm_refs.emplace_back(n, index[n]);
    }
  }
  for (size_t i = 0; i < r.stages.size(); ++i) {
    const StageSpec& s = r.stages[i];
    auto strings = stage_strings(s);
    for (const auto& o : r.overrides)
      for (const auto& v : o.values) strings.emplace_back(v, o.where + ": override " + o.key);
    for (const auto& [text, where] : strings) {
      for (const auto& n : referenced_names(text, where)) {
        if (n == "dir") continue;
        if (n == "warm_model") {
          if (r.warm_stored.empty())
            throw ConfigError(where + " names ${warm_model}, but the recipe gives no warm_model.stored");
          for (const auto& [w, at] : warm_refs)
            if (at >= i)
              throw ConfigError(where + " names ${warm_model}, which leads to stage " + w +
                                ", declared after stage " + s.name + "; list " + w + " first");
          continue;
        }
        auto it = index.find(n);
        if (it == index.end())
          throw ConfigError(where + " names ${" + n + "}, which is no stage, dir or warm_model" +
                            with_suggestion(n, candidates));
        if (it->second >= i)
          throw ConfigError(where + " names ${" + n + "}, " +
                            (it->second == i ? "its own product" : "a stage declared after it") +
                            "; a stage can only use the products of stages before it");
      }
    }
  }
}

Recipe read_document(const YAML::Node& root, const Origins& origins) {
  Recipe r;
  r.source = origins.source;
  if (!root.IsMap()) throw ConfigError(origins.source + ": a recipe is a mapping with dir and stages");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (std::find(kTopKeys.begin(), kTopKeys.end(), key) != kTopKeys.end()) continue;
    if (TrainConfig().schema().is_section(key))
      throw ConfigError(origins.at(key, kv.first) + ": '" + key +
                        "' is a section of a training config, not a " +
                        "recipe key; train with it as tinyzero-train --config " + origins.source +
                        ", or name it in a recipe stage (kind: train, config: " + origins.source + ")");
    throw ConfigError(origins.at(key, kv.first) + ": unknown recipe key '" + key + "'" +
                      with_suggestion(key, kTopKeys) + " (the keys: " + join(kTopKeys) + ")");
  }
  if (!root["dir"])
    throw ConfigError(origins.source + ": the recipe needs dir: DIR (where its stages write)");
  r.dir = read_string(root["dir"], origins.at("dir", root["dir"]), "dir");
  if (r.dir.empty()) throw ConfigError(origins.at("dir", root["dir"]) + ": dir is empty; give a directory");
  if (const YAML::Node warm = root["warm_model"]) {
    if (!warm.IsMap())
      throw ConfigError(origins.at("warm_model", warm) +
                        ": warm_model must be a mapping {stored: DIR, from_scratch: ${STAGE}}");
    for (const auto& kv : warm) {
      const std::string key = kv.first.as<std::string>();
      const std::string where = origins.at("warm_model." + key, kv.second);
      if (key == "stored") {
        r.warm_stored = read_string(kv.second, where, "warm_model.stored");
      } else if (key == "from_scratch") {
        r.warm_from_scratch = read_string(kv.second, where, "warm_model.from_scratch");
      } else {
        throw ConfigError(where + ": warm_model has no field '" + key + "'" +
                          with_suggestion(key, kWarmKeys) + " (its fields: stored, from_scratch)");
      }
    }
    if (r.warm_stored.empty() || r.warm_from_scratch.empty())
      throw ConfigError(
          origins.at("warm_model", warm) +
          ": warm_model needs both stored (the model used by default) and from_scratch (the stage "
          "product --from-scratch makes instead)");
  }
  r.overrides = read_overrides(root["overrides"], "overrides", "the recipe", origins);
  const YAML::Node stages = root["stages"];
  if (!stages || !stages.IsMap() || stages.size() == 0)
    throw ConfigError(origins.source + ": the recipe needs stages: a mapping of stage names to stages");
  for (const auto& kv : stages) {
    const std::string name = kv.first.as<std::string>();
    const std::string where = origins.at("stages." + name, kv.first);
    if (!valid_stage_name(name))
      throw ConfigError(where + ": stage name '" + name + "' may hold only letters, digits, - and _");
    if (std::find(kTopKeys.begin(), kTopKeys.end(), name) != kTopKeys.end())
      throw ConfigError(where + ": stage name '" + name + "' is a recipe key; name the stage otherwise");
    if (name == "warm_model")
      throw ConfigError(where + ": stage name 'warm_model' is taken by ${warm_model}");
    if (r.find(name)) throw ConfigError(where + ": stage " + name + " is declared twice");
    r.stages.push_back(read_stage(name, kv.second, origins));
  }
  if (const YAML::Node profiles = root["profiles"]) {
    if (!profiles.IsMap())
      throw ConfigError(origins.at("profiles", profiles) + ": profiles must be a mapping of names to edits");
    for (const auto& kv : profiles) r.profiles.push_back(kv.first.as<std::string>());
  }
  check_references(r);
  return r;
}

Recipe parse_recipe_node(YAML::Node root, const std::string& source, const RecipeEdits& edits) {
  Origins origins;
  origins.source = source;
  if (!root.IsMap()) throw ConfigError(source + ": a recipe is a mapping with dir and stages");
  for (const auto& name : edits.profiles) {
    const YAML::Node profiles = root["profiles"];
    std::vector<std::string> names;
    if (profiles && profiles.IsMap())
      for (const auto& kv : profiles) names.push_back(kv.first.as<std::string>());
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw ConfigError("--profile " + name + ": " + source + " has no such profile (" +
                        (names.empty() ? std::string("it has none") : "it has " + join(names)) + ")" +
                        with_suggestion(name, names));
    const YAML::Node profile = YAML::Clone(profiles[name]);
    if (!profile.IsMap())
      throw ConfigError(origins.at("profiles." + name, profile) + ": profile " + name +
                        " must be a mapping of edits, e.g. {sft.steps: 100}");
    for (const auto& kv : profile) {
      const std::string path = kv.first.as<std::string>();
      apply_edit(root, path, kv.second,
                 origins.at("profiles." + name + "." + path, kv.first) + " (profile " + name + ")", origins);
    }
  }
  for (const auto& text : edits.sets) {
    const size_t eq = text.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--set '" + text + "' must look like PATH=VALUE, e.g. --set sft.steps=100");
    apply_edit(root, text.substr(0, eq), parse_value(text.substr(eq + 1)), "--set '" + text + "'", origins);
  }
  if (!edits.dir.empty()) apply_edit(root, "dir", YAML::Node(edits.dir), "--dir " + edits.dir, origins);
  if (!edits.final_overrides.empty()) {
    const YAML::Node stages = root["stages"];
    if (!stages || !stages.IsMap() || stages.size() == 0)
      throw ConfigError(source + ": the recipe needs stages: a mapping of stage names to stages");
    std::string last;
    for (const auto& kv : stages) last = kv.first.as<std::string>();
    for (const auto& text : edits.final_overrides) {
      const size_t eq = text.find('=');
      if (eq == std::string::npos || eq == 0)
        throw ConfigError("override '" + text + "' must look like key.path=value, e.g. actor.optim.lr=1e-6");
      apply_edit(root, last + ".overrides." + text.substr(0, eq), parse_value(text.substr(eq + 1)),
                 "override '" + text + "' (of the last stage, " + last + ")", origins);
    }
  }
  return read_document(root, origins);
}

}  // namespace

Recipe parse_recipe_text(const std::string& yaml_text, const std::string& source, const RecipeEdits& edits) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ": not valid YAML: " + e.msg);
  }
  return parse_recipe_node(root, source, edits);
}

Recipe load_recipe(const std::string& path, const RecipeEdits& edits) {
  std::ifstream in(path);
  if (!in)
    throw ConfigError("recipe " + path +
                      " cannot be read; give a recipe file such as configs/tiny/demo.yaml");
  std::stringstream text;
  text << in.rdbuf();
  return parse_recipe_text(text.str(), path, edits);
}

std::string recipe_fields_reference() {
  std::string out;
  auto section = [&](const std::string& title, Schema& s) {
    out += title + "\n";
    for (const auto& f : s.fields()) {
      out += "  " + f.path + " (" + type_name(f.ptr) + ", default " + format_value(f.default_value) +
             "): " + f.help;
      const std::string check = f.check.describe();
      out += check.empty() ? "\n" : " [" + check + "]\n";
    }
  };
  TinyModelStageFields t;
  CorpusStageFields c;
  TrainStageFields tr;
  Schema st, sc, str;
  t.describe(st);
  c.describe(sc);
  tr.describe(str);
  out +=
      "Every stage: kind, out (where its product goes; default DIR/NAME, a corpus DIR/NAME.jsonl), overrides "
      "(config keys for the configs it reads, after the recipe's own overrides).\n";
  section("kind: tiny-model (product: OUT/model, its tokenizer in OUT/tokenizer)", st);
  section("kind: countdown-sft (product: the JSONL file OUT)", sc);
  section("kind: train (product: the checkpoint at steps in run directory OUT)", str);
  return out;
}

}  // namespace tinyzero
