// Generation against Hugging Face's greedy outputs (tests/data/qwen2-tiny): single, left-padded batch and
// EOS cases for both checkpoints; the KV-cache path against the no-cache reference (greedy and sampled,
// n samples per prompt); continuous batching (any number of slots and workers, refills, shared
// prefills, a share of the prompts); padding invariance; stop checks; keyed streams; sampler filters.
#include "tinyzero/model/generator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <algorithm>

#include "tinyzero/core/errors.h"
#include "tinyzero/model/decode_memory.h"
#include "tinyzero/model/logprobs.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "unit/model/fixture.h"

namespace tinyzero {
namespace {

using namespace testing_fixture;

class GreedyReference : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = reference(GetParam());
    model_ = load_causal_lm(fixture_dir(GetParam()), at::kFloat);
    model_->eval();
  }
  GenerateResult run(const nlohmann::json& c, bool with_eos, bool cached = true) {
    GenerateOptions o;
    o.sampling.greedy = true;
    o.max_new_tokens = 20;
    o.pad_id = ref_["pad_token_id"].get<int64_t>();
    if (with_eos) {
      o.eos_ids = {c["eos_token_id"].get<int64_t>()};
      o.pad_id = c["pad_token_id"].get<int64_t>();
    }
    o.check_every = 3;
    at::Tensor ids = to_tensor(c["input_ids"], at::kLong), mask = to_tensor(c["attention_mask"], at::kLong);
    return cached ? generate(*model_, ids, mask, o) : generate_reference(*model_, ids, mask, o);
  }
  nlohmann::json ref_;
  CausalLM model_{nullptr};
};

TEST_P(GreedyReference, IdsEqualHuggingFace) {
  for (std::string name : {"seqA", "seqB_unpadded", "batch_left_padded", "batch_left_padded_with_eos"}) {
    const auto& c = ref_["generation"][name];
    bool eos = name == "batch_left_padded_with_eos";
    at::Tensor expected = to_tensor(c["new_ids"], at::kLong);
    for (bool cached : {true, false}) {
      GenerateResult r = run(c, eos, cached);
      EXPECT_TRUE(r.ids.equal(expected)) << name << (cached ? " (cache)" : " (no cache)") << "\n" << r.ids;
    }
  }
  GenerateResult r = run(ref_["generation"]["batch_left_padded_with_eos"], true);
  EXPECT_EQ(r.lengths[0].item<int64_t>(), 3);
  EXPECT_EQ(r.lengths[1].item<int64_t>(), 20);
  EXPECT_EQ(r.finish[0], FinishReason::kEos);
  EXPECT_EQ(r.finish[1], FinishReason::kLength);
  EXPECT_EQ(r.logprobs[0][3].item<float>(), 0.0f);
  EXPECT_LT(r.logprobs[0][2].item<float>(), 0.0f);
}

TEST_P(GreedyReference, FirstStepLogitsEqualHuggingFace) {
  const auto& c = ref_["generation"]["seqA"];
  torch::NoGradGuard g;
  at::Tensor logits = model_->forward(to_tensor(c["input_ids"], at::kLong));
  EXPECT_LT(max_abs_diff(logits.select(1, 11), to_tensor(c["step_logits_first_new_token"], at::kFloat)),
            1e-4);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GreedyReference, ::testing::Values("tied-f32", "untied-bf16"),
                         variant_test_name);

// ---------------------------------------------------------------------------------------------------
class Sampling : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = load_causal_lm(fixture_dir("tied-f32"), at::kFloat);
    model_->eval();
    torch::manual_seed(11);
    ids_ = torch::randint(0, 699, {3, 7}, torch::kLong);
    mask_ = torch::ones({3, 7}, torch::kLong);
    mask_.index_put_({1, torch::indexing::Slice(0, 2)}, 0);
    mask_.index_put_({2, torch::indexing::Slice(0, 5)}, 0);
    ids_.masked_fill_(mask_ == 0, 699);
  }
  CausalLM model_{nullptr};
  at::Tensor ids_, mask_;
};

