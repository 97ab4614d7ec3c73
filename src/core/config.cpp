// Loading, overriding, validating and printing TrainConfig (the fields are in config_fields.cpp).
#include "tinyzero/core/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tinyzero/core/errors.h"

namespace fs = std::filesystem;

namespace tinyzero {

Schema TrainConfig::schema() {
  Schema s;
  describe(s);
  return s;
}

bool TrainConfig::needs_critic() const { return algorithm.name == "ppo"; }

bool TrainConfig::needs_reference() const {
  if (algorithm.name == "sft") return false;
  return (actor.use_kl_loss && actor.kl_loss_coef > 0) ||
         (algorithm.use_kl_in_reward && algorithm.kl_ctrl.kl_coef > 0);
}

// ------------------------------------------------------------------------------------------------
// Edit distance for "did you mean".

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string last_component(const std::string& path) {
  auto dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::string::npos;
  for (const auto& c : candidates) {
    size_t d = edit_distance(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  // Close enough: at most a third of the word's length wrong (and at least one edit allowed).
  size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_distance <= limit ? best : "";
}

// ------------------------------------------------------------------------------------------------
// YAML -> fields.

namespace {

struct Source {
  std::string name;  // file path or "override 'a=b'"
  bool is_file;
};

std::string where(const Source& src, const YAML::Node& node) {
  if (!src.is_file) return src.name;
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return src.name;
  return src.name + ":" + std::to_string(mark.line + 1);
}

// Suggestion for an unknown key: a sibling with a close name, or any field whose last component
// matches (the user put it in the wrong section).
std::string suggest(const Schema& schema, const std::string& path) {
  std::vector<std::string> all;
  for (const auto& f : schema.fields()) all.push_back(f.path);
  for (const auto& s : schema.sections()) all.push_back(s.path);
  std::string best = closest_match(path, all);
  if (!best.empty()) return best;
  std::string leaf = last_component(path);
  std::vector<std::string> leaves;
  for (const auto& f : schema.fields()) leaves.push_back(last_component(f.path));
  std::string leaf_match = closest_match(leaf, leaves);
  if (leaf_match.empty()) return "";
  for (const auto& f : schema.fields())
    if (last_component(f.path) == leaf_match) return f.path;
  return "";
}

[[noreturn]] void unknown_key(const Schema& schema, const std::string& path, const std::string& at) {
  std::string msg = "unknown config key '" + path + "' (" + at + ")";
  std::string s = suggest(schema, path);
  if (!s.empty())
    msg += "; did you mean '" + s + "'?";
  else
    msg += "; run `tinyzero-train config reference` for the list of keys";
  throw ConfigError(msg);
}

bool parse_bool(const std::string& text, bool* out) {
  std::string t;
  for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t == "true" || t == "yes" || t == "on") return *out = true, true;
  if (t == "false" || t == "no" || t == "off") return *out = false, true;
  return false;
}

bool parse_int(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') {
    // Accept integral floats written in scientific notation ("1e6") when exact.
    char* fend = nullptr;
    double d = std::strtod(text.c_str(), &fend);
    if (*fend != '\0' || !std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9e15) return false;
    *out = static_cast<int64_t>(d);
    return true;
  }
  *out = v;
  return true;
}

bool parse_double(const std::string& text, double* out) {
  if (text.empty()) return false;
  if (text == ".inf" || text == "+.inf") return *out = INFINITY, true;
  if (text == "-.inf") return *out = -INFINITY, true;
  if (text == ".nan") return *out = NAN, true;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (*end != '\0') return false;
  *out = v;
  return true;
}

template <class T>
bool parse_scalar(const std::string& text, T* out);
template <>
bool parse_scalar(const std::string& t, bool* o) {
  return parse_bool(t, o);
}
template <>
bool parse_scalar(const std::string& t, int64_t* o) {
  return parse_int(t, o);
}
template <>
bool parse_scalar(const std::string& t, double* o) {
  return parse_double(t, o);
}
template <>
bool parse_scalar(const std::string& t, std::string* o) {
  return *o = t, true;
}

std::string node_text(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsNull()) return "null";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "?";
}

// Converts `node` to the field's type, or throws naming the key and the expected type.
FieldValue convert(const FieldInfo& field, const YAML::Node& node, const std::string& at) {
  auto fail = [&]() -> FieldValue {
    throw ConfigError("config key '" + field.path + "' must be " + type_name(field.ptr) + ", got " +
                      node_text(node) + " (" + at + ")");
  };
  return std::visit(
      [&](auto* p) -> FieldValue {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, int64_t> || std::is_same_v<T, double> ||
                      std::is_same_v<T, std::string>) {
          if constexpr (std::is_same_v<T, std::string>) {
            if (node.IsNull()) return FieldValue(std::string());
          }
          if (!node.IsScalar()) return fail();
          T v{};
          if (!parse_scalar(node.Scalar(), &v)) return fail();
          return FieldValue(v);
        } else {
          using E = typename T::value_type;
          T out;
          if (node.IsNull()) return FieldValue(out);
          if (!node.IsSequence()) {
            // A single scalar is a list of one.
            if (!node.IsScalar()) return fail();
            E v{};
            if (!parse_scalar(node.Scalar(), &v)) return fail();
            out.push_back(v);
            return FieldValue(out);
          }
          for (const auto& item : node) {
            E v{};
            if (!item.IsScalar() || !parse_scalar(item.Scalar(), &v)) return fail();
            out.push_back(v);
          }
          return FieldValue(out);
        }
      },
      field.ptr);
}

