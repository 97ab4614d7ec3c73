// Tests of the --dry-run memory estimate against byte counts computed by hand.
#include "tinyzero/trainer/memory_estimate.h"

#include "tinyzero/core/errors.h"
#include "tinyzero/model/decode_memory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tinyzero {
namespace {

using ::testing::HasSubstr;

TransformerConfig tiny_model() {
  nlohmann::json j = {{"architectures", {"Qwen2ForCausalLM"}},
                      {"model_type", "qwen2"},
                      {"vocab_size", 512},
                      {"hidden_size", 256},
                      {"intermediate_size", 688},
                      {"num_hidden_layers", 4},
                      {"num_attention_heads", 8},
                      {"num_key_value_heads", 2},
                      {"max_position_embeddings", 2048},
                      {"rope_theta", 10000.0},
                      {"rms_norm_eps", 1e-6},
                      {"tie_word_embeddings", true},
                      {"hidden_act", "silu"}};
  return parse_transformer_config(j, "test");
}

TrainConfig small_run() {
  TrainConfig c;
  c.data.max_prompt_length = 64;
  c.data.max_response_length = 64;
  c.data.train_batch_size = 16;
  c.rollout.n = 4;
  c.rollout.micro_batch_size = 32;
  c.actor.ppo_mini_batch_size = 8;
  c.actor.ppo_micro_batch_size = 4;
  c.trainer.device = "cpu";  // no CUDA context, NCCL or fragmentation terms
  return c;
}

double item(const MemoryEstimate& e, const std::string& name) {
  for (const auto& i : e.resident)
    if (i.name == name) return i.bytes;
  return -1;
}

// An item of a phase; -1 when the phase or the item is absent.
double phase_item(const MemoryEstimate& e, const std::string& phase, const std::string& name) {
  const MemoryPhase* p = e.phase(phase);
  if (!p) return -1;
  for (const auto& i : p->items)
    if (i.name == name) return i.bytes;
  return -1;
}

// A resident item; -1 when absent.
double resident_item(const MemoryEstimate& e, const std::string& name) {
  for (const auto& i : e.resident)
    if (i.name == name) return i.bytes;
  return -1;
}

// Whether memory_suggestions proposes `text` for a config that does not fit.
bool suggests(const MemoryEstimate& e, const TrainConfig& c, const TransformerConfig& m,
              const std::string& text) {
  for (const auto& s : memory_suggestions(e, c, m, 1.0))
    if (s.find(text) != std::string::npos) return true;
  return false;
}

double rollout_rows_bytes(const MemoryEstimate& e) {
  return phase_item(e, "rollout", "KV cache") + phase_item(e, "rollout", "decode tensors");
}

// Parameters of the tiny model's q/k/v and gate/up weights and q/k/v biases, over its 4 layers.
double fused_params() {
  const double qkv_rows = (8 + 2 * 2) * 32;  // (heads + 2 kv heads) x head dim
  return 4 * (qkv_rows * 256 + qkv_rows + 2 * 688 * 256);
}

TEST(MemoryEstimate, Fp32ActorIsSixteenBytesPerParameter) {
  TransformerConfig m = tiny_model();
  MemoryEstimate e = estimate_memory(small_run(), m, 1);
  const double p = static_cast<double>(m.num_parameters());
  EXPECT_EQ(item(e, "actor weights"), 4 * p);
  EXPECT_EQ(item(e, "actor gradients"), 4 * p);
  EXPECT_EQ(item(e, "actor AdamW moments"), 8 * p);
  EXPECT_EQ(item(e, "actor fp32 master weights"), -1);  // fp32 parameters need no master copy
  EXPECT_EQ(item(e, "reference weights"), -1);          // no KL term: no reference model
  EXPECT_EQ(e.resident_bytes(), 16 * p);
}

TEST(MemoryEstimate, Bf16AddsMasterWeightsAndZeroOneShardsOptimizerState) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.model.dtype = "bfloat16";
  c.distributed.zero_stage = 1;
  MemoryEstimate e = estimate_memory(c, m, 4);
  const double p = static_cast<double>(m.num_parameters());
  EXPECT_EQ(item(e, "actor weights"), 2 * p);
  EXPECT_EQ(item(e, "actor AdamW moments"), 8 * p / 4);
  EXPECT_EQ(item(e, "actor fp32 master weights"), 4 * p / 4);
}

