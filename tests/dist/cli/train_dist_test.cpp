// Data-parallel training end to end: ranks of tinyzero-train on this machine over Gloo.
//  - 2 ranks, 3 GRPO steps: both ranks hold bitwise-identical parameters (the trainer compares hashes of
//    every parameter's bytes across ranks at each checkpoint and logs them), and they match a 1-rank run
//    of the same global batch within 1e-5.
//  - Overlapping the gradient all-reduce with backward changes no bit.
//  - The same for PPO, critic included.
//  - ZeRO-1 (optimizer state sharded over 2 ranks) gives the parameters and optimizer state of plain
//    data parallel within 1e-6, and its checkpoint resumes on 1 rank.
//  - ZeRO-2 and ZeRO-3 (gradients, and weights, sharded too) give them within 2e-6, GRPO and PPO; a
//    ZeRO-3 run resumes bit-identically on 2 ranks, and on 1; a 1-rank checkpoint resumes on 2 under
//    ZeRO-3 (each rank writes and reads its own part of the optimizer state).
//  - A checkpoint that cannot be written stops every rank at once with the reason.
//  - A rank killed mid-step makes the other exit non-zero with a clear message within the timeout.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <regex>
#include <set>

#include <torch/torch.h>
#include "support/cli.h"
#include "support/tiny_run.h"

#include "tinyzero/core/files.h"
#include "tinyzero/io/safetensors.h"
#include "trainer/state_files.h"

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using tinyzero::testing::shell_quote;

namespace {

const std::string kSource = TZ_SOURCE_DIR;

// Largest absolute difference between same-named tensors of two safetensors files (all must match).
double max_abs_diff(const std::string& a_path, const std::string& b_path) {
  auto a = tinyzero::SafetensorsFile::open(a_path), b = tinyzero::SafetensorsFile::open(b_path);
  EXPECT_EQ(a.entries().size(), b.entries().size());
  double worst = 0;
  for (const auto& e : a.entries()) {
    at::Tensor x = a.tensor(e.name).to(at::kDouble), y = b.tensor(e.name).to(at::kDouble);
    worst = std::max(worst, (x - y).abs().max().item<double>());
  }
  return worst;
}

// The same for the whole optimizer states of two checkpoints, whatever ranks wrote them.
double max_state_diff(const std::string& a_dir, const std::string& b_dir,
                      const std::string& stem = "optimizer") {
  auto a = tinyzero::StateFiles::open(a_dir, stem), b = tinyzero::StateFiles::open(b_dir, stem);
  EXPECT_EQ(a.names(), b.names());
  double worst = 0;
  for (const auto& name : a.names())
    worst = std::max(
        worst, (a.whole(name).to(at::kDouble) - b.whole(name).to(at::kDouble)).abs().max().item<double>());
  return worst;
}

// Whether two checkpoints' optimizer state files are the same files, byte for byte.
bool same_state_files(const std::string& a_dir, const std::string& b_dir,
                      const std::string& stem = "optimizer") {
  auto files = [&](const std::string& dir) {
    std::map<std::string, std::string> out;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().filename().string().rfind(stem + "-rank", 0) == 0)
        out[entry.path().filename().string()] = tinyzero::read_file(entry.path().string());
    return out;
  };
  const auto a = files(a_dir);
  return !a.empty() && a == files(b_dir);
}

class TrainDist : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = tinyzero::testing::fresh_temp_dir("tz_train_dist");
    ASSERT_EQ(tinyzero::testing::make_tiny_model(dir_ + "/tiny"), "");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // The smoke config on the tiny model: 8 prompts x 4 responses per step in one mini-batch, generated
  // in chunks of 4 prompts, so that the rows each rank generates are chunks of the 1-rank run too (a
  // chunk's samples depend on the chunk's rows and the seed of its first prompt).
  static std::string args(const std::string& run, const std::string& overrides) {
    return "--config " + shell_quote(kSource + "/configs/smoke.yaml") +
           " model.path=" + shell_quote(dir_ + "/tiny/model") +
           " trainer.run_dir=" + shell_quote(dir_ + "/" + run) +
           " data.train_batch_size=8 actor.ppo_mini_batch_size=8 actor.ppo_micro_batch_size=8"
           " rollout.micro_batch_size=16 trainer.total_steps=3 trainer.test_freq=0 trainer.save_freq=3"
           " trainer.val_before_train=false logging.tensorboard=false logging.sample_freq=0 "
           "trainer.threads=1 " +
           overrides;
  }
  static tinyzero::testing::CliResult ranks(int n, const std::string& run,
                                            const std::string& overrides = "") {
    return tinyzero::testing::launch_local(n, args(run, overrides));
  }
  static std::string ckpt(const std::string& run, const std::string& file) {
    return dir_ + "/" + run + "/checkpoints/step_00000003/" + file;
  }
  // The parameter hashes the ranks logged, one per rank.
  static std::set<std::string> logged_hashes(const std::string& output, int* lines) {
    std::set<std::string> hashes;
    std::regex re("identical on all 2 ranks \\(hash ([0-9a-f]{16})\\)");
    *lines = 0;
    for (auto it = std::sregex_iterator(output.begin(), output.end(), re); it != std::sregex_iterator();
         ++it, ++*lines)
      hashes.insert((*it)[1].str());
    return hashes;
  }

  static inline std::string dir_;
};

