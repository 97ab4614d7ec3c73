// Collectives between two GPUs through the project's ProcessGroup over NCCL: an all-reduce (one tensor
// and bucketed mixed dtypes, as gradients are reduced), a broadcast into parameters (as the start of a
// data-parallel run), host-value reductions and a barrier, on two real ranks (processes).
//
// GpuNccl.AllReduceAndBroadcastOnTwoRanks (the parent) re-executes this binary (/proc/self/exe) as
// ranks 0 and 1 with --gtest_filter=GpuNcclWorker.DISABLED_Collectives, TZ_GPU_NCCL_WORKER=1 and
// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT); rank r uses cuda:r.
// GpuNcclWorker.DISABLED_Collectives is a rank's body: disabled (not run, not skipped) in a normal run,
// so that a GPU run that allows no skips (scripts/gpu-check.sh) does not count it.
//
// Device under test: 2 CUDA devices; the test skips with fewer. With TINYZERO_GPU_TESTS_DEVICE=cpu the
// ranks run on the CPU over Gloo instead (a rehearsal of the test logic on a machine without a GPU;
// see gpu_device.h).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <ATen/ATen.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gpu/gpu/gpu_device.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/dist/process_group.h"

extern char** environ;

namespace tinyzero {
namespace {

using testing_gpu::device_under_test;
using testing_gpu::DeviceUnderTest;

constexpr int kWorld = 2;
constexpr double kCollectiveTimeoutS = 60;  // NCCL's first communicator set-up can take seconds
constexpr double kRankLimitS = 180;         // a rank still running after this is killed: a hang

bool is_worker() { return std::getenv("TZ_GPU_NCCL_WORKER") != nullptr; }

// Rank r's value of test tensor i: multiples of 1/2 of magnitude <= 24, so sums over 2 ranks are
// exact in every dtype (bf16 included) whatever order NCCL adds them in: results compare with ==.
at::Tensor rank_tensor(int rank, int i, at::IntArrayRef shape, at::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 * rank + i);
  at::Tensor t = (at::randn(shape, gen, at::kFloat).clamp(-3, 3) * 8 * 2).round() / 2;
  return t.to(dtype);
}

// Gradient-like tensors: fp32 and bf16, sizes that are no multiple of a bucket, a transposed view.
std::vector<at::Tensor> grads_of(int rank, const c10::Device& device) {
  std::vector<at::Tensor> out{
      rank_tensor(rank, 0, {700, 96}, at::kFloat), rank_tensor(rank, 1, {96}, at::kFloat),
      rank_tensor(rank, 2, {256, 96}, at::kBFloat16), rank_tensor(rank, 3, {33}, at::kBFloat16),
      rank_tensor(rank, 4, {32, 96}, at::kFloat).t()};  // (96, 32) strided
  for (auto& t : out) t = t.to(device);
  return out;
}

// The rank's body: every collective a data-parallel step uses, checked against values computed here.
TEST(GpuNcclWorker, DISABLED_Collectives) {
  if (!is_worker())
    GTEST_SKIP() << "a rank of GpuNccl.AllReduceAndBroadcastOnTwoRanks; runs only in a child process";
  const DeviceUnderTest dut = device_under_test();
  const DistEnv env = detect_dist_env();
  ASSERT_EQ(env.world_size, kWorld);
  const c10::Device device = dut.rehearsal
                                 ? c10::Device(c10::kCPU)
                                 : c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  const std::string backend = dut.rehearsal ? "gloo" : "nccl";
  auto pg = init_process_group(env, backend, device, kCollectiveTimeoutS);
  ASSERT_EQ(pg->backend(), backend);
  ASSERT_EQ(pg->world_size(), kWorld);
  const int rank = pg->rank();
  ASSERT_EQ(rank, env.rank);

  // One tensor, in place: (r + 1) * [0, 1, ..., 999] summed over ranks 0 and 1 is 3 * [0, ..., 999].
  at::Tensor x = at::arange(1000, at::TensorOptions().dtype(at::kFloat).device(device)) * (rank + 1);
  pg->all_reduce_sum(x);
  EXPECT_EQ(x.device(), device);
  EXPECT_TRUE(at::equal(x.cpu(), at::arange(1000, at::kFloat) * 3));

  // Bucketed (1 MB buckets: the 700x96 fp32 tensor is a bucket of its own; 25 MB: one per dtype).
  for (int64_t bucket : {int64_t{1} << 20, kDefaultBucketBytes}) {
    std::vector<at::Tensor> grads = grads_of(rank, device);
    const std::vector<at::Tensor> mine = grads_of(rank, device), theirs = grads_of(1 - rank, device);
    pg->all_reduce_sum(grads, bucket);
    for (size_t i = 0; i < grads.size(); ++i) {
      EXPECT_EQ(grads[i].device(), device);
      EXPECT_EQ(grads[i].scalar_type(), mine[i].scalar_type());
      EXPECT_EQ(grads[i].strides(), mine[i].strides()) << "tensor " << i;
      const at::Tensor want = mine[i].cpu().to(at::kDouble) + theirs[i].cpu().to(at::kDouble);
      EXPECT_TRUE(at::equal(grads[i].cpu().to(at::kDouble), want)) << "tensor " << i << " bucket " << bucket;
    }
  }

  // Broadcast from rank 1 into parameters that require grad (as a run's identical start).
  {
    std::vector<at::Tensor> params = grads_of(rank, device);
    for (auto& p : params) p = p.contiguous().set_requires_grad(true);
    pg->broadcast(params, /*root=*/1, int64_t{1} << 20);
    const std::vector<at::Tensor> root = grads_of(1, device);
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_EQ(params[i].device(), device);
      EXPECT_TRUE(params[i].requires_grad());
      EXPECT_TRUE(at::equal(params[i].detach().cpu(), root[i].cpu())) << "tensor " << i;
    }
  }

