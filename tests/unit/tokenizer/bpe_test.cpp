// BpeTokenizer on small hand-made tokenizer.json files: merge order, both merge formats, added-token
// rules, Split behaviours, post-processor, and the refusal of unsupported features. Expected ids are
// worked out by hand from the rules of Hugging Face tokenizers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "tinyzero/core/errors.h"
#include "tinyzero/tokenizer/bpe.h"

namespace tinyzero {
namespace {

using ojson = nlohmann::ordered_json;
using Ids = std::vector<int64_t>;

// GPT-2's bytes_to_unicode, written independently of the library: byte -> UTF-8 of its character.
std::vector<std::string> byte_chars() {
  std::vector<std::string> out(256);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    int cp = printable ? b : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    out[b] = s;
  }
  return out;
}
std::string bl(const std::string& raw) {  // raw bytes -> byte-level token string
  static const auto chars = byte_chars();
  std::string s;
  for (unsigned char c : raw) s += chars[c];
  return s;
}
// Id of a single byte in GPT-2 order: printable bytes first.
int64_t byte_id(unsigned char b) {
  int id = 0;
  for (int pass = 0; pass < 2; ++pass)
    for (int x = 0; x < 256; ++x) {
      bool printable = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
      if (printable == (pass == 0)) {
        if (x == b) return id;
        ++id;
      }
    }
  return -1;
}

ojson byte_level() {
  return ojson{
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
}
const char* kQwenRegex = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|)"
                         R"( ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A tokenizer.json: 256 byte tokens (ids 0..255), then one token per merge (ids 256..), Qwen's
// pipeline unless replaced.
struct Spec {
  std::vector<std::pair<std::string, std::string>> merges;  // raw byte strings
  bool legacy_merges = false;
  ojson added = ojson::array();
  ojson normalizer = ojson{{"type", "NFC"}};
  ojson pre_tokenizer = ojson{{"type", "Sequence"},
                              {"pretokenizers", ojson::array({ojson{{"type", "Split"},
                                                                    {"pattern", {{"Regex", kQwenRegex}}},
                                                                    {"behavior", "Isolated"},
                                                                    {"invert", false}},
                                                              byte_level()})}};
  ojson post_processor = byte_level();
  ojson decoder = byte_level();
  ojson model_extra = ojson::object();

  std::string json() const {
    const auto chars = byte_chars();
    ojson vocab = ojson::object();
    for (int b = 0; b < 256; ++b) vocab[chars[b]] = byte_id(static_cast<unsigned char>(b));
    ojson m = ojson::array();
    int64_t next = 256;
    for (const auto& [a, b] : merges) {
      if (!vocab.contains(bl(a + b))) vocab[bl(a + b)] = next++;
      if (legacy_merges) {
        m.push_back(bl(a) + " " + bl(b));
      } else {
        m.push_back(ojson::array({bl(a), bl(b)}));
      }
    }
    ojson model{
        {"type", "BPE"},          {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
        {"ignore_merges", false}, {"vocab", vocab},     {"merges", m}};
    for (auto it = model_extra.begin(); it != model_extra.end(); ++it) model[it.key()] = it.value();
    ojson root{{"version", "1.0"},
               {"truncation", nullptr},
               {"padding", nullptr},
               {"added_tokens", added},
               {"normalizer", normalizer},
               {"pre_tokenizer", pre_tokenizer},
               {"post_processor", post_processor},
               {"decoder", decoder},
               {"model", model}};
    return root.dump();
  }
  BpeTokenizer make(const std::string& config = "") const {
    return BpeTokenizer(json(), config, "/x/tokenizer.json");
  }
};

ojson added_token(int64_t id, const std::string& content, bool special, bool lstrip = false,
                  bool rstrip = false, bool single_word = false, bool normalized = false) {
  return ojson{{"id", id},          {"content", content}, {"single_word", single_word},
               {"lstrip", lstrip},  {"rstrip", rstrip},   {"normalized", normalized},
               {"special", special}};
}

TEST(Bpe, MergesApplyByRankNotByPosition) {
  Spec s;
  s.merges = {{"b", "c"}, {"a", "b"}};  // "bc" = 256 (rank 0), "ab" = 257 (rank 1)
  EXPECT_EQ(s.make().encode("abc"), (Ids{byte_id('a'), 256}));
  s.merges = {{"a", "b"}, {"b", "c"}};  // now "ab" first
  EXPECT_EQ(s.make().encode("abc"), (Ids{256, byte_id('c')}));
  // Repeated pair: leftmost first, "aaa" -> "aa" + "a"; then ("aa", "a") if listed.
  s.merges = {{"a", "a"}};
  EXPECT_EQ(s.make().encode("aaa"), (Ids{256, byte_id('a')}));
  s.merges = {{"a", "a"}, {"aa", "a"}};
  EXPECT_EQ(s.make().encode("aaa"), (Ids{257}));
  EXPECT_EQ(s.make().encode("aaaa"), (Ids{256, 256}));  // aa+aa: ("aa","aa") is not a merge
}

TEST(Bpe, LegacyAndPairMergeFormatsAgree) {
  Spec s;
  s.merges = {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"i", "n"}, {" ", "in"}};
  std::string text = "the thin in the inn, then\n  in";
  Ids pairs = s.make().encode(text);
  s.legacy_merges = true;
  EXPECT_EQ(s.make().encode(text), pairs);
  // " the" is one token (id 258), words are split by the Qwen regex before merging.
  EXPECT_EQ(s.make().encode(" the"), (Ids{258}));
  EXPECT_EQ(s.make().decode(pairs), text);
}

TEST(Bpe, FastMergesEqualTheReferenceOnRandomWords) {
  std::mt19937 rng(7);
  // 6 symbols and 40 random merges into new ids.
  std::vector<std::array<int32_t, 3>> merges;
  for (int r = 0; r < 40; ++r) {
    int32_t hi = 6 + r;
    merges.push_back({static_cast<int32_t>(rng() % hi), static_cast<int32_t>(rng() % hi), hi});
  }
  BpeMerges m(merges);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<int32_t> s(trial < 150 ? 1 + rng() % 32 : 33 + rng() % 400);  // both fast paths
    for (auto& x : s) x = static_cast<int32_t>(rng() % 6);
    auto fast = s, slow = s;
    m.apply(fast);
    m.apply_reference(slow);
    ASSERT_EQ(fast, slow) << "trial " << trial;
  }
}

