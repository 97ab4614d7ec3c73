// Which keys differ between two resolved configs (YAML as dump_config writes it), by dotted path:
// what a resume compares between the checkpoint's config and the new one.
#pragma once

#include <string>
#include <vector>

namespace tinyzero {

struct ConfigChange {
  std::string key;     // e.g. "actor.optim.lr"
  std::string before;  // the value in `before` ("(absent)" when the key is new)
  std::string after;   // the value in `after` ("(absent)" when the key is gone)
};

// Leaf-by-leaf differences (a sequence is one value), sorted by key. Throws ConfigError when either text
// is not YAML.
std::vector<ConfigChange> config_changes(const std::string& before_yaml, const std::string& after_yaml);

}  // namespace tinyzero
