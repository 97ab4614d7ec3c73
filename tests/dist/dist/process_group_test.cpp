// Multi-process tests of ProcessGroup over Gloo on localhost: real ranks, real sockets.
//
// The DistProcessGroup tests (the parents) re-execute this binary (/proc/self/exe) as 2 or 3 ranks with
// --gtest_filter=DistWorker.<case> and TZ_DIST_WORKER=1 in the environment, either through
// scripts/launch-local.sh or directly, and check the ranks' exit codes, output and timing. The DistWorker
// tests are the ranks' bodies; they skip themselves in a normal run (no TZ_DIST_WORKER).
//
// Manual benchmark (all-reduce and broadcast of 100 MB, barrier latency):
//   TZ_DIST_WORKER=1 TZ_DIST_BENCH=1 scripts/launch-local.sh 2 --
//     build/dist_process_group_test --gtest_filter=DistWorker.Bench
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tinyzero/core/errors.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/dist/partition.h"
#include "tinyzero/dist/process_group.h"

namespace tinyzero {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

constexpr int kWorkerErrorExit = 3;  // a worker caught the tinyzero::Error it expected

bool is_worker() { return std::getenv("TZ_DIST_WORKER") != nullptr; }

double worker_timeout() {
  const char* v = std::getenv("TZ_DIST_TIMEOUT");
  return v ? std::atof(v) : 10.0;
}

std::unique_ptr<ProcessGroup> worker_group() {
  return init_process_group(detect_dist_env(), "gloo", c10::Device(c10::kCPU), worker_timeout());
}

// Reports the expected Error the way the CLI would (one line) and exits; the group was destroyed by then.
[[noreturn]] void exit_with(const Error& e, Clock::time_point start) {
  std::fprintf(stderr, "worker error after %.2f s: %s\n", since(start), e.what());
  std::fflush(stderr);
  std::fflush(stdout);
  std::exit(kWorkerErrorExit);
}

#define WORKER_ONLY() \
  if (!is_worker()) GTEST_SKIP() << "a rank of a DistProcessGroup test; runs only in a child process"

// Rank r's value of test tensor i: deterministic, different per rank and tensor. Multiples of 1/2 below
// ~50 in magnitude (integers for integer dtypes), so sums over a few ranks are exact in every dtype,
// bfloat16 included, whatever order a backend adds them in: results can be compared with ==.
at::Tensor make_tensor(int rank, int i, at::IntArrayRef shape, at::ScalarType dtype) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 * rank + i);
  at::Tensor t = at::randn(shape, gen, at::kFloat).clamp(-3, 3) * 8;
  t = at::isIntegralType(dtype, /*includeBool=*/false) ? t.round() : (t * 2).round() / 2;
  return t.to(dtype);
}

// The sum over ranks 0..world-1 of make_all(r), computed here in float64.
std::vector<at::Tensor> expected_sums(int world);

struct Spec {
  std::vector<int64_t> shape;
  at::ScalarType dtype;
  bool transposed;  // pass a non-contiguous view
};

// Mixed dtypes, sizes that are not multiples of the bucket, a non-contiguous tensor, an empty one.
const std::vector<Spec>& specs() {
  static const std::vector<Spec> s{
      {{7}, at::kFloat, false},        {{1000}, at::kFloat, false}, {{3, 5}, at::kFloat, true},
      {{33}, at::kDouble, false},      {{250}, at::kLong, false},   {{0}, at::kFloat, false},
      {{17, 3}, at::kBFloat16, false}, {{300}, at::kInt, false},    {{4, 9}, at::kBFloat16, true},
      {{1}, at::kFloat, false},        {{513}, at::kFloat, false},  {{2, 2}, at::kHalf, false},
  };
  return s;
}

std::vector<at::Tensor> make_all(int rank) {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < specs().size(); ++i) {
    const Spec& s = specs()[i];
    at::Tensor t = make_tensor(rank, static_cast<int>(i), s.shape, s.dtype);
    out.push_back(s.transposed ? t.t() : t);
  }
  return out;
}

std::vector<at::Tensor> expected_sums(int world) {
  std::vector<at::Tensor> sums;
  for (int r = 0; r < world; ++r) {
    auto ts = make_all(r);
    for (size_t i = 0; i < ts.size(); ++i) {
      if (r == 0)
        sums.push_back(ts[i].to(at::kDouble));
      else
        sums[i] += ts[i].to(at::kDouble);
    }
  }
  return sums;
}