TEST(Bpe, AddedTokensLeftmostLongestAndSpecialFlag) {
  Spec s;
  s.added = ojson::array({added_token(300, "<a>", true), added_token(301, "<a><b>", false)});
  auto t = s.make();
  Ids ids = t.encode("x<a><b>y<a>");
  EXPECT_EQ(ids, (Ids{byte_id('x'), 301, byte_id('y'), 300}));
  EXPECT_EQ(t.decode(ids), "x<a><b>y<a>");
  EXPECT_EQ(t.decode(ids, true), "x<a><b>y");  // <a> is special, <a><b> is not
  EXPECT_EQ(t.vocab_size(), 302);
  EXPECT_EQ(t.token_to_id("<a><b>"), 301);
  EXPECT_THROW(t.id_to_token(299), Error);  // a hole between the vocabulary and the added tokens
}

TEST(Bpe, AddedTokenStripAndSingleWordRules) {
  Spec s;
  s.added = ojson::array({added_token(300, "<m>", true, /*lstrip=*/true, /*rstrip=*/true),
                          added_token(301, "<w>", true, false, false, /*single_word=*/true)});
  auto t = s.make();
  // Spaces on both sides are absorbed by <m>.
  EXPECT_EQ(t.encode("x  <m> y"), (Ids{byte_id('x'), 300, byte_id('y')}));
  // <w> only when not glued to a word character.
  EXPECT_EQ(t.encode("a<w>"), (Ids{byte_id('a'), byte_id('<'), byte_id('w'), byte_id('>')}));
  EXPECT_EQ(t.encode("a <w>"), (Ids{byte_id('a'), byte_id(' '), 301}));
}

TEST(Bpe, NormalizedAddedTokenMatchesAfterNfc) {
  Spec s;
  s.added = ojson::array({added_token(300, "\xC3\xA9", false, false, false, false, /*normalized=*/true)});
  auto t = s.make();
  EXPECT_EQ(t.encode("e\xCC\x81!"), (Ids{300, byte_id('!')}));  // e + U+0301 -> é -> the added token
}

