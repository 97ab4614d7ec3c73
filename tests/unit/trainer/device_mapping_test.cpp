// Which GPU a rank uses: its local rank when it sees the node's GPUs (torchrun), cuda:0 when the launcher
// shows each task only its own (SLURM --gpus-per-task=1), a clear error when it has none.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tinyzero/core/errors.h"
#include "trainer/train_context.h"

namespace tinyzero {
namespace {

TEST(DeviceMapping, ARankSeeingAllGpusUsesItsLocalRank) {
  EXPECT_EQ(gpu_of_rank(0, 8), 0);
  EXPECT_EQ(gpu_of_rank(5, 8), 5);
  EXPECT_EQ(gpu_of_rank(1, 2), 1);
}

TEST(DeviceMapping, ARankSeeingOneGpuUsesCudaZeroWhateverItsLocalRank) {
  EXPECT_EQ(gpu_of_rank(0, 1), 0);
  EXPECT_EQ(gpu_of_rank(1, 1), 0);  // was "invalid device ordinal" before
  EXPECT_EQ(gpu_of_rank(7, 1), 0);
}

TEST(DeviceMapping, ARankWithoutAGpuIsAClearError) {
  try {
    gpu_of_rank(2, 2);
    FAIL() << "local rank 2 of 2 visible GPUs was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(),
                ::testing::HasSubstr("local rank 2 has no GPU: this process sees 2 CUDA device(s)"));
  }
  EXPECT_THROW(gpu_of_rank(0, 0), ConfigError);
}

}  // namespace
}  // namespace tinyzero
