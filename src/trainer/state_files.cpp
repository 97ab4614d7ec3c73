// Optimizer state files of a checkpoint (see state_files.h).
#include "trainer/state_files.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <utility>

#include "tinyzero/core/errors.h"

namespace fs = std::filesystem;

namespace tinyzero {

namespace {

constexpr const char* kFormat = "tinyzero-adamw-shard";

std::string shape_text(const std::vector<int64_t>& shape) { return nlohmann::json(shape).dump(); }

}  // namespace

std::string state_file_name(const std::string& stem, int index, int count) {
  return stem + "-rank" + std::to_string(index) + "-of-" + std::to_string(count) + ".safetensors";
}

void write_state_file(const std::string& dir, const std::string& stem, int index, int count,
                      const std::vector<StatePiece>& pieces) {
  nlohmann::json layout = nlohmann::json::object();
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  tensors.reserve(pieces.size());
  for (const auto& piece : pieces) {
    if (piece.offset < 0 || piece.offset + piece.values.numel() > c10::multiply_integers(piece.shape))
      throw Error("state piece " + piece.name + " [" + std::to_string(piece.offset) + ", +" +
                  std::to_string(piece.values.numel()) + ") lies outside its tensor of shape " +
                  shape_text(piece.shape));
    layout[piece.name] = {{"shape", piece.shape}, {"offset", piece.offset}};
    tensors.emplace_back(piece.name, piece.values.reshape({-1}));
  }
  save_safetensors((fs::path(dir) / state_file_name(stem, index, count)).string(), tensors,
                   {{"format", kFormat},
                    {"layout", layout.dump()},
                    {"rank", std::to_string(index)},
                    {"ranks", std::to_string(count)}});
}

StateFiles StateFiles::open(const std::string& dir, const std::string& stem) {
  StateFiles out;
  out.where_ = "checkpoint " + dir + " (" + stem + ")";
  // The set of rank files, by index.
  const std::regex pattern(stem + "-rank([0-9]+)-of-([0-9]+)\\.safetensors");
  std::map<int, std::string> by_index;
  int count = -1;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    std::smatch m;
    if (!std::regex_match(name, m, pattern)) continue;
    const int n = std::stoi(m[2].str());
    if (count >= 0 && n != count)
      throw IoError(out.where_ + " holds state files of two sets (of " + std::to_string(count) + " and of " +
                    std::to_string(n) + "); remove the stray ones");
    count = n;
    by_index[std::stoi(m[1].str())] = entry.path().string();
  }
  std::vector<std::string> paths;
  if (count < 0) {
    const fs::path single = fs::path(dir) / (stem + ".safetensors");
    if (!fs::exists(single, ec))
      throw IoError(out.where_ + " has no optimizer state: neither " + state_file_name(stem, 0, 1) +
                    "-style files nor " + stem + ".safetensors; it is incomplete, resume from another one");
    paths.push_back(single.string());
  } else {
    for (int i = 0; i < count; ++i) {
      auto it = by_index.find(i);
      if (it == by_index.end())
        throw IoError(out.where_ + " lacks " + state_file_name(stem, i, count) +
                      ": the checkpoint is incomplete (a rank's write failed); resume from another one");
      paths.push_back(it->second);
    }
    if (static_cast<int>(by_index.size()) != count)
      throw IoError(out.where_ + " holds a state file numbered beyond its set of " + std::to_string(count));
  }

