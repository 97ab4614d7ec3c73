#include "trainer/rank_stats.h"

#include <algorithm>

#include "tinyzero/core/errors.h"

namespace tinyzero {

RankStats& RankStats::add(const std::string& name, double value) {
  if (std::find(names_.begin(), names_.end(), name) != names_.end())
    throw Error("internal: statistic '" + name + "' added twice");
  names_.push_back(name);
  values_.push_back(value);
  return *this;
}

void RankStats::reduce(ProcessGroup& pg) { values_ = pg.all_reduce(values_, op_); }

double RankStats::operator[](const std::string& name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it == names_.end()) throw Error("internal: no statistic '" + name + "'");
  return values_[static_cast<size_t>(it - names_.begin())];
}

}  // namespace tinyzero
