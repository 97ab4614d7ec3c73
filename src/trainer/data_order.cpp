// Deterministic data order and seeds (see data_order.h).
#include "trainer/data_order.h"

#include <numeric>

#include "tinyzero/core/errors.h"

namespace tinyzero {

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t derive_seed(uint64_t base, uint64_t a, uint64_t b, uint64_t c) {
  return mix64(mix64(mix64(mix64(base) ^ a) ^ b) ^ c);
}

std::vector<int64_t> permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  uint64_t state = seed;
  for (int64_t i = n - 1; i > 0; --i) {
    state = mix64(state);
    // Multiply-shift maps the 64-bit draw to [0, i] without modulo bias worth mentioning for n < 2^32.
    const auto j =
        static_cast<int64_t>((static_cast<unsigned __int128>(state) * static_cast<uint64_t>(i + 1)) >> 64);
    std::swap(order[i], order[j]);
  }
  return order;
}

DataCursor::DataCursor(int64_t size, uint64_t seed, bool shuffle)
    : size_(size), seed_(seed), shuffle_(shuffle) {
  if (size <= 0)
    throw Error("the training set is empty; give data.train_files with problems or data.train_size >= 1");
  start_epoch();
}

void DataCursor::start_epoch() {
  if (shuffle_) {
    order_ = permutation(size_, derive_seed(seed_, static_cast<uint64_t>(epoch_)));
  } else {
    order_.resize(static_cast<size_t>(size_));
    std::iota(order_.begin(), order_.end(), 0);
  }
}

std::vector<int64_t> DataCursor::next(int64_t count) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(count));
  while (static_cast<int64_t>(out.size()) < count) {
    if (position_ == size_) {
      ++epoch_;
      position_ = 0;
      start_epoch();
    }
    out.push_back(order_[static_cast<size_t>(position_++)]);
  }
  return out;
}

void DataCursor::seek(int64_t epoch, int64_t position) {
  if (epoch < 0 || position < 0 || position > size_)
    throw Error("checkpoint data cursor (epoch " + std::to_string(epoch) + ", position " +
                std::to_string(position) + ") does not fit a training set of " + std::to_string(size_) +
                " problems; resume with the data settings of the original run");
  epoch_ = epoch;
  position_ = position;
  start_epoch();
}

}  // namespace tinyzero