TEST(MemoryEstimate, ReferenceAndCriticWhenTheConfigUsesThem) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.algorithm.name = "ppo";
  c.algorithm.use_kl_in_reward = true;
  c.reference.dtype = "bfloat16";
  MemoryEstimate e = estimate_memory(c, m, 1);
  const double p = static_cast<double>(m.num_parameters());
  EXPECT_EQ(item(e, "reference weights"), 2 * p);
  // Tied head: the critic is the trunk (all parameters) plus a hidden -> 1 value head.
  EXPECT_EQ(e.critic_parameters, m.num_parameters() + 256 + 1);
  EXPECT_EQ(item(e, "critic AdamW moments"), 8.0 * static_cast<double>(e.critic_parameters));
  // reference.offload moves it off a CUDA device between its passes (on the CPU it stays).
  c.reference.offload = true;
  EXPECT_EQ(item(estimate_memory(c, m, 1), "reference weights"), 2 * p);
  c.trainer.device = "cuda";
  MemoryEstimate offloaded = estimate_memory(c, m, 1);
  EXPECT_EQ(item(offloaded, "reference weights"), 0);
  EXPECT_EQ(phase_item(offloaded, "log-prob passes", "reference weights"), 2 * p);
}

TEST(MemoryEstimate, KvCacheOfTheRolloutBatch) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  // 16 prompts x 4 samples = 64 rows per rank, capped by rollout.micro_batch_size = 32.
  MemoryEstimate e = estimate_memory(c, m, 1);
  EXPECT_EQ(e.rollout_rows, 32);
  EXPECT_EQ(e.rollout_rows_total, 64);
  const DecodeRowBytes row = decode_row_bytes(m, 128, 4);
  EXPECT_EQ(row.kv,
            128.0 /*tokens*/ * 2 /*K,V*/ * 4 /*layers*/ * 2 /*kv heads*/ * 32 /*head dim*/ * 4 /*fp32*/);
  EXPECT_GE(row.step, 512.0 * 4 * 4);  // at least four fp32 vocabulary-wide tensors per row
  EXPECT_EQ(rollout_rows_bytes(e), 32 * row.total());
  // Two ranks share the batch: 32 rows each still.
  EXPECT_EQ(rollout_rows_bytes(estimate_memory(c, m, 2)), 32 * row.total());
  // Four ranks: 16 rows each.
  EXPECT_EQ(rollout_rows_bytes(estimate_memory(c, m, 4)), 16 * row.total());
}

TEST(MemoryEstimate, AutoRolloutBatchIsWhatTheMemoryLeftHolds) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.rollout.micro_batch_size = 0;  // memory-sized
  const DecodeRowBytes row = decode_row_bytes(m, 128, 4);
  // Capacity unknown: every row of the rank, as the engine would take with memory to spare.
  MemoryEstimate all = estimate_memory(c, m, 1);
  EXPECT_EQ(all.rollout_rows, 64);
  // Room for 10.5 rows in rollout.memory_utilization (0.9) of what the resident items leave, once
  // generate's fused weight copies are made: 10 rows.
  const double resident = all.resident_bytes();
  const double fused = fused_weight_bytes(m, 4, false);
  const double capacity = resident + (10.5 * row.total() + fused) / 0.9;
  MemoryEstimate sized = estimate_memory(c, m, 1, capacity);
  EXPECT_EQ(sized.rollout_rows, 10);
  EXPECT_EQ(rollout_rows_bytes(sized), 10 * row.total());
  EXPECT_LE(resident + fused + rollout_rows_bytes(sized), capacity);
  // Without the copies in the budget the same capacity would hold more rows than it can.
  EXPECT_GT(rows_within((capacity - resident) * 0.9, row), 10);
  EXPECT_THAT(format_memory_estimate(sized, c, m, capacity, "test device"),
              HasSubstr(" 10  rows decoding at once, of the 64 a device generates per step"));
  // Not even one row left: the estimate counts one, and the report says it does not fit.
  MemoryEstimate none = estimate_memory(c, m, 1, resident + row.total() / 2);
  EXPECT_EQ(none.rollout_rows, 1);
  EXPECT_THAT(format_memory_estimate(none, c, m, resident + row.total() / 2, "test device"),
              HasSubstr("does NOT fit"));
}

