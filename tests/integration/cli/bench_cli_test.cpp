// End-to-end test of `tinyzero-train bench` on a very small random model: every phase runs, the JSON
// holds every figure, the FLOPs behind each MFU match the formula computed here by hand, the RL step
// is split by phase, and bad arguments exit with code 2.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/cli.h"
#include "tinyzero/core/files.h"

namespace tinyzero {
namespace {

using json = nlohmann::json;

using testing::run_cli;

// vocab 320 (room for a byte-level BPE), hidden 64, 2 layers, 4 heads of 16, 2 KV heads, MLP 96.
const json kConfig = {{"architectures", {"Qwen2ForCausalLM"}},
                      {"model_type", "qwen2"},
                      {"vocab_size", 320},
                      {"hidden_size", 64},
                      {"intermediate_size", 96},
                      {"num_hidden_layers", 2},
                      {"num_attention_heads", 4},
                      {"num_key_value_heads", 2},
                      {"max_position_embeddings", 256},
                      {"rope_theta", 10000.0},
                      {"rms_norm_eps", 1e-6},
                      {"tie_word_embeddings", true},
                      {"eos_token_id", 2}};

// Matmul FLOPs of n tokens at positions start.. (each attending to itself and all before it), by hand
// for kConfig: per token and layer q/k/v/o 64*64 + 2*64*32 + 64*64 and MLP 3*64*96 multiply-adds,
// per (query, key) pair and layer 2 * 64 for q.k and p.v, the head 64*320 per scored token.
double flops(double start, double n, double head_tokens) {
  const double linear = 2.0 * 2 * (64 * 64 + 2 * 64 * 32 + 64 * 64 + 3 * 64 * 96);
  const double per_key = 2.0 * 2 * 2 * 64;
  return n * linear + per_key * (n * start + n * (n + 1) / 2) + head_tokens * 2.0 * 64 * 320;
}

class BenchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("tz_bench_cli_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    write_file_atomic(path("config.json"), kConfig.dump());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(BenchCli, EveryPhaseWithMfuAndRlSplit) {
  testing::CliResult r =
      run_cli("bench --model-config " + path("config.json") +
              " --threads 1 --matmul-sizes 256 --precision fp32,bf16 --batch 2,3 --prompt-len 8 "
              "--new-tokens 6 --train-batch 2 --seq-len 12"
              " --train-reps 1 --rl-prompts 2 --rl-n 2 --rl-response 6 --rl-steps 1 --json " +
              path("bench.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("matmul peak: fp32"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("timing_s/update_actor"), std::string::npos) << r.output;
  json j = json::parse(read_file(path("bench.json")));
  const double f32 = j["matmul_gflops_fp32"].get<double>(), bf16 = j["matmul_gflops_bf16"].get<double>();
  EXPECT_GT(f32, 0);
  EXPECT_GT(bf16, 0);
  // Embedding; per layer q/k/v/o, their biases (qwen2), MLP, 2 norms; final norm.
  EXPECT_EQ(j["parameters"].get<int64_t>(),
            320 * 64 + 2 * (2 * 64 * 64 + 2 * 64 * 32 + 128 + 3 * 64 * 96 + 2 * 64) + 64);
  std::map<std::string, int> count;
  for (const auto& x : j["results"]) {
    const std::string phase = x["phase"], precision = x["precision"];
    ++count[phase];
    const double s = x["seconds"].get<double>(), gflops = x["gflops"].get<double>();
    ASSERT_GT(s, 0) << x;
    EXPECT_GT(x["tokens_per_s"].get<double>(), 0) << x;
    const double peak = precision == "fp32" ? f32 : bf16;
    EXPECT_DOUBLE_EQ(x["peak_gflops"].get<double>(), peak) << x;
    EXPECT_NEAR(x["fraction_of_matmul_peak"].get<double>(), gflops / peak, 1e-9) << x;
    double want = 0;  // FLOPs of the phase by hand
    if (phase == "decode") {
      const double B = x["batch"].get<double>();
      want = B * (flops(0, 8, 1) + flops(8, 5, 5));  // prefill (logits of the last token) + 5 decode steps
      EXPECT_NEAR(x["tokens_per_s"].get<double>(), B * 6 / s, 1e-6 * B * 6 / s);
    } else if (phase == "logprob") {
      want = 2 * flops(0, 12, 11);
    } else if (phase == "train") {
      want = 3 * 2 * flops(0, 12, 11);
    }
    EXPECT_NEAR(gflops * s * 1e9, want, 1e-6 * want) << x;
  }
  EXPECT_EQ(count["decode"], 4);  // 2 batch sizes x fp32, bf16
  EXPECT_EQ(count["logprob"], 2);
  EXPECT_EQ(count["train"], 2);
  const json& steps = j["rl_step"]["steps"];
  ASSERT_EQ(steps.size(), 1u) << j["rl_step"];
  const json& t = steps[0];
  for (const char* k : {"timing_s/gen", "timing_s/update_actor", "timing_s/step"})
    EXPECT_GT(t.value(k, 0.0), 0) << k;
  double parts = 0;
  for (const char* k :
       {"timing_s/gen", "timing_s/old_log_prob", "timing_s/ref", "timing_s/adv", "timing_s/update_actor"})
    parts += t.value(k, 0.0);
  EXPECT_LE(parts, t["timing_s/step"].get<double>() * 1.0001);
  EXPECT_GT(t.value("timing_s/ref", 0.0), 0);           // use_kl_loss: a reference pass
  EXPECT_GT(t.value("timing_s/old_log_prob", 0.0), 0);  // two mini-batches: off-policy
  EXPECT_GT(j["load_average"].size(), 1u);
}

TEST_F(BenchCli, PhaseSelectionDefaultsMatmulAloneAndSkippedRl) {
  testing::CliResult r =
      run_cli("bench decode train --model-config " + path("config.json") +
              " --threads 1 --matmul-sizes 256 --batch 2 --prompt-len 4 --new-tokens 4 --train-batch 2"
              " --seq-len 4 --train-reps 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = json::parse(r.output);      // --json without a file: JSON on stdout
  ASSERT_EQ(j["results"].size(), 3u);  // default precisions: decode fp32; train fp32 and bf16 autocast
  EXPECT_EQ(j["results"][0]["phase"], "decode");
  EXPECT_EQ(j["results"][0]["precision"], "fp32");
  EXPECT_EQ(j["results"][2]["phase"], "train");
  EXPECT_EQ(j["results"][2]["precision"], "bf16-autocast");
  EXPECT_FALSE(j.contains("rl_step"));

  // Decode with one and two row groups, compared in one run.
  r = run_cli(
      "bench decode --model-config " + path("config.json") +
      " --threads 1 --matmul-sizes 256 --batch 2 --row-workers 1,2 --prompt-len 4 --new-tokens 4 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = json::parse(r.output);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["row_workers"], 1);
  EXPECT_EQ(j["results"][1]["row_workers"], 2);
  EXPECT_GT(j["results"][1]["tokens_per_s"].get<double>(), 0);
  r = run_cli("bench decode --model-config " + path("config.json") + " --row-workers 0,x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--row-workers"), std::string::npos) << r.output;

  r = run_cli("bench matmul --threads 1 --matmul-sizes 128,256 --json");  // no model needed
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = json::parse(r.output);
  EXPECT_GT(j["matmul_gflops_bf16"].get<double>(), 0);
  EXPECT_TRUE(j["results"].empty());

  // A model directory without a tokenizer: the RL step is skipped with a note, not an error.
  r = run_cli("bench rl --model " + std::string(TZ_TEST_DATA_DIR) +
              "/qwen2-tiny/tied-f32 --threads 1 --matmul-sizes 256");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("RL step: skipped"), std::string::npos) << r.output;
}

TEST_F(BenchCli, BadArgumentsExitWithUsageErrors) {
  const std::string cfg = " --model-config " + path("config.json");
  EXPECT_EQ(run_cli("bench decode" + cfg + " --batch 4,a").exit_code, 2);
  EXPECT_EQ(run_cli("bench decode").exit_code, 2);  // no model
  EXPECT_EQ(run_cli("bench decode" + cfg + " --model x").exit_code, 2);
  EXPECT_EQ(run_cli("bench train" + cfg + " --precision fp16").exit_code, 2);
  EXPECT_EQ(run_cli("bench warp" + cfg).exit_code, 2);
  EXPECT_EQ(run_cli("bench decode" + cfg + " --prompt-len 200 --new-tokens 100 --matmul-sizes 64").exit_code,
            2);
  EXPECT_EQ(run_cli("bench matmul --matmul-sizes 0").exit_code, 2);
  testing::CliResult r = run_cli("bench rl" + cfg + " --matmul-sizes 64 --rl-set actor.optim.lr=-1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("actor.optim.lr"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tinyzero