TEST_F(Sampling, CachedEqualsReferenceWithSamplesPerPromptAndFilters) {
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.num_samples = 3;
  o.seed = 1234;
  o.compact = false;
  o.eos_ids = {5, 17, 300};
  o.pad_id = 699;
  for (auto [temp, k, p] :
       std::vector<std::tuple<double, int64_t, double>>{{1.0, 0, 1.0}, {0.7, 20, 1.0}, {1.3, 0, 0.9}}) {
    o.sampling.temperature = temp;
    o.sampling.top_k = k;
    o.sampling.top_p = p;
    GenerateResult a = generate(*model_, ids_, mask_, o), b = generate_reference(*model_, ids_, mask_, o);
    EXPECT_TRUE(a.ids.equal(b.ids)) << a.ids << b.ids;
    EXPECT_LT(max_abs_diff(a.logprobs, b.logprobs), 1e-4);
    EXPECT_TRUE(a.lengths.equal(b.lengths));
    // Reproducible: same seed, same samples; another seed, other samples.
    EXPECT_TRUE(generate(*model_, ids_, mask_, o).ids.equal(a.ids));
    GenerateOptions o2 = o;
    o2.seed = 99;
    EXPECT_FALSE(generate(*model_, ids_, mask_, o2).ids.equal(a.ids));
  }
}

TEST_F(Sampling, SampledLogProbsEqualARecomputedPass) {
  // What rollout.reuse_log_probs relies on: the log-prob the sampler reports for each token equals the
  // one a full forward pass over prompt + response gives at the same temperature.
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.num_samples = 2;
  o.seed = 3;
  o.pad_id = 699;
  o.sampling.temperature = 0.7;
  GenerateResult g = generate(*model_, ids_, mask_, o);
  const int64_t P = ids_.size(1), N = g.ids.size(1);
  at::Tensor ids = at::cat({ids_.repeat_interleave(2, 0), g.ids}, 1);
  at::Tensor mask = at::cat({mask_.repeat_interleave(2, 0), at::ones_like(g.ids)}, 1);
  LogProbOptions lo;
  lo.temperature = 0.7;
  torch::NoGradGuard no_grad;
  at::Tensor recomputed = token_logprobs(*model_, ids, mask, lo).logprobs.narrow(1, P - 1, N);  // (6, N)
  EXPECT_LT(max_abs_diff(recomputed, g.logprobs), 1e-4);
  EXPECT_LT(g.logprobs.max().item<float>(), 0.0f);  // every row ran to the budget: all real tokens
}

TEST_F(Sampling, TopKOneIsGreedyAndTopPKeepsTheNucleus) {
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.pad_id = 699;
  o.sampling.greedy = true;
  GenerateResult greedy = generate(*model_, ids_, mask_, o);
  o.sampling.greedy = false;
  o.sampling.top_k = 1;
  o.seed = 5;
  GenerateResult k1 = generate(*model_, ids_, mask_, o);
  EXPECT_TRUE(k1.ids.equal(greedy.ids));
  EXPECT_LT(k1.logprobs.abs().max().item<float>(), 1e-6);  // one token left: probability 1
  o.sampling.top_k = 0;
  o.sampling.top_p = 1e-6;  // only the most likely token survives
  GenerateResult p0 = generate(*model_, ids_, mask_, o);
  EXPECT_TRUE(p0.ids.equal(greedy.ids));
}

TEST_F(Sampling, PaddingDoesNotChangeARowsResult) {
  GenerateOptions o;
  o.max_new_tokens = 15;
  o.pad_id = 699;
  o.sampling.greedy = true;
  GenerateResult batch = generate(*model_, ids_, mask_, o);
  for (int64_t row = 0; row < 3; ++row) {
    int64_t real = mask_[row].sum().item<int64_t>();
    at::Tensor alone_ids = ids_[row].narrow(0, 7 - real, real).unsqueeze(0);
    GenerateResult alone = generate(*model_, alone_ids, torch::ones_like(alone_ids), o);
    EXPECT_TRUE(alone.ids[0].equal(batch.ids[row])) << row;
    EXPECT_LT(max_abs_diff(alone.logprobs[0], batch.logprobs[row]), 1e-4);
  }
}