TEST(DecodeMemory, RowsWithinABudget) {
  DecodeRowBytes row{300, 100};
  EXPECT_EQ(rows_within(1000, row), 2);
  EXPECT_EQ(rows_within(1200, row), 3);
  EXPECT_EQ(rows_within(399, row), 0);
  EXPECT_EQ(rows_within(0, row), 0);
  EXPECT_EQ(rows_within(-5, row), 0);
}

TEST(DecodeMemory, TheMachineReportsAvailableMemory) {
  const double bytes = available_device_bytes(at::Device(at::kCPU));
  EXPECT_GT(bytes, 64.0 * 1024 * 1024);  // a CI machine has more than 64 MiB free
  EXPECT_LT(bytes, 1e15);
}

TEST(MemoryEstimate, CheckpointingAndMicroBatchShrinkTheTrainingPeak) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  auto acts = [&](const TrainConfig& t) {
    return phase_item(estimate_memory(t, m, 1), "actor update", "activations");
  };
  c.model.autocast_bf16 = "false";  // fp32 activations on any CPU
  const double base = acts(c);      // every layer's, 4 layers
  // Checkpointed: each layer's input (512 tokens x hidden 256 x fp32) and one layer re-run in backward,
  // counted twice for its gradients.
  c.model.activation_checkpointing = true;
  EXPECT_DOUBLE_EQ(acts(c), 4 * 512.0 * 256 * 4 + 2 * base / 4);
  EXPECT_LT(acts(c), base);
  c.model.activation_checkpointing = false;
  c.actor.ppo_micro_batch_size = 2;
  EXPECT_NEAR(acts(c), base / 2, 1.0);
}

TEST(MemoryEstimate, ReportSaysWhatToChangeWhenItDoesNotFit) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  MemoryEstimate e = estimate_memory(c, m, 1);
  std::string fits = format_memory_estimate(e, c, m, e.total_bytes() * 2, "test device");
  EXPECT_THAT(fits, HasSubstr("fits (50% of capacity)"));
  std::string tight = format_memory_estimate(e, c, m, e.total_bytes() * 0.8, "test device");
  EXPECT_THAT(tight, HasSubstr("does NOT fit"));
  EXPECT_THAT(tight, HasSubstr("model.activation_checkpointing=true (saves"));
  EXPECT_THAT(tight, HasSubstr("actor.ppo_micro_batch_size=2"));
}

TEST(MemoryEstimate, TotalIsResidentPlusTheLargestPhasePlusOverhead) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.algorithm.name = "ppo";
  MemoryEstimate e = estimate_memory(c, m, 1);
  for (const char* name :
       {"rollout", "log-prob passes", "actor update", "critic update", "optimizer step", "checkpoint"})
    EXPECT_NE(e.phase(name), nullptr) << name;
  double largest = 0;
  for (const auto& p : e.phases) largest = std::max(largest, p.bytes());
  EXPECT_EQ(e.largest_phase().bytes(), largest);
  EXPECT_TRUE(e.overhead.empty());  // CPU
  EXPECT_EQ(e.total_bytes(), e.resident_bytes() + largest);
  // Every phase and term is in the report.
  const std::string report = format_memory_estimate(e, c, m, 0, "test device");
  for (const auto& p : e.phases) {
    EXPECT_THAT(report, HasSubstr("phase: " + p.name));
    for (const auto& i : p.items) EXPECT_THAT(report, HasSubstr(i.name));
  }
}

