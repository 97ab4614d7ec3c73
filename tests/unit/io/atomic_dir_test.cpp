// Tests of write_directory_atomic: creation, replacement through the atomic exchange and through the
// two-rename fallback, failure while filling, and the refusal to replace unrelated directories.
#include "tinyzero/io/atomic_dir.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>

#include "tinyzero/core/errors.h"
#include "tinyzero/io/safetensors.h"
#include "unit/io/test_util.h"

namespace fs = std::filesystem;

namespace tinyzero {
namespace {

using ::testing::HasSubstr;
using testing_io::read_bytes;
using testing_io::TempDir;
using testing_io::write_bytes;

std::set<std::string> listing(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

// Fills a directory with config.json and one named file.
std::function<void(const std::string&)> filler(const std::string& name, const std::string& content) {
  return [=](const std::string& tmp) {
    write_bytes(tmp + "/config.json", "{}");
    write_bytes(tmp + "/" + name, content);
  };
}

TEST(AtomicDir, CreatesParentsAndLeavesNoTemporaries) {
  TempDir tmp;
  const std::string dir = tmp.file("a/b/ckpt");
  write_directory_atomic(dir, filler("x.txt", "one"));
  EXPECT_EQ(read_bytes(dir + "/x.txt"), "one");
  EXPECT_EQ(listing(tmp.file("a/b")), (std::set<std::string>{"ckpt"}));
}

class AtomicDirReplace : public ::testing::TestWithParam<bool> {};

TEST_P(AtomicDirReplace, ReplacesWholeAndKeepsMappedFilesReadable) {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  write_directory_atomic(dir, [](const std::string& t) {
    write_bytes(t + "/config.json", "{}");
    write_bytes(t + "/old-only.txt", "old");
    save_safetensors(t + "/w.safetensors", {{"w", at::full({3}, 7.0f)}});
  });
  at::Tensor mapped = SafetensorsFile::open(dir + "/w.safetensors").tensor("w");

  AtomicDirOptions options;
  options.allow_exchange = GetParam();
  write_directory_atomic(dir, filler("new.txt", "new"), options);
  EXPECT_EQ(listing(dir), (std::set<std::string>{"config.json", "new.txt"}));
  EXPECT_EQ(listing(tmp.path()), (std::set<std::string>{"ckpt"}));  // old content and temporaries gone
  EXPECT_TRUE(at::equal(mapped, at::full({3}, 7.0f)));              // still readable after deletion
}

INSTANTIATE_TEST_SUITE_P(ExchangeAndFallback, AtomicDirReplace, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "RenameExchange" : "TwoRenames");
                         });

TEST(AtomicDir, FailureWhileFillingLeavesTheOldDirectory) {
  TempDir tmp;
  const std::string dir = tmp.file("ckpt");
  write_directory_atomic(dir, filler("x.txt", "old"));
  struct Boom {};
  EXPECT_THROW(write_directory_atomic(dir,
                                      [](const std::string& t) {
                                        write_bytes(t + "/config.json", "{}");
                                        throw Boom{};
                                      }),
               Boom);
  EXPECT_EQ(read_bytes(dir + "/x.txt"), "old");
  EXPECT_EQ(listing(tmp.path()), (std::set<std::string>{"ckpt"}));
}

TEST(AtomicDir, RefusesToReplaceUnrelatedDirectoriesAndFiles) {
  TempDir tmp;
  fs::create_directories(tmp.file("home"));
  write_bytes(tmp.file("home/thesis.tex"), "precious");
  try {
    write_directory_atomic(tmp.file("home"), filler("x.txt", "x"));
    ADD_FAILURE();
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr(tmp.file("home")));
    EXPECT_THAT(e.what(), HasSubstr("no config.json"));
  }
  EXPECT_EQ(listing(tmp.file("home")), (std::set<std::string>{"thesis.tex"}));
  write_bytes(tmp.file("file"), "x");
  EXPECT_THROW(write_directory_atomic(tmp.file("file"), filler("x.txt", "x")), IoError);
  EXPECT_THROW(write_directory_atomic(tmp.file("."), filler("x.txt", "x")), IoError);
  EXPECT_EQ(listing(tmp.path()), (std::set<std::string>{"home", "file"}));

  // With another marker (or none), other kinds of directories can be replaced.
  AtomicDirOptions options;
  options.replaceable_marker = "thesis.tex";
  write_directory_atomic(tmp.file("home"), filler("x.txt", "x"), options);
  EXPECT_EQ(listing(tmp.file("home")), (std::set<std::string>{"config.json", "x.txt"}));
}

}  // namespace
}  // namespace tinyzero