TEST_F(TrainDist, TwoRanksStayIdenticalAndMatchOneRank) {
  auto one = ranks(1, "one");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = ranks(2, "two");
  ASSERT_EQ(two.exit_code, 0) << two.output;
  int lines = 0;
  auto hashes = logged_hashes(two.output, &lines);
  EXPECT_EQ(lines, 2) << two.output;  // both ranks checked and logged
  EXPECT_EQ(hashes.size(), 1u) << two.output;
  EXPECT_THAT(two.output, HasSubstr("[rank 1]"));
  EXPECT_LT(max_abs_diff(ckpt("one", "model.safetensors"), ckpt("two", "model.safetensors")), 1e-5);
  // Gradient buckets reduced while backward runs (the default) or after it: the same sums, bit for bit.
  // 16 rows per rank in micro-batches of 8 also covers accumulation before the overlapped pass.
  const auto metrics = tinyzero::testing::read_metrics(dir_ + "/two");
  ASSERT_TRUE(metrics.back().contains("perf/grad_buckets_overlapped"));
  EXPECT_GT(metrics.back()["perf/grad_buckets_overlapped"].get<double>(),
            0.5);  // most started during backward
  auto after = ranks(2, "two_after", "distributed.overlap_grad_reduce=false");
  ASSERT_EQ(after.exit_code, 0) << after.output;
  EXPECT_TRUE(tinyzero::read_file(ckpt("two", "model.safetensors")) ==
              tinyzero::read_file(ckpt("two_after", "model.safetensors")));
  EXPECT_TRUE(same_state_files(ckpt("two", ""), ckpt("two_after", "")));
}

TEST_F(TrainDist, PpoTwoRanksMatchOneRankCriticIncluded) {
  // GAE advantages are whitened over both ranks' tokens, and the critic's gradients are summed too.
  const std::string ppo =
      "algorithm.name=ppo rollout.n=1 algorithm.use_kl_in_reward=true actor.use_kl_loss=false "
      "rollout.micro_batch_size=4 critic.ppo_micro_batch_size=4";
  auto one = ranks(1, "ppo_one", ppo);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = ranks(2, "ppo_two", ppo);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_LT(max_abs_diff(ckpt("ppo_one", "model.safetensors"), ckpt("ppo_two", "model.safetensors")), 1e-5);
  EXPECT_LT(
      max_abs_diff(ckpt("ppo_one", "critic/model.safetensors"), ckpt("ppo_two", "critic/model.safetensors")),
      1e-5);
}

TEST_F(TrainDist, ZeroStageOneMatchesPlainDataParallelAndResumesOnOneRank) {
  auto plain = ranks(2, "plain");
  ASSERT_EQ(plain.exit_code, 0) << plain.output;
  auto zero = ranks(2, "zero", "distributed.zero_stage=1");
  ASSERT_EQ(zero.exit_code, 0) << zero.output;
  EXPECT_THAT(zero.output, HasSubstr("ZeRO-1: this rank keeps the AdamW state of"));
  EXPECT_LT(max_abs_diff(ckpt("plain", "model.safetensors"), ckpt("zero", "model.safetensors")), 1e-6);
  // The sharded state, each rank's part in its own file, is the whole state of plain data parallel.
  EXPECT_TRUE(fs::exists(ckpt("zero", "optimizer-rank1-of-2.safetensors")));
  EXPECT_TRUE(fs::exists(ckpt("plain", "optimizer-rank0-of-1.safetensors")));
  EXPECT_LT(max_state_diff(ckpt("plain", ""), ckpt("zero", "")), 1e-6);
  // Resume at another world size: one rank continues the 2-rank ZeRO-1 run.
  auto more = ranks(1, "zero", "distributed.zero_stage=1 trainer.total_steps=4");
  ASSERT_EQ(more.exit_code, 0) << more.output;
  EXPECT_THAT(more.output, HasSubstr("resumed from"));
}

