// ${name} references in a recipe's strings: `${sft}` stands for the product of stage sft, `${dir}`
// for the recipe's directory, `${warm_model}` for the model training starts from (recipe.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace tinyzero {

// The names referenced in `text`, in order of appearance (repeats kept). A "$" not followed by "{" is
// plain text. Throws ConfigError (prefixed by `where`) for an unclosed "${" or an empty name.
std::vector<std::string> referenced_names(const std::string& text, const std::string& where);

// `text` with every ${name} replaced by value_of(name).
std::string substitute_references(const std::string& text,
                                  const std::function<std::string(const std::string&)>& value_of,
                                  const std::string& where);

}  // namespace tinyzero