void apply_node(const Schema& schema, const std::string& prefix, const YAML::Node& map, const Source& src,
                ConfigOrigins& origins) {
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) throw ConfigError("config keys must be names (" + where(src, kv.first) + ")");
    const std::string key = kv.first.Scalar();
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    const std::string at = where(src, kv.first);
    if (prefix.empty() && key == "extends") continue;  // handled by the file loader
    if (!seen.insert(key).second) throw ConfigError("config key '" + path + "' appears twice (" + at + ")");
    if (schema.is_section(path)) {
      if (kv.second.IsNull()) continue;
      if (!kv.second.IsMap())
        throw ConfigError("config key '" + path + "' is a section and needs a mapping of keys, got " +
                          node_text(kv.second) + " (" + at + ")");
      apply_node(schema, path, kv.second, src, origins);
      continue;
    }
    const FieldInfo* field = schema.find(path);
    if (!field) unknown_key(schema, path, at);
    write_value(field->ptr, convert(*field, kv.second, at));
    origins[path] = at;
  }
}

YAML::Node parse_yaml(const std::string& text, const std::string& name) {
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap())
      throw ConfigError("config " + name + " must be a mapping of sections (e.g. `trainer:`)");
    return root;
  } catch (const YAML::Exception& e) {
    throw ConfigError("config " + name + ":" + std::to_string(e.mark.line + 1) +
                      ": YAML syntax error: " + e.msg);
  }
}

std::string read_text_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw ConfigError("config file '" + path +
                      "' does not exist; pass an existing YAML file to --config (see configs/)");
  if (fs::is_directory(path, ec))
    throw ConfigError("config file '" + path + "' is a directory, not a YAML file");
  std::ifstream in(path);
  if (!in) throw ConfigError("config file '" + path + "' cannot be read (permissions?)");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Applies a file and, first, the file it extends (relative paths resolve from the file's folder).
void apply_file(TrainConfig& config, ConfigOrigins& origins, const std::string& path,
                std::vector<std::string>& chain) {
  std::string canonical = fs::weakly_canonical(path).string();
  if (std::find(chain.begin(), chain.end(), canonical) != chain.end())
    throw ConfigError("config '" + path + "' extends itself through a cycle of `extends:`; remove one link");
  chain.push_back(canonical);
  YAML::Node root = parse_yaml(read_text_file(path), path);
  if (root["extends"]) {
    const YAML::Node ext = root["extends"];
    if (!ext.IsScalar())
      throw ConfigError("config key 'extends' must be a file path (" + where({path, true}, ext) + ")");
    fs::path base = fs::path(ext.Scalar());
    if (base.is_relative()) base = fs::path(path).parent_path() / base;
    apply_file(config, origins, base.string(), chain);
  }
  Schema schema = config.schema();
  apply_node(schema, "", root, {path, true}, origins);
}

}  // namespace