// Everything a data-parallel step uses, on any number of ranks (the parent runs 3).
TEST(DistWorker, Collectives) {
  WORKER_ONLY();
  auto pg = worker_group();
  const int rank = pg->rank(), world = pg->world_size();
  const double w = world;
  ASSERT_GE(world, 2);
  ASSERT_EQ(pg->backend(), "gloo");
  EXPECT_EQ(pg->is_main(), rank == 0);

  // Bucketed all-reduce (buckets of 1000 bytes, of 1 byte: one tensor each, and of 25 MB: one per dtype)
  // against the sums computed here; shapes, dtypes and strides are kept.
  const auto sums = expected_sums(world);
  for (int64_t bucket : {int64_t{1000}, int64_t{1}, kDefaultBucketBytes}) {
    auto tensors = make_all(rank);
    auto before = make_all(rank);
    pg->all_reduce_sum(tensors, bucket);
    for (size_t i = 0; i < tensors.size(); ++i) {
      EXPECT_EQ(tensors[i].scalar_type(), before[i].scalar_type());
      EXPECT_EQ(tensors[i].sizes(), before[i].sizes());
      EXPECT_EQ(tensors[i].strides(), before[i].strides());
      EXPECT_TRUE(at::equal(tensors[i].to(at::kDouble), sums[i])) << "tensor " << i << " bucket " << bucket;
    }
  }

  // Single tensor, contiguous (in place) and not.
  at::Tensor x = at::arange(10, at::kFloat) * (rank + 1);
  pg->all_reduce_sum(x);
  EXPECT_TRUE(at::equal(x, at::arange(10, at::kFloat) * (w * (w + 1) / 2)));
  at::Tensor y = (at::arange(12, at::kDouble).view({3, 4}) + rank).t();
  pg->all_reduce_sum(y);
  EXPECT_TRUE(at::equal(y, (at::arange(12, at::kDouble).view({3, 4}) * w + w * (w - 1) / 2).t()));

  // Asynchronous start, then wait.
  {
    auto tensors = make_all(rank);
    auto pending = pg->all_reduce_sum_start(tensors, 2048);
    EXPECT_FALSE(pending.done());
    pending.wait();
    EXPECT_TRUE(pending.done());
    for (size_t i = 0; i < tensors.size(); ++i) EXPECT_TRUE(at::equal(tensors[i].to(at::kDouble), sums[i]));
  }

  // Broadcast from the last rank, into parameters that require grad.
  {
    const int root = world - 1;
    auto tensors = make_all(rank);
    at::Tensor param = make_tensor(rank, 99, {5, 6}, at::kFloat).set_requires_grad(true);
    tensors.push_back(param);
    pg->broadcast(tensors, root, 1000);
    auto from = make_all(root);
    for (size_t i = 0; i < from.size(); ++i) EXPECT_TRUE(at::equal(tensors[i], from[i])) << "tensor " << i;
    EXPECT_TRUE(at::equal(param, make_tensor(root, 99, {5, 6}, at::kFloat)));
    EXPECT_TRUE(param.requires_grad());
  }

  // Metrics: sum, max, min; exact for integers below 2^53.
  const double big = 1099511627776.0;  // 2^40
  EXPECT_EQ(pg->all_reduce({rank + 1.0, -1.0 * rank, big + rank}, ReduceOp::kSum),
            (std::vector<double>{w * (w + 1) / 2, -w * (w - 1) / 2, w * big + w * (w - 1) / 2}));
  EXPECT_EQ(pg->all_reduce({rank + 1.0, -1.0 * rank}, ReduceOp::kMax), (std::vector<double>{w, 0.0}));
  EXPECT_EQ(pg->all_reduce({rank + 1.0, -1.0 * rank}, ReduceOp::kMin), (std::vector<double>{1.0, 1.0 - w}));
  EXPECT_EQ(pg->all_reduce(0.25 * rank, ReduceOp::kSum), 0.25 * w * (w - 1) / 2);
  EXPECT_TRUE(pg->all_reduce(std::vector<double>{}, ReduceOp::kSum).empty());

  // Owner broadcast (ZeRO-1): each rank fills the tensors it owns; afterwards all ranks hold the owners'.
  {
    std::vector<int64_t> numels{40, 7, 300, 9, 9, 64, 1, 120};
    auto owners = partition_by_size(numels, world);
    owners[3] = 0;  // also non-contiguous ownership
    std::vector<at::Tensor> tensors;
    for (size_t i = 0; i < numels.size(); ++i) {
      at::ScalarType dt = i == 5 ? at::kBFloat16 : at::kFloat;
      tensors.push_back(owners[i] == rank ? make_tensor(rank, 200 + static_cast<int>(i), {numels[i]}, dt)
                                          : at::full({numels[i]}, -777.0, dt));
    }
    pg->broadcast_from_owners(tensors, owners, 256);
    for (size_t i = 0; i < numels.size(); ++i) {
      at::ScalarType dt = i == 5 ? at::kBFloat16 : at::kFloat;
      EXPECT_TRUE(at::equal(tensors[i], make_tensor(owners[i], 200 + static_cast<int>(i), {numels[i]}, dt)))
          << "tensor " << i << " owner " << owners[i];
    }
  }

  // Sharding collectives (ZeRO-2/3), coalesced over tensors of different sizes and dtypes, and a single
  // pair: all-gather puts rank r's input at [r * n, (r + 1) * n) of every output; reduce-scatter leaves
  // rank r the sum over ranks of that slice.
  {
    const std::vector<int64_t> sizes{5, 1, 40};
    for (bool single : {false, true}) {
      std::vector<at::Tensor> inputs, gathered, full, scattered;
      const size_t count = single ? 1 : sizes.size();
      for (size_t i = 0; i < count; ++i) {
        const at::ScalarType dt = i == 1 ? at::kBFloat16 : at::kFloat;
        inputs.push_back(make_tensor(rank, 300 + static_cast<int>(i), {sizes[i]}, dt));
        gathered.push_back(at::full({sizes[i] * world}, -777.0, dt));
        full.push_back(make_tensor(rank, 400 + static_cast<int>(i), {sizes[i] * world}, dt));
        scattered.push_back(at::full({sizes[i]}, -777.0, dt));
      }
      auto gather = pg->all_gather_start(gathered, inputs);
      auto reduce = pg->reduce_scatter_sum_start(scattered, full);
      gather.wait();
      reduce.wait();
      for (size_t i = 0; i < count; ++i) {
        const at::ScalarType dt = inputs[i].scalar_type();
        at::Tensor sum = at::zeros({sizes[i]}, at::kDouble);
        for (int r = 0; r < world; ++r) {
          EXPECT_TRUE(at::equal(gathered[i].narrow(0, r * sizes[i], sizes[i]),
                                make_tensor(r, 300 + static_cast<int>(i), {sizes[i]}, dt)))
              << "all_gather tensor " << i << " slice of rank " << r;
          sum += make_tensor(r, 400 + static_cast<int>(i), {sizes[i] * world}, dt)
                     .narrow(0, rank * sizes[i], sizes[i])
                     .to(at::kDouble);
        }
        EXPECT_TRUE(at::equal(scattered[i].to(at::kDouble), sum)) << "reduce_scatter tensor " << i;
      }
    }
    // Mismatched sizes are refused before anything is sent (the group stays usable).
    at::Tensor in = at::zeros({4}), out = at::zeros({4 * world + 1});
    EXPECT_THROW(pg->all_gather_start({out}, {in}), Error);
  }

  // Strings of every rank, in rank order, on every rank; an empty one (rank 1) and bytes of every value.
  {
    std::string mine = rank == 1 ? "" : "rank " + std::to_string(rank) + std::string(1, '\0') + "\xff\n";
    const auto all = pg->all_gather_strings(mine);
    ASSERT_EQ(all.size(), static_cast<size_t>(world));
    for (int r = 0; r < world; ++r)
      EXPECT_EQ(all[r], r == 1 ? "" : "rank " + std::to_string(r) + std::string(1, '\0') + "\xff\n");
  }

  // Misuse is reported, not hung on: tensors on the wrong device are refused before any communication.
  std::vector<at::Tensor> undefined{at::Tensor()};
  EXPECT_THROW(pg->all_reduce_sum(undefined), Error);

  pg->barrier();
  std::printf("worker rank %d ok\n", rank);
}

