// End-to-end tests of `tinyzero-train init | logits | generate | bench decode` on the qwen2-tiny
// fixture (Hugging Face reference outputs) and on a freshly initialised model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "support/cli.h"
#include "tinyzero/core/files.h"
#include "tinyzero/io/safetensors.h"
#include "tinyzero/tokenizer/tokenizer.h"

namespace tinyzero {
namespace {

using json = nlohmann::json;

using testing::run_cli;

std::string fixture(const std::string& v) { return std::string(TZ_TEST_DATA_DIR) + "/qwen2-tiny/" + v; }

class ModelCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) / ("tz_model_cli_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(ModelCli, LogitsMatchHuggingFace) {
  for (std::string v : {"tied-f32", "untied-bf16"}) {
    json ref = json::parse(read_file(fixture(v) + "/reference.json"));
    json in = {{"input_ids", ref["input_ids"]}, {"attention_mask", ref["attention_mask"]}};
    write_file_atomic(path("in.json"), in.dump());
    testing::CliResult r = run_cli("logits --model " + fixture(v) + " --input " + path("in.json") +
                                   " --output " + path("logits.safetensors"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    at::Tensor logits = SafetensorsFile::open(path("logits.safetensors")).tensor("logits");
    ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 12, 700}));
    double worst = 0;
    for (int b = 0; b < 2; ++b) {
      for (int t = (b == 0 ? 0 : 3); t < 12; ++t) {
        for (int k = 0; k < 700; ++k) {
          worst = std::max(worst,
                           std::abs(logits[b][t][k].item<double>() - ref["logits"][b][t][k].get<double>()));
        }
      }
    }
    EXPECT_LT(worst, 1e-4) << v;
  }
}

