// Qwen2 / Llama / Mistral causal language model in LibTorch (XxxImpl + TORCH_MODULE idiom).
//
// Submodules are registered with Hugging Face's names, so named_parameters() yields exactly the
// checkpoint's tensor names ("model.layers.3.self_attn.q_proj.weight", ...). The model holds the
// weights only; a KV cache for generation is passed in (see kv_cache.h).
//
// Conventions: ids (B, T) int64; attention_mask (B, T) with 1 = real token, 0 = padding (left padding);
// positions are derived from the mask as cumsum(mask) - 1 with pads at 1, as Hugging Face does.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "tinyzero/model/model_config.h"

namespace tinyzero {

struct KVCache;

// Per-forward tables shared by every layer: rotary cos/sin and the attention mask.
struct ForwardTables {
  at::Tensor cos, sin;     // (B, T, 1, D) in the activations' dtype
  at::Tensor attn_bias;    // (B, 1, 1, T, S) float: 0 where a query may attend a key, -inf elsewhere;
                           // undefined: plain causal attention (S == T)
  at::Tensor write_index;  // decode steps with per-row cache columns: (B) int64, where row b's new key
                           // goes (T = 1); undefined: the T new keys go to columns [offset, offset + T)
};

// positions = cumsum(mask) - 1, with padding positions set to 1 (Hugging Face's convention).
at::Tensor positions_from_mask(const at::Tensor& attention_mask);  // (B, T) int64

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps);
  at::Tensor forward(const at::Tensor& x);  // computes in fp32, returns weight * x in x's dtype
  at::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

class AttentionImpl : public torch::nn::Module {
 public:
  explicit AttentionImpl(const TransformerConfig& c);
  // x (B, T, hidden). With a cache, keys/values are written at columns [offset, offset + T) of
  // `layer` and attention covers columns [0, offset + T).
  at::Tensor forward(const at::Tensor& x, const ForwardTables& tables, KVCache* cache, int64_t layer,
                     int64_t offset);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  // Inference only: one concatenated q/k/v weight (a copy), used when grad mode is off.
  void set_fused(bool on);
  void make_fused_bf16();  // the bf16 copies of the fused and o_proj weights now (when fused)

 private:
  int64_t heads_, kv_heads_, head_dim_;
  at::Tensor fused_w_, fused_b_;  // ((H + 2 KV) D, hidden), ((H + 2 KV) D)
  at::Tensor fused_w16_;          // bf16 copy of fused_w_ for autocast (made on first use)
  at::Tensor o_w16_;              // bf16 copy of o_proj's weight while fused, for autocast (first use)
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(const TransformerConfig& c);
  at::Tensor forward(const at::Tensor& x);  // down(silu(gate(x)) * up(x))
  torch::nn::Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  void set_fused(bool on);  // inference only: one concatenated gate/up weight (a copy)
  void make_fused_bf16();   // the bf16 copies of the fused and down_proj weights now (when fused)

 private:
  at::Tensor fused_w_, fused_b_;  // (2 I, hidden), (2 I)
  at::Tensor fused_w16_;          // bf16 copy of fused_w_ for autocast (made on first use)
  at::Tensor down_w16_;           // bf16 copy of down_proj's weight while fused, for autocast (first use)
};
TORCH_MODULE(Mlp);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit DecoderLayerImpl(const TransformerConfig& c);
  at::Tensor forward(const at::Tensor& x, const ForwardTables& tables, KVCache* cache = nullptr,
                     int64_t layer = 0, int64_t offset = 0);
  Attention self_attn{nullptr};
  Mlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// "model": embeddings, decoder layers, final norm.
class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const TransformerConfig& c);
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(Transformer);

// Keeper of a model's parameters when they are sharded across ranks (ZeRO-2/3: trainer/parameter_shards.h).
// Units: decoder layer i is unit i; everything else (embeddings, final norm, LM head, a critic's value
// head) is the root unit, numbered num_hidden_layers. The model calls it around every use of a unit.
class ParameterHost {
 public:
  virtual ~ParameterHost() = default;
  // The unit's parameters hold their values from acquire() until release() (no-ops while they stay whole).
  virtual void acquire(int64_t unit) = 0;
  virtual void release(int64_t unit) = 0;
  // Backward has put every gradient of decoder layer `layer` for this pass into its parameters' .grad().
  virtual void gradients_ready(int64_t layer) = 0;
  // Parameters are freed between uses: a forward with gradients then re-runs each layer in backward.
  virtual bool frees_parameters() const = 0;
  // A pass over the decoder layers (hidden_states, decode_hidden_states) starts.
  virtual void begin_pass() {}
  // True while acquire(), release() and begin_pass() do nothing (every unit whole and staying whole, no
  // collective per pass): a decode step may then be captured as a CUDA graph and replayed.
  virtual bool passes_are_static() const { return false; }
};