void apply_override(TrainConfig& config, ConfigOrigins& origins, const std::string& text) {
  const std::string src = "override '" + text + "'";
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError("command-line " + src + " must look like key.path=value, e.g. actor.optim.lr=1e-6");
  std::string key = text.substr(0, eq);
  std::string value = text.substr(eq + 1);
  Schema schema = config.schema();
  const FieldInfo* field = schema.find(key);
  if (!field) {
    if (schema.is_section(key))
      throw ConfigError("command-line " + src + " names the section '" + key +
                        "'; set one of its keys, e.g. '" + key + ".<key>=value'");
    unknown_key(schema, key, "command-line " + src);
  }
  YAML::Node node;
  try {
    node = YAML::Load(value);
  } catch (const YAML::Exception&) {
    node = YAML::Node(value);  // not valid YAML: take the text as a plain string
  }
  if (value.empty()) node = YAML::Node(std::string());
  write_value(field->ptr, convert(*field, node, "command-line " + src));
  origins[key] = "command-line " + src;
}

// ------------------------------------------------------------------------------------------------
// Validation.

namespace {

std::string origin_of(const ConfigOrigins& origins, const std::string& key) {
  auto it = origins.find(key);
  return it == origins.end() ? "default" : it->second;
}

// "key (value, from origin)" for messages about several keys.
std::string describe_key(const TrainConfig& config, const ConfigOrigins& origins, const std::string& key) {
  TrainConfig copy = config;
  Schema schema = copy.schema();
  const FieldInfo* f = schema.find(key);
  return key + " = " + format_value(read_value(f->ptr)) + " (" + origin_of(origins, key) + ")";
}

std::string divisors_hint(int64_t n, int64_t near) {
  int64_t best = 1;
  for (int64_t d = 1; d <= n; ++d)
    if (n % d == 0 && std::llabs(d - near) < std::llabs(best - near)) best = d;
  return std::to_string(best);
}

}  // namespace

