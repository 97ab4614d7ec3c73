// safetensors files: a bounds-checked, memory-mapped reader and an atomic, streaming writer.
//
// Format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length N, N bytes
// of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
// "__metadata__": {"k": "v"}}, then the data section; offsets are relative to the data section.
// Every field of the header is validated when a file is opened, so a corrupt or truncated file is an
// IoError naming the file (and the tensor), never a crash or garbage weights.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tinyzero {

// One tensor of a safetensors header.
struct TensorEntry {
  std::string name;
  std::string dtype;            // "F32", "BF16", "F16", ... as written in the file
  std::vector<int64_t> shape;   // may be empty (a scalar)
  uint64_t begin = 0, end = 0;  // byte offsets in the data section, end - begin == numel * element size
};

// Bytes per element of a safetensors dtype name ("F32" -> 4); 0 when the name is unknown.
size_t safetensors_dtype_size(const std::string& dtype);

// safetensors dtype name of a torch dtype (kFloat -> "F32"); throws IoError when it has none.
std::string safetensors_dtype_name(c10::ScalarType dtype);

// The dtype save_safetensors stores `tensor` in: `float_dtype` for a floating-point tensor when it is
// not Undefined, else the tensor's own.
c10::ScalarType safetensors_stored_dtype(const at::Tensor& tensor, c10::ScalarType float_dtype);
// The bytes save_safetensors stores for `tensor` (its elements in safetensors_stored_dtype).
uint64_t safetensors_stored_bytes(const at::Tensor& tensor, c10::ScalarType float_dtype);

// A safetensors file opened read-only and memory-mapped (copy-on-write: writing into a returned tensor
// never touches the file). Copies are cheap and share the mapping; the mapping lives as long as the
// last SafetensorsFile or tensor that uses it.
class SafetensorsFile {
 public:
  // Maps `path` and validates its whole header. Throws IoError naming the file (and the tensor).
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Tensors in the order of their data offsets.
  const std::vector<TensorEntry>& entries() const { return entries_; }
  // The "__metadata__" object (transformers writes {"format": "pt"}); empty when absent.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The entry called `name`, or nullptr when the file has none.
  const TensorEntry* find(const std::string& name) const;
  // A CPU tensor of the file's dtype viewing the mapped bytes (zero copy; the tensor keeps the mapping
  // alive). Throws IoError naming the tensor when it is absent or its dtype has no torch equivalent.
  at::Tensor tensor(const std::string& name) const;
  // The raw bytes of the data section (for tests and checksums).
  const uint8_t* data() const;
  uint64_t data_size() const { return data_size_; }

 private:
  struct Mapping;
  SafetensorsFile() = default;

  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  uint64_t data_offset_ = 0;  // start of the data section in the file (8 + header length)
  uint64_t data_size_ = 0;
  std::vector<TensorEntry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

// Where the data of tensor i comes from when it is written, if not from tensors[i] itself; tensors[i]
// then only describes it (shape, dtype: a tensor on the meta device will do). The writer calls it once
// per tensor with data (numel > 0), in write order, and drops the result before the next call: a caller
// that gathers sharded weights can hold one unit of them at a time.
using TensorFetch = std::function<at::Tensor(size_t index)>;

// The order in which save_safetensors writes `tensors` (indices into it): by decreasing element size of
// the stored dtype, then by name.
std::vector<size_t> safetensors_write_order(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                            c10::ScalarType float_dtype = c10::ScalarType::Undefined);

// Writes `tensors` to `path` atomically (a temporary file in the same directory, renamed into place).
// Each tensor is copied to the CPU and made contiguous one at a time as it is written, in its own
// dtype; tensors already contiguous on the CPU are written straight from their memory. The layout is
// the reference writer's (transformers' save_pretrained): compact header padded with spaces to a
// multiple of 8 bytes, tensors by decreasing element size then by name, so every tensor is aligned
// when mapped and the same tensors give the same bytes. `metadata` gets "format": "pt" (transformers
// requires it) unless it sets "format" itself. When `float_dtype` is not Undefined, floating-point
// tensors are converted to it as they are written (e.g. fp32 parameters saved as bf16 without a
// converted copy of the whole model); other tensors keep their dtype.
// `fetch`: see TensorFetch (empty: the tensors hold their data).
// Throws IoError for a duplicate or reserved name, an unsupported dtype, or a failed write.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {},
                      c10::ScalarType float_dtype = c10::ScalarType::Undefined,
                      const TensorFetch& fetch = {});

}  // namespace tinyzero