// Rank 1 dies (SIGKILL) and rank 0 must report it, not hang or abort. TZ_DIST_KILL=waiting: rank 1 dies
// while rank 0 waits inside an all-reduce; TZ_DIST_KILL=sending: both are busy in back-to-back 64 MB
// all-reduces when rank 1 dies, so rank 0 is mid-transfer (writing to a socket whose peer is gone).
TEST(DistWorker, KilledPeer) {
  WORKER_ONLY();
  const bool sending =
      std::string(std::getenv("TZ_DIST_KILL") ? std::getenv("TZ_DIST_KILL") : "") == "sending";
  auto start = Clock::now();
  try {
    auto pg = worker_group();
    pg->barrier();
    if (pg->rank() == 1) {
      std::thread([sending] {
        std::this_thread::sleep_for(std::chrono::milliseconds(sending ? 150 : 300));
        raise(SIGKILL);
      }).detach();
      if (!sending) std::this_thread::sleep_for(std::chrono::seconds(60));
    }
    std::vector<at::Tensor> grads{at::ones({16 << 20}), at::ones({1000})};
    start = Clock::now();
    for (int i = 0; i < 1000; ++i) pg->all_reduce_sum(grads, 8 << 20);
    ADD_FAILURE() << "all_reduce_sum kept returning although rank 1 is dead";
  } catch (const Error& e) {
    exit_with(e, start);
  }
}