class CausalLMImpl : public torch::nn::Module {
 public:
  // Parameters are allocated on the CPU in fp32 with Hugging Face's init (normal(0, initializer_range),
  // zero biases, unit norms); use .to(device, dtype) and load_weights() as needed.
  explicit CausalLMImpl(const TransformerConfig& config);

  // Logits (B, T, V) in fp32. attention_mask defaults to all ones, position_ids to
  // positions_from_mask(attention_mask).
  at::Tensor forward(const at::Tensor& ids, const at::Tensor& attention_mask = {},
                     const at::Tensor& position_ids = {});

  // Final hidden states (B, T, hidden) after the final norm. With a cache, the T new tokens occupy
  // cache columns [offset, offset + T) and `key_mask` (B, offset + T) says which cache columns are
  // real tokens; without one, key_mask is the (B, T) attention mask. `layer_outputs`, when given,
  // receives the embeddings and the output of every layer (before the final norm). `key_bias`, for
  // one-token decode steps, replaces key_mask by a ready additive mask (B, >= offset + 1) float
  // (0 = real, -inf = padding) kept by the caller across steps. Without a cache, rows whose real tokens
  // form one run are computed rotated to start at column 0, with plain causal attention (no mask: the
  // fused kernels with grouped heads); the outputs come back in the input's columns.
  at::Tensor hidden_states(const at::Tensor& ids, const at::Tensor& key_mask, const at::Tensor& position_ids,
                           KVCache* cache = nullptr, int64_t offset = 0,
                           std::vector<at::Tensor>* layer_outputs = nullptr, const at::Tensor& key_bias = {});

  // One decode step of rows that each keep their own place in the cache (continuous batching): token
  // (A, 1) at rotary position `positions` (A, 1), its key and value written to cache column
  // write_index[a]; key_bias (A, S) float, 0 for the cache columns [0, S) a row attends (its own new
  // column included), -inf elsewhere. Returns the final hidden states (A, 1, hidden).
  at::Tensor decode_hidden_states(const at::Tensor& tokens, const at::Tensor& positions, KVCache& cache,
                                  const at::Tensor& write_index, const at::Tensor& key_bias);

  // Logits (..., V) in fp32 for hidden states (..., hidden).
  at::Tensor logits(const at::Tensor& hidden);
  // The output projection (V, hidden): lm_head.weight, or the embedding when tied.
  at::Tensor head_weight();

  // Re-run each layer's forward in backward instead of keeping its activations (training only).
  void set_activation_checkpointing(bool on) { checkpointing_ = on; }
  bool activation_checkpointing() const { return checkpointing_; }

  // Sharded parameters (nullptr: the model holds its own). The host must outlive its use here.
  void set_parameter_host(ParameterHost* host) { host_ = host; }
  ParameterHost* parameter_host() const { return host_; }

  // Inference: concatenates q/k/v and gate/up weights into copies used while grad mode is off (fewer,
  // larger matmuls; costs one more copy of those weights). The copies go stale when parameters change:
  // turn it off before training (the generator turns it on and off around each call).
  void set_fused_inference(bool on);
  bool fused_inference() const { return fused_; }

  // Makes now what forwards would otherwise make on first use (the rotary frequencies on the
  // parameters' device; under an active autocast, the bf16 copies of the fused weights), so that
  // several threads can then run no-grad forwards of this model at once (generate's row workers).
  void prepare_concurrent_inference();

  const TransformerConfig& config() const { return config_; }
  at::Device device();
  at::ScalarType dtype();

  Transformer model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tied

 private:
  TransformerConfig config_;
  bool checkpointing_ = false, fused_ = false;
  ParameterHost* host_ = nullptr;
  void acquire_root() {
    if (host_) host_->acquire(config_.num_hidden_layers);
  }
  at::Tensor inv_freq_;  // (D/2) fp32 rotary frequencies, on the parameters' device
  const at::Tensor& rope_inv_freq(const at::Device& dev);  // inv_freq_, made or moved on first use
  ForwardTables rotary_tables(const at::Tensor& position_ids, at::ScalarType dtype);  // cos/sin (B, T, 1, D)
};
TORCH_MODULE(CausalLM);

// Whether autocast is on for the device type of `device` (LibTorch's API differs before/after 2.4).
bool autocast_enabled(const at::Device& device);

// Enables bf16 autocast for the device type of `device` while alive (no-op when !enabled).
class AutocastGuard {
 public:
  AutocastGuard(const at::Device& device, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_ = false, cuda_ = false, prev_enabled_ = false;
  at::ScalarType prev_dtype_{};
};

}  // namespace tinyzero
