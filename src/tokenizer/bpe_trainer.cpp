// Byte-level BPE training for tiny models (see include/tinyzero/tokenizer/bpe_trainer.h). The corpus
// is pre-tokenized by the same code that encodes (a BpeTokenizer with no merges and Qwen's pipeline),
// then pairs are merged by frequency with incremental pair counts.
#include "tinyzero/tokenizer/bpe_trainer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "text.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/tokenizer/bpe.h"

namespace tinyzero {
namespace {

using ojson = nlohmann::ordered_json;

const char* kQwenPattern = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|)"
                           R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

ojson byte_level_section() {
  return ojson{
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
}

// tokenizer.json in Qwen's layout for the given vocabulary (id order) and merges.
ojson tokenizer_json(const std::vector<std::string>& vocab,
                     const std::vector<std::pair<int32_t, int32_t>>& merges,
                     const std::vector<std::string>& specials) {
  ojson added = ojson::array();
  for (size_t i = 0; i < specials.size(); ++i) {
    added.push_back(ojson{{"id", vocab.size() + i},
                          {"content", specials[i]},
                          {"single_word", false},
                          {"lstrip", false},
                          {"rstrip", false},
                          {"normalized", false},
                          {"special", true}});
  }
  ojson v = ojson::object();
  for (size_t id = 0; id < vocab.size(); ++id) v[vocab[id]] = id;
  ojson m = ojson::array();
  for (const auto& [a, b] : merges) m.push_back(ojson::array({vocab[a], vocab[b]}));
  ojson root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = added;
  root["normalizer"] = ojson{{"type", "NFC"}};
  root["pre_tokenizer"] =
      ojson{{"type", "Sequence"},
            {"pretokenizers", ojson::array({ojson{{"type", "Split"},
                                                  {"pattern", ojson{{"Regex", kQwenPattern}}},
                                                  {"behavior", "Isolated"},
                                                  {"invert", false}},
                                            byte_level_section()})}};
  root["post_processor"] = byte_level_section();
  root["decoder"] = byte_level_section();
  root["model"] = ojson{{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", nullptr},
                        {"continuing_subword_prefix", ""},
                        {"end_of_word_suffix", ""},
                        {"fuse_unk", false},
                        {"byte_fallback", false},
                        {"ignore_merges", false},
                        {"vocab", v},
                        {"merges", m}};
  return root;
}

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b);
}

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

void make_dirs(const std::string& dir) {
  std::string path;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    path = dir.substr(0, pos);
    if (path.empty()) continue;
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      throw IoError("cannot create directory " + path + ": " + std::strerror(errno));
    }
  }
}

}  // namespace