TEST_F(ModelCli, GreedyGenerateMatchesHuggingFaceWithEos) {
  json ref = json::parse(read_file(fixture("tied-f32") + "/reference.json"));
  const json& c = ref["generation"]["batch_left_padded_with_eos"];
  write_file_atomic(path("in.json"),
                    json({{"input_ids", c["input_ids"]}, {"attention_mask", c["attention_mask"]}}).dump());
  testing::CliResult r =
      run_cli("generate --model " + fixture("tied-f32") + " --input " + path("in.json") +
              " --greedy --max-new-tokens 20 --eos-id 356 --pad-id 699 --output " + path("out.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json out = json::parse(read_file(path("out.json")));
  EXPECT_EQ(out["new_ids"], c["new_ids"]);
  EXPECT_EQ(out["lengths"], json({3, 20}));
  EXPECT_EQ(out["finish_reasons"], json({"eos", "length"}));
  EXPECT_FALSE(out.contains("text"));  // the fixture has no tokenizer
}

TEST_F(ModelCli, InitWritesALoadableModelAndSamplingIsSeeded) {
  testing::CliResult r = run_cli("init --model-config " + fixture("untied-bf16") + "/config.json --out " +
                                 path("m") + " --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(std::filesystem::exists(path("m/config.json")));
  EXPECT_TRUE(std::filesystem::exists(path("m/generation_config.json")));
  auto st = SafetensorsFile::open(path("m/model.safetensors"));
  ASSERT_NE(st.find("lm_head.weight"), nullptr);
  EXPECT_EQ(st.find("lm_head.weight")->dtype, "F32");
  // Same seed, same weights.
  ASSERT_EQ(run_cli("init --model-config " + fixture("untied-bf16") + "/config.json --out " + path("m2") +
                    " --seed 7")
                .exit_code,
            0);
  EXPECT_TRUE(st.tensor("model.layers.0.mlp.up_proj.weight")
                  .equal(SafetensorsFile::open(path("m2/model.safetensors"))
                             .tensor("model.layers.0.mlp.up_proj.weight")));
  // Sampling is reproducible by seed, and n samples come back per prompt.
  write_file_atomic(path("in.json"), R"({"input_ids": [[1, 2, 3], [4, 5]]})");
  std::string gen =
      "generate --model " + path("m") + " --input " + path("in.json") +
      " --temperature 1.0 --top-k 50 --top-p 0.9 --max-new-tokens 6 --num-samples 3 --no-eos --seed ";
  testing::CliResult a = run_cli(gen + "3"), b = run_cli(gen + "3"), d = run_cli(gen + "4");
  ASSERT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(a.output, b.output);
  EXPECT_NE(a.output, d.output);
  json ja = json::parse(a.output);
  EXPECT_EQ(ja["new_ids"].size(), 6u);
  EXPECT_EQ(ja["new_ids"][0].size(), 6u);
}

TEST_F(ModelCli, InitWithATokenizerWritesItsEosAndGenerateFallsBackToIt) {
  // A model made for a tokenizer says where it ends (config.json and generation_config.json, as
  // Hugging Face models do), so that generate, transformers and vLLM stop there without being told.
  const std::string tok = std::string(TZ_TEST_DATA_DIR) + "/qwen-tokenizer";
  const std::optional<int64_t> eos = load_tokenizer(tok)->eos_id();
  ASSERT_TRUE(eos.has_value());
  write_file_atomic(path("cfg.json"), R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
      "vocab_size": 151936, "hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1,
      "num_attention_heads": 2, "num_key_value_heads": 1, "tie_word_embeddings": true})");
  testing::CliResult r =
      run_cli("init --model-config " + path("cfg.json") + " --tokenizer " + tok + " --out " + path("m"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(read_file(path("m/config.json"))).value("eos_token_id", json()), json(*eos));
  EXPECT_EQ(json::parse(read_file(path("m/generation_config.json"))).value("eos_token_id", json()),
            json(*eos));

  // A model with no EOS of its own (init without a tokenizer): generate takes the tokenizer's.
  ASSERT_EQ(run_cli("init --model-config " + path("cfg.json") + " --out " + path("bare")).exit_code, 0);
  EXPECT_FALSE(json::parse(read_file(path("bare/config.json"))).contains("eos_token_id"));
  r = run_cli("generate --model " + path("bare") + " --tokenizer " + tok +
              " --prompt hello --greedy --max-new-tokens 2 --output " + path("out.json"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(json::parse(read_file(path("out.json")))["eos_ids"], json::array({*eos}));
}

TEST_F(ModelCli, ErrorsAreOneLineWithExitCodes) {
  testing::CliResult r = run_cli("logits --model " + path("nope") + " --input x.json --output y.safetensors");
  EXPECT_EQ(r.exit_code, 1) << r.output;  // the input file is missing
  write_file_atomic(path("bad.json"), R"({"input_ids": [[1, 2], [3]]})");
  r = run_cli("logits --model " + fixture("tied-f32") + " --input " + path("bad.json") + " --output " +
              path("o.st"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("input_ids"), std::string::npos) << r.output;
  r = run_cli("generate --model " + fixture("tied-f32") + " --prompt hello --max-new-tokens 3");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("tokenizer"), std::string::npos) << r.output;
  write_file_atomic(path("cfg.json"), R"({"architectures": ["GPT2LMHeadModel"], "vocab_size": 10})");
  r = run_cli("init --model-config " + path("cfg.json") + " --out " + path("m"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("GPT2LMHeadModel"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(path("m")));
  r = run_cli("generate --model " + fixture("tied-f32") + " --input " + path("bad.json") +
              " --max-new-tokens 3 --greedy --temperature 0.5");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST_F(ModelCli, BenchDecodeReportsThroughputAndPeakFraction) {
  testing::CliResult r = run_cli("bench decode --model-config " + fixture("tied-f32") +
                                 "/config.json --batch 2,4 --prompt-len 8 --new-tokens 8 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  json j = json::parse(r.output);
  EXPECT_GT(j["matmul_gflops_fp32"].get<double>(), 0);
  ASSERT_EQ(j["results"].size(), 2u);
  for (const auto& x : j["results"]) {
    EXPECT_GT(x["tokens_per_s"].get<double>(), 0);
    EXPECT_GT(x["fraction_of_matmul_peak"].get<double>(), 0);
  }
  EXPECT_EQ(run_cli("bench decode --model-config x --batch 4,a").exit_code, 2);
}

}  // namespace
}  // namespace tinyzero
