// Hugging Face model directories: read all weights (single file or shards), write a directory that
// transformers' from_pretrained loads as is (config, weights, tokenizer files), atomically.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "tinyzero/io/safetensors.h"

namespace tinyzero {

// All tensors of a Hugging Face model directory: model.safetensors, or when there is none (the order
// of transformers' from_pretrained) the shards listed in model.safetensors.index.json ("weight_map"),
// every shard opened and validated up front. Tensors are
// memory-mapped views (see SafetensorsFile::tensor); copies of an HfWeights share the mappings.
class HfWeights {
 public:
  // Throws IoError naming the directory, file or tensor: no weights file, a bad index, a shard that
  // is missing or corrupt, a tensor listed in the index but absent from its shard, or a tensor stored
  // in two shards.
  static HfWeights open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  // Every tensor name, sorted.
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const;
  // The header entry (dtype, shape) of `name`, or nullptr when absent.
  const TensorEntry* find(const std::string& name) const;
  // A CPU tensor in the file's dtype. Throws IoError naming the tensor and the directory when absent.
  at::Tensor tensor(const std::string& name) const;
  // Path of the file that holds `name` (one of files()). Throws IoError like tensor() when absent.
  const std::string& file_of(const std::string& name) const;
  // The opened files (one, or one per shard).
  const std::vector<SafetensorsFile>& files() const { return files_; }

 private:
  size_t file_index(const std::string& name) const;  // index in files_; throws IoError when absent
  std::string dir_;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, size_t> where_;  // tensor name -> index in files_
};

struct HfCheckpoint {
  nlohmann::json config;             // written as config.json (must be an object)
  nlohmann::json generation_config;  // generation_config.json (skipped when null)
  // Tensors under their HF names, written in this order; the caller leaves out a tied lm_head.
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  // When not empty: copy tokenizer.json, tokenizer_config.json, vocab.json, merges.txt, tokenizer.model,
  // special_tokens_map.json, added_tokens.json, chat_template.jinja from here, those that exist.
  std::string tokenizer_source_dir;
  // Weights above this size are split as transformers does: model-0000i-of-0000n.safetensors plus
  // model.safetensors.index.json. A tensor larger than the limit gets a shard of its own.
  int64_t max_shard_bytes = 5'000'000'000;
  // When not Undefined, floating-point tensors are stored in this dtype, each converted (and moved to
  // the CPU) only while it is written: pass the parameters themselves, on any device, and no copy of
  // the whole model is made. Undefined: each tensor keeps its dtype. (config's torch_dtype is the
  // caller's to set.)
  c10::ScalarType float_dtype = c10::ScalarType::Undefined;
  // When set, tensors only describe (shape, dtype) and fetch(i) gives tensors[i]'s data as it is
  // written, in hf_checkpoint_write_order (see TensorFetch in safetensors.h).
  TensorFetch fetch;
};

// The indices of `ckpt.tensors` with data, in the order save_hf_checkpoint writes them (file by file).
std::vector<size_t> hf_checkpoint_write_order(const HfCheckpoint& ckpt);

// The tokenizer files save_hf_checkpoint copies.
const std::vector<std::string>& hf_tokenizer_files();

// Writes `ckpt` into a temporary sibling directory of `dir`, then moves it into place, replacing an
// existing `dir` only once the new one is complete (atomically where the filesystem supports
// renameat2(RENAME_EXCHANGE)). Shards are written one at a time. An existing `dir` is replaced only if
// it is empty or holds a config.json (it looks like a checkpoint); otherwise IoError, so a mistyped
// path never deletes unrelated files.
void save_hf_checkpoint(const std::string& dir, const HfCheckpoint& ckpt);

}  // namespace tinyzero
