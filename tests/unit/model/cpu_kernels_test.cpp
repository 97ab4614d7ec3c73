// The fused decode-attention kernel against the plain formula softmax(q k^T * scale + bias) v computed
// with ATen ops in float64: grouped heads, left padding (-inf bias), a cache longer than the used
// columns, fp32 and bf16, and the model's KV-cache decode through it against the no-cache forward.
#include "model/cpu_kernels.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "tinyzero/model/generator.h"
#include "tinyzero/model/qwen2.h"

namespace tinyzero {
namespace {

// q (B, H, D), k/v (B, KV, C, D) -> (B, H * D) in float64.
at::Tensor plain(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, int64_t S,
                 const at::Tensor& bias, double scale) {
  int64_t B = q.size(0), H = q.size(1), D = q.size(2), KV = k.size(1), rep = H / KV;
  at::Tensor kk = k.narrow(2, 0, S).to(at::kDouble).repeat_interleave(rep, 1);  // (B, H, S, D)
  at::Tensor vv = v.narrow(2, 0, S).to(at::kDouble).repeat_interleave(rep, 1);
  at::Tensor scores = at::matmul(q.to(at::kDouble).unsqueeze(2), kk.transpose(-1, -2)).squeeze(2) * scale +
                      bias.narrow(1, 0, S).to(at::kDouble).unsqueeze(1);  // (B, H, S)
  at::Tensor p = at::softmax(scores, -1);
  return at::matmul(p.unsqueeze(2), vv).squeeze(2).reshape({B, H * D});
}

TEST(DecodeAttention, MatchesThePlainFormula) {
  torch::manual_seed(3);
  const int64_t B = 5, H = 8, KV = 2, D = 40, C = 23, S = 17;  // D not a multiple of 8: the tail path
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor q = torch::randn({B, H, D}), k = torch::randn({B, KV, C, D}), v = torch::randn({B, KV, C, D});
  at::Tensor bias = torch::zeros({B, C + 4});  // a row stride larger than S
  const float neg_inf = -std::numeric_limits<float>::infinity();
  bias[1].narrow(0, 0, 3).fill_(neg_inf);  // left padding of rows 1 and 3
  bias[3].narrow(0, 0, 16).fill_(neg_inf);
  at::Tensor view = bias.narrow(1, 0, S);
  at::Tensor want = plain(q, k, v, S, view, scale);

  at::Tensor got = kernels::decode_attention(q, k, v, S, view, scale);
  ASSERT_EQ(got.sizes(), (at::IntArrayRef{B, H * D}));
  EXPECT_LT((got.to(at::kDouble) - want).abs().max().item<double>(), 1e-5);
  // Row 3 sees one key only: its output is that key's value, for every head of the group.
  EXPECT_LT((got[3].view({H, D})[0] - v[3][0][16]).abs().max().item<float>(), 1e-6);

  // Padded keys must not matter, whatever they hold.
  at::Tensor k2 = k.clone();
  k2[1].narrow(1, 0, 3).fill_(1e4);
  EXPECT_TRUE(kernels::decode_attention(q, k2, v, S, view, scale).equal(got));

  auto bf = [](const at::Tensor& t) { return t.to(at::kBFloat16); };
  at::Tensor got16 = kernels::decode_attention(bf(q), bf(k), bf(v), S, view, scale);
  EXPECT_EQ(got16.scalar_type(), at::kBFloat16);
  at::Tensor want16 = plain(bf(q), bf(k), bf(v), S, view, scale);
  EXPECT_LT((got16.to(at::kDouble) - want16).abs().max().item<double>(), 0.05);
}

TEST(DecodeAttention, ModelDecodeEqualsTheNoCacheForward) {
  TransformerConfig c;
  c.vocab_size = 97;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.max_position_embeddings = 64;
  c.qkv_bias = true;
  torch::manual_seed(5);
  CausalLM model(c);
  model->eval();
  at::Tensor ids = torch::randint(0, 97, {3, 9}), mask = torch::ones_like(ids);
  mask[1].narrow(0, 0, 4).zero_();
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.seed = 7;
  o.compact = false;
  GenerateResult a = generate(*model, ids, mask, o), b = generate_reference(*model, ids, mask, o);
  EXPECT_TRUE(a.ids.equal(b.ids)) << a.ids << b.ids;
  EXPECT_LT((a.logprobs - b.logprobs).abs().max().item<float>(), 1e-4);
}

}  // namespace
}  // namespace tinyzero
