// Offload on the device (critic.offload / reference.offload, src/trainer/train_context.cpp): a model's
// weights, gradients and AdamW state, or under ZeRO-3 its shards, leave the device while it is idle and
// come back unchanged.
//  - DataParallelOptimizer::move_to: after one AdamW step, everything moves to the host (the device's
//    allocated bytes fall by at least their size), comes back, and a second step gives the same bytes
//    as a twin that never moved.
//  - ParameterShards::to (stage 3, as the reference and critic are sharded): the shards move to the
//    host, and back; a forward then gathers the same weights and gives the same logits.
// A world of one process: ParameterShards runs its collectives as copies, so this needs one GPU.
//
// Device under test: cuda:0; the test skips without a usable CUDA device. With
// TINYZERO_GPU_TESTS_DEVICE=cpu the CPU stands in (the moves are then no-ops and the memory checks are
// left out: a rehearsal of the test logic only; see gpu_device.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gpu/gpu/gpu_device.h"
#include "tinyzero/core/config.h"
#include "tinyzero/core/errors.h"
#include "tinyzero/dist/dist_env.h"
#include "tinyzero/dist/process_group.h"
#include "tinyzero/model/memory_meter.h"
#include "tinyzero/model/model_config.h"
#include "tinyzero/model/qwen2.h"
#include "trainer/data_parallel.h"
#include "trainer/parameter_shards.h"

namespace tinyzero {
namespace {

using testing_gpu::GpuTest;

CausalLM small_model(const c10::Device& device) {
  TransformerConfig c = load_transformer_config(std::string(TZ_SOURCE_DIR) + "/configs/tiny/model.json");
  c.num_hidden_layers = 3;
  torch::manual_seed(11);
  CausalLM model(c);
  model->to(device);
  return model;
}

std::vector<std::pair<std::string, at::Tensor>> params_of(CausalLM& model) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& item : model->named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

at::Tensor batch(int64_t vocab, const c10::Device& device) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  return at::randint(vocab, {2, 9}, gen, at::kLong).to(device);
}

class Offload : public GpuTest {
 protected:
  // Bytes the caching allocator has handed out on the device (0 in a rehearsal).
  int64_t allocated() const { return dut_.rehearsal ? 0 : static_cast<int64_t>(allocated_bytes(device())); }
  std::unique_ptr<ProcessGroup> pg_ = init_process_group(DistEnv{}, "gloo", c10::Device(c10::kCPU), 10);
};

TEST_F(Offload, WeightsGradientsAndAdamWStateLeaveTheDeviceAndComeBackUnchanged) {
  CausalLM moved = small_model(device()), twin = small_model(device());
  OptimConfig optim;
  optim.lr = 1e-2;
  DataParallelOptimizer a(params_of(moved), optim, *pg_, 0, 1 << 20),
      b(params_of(twin), optim, *pg_, 0, 1 << 20);
  const at::Tensor ids = batch(moved->config().vocab_size, device());
  auto step = [&](CausalLM& model, DataParallelOptimizer& opt) {
    opt.zero_grad();
    model->forward(ids).log_softmax(-1).mean().backward();
    opt.step(optim.lr);
  };
  step(moved, a), step(twin, b);
  // Weights + gradients (fp32) + two moments: four times the parameters' bytes at least.
  int64_t param_bytes = 0;
  for (const auto& [name, p] : a.params()) param_bytes += p.numel() * p.element_size();
  const int64_t before = allocated();
  a.move_to(c10::Device(c10::kCPU), /*with_state=*/true);
  for (const auto& [name, p] : a.params()) {
    EXPECT_TRUE(p.device().is_cpu()) << name;
    EXPECT_TRUE(p.grad().device().is_cpu()) << name;
  }
  if (!dut_.rehearsal) {
    EXPECT_GE(before - allocated(), 4 * param_bytes);
  }
  a.move_to(device(), /*with_state=*/true);
  EXPECT_EQ(allocated(), before);
  step(moved, a), step(twin, b);
  for (size_t k = 0; k < a.params().size(); ++k)
    EXPECT_TRUE(a.params()[k].second.equal(b.params()[k].second)) << a.params()[k].first;
}

TEST_F(Offload, ShardedWeightsLeaveTheDeviceAndGatherBackTheSame) {
  CausalLM model = small_model(device());
  const at::Tensor ids = batch(model->config().vocab_size, device());
  torch::NoGradGuard no_grad;
  const at::Tensor want = model->forward(ids);
  ParameterShards shards(params_of(model), *pg_, /*free_parameters=*/true);
  shards.shard_from_parameters();
  model->set_parameter_host(&shards);
  EXPECT_TRUE(model->forward(ids).equal(want));
  shards.release_all();
  const int64_t before = allocated();
  shards.to(c10::Device(c10::kCPU), /*gradients=*/false);
  EXPECT_TRUE(shards.device().is_cpu());
  int64_t shard_bytes = 0;
  for (const auto& [name, s] : shards.shards()) shard_bytes += s.numel() * s.element_size();
  if (!dut_.rehearsal) {
    EXPECT_GE(before - allocated(), shard_bytes);
  }
  shards.to(device(), /*gradients=*/false);
  EXPECT_EQ(shards.device(), device());
  EXPECT_TRUE(model->forward(ids).equal(want));
  // Moving while pinned whole would leave whole weights behind on the device: refused.
  shards.pin();
  EXPECT_THROW(shards.to(c10::Device(c10::kCPU), false), Error);
  shards.unpin();
}

}  // namespace
}  // namespace tinyzero
