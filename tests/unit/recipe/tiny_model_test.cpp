// Tests of the tiny model made from nothing (recipe/tiny_model.h): the tokenizer's corpus is a pure
// function of the spec with both parts in their configs' templates, the demo's spec makes the tokenizer
// of the stored warm-up byte for byte (tests/data/tiny-demo-warm, made by the shell script this
// replaced), and the output directory appears whole and replaces only what it wrote.
#include "tinyzero/recipe/tiny_model.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/model/model_config.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

using ::testing::HasSubstr;

const std::string kSource = TZ_SOURCE_DIR;

TinyModelSpec demo_spec() {
  TinyModelSpec spec;
  spec.model_config = kSource + "/configs/tiny/model.json";
  spec.expression_data = load_config(kSource + "/configs/smoke.yaml").config.data;
  spec.trace_data = load_config(kSource + "/configs/tiny/grpo.yaml").config.data;
  return spec;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(TinyModel, TheTokenizerCorpusIsAPureFunctionOfTheSpec) {
  TinyModelSpec spec = demo_spec();
  spec.expression_problems = 50;
  spec.trace_problems = 20;
  const std::string text = tiny_model_tokenizer_corpus(spec);
  EXPECT_EQ(text, tiny_model_tokenizer_corpus(spec));
  EXPECT_EQ(count(text, "<|endoftext|>\n"), 70u);
  EXPECT_EQ(count(text, "Using the numbers ["), 50u);  // configs/smoke.yaml's template
  EXPECT_EQ(count(text, "Numbers ["), 20u);            // configs/tiny/grpo.yaml's
  EXPECT_THAT(text, HasSubstr("</think> <answer>"));
  spec.seed = 12;
  EXPECT_NE(text, tiny_model_tokenizer_corpus(spec));
}

class TinyModelDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("tz_tiny_model_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TinyModelDir, TheDemoSpecLearnsTheStoredWarmUpsMerges) {
  const std::string out = dir_ + "/tiny";
  const TinyModelResult made = make_tiny_model(demo_spec(), out);
  EXPECT_EQ(made.vocab_size, 333);
  EXPECT_EQ(made.merges, 74);
  EXPECT_GT(made.parameters, 2'000'000);
  // The stored warm-up's tokenizer, byte for byte (part 1's operators are mawk's rand() sequence).
  EXPECT_EQ(read_file(out + "/tokenizer/tokenizer.json"),
            read_file(std::string(TZ_TEST_DATA_DIR) + "/tiny-demo-warm/tokenizer.json"));
  // The model directory holds its tokenizer and stops at its EOS.
  EXPECT_TRUE(fs::exists(out + "/model/tokenizer.json"));
  EXPECT_EQ(load_transformer_config(out + "/model").eos_token_ids, std::vector<int64_t>{330});
  // Nothing is left beside it.
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1u);
  // Made again in place: replaced whole.
  EXPECT_NO_THROW(make_tiny_model(demo_spec(), out));
  // A directory that is not one of ours is never replaced.
  fs::create_directories(dir_ + "/mine");
  write_file_atomic(dir_ + "/mine/notes.txt", "keep me");
  try {
    make_tiny_model(demo_spec(), dir_ + "/mine");
    FAIL() << "no error";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no model/config.json"));
  }
  EXPECT_EQ(read_file(dir_ + "/mine/notes.txt"), "keep me");
}

}  // namespace
}  // namespace tinyzero