TEST_F(TrainDist, ZeroStagesTwoAndThreeGiveTheNumbersOfPlainDataParallel) {
  // GRPO and PPO (critic and reference included) on 2 ranks: gradients reduce-scattered layer by layer
  // (stage 2), weights gathered a layer at a time too (stage 3); 2 micro-batches per rank, so the
  // per-micro-batch reductions add up as plain data parallel's single sum does (float rounding aside).
  const std::string ppo =
      " algorithm.name=ppo rollout.n=1 algorithm.use_kl_in_reward=true actor.use_kl_loss=false "
      "rollout.micro_batch_size=4 critic.ppo_micro_batch_size=4";
  for (const std::string algo : {"grpo", "ppo"}) {
    const std::string extra = algo == "ppo" ? ppo : " actor.use_kl_loss=true actor.ppo_micro_batch_size=4";
    auto plain = ranks(2, algo + "_stage0", extra);
    ASSERT_EQ(plain.exit_code, 0) << plain.output;
    // Stage 3 with the AdamW state in host memory too (optim.offload: a copy, the update, a copy back),
    // and the reference and critic offloaded between uses (their moves act on CUDA only; stage 3 used
    // to refuse them).
    const std::string offload =
        " actor.optim.offload=true critic.optim.offload=true critic.offload=true reference.offload=true";
    // And stage 3 generating with the actor gathered a layer at a time (the ranks in lockstep).
    const std::string by_layer = " distributed.rollout_gather=layer";
    for (const auto& [stage, more] :
         std::vector<std::pair<int, std::string>>{{2, ""}, {3, ""}, {3, offload}, {3, by_layer}}) {
      const std::string run = algo + "_stage" + std::to_string(stage) +
                              (more == offload    ? "_offload"
                               : more == by_layer ? "_by_layer"
                                                  : "");
      auto r = ranks(2, run, extra + more + " distributed.zero_stage=" + std::to_string(stage));
      ASSERT_EQ(r.exit_code, 0) << r.output;
      EXPECT_THAT(r.output, HasSubstr("ZeRO-" + std::to_string(stage) + ": this rank keeps"));
      EXPECT_LT(max_abs_diff(ckpt(algo + "_stage0", "model.safetensors"), ckpt(run, "model.safetensors")),
                2e-6)
          << run;
      EXPECT_LT(max_state_diff(ckpt(algo + "_stage0", ""), ckpt(run, "")), 2e-6) << run;
      if (algo == "ppo") {
        EXPECT_LT(max_abs_diff(ckpt(algo + "_stage0", "critic/model.safetensors"),
                               ckpt(run, "critic/model.safetensors")),
                  2e-6)
            << run;
        EXPECT_LT(max_state_diff(ckpt(algo + "_stage0", ""), ckpt(run, ""), "critic_optimizer"), 2e-6) << run;
      }
    }
  }
}

TEST_F(TrainDist, GenerationByLayerKeepsRanksWithUnevenSharesInStep) {
  // Validation of 3 problems on 2 ranks, one per generate call: rank 1 runs twice the forward passes of
  // rank 0, and with the weights gathered a layer at a time by every pass, rank 0 must keep gathering
  // with it. Greedy answers, so the success rate equals the one with the actor gathered whole.
  const std::string common =
      "distributed.zero_stage=3 data.val_size=3 data.val_batch_size=1 trainer.total_steps=1 "
      "trainer.test_freq=1 trainer.save_freq=0";
  auto whole = ranks(2, "val_whole", common + " distributed.rollout_gather=whole");
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  auto by_layer = ranks(2, "val_by_layer", common + " distributed.rollout_gather=layer");
  ASSERT_EQ(by_layer.exit_code, 0) << by_layer.output;
  EXPECT_THAT(by_layer.output, HasSubstr("ZeRO-3 generation gathers the actor a layer at a time"));
  auto last = [](const std::string& run, const std::string& key) {
    double value = -1;
    for (const auto& line : tinyzero::testing::read_metrics(dir_ + "/" + run))
      if (line.contains(key)) value = line[key].get<double>();
    return value;
  };
  for (const std::string key : {"val/test_score/countdown", "val/response_length/mean"}) {
    EXPECT_GE(last("val_by_layer", key), 0) << key << " not logged\n" << by_layer.output;
    EXPECT_NEAR(last("val_whole", key), last("val_by_layer", key), 1e-9) << key;
  }
}

