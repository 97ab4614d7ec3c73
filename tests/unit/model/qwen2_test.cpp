// The model against Hugging Face's own outputs (tests/data/qwen2-tiny): logits, hidden states,
// next-token log-probs, loss and gradients, for the tied-f32 and untied-bf16 checkpoints; the chunked
// log-prob head and activation checkpointing against the plain autograd path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>

#include "model/grouped_attention.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/core/files.h"
#include "tinyzero/io/checkpoint.h"
#include "tinyzero/io/safetensors.h"
#include "tinyzero/model/kv_cache.h"
#include "tinyzero/model/logprobs.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "unit/model/fixture.h"

namespace tinyzero {
namespace {

using namespace testing_fixture;

class Qwen2Reference : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = reference(GetParam());
    model_ = load_causal_lm(fixture_dir(GetParam()), at::kFloat);
    model_->eval();
    ids_ = to_tensor(ref_["input_ids"], at::kLong);
    mask_ = to_tensor(ref_["attention_mask"], at::kLong);
  }
  nlohmann::json ref_;
  CausalLM model_{nullptr};
  at::Tensor ids_, mask_;
};

TEST_P(Qwen2Reference, PositionsFromMaskMatchHuggingFace) {
  EXPECT_TRUE(positions_from_mask(mask_).equal(to_tensor(ref_["position_ids"], at::kLong)));
}

TEST_P(Qwen2Reference, LogitsMatchOnRealTokens) {
  torch::NoGradGuard no_grad;
  at::Tensor logits = model_->forward(ids_, mask_);  // (2, 12, 700)
  at::Tensor expected = to_tensor(ref_["logits"], at::kFloat);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  at::Tensor real = mask_.to(at::kBool);
  EXPECT_LT(max_abs_diff(logits.index({real}), expected.index({real})), 1e-4);
  // Row 2 alone, unpadded, equals its padded version.
  at::Tensor seq_b = ids_[1].narrow(0, 3, 9).unsqueeze(0);
  at::Tensor alone = model_->forward(seq_b);
  EXPECT_LT(max_abs_diff(alone[0], to_tensor(ref_["logits_seqB_unpadded"], at::kFloat)), 1e-4);
  EXPECT_LT(max_abs_diff(alone[0], logits[1].narrow(0, 3, 9)), 1e-4);
}

TEST_P(Qwen2Reference, HiddenStatesMatchPerLayer) {
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> layers;
  at::Tensor row = ids_.narrow(0, 0, 1);
  at::Tensor m = at::ones_like(row);
  at::Tensor final_h = model_->hidden_states(row, m, positions_from_mask(m), nullptr, 0, &layers);
  at::Tensor expected = to_tensor(ref_["hidden_states_seq0"], at::kFloat);  // (4, 12, 96)
  ASSERT_EQ(layers.size(), 4u);
  for (int i = 0; i < 3; ++i)
    EXPECT_LT(max_abs_diff(layers[i][0], expected[i]), 1e-4) << "layer output " << i;
  EXPECT_LT(max_abs_diff(final_h[0], expected[3]), 1e-4);
}

TEST_P(Qwen2Reference, NextTokenLogProbsAndLoss) {
  TokenLogProbs lp = token_logprobs(*model_, ids_, mask_);
  at::Tensor valid = to_tensor(ref_["next_token_logprobs_valid"], at::kFloat);
  at::Tensor expected = to_tensor(ref_["next_token_logprobs"], at::kFloat) * valid;
  EXPECT_LT(max_abs_diff(lp.logprobs, expected), 1e-4);
  at::Tensor loss = -(lp.logprobs * valid).sum() / valid.sum();
  EXPECT_NEAR(loss.item<double>(), ref_["loss"].get<double>(), 1e-5);
}

