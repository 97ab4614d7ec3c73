// Named statistics reduced over ranks: read back by name, refused when a name is repeated or unknown.
// (Across several processes they are exercised by the dist tests of the trainer.)
#include "trainer/rank_stats.h"

#include <gtest/gtest.h>

#include "tinyzero/core/errors.h"
#include "tinyzero/dist/dist_env.h"

namespace tinyzero {
namespace {

TEST(RankStats, ValuesAreReadBackByNameAfterTheReduction) {
  auto pg = init_process_group(DistEnv{}, "auto", at::Device(at::kCPU), 10);
  RankStats sum(ReduceOp::kSum);
  sum.add("tokens", 12).add("loss", 0.5).add("count", 3);
  sum.reduce(*pg);
  EXPECT_DOUBLE_EQ(sum["loss"], 0.5);
  EXPECT_DOUBLE_EQ(sum["count"], 3);
  EXPECT_DOUBLE_EQ(sum["tokens"], 12);
}

TEST(RankStats, RepeatedAndUnknownNamesAreRefused) {
  RankStats stats(ReduceOp::kMax);
  stats.add("a", 1);
  EXPECT_THROW(stats.add("a", 2), Error);
  EXPECT_THROW(stats["b"], Error);
}

}  // namespace
}  // namespace tinyzero
