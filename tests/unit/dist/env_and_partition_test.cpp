// Unit tests of the pure logic of the dist module: reading torchrun/SLURM environments (detect_dist_env)
// and the ZeRO-1 assignment of tensors to ranks (partition_by_size, checked against brute force).
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tinyzero/core/errors.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/dist/partition.h"
#include "tinyzero/dist/process_group.h"

namespace tinyzero {
namespace {

const char* const kVars[] = {"RANK",
                             "WORLD_SIZE",
                             "LOCAL_RANK",
                             "LOCAL_WORLD_SIZE",
                             "MASTER_ADDR",
                             "MASTER_PORT",
                             "SLURM_PROCID",
                             "SLURM_NTASKS",
                             "SLURM_LOCALID",
                             "SLURM_NTASKS_PER_NODE",
                             "SLURM_TASKS_PER_NODE",
                             "SLURM_LAUNCH_NODE_IPADDR",
                             "TORCHELASTIC_USE_AGENT_STORE",
                             "TORCHELASTIC_RESTART_COUNT"};

// Sets exactly the given variables (all others of kVars unset), restoring the old values afterwards.
class EnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      if (const char* old = std::getenv(v)) saved_[v] = old;
      unsetenv(v);
    }
  }
  void TearDown() override {
    for (const char* v : kVars) unsetenv(v);
    for (auto& [k, v] : saved_) setenv(k.c_str(), v.c_str(), 1);
  }
  void set(const std::map<std::string, std::string>& vars) {
    for (auto& [k, v] : vars) setenv(k.c_str(), v.c_str(), 1);
  }
  // The ConfigError message of detect_dist_env() ("" when it does not throw).
  std::string error() {
    try {
      detect_dist_env();
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }
  std::map<std::string, std::string> saved_;
};

TEST_F(EnvTest, NoVariablesMeansSingleProcess) {
  DistEnv env = detect_dist_env();
  EXPECT_EQ(env.rank, 0);
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.local_rank, 0);
  EXPECT_EQ(env.local_world_size, 1);
  EXPECT_EQ(env.source, "single");
  EXPECT_FALSE(env.is_distributed());
  EXPECT_EQ(describe(env), "single process");
}

TEST_F(EnvTest, Torchrun) {
  set({{"RANK", "5"},
       {"WORLD_SIZE", "8"},
       {"LOCAL_RANK", "1"},
       {"LOCAL_WORLD_SIZE", "4"},
       {"MASTER_ADDR", "10.0.0.7"},
       {"MASTER_PORT", "29501"}});
  DistEnv env = detect_dist_env();
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 4);
  EXPECT_EQ(env.master_addr, "10.0.0.7");
  EXPECT_EQ(env.master_port, 29501);
  EXPECT_EQ(env.source, "torchrun");
  EXPECT_EQ(describe(env), "rank 5/8 (local 1/4) via torchrun, rendezvous 10.0.0.7:29501");
}

TEST_F(EnvTest, TorchrunAgentStore) {
  set({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "29400"}});
  EXPECT_FALSE(detect_dist_env().use_agent_store);
  set({{"TORCHELASTIC_USE_AGENT_STORE", "True"}, {"TORCHELASTIC_RESTART_COUNT", "3"}});
  DistEnv env = detect_dist_env();
  EXPECT_TRUE(env.use_agent_store);
  EXPECT_EQ(env.restart_count, 3);
  set({{"TORCHELASTIC_USE_AGENT_STORE", "False"}});
  EXPECT_FALSE(detect_dist_env().use_agent_store);
  set({{"TORCHELASTIC_RESTART_COUNT", "x"}});
  EXPECT_NE(error().find("TORCHELASTIC_RESTART_COUNT='x'"), std::string::npos) << error();
}