TEST_F(TrainDist, OptimizerOffloadWithoutShardingIsRefusedClearly) {
  auto r = ranks(2, "offload_z1", "actor.optim.offload=true distributed.zero_stage=1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output,
              HasSubstr("actor.optim.offload=true keeps each rank's shard of the AdamW state in host "
                        "memory: it needs distributed.zero_stage 2 or 3"));
}

TEST_F(TrainDist, AZeroStageThreeRunResumesBitIdentically) {
  // 4 steps straight, against 3 steps, a checkpoint, and a resumed 4th step: the same bytes.
  auto straight =
      ranks(2, "z3_straight", "distributed.zero_stage=3 trainer.total_steps=4 trainer.save_freq=0");
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  auto first = ranks(2, "z3_resumed", "distributed.zero_stage=3");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto second = ranks(2, "z3_resumed", "distributed.zero_stage=3 trainer.total_steps=4");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("resumed from"));
  const std::string step4 = "/checkpoints/step_00000004/";
  EXPECT_TRUE(tinyzero::read_file(dir_ + "/z3_straight" + step4 + "model.safetensors") ==
              tinyzero::read_file(dir_ + "/z3_resumed" + step4 + "model.safetensors"));
  EXPECT_TRUE(same_state_files(dir_ + "/z3_straight" + step4, dir_ + "/z3_resumed" + step4));
  // Each rank wrote its shard of the AdamW state; one rank reads them both and goes on.
  auto one = ranks(1, "z3_resumed", "distributed.zero_stage=3 trainer.total_steps=5");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  EXPECT_THAT(one.output, HasSubstr("resumed from"));
}

TEST_F(TrainDist, AOneRankCheckpointResumesOnTwoRanksUnderZeroStageThree) {
  // The other way round: the whole state of one rank, cut into each rank's shard as it is read.
  auto first = ranks(1, "grow");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto second = ranks(2, "grow", "distributed.zero_stage=3 trainer.total_steps=4");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("resumed from"));
  EXPECT_TRUE(fs::exists(dir_ + "/grow/checkpoints/step_00000004/optimizer-rank1-of-2.safetensors"));
}

TEST_F(TrainDist, ACheckpointThatCannotBeWrittenStopsEveryRankAtOnce) {
  // run_dir/checkpoints is a file, so rank 0 cannot make the checkpoint's directory: both ranks stop with
  // the reason at that step, instead of rank 1 waiting out trainer.checkpoint_timeout_s. Under ZeRO-3
  // the ranks gather the weights with rank 0's write, a layer at a time: rank 0 still takes part in
  // every gather, so rank 1 does not wait out a collective either.
  for (const int stage : {0, 3}) {
    const std::string run = "unwritable_z" + std::to_string(stage);
    fs::create_directories(dir_ + "/" + run);
    tinyzero::write_file_atomic(dir_ + "/" + run + "/checkpoints", "not a directory\n");
    const auto start = std::chrono::steady_clock::now();
    auto r = ranks(
        2, run, "trainer.total_steps=1 trainer.save_freq=1 distributed.zero_stage=" + std::to_string(stage));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.output, ::testing::ContainsRegex(
                              "\\[rank 0\\] tinyzero-train: error: checkpoint .*step_00000001 "
                              "was not written: .*Not a directory.*earlier checkpoints are intact"));
    EXPECT_THAT(r.output,
                ::testing::ContainsRegex("\\[rank 1\\] tinyzero-train: error: checkpoint .*step_00000001 "
                                         "was not written: rank 0: .*Not a directory"));
    EXPECT_LT(seconds, 120.0) << run;
  }
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

