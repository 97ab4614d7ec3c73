// Qwen2 / Llama / Mistral modules: embeddings, RMSNorm, rotary embeddings, grouped-query attention,
// SwiGLU MLP, final norm, LM head; per-layer activation checkpointing; KV cache; bf16 autocast shim.
#include "tinyzero/model/qwen2.h"

#include <ATen/autocast_mode.h>
#include <ATen/native/transformers/sdp_utils_cpp.h>
#include <torch/torch.h>

#include <cmath>

#include "grouped_attention.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/model/kv_cache.h"

namespace tinyzero {
namespace {

at::Tensor rotate_half(const at::Tensor& x) {  // (..., D): (-x2, x1)
  int64_t half = x.size(-1) / 2;
  return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// Attention: q (B, T, H, D), k/v (B, KV, S, D); bias (B, T, S) additive 0 / -inf, or undefined for plain
// causal attention (S == T, see causal_rows). No path copies K/V per query head:
// - Plain causal: SDPA with enable_gqa (flash on CUDA in bf16, and on the CPU), unless SDPA would take
//   its math kernel (CUDA in fp32), which repeats K and V for every query head: grouped_attention.
// - Masked, on CUDA with grouped heads (prefill and decode into the KV cache): SDPA's fused kernels
//   take a mask or grouped heads, not both, so grouped_attention takes the math kernel's place.
// - Masked, on the CPU: SDPA's flash kernel in bf16 (twice as fast there as the batched matmuls of
//   grouped_attention), grouped_attention in fp32 (1.5x as fast as SDPA: 528 against 801 us per layer
//   of a decode step at B=64, 192 columns, small shape). Both give a row the same bits in any batch
//   whose width is a multiple of 16 columns (kCacheColumnAlign, decode_memory.h).
at::Tensor sdpa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const at::Tensor& bias) {
  int64_t B = q.size(0), T = q.size(1), H = q.size(2), S = k.size(2);
  const bool grouped = k.size(1) != H;
  at::Tensor qt = q.transpose(1, 2);  // (B, H, T, D)
  std::optional<at::Tensor> mask;
  if (bias.defined()) {
    if (q.is_cuda() ? grouped : q.scalar_type() == at::kFloat) return grouped_attention(q, k, v, bias);
    mask = bias.view({B, 1, T, S}).to(q.scalar_type());
  } else if (grouped && q.is_cuda() &&
             at::_fused_sdp_choice(qt, k, v, std::nullopt, 0.0, /*is_causal=*/true, std::nullopt,
                                   /*enable_gqa=*/true) == static_cast<int64_t>(sdp::SDPBackend::math)) {
    at::Tensor pos = at::arange(T, q.options().dtype(at::kLong));
    at::Tensor causal_bias = at::zeros({T, T}, q.options().dtype(at::kFloat))
                                 .masked_fill_(pos.view({1, T}) > pos.view({T, 1}),  // keys after the query
                                               -std::numeric_limits<float>::infinity());
    return grouped_attention(q, k, v, causal_bias.expand({B, T, T}));
  }
  at::Tensor out =
      at::scaled_dot_product_attention(qt, k, v, mask, /*dropout_p=*/0.0, !bias.defined(),
                                       /*scale=*/std::nullopt, /*enable_gqa=*/true);  // (B, H, T, D)
  return out.transpose(1, 2).reshape({B, T, -1});                                     // (B, T, H*D)
}

// Rows whose real tokens form one run (padding only before and after it, as a left-padded prompt with
// a right-padded response has) are rotated so that each run starts at column 0. Then query t attends
// exactly the keys s <= t: plain causal attention, which SDPA runs without a mask, on its fused
// kernels with grouped heads, skipping the masked half. Returns whether the rows are such runs, and
// each row's rotation (B), undefined when no row needs one. One read of two numbers by the host.
struct CausalRows {
  bool causal = false;
  at::Tensor shift;  // (B) int64: row b's column t holds the input's column (t + shift[b]) % T
};

CausalRows causal_rows(const at::Tensor& key_mask) {  // (B, T) on the model's device
  const int64_t T = key_mask.size(1);
  at::Tensor real = key_mask.to(at::kBool);
  at::Tensor lead = real.to(at::kLong).cumsum(1).eq(0).sum(1);  // (B) padding before the run
  at::Tensor end = lead + real.sum(1);                          // (B) one past the run
  at::Tensor t = at::arange(T, lead.options()).view({1, T});
  at::Tensor run = t.ge(lead.view({-1, 1})).logical_and_(t.lt(end.view({-1, 1})));
  at::Tensor facts = at::stack({run.eq(real).all().to(at::kLong), lead.max()}).cpu();
  CausalRows rows;
  rows.causal = facts[0].item<int64_t>() != 0;
  if (rows.causal && facts[1].item<int64_t>() > 0) rows.shift = lead;
  return rows;
}

// x (B, T, ...) with row b rotated left by shift[b] columns (right, to undo, with shift negated).
at::Tensor rotate_rows(const at::Tensor& x, const at::Tensor& shift) {
  const int64_t B = x.size(0), T = x.size(1);
  at::Tensor index = at::arange(T, shift.options()).view({1, T}).add(shift.view({B, 1})).remainder_(T);
  if (x.dim() == 2) return x.gather(1, index);
  return x.gather(1, index.view({B, T, 1}).expand({B, T, x.size(2)}));
}

template <typename T>
int64_t pointer_value(T* p) {
  return static_cast<int64_t>(reinterpret_cast<intptr_t>(p));
}
template <typename T>
T* pointer_from(const c10::IValue& v) {
  return reinterpret_cast<T*>(static_cast<intptr_t>(v.toInt()));
}

// The attention bias a checkpointed layer is given: an empty tensor stands for plain causal attention
// (an autograd function's tensor arguments must be defined).
at::Tensor bias_or_causal(const at::Tensor& bias) { return bias.numel() == 0 ? at::Tensor() : bias; }

// Runs one decoder layer in forward without keeping activations; backward re-runs it with grad
// enabled and back-propagates through the re-run (the reentrant scheme of torch.utils.checkpoint). With
// a parameter host (ZeRO-3) the layer's parameters are acquired around the forward and again around the
// re-run, so they are whole only while the layer computes.
struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor cos,
                            at::Tensor sin, at::Tensor bias, DecoderLayerImpl* layer, ParameterHost* host,
                            int64_t index) {
    ctx->save_for_backward({x, cos, sin, bias});
    ctx->saved_data["layer"] = pointer_value(layer);
    ctx->saved_data["host"] = pointer_value(host);
    ctx->saved_data["index"] = index;
    ctx->saved_data["autocast"] = autocast_enabled(x.device());
    torch::NoGradGuard no_grad;
    if (host) host->acquire(index);
    at::Tensor out = layer->forward(x, ForwardTables{cos, sin, bias_or_causal(bias), {}});
    if (host) host->release(index);
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto* layer = pointer_from<DecoderLayerImpl>(ctx->saved_data["layer"]);
    auto* host = pointer_from<ParameterHost>(ctx->saved_data["host"]);
    const int64_t index = ctx->saved_data["index"].toInt();
    at::Tensor x = saved[0].detach().requires_grad_(true);
    at::Tensor out;
    if (host) host->acquire(index);
    {
      torch::AutoGradMode grad_on(true);
      AutocastGuard autocast(x.device(), ctx->saved_data["autocast"].toBool());
      out = layer->forward(x, ForwardTables{saved[1], saved[2], bias_or_causal(saved[3]), {}});
    }
    torch::autograd::backward({out}, {grad_out[0]});
    if (host) host->release(index);
    return {x.grad(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// The identity at a decoder layer's input whose backward runs once that layer's backward is complete
// (every node of the layer lies between its input and its output, and the engine runs parameters'
// gradient accumulation first): it tells the parameter host that the layer's gradients are in .grad().
struct LayerGradientsDone : public torch::autograd::Function<LayerGradientsDone> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, ParameterHost* host,
                            int64_t index) {
    ctx->saved_data["host"] = pointer_value(host);
    ctx->saved_data["index"] = index;
    return x.view_as(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    pointer_from<ParameterHost>(ctx->saved_data["host"])->gradients_ready(ctx->saved_data["index"].toInt());
    return {grad_out[0], at::Tensor(), at::Tensor()};
  }
};

// Makes w16, the bf16 copy of an fp32 fused weight w, unless it exists.
void ensure_bf16_copy(const at::Tensor& w, at::Tensor& w16) {
  if (w.defined() && w.scalar_type() == at::kFloat && !w16.defined()) w16 = w.to(at::kBFloat16);
}

// The weight a fused inference matmul uses: under CPU/CUDA autocast a bf16 copy kept next to the fp32
// one (autocast would otherwise convert it again at every call), else `w` itself.
const at::Tensor& fused_weight(const at::Tensor& w, at::Tensor& w16, const at::Tensor& x) {
  if (w.scalar_type() == at::kFloat && autocast_enabled(x.device())) {
    ensure_bf16_copy(w, w16);
    return w16;
  }
  return w;
}

// A linear layer during fused inference: under autocast with an fp32 weight, through a bf16 copy made
// once. (torch::nn::Linear multiplies by weight.t(), a view, which autocast's cast cache skips: every
// call would convert the whole weight again.)
at::Tensor inference_linear(torch::nn::Linear& l, at::Tensor& w16, const at::Tensor& x) {
  return &fused_weight(l->weight, w16, x) == &w16 ? at::linear(x, w16, l->bias) : l(x);
}

void init_linear(torch::nn::Linear& l, double std) {
  torch::NoGradGuard no_grad;
  l->weight.normal_(0.0, std);
  if (l->bias.defined()) l->bias.zero_();
}

}  // namespace

at::Tensor positions_from_mask(const at::Tensor& attention_mask) {
  at::Tensor m = attention_mask.to(at::kLong);
  return (m.cumsum(-1) - 1).masked_fill_(m == 0, 1);  // (B, T)
}

// ---------------------------------------------------------------------------------------------------
RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, true) + eps_);
  return weight * h.to(x.scalar_type());
}

