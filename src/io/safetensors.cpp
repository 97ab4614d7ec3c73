// safetensors reader (mmap, every header field validated) and writer (streaming, atomic).
#include "tinyzero/io/safetensors.h"

#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unordered_set>

#include "atomic_writer.h"
#include "tinyzero/core/errors.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader supports little-endian hosts only"
#endif

namespace tinyzero {

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference implementation's limit
constexpr const char* kMetadataKey = "__metadata__";

struct DtypeInfo {
  const char* name;
  size_t size;
};

// Every dtype of the safetensors format with a whole number of bytes per element, in the order of the
// reference implementation's Dtype enum (its writer lays tensors out by this order, descending).
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"F64", 8}, {"I64", 8}, {"U64", 8},
};

// Position of a dtype in kDtypes (its size grows with it).
size_t dtype_rank(const std::string& dtype) {
  for (size_t i = 0; i < sizeof(kDtypes) / sizeof(kDtypes[0]); ++i) {
    if (dtype == kDtypes[i].name) return i;
  }
  return 0;
}

// The torch type of a safetensors dtype, or Undefined where this LibTorch has none.
c10::ScalarType torch_dtype(const std::string& dtype) {
  if (dtype == "F32") return at::kFloat;
  if (dtype == "BF16") return at::kBFloat16;
  if (dtype == "F16") return at::kHalf;
  if (dtype == "F64") return at::kDouble;
  if (dtype == "I64") return at::kLong;
  if (dtype == "I32") return at::kInt;
  if (dtype == "I16") return at::kShort;
  if (dtype == "I8") return at::kChar;
  if (dtype == "U8") return at::kByte;
  if (dtype == "BOOL") return at::kBool;
  if (dtype == "F8_E5M2") return c10::ScalarType::Float8_e5m2;
  if (dtype == "F8_E4M3") return c10::ScalarType::Float8_e4m3fn;
  return c10::ScalarType::Undefined;
}

// Keeps printable ASCII only, so messages never carry raw bytes of a corrupt file.
std::string printable(const std::string& s, size_t max_len = 120) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return out;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

size_t safetensors_dtype_size(const std::string& dtype) {
  for (const auto& d : kDtypes) {
    if (dtype == d.name) return d.size;
  }
  return 0;
}

std::string safetensors_dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case at::kFloat:
      return "F32";
    case at::kBFloat16:
      return "BF16";
    case at::kHalf:
      return "F16";
    case at::kDouble:
      return "F64";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kShort:
      return "I16";
    case at::kChar:
      return "I8";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
    case c10::ScalarType::Float8_e5m2:
      return "F8_E5M2";
    case c10::ScalarType::Float8_e4m3fn:
      return "F8_E4M3";
    default:
      throw IoError(std::string("torch dtype ") + c10::toString(dtype) +
                    " cannot be stored in safetensors; convert the tensor to float32, bfloat16 or float16");
  }
}

// ------------------------------------------------------------------------------------------------
// Reader

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr != nullptr) ::munmap(addr, size);
  }
};