TEST(MemoryEstimate, RolloutHoldsTheFusedInferenceCopies) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  // fp32 weights without autocast: one fp32 copy of q/k/v and gate/up per layer (set_fused).
  c.model.autocast_bf16 = "false";
  EXPECT_EQ(phase_item(estimate_memory(c, m, 1), "rollout", "fused inference weights"), fused_params() * 4);
  // fp32 weights under bf16 autocast: and a bf16 copy of each (fused_weight), and of o_proj and down_proj
  // (inference_linear).
  c.model.autocast_bf16 = "true";
  const double out_params = static_cast<double>(m.num_hidden_layers) *
                            static_cast<double>(m.num_attention_heads * m.head_dim + m.intermediate_size) *
                            static_cast<double>(m.hidden_size);
  EXPECT_EQ(phase_item(estimate_memory(c, m, 1), "rollout", "fused inference weights"),
            fused_params() * 6 + out_params * 2);
  // bf16 weights: the concatenation in bf16 only.
  c.model.dtype = "bfloat16";
  EXPECT_EQ(phase_item(estimate_memory(c, m, 1), "rollout", "fused inference weights"), fused_params() * 2);
}

TEST(MemoryEstimate, ZeroThreeShardsParametersAndGathersThemForTheRollout) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.model.dtype = "bfloat16";
  c.algorithm.name = "ppo";
  c.algorithm.use_kl_in_reward = true;
  c.distributed.zero_stage = 3;
  const double p = static_cast<double>(m.num_parameters());
  MemoryEstimate e = estimate_memory(c, m, 4);
  EXPECT_EQ(e.zero_stage, 3);
  EXPECT_EQ(item(e, "actor weights"), 2 * p / 4);
  EXPECT_EQ(item(e, "actor gradients"), 2 * p / 4);
  EXPECT_EQ(item(e, "actor AdamW moments"), 8 * p / 4);
  EXPECT_EQ(item(e, "actor fp32 master weights"), 4 * p / 4);
  EXPECT_EQ(item(e, "reference weights"), 2 * p / 4);
  EXPECT_EQ(item(e, "critic weights"), 2 * static_cast<double>(e.critic_parameters) / 4);
  // The rollout gathers the whole actor and fuses its weights.
  EXPECT_EQ(phase_item(e, "rollout", "actor weights gathered"), 2 * p);
  EXPECT_EQ(phase_item(e, "rollout", "fused inference weights"), 2 * fused_params());
  // Backward: 2 layers + the root unit gathered, 2 layers' and the root's full gradients.
  const double root = 512.0 * 256 + 256;  // tied embeddings + final norm
  const double layer = (p - root) / 4;
  EXPECT_DOUBLE_EQ(phase_item(e, "actor update", "actor gathered weights"), 2 * (2 * layer + root));
  EXPECT_DOUBLE_EQ(phase_item(e, "actor update", "actor layer grads in flight"), 2 * 2 * layer);
  EXPECT_DOUBLE_EQ(phase_item(e, "actor update", "actor root unit gradient"), 2 * root);
  // Checkpointing is forced on: the same activations as with model.activation_checkpointing=true.
  TrainConfig ckpt = c;
  ckpt.distributed.zero_stage = 1;
  ckpt.model.activation_checkpointing = true;
  EXPECT_EQ(phase_item(e, "actor update", "activations"),
            phase_item(estimate_memory(ckpt, m, 4), "actor update", "activations"));
  // One rank: nothing is sharded.
  EXPECT_EQ(item(estimate_memory(c, m, 1), "actor weights"), 2 * p);
}

TEST(MemoryEstimate, ZeroTwoShardsGradientsButNotParameters) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.distributed.zero_stage = 2;
  const double p = static_cast<double>(m.num_parameters());
  MemoryEstimate e = estimate_memory(c, m, 2);
  EXPECT_EQ(item(e, "actor weights"), 4 * p);
  EXPECT_EQ(item(e, "actor gradients"), 4 * p / 2);
  EXPECT_EQ(item(e, "actor AdamW moments"), 8 * p / 2);
  EXPECT_EQ(phase_item(e, "rollout", "actor weights gathered"), -1);
  EXPECT_EQ(phase_item(e, "actor update", "actor gathered weights"), -1);
  EXPECT_GT(phase_item(e, "actor update", "actor layer grads in flight"), 0);
  // No second gradient or buckets: overlap_grad_reduce is for stages 0 and 1.
  EXPECT_EQ(phase_item(e, "actor update", "second full gradient"), -1);
  EXPECT_EQ(phase_item(e, "optimizer step", "collective buffers"), -1);
}

