// SentencePieceTokenizer over sentencepiece::SentencePieceProcessor.
//
// Linked directly: the PyTorch wheel's libtorch_cpu exports its protobuf under other symbol names than
// libsentencepiece's (checked with nm -D on the 2.11 wheel: 3 names in common, protobuf's byteswap
// helpers, identical in both), so the two do not meet. Debian's LibTorch 1.13 shared a whole protobuf
// with it and needed a separately loaded shim; that is gone.
#include "tinyzero/tokenizer/sentencepiece.h"

#include <sentencepiece_processor.h>

#include "text.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tokenizer_config.h"

namespace tinyzero {

struct SentencePieceTokenizer::Impl {
  sentencepiece::SentencePieceProcessor processor;
  std::string path;
  int32_t size = 0;
  std::vector<std::string> pieces;   // id -> piece
  std::vector<uint8_t> control;      // id -> control piece (<s>, </s>, <pad>)
  std::vector<int32_t> control_ids;  // control pieces matched whole in encode()
  bool add_bos = true, add_eos = false;

  std::vector<int32_t> encode_plain(std::string_view text) const {
    if (text.empty()) return {};
    std::vector<int> ids;
    auto status = processor.Encode(absl::string_view(text.data(), text.size()), &ids);
    if (!status.ok())
      throw Error("sentencepiece could not encode a text with " + path + ": " + status.ToString());
    return std::vector<int32_t>(ids.begin(), ids.end());
  }
  std::string decode_plain(const std::vector<int32_t>& ids) const {
    if (ids.empty()) return "";
    std::string out;
    auto status = processor.Decode(std::vector<int>(ids.begin(), ids.end()), &out);
    if (!status.ok())
      throw Error("sentencepiece could not decode ids with " + path + ": " + status.ToString());
    return out;
  }
};

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path, const std::string& config_text)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = model_path;
  if (!tok::is_file(model_path)) throw IoError("sentencepiece model " + model_path + " does not exist");
  auto status = m.processor.Load(model_path);
  if (!status.ok()) throw IoError("cannot load sentencepiece model " + model_path + ": " + status.ToString());
  m.size = m.processor.GetPieceSize();
  m.pieces.resize(m.size);
  m.control.assign(m.size, 0);
  for (int32_t id = 0; id < m.size; ++id) {
    m.pieces[id] = m.processor.IdToPiece(id);
    if (m.processor.IsControl(id)) {
      m.control[id] = 1;
      if (!m.pieces[id].empty()) m.control_ids.push_back(id);
    }
  }
  auto model_id = [&](int id) -> std::optional<int64_t> {
    if (id < 0 || id >= m.size) return std::nullopt;
    return id;
  };
  bos_id_ = model_id(m.processor.bos_id());
  eos_id_ = model_id(m.processor.eos_id());
  pad_id_ = model_id(m.processor.pad_id());
  if (!config_text.empty()) {
    std::string source = model_path.substr(0, model_path.rfind('/') + 1) + "tokenizer_config.json";
    tok::TokenizerConfigFile cfg = tok::parse_tokenizer_config(config_text, source);
    auto resolve = [&](const std::optional<std::string>& name, std::optional<int64_t>& slot,
                       const char* key) {
      if (!name) return;
      auto id = token_to_id(*name);
      if (!id) throw IoError(source + ": " + key + " \"" + *name + "\" is not a piece of " + model_path);
      slot = id;
    };
    resolve(cfg.bos_token, bos_id_, "bos_token");
    resolve(cfg.eos_token, eos_id_, "eos_token");
    resolve(cfg.pad_token, pad_id_, "pad_token");
    m.add_bos = cfg.add_bos_token.value_or(true);
    m.add_eos = cfg.add_eos_token.value_or(false);
  }
}

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::from_dir(const std::string& dir) {
  std::string config_path = dir + "/tokenizer_config.json";
  std::string config = tok::is_file(config_path) ? read_file(config_path) : std::string();
  return std::make_unique<SentencePieceTokenizer>(dir + "/tokenizer.model", config);
}

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& m = *impl_;
  size_t bad = tok::find_invalid_utf8(text);
  if (bad != tok::kNpos) {
    throw Error("text to encode is not valid UTF-8 (byte " + std::to_string(bad) + " of " +
                std::to_string(text.size()) + "); pass UTF-8 text");
  }
  std::vector<int64_t> ids;
  if (add_special_tokens && m.add_bos && bos_id_) ids.push_back(*bos_id_);
  // Split on control pieces written in the text, leftmost-longest.
  size_t start = 0, pos = 0;
  auto flush = [&](size_t end) {
    for (int32_t id : m.encode_plain(text.substr(start, end - start))) ids.push_back(id);
  };
  while (pos < text.size()) {
    int32_t best = -1;
    size_t best_len = 0;
    if (text[pos] == '<') {
      for (int32_t id : m.control_ids) {
        const std::string& p = m.pieces[id];
        if (p.size() > best_len && text.compare(pos, p.size(), p) == 0) {
          best = id;
          best_len = p.size();
        }
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    flush(pos);
    ids.push_back(best);
    pos += best_len;
    start = pos;
  }
  flush(text.size());
  if (add_special_tokens && m.add_eos && eos_id_) ids.push_back(*eos_id_);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const Impl& m = *impl_;
  std::string out;
  std::vector<int32_t> run;
  for (int64_t id : ids) {
    if (id < 0 || id >= m.size) continue;  // unknown ids are skipped
    if (m.control[id]) {
      out += m.decode_plain(run);
      run.clear();
      if (!skip_special_tokens) out += m.pieces[id];
      continue;
    }
    run.push_back(static_cast<int32_t>(id));
  }
  out += m.decode_plain(run);
  return tok::utf8_lossy(out);
}

std::optional<int64_t> SentencePieceTokenizer::token_to_id(std::string_view token) const {
  std::string piece(token);
  int id = impl_->processor.PieceToId(piece);
  // PieceToId answers unk_id for unknown pieces; tell them apart from the unk piece itself.
  if (id < 0 || id >= impl_->size || impl_->pieces[id] != piece) return std::nullopt;
  return id;
}

std::string SentencePieceTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= impl_->size) {
    throw Error("token id " + std::to_string(id) + " is not in the sentencepiece model " + impl_->path +
                " (vocab size " + std::to_string(impl_->size) + ")");
  }
  return impl_->pieces[id];
}

int64_t SentencePieceTokenizer::vocab_size() const { return impl_->size; }

bool SentencePieceTokenizer::is_special(int64_t id) const {
  return id >= 0 && id < impl_->size && impl_->control[id];
}

}  // namespace tinyzero