void validate_config(const TrainConfig& config, const ConfigOrigins& origins) {
  TrainConfig copy = config;
  Schema schema = copy.schema();
  for (const auto& f : schema.fields()) {
    std::string bad = f.check.violation(read_value(f.ptr));
    if (!bad.empty())
      throw ConfigError("config key '" + f.path + "' " + bad + ", got " + format_value(read_value(f.ptr)) +
                        " (" + origin_of(origins, f.path) + ")");
  }
  auto fail = [&](const std::vector<std::string>& keys, const std::string& rule, const std::string& fix) {
    std::string msg = "inconsistent config: " + rule + ": ";
    for (size_t i = 0; i < keys.size(); ++i) msg += (i ? ", " : "") + describe_key(config, origins, keys[i]);
    throw ConfigError(msg + "; " + fix);
  };
  const auto& d = config.data;
  const auto& a = config.actor;
  const auto& r = config.rollout;
  const std::string& algo = config.algorithm.name;

  if (d.countdown.min_numbers > d.countdown.max_numbers)
    fail({"data.countdown.min_numbers", "data.countdown.max_numbers"}, "min_numbers exceeds max_numbers",
         "make data.countdown.min_numbers <= data.countdown.max_numbers");
  if (d.countdown.min_number > d.countdown.max_number)
    fail({"data.countdown.min_number", "data.countdown.max_number"}, "min_number exceeds max_number",
         "make data.countdown.min_number <= data.countdown.max_number");
  if (d.countdown.min_target > d.countdown.max_target)
    fail({"data.countdown.min_target", "data.countdown.max_target"}, "min_target exceeds max_target",
         "make data.countdown.min_target <= data.countdown.max_target");
  if (d.train_batch_size % a.ppo_mini_batch_size != 0)
    fail({"data.train_batch_size", "actor.ppo_mini_batch_size"},
         "the prompts of a step must split into whole mini-batches",
         "set actor.ppo_mini_batch_size to a divisor of data.train_batch_size, e.g. " +
             divisors_hint(d.train_batch_size, a.ppo_mini_batch_size));
  const int64_t n = algo == "sft" ? 1 : r.n;
  const int64_t mini_sequences = a.ppo_mini_batch_size * n;
  if (!a.use_dynamic_bsz && mini_sequences % a.ppo_micro_batch_size != 0)
    fail({"actor.ppo_mini_batch_size", "rollout.n", "actor.ppo_micro_batch_size"},
         "a mini-batch of ppo_mini_batch_size * n sequences must split into whole micro-batches",
         "set actor.ppo_micro_batch_size to a divisor of " + std::to_string(mini_sequences) + ", e.g. " +
             divisors_hint(mini_sequences, a.ppo_micro_batch_size));
  if (config.needs_critic() && !a.use_dynamic_bsz && mini_sequences % config.critic.ppo_micro_batch_size != 0)
    fail({"actor.ppo_mini_batch_size", "rollout.n", "critic.ppo_micro_batch_size"},
         "a mini-batch of ppo_mini_batch_size * n sequences must split into whole critic micro-batches",
         "set critic.ppo_micro_batch_size to a divisor of " + std::to_string(mini_sequences) + ", e.g. " +
             divisors_hint(mini_sequences, config.critic.ppo_micro_batch_size));
  if ((algo == "grpo" || algo == "rloo") && r.n < 2)
    fail({"algorithm.name", "rollout.n"}, algo + " compares responses within a group of rollout.n per prompt",
         "set rollout.n >= 2 (GRPO commonly uses 5-16)");
  if ((algo == "grpo" || algo == "rloo") && r.n > 1 && r.temperature == 0)
    fail({"algorithm.name", "rollout.temperature"},
         "greedy sampling makes every response of a group identical",
         "set rollout.temperature > 0 (1.0 is usual)");
  if (r.reuse_log_probs && algo != "sft" && (r.top_k > 0 || r.top_p < 1.0 || r.temperature == 0))
    fail({"rollout.reuse_log_probs", "rollout.top_k", "rollout.top_p", "rollout.temperature"},
         "the sampler's log-probs are those of the policy only when sampling is unfiltered",
         "set rollout.top_k=0, rollout.top_p=1 and rollout.temperature > 0, or "
         "rollout.reuse_log_probs=false");
  if (algo == "sft" && d.train_files.empty())
    fail({"algorithm.name", "data.train_files"}, "sft needs prompt/response pairs",
         "set data.train_files to a JSONL file of {\"prompt\": ..., \"response\": ...} lines");
  if (config.algorithm.use_kl_in_reward && a.use_kl_loss)
    fail({"algorithm.use_kl_in_reward", "actor.use_kl_loss"}, "the KL would be counted twice",
         "use either the KL in the reward (PPO) or the KL loss (GRPO), not both");
  if (config.algorithm.filter_groups && r.n < 2)
    fail({"algorithm.filter_groups", "rollout.n"},
         "dynamic sampling drops groups whose rewards are all equal",
         "set rollout.n >= 2 or algorithm.filter_groups=false");
  if (config.algorithm.overlong_buffer.enable &&
      config.algorithm.overlong_buffer.len >= d.max_response_length)
    fail({"algorithm.overlong_buffer.len", "data.max_response_length"},
         "the overlong buffer must be shorter than the response limit",
         "set algorithm.overlong_buffer.len below data.max_response_length");
  if (config.trainer.resume.empty())
    fail({"trainer.resume"}, "resume needs a value", "use auto, off or a checkpoint directory");
  if (config.trainer.run_dir.empty())
    fail({"trainer.run_dir"}, "the run needs a directory", "set trainer.run_dir, e.g. runs/my-run");
  if (config.distributed.backend == "nccl" && config.trainer.device == "cpu")
    fail({"distributed.backend", "trainer.device"}, "NCCL only moves CUDA tensors",
         "use distributed.backend=gloo on cpu, or trainer.device=cuda");
}