TEST(MemoryEstimate, OverlappedReductionAddsASecondGradientAndBuckets) {
  // When backward ends (activations freed): a second full gradient, and on CUDA the buckets' copies.
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.trainer.device = "cuda";
  const double p = static_cast<double>(m.num_parameters());
  c.distributed.overlap_grad_reduce = true;
  MemoryEstimate on = estimate_memory(c, m, 2);
  EXPECT_EQ(phase_item(on, "actor gradient reduction", "second full gradient"), 4 * p);
  EXPECT_EQ(phase_item(on, "actor gradient reduction", "all-reduce bucket buffers"), 4 * p);
  EXPECT_EQ(phase_item(on, "actor update", "second full gradient"), -1);  // not at the activations' peak
  EXPECT_EQ(estimate_memory(c, m, 1).phase("actor gradient reduction"), nullptr);  // one rank
  c.distributed.overlap_grad_reduce = false;
  MemoryEstimate off = estimate_memory(c, m, 2);
  EXPECT_EQ(off.phase("actor gradient reduction"), nullptr);
  EXPECT_EQ(phase_item(off, "optimizer step", "collective buffers"), 4 * p);  // all-reduce after backward
  // Gloo on the CPU: bucket buffers come from the process group's pool, resident for the run.
  c.trainer.device = "cpu";
  c.distributed.overlap_grad_reduce = true;
  MemoryEstimate cpu = estimate_memory(c, m, 2);
  EXPECT_EQ(phase_item(cpu, "actor gradient reduction", "all-reduce bucket buffers"), -1);
  EXPECT_EQ(phase_item(cpu, "optimizer step", "collective buffers"), -1);
  EXPECT_EQ(resident_item(cpu, "collective buffer pool"), 8 * p)
      << "the weight broadcast's and the all-reduce's buffers, kept by the pool";
}

TEST(MemoryEstimate, HeadBackwardHoldsFp32CopiesOfTheHead) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.model.dtype = "bfloat16";
  const double vh = 512.0 * 256;
  // fp32 weight copy + fp32 weight gradient + its bf16 cast, 5 fp32 chunks of 1024 x vocab, fp32 grad_h.
  const double tokens = 4.0 * 128;
  EXPECT_EQ(phase_item(estimate_memory(c, m, 1), "actor update", "head backward"),
            4 * vh + 4 * vh + 2 * vh + 5 * 1024.0 * 512 * 4 + tokens * 256 * 4);
}

TEST(MemoryEstimate, CudaAddsContextNcclAndFragmentation) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.trainer.device = "cuda";
  MemoryEstimate one = estimate_memory(c, m, 1);
  ASSERT_EQ(one.overhead.size(), 2u);  // context, fragmentation; no NCCL on one rank
  EXPECT_EQ(one.overhead[0].name, "CUDA context");
  EXPECT_EQ(one.overhead[0].bytes, 1024.0 * 1024 * 1024);
  EXPECT_DOUBLE_EQ(one.overhead[1].bytes, 0.08 * (one.resident_bytes() + one.largest_phase().bytes()));
  MemoryEstimate two = estimate_memory(c, m, 2);
  ASSERT_EQ(two.overhead.size(), 3u);
  EXPECT_EQ(two.overhead[1].name, "NCCL buffers");
  EXPECT_EQ(two.total_bytes(), two.resident_bytes() + two.largest_phase().bytes() + two.overhead_bytes());
}

