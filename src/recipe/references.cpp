// ${name} references (see references.h).
#include "tinyzero/recipe/references.h"

#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

// Calls on_text(literal) and on_name(name) for the pieces of `text`, in order.
void split_references(const std::string& text, const std::string& where,
                      const std::function<void(const std::string&)>& on_text,
                      const std::function<void(const std::string&)>& on_name) {
  size_t at = 0;
  while (at < text.size()) {
    const size_t open = text.find("${", at);
    if (open == std::string::npos) {
      on_text(text.substr(at));
      return;
    }
    on_text(text.substr(at, open - at));
    const size_t close = text.find('}', open + 2);
    if (close == std::string::npos)
      throw ConfigError(where + ": '" + text + "' opens a reference with ${ but never closes it with }");
    const std::string name = text.substr(open + 2, close - open - 2);
    if (name.empty())
      throw ConfigError(where + ": '" + text +
                        "' has an empty reference ${}; name a stage, dir or warm_model");
    on_name(name);
    at = close + 1;
  }
}

}  // namespace

std::vector<std::string> referenced_names(const std::string& text, const std::string& where) {
  std::vector<std::string> names;
  split_references(
      text, where, [](const std::string&) {}, [&](const std::string& n) { names.push_back(n); });
  return names;
}

std::string substitute_references(const std::string& text,
                                  const std::function<std::string(const std::string&)>& value_of,
                                  const std::string& where) {
  std::string out;
  split_references(
      text, where, [&](const std::string& s) { out += s; },
      [&](const std::string& n) { out += value_of(n); });
  return out;
}

}  // namespace tinyzero