AttentionImpl::AttentionImpl(const TransformerConfig& c)
    : heads_(c.num_attention_heads), kv_heads_(c.num_key_value_heads), head_dim_(c.head_dim) {
  int64_t h = c.hidden_size;
  q_proj = register_module(
      "q_proj", torch::nn::Linear(torch::nn::LinearOptions(h, heads_ * head_dim_).bias(c.qkv_bias)));
  k_proj = register_module(
      "k_proj", torch::nn::Linear(torch::nn::LinearOptions(h, kv_heads_ * head_dim_).bias(c.qkv_bias)));
  v_proj = register_module(
      "v_proj", torch::nn::Linear(torch::nn::LinearOptions(h, kv_heads_ * head_dim_).bias(c.qkv_bias)));
  o_proj = register_module("o_proj",
                           torch::nn::Linear(torch::nn::LinearOptions(heads_ * head_dim_, h).bias(c.o_bias)));
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const ForwardTables& tables, KVCache* cache,
                                  int64_t layer, int64_t offset) {
  int64_t B = x.size(0), T = x.size(1);
  at::Tensor q, k, v;
  if (fused_w_.defined() && !at::GradMode::is_enabled()) {
    const at::Tensor& w = fused_weight(fused_w_, fused_w16_, x);
    at::Tensor qkv =
        autocast_enabled(x.device())
            ? at::linear(x, w, fused_b_)  // autocast picks the dtypes
            : at::linear(x, w.to(x.scalar_type()),
                         fused_b_.defined() ? fused_b_.to(x.scalar_type()) : fused_b_);  // (B, T, (H+2KV) D)
    int64_t nq = heads_ * head_dim_, nkv = kv_heads_ * head_dim_;
    q = qkv.narrow(-1, 0, nq).view({B, T, heads_, head_dim_});
    k = qkv.narrow(-1, nq, nkv).view({B, T, kv_heads_, head_dim_});
    v = qkv.narrow(-1, nq + nkv, nkv).view({B, T, kv_heads_, head_dim_});
  } else {
    q = q_proj(x).view({B, T, heads_, head_dim_});     // (B, T, H, D)
    k = k_proj(x).view({B, T, kv_heads_, head_dim_});  // (B, T, KV, D)
    v = v_proj(x).view({B, T, kv_heads_, head_dim_});  // (B, T, KV, D)
  }
  at::Tensor cos = tables.cos.to(q.scalar_type()), sin = tables.sin.to(q.scalar_type());  // (B, T, 1, D)
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  at::Tensor keys, values;  // (B, KV, S, D)
  if (cache != nullptr) {
    at::Tensor& ck = cache->k[layer];
    at::Tensor& cv = cache->v[layer];
    if (tables.write_index.defined()) {  // one new key per row, each at its own column
      // Rows (b, h) of the cache seen as (B * KV * C, D): index_copy_, not scatter_, whose CPU kernel
      // copies the whole cache to fp32 and back when it is bf16.
      const int64_t S = tables.attn_bias.size(-1), C = ck.size(2);
      at::Tensor rows = at::arange(B * kv_heads_, tables.write_index.options())
                            .mul_(C)
                            .add_(tables.write_index.repeat_interleave(kv_heads_));
      ck.view({-1, head_dim_})
          .index_copy_(0, rows, k.reshape({B * kv_heads_, head_dim_}).to(ck.scalar_type()));
      cv.view({-1, head_dim_})
          .index_copy_(0, rows, v.reshape({B * kv_heads_, head_dim_}).to(cv.scalar_type()));
      keys = ck.narrow(2, 0, S);
      values = cv.narrow(2, 0, S);
    } else {
      ck.narrow(2, offset, T).copy_(k.transpose(1, 2));
      cv.narrow(2, offset, T).copy_(v.transpose(1, 2));
      keys = ck.narrow(2, 0, offset + T);
      values = cv.narrow(2, 0, offset + T);
    }
  } else {
    keys = k.transpose(1, 2);
    values = v.transpose(1, 2);
  }
  at::Tensor out;  // (B, T, H*D)
  out = sdpa_attention(q, keys, values, tables.attn_bias);
  if (fused_w_.defined() && !at::GradMode::is_enabled()) return inference_linear(o_proj, o_w16_, out);
  return o_proj(out);
}