LoadedConfig load_config(const std::string& path, const std::vector<std::string>& overrides) {
  LoadedConfig out;
  std::vector<std::string> chain;
  apply_file(out.config, out.origins, path, chain);
  for (const auto& o : overrides) apply_override(out.config, out.origins, o);
  validate_config(out.config, out.origins);
  return out;
}

LoadedConfig load_config_text(const std::string& yaml_text, const std::string& source,
                              const std::vector<std::string>& overrides) {
  LoadedConfig out;
  YAML::Node root = parse_yaml(yaml_text, source);
  if (root["extends"])
    throw ConfigError("config " + source + ": `extends:` needs a config file, not inline text");
  Schema schema = out.config.schema();
  apply_node(schema, "", root, {source, true}, out.origins);
  for (const auto& o : overrides) apply_override(out.config, out.origins, o);
  validate_config(out.config, out.origins);
  return out;
}

// ------------------------------------------------------------------------------------------------
// Output.

std::string dump_config(const TrainConfig& config, bool with_comments) {
  TrainConfig copy = config;
  Schema schema = copy.schema();
  std::ostringstream out;
  std::vector<std::string> open;  // sections currently open
  auto split = [](const std::string& path) {
    std::vector<std::string> parts;
    std::stringstream ss(path);
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    return parts;
  };
  for (const auto& f : schema.fields()) {
    auto parts = split(f.path);
    std::vector<std::string> sections(parts.begin(), parts.end() - 1);
    size_t common = 0;
    while (common < open.size() && common < sections.size() && open[common] == sections[common]) ++common;
    open.resize(common);
    for (size_t i = common; i < sections.size(); ++i) {
      std::string path;
      for (size_t j = 0; j <= i; ++j) path += (j ? "." : "") + sections[j];
      std::string help;
      for (const auto& s : schema.sections())
        if (s.path == path) help = s.help;
      out << std::string(2 * i, ' ') << sections[i] << ":";
      if (with_comments && !help.empty()) out << "  # " << help;
      out << "\n";
      open.push_back(sections[i]);
    }
    out << std::string(2 * sections.size(), ' ') << parts.back() << ": " << format_value(read_value(f.ptr));
    if (with_comments) out << "  # " << f.help;
    out << "\n";
  }
  return out.str();
}

std::string config_reference_markdown() {
  TrainConfig config;
  Schema schema = config.schema();
  std::ostringstream out;
  std::string current;
  for (const auto& f : schema.fields()) {
    std::string top = f.path.substr(0, f.path.find('.'));
    if (top != current) {
      current = top;
      std::string help;
      for (const auto& s : schema.sections())
        if (s.path == top) help = s.help;
      out << "\n**" << top << "**: " << help << "\n\n";
      out << "| key | type | default | allowed | description |\n|---|---|---|---|---|\n";
    }
    std::string allowed = f.check.describe();
    std::string def = format_value(f.default_value);
    auto escape = [](std::string s) {
      std::string o;
      for (char c : s) o += c == '|' ? std::string("\\|") : std::string(1, c);
      return o;
    };
    out << "| `" << f.path << "` | " << type_name(f.ptr) << " | `" << escape(def) << "` | " << escape(allowed)
        << " | " << escape(f.help) << " |\n";
  }
  return out.str();
}

}  // namespace tinyzero