  for (size_t k = 0; k < paths.size(); ++k) {
    out.files_.push_back(SafetensorsFile::open(paths[k]));
    const SafetensorsFile& file = out.files_.back();
    nlohmann::json layout;
    const bool sharded = count >= 0;
    if (sharded) {
      auto it = file.metadata().find("layout");
      try {
        if (it == file.metadata().end()) throw std::runtime_error("no layout in its metadata");
        layout = nlohmann::json::parse(it->second);
      } catch (const std::exception& e) {
        throw IoError(paths[k] + " is not a tinyzero optimizer state file (" + e.what() + ")");
      }
    }
    for (const auto& entry : file.entries()) {
      Piece piece{k, 0, c10::multiply_integers(entry.shape)};
      std::vector<int64_t> shape = entry.shape;
      if (sharded) {
        if (!layout.contains(entry.name) || entry.shape.size() != 1)
          throw IoError(paths[k] + ": tensor " + entry.name + " is not a flat piece named in the layout");
        try {
          shape = layout[entry.name].at("shape").get<std::vector<int64_t>>();
          piece.offset = layout[entry.name].at("offset").get<int64_t>();
        } catch (const nlohmann::json::exception& e) {
          throw IoError(paths[k] + ": the layout of " + entry.name + " is malformed (" + e.what() + ")");
        }
      }
      Tensor& t = out.tensors_[entry.name];
      if (t.pieces.empty()) {
        t.shape = shape;
        t.numel = c10::multiply_integers(shape);
      } else if (t.shape != shape) {
        throw IoError(out.where_ + ": " + entry.name + " has shape " + shape_text(t.shape) +
                      " in one file and " + shape_text(shape) + " in " + paths[k]);
      }
      t.pieces.push_back(piece);
    }
  }
  // Each tensor's pieces tile it exactly.
  for (auto& [name, t] : out.tensors_) {
    std::sort(t.pieces.begin(), t.pieces.end(),
              [](const Piece& a, const Piece& b) { return a.offset < b.offset; });
    int64_t next = 0;
    for (const auto& piece : t.pieces) {
      if (piece.offset != next)
        throw IoError(out.where_ + ": " + name + " elements [" +
                      std::to_string(std::min(next, piece.offset)) + ", " +
                      std::to_string(std::max(next, piece.offset)) + ") are " +
                      (piece.offset > next ? "missing" : "stored twice") + "; the checkpoint is corrupt");
      next += piece.numel;
    }
    if (next != t.numel)
      throw IoError(out.where_ + ": " + name + " holds " + std::to_string(next) + " of its " +
                    std::to_string(t.numel) + " elements; the checkpoint is corrupt");
  }
  return out;
}

const StateFiles::Tensor& StateFiles::find(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw IoError(where_ + " has no state tensor " + name);
  return it->second;
}

const std::vector<int64_t>& StateFiles::shape(const std::string& name) const { return find(name).shape; }

at::Tensor StateFiles::read(const std::string& name, int64_t begin, int64_t end) const {
  const Tensor& t = find(name);
  if (begin < 0 || begin > end || end > t.numel)
    throw Error("elements [" + std::to_string(begin) + ", " + std::to_string(end) + ") of " + name + " (" +
                std::to_string(t.numel) + " elements) asked of " + where_);
  auto flat = [&](const Piece& piece) { return files_[piece.file].tensor(name).reshape({-1}); };
  at::Tensor out;
  for (const auto& piece : t.pieces) {
    const int64_t from = std::max(begin, piece.offset), to = std::min(end, piece.offset + piece.numel);
    if (from >= to) continue;
    at::Tensor part = flat(piece).narrow(0, from - piece.offset, to - from);
    if (from == begin && to == end) return part;  // one piece holds it all: a view of the file
    if (!out.defined()) out = torch::empty({end - begin}, part.options());
    out.narrow(0, from - begin, to - from).copy_(part);
  }
  return out.defined() ? out : flat(t.pieces.front()).narrow(0, 0, 0);
}

at::Tensor StateFiles::whole(const std::string& name) const {
  const Tensor& t = find(name);
  return read(name, 0, t.numel).reshape(t.shape);
}

std::vector<std::string> StateFiles::names() const {
  std::vector<std::string> out;
  for (const auto& [name, t] : tensors_) out.push_back(name);
  return out;
}

}  // namespace tinyzero