const uint8_t* SafetensorsFile::data() const {
  return static_cast<const uint8_t*>(mapping_->addr) + data_offset_;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  const std::string where = "safetensors file '" + path + "'";
  auto corrupt = [&](const std::string& what) {
    return IoError(where + ": " + what + "; the file is corrupt or truncated (re-download or re-save it)");
  };

  SafetensorsFile file;
  file.path_ = path;

  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) throw IoError(where + " does not exist");
    throw IoError(where + " cannot be opened: " + std::strerror(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(where + " is not a regular file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw corrupt("it is " + std::to_string(file_size) +
                  " bytes long, shorter than the 8-byte header length");
  }
  // Private and writable: writes into returned tensors go to copy-on-write pages, never to the file.
  // (The file must not be truncated in place while mapped; our writers replace files by rename.)
  file.mapping_ = std::make_shared<Mapping>();
  void* addr = ::mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int map_err = errno;
  ::close(fd);
  if (addr == MAP_FAILED) throw IoError(where + " cannot be memory-mapped: " + std::strerror(map_err));
  file.mapping_->addr = addr;
  file.mapping_->size = file_size;
  const auto* bytes = static_cast<const uint8_t*>(addr);

  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];  // little-endian
  if (header_len > kMaxHeaderBytes) {
    throw corrupt("header length " + std::to_string(header_len) + " is larger than the 100 MB limit");
  }
  if (header_len > file_size - 8) {
    throw corrupt("header length " + std::to_string(header_len) + " runs past the end of the file (" +
                  std::to_string(file_size) + " bytes)");
  }
  file.data_offset_ = 8 + header_len;
  file.data_size_ = file_size - file.data_offset_;

  // Parse, noting top-level keys to catch duplicates (a JSON object keeps only one of them).
  const char* hbegin = reinterpret_cast<const char*>(bytes + 8);
  const char* hend = hbegin + header_len;
  std::unordered_set<std::string> seen;
  std::string duplicate;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(
        hbegin, hend, [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
          if (event == nlohmann::json::parse_event_t::key && depth == 1 && duplicate.empty()) {
            std::string key = parsed.get<std::string>();
            if (!seen.insert(key).second) duplicate = key;
          }
          return true;
        });
  } catch (const nlohmann::json::exception& e) {
    throw corrupt("header is not valid JSON (" + printable(e.what(), 200) + ")");
  }
  if (!header.is_object()) throw corrupt("header is JSON but not an object");
  if (!duplicate.empty()) throw corrupt("tensor '" + printable(duplicate) + "' appears twice in the header");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& value = it.value();
    if (name == kMetadataKey) {
      if (!value.is_object()) throw corrupt("\"__metadata__\" is not an object of strings");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) {
          throw corrupt("\"__metadata__\" value of '" + printable(m.key()) + "' is not a string");
        }
        file.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string tensor = "tensor '" + printable(name) + "'";
    if (!value.is_object()) throw corrupt(tensor + " is not described by an object");
    auto dtype_it = value.find("dtype");
    auto shape_it = value.find("shape");
    auto offsets_it = value.find("data_offsets");
    if (dtype_it == value.end() || shape_it == value.end() || offsets_it == value.end()) {
      throw corrupt(tensor + " lacks one of \"dtype\", \"shape\", \"data_offsets\"");
    }
    TensorEntry entry;
    entry.name = name;
    if (!dtype_it->is_string()) throw corrupt(tensor + " has a \"dtype\" that is not a string");
    entry.dtype = dtype_it->get<std::string>();
    const size_t elem_size = safetensors_dtype_size(entry.dtype);
    if (elem_size == 0) throw corrupt(tensor + " has unknown dtype '" + printable(entry.dtype) + "'");

    if (!shape_it->is_array()) throw corrupt(tensor + " has a \"shape\" that is not a list");
    uint64_t numel = 1;
    for (const auto& dim : *shape_it) {
      if (!dim.is_number_unsigned() ||
          dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        throw corrupt(tensor + " has shape " + printable(shape_it->dump()) +
                      " with an entry that is not a non-negative integer");
      }
      const uint64_t d = dim.get<uint64_t>();
      if (__builtin_mul_overflow(numel, d, &numel)) {
        throw corrupt(tensor + " has shape " + printable(shape_it->dump()) + " whose size overflows");
      }
      entry.shape.push_back(static_cast<int64_t>(d));
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(elem_size), &nbytes) ||
        numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw corrupt(tensor + " has shape " + printable(shape_it->dump()) + " whose size overflows");
    }

    if (!offsets_it->is_array() || offsets_it->size() != 2 || !(*offsets_it)[0].is_number_unsigned() ||
        !(*offsets_it)[1].is_number_unsigned()) {
      throw corrupt(tensor + " has \"data_offsets\" " + printable(offsets_it->dump()) +
                    ", expected [begin, end] with non-negative integers");
    }
    entry.begin = (*offsets_it)[0].get<uint64_t>();
    entry.end = (*offsets_it)[1].get<uint64_t>();
    const std::string offsets =
        "data_offsets [" + std::to_string(entry.begin) + ", " + std::to_string(entry.end) + "]";
    if (entry.begin > entry.end) throw corrupt(tensor + " has reversed " + offsets);
    if (entry.end > file.data_size_) {
      throw corrupt(tensor + " has " + offsets + " past the end of the data section (" +
                    std::to_string(file.data_size_) + " bytes)");
    }
    if (entry.end - entry.begin != nbytes) {
      throw corrupt(tensor + " with dtype " + entry.dtype + " and shape " + shape_string(entry.shape) +
                    " needs " + std::to_string(nbytes) + " bytes but its " + offsets + " hold " +
                    std::to_string(entry.end - entry.begin));
    }
    file.entries_.push_back(std::move(entry));
  }

  // Order by offsets; no two tensors may share a byte.
  std::sort(file.entries_.begin(), file.entries_.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : (a.end != b.end ? a.end < b.end : a.name < b.name);
  });
  const TensorEntry* prev = nullptr;
  for (const auto& e : file.entries_) {
    if (e.begin == e.end) continue;  // empty tensors occupy no bytes
    if (prev != nullptr && e.begin < prev->end) {
      throw corrupt("tensors '" + printable(prev->name) + "' and '" + printable(e.name) +
                    "' overlap (bytes " + std::to_string(e.begin) + " to " +
                    std::to_string(std::min(prev->end, e.end)) + ")");
    }
    prev = &e;
  }
  for (size_t i = 0; i < file.entries_.size(); ++i) file.index_.emplace(file.entries_[i].name, i);
  return file;
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