// Greedy, 16 new tokens, pad 0, host checks every `check_every` steps.
GenerateOptions greedy_16(int64_t check_every) {
  GenerateOptions o;
  o.max_new_tokens = 16;
  o.pad_id = 0;
  o.sampling.greedy = true;
  o.check_every = check_every;
  return o;
}

TEST_F(Sampling, CompactionAndStopChecksGiveTheSameTokens) {
  GenerateOptions o = greedy_16(2);
  GenerateResult full = generate_reference(*model_, ids_, mask_, o);
  // EOS = the 3rd token of rows 0 and 1: they finish early, the batch is compacted, row 2 goes on.
  o.eos_ids = {full.ids[0][2].item<int64_t>(), full.ids[1][2].item<int64_t>()};
  GenerateResult ref = generate_reference(*model_, ids_, mask_, o);
  GenerateResult got = generate(*model_, ids_, mask_, o);
  EXPECT_TRUE(got.ids.equal(ref.ids)) << got.ids << ref.ids;
  EXPECT_TRUE(got.lengths.equal(ref.lengths));
  // Stop check: row 2 stops after its 5th token; the others are never stopped by it.
  o.eos_ids.clear();
  o.stop_check = [&](const std::vector<std::vector<int64_t>>& rows) {
    std::vector<int64_t> keep;
    for (const auto& r : rows) {
      bool is_row2 =
          r.size() >= 5 && r[0] == full.ids[2][0].item<int64_t>() && r[1] == full.ids[2][1].item<int64_t>();
      keep.push_back(is_row2 && r.size() >= 5 ? 5 : -1);
    }
    return keep;
  };
  GenerateResult stopped = generate(*model_, ids_, mask_, o);
  EXPECT_EQ(stopped.finish[2], FinishReason::kStop);
  EXPECT_EQ(stopped.lengths[2].item<int64_t>(), 5);
  EXPECT_TRUE(stopped.ids[2].narrow(0, 0, 5).equal(full.ids[2].narrow(0, 0, 5)));
  EXPECT_TRUE(stopped.ids[2].narrow(0, 5, 11).eq(0).all().item<bool>());
  EXPECT_TRUE(stopped.ids[0].equal(full.ids[0]));
}

TEST_F(Sampling, AStopStringInTheLastWindowStillEndsTheRow) {
  // Checks run after steps 6 and 12 and, since the budget (16) is not a multiple of 6, after the
  // last step too: a stop found only there must end its row at its own length, not at the budget.
  GenerateOptions o = greedy_16(6);
  o.row_workers = 1;  // one engine: one stop check per window
  GenerateResult full = generate(*model_, ids_, mask_, o);
  std::vector<int64_t> seen_sizes;
  o.stop_check = [&](const std::vector<std::vector<int64_t>>& rows) {
    seen_sizes.push_back(static_cast<int64_t>(rows.front().size()));
    std::vector<int64_t> keep;
    for (const auto& r : rows) keep.push_back(r.size() >= 14 ? 14 : -1);
    return keep;
  };
  GenerateResult stopped = generate(*model_, ids_, mask_, o);
  EXPECT_EQ(seen_sizes, (std::vector<int64_t>{6, 12, 16}));
  for (int64_t row = 0; row < 3; ++row) {
    EXPECT_EQ(stopped.finish[row], FinishReason::kStop) << row;
    EXPECT_EQ(stopped.lengths[row].item<int64_t>(), 14) << row;
    EXPECT_TRUE(stopped.ids[row].equal(full.ids[row].narrow(0, 0, 14))) << row;
  }
}

