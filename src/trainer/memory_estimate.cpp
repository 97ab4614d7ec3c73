// Memory estimate per device for --dry-run: resident state (weights, gradients, AdamW moments,
// reference, critic) plus the larger of the rollout peak (KV cache) and the training peak
// (activations of one micro-batch).
#include "tinyzero/trainer/memory_estimate.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "tinyzero/core/runtime.h"
#include "tinyzero/model/decode_memory.h"

namespace tinyzero {

namespace {

double dtype_bytes(const std::string& dtype) { return dtype == "bfloat16" || dtype == "float16" ? 2.0 : 4.0; }

std::string millions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(n) / 1e6);
  return buf;
}

// Parameters of the critic: the actor's trunk without the LM head, plus a (hidden -> 1) value head.
int64_t critic_parameters(const TransformerConfig& m) {
  int64_t head = m.tie_word_embeddings ? 0 : m.vocab_size * m.hidden_size;
  return m.num_parameters() - head + m.hidden_size + 1;
}

// Bytes of activations kept for backward per token per layer (plain attention adds the score
// matrices, which grow with the sequence length `seq`).
double activation_bytes_per_token_layer(const TransformerConfig& m, double act_bytes, int64_t seq) {
  const double h = static_cast<double>(m.hidden_size);
  const double kv = static_cast<double>(m.num_key_value_heads * m.head_dim);
  const double inter = static_cast<double>(m.intermediate_size);
  // x, norm out, q, rotated q, attention out, o_proj out, residual, norm2 out, down out: ~9 h;
  // k, v and rotated k (stored) plus the repeated GQA copies: ~4 kv; gate, up, silu(gate), product: 4 I.
  double dense = 9 * h + 4 * kv + 4 * inter;
  // Attention scores and probabilities: heads * seq each per token, as SDPA's math kernel keeps them
  // (its fused kernels keep less; the estimate counts the larger).
  double scores = 2.0 * static_cast<double>(m.num_attention_heads) * static_cast<double>(seq);
  return (dense + scores) * act_bytes;
}

struct Shape {
  int64_t seq;              // prompt + response tokens
  int64_t micro_sequences;  // sequences per training micro-batch
  int64_t micro_tokens;     // tokens per training micro-batch
  int64_t rollout_rows;     // sequences generated per step on one device
  double param_bytes, act_bytes, ref_bytes;
};

Shape shape_of(const TrainConfig& c, int world_size) {
  Shape s;
  s.seq = c.data.max_prompt_length + c.data.max_response_length;
  s.micro_sequences = c.actor.ppo_micro_batch_size;
  s.micro_tokens = c.actor.use_dynamic_bsz ? c.actor.ppo_max_token_len : s.micro_sequences * s.seq;
  const int64_t n = c.algorithm.name == "sft" ? 1 : c.rollout.n;
  const int64_t per_rank = std::max<int64_t>(1, c.data.train_batch_size * n / std::max(1, world_size));
  s.rollout_rows = per_rank;
  s.param_bytes = dtype_bytes(c.model.dtype);
  const bool bf16 = resolve_autocast_bf16(c.model.autocast_bf16, c.trainer.device == "cpu" ? "cpu" : "cuda");
  s.act_bytes = bf16 ? 2.0 : s.param_bytes;
  s.ref_bytes = c.reference.dtype == "same" ? s.param_bytes : dtype_bytes(c.reference.dtype);
  return s;
}

// Weights + gradients + AdamW moments (+ an fp32 master copy when parameters are bf16).
void add_trainable(std::vector<MemoryItem>& items, const std::string& who, int64_t params, const Shape& s,
                   const TrainConfig& c, int world_size) {
  const double p = static_cast<double>(params);
  items.push_back({who + " weights", p * s.param_bytes,
                   millions(params) + " params x " + std::to_string(static_cast<int>(s.param_bytes)) + " B"});
  items.push_back({who + " gradients", p * s.param_bytes, "same size as the weights"});
  const double shards = c.distributed.zero_stage >= 1 ? world_size : 1;
  std::string sharding = shards > 1 ? ", sharded over " + std::to_string(world_size) + " ranks (ZeRO-1)" : "";
  items.push_back({who + " AdamW moments", 2.0 * p * 4.0 / shards, "2 x fp32 per param" + sharding});
  if (s.param_bytes < 4)
    items.push_back(
        {who + " fp32 master weights", p * 4.0 / shards, "bf16 parameters update an fp32 copy" + sharding});
}

}  // namespace