at::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorEntry* entry = find(name);
  if (entry == nullptr) throw IoError("safetensors file '" + path_ + "' has no tensor '" + name + "'");
  const c10::ScalarType type = torch_dtype(entry->dtype);
  if (type == c10::ScalarType::Undefined) {
    throw IoError("safetensors file '" + path_ + "': tensor '" + name + "' has dtype " + entry->dtype +
                  ", which this LibTorch cannot represent; convert the checkpoint to F32, BF16 or F16");
  }
  const auto options = at::TensorOptions().dtype(type).device(at::kCPU);
  const uint64_t nbytes = entry->end - entry->begin;
  if (nbytes == 0) return at::empty(entry->shape, options);
  // mmap returns page-aligned memory, so a tensor is aligned when its offset is; copy it otherwise.
  uint8_t* ptr = static_cast<uint8_t*>(mapping_->addr) + data_offset_ + entry->begin;
  if (reinterpret_cast<uintptr_t>(ptr) % safetensors_dtype_size(entry->dtype) != 0) {
    at::Tensor out = at::empty(entry->shape, options);
    std::memcpy(out.data_ptr(), ptr, nbytes);
    return out;
  }
  std::shared_ptr<Mapping> keep = mapping_;
  return at::from_blob(
      ptr, entry->shape, [keep](void*) mutable { keep.reset(); }, options);
}

// ------------------------------------------------------------------------------------------------
// Writer

c10::ScalarType safetensors_stored_dtype(const at::Tensor& tensor, c10::ScalarType float_dtype) {
  if (float_dtype != c10::ScalarType::Undefined && !at::isFloatingType(float_dtype)) {
    throw IoError(std::string("cannot store floating-point tensors as ") + c10::toString(float_dtype) +
                  ": choose float32, bfloat16 or float16");
  }
  if (float_dtype != c10::ScalarType::Undefined && at::isFloatingType(tensor.scalar_type()))
    return float_dtype;
  return tensor.scalar_type();
}