// Rank 1 stops (SIGSTOP: alive, connections open, never answers): rank 0 must time out.
TEST(DistWorker, HungPeer) {
  WORKER_ONLY();
  auto start = Clock::now();
  try {
    auto pg = worker_group();
    pg->barrier();
    if (pg->rank() == 1) raise(SIGSTOP);
    std::vector<at::Tensor> grads{at::ones({1000}), at::ones({10})};
    start = Clock::now();
    pg->all_reduce_sum(grads, 1000);
    ADD_FAILURE() << "all_reduce_sum returned although rank 1 is stopped";
  } catch (const Error& e) {
    exit_with(e, start);
  }
}

// Rank 0 works 3 s alone (longer than the collectives' 2 s timeout) while rank 1 waits for it through
// the store, and gets rank 0's status; then rank 1 works 3 s alone while rank 0 waits for its report,
// and a collective goes through. With TZ_WAIT_S below that, rank 1 gives up clearly.
TEST(DistWorker, WaitForMain) {
  WORKER_ONLY();
  auto start = Clock::now();
  try {
    auto pg = worker_group();
    const double wait_s = std::atof(std::getenv("TZ_WAIT_S"));
    if (pg->rank() == 0) std::this_thread::sleep_for(std::chrono::seconds(3));
    start = Clock::now();
    const std::string main_status =
        pg->wait_for_main("checkpoint 7", wait_s, pg->rank() == 0 ? "disk full" : "");
    if (pg->rank() == 1) std::this_thread::sleep_for(std::chrono::seconds(3));
    const auto reports = pg->report_to_main("shards 7", pg->rank() == 1 ? "rank 1 failed" : "", wait_s);
    pg->barrier();
    std::string seen;
    for (const auto& report : reports) seen += "[" + report + "]";
    std::printf("worker rank %d ok: rank 0 said '%s', reports %s\n", pg->rank(), main_status.c_str(),
                seen.c_str());
  } catch (const Error& e) {
    exit_with(e, start);
  }
}

// Started alone in a world of 2: the rendezvous must fail within the timeout.
TEST(DistWorker, Alone) {
  WORKER_ONLY();
  auto start = Clock::now();
  try {
    auto pg = worker_group();
    ADD_FAILURE() << "init_process_group returned without its peer";
  } catch (const Error& e) {
    exit_with(e, start);
  }
}

// Manual: all-reduce bandwidth and broadcast time of 100 MB (see the file comment; TZ_DIST_BENCH_MB sets
// another size, and DistProcessGroup.BenchChecksItsResults runs it at 1 MB). What it times is checked:
// every all-reduce of ones multiplies each element by the world size, so after k of them each holds
// world^k (exact in float32 for any world size here); a broadcast leaves the root's values on every
// rank; and every time is positive and finite.
TEST(DistWorker, Bench) {
  WORKER_ONLY();
  if (!std::getenv("TZ_DIST_BENCH")) GTEST_SKIP() << "set TZ_DIST_BENCH=1";
  auto pg = worker_group();
  const double world = pg->world_size();
  const char* mb_env = std::getenv("TZ_DIST_BENCH_MB");
  const int64_t mb = mb_env ? std::atoll(mb_env) : 100;
  ASSERT_GE(mb, 1) << "TZ_DIST_BENCH_MB=" << mb_env;
  const int64_t n = mb * 250 * 1000;  // mb MB of float32
  const double gb = mb / 1000.0;
  auto expect_time = [](double s, const char* what) {
    EXPECT_TRUE(std::isfinite(s) && s > 0) << what << " took " << s << " s";
  };
  auto expect_all = [](const std::vector<at::Tensor>& ts, const char* what, auto value_of) {
    for (size_t i = 0; i < ts.size(); ++i) {
      const double want = value_of(i);
      EXPECT_TRUE(ts[i].eq(want).all().item<bool>()) << what << ": tensor " << i << " should hold " << want
                                                     << " everywhere, e.g. " << ts[i][0].item<float>();
    }
  };
  const int reps = 5;
  for (int64_t bucket : {int64_t{25} << 20, int64_t{100} << 20}) {
    // As gradients: 100 tensors of mb/100 MB, bucketed.
    std::vector<at::Tensor> grads;
    for (int i = 0; i < 100; ++i) grads.push_back(at::ones({n / 100}));
    pg->all_reduce_sum(grads, bucket);  // warm-up
    pg->barrier();
    auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) pg->all_reduce_sum(grads, bucket);
    double s = since(t0) / reps;
    expect_time(s, "all_reduce_sum of 100 tensors");
    expect_all(grads, "bucketed all_reduce_sum", [&](size_t) { return std::pow(world, 1 + reps); });
    at::Tensor flat = at::ones({n});
    pg->barrier();
    t0 = Clock::now();
    for (int r = 0; r < reps; ++r) pg->all_reduce_sum(flat);
    double s_flat = since(t0) / reps;
    expect_time(s_flat, "all_reduce_sum of one tensor");
    expect_all({flat}, "flat all_reduce_sum", [&](size_t) { return std::pow(world, reps); });
    // The root's tensors hold their index, the others' -1: afterwards every rank holds the root's.
    for (size_t i = 0; i < grads.size(); ++i) grads[i].fill_(pg->is_main() ? static_cast<double>(i) : -1.0);
    pg->barrier();
    t0 = Clock::now();
    for (int r = 0; r < reps; ++r) pg->broadcast(grads, 0, bucket);
    double s_bcast = since(t0) / reps;
    expect_time(s_bcast, "broadcast");
    expect_all(grads, "broadcast", [](size_t i) { return static_cast<double>(i); });
    if (pg->is_main())
      std::printf(
          "bench: %lld MB float32, bucket %lld MB: all_reduce_sum of 100 tensors %.3f s (%.2f GB/s of "
          "buffer), one flat tensor %.3f s (%.2f GB/s), broadcast %.3f s\n",
          static_cast<long long>(mb), static_cast<long long>(bucket >> 20), s, gb / s, s_flat, gb / s_flat,
          s_bcast);
  }
  auto t0 = Clock::now();
  for (int r = 0; r < 100; ++r) pg->barrier();
  const double barrier_s = since(t0) / 100;
  expect_time(barrier_s, "barrier");
  if (pg->is_main()) std::printf("bench: barrier %.3f ms\n", barrier_s * 1000);
}