double MemoryEstimate::resident_bytes() const {
  double total = 0;
  for (const auto& item : resident) total += item.bytes;
  return total;
}

double MemoryEstimate::total_bytes() const {
  return resident_bytes() + std::max(rollout_peak.bytes, train_peak.bytes);
}

MemoryEstimate estimate_memory(const TrainConfig& c, const TransformerConfig& m, int world_size,
                               double capacity_bytes) {
  MemoryEstimate e;
  e.world_size = std::max(1, world_size);
  e.capacity_bytes = capacity_bytes;
  e.actor_parameters = m.num_parameters();
  const Shape s = shape_of(c, e.world_size);
  add_trainable(e.resident, "actor", e.actor_parameters, s, c, e.world_size);
  if (c.needs_reference()) {
    e.resident.push_back({"reference weights", static_cast<double>(e.actor_parameters) * s.ref_bytes,
                          c.reference.offload ? "on the device only while computing reference log-probs"
                                              : "frozen copy (reference.dtype " + c.reference.dtype + ")"});
    if (c.reference.offload) e.resident.back().bytes = 0;
  }
  if (c.needs_critic()) {
    e.critic_parameters = critic_parameters(m);
    add_trainable(e.resident, "critic", e.critic_parameters, s, c, e.world_size);
  }

  // Rollout: each active row's KV cache at full length and its decode-step tensors, as the engine
  // counts them (decode_memory.h); the rows are rollout.micro_batch_size, or what the memory left holds.
  const DecodeRowBytes row = decode_row_bytes(m, s.seq, static_cast<int64_t>(s.act_bytes));
  e.rollout_rows_total = s.rollout_rows;
  e.rollout_rows =
      c.rollout.micro_batch_size > 0 ? std::min(c.rollout.micro_batch_size, s.rollout_rows) : s.rollout_rows;
  std::string sizing;
  if (c.rollout.micro_batch_size == 0 && capacity_bytes > 0) {
    const double budget = (capacity_bytes - e.resident_bytes()) * c.rollout.memory_utilization;
    e.rollout_rows = std::min(e.rollout_rows, std::max<int64_t>(1, rows_within(budget, row)));
    sizing = ", memory-sized";
  } else if (c.rollout.micro_batch_size == 0) {
    sizing = ", at most; sized from free memory at run time";
  }
  const double rows = static_cast<double>(e.rollout_rows);
  e.rollout_peak = {"rollout peak", rows * row.total(),
                    std::to_string(e.rollout_rows) + " rows at once" + sizing + ": KV cache " +
                        std::to_string(s.seq) + " tokens each = " + format_gib(rows * row.kv) +
                        ", decode tensors " + format_gib(rows * row.step)};

  // Training: activations of one micro-batch; with checkpointing only layer inputs plus one layer.
  const double tokens = static_cast<double>(s.micro_tokens);
  const int64_t attn_seq = c.actor.use_dynamic_bsz ? std::min(s.seq, s.micro_tokens) : s.seq;
  const double per_layer = tokens * activation_bytes_per_token_layer(m, s.act_bytes, attn_seq);
  const double layers = static_cast<double>(m.num_hidden_layers);
  double acts = c.model.activation_checkpointing
                    ? layers * tokens * static_cast<double>(m.hidden_size) * s.act_bytes + per_layer
                    : layers * per_layer;
  const double head = 1024.0 * static_cast<double>(m.vocab_size) * 4.0 * 3.0;  // chunked log-prob head
  e.train_peak = {"training peak", acts + head,
                  "activations of " + std::to_string(s.micro_tokens) + " tokens" +
                      (c.model.activation_checkpointing ? " (checkpointed)" : "") + " = " + format_gib(acts) +
                      ", log-prob head chunk " + format_gib(head)};
  return e;
}