TEST_F(EnvTest, TorchrunLocalDefaultsToOneNode) {
  set({{"RANK", "2"}, {"WORLD_SIZE", "3"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1234"}});
  DistEnv env = detect_dist_env();
  EXPECT_EQ(env.local_rank, 2);
  EXPECT_EQ(env.local_world_size, 3);
}

TEST_F(EnvTest, WorldOfOneNeedsNoMaster) {
  set({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  DistEnv env = detect_dist_env();
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.master_port, 0);
}

TEST_F(EnvTest, GarbledValuesNameTheVariable) {
  set({{"RANK", "one"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}});
  EXPECT_NE(error().find("RANK='one' is not an integer"), std::string::npos) << error();
  set({{"RANK", "2"}});
  EXPECT_NE(error().find("RANK=2 is out of range [0, 1]"), std::string::npos) << error();
  set({{"RANK", "1"}, {"WORLD_SIZE", "2x"}});
  EXPECT_NE(error().find("WORLD_SIZE='2x'"), std::string::npos) << error();
  set({{"WORLD_SIZE", "0"}});
  EXPECT_NE(error().find("WORLD_SIZE=0 is out of range"), std::string::npos) << error();
  set({{"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}});
  EXPECT_NE(error().find("MASTER_PORT=70000 is out of range [1, 65535]"), std::string::npos) << error();
  set({{"MASTER_PORT", " 80"}});
  EXPECT_NE(error().find("MASTER_PORT=' 80' is not an integer"), std::string::npos) << error();
  set({{"MASTER_PORT", "80"}, {"LOCAL_RANK", "3"}, {"LOCAL_WORLD_SIZE", "2"}});
  EXPECT_NE(error().find("LOCAL_RANK=3 is out of range [0, 1]"), std::string::npos) << error();
  set({{"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "4"}});
  EXPECT_NE(error().find("LOCAL_WORLD_SIZE=4 is out of range [1, 2]"), std::string::npos) << error();
  set({{"LOCAL_WORLD_SIZE", "2"}});
  EXPECT_EQ(error(), "");
}

TEST_F(EnvTest, InconsistentSetsAreRejected) {
  set({{"RANK", "0"}});
  EXPECT_NE(error().find("RANK is set (0) but WORLD_SIZE is not"), std::string::npos) << error();
  unsetenv("RANK");
  set({{"WORLD_SIZE", "4"}});
  EXPECT_NE(error().find("WORLD_SIZE is set (4) but RANK is not"), std::string::npos) << error();
  set({{"RANK", "1"}});
  EXPECT_NE(error().find("MASTER_ADDR is not set"), std::string::npos) << error();
  set({{"MASTER_ADDR", "node1"}});
  EXPECT_NE(error().find("MASTER_PORT is not set"), std::string::npos) << error();
}

TEST_F(EnvTest, Slurm) {
  set({{"SLURM_PROCID", "3"},
       {"SLURM_NTASKS", "4"},
       {"SLURM_LOCALID", "1"},
       {"SLURM_TASKS_PER_NODE", "2(x2)"},
       {"SLURM_LAUNCH_NODE_IPADDR", "192.168.1.4"}});
  DistEnv env = detect_dist_env();
  EXPECT_EQ(env.source, "slurm");
  EXPECT_EQ(env.rank, 3);
  EXPECT_EQ(env.world_size, 4);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.local_world_size, 2);
  EXPECT_EQ(env.master_addr, "192.168.1.4");
  EXPECT_EQ(env.master_port, 29500);
  // MASTER_ADDR/MASTER_PORT and SLURM_NTASKS_PER_NODE take precedence.
  set({{"MASTER_ADDR", "head"}, {"MASTER_PORT", "4000"}, {"SLURM_NTASKS_PER_NODE", "4"}});
  env = detect_dist_env();
  EXPECT_EQ(env.master_addr, "head");
  EXPECT_EQ(env.master_port, 4000);
  EXPECT_EQ(env.local_world_size, 4);
  // torchrun's variables win over SLURM's (torchrun inside an allocation).
  set({{"RANK", "0"}, {"WORLD_SIZE", "2"}});
  EXPECT_EQ(detect_dist_env().source, "torchrun");
}

TEST_F(EnvTest, SlurmErrors) {
  set({{"SLURM_PROCID", "0"}});
  EXPECT_NE(error().find("SLURM_NTASKS is not"), std::string::npos) << error();
  set({{"SLURM_NTASKS", "2"}, {"SLURM_PROCID", "2"}, {"SLURM_LAUNCH_NODE_IPADDR", "h"}});
  EXPECT_NE(error().find("SLURM_PROCID=2 is out of range [0, 1]"), std::string::npos) << error();
  set({{"SLURM_PROCID", "1"}});
  unsetenv("SLURM_LAUNCH_NODE_IPADDR");
  EXPECT_NE(error().find("MASTER_ADDR is not set"), std::string::npos) << error();
}

// --- partition_by_size ---

// The smallest possible largest share over all contiguous splits into `world` ranges (exhaustive DP).
int64_t best_bottleneck(const std::vector<int64_t>& x, int world) {
  const size_t n = x.size();
  const int64_t kInf = std::numeric_limits<int64_t>::max();
  // best[k][i]: smallest largest share of the first i tensors over k ranks.
  std::vector<std::vector<int64_t>> best(world + 1, std::vector<int64_t>(n + 1, kInf));
  best[0][0] = 0;
  for (int k = 1; k <= world; ++k)
    for (size_t i = 0; i <= n; ++i) {
      int64_t sum = 0;
      for (size_t j = i + 1; j-- > 0;) {  // last range is x[j..i)
        if (j < i) sum += x[j];
        if (best[k - 1][j] != kInf) best[k][i] = std::min(best[k][i], std::max(best[k - 1][j], sum));
      }
    }
  return best[world][n];
}

TEST(PartitionBySize, HandComputed) {
  EXPECT_EQ(partition_by_size({1, 1, 1, 1}, 3), (std::vector<int>{0, 1, 1, 2}));
  EXPECT_EQ(partition_by_size({100, 1, 1, 1, 1}, 3), (std::vector<int>{0, 1, 1, 2, 2}));
  EXPECT_EQ(partition_by_size({10, 1, 1, 1, 1, 10}, 2), (std::vector<int>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(partition_by_size({5, 5}, 4), (std::vector<int>{0, 1}));
  EXPECT_EQ(partition_by_size({3, 4, 5}, 1), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(partition_by_size({}, 4), (std::vector<int>{}));
  EXPECT_EQ(owned_sizes({10, 1, 1, 1, 1, 10}, {0, 0, 0, 1, 1, 1}, 2), (std::vector<int64_t>{12, 12}));
  EXPECT_THROW(partition_by_size({1}, 0), Error);
  EXPECT_THROW(partition_by_size({1, -2}, 2), Error);
}

TEST(PartitionBySize, OptimalAndContiguousOnRandomSizes) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 12);
    const int world = 1 + static_cast<int>(rng() % 6);
    std::vector<int64_t> x(n);
    for (auto& v : x)
      v = (rng() % 4 == 0) ? static_cast<int64_t>(rng() % 1000) : static_cast<int64_t>(rng() % 20);
    auto owners = partition_by_size(x, world);
    ASSERT_EQ(owners.size(), x.size());
    for (size_t i = 0; i < owners.size(); ++i) {
      ASSERT_GE(owners[i], 0);
      ASSERT_LT(owners[i], world);
      if (i > 0) {
        ASSERT_LE(owners[i - 1], owners[i]) << "ranges must be contiguous";
      }
    }
    auto sizes = owned_sizes(x, owners, world);
    EXPECT_EQ(*std::max_element(sizes.begin(), sizes.end()), best_bottleneck(x, world)) << "trial " << trial;
  }
}

// A Qwen2.5-7B-like parameter list over 8 ranks: the largest share is the embedding (545M), the rest
// is spread so that no rank holds more than the embedding.
TEST(PartitionBySize, SevenBillionModelOverEightRanks) {
  std::vector<int64_t> x{152064LL * 3584};
  for (int layer = 0; layer < 28; ++layer)
    for (int64_t v : {3584LL * 3584, 3584LL, 512LL * 3584, 512LL, 512LL * 3584, 512LL, 3584LL * 3584,
                      18944LL * 3584, 18944LL * 3584, 3584LL * 18944, 3584LL, 3584LL})
      x.push_back(v);
  x.push_back(3584);
  x.push_back(152064LL * 3584);  // untied lm_head
  auto owners = partition_by_size(x, 8);
  auto sizes = owned_sizes(x, owners, 8);
  int64_t total = 0;
  for (auto v : x) total += v;
  EXPECT_EQ(*std::max_element(sizes.begin(), sizes.end()), best_bottleneck(x, 8));
  EXPECT_LT(*std::max_element(sizes.begin(), sizes.end()), total / 8 * 1.15);
  EXPECT_GT(*std::min_element(sizes.begin(), sizes.end()), total / 8 * 0.7);
}

// --- the trivial group of one process ---

TEST(ProcessGroupSingle, EveryCollectiveIsANoOp) {
  DistEnv env;  // world of 1
  auto pg = init_process_group(env, "auto", c10::Device(c10::kCPU), 5.0);
  EXPECT_EQ(pg->world_size(), 1);
  EXPECT_EQ(pg->rank(), 0);
  EXPECT_TRUE(pg->is_main());
  EXPECT_EQ(pg->backend(), "none");
  at::Tensor t = at::full({3}, 2.0);
  pg->all_reduce_sum(t);
  EXPECT_TRUE(at::equal(t, at::full({3}, 2.0)));
  std::vector<at::Tensor> ts{t};
  pg->broadcast(ts, 0);
  pg->broadcast_from_owners(ts, {0});
  EXPECT_EQ(pg->all_reduce({1.5, -2.0}, ReduceOp::kMax), (std::vector<double>{1.5, -2.0}));
  pg->barrier();
  EXPECT_THROW(pg->broadcast(ts, 1), Error);
  EXPECT_THROW(pg->broadcast_from_owners(ts, {0, 0}), Error);
}

TEST(ProcessGroupSingle, BadBackendOrTimeoutIsAConfigError) {
  DistEnv env;
  EXPECT_THROW(init_process_group(env, "mpi", c10::Device(c10::kCPU), 5.0), ConfigError);
  EXPECT_THROW(init_process_group(env, "gloo", c10::Device(c10::kCPU), 0.0), ConfigError);
  env.world_size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = 1;
  EXPECT_THROW(init_process_group(env, "nccl", c10::Device(c10::kCPU), 5.0), ConfigError);
  try {
    init_process_group(env, "nccl", c10::Device(c10::kCPU), 5.0);
  } catch (const ConfigError& e) {
    auto avail = available_backends();
    bool have_nccl = std::find(avail.begin(), avail.end(), "nccl") != avail.end();
    EXPECT_NE(std::string(e.what()).find(have_nccl ? "needs CUDA tensors" : "not compiled into this build"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace tinyzero