// NCCL between two GPUs (cuda:LOCAL_RANK): sums, broadcast, metrics, owner broadcast, barrier.
TEST(DistWorker, NcclCollectives) {
  WORKER_ONLY();
  DistEnv env = detect_dist_env();
  const c10::Device device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  auto pg = init_process_group(env, "auto", device, worker_timeout());
  ASSERT_EQ(pg->backend(), "nccl");
  const int rank = pg->rank();
  auto on_gpu = [&](std::vector<at::Tensor> ts) {
    for (auto& t : ts) t = t.to(device);
    return ts;
  };
  const auto sums = expected_sums(pg->world_size());
  for (int64_t bucket : {int64_t{1000}, kDefaultBucketBytes}) {
    auto tensors = on_gpu(make_all(rank));
    pg->all_reduce_sum(tensors, bucket);
    for (size_t i = 0; i < tensors.size(); ++i)
      EXPECT_TRUE(at::equal(tensors[i].cpu().to(at::kDouble), sums[i]))
          << "tensor " << i << " bucket " << bucket;
  }
  auto tensors = on_gpu(make_all(rank));
  pg->broadcast(tensors, 1, 1000);
  auto from = make_all(1);
  for (size_t i = 0; i < from.size(); ++i)
    EXPECT_TRUE(at::equal(tensors[i].cpu(), from[i])) << "tensor " << i;
  EXPECT_EQ(pg->all_reduce({rank + 1.0, -1.0 * rank}, ReduceOp::kMax), (std::vector<double>{2.0, 0.0}));
  std::vector<at::Tensor> owned{at::full({100}, rank * 1.0, device), at::full({50}, rank * 1.0, device)};
  pg->broadcast_from_owners(owned, {1, 0}, 256);
  EXPECT_TRUE(at::equal(owned[0].cpu(), at::full({100}, 1.0)));
  EXPECT_TRUE(at::equal(owned[1].cpu(), at::full({50}, 0.0)));
  EXPECT_EQ(pg->all_gather_strings("from " + std::to_string(rank)),
            (std::vector<std::string>{"from 0", "from 1"}));
  std::vector<at::Tensor> wrong{at::ones({3})};
  EXPECT_THROW(pg->all_reduce_sum(wrong), Error);  // a CPU tensor on an NCCL group
  pg->barrier();
  std::printf("worker rank %d ok\n", rank);
}

// --- the parents ---

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return 29500;
  }
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, n) : std::string();
}

struct Child {
  pid_t pid = -1;
  std::string log;
};

