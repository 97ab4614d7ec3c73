// Hugging Face model directories: sharded/single safetensors reading and atomic directory writing.
#include "tinyzero/io/checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <set>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/io/atomic_dir.h"

namespace fs = std::filesystem;

namespace tinyzero {

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// A shard name from an index must be a plain file name inside the model directory.
bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos;
}

std::string shard_name(size_t i, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", i + 1, n);
  return buf;
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Reading

HfWeights HfWeights::open(const std::string& dir) {
  HfWeights w;
  w.dir_ = dir;
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw IoError("model directory '" + dir + "' does not exist");
  if (!fs::is_directory(dir, ec)) throw IoError("model path '" + dir + "' is not a directory");
  const fs::path root(dir);

  // transformers' from_pretrained order: a single model.safetensors wins over an index.
  if (path_exists(root / kSingleFile)) {
    w.files_.push_back(SafetensorsFile::open((root / kSingleFile).string()));
  } else if (path_exists(root / kIndexFile)) {
    const std::string index_path = (root / kIndexFile).string();
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(read_file(index_path));
    } catch (const nlohmann::json::exception& e) {
      throw IoError("index '" + index_path + "' is not valid JSON (" + e.what() +
                    "); re-download or re-save it");
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw IoError("index '" + index_path + "' has no \"weight_map\" object; re-download or re-save it");
    }
    const nlohmann::json& weight_map = index["weight_map"];
    if (weight_map.empty()) throw IoError("index '" + index_path + "' lists no tensors in \"weight_map\"");
    std::map<std::string, size_t> shard_ids;  // shard file name -> index in files_
    for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
      if (!it.value().is_string() || !is_plain_file_name(it.value().get<std::string>())) {
        throw IoError("index '" + index_path + "' maps tensor '" + it.key() + "' to " + it.value().dump() +
                      ", expected the file name of a shard in the same directory");
      }
      shard_ids.emplace(it.value().get<std::string>(), 0);
    }
    for (auto& [shard, id] : shard_ids) {
      const fs::path shard_path = root / shard;
      if (!path_exists(shard_path)) {
        throw IoError("shard '" + shard_path.string() + "' listed in '" + index_path +
                      "' does not exist; the download is incomplete");
      }
      id = w.files_.size();
      w.files_.push_back(SafetensorsFile::open(shard_path.string()));
    }
    for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
      const SafetensorsFile& shard = w.files_[shard_ids.at(it.value().get<std::string>())];
      if (shard.find(it.key()) == nullptr) {
        throw IoError("index '" + index_path + "' lists tensor '" + it.key() + "' in shard '" + shard.path() +
                      "', which does not contain it; re-download or re-save the checkpoint");
      }
    }
  } else if (path_exists(root / "pytorch_model.bin") || path_exists(root / "pytorch_model.bin.index.json")) {
    throw IoError("model directory '" + dir +
                  "' holds only PyTorch .bin weights; tinyzero reads safetensors: re-save the model with "
                  "save_pretrained(..., safe_serialization=True)");
  } else {
    throw IoError("model directory '" + dir + "' has neither " + kSingleFile + " nor " + kIndexFile);
  }

  for (size_t i = 0; i < w.files_.size(); ++i) {
    for (const auto& entry : w.files_[i].entries()) {
      auto [it, inserted] = w.where_.emplace(entry.name, i);
      if (!inserted) {
        throw IoError("tensor '" + entry.name + "' is stored twice, in '" + w.files_[it->second].path() +
                      "' and in '" + w.files_[i].path() + "'; re-download or re-save the checkpoint");
      }
    }
  }
  return w;
}

std::vector<std::string> HfWeights::names() const {
  std::vector<std::string> out;
  out.reserve(where_.size());
  for (const auto& [name, file] : where_) out.push_back(name);
  return out;
}

bool HfWeights::contains(const std::string& name) const { return where_.count(name) != 0; }

const TensorEntry* HfWeights::find(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : files_[it->second].find(name);
}

at::Tensor HfWeights::tensor(const std::string& name) const { return files_[file_index(name)].tensor(name); }

const std::string& HfWeights::file_of(const std::string& name) const {
  return files_[file_index(name)].path();
}

size_t HfWeights::file_index(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw IoError("model directory '" + dir_ + "' has no tensor '" + name + "'");
  return it->second;
}

// ------------------------------------------------------------------------------------------------
// Writing

const std::vector<std::string>& hf_tokenizer_files() {
  static const std::vector<std::string> files = {
      "tokenizer.json",  "tokenizer_config.json",   "vocab.json",        "merges.txt",
      "tokenizer.model", "special_tokens_map.json", "added_tokens.json", "chat_template.jinja"};
  return files;
}