TEST(Bpe, SplitBehaviours) {
  auto pieces = [](const std::string& behavior, bool invert) {
    Spec s;
    s.pre_tokenizer = ojson{{"type", "Sequence"},
                            {"pretokenizers", ojson::array({ojson{{"type", "Split"},
                                                                  {"pattern", {{"String", "-"}}},
                                                                  {"behavior", behavior},
                                                                  {"invert", invert}},
                                                            byte_level()})}};
    return s.make().pre_tokenize("a-b--c");
  };
  using P = std::vector<std::string>;
  EXPECT_EQ(pieces("Isolated", false), (P{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(pieces("Removed", false), (P{"a", "b", "c"}));
  EXPECT_EQ(pieces("MergedWithPrevious", false), (P{"a-", "b-", "-", "c"}));
  EXPECT_EQ(pieces("MergedWithNext", false), (P{"a", "-b", "-", "-c"}));
  EXPECT_EQ(pieces("Contiguous", false), (P{"a", "-", "b", "--", "c"}));
  EXPECT_EQ(pieces("Removed", true), (P{"-", "-", "-"}));
}

TEST(Bpe, QwenRegexPiecesAndUnicodeWhitespace) {
  auto t = Spec().make();
  using P = std::vector<std::string>;
  EXPECT_EQ(t.pre_tokenize("I'LL pay 42$ now!!\n\n  ok"),
            (P{"I", "'LL", " pay", " ", "4", "2", "$", " now", "!!\n\n", " ", " ok"}));
  // U+0085 is White_Space (as punctuation the two would stay together); U+180E is not (PCRE2's own
  // UCP \s says it is, which would give "\u180e", " y" -> "\u180e ", "y").
  EXPECT_EQ(t.pre_tokenize("x\xC2\x85\xC2\x85y"), (P{"x", "\xC2\x85", "\xC2\x85y"}));
  EXPECT_EQ(t.pre_tokenize("x\xE1\xA0\x8E y"), (P{"x", "\xE1\xA0\x8E", " y"}));
}

TEST(Bpe, Gpt2StyleByteLevelWithRegexAndPrefixSpace) {
  Spec s;
  s.normalizer = nullptr;
  s.pre_tokenizer = ojson{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  auto t = s.make();
  EXPECT_EQ(t.pre_tokenize("hello world's 123"),
            (std::vector<std::string>{" hello", " world", "'s", " 123"}));
}

TEST(Bpe, TemplateProcessingAddsBos) {
  Spec s;
  s.added = ojson::array({added_token(300, "<s>", true)});
  s.post_processor = ojson{
      {"type", "Sequence"},
      {"processors",
       ojson::array(
           {byte_level(),
            ojson{{"type", "TemplateProcessing"},
                  {"single", ojson::array({ojson{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                           ojson{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                  {"pair", ojson::array()},
                  {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {300}}, {"tokens", {"<s>"}}}}}}}})}};
  auto t = s.make(R"({"bos_token": "<s>", "eos_token": {"content": "<s>"}, "pad_token": null})");
  EXPECT_EQ(t.encode("a", true), (Ids{300, byte_id('a')}));
  EXPECT_EQ(t.encode("a", false), (Ids{byte_id('a')}));
  EXPECT_EQ(t.bos_id(), 300);
  EXPECT_EQ(t.eos_id(), 300);
  EXPECT_FALSE(t.pad_id().has_value());
}

TEST(Bpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  Spec s;
  s.merges = {{"a", "b"}, {"b", "c"}, {"a", "bc"}};  // "abc" (258) is only reachable as a whole word
  EXPECT_EQ(s.make().encode("abc"), (Ids{256, byte_id('c')}));
  s.model_extra = ojson{{"ignore_merges", true}};
  EXPECT_EQ(s.make().encode("abc"), (Ids{258}));
}

TEST(Bpe, CleanUpTokenizationSpacesWhenConfigured) {
  auto t = Spec().make(R"({"clean_up_tokenization_spaces": true})");
  EXPECT_EQ(t.decode(t.encode("a , b . c do n't")), "a, b. c don't");
}

// The message must name the file and the feature.
void expect_refused(const Spec& s, const std::string& feature) {
  try {
    s.make();
    ADD_FAILURE() << "accepted a tokenizer.json with " << feature;
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("/x/tokenizer.json"), std::string::npos) << m;
    EXPECT_NE(m.find(feature), std::string::npos) << m;
  }
}

TEST(Bpe, UnsupportedFeaturesAreRefused) {
  Spec s;
  s.model_extra = ojson{{"type", "WordPiece"}};
  expect_refused(s, "WordPiece");
  s = Spec();
  s.model_extra = ojson{{"byte_fallback", true}};
  expect_refused(s, "byte_fallback");
  s = Spec();
  s.model_extra = ojson{{"dropout", 0.1}};
  expect_refused(s, "dropout");
  s = Spec();
  s.model_extra = ojson{{"continuing_subword_prefix", "##"}};
  expect_refused(s, "continuing_subword_prefix");
  s = Spec();
  s.normalizer = ojson{{"type", "Lowercase"}};
  expect_refused(s, "Lowercase");
  s = Spec();
  s.pre_tokenizer = ojson{{"type", "Metaspace"}, {"replacement", "_"}};
  expect_refused(s, "Metaspace");
  s = Spec();
  s.decoder = ojson{{"type", "WordPiece"}};
  expect_refused(s, "decoder");
  s = Spec();
  s.post_processor = ojson{{"type", "BertProcessing"}};
  expect_refused(s, "BertProcessing");
}

TEST(Bpe, MalformedFilesAreIoErrors) {
  EXPECT_THROW(BpeTokenizer("{not json", "", "t.json"), IoError);
  EXPECT_THROW(BpeTokenizer(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [["a", "b"]]},
                               "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"}})",
                            "", "t.json"),
               IoError);
  EXPECT_THROW(Spec().make(R"({"eos_token": "<nope>"})"), IoError);
}

TEST(Bpe, DecodeIsLossyNeverThrows) {
  auto t = Spec().make();
  // Lone continuation byte, truncated 3-byte sequence, then valid text.
  Ids ids{byte_id(0x80), byte_id(0xE4), byte_id(0xBD), byte_id('o'), byte_id('k')};
  EXPECT_EQ(t.decode(ids), "\xEF\xBF\xBD\xEF\xBF\xBDok");
  EXPECT_THROW(t.encode(std::string("\xC0\xAF")), Error);  // overlong: invalid UTF-8
}

}  // namespace
}  // namespace tinyzero