// Starts argv with the extra environment variables, stdout and stderr into a fresh log file.
Child spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  static int counter = 0;
  Child c;
  c.log =
      testing::TempDir() + "tz_dist_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".log";
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string s(*e);
    if (!env.count(s.substr(0, s.find('=')))) env_strings.push_back(s);
  }
  for (auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  for (auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  int fd = open(c.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(fd);
  return c;
}

struct Outcome {
  bool exited = false;
  int code = -1;   // exit status when exited
  int signal = 0;  // terminating signal otherwise
  double seconds = 0;
  std::string output;
};

// Waits for the child up to limit_s (then kills it: a hang is a failure the test reports).
Outcome finish(const Child& c, double limit_s) {
  Outcome o;
  auto start = Clock::now();
  int status = 0;
  while (true) {
    pid_t r = waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) break;
    if (since(start) > limit_s) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  o.seconds = since(start);
  if (WIFEXITED(status)) {
    o.exited = true;
    o.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    o.signal = WTERMSIG(status);
  }
  o.output = read_text(c.log);
  std::remove(c.log.c_str());
  return o;
}

std::map<std::string, std::string> rank_env(int rank, int world, int port, double timeout_s) {
  return {{"TZ_DIST_WORKER", "1"},
          {"RANK", std::to_string(rank)},
          {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_RANK", std::to_string(rank)},
          {"LOCAL_WORLD_SIZE", std::to_string(world)},
          {"MASTER_ADDR", "127.0.0.1"},
          {"MASTER_PORT", std::to_string(port)},
          {"TZ_DIST_TIMEOUT", std::to_string(timeout_s)},
          {"OMP_NUM_THREADS", "1"}};
}

std::vector<std::string> worker_argv(const std::string& test) {
  return {self_exe(), "--gtest_filter=DistWorker." + test};
}

bool have_backend(const std::string& name) {
  auto names = available_backends();
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Parents of Gloo ranks: skip in a worker and where this LibTorch has no Gloo (PyTorch's CUDA wheels).
#define GLOO_PARENT()            \
  if (is_worker()) GTEST_SKIP(); \
  if (!have_backend("gloo")) GTEST_SKIP() << "this build has no Gloo backend";

// Three ranks started by scripts/launch-local.sh, rendezvousing as under torchrun's elastic agent: this
// process serves the TCPStore at MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True), so rank 0 must connect
// to it as a client rather than try to serve the port itself. Keys left by an earlier "attempt" must not
// confuse the ranks (they use the prefix of TORCHELASTIC_RESTART_COUNT).
TEST(DistProcessGroup, CollectivesOfThreeRanksThroughLaunchLocal) {
  GLOO_PARENT();
  const int port = free_port();
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(port);
  opts.isServer = true;
  opts.waitWorkers = false;
  opts.timeout = std::chrono::seconds(20);
  auto agent_store = c10::make_intrusive<c10d::TCPStore>("127.0.0.1", opts);
  agent_store->add("/worker/attempt_0/tinyzero/arrived", 3);  // a finished earlier attempt
  std::vector<std::string> argv{"/bin/bash", std::string(TZ_SOURCE_DIR) + "/scripts/launch-local.sh", "3",
                                "--"};
  for (auto& a : worker_argv("Collectives")) argv.push_back(a);
  Child c = spawn(argv, {{"TZ_DIST_WORKER", "1"},
                         {"TZ_DIST_TIMEOUT", "20"},
                         {"MASTER_PORT", std::to_string(port)},
                         {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                         {"TORCHELASTIC_RESTART_COUNT", "1"}});
  Outcome o = finish(c, 60);
  EXPECT_TRUE(o.exited && o.code == 0) << "exit " << o.code << " signal " << o.signal << "\n" << o.output;
  EXPECT_NE(o.output.find("[rank 0] worker rank 0 ok"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("[rank 1] worker rank 1 ok"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("[rank 2] worker rank 2 ok"), std::string::npos) << o.output;
  EXPECT_EQ(o.output.find("FAILED"), std::string::npos) << o.output;
}

TEST(DistProcessGroup, KilledPeerMakesTheSurvivorFailWithAClearMessage) {
  GLOO_PARENT();
  const double timeout = 4;
  // Both cases side by side, on their own ports.
  std::vector<Child> ranks;
  for (std::string mode : {"waiting", "sending"}) {
    const int port = free_port();
    for (int r = 0; r < 2; ++r) {
      auto env = rank_env(r, 2, port, timeout);
      env["TZ_DIST_KILL"] = mode;
      ranks.push_back(spawn(worker_argv("KilledPeer"), env));
    }
  }
  for (int m = 0; m < 2; ++m) {
    const char* mode = m == 0 ? "waiting" : "sending";
    Outcome o1 = finish(ranks[2 * m + 1], 30);
    Outcome o0 = finish(ranks[2 * m], 30);
    EXPECT_EQ(o1.signal, SIGKILL) << mode << "\n" << o1.output;
    ASSERT_TRUE(o0.exited) << mode << ": rank 0 died of signal " << o0.signal << "\n" << o0.output;
    EXPECT_EQ(o0.code, kWorkerErrorExit) << mode << "\n" << o0.output;
    EXPECT_NE(o0.output.find("rank 0: all_reduce_sum "), std::string::npos) << o0.output;
    EXPECT_NE(o0.output.find("rank 1; a peer may have died or hung - see its log"), std::string::npos)
        << o0.output;
    // Reported within the timeout (+ margin for a loaded machine), measured from the all-reduce's start.
    double seconds = -1;
    auto at = o0.output.find("worker error after ");
    if (at != std::string::npos) seconds = std::atof(o0.output.c_str() + at + 19);
    EXPECT_GE(seconds, 0) << o0.output;
    EXPECT_LT(seconds, timeout + 2) << o0.output;
    std::printf("%s: killed peer reported: %s\n", mode,
                o0.output.substr(at, o0.output.find('\n', at) - at).c_str());
  }
}

TEST(DistProcessGroup, HungPeerTimesOut) {
  GLOO_PARENT();
  const double timeout = 2;
  const int port = free_port();
  Child r0 = spawn(worker_argv("HungPeer"), rank_env(0, 2, port, timeout));
  Child r1 = spawn(worker_argv("HungPeer"), rank_env(1, 2, port, timeout));
  Outcome o0 = finish(r0, 30);
  kill(r1.pid, SIGKILL);  // stopped by itself; SIGKILL ends a stopped process
  finish(r1, 10);
  ASSERT_TRUE(o0.exited) << "rank 0 died of signal " << o0.signal << "\n" << o0.output;
  EXPECT_EQ(o0.code, kWorkerErrorExit) << o0.output;
  EXPECT_NE(
      o0.output.find("rank 0: all_reduce_sum timed out after 2 s waiting for rank 1; a peer may have died"),
      std::string::npos)
      << o0.output;
  double seconds = -1;
  auto at = o0.output.find("worker error after ");
  if (at != std::string::npos) seconds = std::atof(o0.output.c_str() + at + 19);
  EXPECT_GE(seconds, timeout - 0.5) << o0.output;
  EXPECT_LT(seconds, timeout + 2) << o0.output;
  std::printf("hung peer reported after %.2f s\n", seconds);
}

TEST(DistProcessGroup, RanksWaitForRankZerosLongTaskBeyondTheCollectiveTimeout) {
  GLOO_PARENT();
  for (const char* wait_s : {"20", "1"}) {
    const int port = free_port();
    auto env0 = rank_env(0, 2, port, 2), env1 = rank_env(1, 2, port, 2);
    env0["TZ_WAIT_S"] = env1["TZ_WAIT_S"] = wait_s;
    Child r0 = spawn(worker_argv("WaitForMain"), env0);
    Child r1 = spawn(worker_argv("WaitForMain"), env1);
    Outcome o1 = finish(r1, 30), o0 = finish(r0, 30);
    if (std::string(wait_s) == "20") {
      EXPECT_TRUE(o0.exited && o0.code == 0) << o0.output;
      EXPECT_TRUE(o1.exited && o1.code == 0) << o1.output;
      // Statuses travel both ways: rank 0's to every rank, every rank's to rank 0 (rank order).
      EXPECT_NE(o1.output.find("worker rank 1 ok: rank 0 said 'disk full', reports \n"), std::string::npos)
          << o1.output;
      EXPECT_NE(o0.output.find("worker rank 0 ok: rank 0 said 'disk full', reports [][rank 1 failed]"),
                std::string::npos)
          << o0.output;
    } else {
      EXPECT_EQ(o1.code, kWorkerErrorExit) << o1.output;
      EXPECT_NE(o1.output.find("rank 1: wait for rank 0 (checkpoint 7) timed out after 1 s"),
                std::string::npos)
          << o1.output;
    }
  }
}

TEST(DistProcessGroup, RendezvousWithoutThePeerFailsWithinTheTimeout) {
  GLOO_PARENT();
  const double timeout = 2;
  const int port0 = free_port(), port1 = free_port();
  // Rank 0 alone (serves the store, nobody joins) and rank 1 alone (nobody serves), side by side.
  Child r0 = spawn(worker_argv("Alone"), rank_env(0, 2, port0, timeout));
  Child r1 = spawn(worker_argv("Alone"), rank_env(1, 2, port1 == port0 ? port0 + 1 : port1, timeout));
  Outcome o0 = finish(r0, 30), o1 = finish(r1, 30);
  for (auto* o : {&o0, &o1}) {
    ASSERT_TRUE(o->exited) << "signal " << o->signal << "\n" << o->output;
    EXPECT_EQ(o->code, kWorkerErrorExit) << o->output;
    // The rank's own clock from before init_process_group (process start-up on a loaded machine can take
    // seconds and is not what is tested).
    auto at = o->output.find("worker error after ");
    ASSERT_NE(at, std::string::npos) << o->output;
    EXPECT_LT(std::atof(o->output.c_str() + at + 19), timeout + 1) << o->output;
  }
  EXPECT_NE(
      o0.output.find("rank 0: rendezvous at MASTER_ADDR:MASTER_PORT 127.0.0.1:" + std::to_string(port0) +
                     " timed out after 2 s (only 1 of 2 ranks arrived; world size 2, from torchrun)"),
      std::string::npos)
      << o0.output;
  EXPECT_NE(o1.output.find("rank 1: rendezvous at MASTER_ADDR:MASTER_PORT 127.0.0.1:"), std::string::npos)
      << o1.output;
  EXPECT_NE(o1.output.find("timed out after 2 s (nothing listens at 127.0.0.1:"), std::string::npos)
      << o1.output;
  for (auto* o : {&o0, &o1}) {
    auto at = o->output.find("worker error after ");
    std::printf("%s\n", o->output.substr(at, o->output.find('\n', at) - at).c_str());
  }
}

// The manual benchmark at 1 MB on two ranks, so that its own checks (results and times) run in CI.
TEST(DistProcessGroup, BenchChecksItsResults) {
  GLOO_PARENT();
  const int port = free_port();
  std::vector<Child> ranks;
  for (int r = 0; r < 2; ++r) {
    auto env = rank_env(r, 2, port, 20);
    env["TZ_DIST_BENCH"] = "1";
    env["TZ_DIST_BENCH_MB"] = "1";
    ranks.push_back(spawn(worker_argv("Bench"), env));
  }
  Outcome o0 = finish(ranks[0], 60), o1 = finish(ranks[1], 60);
  for (const Outcome* o : {&o0, &o1}) {
    EXPECT_TRUE(o->exited && o->code == 0) << "exit " << o->code << " signal " << o->signal << "\n"
                                           << o->output;
    EXPECT_NE(o->output.find("[  PASSED  ] 1 test."), std::string::npos) << o->output;  // ran, not skipped
  }
  EXPECT_NE(o0.output.find("bench: 1 MB float32, bucket 25 MB: all_reduce_sum"), std::string::npos)
      << o0.output;
  EXPECT_NE(o0.output.find("bench: barrier"), std::string::npos) << o0.output;
  for (size_t at = o0.output.find("bench: "); at != std::string::npos; at = o0.output.find("bench: ", at + 1))
    std::printf("%s\n", o0.output.substr(at, o0.output.find('\n', at) - at).c_str());
}

TEST(DistProcessGroup, NcclOnTwoGpus) {
  if (is_worker()) GTEST_SKIP();
  if (!have_backend("nccl")) GTEST_SKIP() << "this build has no NCCL backend (CPU LibTorch)";
  if (torch::cuda::device_count() < 2) GTEST_SKIP() << "needs 2 GPUs";
  const int port = free_port();
  Child r0 = spawn(worker_argv("NcclCollectives"), rank_env(0, 2, port, 60));
  Child r1 = spawn(worker_argv("NcclCollectives"), rank_env(1, 2, port, 60));
  Outcome o0 = finish(r0, 120), o1 = finish(r1, 120);
  EXPECT_TRUE(o0.exited && o0.code == 0) << o0.output;
  EXPECT_TRUE(o1.exited && o1.code == 0) << o1.output;
  EXPECT_NE(o0.output.find("worker rank 0 ok"), std::string::npos) << o0.output;
}

TEST(DistProcessGroup, LaunchLocalStopsTheOthersWhenOneRankFails) {
  if (is_worker()) GTEST_SKIP();
  std::vector<std::string> argv{"/bin/bash",
                                std::string(TZ_SOURCE_DIR) + "/scripts/launch-local.sh",
                                "3",
                                "--",
                                "sh",
                                "-c",
                                "echo \"env $RANK $LOCAL_RANK $WORLD_SIZE $LOCAL_WORLD_SIZE $MASTER_ADDR\"; "
                                "if [ \"$RANK\" = 1 ]; then sleep 0.3; exit 5; fi; sleep 30"};
  Child c = spawn(argv, {});
  Outcome o = finish(c, 20);
  EXPECT_TRUE(o.exited) << o.output;
  EXPECT_EQ(o.code, 5) << o.output;
  EXPECT_LT(o.seconds, 10) << "the other ranks were not stopped\n" << o.output;
  EXPECT_NE(o.output.find("[rank 1] env 1 1 3 3 127.0.0.1"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("[rank 2] env 2 2 3 3 127.0.0.1"), std::string::npos) << o.output;
  EXPECT_NE(o.output.find("launch-local: rank 1 exited with status 5"), std::string::npos) << o.output;
}

}  // namespace
}  // namespace tinyzero