MlpImpl::MlpImpl(const TransformerConfig& c) {
  int64_t h = c.hidden_size, i = c.intermediate_size;
  gate_proj =
      register_module("gate_proj", torch::nn::Linear(torch::nn::LinearOptions(h, i).bias(c.mlp_bias)));
  up_proj = register_module("up_proj", torch::nn::Linear(torch::nn::LinearOptions(h, i).bias(c.mlp_bias)));
  down_proj =
      register_module("down_proj", torch::nn::Linear(torch::nn::LinearOptions(i, h).bias(c.mlp_bias)));
}

void AttentionImpl::set_fused(bool on) {
  torch::NoGradGuard no_grad;
  fused_w_ = on ? at::cat({q_proj->weight, k_proj->weight, v_proj->weight}, 0) : at::Tensor();
  fused_w16_ = at::Tensor();
  o_w16_ = at::Tensor();
  fused_b_ =
      on && q_proj->bias.defined() ? at::cat({q_proj->bias, k_proj->bias, v_proj->bias}, 0) : at::Tensor();
}

void AttentionImpl::make_fused_bf16() {
  ensure_bf16_copy(fused_w_, fused_w16_);
  if (fused_w_.defined()) ensure_bf16_copy(o_proj->weight, o_w16_);
}

void MlpImpl::make_fused_bf16() {
  ensure_bf16_copy(fused_w_, fused_w16_);
  if (fused_w_.defined()) ensure_bf16_copy(down_proj->weight, down_w16_);
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  if (fused_w_.defined() && !at::GradMode::is_enabled()) {
    int64_t I = fused_w_.size(0) / 2;
    const at::Tensor& w = fused_weight(fused_w_, fused_w16_, x);
    at::Tensor gu =
        autocast_enabled(x.device())
            ? at::linear(x, w, fused_b_)
            : at::linear(x, w.to(x.scalar_type()),
                         fused_b_.defined() ? fused_b_.to(x.scalar_type()) : fused_b_);  // (B, T, 2I)
    return inference_linear(down_proj, down_w16_, at::silu(gu.narrow(-1, 0, I)) * gu.narrow(-1, I, I));
  }
  return down_proj(at::silu(gate_proj(x)) * up_proj(x));
}

