// ZeRO-3 parameter sharding on 2 real ranks over Gloo (scripts/launch-local.sh re-runs this binary with
// TZ_DIST_WORKER=1 and --gtest_filter=ShardsWorker.*). Each rank holds a small random model, sharded; an
// unsharded copy of the same model is the reference every check compares with:
//  - between uses no parameter holds any data, and each rank's shards hold half the elements (padded);
//  - a forward through the sharded model gives the unsharded logits, and afterwards the decoder layers
//    are freed again (the root stays gathered until release_all());
//  - a backward over each rank's own batch leaves, after finish_gradients(), each rank's chunk of the sum
//    of both ranks' gradients, which the reference computes over both batches itself.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>

#include "support/tiny_run.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/dist/process_group.h"
#include "tinyzero/model/model_config.h"
#include "tinyzero/model/qwen2.h"
#include "trainer/parameter_shards.h"

namespace tinyzero {
namespace {

bool is_worker() { return std::getenv("TZ_DIST_WORKER") != nullptr; }

CausalLM small_model() {
  TransformerConfig c = load_transformer_config(std::string(TZ_SOURCE_DIR) + "/configs/tiny/model.json");
  c.num_hidden_layers = 3;
  torch::manual_seed(7);  // the same weights on every rank
  return CausalLM(c);
}

// Rank r's batch: ids (2, 9) from a generator seeded by r.
at::Tensor batch_of(int rank, int64_t vocab) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(100 + rank);
  return at::randint(vocab, {2, 9}, gen, at::kLong);
}

at::Tensor loss_of(CausalLMImpl& model, const at::Tensor& ids) {
  return model.forward(ids).log_softmax(-1).mean();
}

TEST(ShardsWorker, Stage3) {
  if (!is_worker()) GTEST_SKIP() << "a rank of ParameterShards.TwoRanks; runs only in a child process";
  auto pg = init_process_group(detect_dist_env(), "gloo", c10::Device(c10::kCPU), 20);
  const int rank = pg->rank(), world = pg->world_size();
  ASSERT_EQ(world, 2);
  CausalLM reference = small_model(), model = small_model();
  const int64_t vocab = model->config().vocab_size, layers = model->config().num_hidden_layers;
  std::vector<std::pair<std::string, at::Tensor>> params;
  for (auto& item : model->named_parameters()) params.emplace_back(item.key(), item.value());
  ParameterShards shards(params, *pg, /*free_parameters=*/true);
  shards.shard_from_parameters();
  model->set_parameter_host(&shards);
  ASSERT_EQ(shards.units(), layers + 1);
  for (size_t k = 0; k < params.size(); ++k) {
    EXPECT_EQ(params[k].second.numel(), 0) << params[k].first;
    EXPECT_EQ(shards.shards()[k].second.numel(), (reference->named_parameters()[k].value().numel() + 1) / 2);
  }

  // Forward without gradients.
  {
    torch::NoGradGuard no_grad;
    at::Tensor ids = batch_of(rank, vocab);
    EXPECT_TRUE(at::allclose(model->forward(ids), reference->forward(ids), 1e-5, 1e-6));
  }
  for (auto& [name, p] : params) {
    const bool root = name.find("layers.") == std::string::npos;
    EXPECT_EQ(p.numel() > 0, root) << name << " after a forward";
  }
  shards.release_all();
  for (auto& [name, p] : params) EXPECT_EQ(p.numel(), 0) << name << " after release_all";

  // Forward and backward with gradients (each layer re-run in backward), then the reduced chunks.
  model->train();
  loss_of(*model, batch_of(rank, vocab)).backward();
  shards.finish_gradients();
  for (int r = 0; r < world; ++r) loss_of(*reference, batch_of(r, vocab)).backward();
  auto ref_params = reference->named_parameters();
  for (size_t k = 0; k < params.size(); ++k) {
    at::Tensor want = shards.chunk_of(k, ref_params[k].value().grad());
    EXPECT_TRUE(at::allclose(shards.shards()[k].second.grad(), want, 1e-4, 1e-6))
        << params[k].first << " max diff "
        << (shards.shards()[k].second.grad() - want).abs().max().item<double>();
    EXPECT_FALSE(params[k].second.grad().defined()) << params[k].first << " kept its whole gradient";
  }
  // Pinned: every parameter whole and equal to the reference; unpinned: freed again.
  shards.pin();
  for (size_t k = 0; k < params.size(); ++k)
    EXPECT_TRUE(at::equal(params[k].second, ref_params[k].value())) << params[k].first;
  shards.unpin();
  for (auto& [name, p] : params) EXPECT_EQ(p.numel(), 0) << name << " after unpin";
  std::printf("worker rank %d ok\n", rank);
}

TEST(ParameterShards, TwoRanks) {
  if (is_worker()) GTEST_SKIP();
  const std::string self = "/proc/" + std::to_string(::getpid()) + "/exe";
  auto r = testing::run_shell("cd " + testing::shell_quote(TZ_SOURCE_DIR) +
                              " && TZ_DIST_WORKER=1 bash scripts/launch-local.sh 2 -- " +
                              testing::shell_quote(std::string(realpath(self.c_str(), nullptr))) +
                              " --gtest_filter=ShardsWorker.Stage3");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("[rank 0] worker rank 0 ok"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[rank 1] worker rank 1 ok"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace tinyzero
