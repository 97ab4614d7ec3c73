// Memory estimate per device for --dry-run and the trainer's start-up check: resident state (weights
// or their shards, gradients, AdamW state, reference, critic), the peak of each phase of a step (rollout,
// log-prob passes, actor and critic update, optimizer step, checkpoint) and, on CUDA, the context, NCCL
// and allocator overhead. Each term follows what the code allocates; the comments name where.
#include "tinyzero/trainer/memory_estimate.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "tinyzero/core/errors.h"
#include "tinyzero/core/log.h"
#include "tinyzero/core/runtime.h"
#include "tinyzero/model/decode_memory.h"

namespace tinyzero {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// CUDA context with LibTorch's kernels loaded lazily, plus cuBLAS/cuBLASLt workspaces: PyTorch on
// H100/H200 shows 0.5-0.8 GiB of device memory in use before the first tensor; counted at 1 GiB.
constexpr double kCudaContextBytes = 1.0 * kGiB;
// NCCL communicator buffers per rank (several per process group: NCCL_BUFFSIZE 4 MiB per channel and
// peer, up to 32 channels on NVLink, plus NVLS buffers on H100/H200): typically 0.3-1 GiB on one node;
// counted at 1 GiB.
constexpr double kNcclBytes = 1.0 * kGiB;
// LibTorch's caching allocator keeps freed blocks split by size; memory reserved but not allocated at
// the peak is commonly 3-10% in training (PyTorch's memory_stats: reserved vs allocated); counted at 8%.
constexpr double kFragmentation = 0.08;
// LogProbOptions::chunk_tokens (include/tinyzero/model/logprobs.h): rows of the head's logits at once.
constexpr double kHeadChunkTokens = 1024.0;

double dtype_bytes(const std::string& dtype) { return dtype == "bfloat16" || dtype == "float16" ? 2.0 : 4.0; }

std::string millions(double n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fM", n / 1e6);
  return buf;
}

std::string bytes_per(double b) { return std::to_string(static_cast<int>(b)) + " B"; }

// Parameters of a model in the units ZeRO-3 gathers: decoder layers, and the root unit (embeddings,
// final norm, LM head or the critic's score head).
struct Parts {
  double total = 0, layer = 0, root = 0;
};

Parts actor_parts(const TransformerConfig& m) {
  Parts p;
  const double vh = static_cast<double>(m.vocab_size * m.hidden_size);
  p.total = static_cast<double>(m.num_parameters());
  p.root = vh * (m.tie_word_embeddings ? 1 : 2) + static_cast<double>(m.hidden_size);
  p.layer = (p.total - p.root) / static_cast<double>(std::max<int64_t>(1, m.num_hidden_layers));
  return p;
}

// The critic: the actor's trunk without the LM head, plus a (hidden -> 1) value head.
int64_t critic_parameters(const TransformerConfig& m) {
  int64_t head = m.tie_word_embeddings ? 0 : m.vocab_size * m.hidden_size;
  return m.num_parameters() - head + m.hidden_size + 1;
}

Parts critic_parts(const TransformerConfig& m) {
  Parts p = actor_parts(m);
  p.total = static_cast<double>(critic_parameters(m));
  p.root = static_cast<double>(m.vocab_size * m.hidden_size + 2 * m.hidden_size + 1);
  return p;
}

// Bytes of activations kept for backward per token per layer, attending over `seq` columns.
// Whole sequences attend causally with grouped heads (sdpa_attention and causal_rows in
// src/model/qwen2.cpp), so no code path copies K/V per query head. SDPA's flash kernels (CUDA in bf16,
// the CPU in any dtype) keep the output and one fp32 logsumexp per head; CUDA in fp32 takes
// grouped_attention, which keeps the fp32 probabilities (heads * seq per token) and a copy of q.
double activation_bytes_per_token_layer(const TransformerConfig& m, double act_bytes, int64_t seq,
                                        bool flash) {
  const double h = static_cast<double>(m.hidden_size);
  const double q = static_cast<double>(m.num_attention_heads * m.head_dim);
  const double kv = static_cast<double>(m.num_key_value_heads * m.head_dim);
  const double inter = static_cast<double>(m.intermediate_size);
  const double heads = static_cast<double>(m.num_attention_heads);
  // x, norm out, rotated q, attention out, o_proj out, residual, norm2 out, down out, q: ~9 h;
  // k, v, rotated k: 3 kv; gate, up, silu(gate), product: 4 I.
  const double dense = (9 * h + 3 * kv + 4 * inter) * act_bytes;
  if (flash) return dense + heads * 4;
  return dense + q * act_bytes + heads * static_cast<double>(seq) * 4;
}

struct Shape {
  int64_t seq;           // prompt + response tokens
  int64_t rollout_rows;  // sequences generated per step on one device
  double param_bytes, act_bytes, ref_bytes;
  int W, stage;
  bool checkpointing;  // model.activation_checkpointing, forced on by ZeRO-3
  double shard;        // divisor of parameters (ZeRO-3)
  double grad_shard;   // divisor of gradients (ZeRO-2/3)
  double state_shard;  // divisor of AdamW state (ZeRO-1/2/3)
  bool cuda;
  bool flash;  // whole-sequence attention on SDPA's flash kernel (activation_bytes_per_token_layer)
};

Shape shape_of(const TrainConfig& c, int world_size) {
  Shape s;
  s.W = std::max(1, world_size);
  s.stage = static_cast<int>(c.distributed.zero_stage);
  if (s.W == 1) s.stage = std::min(s.stage, 0);  // one rank: nothing to shard
  s.seq = c.data.max_prompt_length + c.data.max_response_length;
  const int64_t n = c.algorithm.name == "sft" ? 1 : c.rollout.n;
  s.rollout_rows = std::max<int64_t>(1, c.data.train_batch_size * n / s.W);
  s.param_bytes = dtype_bytes(c.model.dtype);
  s.cuda = c.trainer.device != "cpu";
  const bool bf16 = resolve_autocast_bf16(c.model.autocast_bf16, s.cuda ? "cuda" : "cpu");
  s.act_bytes = bf16 ? 2.0 : s.param_bytes;
  s.flash = !s.cuda || s.act_bytes < 4;  // flash attention takes bf16 and fp16 on CUDA
  s.ref_bytes = c.reference.dtype == "same" ? s.param_bytes : dtype_bytes(c.reference.dtype);
  s.checkpointing = c.model.activation_checkpointing || s.stage >= 3;
  s.shard = s.stage >= 3 ? s.W : 1;
  s.grad_shard = s.stage >= 2 ? s.W : 1;
  s.state_shard = s.stage >= 1 ? s.W : 1;
  return s;
}

std::string sharded(const Shape& s, double divisor, const std::string& what) {
  return divisor > 1 ? ", 1/" + std::to_string(s.W) + " per rank (" + what + ")" : "";
}

// Weights (or their shard) + gradients (or their shard) + AdamW moments (+ fp32 master weights when
// parameters are not fp32), as DataParallelOptimizer and AdamW (src/trainer/) hold them for the run.
void add_trainable(std::vector<MemoryItem>& items, const std::string& who, double p, const Shape& s,
                   bool optim_offload) {
  const std::string zero = "ZeRO-" + std::to_string(s.stage);
  // optim.offload (stages 2/3 on CUDA): the AdamW state lives in host memory, not on the device.
  const bool host = optim_offload && s.stage >= 2 && s.cuda;
  const double on_device = host ? 0.0 : 1.0;
  const std::string where = host ? "; in host memory (" + who + ".optim.offload)" : "";
  items.push_back({who + " weights", p * s.param_bytes / s.shard,
                   millions(p) + " params x " + bytes_per(s.param_bytes) + sharded(s, s.shard, zero)});
  items.push_back({who + " gradients", p * s.param_bytes / s.grad_shard,
                   "one per weight, " + bytes_per(s.param_bytes) + sharded(s, s.grad_shard, zero)});
  items.push_back({who + " AdamW moments", on_device * 2.0 * p * 4.0 / s.state_shard,
                   "exp_avg + exp_avg_sq, 2 x fp32 per param" + sharded(s, s.state_shard, zero) + where});
  if (s.param_bytes < 4)
    items.push_back({who + " fp32 master weights", on_device * p * 4.0 / s.state_shard,
                     "bf16 parameters update an fp32 copy" + sharded(s, s.state_shard, zero) + where});
}

// The transient gradients and gathered parameters of one model's backward under ZeRO-2/3.
void add_sharded_backward(std::vector<MemoryItem>& items, const std::string& who, const Parts& p,
                          const Shape& s) {
  if (s.stage >= 3)
    items.push_back({who + " gathered weights", (2 * p.layer + p.root) * s.param_bytes,
                     "2 decoder layers (current + prefetched) of " + millions(p.layer) +
                         " params and the root unit of " + millions(p.root) + ", gathered whole (ZeRO-3)"});
  if (s.stage >= 2) {
    items.push_back({who + " layer grads in flight", 2 * p.layer * s.param_bytes,
                     "full gradients of 2 decoder layers: one produced, one reduce-scattered"});
    items.push_back({who + " root unit gradient", p.root * s.param_bytes,
                     "embeddings, final norm, head: full gradient held for the update"});
  }
}

}  // namespace