TEST_F(TrainDist, AKilledRankMakesTheOtherFailWithinTheTimeout) {
  // Two ranks started by hand (launch-local.sh would stop the survivor itself); rank 1 is killed once
  // rank 0 has logged a step, and rank 0 must then fail on its own within distributed.timeout_s.
  const int timeout_s = 10;
  const std::string env =
      "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " WORLD_SIZE=2 ";
  const std::string run =
      args("killed",
           "trainer.total_steps=1000 trainer.save_freq=0 distributed.timeout_s=" + std::to_string(timeout_s));
  const std::string log0 = dir_ + "/rank0.log", log1 = dir_ + "/rank1.log";
  const std::string script =
      "cd " + shell_quote(kSource) + "; " + env + "RANK=0 LOCAL_RANK=0 " + shell_quote(TZ_CLI_PATH) + " " +
      run + " > " + shell_quote(log0) + " 2>&1 & r0=$!; " + env + "RANK=1 LOCAL_RANK=1 " +
      shell_quote(TZ_CLI_PATH) + " " + run + " > " + shell_quote(log1) + " 2>&1 & r1=$!; " +
      "for i in $(seq 600); do grep -q '] step 2 ' " + shell_quote(log0) + " && break; sleep 0.1; done; " +
      "kill -9 $r1; start=$(date +%s%N); wait $r0; code=$?; end=$(date +%s%N); " +
      "echo \"exit=$code elapsed_ms=$(( (end - start) / 1000000 ))\"";
  auto r = tinyzero::testing::run_shell(script);
  const std::string rank0 = tinyzero::read_file(log0);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.output, m, std::regex("exit=(\\d+) elapsed_ms=(\\d+)")))
      << r.output << rank0;
  EXPECT_NE(std::stoi(m[1]), 0) << rank0;
  EXPECT_LT(std::stod(m[2]) / 1000.0, timeout_s + 5.0) << rank0;  // within the timeout (and a margin)
  EXPECT_THAT(rank0, HasSubstr("] step 2 "));                     // it was killed mid-run, not before
  EXPECT_THAT(rank0, ::testing::ContainsRegex("rank 0: .*(rank 1|peer)")) << rank0;
  EXPECT_THAT(rank0, HasSubstr("tinyzero-train: error:")) << rank0;  // one clear line, not a crash
  const size_t at = rank0.find("tinyzero-train: error:");
  std::cout << "rank 0 exited " << m[1] << " " << m[2]
            << " ms after rank 1 was killed: " << rank0.substr(at, rank0.find('\n', at) - at) << "\n";
}

TEST_F(TrainDist, SigtermToOneRankStopsBothAfterTheSameStepWithACheckpoint) {
  // SIGTERM reaches rank 1 only (as when a launcher signals one process): the ranks agree on the step,
  // rank 0 writes its checkpoint, and both exit 143.
  const std::string env =
      "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(free_port()) + " WORLD_SIZE=2 ";
  const std::string run = args("term", "trainer.total_steps=500 trainer.save_freq=0");
  const std::string log0 = dir_ + "/term0.log", log1 = dir_ + "/term1.log";
  const std::string script =
      "cd " + shell_quote(kSource) + "; " + env + "RANK=0 LOCAL_RANK=0 " + shell_quote(TZ_CLI_PATH) + " " +
      run + " > " + shell_quote(log0) + " 2>&1 & r0=$!; " + env + "RANK=1 LOCAL_RANK=1 " +
      shell_quote(TZ_CLI_PATH) + " " + run + " > " + shell_quote(log1) + " 2>&1 & r1=$!; " +
      "for i in $(seq 600); do grep -q '] step 2 ' " + shell_quote(log0) + " && break; sleep 0.1; done; " +
      "kill -TERM $r1; wait $r0; c0=$?; wait $r1; c1=$?; echo \"exit0=$c0 exit1=$c1\"";
  auto r = tinyzero::testing::run_shell(script);
  const std::string rank0 = tinyzero::read_file(log0), rank1 = tinyzero::read_file(log1);
  EXPECT_THAT(r.output, HasSubstr("exit0=143 exit1=143")) << rank0 << rank1;
  std::smatch m0, m1;
  const std::regex stopped("stopped by SIGTERM at step (\\d+)");
  ASSERT_TRUE(std::regex_search(rank0, m0, stopped)) << rank0;
  ASSERT_TRUE(std::regex_search(rank1, m1, stopped)) << rank1;
  EXPECT_EQ(m0[1].str(), m1[1].str());
  char name[32];
  std::snprintf(name, sizeof name, "step_%08d", std::stoi(m0[1]));
  EXPECT_TRUE(fs::exists(dir_ + "/term/checkpoints/" + name + "/trainer_state.json")) << rank0;
}

}  // namespace
