// Stop strings for generation: where a generated row's text first contains one of them. Used by the
// trainer's rollouts and `tinyzero-train generate --stop` (the generator itself knows no tokenizer).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tinyzero/tokenizer/tokenizer.h"

namespace tinyzero {

// For each row of generated ids: -1 when its decoded text contains none of `stops`, else the length of
// the shortest prefix whose text contains one (the row is cut there; the token in which the stop
// string ends is kept). One decode per row, plus a binary search over prefix lengths for rows that
// do stop: a prefix's text contains a stop string whenever a shorter prefix's text does.
std::vector<int64_t> stop_string_lengths(const Tokenizer& tokenizer,
                                         const std::vector<std::vector<int64_t>>& rows,
                                         const std::vector<std::string>& stops);

}  // namespace tinyzero