TEST_F(Sampling, RowWorkersSplitPromptsIntoGroupsOnTheirOwnThreads) {
  // Greedy, rows ending at different steps (EOS) and one stopped by a stop check: each prompt on its
  // own thread gives what one group gives, padded to the longest row.
  GenerateOptions o = greedy_16(4);
  GenerateResult full = generate(*model_, ids_, mask_, o);
  o.eos_ids = {full.ids[0][3].item<int64_t>()};
  o.stop_check = [&](const std::vector<std::vector<int64_t>>& rows) {
    std::vector<int64_t> keep;
    for (const auto& r : rows)
      keep.push_back(r.size() >= 9 && r[0] == full.ids[2][0].item<int64_t>() ? 9 : -1);
    return keep;
  };
  o.row_workers = 1;
  GenerateResult one = generate(*model_, ids_, mask_, o);
  o.row_workers = 3;
  GenerateResult three = generate(*model_, ids_, mask_, o);
  EXPECT_TRUE(three.ids.equal(one.ids)) << three.ids << one.ids;
  EXPECT_TRUE(three.lengths.equal(one.lengths));
  EXPECT_EQ(three.finish, one.finish);
  EXPECT_LT(max_abs_diff(three.logprobs, one.logprobs), 1e-5);
  EXPECT_EQ(three.steps, one.steps);

  // Sampled, 2 samples per prompt: each sample draws from its own stream, so the rows are the same
  // whichever worker ran them.
  GenerateOptions s;
  s.max_new_tokens = 10;
  s.num_samples = 2;
  s.seed = 7;
  s.pad_id = 699;
  s.eos_ids = {5, 17, 300};
  s.row_workers = 2;
  GenerateResult split = generate(*model_, ids_, mask_, s);
  s.row_workers = 1;
  GenerateResult single = generate(*model_, ids_, mask_, s);
  EXPECT_TRUE(split.ids.equal(single.ids)) << split.ids << single.ids;
  EXPECT_TRUE(split.lengths.equal(single.lengths));

  // An error on a worker thread reaches the caller.
  o.row_workers = 2;
  o.stop_check = [](const std::vector<std::vector<int64_t>>&) { return std::vector<int64_t>{}; };
  EXPECT_THROW(generate(*model_, ids_, mask_, o), Error);
}

// Sampled at temperature 1.3 with EOS ids that end rows at different steps: 3 prompts x 4 samples.
GenerateOptions sampled_rows() {
  GenerateOptions o;
  o.max_new_tokens = 14;
  o.num_samples = 4;
  o.seed = 21;
  o.pad_id = 699;
  o.eos_ids = {5, 17, 300, 41, 88};
  o.sampling.temperature = 1.3;
  o.check_every = 3;
  return o;
}

void expect_same_rows(const GenerateResult& got, const GenerateResult& want, const std::string& what) {
  EXPECT_TRUE(got.ids.equal(want.ids)) << what << "\n" << got.ids << "\n" << want.ids;
  EXPECT_TRUE(got.lengths.equal(want.lengths)) << what;
  EXPECT_EQ(got.finish, want.finish) << what;
  EXPECT_LT(max_abs_diff(got.logprobs, want.logprobs), 1e-4) << what;
}

TEST_F(Sampling, ContinuousBatchingGivesEverySampleItsOwnTokens) {
  // With fewer slots than rows, finished rows hand their slots to the next samples (mid-flight
  // prefills, a prompt's samples split over refills); the rows are those of the no-cache reference
  // and of one batch holding every row, greedy and sampled, with any number of workers.
  for (bool greedy : {true, false}) {
    GenerateOptions o = sampled_rows();
    o.sampling.greedy = greedy;
    // EOS ids taken from the rows themselves, so that rows end at different steps.
    const GenerateResult unended = generate_reference(*model_, ids_, mask_, o);
    o.eos_ids = {unended.ids[0][2].item<int64_t>(), unended.ids[5][6].item<int64_t>(),
                 unended.ids[10][4].item<int64_t>()};
    const GenerateResult want = generate_reference(*model_, ids_, mask_, o);
    ASSERT_LT(want.lengths.min().item<int64_t>(), 14) << "no row ended early: refills untested";
    for (int64_t rows : {0, 1, 3, 5, 12}) {
      for (int64_t workers : {1, 2}) {
        o.max_active_rows = rows;
        o.row_workers = workers;
        expect_same_rows(generate(*model_, ids_, mask_, o), want,
                         (greedy ? "greedy" : "sampled") + std::string(", rows ") + std::to_string(rows) +
                             ", workers " + std::to_string(workers));
      }
    }
  }
}

