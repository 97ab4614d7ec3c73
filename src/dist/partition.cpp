// partition_by_size: contiguous ranges of tensors per rank with the smallest possible largest share.
#include "tinyzero/dist/partition.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "tinyzero/core/errors.h"

namespace tinyzero {
namespace {

// Ranks that greedy packing of numels[begin..] into bins of `cap` needs (cap >= every size).
int64_t parts_needed(const std::vector<int64_t>& numels, size_t begin, int64_t cap) {
  int64_t parts = 0, load = 0;
  for (size_t i = begin; i < numels.size(); ++i) {
    if (parts == 0 || load + numels[i] > cap) {
      ++parts;
      load = 0;
    }
    load += numels[i];
  }
  return parts;
}

}  // namespace

std::vector<int> partition_by_size(const std::vector<int64_t>& numels, int world) {
  if (world < 1) throw Error("partition_by_size: world size " + std::to_string(world) + " must be >= 1");
  int64_t total = 0, largest = 0;
  for (size_t i = 0; i < numels.size(); ++i) {
    if (numels[i] < 0)
      throw Error("partition_by_size: tensor " + std::to_string(i) + " has negative size " +
                  std::to_string(numels[i]));
    total += numels[i];
    largest = std::max(largest, numels[i]);
  }
  std::vector<int> owners(numels.size(), 0);
  if (world == 1 || numels.empty()) return owners;

  // The smallest capacity whose greedy packing fits in `world` ranks is the optimal largest share.
  int64_t lo = std::max<int64_t>(largest, 1), hi = std::max<int64_t>(total, 1);
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    if (parts_needed(numels, 0, mid) <= world)
      hi = mid;
    else
      lo = mid + 1;
  }
  const int64_t cap = lo;

  // Rank by rank: take at least one tensor, then more while that brings the share closer to an equal
  // split of what is left, never above cap, and never leaving more than the remaining ranks can hold.
  size_t begin = 0;
  int64_t left = total;
  for (int r = 0; r < world && begin < numels.size(); ++r) {
    const int ranks_after = world - r - 1;
    size_t end = begin;
    int64_t load = 0;
    if (ranks_after == 0) {
      end = numels.size();
    } else {
      const double target = static_cast<double>(left) / (world - r);
      while (end < numels.size() && load + numels[end] <= cap &&
             (end == begin || std::abs(load + numels[end] - target) <= std::abs(load - target))) {
        load += numels[end];
        ++end;
      }
      while (end < numels.size() && parts_needed(numels, end, cap) > ranks_after) {
        load += numels[end];  // stays <= cap: taking everything up to greedy's cut is always feasible
        ++end;
      }
    }
    for (size_t i = begin; i < end; ++i) {
      owners[i] = r;
      left -= numels[i];
    }
    begin = end;
  }
  return owners;
}

std::vector<int64_t> owned_sizes(const std::vector<int64_t>& numels, const std::vector<int>& owners,
                                 int world) {
  if (owners.size() != numels.size())
    throw Error("owned_sizes: " + std::to_string(owners.size()) + " owners for " +
                std::to_string(numels.size()) + " tensors");
  std::vector<int64_t> sizes(std::max(world, 0), 0);
  for (size_t i = 0; i < numels.size(); ++i) {
    if (owners[i] < 0 || owners[i] >= world)
      throw Error("owned_sizes: owner " + std::to_string(owners[i]) + " of tensor " + std::to_string(i) +
                  " is outside 0.." + std::to_string(world - 1));
    sizes[owners[i]] += numels[i];
  }
  return sizes;
}

}  // namespace tinyzero
