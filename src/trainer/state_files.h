// An optimizer's state in a checkpoint, written by every rank that keeps a part of it, read back at any
// world size and ZeRO stage.
//
// Rank r of n writers writes <stem>-rank<r>-of-<n>.safetensors: flat pieces of the whole state tensors
// (exp_avg.<parameter>, ...), each stored under the whole tensor's name, with its place - the whole
// shape and the offset of the piece in the flattened tensor - in the header's metadata ("layout"). So no
// rank ever holds more than its own part, and a reader takes from each file the ranges it needs. A
// checkpoint of the single-file layout (<stem>.safetensors, whole tensors) reads as well.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tinyzero/io/safetensors.h"

namespace tinyzero {

// A piece of a state tensor: elements [offset, offset + values.numel()) of the flattened whole tensor
// `name` of shape `shape`. `values` may live on any device; it is written flat.
struct StatePiece {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;
  at::Tensor values;
};

// "<stem>-rank<index>-of-<count>.safetensors".
std::string state_file_name(const std::string& stem, int index, int count);

// Writes `pieces` as file `index` of `count` of `stem` into `dir` (atomically; one piece at a time is
// copied to the host). Throws IoError.
void write_state_file(const std::string& dir, const std::string& stem, int index, int count,
                      const std::vector<StatePiece>& pieces);

// The state files of `stem` in a checkpoint directory, opened (memory-mapped) and checked whole: every
// file of the set present, every tensor's pieces covering it exactly once.
class StateFiles {
 public:
  // Throws IoError naming the directory and what is missing, overlapping or malformed.
  static StateFiles open(const std::string& dir, const std::string& stem);

  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // The whole tensor's shape (throws IoError when absent).
  const std::vector<int64_t>& shape(const std::string& name) const;
  // Elements [begin, end) of the flattened tensor `name`, a CPU tensor of its stored dtype (a view of the
  // mapped file when one piece holds them all).
  at::Tensor read(const std::string& name, int64_t begin, int64_t end) const;
  // The whole tensor, shaped.
  at::Tensor whole(const std::string& name) const;
  // Every tensor's name, sorted.
  std::vector<std::string> names() const;
  // How many files the state was written as.
  int files() const { return static_cast<int>(files_.size()); }

 private:
  struct Piece {
    size_t file;
    int64_t offset, numel;  // stored in its file under the whole tensor's name
  };
  struct Tensor {
    std::vector<int64_t> shape;
    int64_t numel = 0;
    std::vector<Piece> pieces;  // by offset
  };
  const Tensor& find(const std::string& name) const;

  std::string where_;  // for errors: the directory and stem
  std::vector<SafetensorsFile> files_;
  std::map<std::string, Tensor> tensors_;
};

}  // namespace tinyzero