  // Host values (metrics): sum and max.
  EXPECT_EQ(pg->all_reduce({rank + 1.0, 0.5 * rank}, ReduceOp::kSum), (std::vector<double>{3.0, 0.5}));
  EXPECT_EQ(pg->all_reduce(-1.0 * rank, ReduceOp::kMax), 0.0);

  // A tensor on the wrong device is refused, not hung on (NCCL: a CPU tensor).
  if (device.is_cuda()) {
    std::vector<at::Tensor> wrong{at::ones({3})};
    EXPECT_THROW(pg->all_reduce_sum(wrong), Error);
  }
  pg->barrier();
  std::printf("gpu worker rank %d ok (%s on %s)\n", rank, backend.c_str(), device.str().c_str());
  std::fflush(stdout);
}

// --- the parent ---

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 29511;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

struct Rank {
  pid_t pid = -1;
  std::string log;  // its stdout and stderr
};

// Starts this binary as rank `rank` (its gtest output into a fresh log file).
Rank spawn_rank(int rank, int port) {
  Rank r;
  r.log = ::testing::TempDir() + "tz_gpu_nccl_" + std::to_string(::getpid()) + "_" + std::to_string(rank) +
          ".log";
  const std::map<std::string, std::string> extra{{"TZ_GPU_NCCL_WORKER", "1"},
                                                 {"RANK", std::to_string(rank)},
                                                 {"WORLD_SIZE", std::to_string(kWorld)},
                                                 {"LOCAL_RANK", std::to_string(rank)},
                                                 {"LOCAL_WORLD_SIZE", std::to_string(kWorld)},
                                                 {"MASTER_ADDR", "127.0.0.1"},
                                                 {"MASTER_PORT", std::to_string(port)},
                                                 {"OMP_NUM_THREADS", "1"}};
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string s(*e);
    if (!extra.count(s.substr(0, s.find('=')))) env_strings.push_back(s);
  }
  for (const auto& [k, v] : extra) env_strings.push_back(k + "=" + v);
  char exe[4096];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  const std::vector<std::string> argv{n > 0 ? std::string(exe, n) : std::string("/proc/self/exe"),
                                      "--gtest_also_run_disabled_tests",
                                      "--gtest_filter=GpuNcclWorker.DISABLED_Collectives"};
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  for (auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  const int fd = ::open(r.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  r.pid = ::fork();
  if (r.pid == 0) {
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(fd);
  return r;
}

// Waits for the rank (killing it after limit_s); returns its exit code (-1: killed or signalled) and
// output.
std::pair<int, std::string> finish_rank(const Rank& r, double limit_s) {
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  while (::waitpid(r.pid, &status, WNOHANG) != r.pid) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > limit_s) {
      ::kill(r.pid, SIGKILL);
      ::waitpid(r.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::ifstream in(r.log);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(r.log.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text.str()};
}

bool have_backend(const std::string& name) {
  const auto names = available_backends();
  return std::find(names.begin(), names.end(), name) != names.end();
}

TEST(GpuNccl, AllReduceAndBroadcastOnTwoRanks) {
  if (is_worker()) GTEST_SKIP() << "the parent; not run inside a rank";
  const DeviceUnderTest dut = device_under_test();
  if (dut.rehearsal) {
    if (!have_backend("gloo"))
      GTEST_SKIP() << "the CPU rehearsal needs the Gloo backend; this build has none";
  } else {
    const int64_t devices = static_cast<int64_t>(torch::cuda::device_count());
    if (devices == 0) GTEST_SKIP() << testing_gpu::no_cuda_reason();
    if (devices < kWorld) GTEST_SKIP() << "needs 2 CUDA devices, found " << devices;
    ASSERT_TRUE(have_backend("nccl"))
        << "CUDA devices are visible but this build has no NCCL backend (" << backends_description() << ")";
  }
  const int port = free_port();
  std::vector<Rank> ranks;
  for (int r = 0; r < kWorld; ++r) ranks.push_back(spawn_rank(r, port));
  for (int r = 0; r < kWorld; ++r) {
    const auto [code, output] = finish_rank(ranks[r], kRankLimitS);
    EXPECT_EQ(code, 0) << "rank " << r << "\n" << output;
    EXPECT_NE(output.find("gpu worker rank " + std::to_string(r) + " ok"), std::string::npos)
        << "rank " << r << " did not finish its checks\n"
        << output;
    EXPECT_EQ(output.find("[  FAILED  ]"), std::string::npos) << output;
  }
}

}  // namespace
}  // namespace tinyzero
