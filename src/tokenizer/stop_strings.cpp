// Stop-string search over generated rows (see stop_strings.h).
#include "tinyzero/tokenizer/stop_strings.h"

namespace tinyzero {

namespace {

bool contains_any(const std::string& text, const std::vector<std::string>& stops) {
  for (const auto& s : stops)
    if (text.find(s) != std::string::npos) return true;
  return false;
}

}  // namespace

std::vector<int64_t> stop_string_lengths(const Tokenizer& tokenizer,
                                         const std::vector<std::vector<int64_t>>& rows,
                                         const std::vector<std::string>& stops) {
  std::vector<int64_t> out;
  out.reserve(rows.size());
  for (const auto& row : rows) {
    if (!contains_any(tokenizer.decode(row), stops)) {
      out.push_back(-1);
      continue;
    }
    // Smallest n in [1, size] whose prefix text contains a stop string; the whole row does.
    size_t lo = 1, hi = row.size();
    while (lo < hi) {
      const size_t mid = lo + (hi - lo) / 2;
      if (contains_any(tokenizer.decode(std::vector<int64_t>(row.begin(), row.begin() + mid)), stops))
        hi = mid;
      else
        lo = mid + 1;
    }
    out.push_back(static_cast<int64_t>(hi));
  }
  return out;
}

}  // namespace tinyzero
