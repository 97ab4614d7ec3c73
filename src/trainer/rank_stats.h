// Named statistics reduced over ranks in one collective: each rank adds its values under names, one
// all_reduce combines them, and they are read back by name (no indices into a vector of doubles).
#pragma once

#include <string>
#include <vector>

#include "tinyzero/dist/process_group.h"

namespace tinyzero {

class RankStats {
 public:
  explicit RankStats(ReduceOp op) : op_(op) {}
  // Adds a value under a new name (throws Error for a name given twice).
  RankStats& add(const std::string& name, double value);
  // Combines every rank's values (sum, max or min); every rank must add the same names in the same order.
  void reduce(ProcessGroup& pg);
  // A value by name (after reduce: over all ranks); throws Error for an unknown name.
  double operator[](const std::string& name) const;

 private:
  ReduceOp op_;
  std::vector<std::string> names_;
  std::vector<double> values_;
};

}  // namespace tinyzero