TEST_P(Qwen2Reference, GradientsMatchHuggingFace) {
  std::string grads_path = fixture_dir(GetParam()) + "/grads.safetensors";
  if (GetParam() != "tied-f32") GTEST_SKIP() << "grads.safetensors only exists for tied-f32";
  model_->train();
  TokenLogProbs lp = token_logprobs(*model_, ids_, mask_);
  at::Tensor valid = to_tensor(ref_["next_token_logprobs_valid"], at::kFloat);
  at::Tensor loss = -(lp.logprobs * valid).sum() / valid.sum();
  loss.backward();
  SafetensorsFile grads = SafetensorsFile::open(grads_path);
  double total_sq = 0;
  for (const auto& p : model_->named_parameters()) {
    ASSERT_NE(grads.find(p.key()), nullptr) << p.key();
    at::Tensor g = grads.tensor(p.key()).to(at::kFloat);
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    double scale = g.abs().max().item<double>();
    EXPECT_LE(max_abs_diff(p.value().grad(), g), 1e-4 * std::max(scale, 1e-12)) << p.key();
    total_sq += p.value().grad().to(at::kDouble).pow(2).sum().item<double>();
  }
  EXPECT_NEAR(std::sqrt(total_sq), ref_["grad_norm_total"].get<double>(), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Qwen2Reference, ::testing::Values("tied-f32", "untied-bf16"),
                         variant_test_name);

// ---------------------------------------------------------------------------------------------------
TEST(FusedHead, MatchesPlainLogSoftmaxWithEntropyTemperatureAndChunks) {
  torch::manual_seed(0);
  at::Tensor h = torch::randn({37, 16}, torch::requires_grad());
  at::Tensor w = torch::randn({50, 16}, torch::requires_grad());
  at::Tensor y = torch::randint(0, 50, {37}, torch::kLong);
  at::Tensor g1 = torch::randn({37}), g2 = torch::randn({37});
  LogProbOptions o;
  o.temperature = 0.7;
  o.with_entropy = true;
  o.chunk_tokens = 8;  // 37 = 4 full chunks + 5
  auto [lp, ent] = fused_head_logprobs(h, w, y, o);
  ((lp * g1).sum() + (ent * g2).sum()).backward();
  at::Tensor gh = h.grad().clone(), gw = w.grad().clone();
  h.grad().zero_();
  w.grad().zero_();

  at::Tensor z = at::matmul(h, w.t()) / 0.7;
  at::Tensor logp = at::log_softmax(z, -1);
  at::Tensor lp_ref = logp.gather(1, y.unsqueeze(1)).squeeze(1);
  at::Tensor ent_ref = -(logp.exp() * logp).sum(-1);
  ((lp_ref * g1).sum() + (ent_ref * g2).sum()).backward();
  EXPECT_LT(max_abs_diff(lp, lp_ref), 1e-5);
  EXPECT_LT(max_abs_diff(ent, ent_ref), 1e-5);
  EXPECT_LT(max_abs_diff(gh, h.grad()), 1e-4);
  EXPECT_LT(max_abs_diff(gw, w.grad()), 1e-4);
}

TEST(ActivationCheckpointing, GradientsEqualThePlainPath) {
  TransformerConfig c = load_transformer_config(fixture_dir("tied-f32"));
  c.num_hidden_layers = 2;
  torch::manual_seed(3);
  CausalLM plain(c), ckpt(c);
  {
    torch::NoGradGuard g;
    auto a = plain->named_parameters(), b = ckpt->named_parameters();
    for (const auto& p : a) b[p.key()].copy_(p.value());
  }
  ckpt->set_activation_checkpointing(true);
  plain->train();
  ckpt->train();
  at::Tensor ids = torch::randint(0, c.vocab_size, {3, 10}, torch::kLong);
  at::Tensor mask = torch::ones({3, 10}, torch::kLong);
  mask.index_put_({2, torch::indexing::Slice(0, 4)}, 0);
  auto loss_of = [&](CausalLM& m) {
    TokenLogProbs lp = token_logprobs(*m, ids, mask);
    return -lp.logprobs.sum();
  };
  at::Tensor l1 = loss_of(plain), l2 = loss_of(ckpt);
  EXPECT_EQ(l1.item<float>(), l2.item<float>());
  l1.backward();
  l2.backward();
  auto b = ckpt->named_parameters();
  for (const auto& p : plain->named_parameters()) {
    ASSERT_TRUE(b[p.key()].grad().defined()) << p.key();
    EXPECT_LT(max_abs_diff(p.value().grad(), b[p.key()].grad()), 1e-6) << p.key();
  }
}

TEST(ModelConfigRefusals, LoadRejectsMismatchedWeights) {
  // The untied checkpoint's weights with a config that says tied: lm_head.weight is unexpected.
  TransformerConfig c = load_transformer_config(fixture_dir("untied-bf16"));
  c.tie_word_embeddings = true;
  CausalLM m(c);
  try {
    load_weights(*m, HfWeights::open(fixture_dir("untied-bf16")));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lm_head.weight"), std::string::npos) << e.what();
  }
  // One layer more than the file has: the missing tensors are named.
  c = load_transformer_config(fixture_dir("tied-f32"));
  c.num_hidden_layers = 4;
  CausalLM m4(c);
  try {
    load_weights(*m4, HfWeights::open(fixture_dir("tied-f32")));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing model.layers.3."), std::string::npos) << e.what();
  }
  // A wrong hidden size: shapes are named.
  c = load_transformer_config(fixture_dir("tied-f32"));
  c.intermediate_size = 128;
  CausalLM m5(c);
  try {
    load_weights(*m5, HfWeights::open(fixture_dir("tied-f32")));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected [128, 96], got [256, 96]"), std::string::npos) << e.what();
  }
}

TEST(ModelConfigRefusals, LoadRejectsNonFiniteWeightsNamingTensorAndFile) {
  CausalLM good = load_causal_lm(fixture_dir("tied-f32"), at::kFloat);
  const std::string dir = ::testing::TempDir() + "/tz_model_nonfinite";
  save_causal_lm(*good, dir, at::kBFloat16);
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    HfWeights w = HfWeights::open(dir);
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (const auto& name : w.names()) {
      at::Tensor t = w.tensor(name).clone();
      if (name == "model.layers.1.mlp.up_proj.weight") t.view({-1})[7] = bad;
      tensors.emplace_back(name, t);
    }
    const std::string file = dir + "/model.safetensors";
    save_safetensors(file, tensors);
    try {
      load_causal_lm(dir, at::kFloat);
      FAIL() << "expected an error for " << bad;
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("model.layers.1.mlp.up_proj.weight in " + file + " has 1 NaN or infinite value"),
                std::string::npos)
          << what;
    }
  }
}