TEST(MemoryEstimate, SuggestionsProposeZeroTwoAndThree) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.model.dtype = "bfloat16";
  c.algorithm.name = "ppo";
  MemoryEstimate e = estimate_memory(c, m, 4);
  std::string all;
  for (const auto& s : memory_suggestions(e, c, m, e.total_bytes() / 10)) all += s + "\n";
  EXPECT_THAT(all, HasSubstr("distributed.zero_stage=1 (saves"));
  EXPECT_THAT(all, HasSubstr("distributed.zero_stage=2 (saves"));
  EXPECT_THAT(all, HasSubstr("distributed.zero_stage=3 (saves"));
}

TEST(MemoryEstimate, CheckFitsStopsWithTheAdvice) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.model.dtype = "bfloat16";
  MemoryEstimate e = estimate_memory(c, m, 2);
  EXPECT_NO_THROW(check_fits(e, c, m, e.total_bytes() * 1.01, "test device"));
  try {
    check_fits(e, c, m, e.total_bytes() * 0.8, "test device");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& err) {
    EXPECT_THAT(err.what(), HasSubstr("test device has"));
    EXPECT_THAT(err.what(), HasSubstr("distributed.zero_stage=3 (saves"));
  }
  // The start-up check does nothing on the CPU.
  EXPECT_NO_THROW(check_fits_on_device(c, c10::Device(c10::kCPU), 1));
}

TEST(MemoryEstimate, DeclaredHardware) {
  TrainConfig c;
  EXPECT_EQ(declared_world_size(c), 0);
  EXPECT_EQ(declared_capacity_bytes(c), 0);
  c.hardware.gpus = 8;
  c.hardware.gpu_memory_gb = 80;
  EXPECT_EQ(declared_world_size(c), 8);
  EXPECT_EQ(declared_capacity_bytes(c), 80.0 * 1024 * 1024 * 1024);
}

TEST(MemoryEstimate, OptimizerOffloadTakesTheAdamWStateOffTheDevice) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.trainer.device = "cuda";
  c.model.dtype = "bfloat16";
  c.distributed.zero_stage = 2;
  const MemoryEstimate on_device = estimate_memory(c, m, 2);
  const double p = static_cast<double>(m.num_parameters());
  EXPECT_EQ(resident_item(on_device, "actor AdamW moments"), 2 * p * 4 / 2);
  EXPECT_EQ(resident_item(on_device, "actor fp32 master weights"), p * 4 / 2);
  c.actor.optim.offload = true;
  const MemoryEstimate off = estimate_memory(c, m, 2);
  EXPECT_EQ(resident_item(off, "actor AdamW moments"), 0);
  EXPECT_EQ(resident_item(off, "actor fp32 master weights"), 0);
  EXPECT_NEAR(on_device.resident_bytes() - off.resident_bytes(), 3 * p * 4 / 2, 1);
  // Suggested where it applies.
  c.actor.optim.offload = false;
  EXPECT_TRUE(suggests(on_device, c, m, "actor.optim.offload=true"));
}

TEST(MemoryEstimate, CriticOffloadKeepsItOffTheDeviceOutsideItsPhases) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.algorithm.name = "ppo";
  c.trainer.device = "cuda";
  c.distributed.zero_stage = 3;
  const MemoryEstimate on_device = estimate_memory(c, m, 2);
  c.critic.offload = true;
  const MemoryEstimate off = estimate_memory(c, m, 2);
  const double cp = static_cast<double>(on_device.critic_parameters);
  // fp32 critic under ZeRO-3 on 2 ranks: weights, gradients and two moments, half each.
  const double critic_bytes = 4 * cp * 4 / 2;
  EXPECT_EQ(resident_item(on_device, "critic AdamW moments"), 2 * cp * 4 / 2);
  EXPECT_EQ(resident_item(off, "critic AdamW moments"), -1);
  EXPECT_EQ(resident_item(off, "critic"), 0);
  EXPECT_NEAR(on_device.resident_bytes() - off.resident_bytes(), critic_bytes, 1);
  // Its weights come in for the values pass; everything for its update and optimizer step.
  EXPECT_EQ(phase_item(off, "log-prob passes", "critic weights"), cp * 4 / 2);
  EXPECT_EQ(phase_item(off, "critic update", "critic AdamW moments"), 2 * cp * 4 / 2);
  EXPECT_NEAR(off.phase("critic update")->bytes() - on_device.phase("critic update")->bytes(), critic_bytes,
              1);
  EXPECT_EQ(phase_item(off, "optimizer step", "critic weights"), cp * 4 / 2);
  EXPECT_EQ(phase_item(off, "checkpoint", "critic weights"), cp * 4 / 2);
  EXPECT_EQ(phase_item(on_device, "checkpoint", "critic weights"), -1);
  // Suggested where the critic stays.
  c.critic.offload = false;
  EXPECT_TRUE(suggests(on_device, c, m, "critic.offload=true"));
}