BpeTrainResult train_bpe(std::string_view corpus, const BpeTrainOptions& options) {
  const auto& specials = options.special_tokens;
  auto is_special = [&](const std::string& s) {
    return std::find(specials.begin(), specials.end(), s) != specials.end();
  };
  if (options.vocab_size < 256 + static_cast<int64_t>(specials.size())) {
    throw ConfigError("tokenizer vocab size " + std::to_string(options.vocab_size) +
                      " is too small: it needs " + "at least 256 byte tokens + " +
                      std::to_string(specials.size()) + " special tokens");
  }
  if (options.min_frequency < 1) throw ConfigError("tokenizer min_frequency must be >= 1");
  for (const auto& s : specials) {
    if (s.empty()) throw ConfigError("a special token is empty");
    if (tok::find_invalid_utf8(s) != tok::kNpos) throw ConfigError("special token is not valid UTF-8");
  }
  if (!options.eos_token.empty() && !is_special(options.eos_token))
    throw ConfigError("eos token \"" + options.eos_token + "\" is not one of the special tokens");
  if (!options.pad_token.empty() && !is_special(options.pad_token))
    throw ConfigError("pad token \"" + options.pad_token + "\" is not one of the special tokens");

  // Byte tokens in GPT-2 order: id i is byte gpt2_byte_order()[i].
  std::vector<std::string> vocab;
  std::array<int32_t, 256> byte_id{};
  const auto& order = tok::gpt2_byte_order();
  for (int i = 0; i < 256; ++i) {
    vocab.push_back(tok::byte_to_char()[order[i]]);
    byte_id[order[i]] = i;
  }

  // Pre-tokenize with the very pipeline that will encode (no merges yet).
  BpeTokenizer pre(tokenizer_json(vocab, {}, specials).dump(), "", "<tokenizer being trained>");
  std::unordered_map<std::string, int64_t> counts;
  for (auto& piece : pre.pre_tokenize(corpus)) {
    if (!is_special(piece)) ++counts[piece];
  }
  std::vector<Word> words;
  words.reserve(counts.size());
  for (const auto& [text, count] : counts) {
    Word w;
    w.count = count;
    for (unsigned char b : text) w.symbols.push_back(byte_id[b]);
    words.push_back(std::move(w));
  }
  // Deterministic word order (the map's is not).
  std::sort(words.begin(), words.end(), [](const Word& a, const Word& b) { return a.symbols < b.symbols; });

  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> where;
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      uint64_t k = pair_key(s[i], s[i + 1]);
      pair_count[k] += words[w].count;
      where[k].push_back(static_cast<int32_t>(w));
    }
  }
  // Max count first; ties to the smaller pair.
  struct Item {
    int64_t count;
    uint64_t pair;
    bool operator<(const Item& o) const { return count != o.count ? count < o.count : pair > o.pair; }
  };
  std::priority_queue<Item> heap;
  for (const auto& [k, c] : pair_count) heap.push({c, k});

  std::unordered_map<std::string, int32_t> token_id;
  for (size_t i = 0; i < vocab.size(); ++i) token_id[vocab[i]] = static_cast<int32_t>(i);
  std::vector<std::pair<int32_t, int32_t>> merges;
  const int64_t target = options.vocab_size - static_cast<int64_t>(specials.size());
  std::unordered_map<uint64_t, int64_t> delta;
  while (static_cast<int64_t>(vocab.size()) < target && !heap.empty()) {
    Item top = heap.top();
    heap.pop();
    auto it = pair_count.find(top.pair);
    int64_t actual = it == pair_count.end() ? 0 : it->second;
    if (actual != top.count) {
      if (actual > 0) heap.push({actual, top.pair});
      continue;
    }
    if (actual < options.min_frequency) break;
    int32_t a = static_cast<int32_t>(top.pair >> 32), b = static_cast<int32_t>(top.pair & 0xFFFFFFFFu);
    std::string merged = vocab[a] + vocab[b];
    int32_t c;
    auto existing = token_id.find(merged);
    if (existing != token_id.end()) {
      c = existing->second;
    } else {
      c = static_cast<int32_t>(vocab.size());
      vocab.push_back(merged);
      token_id.emplace(merged, c);
    }
    merges.emplace_back(a, b);

    std::vector<int32_t> affected = std::move(where[top.pair]);
    where.erase(top.pair);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    delta.clear();
    for (int32_t w : affected) {
      auto& s = words[w].symbols;
      const int64_t n = words[w].count;
      bool found = false;
      for (size_t i = 0; i + 1 < s.size(); ++i)
        if (s[i] == a && s[i + 1] == b) found = true;
      if (!found) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[pair_key(s[i], s[i + 1])] -= n;
      std::vector<int32_t> next;
      next.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          next.push_back(c);
          ++i;
        } else {
          next.push_back(s[i]);
        }
      }
      s = std::move(next);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        delta[k] += n;
        if (s[i] == c || s[i + 1] == c) where[k].push_back(w);
      }
    }
    for (const auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& pc = pair_count[k];
      pc += d;
      if (pc <= 0) {
        pair_count.erase(k);
      } else if (d > 0) {
        heap.push({pc, k});
      }
    }
  }

  BpeTrainResult result;
  result.num_merges = static_cast<int64_t>(merges.size());
  result.num_words = static_cast<int64_t>(words.size());
  result.vocab_size = static_cast<int64_t>(vocab.size() + specials.size());
  result.tokenizer_json = tokenizer_json(vocab, merges, specials).dump(2, ' ', false) + "\n";

  ojson cfg;
  cfg["add_bos_token"] = false;
  cfg["add_prefix_space"] = false;
  ojson decoder = ojson::object();
  for (size_t i = 0; i < specials.size(); ++i) {
    decoder[std::to_string(vocab.size() + i)] =
        ojson{{"content", specials[i]}, {"lstrip", false},      {"normalized", false},
              {"rstrip", false},        {"single_word", false}, {"special", true}};
  }
  cfg["added_tokens_decoder"] = decoder;
  ojson additional = ojson::array();
  for (const auto& s : specials)
    if (s != options.eos_token && s != options.pad_token) additional.push_back(s);
  cfg["additional_special_tokens"] = additional;
  cfg["bos_token"] = nullptr;
  cfg["clean_up_tokenization_spaces"] = false;
  cfg["eos_token"] = options.eos_token.empty() ? ojson(nullptr) : ojson(options.eos_token);
  cfg["errors"] = "replace";
  cfg["model_max_length"] = options.model_max_length;
  cfg["pad_token"] = options.pad_token.empty() ? ojson(nullptr) : ojson(options.pad_token);
  cfg["split_special_tokens"] = false;
  cfg["tokenizer_class"] = "Qwen2Tokenizer";
  cfg["unk_token"] = nullptr;
  result.tokenizer_config_json = cfg.dump(2, ' ', false) + "\n";
  return result;
}

void write_tokenizer_files(const BpeTrainResult& result, const std::string& dir) {
  make_dirs(dir);
  write_file_atomic(dir + "/tokenizer.json", result.tokenizer_json);
  write_file_atomic(dir + "/tokenizer_config.json", result.tokenizer_config_json);
}

}  // namespace tinyzero