void MlpImpl::set_fused(bool on) {
  torch::NoGradGuard no_grad;
  fused_w_ = on ? at::cat({gate_proj->weight, up_proj->weight}, 0) : at::Tensor();
  fused_w16_ = at::Tensor();
  down_w16_ = at::Tensor();
  fused_b_ = on && gate_proj->bias.defined() ? at::cat({gate_proj->bias, up_proj->bias}, 0) : at::Tensor();
}

DecoderLayerImpl::DecoderLayerImpl(const TransformerConfig& c) {
  self_attn = register_module("self_attn", Attention(c));
  mlp = register_module("mlp", Mlp(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& x, const ForwardTables& tables, KVCache* cache,
                                     int64_t layer, int64_t offset) {
  at::Tensor h = x + self_attn->forward(input_layernorm(x), tables, cache, layer, offset);
  return h + mlp(post_attention_layernorm(h));
}

TransformerImpl::TransformerImpl(const TransformerConfig& c) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(DecoderLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

// ---------------------------------------------------------------------------------------------------
CausalLMImpl::CausalLMImpl(const TransformerConfig& config) : config_(config) {
  model = register_module("model", Transformer(config));
  if (!config.tie_word_embeddings) {
    lm_head = register_module(
        "lm_head",
        torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, config.vocab_size).bias(false)));
  }
  // Hugging Face's _init_weights: normal(0, initializer_range) for linears and embeddings, zero biases.
  double std = config.initializer_range;
  torch::NoGradGuard no_grad;
  model->embed_tokens->weight.normal_(0.0, std);
  for (auto& m : *model->layers) {
    auto layer = m->as<DecoderLayerImpl>();
    init_linear(layer->self_attn->q_proj, std);
    init_linear(layer->self_attn->k_proj, std);
    init_linear(layer->self_attn->v_proj, std);
    init_linear(layer->self_attn->o_proj, std);
    init_linear(layer->mlp->gate_proj, std);
    init_linear(layer->mlp->up_proj, std);
    init_linear(layer->mlp->down_proj, std);
  }
  if (lm_head) init_linear(lm_head, std);
}

void CausalLMImpl::set_fused_inference(bool on) {
  for (auto& m : *model->layers) {
    auto layer = m->as<DecoderLayerImpl>();
    layer->self_attn->set_fused(on);
    layer->mlp->set_fused(on);
  }
  fused_ = on;
}

const at::Tensor& CausalLMImpl::rope_inv_freq(const at::Device& dev) {
  if (!inv_freq_.defined() || inv_freq_.device() != dev) {
    const int64_t D = config_.head_dim;
    auto opts = at::TensorOptions().dtype(at::kLong).device(dev);
    inv_freq_ =
        1.0 / at::pow(config_.rope_theta, at::arange(0, D, 2, opts).to(at::kFloat) / static_cast<double>(D));
  }
  return inv_freq_;
}

void CausalLMImpl::prepare_concurrent_inference() {
  const at::Device dev = device();
  rope_inv_freq(dev);
  if (!autocast_enabled(dev)) return;
  for (auto& m : *model->layers) {
    auto layer = m->as<DecoderLayerImpl>();
    layer->self_attn->make_fused_bf16();
    layer->mlp->make_fused_bf16();
  }
}

at::Device CausalLMImpl::device() { return model->embed_tokens->weight.device(); }
at::ScalarType CausalLMImpl::dtype() { return model->embed_tokens->weight.scalar_type(); }

at::Tensor CausalLMImpl::head_weight() {
  acquire_root();
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

at::Tensor CausalLMImpl::logits(const at::Tensor& hidden) {
  return at::linear(hidden, head_weight().to(hidden.scalar_type())).to(at::kFloat);
}

at::Tensor CausalLMImpl::forward(const at::Tensor& ids, const at::Tensor& attention_mask,
                                 const at::Tensor& position_ids) {
  at::Tensor mask = attention_mask.defined() ? attention_mask : at::ones_like(ids);
  at::Tensor pos = position_ids.defined() ? position_ids : positions_from_mask(mask);
  return logits(hidden_states(ids, mask, pos));
}

ForwardTables CausalLMImpl::rotary_tables(const at::Tensor& position_ids, at::ScalarType dtype) {
  // Rotary tables (fp32, as Hugging Face computes them), shared by every layer.
  const at::Device dev = device();
  at::Tensor freqs = position_ids.to(dev).to(at::kFloat).unsqueeze(-1) * rope_inv_freq(dev);  // (B, T, D/2)
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(2);                                  // (B, T, 1, D)
  ForwardTables tables;
  tables.cos = emb.cos().to(dtype);
  tables.sin = emb.sin().to(dtype);
  return tables;
}

at::Tensor CausalLMImpl::decode_hidden_states(const at::Tensor& tokens, const at::Tensor& positions,
                                              KVCache& cache, const at::Tensor& write_index,
                                              const at::Tensor& key_bias) {
  const int64_t A = tokens.size(0), S = key_bias.size(1);
  if (tokens.dim() != 2 || tokens.size(1) != 1 || positions.sizes() != tokens.sizes() ||
      write_index.dim() != 1 || write_index.size(0) != A || key_bias.size(0) != A || S > cache.capacity()) {
    throw Error("decode step shapes disagree: tokens " + std::to_string(A) + " rows, key bias [" +
                std::to_string(key_bias.size(0)) + ", " + std::to_string(S) + "], cache capacity " +
                std::to_string(cache.capacity()));
  }
  if (host_) host_->begin_pass();
  acquire_root();
  at::Tensor x = model->embed_tokens(tokens);  // (A, 1, hidden)
  ForwardTables tables = rotary_tables(positions, x.scalar_type());
  tables.attn_bias = key_bias.view({A, 1, 1, 1, S});
  tables.write_index = write_index;
  int64_t i = 0;
  for (auto& m : *model->layers) {
    if (host_) host_->acquire(i);
    x = m->as<DecoderLayerImpl>()->forward(x, tables, &cache, i, 0);
    if (host_) host_->release(i);
    ++i;
  }
  return model->norm(x);
}

at::Tensor CausalLMImpl::hidden_states(const at::Tensor& ids, const at::Tensor& key_mask,
                                       const at::Tensor& position_ids, KVCache* cache, int64_t offset,
                                       std::vector<at::Tensor>* layer_outputs, const at::Tensor& key_bias) {
  if (ids.dim() != 2)
    throw Error("model input ids must be 2-D (batch, tokens), got " + std::to_string(ids.dim()) + "-D");
  int64_t B = ids.size(0), T = ids.size(1), S = offset + T;
  if (key_mask.size(0) != B || key_mask.size(1) != S || position_ids.size(0) != B ||
      position_ids.size(1) != T) {
    throw Error("model input shapes disagree: ids [" + std::to_string(B) + ", " + std::to_string(T) +
                "], mask [" + std::to_string(key_mask.size(0)) + ", " + std::to_string(key_mask.size(1)) +
                "] (expected [" + std::to_string(B) + ", " + std::to_string(S) + "]), positions [" +
                std::to_string(position_ids.size(0)) + ", " + std::to_string(position_ids.size(1)) + "]");
  }
  if (cache != nullptr && S > cache->capacity()) {
    throw Error("KV cache holds " + std::to_string(cache->capacity()) + " positions, " + std::to_string(S) +
                " needed: allocate a larger cache");
  }
  at::Device dev = device();
  if (host_) host_->begin_pass();
  acquire_root();
  // A whole sequence without a cache, its real tokens in one run per row: plain causal attention.
  CausalRows rows;
  if (cache == nullptr && offset == 0 && T > 1 && !key_bias.defined()) rows = causal_rows(key_mask.to(dev));
  const at::Tensor& shift = rows.shift;
  at::Tensor in_ids = ids.to(dev), positions = position_ids.to(dev);
  if (shift.defined()) {
    in_ids = rotate_rows(in_ids, shift);
    positions = rotate_rows(positions, shift);
  }
  at::Tensor x = model->embed_tokens(in_ids);  // (B, T, hidden)
  const size_t first_output = layer_outputs ? layer_outputs->size() : 0;
  if (layer_outputs) layer_outputs->push_back(x);

  ForwardTables tables = rotary_tables(positions, x.scalar_type());
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(dev);

  // Mask (left undefined for causal rows): query t (cache column offset + t) sees real keys
  // s <= offset + t, and always itself (so a padding query row stays finite; its output is never used).
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (T == 1 && key_bias.defined()) {
    tables.attn_bias = key_bias.narrow(1, 0, S).view({B, 1, 1, 1, S});
  } else if (!rows.causal) {
    at::Tensor km = key_mask.to(dev).to(at::kBool);  // (B, S)
    at::Tensor allow;                                // (B, 1, 1, T, S)
    if (T == 1) {
      allow = km.view({B, 1, 1, 1, S}).clone();
      allow.select(4, S - 1).fill_(true);
    } else {
      at::Tensor q_idx = at::arange(offset, S, f32.dtype(at::kLong)).view({T, 1});
      at::Tensor k_idx = at::arange(0, S, f32.dtype(at::kLong)).view({1, S});
      at::Tensor causal = k_idx <= q_idx;  // (T, S)
      at::Tensor diag = k_idx == q_idx;
      allow = (km.view({B, 1, 1, 1, S}) & causal.view({1, 1, 1, T, S})) | diag.view({1, 1, 1, T, S});
    }
    tables.attn_bias = at::zeros({B, 1, 1, T, S}, f32).masked_fill_(allow.logical_not(), neg_inf);
  }

  const bool with_grad = torch::GradMode::is_enabled();
  const bool frees = host_ && host_->frees_parameters();
  if (frees && with_grad && cache != nullptr)
    throw Error("a forward with gradients and a KV cache cannot run on sharded parameters (ZeRO-3)");
  // Sharded parameters are freed after each layer, so a pass with gradients must re-run layers in backward.
  const bool checkpoint = cache == nullptr && with_grad && ((checkpointing_ && is_training()) || frees);
  int64_t i = 0;
  for (auto& m : *model->layers) {
    auto layer = m->as<DecoderLayerImpl>();
    if (host_ && with_grad) x = LayerGradientsDone::apply(x, host_, i);
    if (checkpoint) {
      at::Tensor bias = tables.attn_bias.defined() ? tables.attn_bias : at::empty({0}, tables.cos.options());
      x = CheckpointedLayer::apply(x, tables.cos, tables.sin, bias, layer, host_, i);
    } else {
      if (host_) host_->acquire(i);
      x = layer->forward(x, tables, cache, i, offset);
      if (host_) host_->release(i);
    }
    if (layer_outputs) layer_outputs->push_back(x);
    ++i;
  }
  x = model->norm(x);
  if (!shift.defined()) return x;
  if (layer_outputs) {
    for (size_t o = first_output; o < layer_outputs->size(); ++o)
      (*layer_outputs)[o] = rotate_rows((*layer_outputs)[o], shift.neg());
  }
  return rotate_rows(x, shift.neg());
}

// ---------------------------------------------------------------------------------------------------
KVCache KVCache::allocate(const TransformerConfig& c, int64_t batch, int64_t capacity, at::ScalarType dtype,
                          const at::Device& device) {
  KVCache cache;
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    cache.k.push_back(at::zeros({batch, c.num_key_value_heads, capacity, c.head_dim}, opts));
    cache.v.push_back(at::zeros({batch, c.num_key_value_heads, capacity, c.head_dim}, opts));
  }
  return cache;
}

void KVCache::move_rows_to_front(const at::Tensor& rows, int64_t used) {
  const int64_t n = rows.size(0);
  for (size_t i = 0; i < k.size(); ++i) {
    for (at::Tensor* t : {&k[i], &v[i]}) {
      at::Tensor moved = t->narrow(2, 0, used).index_select(0, rows.to(t->device()));  // before any write
      t->narrow(0, 0, n).narrow(2, 0, used).copy_(moved);
    }
  }
}

KVCache KVCache::first_rows(int64_t n) const {
  KVCache view;
  for (size_t i = 0; i < k.size(); ++i) {
    view.k.push_back(k[i].narrow(0, 0, n));
    view.v.push_back(v[i].narrow(0, 0, n));
  }
  return view;
}

// ---------------------------------------------------------------------------------------------------
bool autocast_enabled(const at::Device& device) {
  return at::autocast::is_autocast_enabled(device.is_cuda() ? at::kCUDA : at::kCPU);
}

AutocastGuard::AutocastGuard(const at::Device& device, bool enabled)
    : enabled_(enabled), cuda_(device.is_cuda()) {
  if (!enabled_) return;
  at::DeviceType type = cuda_ ? at::kCUDA : at::kCPU;
  prev_enabled_ = at::autocast::is_autocast_enabled(type);
  prev_dtype_ = at::autocast::get_autocast_dtype(type);
  at::autocast::set_autocast_enabled(type, true);
  at::autocast::set_autocast_dtype(type, at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::DeviceType type = cuda_ ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_enabled(type, prev_enabled_);
  at::autocast::set_autocast_dtype(type, prev_dtype_);
}

}  // namespace tinyzero
