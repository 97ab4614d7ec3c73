// The SFT examples reader: prompt/response pairs from comma-separated JSONL files, bad and blank lines
// refused with file:line.
#include "trainer/sft_data.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tinyzero/core/errors.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

std::string write(const std::string& name, const std::string& text) {
  const fs::path p = fs::temp_directory_path() / ("tz_sft_data_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p.string();
}

std::string error_of(const std::string& paths) {
  try {
    read_sft_examples(paths);
  } catch (const IoError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SftData, ReadsPairsFromSeveralFiles) {
  const std::string a = write("a.jsonl", "{\"prompt\": \"p1\", \"response\": \"r1\"}\n");
  const std::string b = write(
      "b.jsonl", "{\"prompt\": \"p2\", \"response\": \"r2\"}\n{\"prompt\": \"p3\", \"response\": \"r3\"}");
  const std::vector<SftExample> examples = read_sft_examples(a + "," + b);
  ASSERT_EQ(examples.size(), 3u);
  EXPECT_EQ(examples[2].prompt, "p3");
  EXPECT_EQ(examples[2].response, "r3");
  fs::remove(a);
  fs::remove(b);
}

TEST(SftData, BadAndBlankLinesAreRefusedWithFileAndLine) {
  const std::string good = "{\"prompt\": \"p\", \"response\": \"r\"}\n";
  const std::string blank = write("blank.jsonl", good + "\n" + good);
  EXPECT_NE(error_of(blank).find(blank + ":2: blank line"), std::string::npos) << error_of(blank);
  const std::string spaces = write("spaces.jsonl", good + good + "  \t\n");
  EXPECT_NE(error_of(spaces).find(spaces + ":3: blank line"), std::string::npos) << error_of(spaces);
  const std::string bad = write("bad.jsonl", good + "{\"prompt\": 1, \"response\": \"r\"}\n");
  EXPECT_NE(error_of(bad).find(bad + ":2: expected {\"prompt\""), std::string::npos) << error_of(bad);
  for (const auto& p : {blank, spaces, bad}) fs::remove(p);
}

}  // namespace
}  // namespace tinyzero