namespace {

// The weight files' contents (indices into ckpt.tensors), planned from sizes alone (nothing is copied
// yet), as transformers does: a new file starts when the next tensor would overflow a non-empty one.
std::vector<std::vector<size_t>> plan_weight_files(const HfCheckpoint& ckpt) {
  std::vector<std::vector<size_t>> files(1);
  uint64_t file_bytes = 0;
  for (size_t i = 0; i < ckpt.tensors.size(); ++i) {
    const uint64_t nbytes = safetensors_stored_bytes(ckpt.tensors[i].second, ckpt.float_dtype);
    if (!files.back().empty() && file_bytes + nbytes > static_cast<uint64_t>(ckpt.max_shard_bytes)) {
      files.emplace_back();
      file_bytes = 0;
    }
    files.back().push_back(i);
    file_bytes += nbytes;
  }
  return files;
}

std::vector<std::pair<std::string, at::Tensor>> tensors_of(const HfCheckpoint& ckpt,
                                                           const std::vector<size_t>& file) {
  std::vector<std::pair<std::string, at::Tensor>> part;
  part.reserve(file.size());
  for (size_t i : file) part.push_back(ckpt.tensors[i]);
  return part;
}

// Writes the content of the checkpoint into the (new, empty) directory `out`.
void write_checkpoint_files(const fs::path& out, const HfCheckpoint& ckpt) {
  write_file_atomic((out / "config.json").string(), ckpt.config.dump(2) + "\n");
  if (!ckpt.generation_config.is_null()) {
    write_file_atomic((out / "generation_config.json").string(), ckpt.generation_config.dump(2) + "\n");
  }
  const std::vector<std::vector<size_t>> files = plan_weight_files(ckpt);
  auto save_file = [&](const std::string& name, const std::vector<size_t>& file) {
    TensorFetch fetch;
    if (ckpt.fetch) fetch = [&](size_t i) { return ckpt.fetch(file[i]); };
    save_safetensors((out / name).string(), tensors_of(ckpt, file), {{"format", "pt"}}, ckpt.float_dtype,
                     fetch);
  };
  if (files.size() == 1) {
    save_file(kSingleFile, files[0]);
  } else {
    nlohmann::json weight_map = nlohmann::json::object();
    uint64_t total_bytes = 0;
    for (size_t f = 0; f < files.size(); ++f) {
      const std::string name = shard_name(f, files.size());
      for (size_t i : files[f]) {
        weight_map[ckpt.tensors[i].first] = name;
        total_bytes += safetensors_stored_bytes(ckpt.tensors[i].second, ckpt.float_dtype);
      }
      save_file(name, files[f]);
    }
    nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
    write_file_atomic((out / kIndexFile).string(), index.dump(2) + "\n");
  }

  if (!ckpt.tokenizer_source_dir.empty()) {
    for (const auto& name : hf_tokenizer_files()) {
      const fs::path src = fs::path(ckpt.tokenizer_source_dir) / name;
      if (!path_exists(src)) continue;
      std::error_code ec;
      fs::copy_file(src, out / name, fs::copy_options::overwrite_existing, ec);
      if (ec) throw IoError("cannot copy tokenizer file '" + src.string() + "': " + ec.message());
    }
  }
}

}  // namespace

std::vector<size_t> hf_checkpoint_write_order(const HfCheckpoint& ckpt) {
  std::vector<size_t> order;
  for (const auto& file : plan_weight_files(ckpt))
    for (size_t i : safetensors_write_order(tensors_of(ckpt, file), ckpt.float_dtype))
      if (ckpt.tensors[file[i]].second.numel() > 0) order.push_back(file[i]);
  return order;
}

void save_hf_checkpoint(const std::string& dir, const HfCheckpoint& ckpt) {
  const std::string where = "cannot write checkpoint '" + dir + "': ";
  if (!ckpt.config.is_object()) throw IoError(where + "config must be a JSON object");
  if (!ckpt.generation_config.is_null() && !ckpt.generation_config.is_object()) {
    throw IoError(where + "generation_config must be a JSON object or null");
  }
  if (ckpt.max_shard_bytes <= 0) {
    throw IoError(where + "max_shard_bytes is " + std::to_string(ckpt.max_shard_bytes) + ", expected > 0");
  }
  std::set<std::string> names;
  for (const auto& [name, tensor] : ckpt.tensors) {
    if (!names.insert(name).second) throw IoError(where + "tensor '" + name + "' is given twice");
    if (!tensor.defined()) throw IoError(where + "tensor '" + name + "' is undefined");
    safetensors_dtype_name(
        safetensors_stored_dtype(tensor, ckpt.float_dtype));  // throws for a dtype safetensors lacks
  }
  std::error_code ec;
  if (!ckpt.tokenizer_source_dir.empty() && !fs::is_directory(ckpt.tokenizer_source_dir, ec)) {
    throw IoError(where + "tokenizer source '" + ckpt.tokenizer_source_dir + "' is not a directory");
  }

  write_directory_atomic(dir, [&](const std::string& tmp) { write_checkpoint_files(tmp, ckpt); });
}

}  // namespace tinyzero