TEST_F(Sampling, StaticShapesGiveTheEagerTokens) {
  // The shapes a CUDA graph captures: rows padded to a power of two with idle rows when the batch is
  // compacted, the attention width rounded up to kDecodeWidthStep columns (masked). 80 new tokens make
  // the cache 87 columns wide, so steps run at widths 64 and 87; EOS ids taken from the rows end them
  // at different steps, so 12 rows compact to 8, 4, 2 (padded) as they finish.
  for (bool greedy : {true, false}) {
    GenerateOptions o = sampled_rows();
    o.max_new_tokens = 80;
    o.sampling.greedy = greedy;
    o.eos_ids.clear();
    const at::Tensor unended = generate(*model_, ids_, mask_, o).ids.contiguous();
    auto U = unended.accessor<int64_t, 2>();
    // The EOS id: a token that ends a row early and the last row late (each row's first occurrence).
    int64_t best = -1, best_span = 0;
    for (int64_t v = 0; v < 700; ++v) {
      std::vector<int64_t> end(static_cast<size_t>(U.size(0)), 80);
      for (int64_t r = 0; r < U.size(0); ++r)
        for (int64_t t = 79; t >= 0; --t)
          if (U[r][t] == v) end[static_cast<size_t>(r)] = t;
      const auto [lo, hi] = std::minmax_element(end.begin(), end.end());
      if (*lo < 40 && *hi > kDecodeWidthStep && *hi - *lo > best_span) best = v, best_span = *hi - *lo;
    }
    ASSERT_GE(best, 0) << "no token ends one row early and another late";
    o.eos_ids = {best};
    const GenerateResult eager = generate(*model_, ids_, mask_, o);
    const at::Tensor lengths = eager.lengths;
    ASSERT_LT(lengths.min().item<int64_t>(), 40) << "no row ended early: compaction untested";
    ASSERT_GT(lengths.max().item<int64_t>(), kDecodeWidthStep) << "no step past the first width bucket";
    o.static_shapes = true;
    for (int64_t rows : {0, 5, 3}) {
      for (int64_t workers : {1, 2}) {
        o.max_active_rows = rows;
        o.row_workers = workers;
        const GenerateResult got = generate(*model_, ids_, mask_, o);
        EXPECT_EQ(got.graphs_captured, 0);  // the CPU runs the static shapes eagerly
        expect_same_rows(got, eager,
                         (greedy ? "greedy" : "sampled") + std::string(", static shapes, rows ") +
                             std::to_string(rows) + ", workers " + std::to_string(workers));
      }
    }
    o.cuda_graphs = true;  // on the CPU: the eager step, the same rows
    o.static_shapes = false;
    o.max_active_rows = 0;
    expect_same_rows(generate(*model_, ids_, mask_, o), eager, "cuda_graphs asked for on the CPU");
  }
}

TEST_F(Sampling, AMemoryBudgetBoundsTheRowsAtOnceNotTheirTokens) {
  // A budget that holds the call's fused weight copies and 5 rows (capacity: longest prompt +
  // max_new_tokens, fp32 cache) decodes 5 rows at once and gives every row the tokens it gets with every
  // row at once.
  GenerateOptions o = sampled_rows();
  const GenerateResult all = generate(*model_, ids_, mask_, o);
  EXPECT_EQ(all.rows_at_once, 12);
  const int64_t longest = mask_.sum(1).max().item<int64_t>();
  const DecodeRowBytes row = decode_row_bytes(model_->config(), longest + o.max_new_tokens, 4);
  const double fused = fused_weight_bytes(model_->config(), 4, false);
  ASSERT_TRUE(o.fuse_weights);
  o.memory_budget_bytes = fused + 5.5 * row.total();
  for (int64_t workers : {1, 2}) {
    o.row_workers = workers;
    const GenerateResult five = generate(*model_, ids_, mask_, o);
    EXPECT_EQ(five.rows_at_once, 5);
    expect_same_rows(five, all, "5 rows by memory, workers " + std::to_string(workers));
  }
  o.max_active_rows = 3;  // the tighter of the two bounds
  EXPECT_EQ(generate(*model_, ids_, mask_, o).rows_at_once, 3);
  o.max_active_rows = 0;
  o.fuse_weights = false;  // no copies: the same budget holds more rows
  EXPECT_GT(generate(*model_, ids_, mask_, o).rows_at_once, 5);
  o.fuse_weights = true;
  o.memory_budget_bytes = fused + 0.5 * row.total();  // not one row: a clear error, before any work
  try {
    generate(*model_, ids_, mask_, o);
    FAIL() << "a budget below one row was accepted";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("one decoding row of " +
                                               std::to_string(longest + o.max_new_tokens) + " tokens needs"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("rollout.memory_utilization"));
  }
}