// A copy of the fixture `variant` in a fresh directory, its config.json changed by `edit`.
std::string fixture_copy_with(const std::string& variant, const std::string& name,
                              const std::function<void(nlohmann::json&)>& edit) {
  const std::string dir = ::testing::TempDir() + "/tz_model_cfg_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"})
    std::filesystem::copy_file(fixture_dir(variant) + "/" + f, dir + "/" + f);
  nlohmann::json j = nlohmann::json::parse(read_file(dir + "/config.json"));
  edit(j);
  write_file_atomic(dir + "/config.json", j.dump(2));
  return dir;
}

// load_causal_lm's ConfigError; any other exception escapes and fails the test.
std::string load_config_error(const std::string& dir) {
  try {
    load_causal_lm(dir, at::kFloat);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ModelConfigRefusals, ConfigJsonIsCheckedAgainstTheWeightShapesBeforeAllocating) {
  struct Case {
    std::string variant, key;
    nlohmann::json value;
    std::vector<std::string> expected;  // substrings of the one-line message
  };
  const std::vector<Case> cases = {
      // 700e9 x 96 floats: allocating it was a LibTorch "can't allocate" with 25 stack frames.
      {"tied-f32",
       "vocab_size",
       1000000000000,
       {"field \"vocab_size\" of DIR/config.json is 1000000000000, but model.embed_tokens.weight in "
        "DIR/model.safetensors has shape [700, 96]",
        "set \"vocab_size\": 700"}},
      {"untied-bf16",
       "vocab_size",
       800,
       {"is 800, but model.embed_tokens.weight", "set \"vocab_size\": 700"}},
      {"tied-f32",
       "hidden_size",
       192,
       {"field \"hidden_size\" of DIR/config.json is 192", "set \"hidden_size\": 96"}},
      {"tied-f32",
       "intermediate_size",
       512,
       {"field \"intermediate_size\" of DIR/config.json is 512, but model.layers.0.mlp.gate_proj.weight in "
        "DIR/model.safetensors has shape [256, 96]",
        "set \"intermediate_size\": 256"}},
      {"tied-f32",
       "num_hidden_layers",
       4,
       {"field \"num_hidden_layers\" of DIR/config.json is 4, but the weights in DIR hold 3 layers",
        "set \"num_hidden_layers\": 3"}},
      {"tied-f32", "num_hidden_layers", 2, {"is 2, but the weights in DIR hold 3 layers"}},
      {"tied-f32",
       "num_hidden_layers",
       1000000000000,
       {"is 1000000000000, but the weights in DIR hold 3 layers"}},
      // head_dim = 96 / 12 = 8: k_proj would have 2 * 8 rows, the file has 32. Either count may be wrong.
      {"tied-f32",
       "num_attention_heads",
       12,
       {"fields \"num_attention_heads\" and \"num_key_value_heads\" of DIR/config.json are 12 and 2",
        "model.layers.0.self_attn.k_proj.weight in DIR/model.safetensors has shape [32, 96]",
        "set \"num_attention_heads\": 6 (with num_key_value_heads 2) or \"num_key_value_heads\": 4 (with "
        "num_attention_heads 12)"}},
      {"tied-f32",
       "num_key_value_heads",
       3,
       {"are 6 and 3", "set \"num_key_value_heads\": 2 (with num_attention_heads 6)"}},
      {"tied-f32",
       "tie_word_embeddings",
       false,
       {"field \"tie_word_embeddings\" of DIR/config.json is false, but the weights in DIR hold no "
        "lm_head.weight",
        "set \"tie_word_embeddings\": true"}},
  };
  for (const auto& c : cases) {
    const std::string dir =
        fixture_copy_with(c.variant, c.key, [&](nlohmann::json& j) { j[c.key] = c.value; });
    const std::string what = load_config_error(dir);
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    for (std::string want : c.expected) {
      for (size_t at = want.find("DIR"); at != std::string::npos; at = want.find("DIR", at + dir.size()))
        want.replace(at, 3, dir);
      EXPECT_NE(what.find(want), std::string::npos) << c.key << "=" << c.value << ": " << what;
    }
    std::filesystem::remove_all(dir);
  }
  // An unchanged copy loads.
  const std::string same = fixture_copy_with("untied-bf16", "same", [](nlohmann::json&) {});
  EXPECT_EQ(load_config_error(same), "(no error)");
  std::filesystem::remove_all(same);
}

TEST(ModelConfigRefusals, ExpectedShapesAreTheModelsParameters) {
  for (const std::string variant : {"tied-f32", "untied-bf16", "llama-biases"}) {
    TransformerConfig c =
        load_transformer_config(fixture_dir(variant == "llama-biases" ? "untied-bf16" : variant));
    if (variant == "llama-biases") {
      c.model_type = "llama", c.architecture = "LlamaForCausalLM";
      c.qkv_bias = c.o_bias = c.mlp_bias = true;
      c.head_dim = 32;  // 6 heads of 32 = 192 query rows from a hidden size of 96
    }
    CausalLM model(c);
    std::map<std::string, std::vector<int64_t>> params;
    for (const auto& p : model->named_parameters()) params[p.key()] = p.value().sizes().vec();
    const auto expected = expected_parameter_shapes(c);
    EXPECT_EQ(expected.size(), params.size()) << variant;
    for (const auto& [name, shape] : expected) {
      ASSERT_TRUE(params.count(name)) << variant << ": " << name;
      EXPECT_EQ(params[name], shape) << variant << ": " << name;
    }
  }
}

TEST(Checkpoint, WrittenAndReadBackGivesIdenticalLogits) {
  for (std::string variant : {"tied-f32", "untied-bf16"}) {
    CausalLM a = load_causal_lm(fixture_dir(variant), at::kFloat);
    std::string dir = ::testing::TempDir() + "/tz_model_ckpt_" + variant;
    at::ScalarType save = variant == "tied-f32" ? at::kFloat : at::kBFloat16;
    save_causal_lm(*a, dir, save);
    HfWeights w = HfWeights::open(dir);
    EXPECT_EQ(w.contains("lm_head.weight"), variant != "tied-f32");
    CausalLM b = load_causal_lm(dir, at::kFloat);
    at::Tensor ids = torch::randint(0, 700, {2, 9}, torch::kLong);
    torch::NoGradGuard g;
    EXPECT_TRUE(a->forward(ids).equal(b->forward(ids))) << variant;
    EXPECT_EQ(b->config().tie_word_embeddings, variant == "tied-f32");
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace tinyzero

namespace tinyzero {
namespace {

// The tied-f32 fixture in fp32 with its reference batch; `real` marks the non-padding positions.
struct TiedF32 {
  nlohmann::json ref = testing_fixture::reference("tied-f32");
  at::Tensor ids = testing_fixture::to_tensor(ref["input_ids"], at::kLong);
  at::Tensor mask = testing_fixture::to_tensor(ref["attention_mask"], at::kLong);
  at::Tensor real = mask.to(at::kBool);
  CausalLM model = load_causal_lm(testing_fixture::fixture_dir("tied-f32"), at::kFloat);
};

// Grouped-head attention (used on CUDA where SDPA has no fused kernel for a mask with grouped heads)
// equals SDPA's, over strided views of a cache and masks that hide different columns per row: a
// decode step (T = 1) and a prefill with causal and padding masks (T = 5), in fp32 and bf16; and its
// gradients equal SDPA's.
TEST(GroupedAttention, EqualsSdpaWithGroupedHeadsOverACacheView) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const int64_t B = 3, H = 8, KV = 2, D = 16, C = 40, S = 29;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int64_t T : {1, 5}) {
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      SCOPED_TRACE(std::to_string(T) + " queries, " + c10::toString(dtype));
      at::Tensor q = at::randn({B, T, H, D}, gen).to(dtype);
      at::Tensor cache_k = at::randn({B, KV, C, D}, gen).to(dtype),
                 cache_v = at::randn({B, KV, C, D}, gen).to(dtype);
      at::Tensor k = cache_k.narrow(2, 0, S),
                 v = cache_v.narrow(2, 0, S);  // strided, as the engine passes them
      at::Tensor bias = at::zeros({B, T, S});
      bias[0].narrow(1, 0, 5).fill_(neg_inf);  // left padding of row 0
      for (int64_t t = 0; t < T; ++t)          // query t of row 2 is at column 20 + t
        bias[2][t].narrow(0, 21 + t, S - 21 - t).fill_(neg_inf);
      const at::Tensor got = grouped_attention(q, k, v, bias);
      ASSERT_EQ(got.sizes(), (std::vector<int64_t>{B, T, H * D}));
      EXPECT_EQ(got.scalar_type(), dtype);
      const at::Tensor want = at::scaled_dot_product_attention(
                                  q.transpose(1, 2).to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat),
                                  bias.view({B, 1, T, S}), 0.0, false, std::nullopt, /*enable_gqa=*/true)
                                  .transpose(1, 2)
                                  .reshape({B, T, H * D});
      EXPECT_LT(max_abs_diff(got.to(at::kFloat), want), dtype == at::kFloat ? 1e-5 : 3e-2);
      // Row 2 ignores what its masked columns hold.
      cache_v[2].narrow(1, 21 + T, S - 21 - T).fill_(1e4);
      EXPECT_TRUE(grouped_attention(q, k, v, bias)[2].equal(got[2]));
    }
  }
  // Gradients with respect to q, k and v, against SDPA's.
  const int64_t T = 6;
  at::Tensor q = at::randn({B, T, H, D}, gen), k = at::randn({B, KV, T, D}, gen),
             v = at::randn({B, KV, T, D}, gen);
  at::Tensor bias =
      at::zeros({T, T}).masked_fill_(at::ones({T, T}, at::kBool).triu(1), neg_inf).expand({B, T, T});
  at::Tensor weights = at::randn({B, T, H * D}, gen);
  std::vector<at::Tensor> grads[2];
  for (int way = 0; way < 2; ++way) {
    at::Tensor gq = q.clone().requires_grad_(true), gk = k.clone().requires_grad_(true),
               gv = v.clone().requires_grad_(true);
    at::Tensor out = way == 0
                         ? grouped_attention(gq, gk, gv, bias)
                         : at::scaled_dot_product_attention(gq.transpose(1, 2), gk, gv, std::nullopt, 0.0,
                                                            /*is_causal=*/true, std::nullopt, true)
                               .transpose(1, 2)
                               .reshape({B, T, H * D});
    (out * weights).sum().backward();
    grads[way] = {gq.grad(), gk.grad(), gv.grad()};
  }
  for (int i = 0; i < 3; ++i) EXPECT_LT(max_abs_diff(grads[0][i], grads[1][i]), 1e-5) << "gradient " << i;
}

// Whole sequences whose real tokens form one run per row (left padding, right padding, both, none)
// take plain causal attention on rows rotated to start at column 0; that equals the masked attention
// a prefill into a KV cache takes, on every real position, for the final and every layer's hidden
// states. A row with a hole in its mask is not such a run and takes the mask (else it would differ).
TEST(CausalRows, PlainCausalAttentionEqualsTheMaskedPath) {
  torch::NoGradGuard no_grad;
  TiedF32 f;
  const int64_t B = f.ids.size(0), T = f.ids.size(1);
  for (bool with_hole : {false, true}) {
    SCOPED_TRACE(with_hole ? "a row with a hole" : "runs");
    at::Tensor mask = f.mask.clone();
    mask[0].narrow(0, T - 2, 2).zero_();  // row 0: padding after its run
    if (with_hole) mask[0][3] = 0;
    for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
      SCOPED_TRACE(c10::toString(dtype));
      f.model->to(dtype);
      at::Tensor pos = positions_from_mask(mask);
      std::vector<at::Tensor> plain_layers, masked_layers;
      at::Tensor plain = f.model->hidden_states(f.ids, mask, pos, nullptr, 0, &plain_layers);
      KVCache cache = KVCache::allocate(f.model->config(), B, T, dtype, at::kCPU);
      at::Tensor masked = f.model->hidden_states(f.ids, mask, pos, &cache, 0, &masked_layers);
      at::Tensor real = mask.to(at::kBool);
      // Relative to the largest magnitude: the two kernels round differently (bf16: a few of its ulps).
      const double tol = dtype == at::kFloat ? 1e-6 : 2e-2;
      auto relative_diff = [&](const at::Tensor& a, const at::Tensor& b) {
        at::Tensor x = a.index({real}).to(at::kFloat), y = b.index({real}).to(at::kFloat);
        return max_abs_diff(x, y) / std::max(1.0, x.abs().max().item<double>());
      };
      EXPECT_LT(relative_diff(plain, masked), tol);
      ASSERT_EQ(plain_layers.size(), masked_layers.size());
      for (size_t i = 0; i < plain_layers.size(); ++i)
        EXPECT_LT(relative_diff(plain_layers[i], masked_layers[i]), tol) << "layer output " << i;
    }
    f.model->to(at::kFloat);
  }
}

