// Differences between two resolved configs (see config_diff.h).
#include "tinyzero/core/config_diff.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>

#include "tinyzero/core/errors.h"

namespace tinyzero {

namespace {

// dotted key -> the value as flow-style YAML text.
void flatten(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (node.IsMap()) {
    for (const auto& item : node) {
      const std::string key = item.first.as<std::string>();
      flatten(item.second, prefix.empty() ? key : prefix + "." + key, out);
    }
    return;
  }
  YAML::Emitter emitter;
  emitter << YAML::Flow << node;
  out[prefix] = emitter.c_str();
}

std::map<std::string, std::string> flat(const std::string& text, const char* which) {
  std::map<std::string, std::string> out;
  try {
    flatten(YAML::Load(text), "", out);
  } catch (const YAML::Exception& e) {
    throw ConfigError(std::string("the ") + which + " config is not valid YAML: " + e.what());
  }
  return out;
}

}  // namespace

std::vector<ConfigChange> config_changes(const std::string& before_yaml, const std::string& after_yaml) {
  const auto before = flat(before_yaml, "earlier"), after = flat(after_yaml, "new");
  std::vector<ConfigChange> changes;
  const std::string absent = "(absent)";
  for (const auto& [key, value] : before) {
    const auto it = after.find(key);
    if (it == after.end())
      changes.push_back({key, value, absent});
    else if (it->second != value)
      changes.push_back({key, value, it->second});
  }
  for (const auto& [key, value] : after)
    if (!before.count(key)) changes.push_back({key, absent, value});
  std::sort(changes.begin(), changes.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return changes;
}

}  // namespace tinyzero