TEST(MemoryEstimate, ZeroThreeGenerationByLayerWhenTheWholeGatherDoesNotFit) {
  // The 3B shape, where the whole actor gathered for the rollout is the largest phase.
  const TransformerConfig m =
      load_transformer_config(std::string(TZ_SOURCE_DIR) + "/configs/models/qwen2.5-3b.json");
  TrainConfig c = small_run();
  c.trainer.device = "cuda";
  c.model.dtype = "bfloat16";
  c.distributed.zero_stage = 3;
  const double p = static_cast<double>(m.num_parameters());
  c.distributed.rollout_gather = "whole";
  const MemoryEstimate whole = estimate_memory(c, m, 2);
  c.distributed.rollout_gather = "layer";
  const MemoryEstimate by_layer = estimate_memory(c, m, 2);
  EXPECT_FALSE(whole.rollout_by_layer);
  EXPECT_TRUE(by_layer.rollout_by_layer);
  EXPECT_EQ(phase_item(whole, "rollout", "actor weights gathered"), 2 * p);
  EXPECT_LT(phase_item(by_layer, "rollout", "actor weights gathered"), 0.2 * 2 * p);
  EXPECT_GT(phase_item(whole, "rollout", "fused inference weights"), 0);
  EXPECT_EQ(phase_item(by_layer, "rollout", "fused inference weights"), -1);  // nothing whole to fuse
  ASSERT_LT(by_layer.total_bytes(), whole.total_bytes());
  // auto: whole where it fits the device, by layer where only that does; suggested then.
  c.distributed.rollout_gather = "auto";
  EXPECT_FALSE(estimate_memory(c, m, 2, 2 * whole.total_bytes()).rollout_by_layer);
  const double between = (whole.total_bytes() + by_layer.total_bytes()) / 2;
  EXPECT_TRUE(estimate_memory(c, m, 2, between).rollout_by_layer);
  EXPECT_FALSE(estimate_memory(c, m, 2).rollout_by_layer);  // capacity unknown: whole
  c.distributed.rollout_gather = "whole";
  EXPECT_TRUE(suggests(estimate_memory(c, m, 2, between), c, m, "distributed.rollout_gather=layer"));
}

TEST(MemoryEstimate, StatesTheCheckpointSizeOnDisk) {
  // bf16 weights (2 B) + fp32 moments (8 B) + fp32 master (4 B) per parameter; PPO adds the critic's.
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.model.dtype = "bfloat16";
  const double p = static_cast<double>(m.num_parameters());
  const MemoryEstimate grpo = estimate_memory(c, m, 1);
  EXPECT_EQ(grpo.checkpoint_disk_bytes, p * 14);
  EXPECT_THAT(format_memory_estimate(grpo, c, m, 0, "test device"), HasSubstr("checkpoint on disk"));
  c.algorithm.name = "ppo";
  const MemoryEstimate ppo = estimate_memory(c, m, 1);
  EXPECT_EQ(ppo.checkpoint_disk_bytes, (p + static_cast<double>(ppo.critic_parameters)) * 14);
  c.distributed.zero_stage = 3;  // the same files whatever the sharding
  EXPECT_EQ(estimate_memory(c, m, 2).checkpoint_disk_bytes, ppo.checkpoint_disk_bytes);
}

}  // namespace
}  // namespace tinyzero