double MemoryPhase::bytes() const {
  double total = 0;
  for (const auto& item : items) total += item.bytes;
  return total;
}

double MemoryEstimate::resident_bytes() const {
  double total = 0;
  for (const auto& item : resident) total += item.bytes;
  return total;
}

const MemoryPhase& MemoryEstimate::largest_phase() const {
  static const MemoryPhase none{"none", {}};
  const MemoryPhase* best = &none;
  for (const auto& p : phases)
    if (p.bytes() > best->bytes()) best = &p;
  return *best;
}

const MemoryPhase* MemoryEstimate::phase(const std::string& name) const {
  for (const auto& p : phases)
    if (p.name == name) return &p;
  return nullptr;
}

double MemoryEstimate::overhead_bytes() const {
  double total = 0;
  for (const auto& item : overhead) total += item.bytes;
  return total;
}

double MemoryEstimate::total_bytes() const {
  return resident_bytes() + largest_phase().bytes() + overhead_bytes();
}

MemoryEstimate estimate_memory(const TrainConfig& c, const TransformerConfig& m, int world_size,
                               double capacity_bytes) {
  if (c.distributed.rollout_gather == "auto" && c.distributed.zero_stage >= 3 && world_size > 1 &&
      capacity_bytes > 0) {  // the whole gather when it fits, else the smaller of the two
    TrainConfig whole = c, by_layer = c;
    whole.distributed.rollout_gather = "whole";
    by_layer.distributed.rollout_gather = "layer";
    MemoryEstimate w = estimate_memory(whole, m, world_size, capacity_bytes);
    if (w.total_bytes() <= capacity_bytes) return w;
    MemoryEstimate l = estimate_memory(by_layer, m, world_size, capacity_bytes);
    return l.total_bytes() < w.total_bytes() ? l : w;
  }
  MemoryEstimate e;
  const Shape s = shape_of(c, world_size);
  e.world_size = s.W;
  e.zero_stage = s.stage;
  e.cuda = s.cuda;
  e.capacity_bytes = capacity_bytes;
  e.actor_parameters = m.num_parameters();
  const Parts actor = actor_parts(m);
  const double pb = s.param_bytes;
  const double H = static_cast<double>(m.hidden_size), V = static_cast<double>(m.vocab_size);
  const double VH = V * H;
  const bool multi = s.W > 1;

  // Resident: the actor, the reference (frozen; sharded like the actor under ZeRO-3), the critic.
  add_trainable(e.resident, "actor", actor.total, s, c.actor.optim.offload);
  const bool ref_moves = c.needs_reference() && c.reference.offload && s.cuda;
  if (c.needs_reference()) {
    const double ref = actor.total * s.ref_bytes / s.shard;
    e.resident.push_back({"reference weights", ref_moves ? 0.0 : ref,
                          ref_moves ? "reference.offload: on the device only for its log-prob pass"
                                    : "frozen copy, " + bytes_per(s.ref_bytes) + " (reference.dtype " +
                                          c.reference.dtype + ")" + sharded(s, s.shard, "ZeRO-3")});
  }
  // critic.offload (CUDA): the critic's weights, gradients and AdamW state (or their shards) live in host
  // memory; its weights come in for the values pass, everything for its update (train_context.cpp).
  Parts critic;
  std::vector<MemoryItem> critic_moved;  // what critic.offload brings in for the update
  const bool critic_moves = c.needs_critic() && c.critic.offload && s.cuda;
  if (c.needs_critic()) {
    e.critic_parameters = critic_parameters(m);
    critic = critic_parts(m);
    add_trainable(critic_moves ? critic_moved : e.resident, "critic", critic.total, s,
                  c.critic.optim.offload);
    if (critic_moves) {
      e.resident.push_back(
          {"critic", 0.0, "critic.offload: on the device only for its values pass and update"});
      for (auto& item : critic_moved) item.detail += "; moved in for its update (critic.offload)";
    }
  }
  // Gloo on the CPU: the process group keeps the flat buffers of finished collectives for reuse, up to
  // 256 MiB (src/dist/process_group.cpp, kMaxPooledBytes): the start's weight broadcast, and with stages
  // 0/1 the gradient all-reduce's buckets too. CUDA's caching allocator does this itself.
  if (multi && !s.cuda) {
    // The critic's collectives reuse the actor's buffers (the same bucket sizes): the larger model counts.
    const double weights = std::max(actor.total, critic.total) * pb;
    e.resident.push_back(
        {"collective buffer pool", std::min(256.0 * (1 << 20), weights * (s.stage < 2 ? 2 : 1)),
         std::string("flat buffers of the weight broadcast") +
             (s.stage < 2 ? " and gradient all-reduce" : "") + " kept for reuse (Gloo, at most 256 MiB)"});
  }

  // Rollout (src/trainer/rollout_stage.cpp, src/model/generator.cpp). Under ZeRO-3 the actor is gathered
  // whole for the phase. generate() concatenates q/k/v and gate/up per layer (qwen2.cpp set_fused; under
  // autocast with fp32 weights, a bf16 copy of each and of o_proj/down_proj too), then sizes its rows from
  // the memory free at the call (after the gather) less those copies. distributed.rollout_gather=layer: every
  // forward pass gathers a layer at a time, nothing to fuse.
  MemoryPhase rollout{"rollout", {}};
  e.rollout_by_layer = s.stage >= 3 && multi && c.distributed.rollout_gather == "layer";
  const double gathered = s.stage < 3          ? 0.0
                          : e.rollout_by_layer ? (2 * actor.layer + actor.root) * pb
                                               : actor.total * pb;
  if (gathered > 0)
    rollout.items.push_back(
        {"actor weights gathered", gathered,
         e.rollout_by_layer ? "2 decoder layers and the root unit, gathered by every forward pass "
                              "(distributed.rollout_gather=layer)"
                            : "all " + millions(actor.total) + " params whole for the rollout (ZeRO-3)"});
  const bool copies16 = pb == 4 && s.act_bytes == 2;
  const double fused_bytes =
      e.rollout_by_layer ? 0.0 : fused_weight_bytes(m, static_cast<int64_t>(pb), copies16);
  if (fused_bytes > 0)
    rollout.items.push_back(
        {"fused inference weights", fused_bytes,
         "q/k/v and gate/up concatenated per layer for generate, " +
             millions(static_cast<int64_t>(fused_weight_bytes(m, 1, false))) + " params x " + bytes_per(pb) +
             (copies16 ? " + bf16 copies of them and of o/down under autocast (2 B)" : "")});
  const DecodeRowBytes row = decode_row_bytes(m, s.seq, static_cast<int64_t>(s.act_bytes));
  e.rollout_rows_total = s.rollout_rows;
  e.rollout_rows =
      c.rollout.micro_batch_size > 0 ? std::min(c.rollout.micro_batch_size, s.rollout_rows) : s.rollout_rows;
  std::string sizing;
  if (c.rollout.micro_batch_size == 0 && capacity_bytes > 0) {
    const double fixed = s.cuda ? kCudaContextBytes + (multi ? kNcclBytes : 0.0) : 0.0;
    const double budget =
        (capacity_bytes - fixed - e.resident_bytes() - gathered) * c.rollout.memory_utilization - fused_bytes;
    e.rollout_rows = std::min(e.rollout_rows, std::max<int64_t>(1, rows_within(budget, row)));
    sizing = ", memory-sized";
  } else if (c.rollout.micro_batch_size == 0) {
    sizing = ", at most; sized from free memory at run time";
  }
  const double rows = static_cast<double>(e.rollout_rows);
  rollout.items.push_back({"KV cache", rows * row.kv,
                           std::to_string(e.rollout_rows) + " rows at once" + sizing + ", " +
                               std::to_string(s.seq) + " tokens each, " + bytes_per(s.act_bytes)});
  rollout.items.push_back({"decode tensors", rows * row.step,
                           "per row: logits and sampling over the vocabulary, one layer's activations"});
  e.phases.push_back(rollout);

  // Log-prob passes (src/trainer/log_prob_passes.cpp): old log-probs (actor), reference log-probs and
  // critic values, rollout.log_prob_micro_batch_size rows at a time without gradients.
  {
    MemoryPhase pass{"log-prob passes", {}};
    const int64_t lp_rows = c.rollout.log_prob_micro_batch_size > 0 ? c.rollout.log_prob_micro_batch_size
                                                                    : c.actor.ppo_micro_batch_size;
    const double tokens = static_cast<double>(lp_rows * s.seq);
    pass.items.push_back(
        {"forward activations",
         tokens * (activation_bytes_per_token_layer(m, s.act_bytes, s.seq, s.flash) + 2 * H * s.act_bytes),
         std::to_string(lp_rows) + " rows x " + std::to_string(s.seq) +
             " tokens: one layer's working set and the residual stream"});
    pass.items.push_back({"log-prob head chunk", 3 * kHeadChunkTokens * V * 4,
                          "fp32 logits, softmax and p*z of 1024 tokens (src/model/logprobs.cpp)"});
    if (ref_moves && s.stage < 3)
      pass.items.push_back(
          {"reference weights", actor.total * s.ref_bytes, "moved in for its pass (reference.offload)"});
    if (ref_moves && s.stage >= 3)
      pass.items.push_back({"reference shard", actor.total * s.ref_bytes / s.shard,
                            "moved in for its pass (reference.offload)"});
    if (critic_moves)
      pass.items.push_back({"critic weights", critic.total * pb / s.shard,
                            "moved in for its values pass (critic.offload)" + sharded(s, s.shard, "ZeRO-3")});
    if (s.stage >= 3)
      pass.items.push_back({"gathered weights", (2 * actor.layer + actor.root) * std::max(pb, s.ref_bytes),
                            "2 decoder layers and the root unit of the model in its pass (ZeRO-3)"});
    e.phases.push_back(pass);
  }

  // Update of one model: activations of a micro-batch, the head backward (actor), and what the
  // gradient reduction holds while backward runs.
  auto update_phase = [&](const std::string& who, const Parts& p, int64_t micro_sequences, bool lm_head) {
    MemoryPhase ph{who + " update", {}};
    const int64_t micro_tokens =
        (lm_head && c.actor.use_dynamic_bsz) ? c.actor.ppo_max_token_len : micro_sequences * s.seq;
    const double tokens = static_cast<double>(micro_tokens);
    const int64_t attn_seq = (lm_head && c.actor.use_dynamic_bsz) ? std::min(s.seq, micro_tokens) : s.seq;
    const double per_layer = tokens * activation_bytes_per_token_layer(m, s.act_bytes, attn_seq, s.flash);
    const double layers = static_cast<double>(m.num_hidden_layers);
    const double acts =
        s.checkpointing ? layers * tokens * H * s.act_bytes + 2 * per_layer : layers * per_layer;
    ph.items.push_back(
        {"activations", acts,
         std::to_string(micro_tokens) + " tokens" +
             (s.checkpointing
                  ? ", checkpointed: every layer's input + one layer re-run in backward (x2 margin)"
                  : ", every layer's")});
    if (lm_head) {
      // FusedHeadLogProbs::backward: fp32 copy of the head weight, fp32 weight gradient, its cast to the
      // parameter dtype, ~5 fp32 chunk tensors (z, p, gz, temporaries) and the fp32 hidden gradient.
      const double head = 4 * VH + 4 * VH + pb * VH + 5 * kHeadChunkTokens * V * 4 + tokens * H * 4;
      ph.items.push_back({"head backward", head,
                          "fp32 weight copy + fp32 weight gradient (" + format_gib(4 * VH) +
                              " each), gradient cast, 5 fp32 logits chunks of 1024 tokens"});
    }
    add_sharded_backward(ph.items, who, p, s);
    if (!lm_head) ph.items.insert(ph.items.end(), critic_moved.begin(), critic_moved.end());
    e.phases.push_back(ph);
    // Overlapped all-reduce: as backward frees the activations it builds a second full gradient (and on
    // CUDA the buckets' flat copies; Gloo's come from the pool above), all alive when backward ends: a
    // peak of its own, after the activations' one.
    if (multi && s.stage < 2 && c.distributed.overlap_grad_reduce) {
      MemoryPhase end{who + " gradient reduction", {}};
      end.items.push_back({"second full gradient", p.total * pb,
                           "overlap_grad_reduce: full_grads_ (src/trainer/data_parallel.cpp) next to .grad"});
      if (s.cuda)
        end.items.push_back(
            {"all-reduce bucket buffers", p.total * pb,
             "flat bucket copies, all pending until backward ends (src/dist/process_group.cpp)"});
      e.phases.push_back(end);
    }
  };
  update_phase("actor", actor, c.actor.ppo_micro_batch_size, true);
  if (c.needs_critic()) update_phase("critic", critic, c.critic.ppo_micro_batch_size, false);

  // Optimizer step, after backward (activations freed): gradient all-reduce buffers unless overlapped,
  // ZeRO-1's broadcast of updated parameters (on CUDA; Gloo's come from its pool), AdamW's fp32
  // temporaries of the largest parameter.
  {
    MemoryPhase step{"optimizer step", {}};
    const double biggest = std::max(actor.total, critic.total);
    if (multi && s.cuda && s.stage < 2 && (!c.distributed.overlap_grad_reduce || s.stage == 1))
      step.items.push_back({"collective buffers", biggest * pb,
                            std::string(c.distributed.overlap_grad_reduce ? "" : "gradient all-reduce, ") +
                                (s.stage == 1 ? "ZeRO-1 parameter broadcast" : "") +
                                ": flat buffers of every bucket live until the collective ends"});
    step.items.insert(step.items.end(), critic_moved.begin(), critic_moved.end());  // its step, moved in
    if (s.stage >= 2)
      step.items.push_back({"root unit gradient", std::max(actor.root, critic.root) * pb,
                            "held for the update (ZeRO-" + std::to_string(s.stage) + ")"});
    step.items.push_back({"AdamW temporaries", 3 * 4 * VH / s.shard,
                          "fp32 gradient, sqrt and denominator of the largest parameter (embeddings)" +
                              sharded(s, s.shard, "its ZeRO-3 shard")});
    e.phases.push_back(step);
  }

  // Checkpoint (src/trainer/checkpointer.cpp): rank 0 writes the weights, each rank its own part of the
  // AdamW state, one tensor at a time from where it lives (src/trainer/state_files.h).
  {
    MemoryPhase ckpt{"checkpoint", {}};
    ckpt.items.push_back({"weights to host", VH * pb, "one tensor at a time (the largest: embeddings)"});
    if (s.stage >= 3)
      ckpt.items.push_back({"gathered unit", std::max({actor.layer, actor.root, critic.root}) * pb,
                            "ZeRO-3: the unit being written (a decoder layer or the root), gathered whole on "
                            "every rank"});
    if (s.stage >= 3 && critic_moves)
      ckpt.items.push_back({"critic weights", critic.total * pb / s.shard,
                            "its shard moved in to gather it (critic.offload)"});
    e.phases.push_back(ckpt);
  }

  // A checkpoint on disk (src/trainer/checkpointer.cpp): each model's weights in model.dtype, its AdamW
  // moments in fp32 and, for non-fp32 weights, its fp32 master copy; whatever the stage or world size.
  const double state_per_param = 8.0 + (pb < 4 ? 4.0 : 0.0);
  e.checkpoint_disk_bytes = (actor.total + critic.total) * (pb + state_per_param);

  if (s.cuda) {
    e.overhead.push_back({"CUDA context", kCudaContextBytes,
                          "context + cuBLAS workspaces; PyTorch on H100/H200 shows 0.5-0.8 GiB"});
    if (multi)
      e.overhead.push_back(
          {"NCCL buffers", kNcclBytes,
           "communicator buffers, NCCL_BUFFSIZE 4 MiB x channels x peers (+NVLS): 0.3-1 GiB"});
    e.overhead.push_back({"allocator fragmentation",
                          kFragmentation * (e.resident_bytes() + e.largest_phase().bytes()),
                          "8% of resident + peak: reserved-but-free blocks, 3-10% in PyTorch training"});
  }
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
  if (c.needs_critic() && c.critic.ppo_micro_batch_size > 1) {
    TrainConfig t = c;
    t.critic.ppo_micro_batch_size = std::max<int64_t>(1, c.critic.ppo_micro_batch_size / 2);
    try_config("critic.ppo_micro_batch_size=" + std::to_string(t.critic.ppo_micro_batch_size), t,
               e.world_size);
  }
  if (c.rollout.micro_batch_size > 1) {
    TrainConfig t = c;
    t.rollout.micro_batch_size = std::max<int64_t>(1, c.rollout.micro_batch_size / 2);
    try_config("rollout.micro_batch_size=" + std::to_string(t.rollout.micro_batch_size), t, e.world_size);
  }
  if (c.rollout.micro_batch_size == 0 && e.rollout_rows > 1) {
    // Memory-sized rows fill rollout.memory_utilization of what is free when the rollout starts; a cap
    // leaves the rest free.
    TrainConfig t = c;
    t.rollout.micro_batch_size = e.rollout_rows / 2;
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
  if (c.needs_critic() && !c.critic.offload) {
    TrainConfig t = c;
    t.critic.offload = true;
    try_config("critic.offload=true", t, e.world_size);
  }
  if (c.needs_reference() && c.reference.dtype != "bfloat16" && c.model.dtype == "float32") {
    TrainConfig t = c;
    t.reference.dtype = "bfloat16";
    try_config("reference.dtype=bfloat16", t, e.world_size);
  }
  if (e.world_size > 1 && c.distributed.zero_stage < 2 && c.distributed.overlap_grad_reduce) {
    TrainConfig t = c;
    t.distributed.overlap_grad_reduce = false;
    try_config("distributed.overlap_grad_reduce=false", t, e.world_size);
  }
  if (e.world_size > 1 && c.distributed.zero_stage >= 2 && e.cuda) {
    for (const bool critic : {false, true}) {
      if (critic && !c.needs_critic()) continue;
      TrainConfig t = c;
      OptimConfig& o = critic ? t.critic.optim : t.actor.optim;
      if (o.offload) continue;
      o.offload = true;
      try_config(std::string(critic ? "critic" : "actor") + ".optim.offload=true", t, e.world_size);
    }
  }
  if (e.world_size > 1 && c.distributed.zero_stage >= 3 && !e.rollout_by_layer) {
    TrainConfig t = c;
    t.distributed.rollout_gather = "layer";
    try_config("distributed.rollout_gather=layer (slower generation)", t, e.world_size);
  }
  for (int stage = static_cast<int>(c.distributed.zero_stage) + 1; stage <= 3 && e.world_size > 1; ++stage) {
    TrainConfig t = c;
    t.distributed.zero_stage = stage;
    try_config("distributed.zero_stage=" + std::to_string(stage), t, e.world_size);
  }
  {
    TrainConfig t = c;
    t.distributed.zero_stage = std::max<int64_t>(3, c.distributed.zero_stage);
    try_config("distributed.zero_stage=3 on " + std::to_string(e.world_size * 2) + " ranks", t,
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
  out << "parameters: actor " << millions(static_cast<double>(e.actor_parameters));
  if (e.critic_parameters) out << ", critic " << millions(static_cast<double>(e.critic_parameters));
  out << "; ranks " << e.world_size << ", ZeRO stage " << e.zero_stage << "\n";
  out << "memory per device (estimate):\n";
  char line[512];
  auto row = [&](const std::string& indent, const MemoryItem& item) {
    std::snprintf(line, sizeof line, "%s%-*s %10s  %s\n", indent.c_str(),
                  static_cast<int>(36 - indent.size()), item.name.c_str(), format_gib(item.bytes).c_str(),
                  item.detail.c_str());
    out << line;
  };
  out << "  resident for the whole run:\n";
  for (const auto& item : e.resident) row("    ", item);
  row("  ", {"resident", e.resident_bytes(), "sum of the above"});
  const MemoryPhase& peak = e.largest_phase();
  out << "  peak of each phase, on top of resident (phases do not overlap):\n";
  for (const auto& ph : e.phases) {
    row("  ", {"phase: " + ph.name, ph.bytes(), &ph == &peak ? "<- the largest" : ""});
    for (const auto& item : ph.items) row("      ", item);
  }
  std::snprintf(
      line, sizeof line, "  %-34s %10s  rows decoding at once, of the %lld a device generates per step\n",
      "rollout batch", std::to_string(e.rollout_rows).c_str(), static_cast<long long>(e.rollout_rows_total));
  out << line;
  if (!e.overhead.empty()) {
    out << "  overhead of the CUDA device:\n";
    for (const auto& item : e.overhead) row("    ", item);
  }
  row("  ", {"total", e.total_bytes(), "resident + the largest phase (" + peak.name + ") + overhead"});
  row("  ", {"checkpoint on disk", e.checkpoint_disk_bytes,
             "each: weights + AdamW state" + std::string(c.needs_critic() ? " of actor and critic" : "") +
                 " (rank 0 writes the weights, each rank its part of the state); trainer.keep_last = " +
                 std::to_string(c.trainer.keep_last) + " kept"});
  if (capacity > 0) {
    row("  ", {"capacity", capacity, device_name});
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

void check_fits(const MemoryEstimate& e, const TrainConfig& c, const TransformerConfig& m, double capacity,
                const std::string& device_name) {
  if (e.total_bytes() <= capacity) return;
  std::string advice;
  for (const auto& s : memory_suggestions(e, c, m, e.total_bytes() - capacity)) advice += "\n  " + s;
  const MemoryPhase& peak = e.largest_phase();
  throw ConfigError(
      "the run needs about " + format_gib(e.total_bytes()) + " per device (resident " +
      format_gib(e.resident_bytes()) + ", " + peak.name + " peak " + format_gib(peak.bytes()) + ") but " +
      device_name + " has " + format_gib(capacity) +
      "; --dry-run lists every term. To make it fit, change (largest saving first):" +
      (advice.empty() ? std::string("\n  (nothing in the config; use more or larger devices)") : advice));
}

std::optional<MemoryEstimate> check_fits_on_device(const TrainConfig& c, const c10::Device& device,
                                                   int world_size) {
  if (!device.is_cuda()) return std::nullopt;
  const std::filesystem::path shape = std::filesystem::path(c.model.path) / "config.json";
  std::error_code ec;
  if (c.model.path.empty() || !std::filesystem::exists(shape, ec)) return std::nullopt;
  const TransformerConfig m = load_transformer_config(shape.string());
  // The free memory no longer contains the context this process already made; the estimate counts it.
  const double capacity = available_device_bytes(device) + kCudaContextBytes;
  const MemoryEstimate e = estimate_memory(c, m, world_size, capacity);
  check_fits(e, c, m, capacity, "the free memory of " + device.str());
  logging::info("memory estimate: {} of {} per device ({} peak: {})", format_gib(e.total_bytes()),
                format_gib(capacity), e.largest_phase().name, format_gib(e.largest_phase().bytes()));
  return e;
}

int declared_world_size(const TrainConfig& c) { return static_cast<int>(c.hardware.gpus); }

double declared_capacity_bytes(const TrainConfig& c) { return c.hardware.gpu_memory_gb * kGiB; }

}  // namespace tinyzero