std::vector<std::string> memory_suggestions(const MemoryEstimate& e, const TrainConfig& c,
                                            const TransformerConfig& m, double excess) {
  struct Option {
    std::string override_text;
    double saving;
  };
  std::vector<Option> options;
  auto try_config = [&](const std::string& text, TrainConfig changed, int world) {
    double saving = e.total_bytes() - estimate_memory(changed, m, world, e.capacity_bytes).total_bytes();
    if (saving > 0) options.push_back({text, saving});
  };
  if (!c.model.activation_checkpointing) {
    TrainConfig t = c;
    t.model.activation_checkpointing = true;
    try_config("model.activation_checkpointing=true", t, e.world_size);
  }
  if (c.actor.ppo_micro_batch_size > 1) {
    TrainConfig t = c;
    t.actor.ppo_micro_batch_size = std::max<int64_t>(1, c.actor.ppo_micro_batch_size / 2);
    try_config("actor.ppo_micro_batch_size=" + std::to_string(t.actor.ppo_micro_batch_size), t, e.world_size);
  }
  if (c.rollout.micro_batch_size > 1) {
    TrainConfig t = c;
    t.rollout.micro_batch_size = std::max<int64_t>(1, c.rollout.micro_batch_size / 2);
    try_config("rollout.micro_batch_size=" + std::to_string(t.rollout.micro_batch_size), t, e.world_size);
  }
  if (c.model.autocast_bf16 == "false" && c.model.dtype == "float32") {
    TrainConfig t = c;
    t.model.autocast_bf16 = "true";
    try_config("model.autocast_bf16=true", t, e.world_size);
  }
  if (c.needs_reference() && !c.reference.offload) {
    TrainConfig t = c;
    t.reference.offload = true;
    try_config("reference.offload=true", t, e.world_size);
  }
  if (c.needs_reference() && c.reference.dtype != "bfloat16" && c.model.dtype == "float32") {
    TrainConfig t = c;
    t.reference.dtype = "bfloat16";
    try_config("reference.dtype=bfloat16", t, e.world_size);
  }
  if (c.distributed.zero_stage == 0 && e.world_size > 1) {
    TrainConfig t = c;
    t.distributed.zero_stage = 1;
    try_config("distributed.zero_stage=1", t, e.world_size);
  }
  {
    TrainConfig t = c;
    t.distributed.zero_stage = 1;
    try_config("distributed.zero_stage=1 on " + std::to_string(e.world_size * 2) + " ranks", t,
               e.world_size * 2);
  }
  std::sort(options.begin(), options.end(),
            [](const Option& a, const Option& b) { return a.saving > b.saving; });
  std::vector<std::string> out;
  for (const auto& o : options)
    out.push_back(o.override_text + " (saves " + format_gib(o.saving) +
                  (o.saving >= excess ? ", enough alone)" : ")"));
  return out;
}

std::string format_memory_estimate(const MemoryEstimate& e, const TrainConfig& c, const TransformerConfig& m,
                                   double capacity, const std::string& device_name) {
  std::ostringstream out;
  out << "parameters: actor " << millions(e.actor_parameters);
  if (e.critic_parameters) out << ", critic " << millions(e.critic_parameters);
  out << "; ranks " << e.world_size << "\n";
  out << "memory per device (estimate):\n";
  char line[256];
  auto row = [&](const MemoryItem& item) {
    std::snprintf(line, sizeof line, "  %-28s %12s  %s\n", item.name.c_str(), format_gib(item.bytes).c_str(),
                  item.detail.c_str());
    out << line;
  };
  for (const auto& item : e.resident) row(item);
  row(e.rollout_peak);
  std::snprintf(
      line, sizeof line, "  %-28s %12s  rows decoding at once, of the %lld a device generates per step\n",
      "rollout batch", std::to_string(e.rollout_rows).c_str(), static_cast<long long>(e.rollout_rows_total));
  out << line;
  row(e.train_peak);
  std::snprintf(line, sizeof line, "  %-28s %12s  resident + the larger peak\n", "total",
                format_gib(e.total_bytes()).c_str());
  out << line;
  if (capacity > 0) {
    std::snprintf(line, sizeof line, "  %-28s %12s  %s\n", "capacity", format_gib(capacity).c_str(),
                  device_name.c_str());
    out << line;
    const bool fits = e.total_bytes() <= capacity;
    out << (fits ? "fits" : "does NOT fit") << " (" << static_cast<int>(100 * e.total_bytes() / capacity)
        << "% of capacity)\n";
    if (!fits) {
      out << "to make it fit, change (largest saving first):\n";
      for (const auto& s : memory_suggestions(e, c, m, e.total_bytes() - capacity)) out << "  " << s << "\n";
    }
  } else {
    out << "capacity of " << device_name << " unknown: pass --device-memory-gb to compare\n";
  }
  return out.str();
}

}  // namespace tinyzero