TEST_F(Sampling, APromptGetsTheSameSamplesInAnyShareOfTheBatch) {
  // What ranks rely on: prompts 1-2 generated on their own, numbered from 1 (first_prompt), give
  // the rows they have in a call over all three prompts; numbered from 0 they get other streams.
  GenerateOptions o = sampled_rows();
  const GenerateResult all = generate(*model_, ids_, mask_, o);
  o.first_prompt = 1;
  o.max_active_rows = 3;
  const GenerateResult share = generate(*model_, ids_.narrow(0, 1, 2), mask_.narrow(0, 1, 2), o);
  const int64_t width = share.ids.size(1);
  EXPECT_TRUE(share.ids.equal(all.ids.narrow(0, 4, 8).narrow(1, 0, width))) << share.ids << all.ids;
  EXPECT_TRUE(share.lengths.equal(all.lengths.narrow(0, 4, 8)));
  o.first_prompt = 0;
  EXPECT_FALSE(generate(*model_, ids_.narrow(0, 1, 2), mask_.narrow(0, 1, 2), o).ids.equal(share.ids));
}

TEST_F(Sampling, ASampleHasTheSameBitsAloneAsInAnyBatch) {
  // A sample does not depend on the batch around it: generated alone (its prompt unpadded, one row at a
  // time) or among prompts of other lengths (padded to the longest, as one rank's batch is padded
  // otherwise than another's), all rows at once or one; in fp32 and under bf16 autocast, where a
  // near-tie flips a sampled token at the slightest rounding difference (before prompts started at
  // column 0 and the CPU's masked attention became batched matmuls, prompt 2's bf16 tokens differed).
  // Its tokens are the same; its log-probs too, up to the last bits of fp32, where MKL's sgemm takes
  // other kernels for a few rows than for many (on this project's CI machine the bf16 ones agree to the bit).
  for (bool bf16 : {false, true}) {
    AutocastGuard autocast(at::kCPU, bf16);
    GenerateOptions o = sampled_rows();
    o.max_new_tokens = 40;
    const int64_t n = o.num_samples;
    const GenerateResult all = generate(*model_, ids_, mask_, o);
    for (int64_t rows : {0, 1}) {
      o.max_active_rows = rows;
      for (int64_t p = 0; p < ids_.size(0); ++p) {
        const std::string what = std::string(bf16 ? "bf16" : "fp32") + ", prompt " + std::to_string(p) +
                                 ", rows at once " + std::to_string(rows);
        const int64_t len = mask_[p].sum().item<int64_t>();
        o.first_prompt = static_cast<uint64_t>(p);
        const GenerateResult alone =
            generate(*model_, ids_[p].narrow(0, ids_.size(1) - len, len).unsqueeze(0),
                     torch::ones({1, len}, torch::kLong), o);
        const int64_t width = alone.ids.size(1);
        EXPECT_TRUE(alone.ids.equal(all.ids.narrow(0, p * n, n).narrow(1, 0, width))) << what;
        EXPECT_LT(max_abs_diff(alone.logprobs, all.logprobs.narrow(0, p * n, n).narrow(1, 0, width)), 1e-5)
            << what;
        EXPECT_TRUE(alone.lengths.equal(all.lengths.narrow(0, p * n, n))) << what;
      }
    }
  }
}