// bf16 parameters and bf16 autocast run, stay close to the fp32 logits, and gradients flow.
TEST(Precision, Bf16ParametersAndAutocastStayCloseToFp32) {
  using namespace testing_fixture;
  TiedF32 f;
  auto& [ref, ids, mask, real, model] = f;
  at::Tensor expected = to_tensor(ref["logits"], at::kFloat).index({real});
  double scale = expected.abs().max().item<double>();
  {
    AutocastGuard autocast(at::Device(at::kCPU), true);
    EXPECT_TRUE(autocast_enabled(at::Device(at::kCPU)));
    TokenLogProbs lp = token_logprobs(*model, ids, mask, LogProbOptions{1.0, true, 5});
    at::Tensor loss = -lp.logprobs.sum() - 0.01 * lp.entropy.sum();
    loss.backward();
    torch::NoGradGuard g;
    at::Tensor logits = model->forward(ids, mask);
    EXPECT_EQ(logits.scalar_type(), at::kFloat);
    double diff = max_abs_diff(logits.index({real}), expected);
    EXPECT_GT(diff, 0.0);  // bf16 matmuls really ran
    EXPECT_LT(diff, 0.05 * scale);
  }
  EXPECT_FALSE(autocast_enabled(at::Device(at::kCPU)));
  for (const auto& p : model->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(p.value().grad().isfinite().all().item<bool>()) << p.key();
  }
  CausalLM bf16 = load_causal_lm(fixture_dir("tied-f32"), at::kBFloat16);
  EXPECT_EQ(bf16->dtype(), at::kBFloat16);
  torch::NoGradGuard g;
  EXPECT_LT(max_abs_diff(bf16->forward(ids, mask).index({real}), expected), 0.1 * scale);
}

// Fused inference under bf16 autocast with fp32 weights multiplies by bf16 copies made once (q/k/v and
// gate/up concatenated, o_proj and down_proj as they are), not by weights autocast converts at every
// call: the logits are the unfused path's up to bf16 rounding, and a second pass changes nothing.
TEST(Precision, FusedInferenceUnderAutocastMatchesTheModulesUpToBf16Rounding) {
  using namespace testing_fixture;
  TiedF32 f;
  auto& [ref, ids, mask, real, model] = f;
  torch::NoGradGuard g;
  AutocastGuard autocast(at::Device(at::kCPU), true);
  const at::Tensor modules = model->forward(ids, mask).index({real});
  model->set_fused_inference(true);
  const at::Tensor fused = model->forward(ids, mask).index({real});
  EXPECT_TRUE(model->forward(ids, mask).index({real}).equal(fused));
  model->set_fused_inference(false);
  const double scale = modules.abs().max().item<double>();
  EXPECT_LT(max_abs_diff(fused, modules), 0.02 * scale);
  EXPECT_TRUE(model->forward(ids, mask).index({real}).equal(modules));  // the copies are gone
}

}  // namespace
}  // namespace tinyzero
