// Tests of the --dry-run memory estimate against byte counts computed by hand.
#include "tinyzero/trainer/memory_estimate.h"

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
  return c;
}

double item(const MemoryEstimate& e, const std::string& name) {
  for (const auto& i : e.resident)
    if (i.name == name) return i.bytes;
  return -1;
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
  c.reference.offload = true;
  EXPECT_EQ(item(estimate_memory(c, m, 1), "reference weights"), 0);
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
  EXPECT_EQ(e.rollout_peak.bytes, 32 * row.total());
  // Two ranks share the batch: 32 rows each still.
  EXPECT_EQ(estimate_memory(c, m, 2).rollout_peak.bytes, 32 * row.total());
  // Four ranks: 16 rows each.
  EXPECT_EQ(estimate_memory(c, m, 4).rollout_peak.bytes, 16 * row.total());
}

TEST(MemoryEstimate, AutoRolloutBatchIsWhatTheMemoryLeftHolds) {
  TransformerConfig m = tiny_model();
  TrainConfig c = small_run();
  c.rollout.micro_batch_size = 0;  // memory-sized
  const DecodeRowBytes row = decode_row_bytes(m, 128, 4);
  // Capacity unknown: every row of the rank, as the engine would take with memory to spare.
  MemoryEstimate all = estimate_memory(c, m, 1);
  EXPECT_EQ(all.rollout_rows, 64);
  // Room for 10.5 rows in rollout.memory_utilization (0.9) of what the resident items leave: 10 rows.
  const double resident = all.resident_bytes();
  const double capacity = resident + 10.5 * row.total() / 0.9;
  MemoryEstimate sized = estimate_memory(c, m, 1, capacity);
  EXPECT_EQ(sized.rollout_rows, 10);
  EXPECT_EQ(sized.rollout_peak.bytes, 10 * row.total());
  EXPECT_LE(resident + sized.rollout_peak.bytes, capacity);
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
  const double base = estimate_memory(c, m, 1).train_peak.bytes;
  c.model.activation_checkpointing = true;
  EXPECT_LT(estimate_memory(c, m, 1).train_peak.bytes, base / 2);
  c.model.activation_checkpointing = false;
  c.actor.ppo_micro_batch_size = 2;
  const double head = 1024.0 * 512 * 4 * 3;
  EXPECT_NEAR(estimate_memory(c, m, 1).train_peak.bytes - head, (base - head) / 2, 1.0);
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

}  // namespace
}  // namespace tinyzero