uint64_t safetensors_stored_bytes(const at::Tensor& tensor, c10::ScalarType float_dtype) {
  return static_cast<uint64_t>(tensor.numel()) *
         safetensors_dtype_size(safetensors_dtype_name(safetensors_stored_dtype(tensor, float_dtype)));
}

std::vector<size_t> safetensors_write_order(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                            c10::ScalarType float_dtype) {
  std::vector<size_t> order(tensors.size());
  std::vector<size_t> rank(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    order[i] = i;
    rank[i] = dtype_rank(safetensors_dtype_name(safetensors_stored_dtype(tensors[i].second, float_dtype)));
  }
  // The reference writer's layout (the safetensors Python package, used by transformers): dtypes in
  // descending enum order, which is descending element size, so with an 8-aligned data section every
  // tensor starts aligned; then by name. The same tensors thus give the same bytes as transformers.
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return rank[a] != rank[b] ? rank[a] > rank[b] : tensors[a].first < tensors[b].first;
  });
  return order;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata, c10::ScalarType float_dtype,
                      const TensorFetch& fetch) {
  const std::string where = "cannot write safetensors file '" + path + "': ";
  struct Item {
    size_t index;
    c10::ScalarType type;  // as stored
    uint64_t nbytes;
  };
  std::unordered_set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) throw IoError(where + "'__metadata__' is reserved and cannot name a tensor");
    if (!names.insert(name).second) throw IoError(where + "tensor '" + name + "' is given twice");
    if (!tensor.defined()) throw IoError(where + "tensor '" + name + "' is undefined");
  }
  std::vector<Item> items;
  items.reserve(tensors.size());
  for (size_t i : safetensors_write_order(tensors, float_dtype)) {
    items.push_back({i, safetensors_stored_dtype(tensors[i].second, float_dtype),
                     safetensors_stored_bytes(tensors[i].second, float_dtype)});
  }

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  if (metadata.count("format") == 0) meta["format"] = "pt";
  for (const auto& [k, v] : metadata) meta[k] = v;
  header[kMetadataKey] = meta;
  uint64_t offset = 0;
  for (const auto& item : items) {
    header[tensors[item.index].first] = {{"dtype", safetensors_dtype_name(item.type)},
                                         {"shape", tensors[item.index].second.sizes().vec()},
                                         {"data_offsets", {offset, offset + item.nbytes}}};
    offset += item.nbytes;
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw IoError(where + "tensor names and metadata must be valid UTF-8 (" + e.what() + ")");
  }
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // data section starts 8-aligned
  uint8_t len_bytes[8];
  uint64_t len = header_text.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<uint8_t>(len >> (8 * i));

  io_detail::AtomicWriter out(path);
  out.write(len_bytes, 8);
  out.write(header_text.data(), header_text.size());
  for (const auto& item : items) {
    if (item.nbytes == 0) continue;
    // One tensor at a time: a GPU, strided or converted tensor is copied to contiguous CPU memory only
    // here, so the peak extra memory is one tensor, never the model.
    const std::string& name = tensors[item.index].first;
    at::Tensor t = fetch ? fetch(item.index).detach() : tensors[item.index].second.detach();
    if (t.sizes() != tensors[item.index].second.sizes())
      throw Error(where + "tensor '" + name + "' has shape " + c10::str(t.sizes()) + " when written, " +
                  c10::str(tensors[item.index].second.sizes()) + " in the header");
    if (t.scalar_type() != item.type) t = t.to(item.type);  // on its device: less to transfer
    if (!t.device().is_cpu()) t = t.to(at::kCPU);
    t = t.contiguous();
    if (static_cast<uint64_t>(t.nbytes()) != item.nbytes) {
      throw Error(where + "tensor '" + name + "' changed size while being written");
    }
    out.write(t.data_ptr(), item.nbytes);
  }
  out.commit();
}

}  // namespace tinyzero
