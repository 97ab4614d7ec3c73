// sentencepiece through the dlopen'ed shim, in a process that also runs LibTorch (linking both
// directly crashes at start-up). The model is trained here with `spm_train`; `spm_encode`
// (the sentencepiece command-line tool) is the oracle. The model uses byte fallback, so text the
// corpus never showed still round-trips.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tinyzero/core/errors.h"
#include "tinyzero/tokenizer/sentencepiece.h"
#include "tinyzero/tokenizer/tokenizer.h"

namespace tinyzero {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SentencePiece : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = testing::TempDir() + "tz_spm_" + std::to_string(::getpid());
    ASSERT_EQ(std::system(("mkdir -p '" + dir_ + "'").c_str()), 0);
    std::ofstream corpus(dir_ + "/corpus.txt");
    for (int i = 0; i < 400; ++i) {
      corpus << "Using the numbers [" << (i * 7) % 100 << ", " << (i * 13) % 100 << ", " << (i * 31) % 100
             << "], create an equation that equals " << i << ".\n"
             << "Let me solve this step by step. <think> " << i << " + " << i % 10 << " </think>\n"
             << "The quick brown fox jumps over the lazy dog, caf\xC3\xA9 na\xC3\xAFve.\n";
    }
    corpus.close();
    std::string cmd = "spm_train --input='" + dir_ + "/corpus.txt' --model_prefix='" + dir_ +
                      "/tokenizer' --vocab_size=384 --model_type=bpe --character_coverage=1.0 "
                      "--byte_fallback=true --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=3 > '" +
                      dir_ + "/train.log' 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(dir_ + "/train.log");
  }
  static void TearDownTestSuite() { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  // ids from the spm_encode tool for one line of text.
  static std::vector<int64_t> spm_encode(const std::string& text) {
    std::ofstream(dir_ + "/in.txt") << text << "\n";
    std::string cmd = "spm_encode --model='" + dir_ + "/tokenizer.model' --output_format=id < '" + dir_ +
                      "/in.txt' > '" + dir_ + "/out.txt'";
    EXPECT_EQ(std::system(cmd.c_str()), 0);
    std::istringstream in(slurp(dir_ + "/out.txt"));
    std::vector<int64_t> ids;
    int64_t id;
    while (in >> id) ids.push_back(id);
    return ids;
  }
  static std::string dir_;
};
std::string SentencePiece::dir_;

TEST_F(SentencePiece, MatchesSpmEncodeInAProcessThatUsesLibTorch) {
  // LibTorch really runs in this process.
  at::Tensor x = at::arange(6, at::kFloat).reshape({2, 3});  // (2, 3)
  EXPECT_FLOAT_EQ(x.sum().item<float>(), 15.0f);

  auto t = load_tokenizer(dir_);
  EXPECT_EQ(t->kind(), "sentencepiece");
  EXPECT_EQ(t->vocab_size(), 384);
  for (std::string text : {"Using the numbers [44, 19, 35], create an equation that equals 98.",
                           "Let me solve this step by step. <think> 7 + 3 </think>",
                           "The lazy dog, caf\xC3\xA9 na\xC3\xAFve!", "unseen words: zyxwvut 12345"}) {
    auto ids = t->encode(text);
    EXPECT_EQ(ids, spm_encode(text)) << text;
    EXPECT_EQ(t->decode(ids), text);
  }
  EXPECT_FLOAT_EQ((x * 2).sum().item<float>(), 30.0f);
}

TEST_F(SentencePiece, SpecialTokens) {
  auto t = load_tokenizer(dir_);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_EQ(t->pad_id(), 3);
  EXPECT_EQ(t->id_to_token(1), "<s>");
  EXPECT_EQ(t->token_to_id("</s>"), 2);
  EXPECT_FALSE(t->token_to_id("no-such-piece").has_value());
  EXPECT_TRUE(t->is_special(2));
  EXPECT_FALSE(t->is_special(10));
  // BOS added by add_special_tokens (LlamaTokenizer's default), control pieces in the text matched whole.
  auto body = t->encode("hello world");
  auto with_bos = t->encode("hello world", true);
  ASSERT_EQ(with_bos.size(), body.size() + 1);
  EXPECT_EQ(with_bos.front(), 1);
  auto ids = t->encode("hello</s>");
  EXPECT_EQ(ids.back(), 2);
  EXPECT_EQ(t->decode(ids), "hello</s>");
  EXPECT_EQ(t->decode(ids, /*skip_special_tokens=*/true), "hello");
  EXPECT_EQ(t->decode({5, 100000, -3}), t->decode({5}));  // unknown ids skipped
  EXPECT_THROW(t->id_to_token(384), Error);
}

TEST_F(SentencePiece, MissingModelIsAnIoError) {
  EXPECT_THROW(SentencePieceTokenizer(dir_ + "/nope.model", ""), IoError);
}

}  // namespace
}  // namespace tinyzero
