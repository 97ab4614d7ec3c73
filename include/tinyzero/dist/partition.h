// Assignment of tensors to ranks for optimizer-state sharding (ZeRO stage 1).
#pragma once

#include <cstdint>
#include <vector>

namespace tinyzero {

// Owner rank of each tensor (sizes in elements, in model order): every rank owns one contiguous range
// (possibly empty when there are fewer tensors than ranks), owners never decrease along the list, and
// the largest rank's total is the smallest any contiguous split can achieve; within that bound each
// rank's share is kept near an equal split of what is left. Throws Error for world < 1 or a negative
// size. Deterministic: every rank computes the same answer from the same sizes.
std::vector<int> partition_by_size(const std::vector<int64_t>& numels, int world);

// Total size owned by each rank under `owners` (world entries).
std::vector<int64_t> owned_sizes(const std::vector<int64_t>& numels, const std::vector<int>& owners,
                                 int world);

}  // namespace tinyzero
