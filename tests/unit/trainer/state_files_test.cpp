// Optimizer state files: pieces written by several ranks read back whole or by range, at another split;
// the single-file layout of older checkpoints; an incomplete or corrupt set is a clear IoError.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "support/tiny_run.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/io/safetensors.h"
#include "trainer/state_files.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace tinyzero {
namespace {

class StateFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::fresh_temp_dir("tz_state_files");
    torch::manual_seed(3);
    a_ = torch::randn({5, 3});  // 15 elements: over 2 ranks, chunks of 8 with one element of padding
    b_ = torch::randn({4});
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Rank r of 2 writes its chunk of a_ and b_ as ZeRO-2/3 does (flat chunks of ceil(numel / 2)).
  void write_rank(int r, const std::string& stem = "optimizer") {
    auto chunk = [&](const at::Tensor& t) {
      const int64_t c = (t.numel() + 1) / 2, begin = r * c, end = std::min(t.numel(), begin + c);
      return std::make_pair(begin, t.reshape({-1}).narrow(0, begin, end - begin));
    };
    std::vector<StatePiece> pieces;
    for (const auto& [name, t] :
         {std::make_pair(std::string("exp_avg.a"), a_), std::make_pair(std::string("exp_avg.b"), b_)}) {
      auto [offset, values] = chunk(t);
      pieces.push_back({name, t.sizes().vec(), offset, values});
    }
    write_state_file(dir_, stem, r, 2, pieces);
  }

  std::string dir_;
  at::Tensor a_, b_;
};

TEST_F(StateFilesTest, PiecesOfTwoRanksReadBackWholeAndByAnyRange) {
  write_rank(0);
  write_rank(1);
  EXPECT_TRUE(fs::exists(dir_ + "/optimizer-rank1-of-2.safetensors"));
  StateFiles files = StateFiles::open(dir_, "optimizer");
  EXPECT_EQ(files.files(), 2);
  EXPECT_EQ(files.names(), (std::vector<std::string>{"exp_avg.a", "exp_avg.b"}));
  EXPECT_EQ(files.shape("exp_avg.a"), (std::vector<int64_t>{5, 3}));
  EXPECT_TRUE(torch::equal(files.whole("exp_avg.a"), a_));
  EXPECT_TRUE(torch::equal(files.whole("exp_avg.b"), b_));
  // Another split (3 ranks: chunks of 5), straddling the two files' boundary at element 8.
  EXPECT_TRUE(torch::equal(files.read("exp_avg.a", 5, 10), a_.reshape({-1}).narrow(0, 5, 5)));
  EXPECT_EQ(files.read("exp_avg.a", 15, 15).numel(), 0);
  EXPECT_THROW(files.read("exp_avg.a", 10, 16), Error);
  EXPECT_FALSE(files.contains("master.a"));
  EXPECT_THROW(files.shape("master.a"), IoError);
}

TEST_F(StateFilesTest, TheSingleFileLayoutOfOlderCheckpointsReads) {
  save_safetensors(dir_ + "/optimizer.safetensors", {{"exp_avg.a", a_}, {"exp_avg.b", b_}},
                   {{"format", "tinyzero-adamw"}});
  StateFiles files = StateFiles::open(dir_, "optimizer");
  EXPECT_EQ(files.files(), 1);
  EXPECT_TRUE(torch::equal(files.whole("exp_avg.a"), a_));
  EXPECT_TRUE(torch::equal(files.read("exp_avg.a", 2, 9), a_.reshape({-1}).narrow(0, 2, 7)));
}

TEST_F(StateFilesTest, AMissingRankFileIsAClearError) {
  write_rank(0);
  try {
    StateFiles::open(dir_, "optimizer");
    FAIL() << "a set missing rank 1's file was accepted";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("lacks optimizer-rank1-of-2.safetensors: the checkpoint is incomplete"));
  }
  // No state at all, and files of two different sets.
  EXPECT_THROW(StateFiles::open(dir_, "critic_optimizer"), IoError);
  write_state_file(dir_, "optimizer", 0, 3, {});
  try {
    StateFiles::open(dir_, "optimizer");
    FAIL() << "files of two sets were accepted";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("holds state files of two sets"));
  }
}

TEST_F(StateFilesTest, PiecesThatLeaveAGapOrOverlapAreCorrupt) {
  // Rank 1 claims the same elements as rank 0: elements 8..15 are missing, 0..8 stored twice.
  write_rank(0);
  write_state_file(dir_, "optimizer", 1, 2,
                   {{"exp_avg.a", {5, 3}, 0, a_.reshape({-1}).narrow(0, 0, 8)},
                    {"exp_avg.b", {4}, 2, b_.narrow(0, 2, 2)}});
  try {
    StateFiles::open(dir_, "optimizer");
    FAIL() << "overlapping pieces were accepted";
  } catch (const IoError& e) {
    EXPECT_THAT(e.what(), HasSubstr("exp_avg.a elements [0, 8) are stored twice"));
  }
  // A piece that does not fit its tensor is refused when written.
  EXPECT_THROW(write_state_file(dir_, "bad", 0, 1, {{"exp_avg.b", {4}, 3, b_.narrow(0, 0, 2)}}), Error);
}

}  // namespace
}  // namespace tinyzero