TEST_F(Sampling, SharedPrefillEqualsSeparatePrefills) {
  // n samples of a prompt share its prefill (copied into each sample's slot); the same prompt given
  // n times is prefilled n times. Greedy, the rows and their log-probs agree.
  GenerateOptions o;
  o.max_new_tokens = 12;
  o.pad_id = 699;
  o.sampling.greedy = true;
  o.num_samples = 3;
  o.max_active_rows = 2;
  const GenerateResult shared = generate(*model_, ids_, mask_, o);
  o.num_samples = 1;
  const GenerateResult separate =
      generate(*model_, ids_.repeat_interleave(3, 0), mask_.repeat_interleave(3, 0), o);
  expect_same_rows(shared, separate, "shared vs separate prefill");
}

TEST(KeyedSampling, NoiseIsUniformAndDependsOnlyOnItsKeyAndStep) {
  at::Tensor keys =
      torch::tensor({sample_key(1, 0, 0), sample_key(1, 0, 1), sample_key(1, 1, 0), sample_key(2, 0, 0)});
  at::Tensor steps = torch::tensor({0, 0, 0, 0}, torch::kLong);
  at::Tensor u = keyed_uniform(keys, steps, 20000);  // (4, 20000)
  EXPECT_GT(u.min().item<float>(), 0.0f);
  EXPECT_LT(u.max().item<float>(), 1.0f);
  EXPECT_NEAR(u.mean().item<double>(), 0.5, 0.005);
  EXPECT_NEAR(u.var().item<double>(), 1.0 / 12, 0.002);
  // Rows with different keys, or the same key at another step, are unrelated streams.
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t b = a + 1; b < 4; ++b) {
      const double corr = at::corrcoef(at::stack({u[a], u[b]})).index({0, 1}).item<double>();
      EXPECT_LT(std::abs(corr), 0.03) << a << " " << b;
    }
  at::Tensor next = keyed_uniform(keys, steps + 1, 20000);
  EXPECT_FALSE(next[0].equal(u[0]));
  // A row's noise is the same alone or in any batch.
  EXPECT_TRUE(keyed_uniform(keys.narrow(0, 2, 1), steps.narrow(0, 2, 1), 20000)[0].equal(u[2]));
  // Sampling from a peaked distribution follows it: token 3 with probability ~0.9.
  at::Tensor logits = torch::zeros({4000, 10});
  logits.select(1, 3).fill_(std::log(0.9 * 9 / 0.1));
  at::Tensor many = torch::arange(4000, torch::kLong).mul_(7919);
  auto [tok, lp] = sample_tokens(logits, SamplingParams{}, many, torch::zeros({4000}, torch::kLong));
  EXPECT_NEAR(tok.eq(3).to(torch::kFloat).mean().item<double>(), 0.9, 0.02);
}

TEST_F(Sampling, BadOptionsAreRefused) {
  GenerateOptions o;
  o.max_new_tokens = 0;
  EXPECT_THROW(generate(*model_, ids_, mask_, o), ConfigError);
  o.max_new_tokens = 300;  // 7 + 300 > 256 positions
  EXPECT_THROW(generate(*model_, ids_, mask_, o), ConfigError);
  o.max_new_tokens = 4;
  o.sampling.temperature = 0;
  EXPECT_THROW(generate(*model_, ids_, mask_, o), ConfigError);
  o.sampling.temperature = 1;
  o.max_active_rows = -1;
  EXPECT_THROW(generate(*model_, ids_, mask_, o), ConfigError);
  o.max_active_rows = 0;
  EXPECT_THROW(generate(*model_, std::vector<std::vector<int64_t>>{{1, 2}, {}}, o), Error);
  at::Tensor right_padded = mask_.flip({1});
  EXPECT_THROW(generate(*model_, ids_, right_padded, o), Error);
}

}  // namespace
}  // namespace tinyzero
