// The model on the GPU against the same model on the CPU (and Hugging Face's reference outputs in
// tests/data/qwen2-tiny): fp32 and bf16-autocast logits, greedy KV-cache generation token for token,
// reproducible seeded sampling, and a checkpoint written from GPU tensors (fp32 and bf16) that reads
// back bit for bit.
//
// Device under test: cuda:0; every test skips without a usable CUDA device. With
// TINYZERO_GPU_TESTS_DEVICE=cpu the CPU stands in for the GPU (a rehearsal of the test logic on a
// machine without one; see gpu_device.h).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/native/transformers/sdp_utils_cpp.h>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gpu/gpu/gpu_device.h"
#include "tinyzero/io/checkpoint.h"
#include "tinyzero/model/generator.h"
#include "tinyzero/model/qwen2.h"
#include "tinyzero/model/weights.h"
#include "unit/model/fixture.h"

namespace tinyzero {
namespace {

using namespace testing_fixture;
using testing_gpu::device_under_test;
using testing_gpu::GpuTest;

// fp32 on both sides: only the order of additions differs (cuBLAS / SDPA kernels against oneDNN), a
// few ulps of logits up to ~22; the fixture's README gives the same bound against Hugging Face.
constexpr double kFp32LogitsTol = 1e-4;
// Log-probs of greedy tokens, fp32 on both sides: as the logits.
constexpr double kFp32LogProbTol = 1e-4;
// bf16 autocast against CPU fp32, on logits up to ~22 in magnitude: bf16 keeps 8 significant bits, so
// rounding the logits alone costs up to 2^-9 * 22 = 0.04, and every matmul input of the 3 layers and
// the head is rounded too. Measured with CPU autocast (oneDNN bf16): max 0.22, mean 0.035.
constexpr double kBf16LogitsMaxAtol = 0.5;
// The mean |diff| over all logits, against a systematic error that stays under the max bound.
constexpr double kBf16LogitsMeanAtol = 0.08;
// Where fp32's top-1 leads top-2 by more than twice the bf16 bound, bf16 cannot change the argmax;
// overall (near-ties included: the fixture has top-1/top-2 margins down to 0.02) most positions agree.
constexpr double kMinArgmaxAgreement = 0.8;

// Same dtype, same shape, same bytes (NaN payloads and signed zeros included).
::testing::AssertionResult bit_identical(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type())
    return ::testing::AssertionFailure() << "dtype " << a.scalar_type() << " vs " << b.scalar_type();
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << "shape " << a.sizes() << " vs " << b.sizes();
  at::Tensor x = a.detach().cpu().contiguous(), y = b.detach().cpu().contiguous();
  if (std::memcmp(x.data_ptr(), y.data_ptr(), x.nbytes()) != 0) {
    const double diff = (x.to(at::kDouble) - y.to(at::kDouble)).abs().max().item<double>();
    return ::testing::AssertionFailure() << "bytes differ (max abs diff " << diff << ")";
  }
  return ::testing::AssertionSuccess();
}

// A fresh directory path under the test temp dir (removed first if it exists).
std::string fresh_dir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/tz_gpu_" + name + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

// The runs below need IEEE fp32 matmuls on the GPU; TORCH_ALLOW_TF32_CUBLAS_OVERRIDE=1 would turn on
// TF32 (10-bit mantissa) and void the fp32 bounds.
void require_ieee_fp32_matmuls(const c10::Device& device) {
  if (!device.is_cuda()) return;
  ASSERT_EQ(at::globalContext().float32MatmulPrecision(), at::Float32MatmulPrecision::HIGHEST)
      << "TF32 matmuls are on (TORCH_ALLOW_TF32_CUBLAS_OVERRIDE?); the fp32 bounds assume IEEE fp32";
}

// ---------------------------------------------------------------------------------------------------
// A GPU machine whose GPU tests all skip is a silent failure: where the kernel shows an NVIDIA device,
// LibTorch must see it.
TEST(GpuEnvironment, CudaIsVisibleWhereTheMachineHasAnNvidiaDevice) {
  if (device_under_test().rehearsal) GTEST_SKIP() << "rehearsal on the CPU (TINYZERO_GPU_TESTS_DEVICE=cpu)";
  if (!std::filesystem::exists("/dev/nvidia0")) GTEST_SKIP() << "no /dev/nvidia0: not a GPU machine";
  EXPECT_TRUE(torch::cuda::is_available())
      << "/dev/nvidia0 exists but " << testing_gpu::no_cuda_reason()
      << "; the CUDA driver may be older than this LibTorch's CUDA runtime, or CUDA_VISIBLE_DEVICES hides it";
}

// ---------------------------------------------------------------------------------------------------
class CudaLogits : public GpuTest, public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    ref_ = reference(GetParam());
    ids_ = to_tensor(ref_["input_ids"], at::kLong);        // (2, 12)
    mask_ = to_tensor(ref_["attention_mask"], at::kLong);  // (2, 12), row 2 left-padded by 3
    real_ = mask_.to(at::kBool);
    cpu_ = load_causal_lm(fixture_dir(GetParam()), at::kFloat);  // bf16 files are upcast: exact
    gpu_ = load_causal_lm(fixture_dir(GetParam()), at::kFloat, device());
    cpu_->eval();
    gpu_->eval();
    ASSERT_EQ(gpu_->device(), device());
  }
  // Logits (2, 12, 700) fp32 of `model` on its own device, copied to the CPU.
  at::Tensor logits_on(CausalLM& model) {
    torch::NoGradGuard no_grad;
    const c10::Device dev = model->device();
    at::Tensor logits = model->forward(ids_.to(dev), mask_.to(dev));
    EXPECT_EQ(logits.device(), dev);
    EXPECT_EQ(logits.scalar_type(), at::kFloat);
    return logits.cpu();
  }
  nlohmann::json ref_;
  at::Tensor ids_, mask_, real_;
  CausalLM cpu_{nullptr}, gpu_{nullptr};
};

TEST_P(CudaLogits, Fp32EqualsCpuAndHuggingFace) {
  ASSERT_NO_FATAL_FAILURE(require_ieee_fp32_matmuls(device()));
  const at::Tensor on_cpu = logits_on(cpu_), on_gpu = logits_on(gpu_);
  ASSERT_EQ(on_gpu.sizes(), (std::vector<int64_t>{2, 12, 700}));
  const at::Tensor hf = to_tensor(ref_["logits"], at::kFloat);
  const double vs_cpu = max_abs_diff(on_gpu.index({real_}), on_cpu.index({real_}));
  const double vs_hf = max_abs_diff(on_gpu.index({real_}), hf.index({real_}));
  EXPECT_LE(vs_cpu, kFp32LogitsTol);
  EXPECT_LE(vs_hf, kFp32LogitsTol);
  std::printf("%s %s fp32 logits: max |gpu - cpu| %.3g, max |gpu - hf| %.3g (bound %.0e)\n",
              dut_.name().c_str(), GetParam().c_str(), vs_cpu, vs_hf, kFp32LogitsTol);
}

TEST_P(CudaLogits, Bf16AutocastStaysNearCpuFp32) {
  const at::Tensor fp32 = logits_on(cpu_).index({real_});  // (21, 700): the real positions
  at::Tensor bf16;
  {
    AutocastGuard autocast(device(), true);
    ASSERT_TRUE(autocast_enabled(device()));
    bf16 = logits_on(gpu_).index({real_});
  }
  EXPECT_FALSE(autocast_enabled(device()));
  const double diff = max_abs_diff(bf16, fp32);
  const double mean_diff = (bf16 - fp32).abs().mean().item<double>();
  EXPECT_GT(diff, 0.0) << "no bf16 rounding at all: autocast did not run";
  EXPECT_LE(diff, kBf16LogitsMaxAtol);
  EXPECT_LE(mean_diff, kBf16LogitsMeanAtol);

  // Argmax: must agree wherever fp32's top-1 leads by more than twice the bound; mostly elsewhere.
  const auto top2 = fp32.topk(2, -1);
  const at::Tensor margin = std::get<0>(top2).select(1, 0) - std::get<0>(top2).select(1, 1);  // (21)
  const at::Tensor agree = bf16.argmax(-1).eq(std::get<1>(top2).select(1, 0));                // (21)
  const at::Tensor safe = margin > 2 * kBf16LogitsMaxAtol;
  EXPECT_TRUE(agree.index({safe}).all().item<bool>())
      << "argmax differs at a position whose fp32 margin exceeds " << 2 * kBf16LogitsMaxAtol << "\n"
      << at::stack({margin, agree.to(at::kFloat)}, 1);
  const double agreement = agree.to(at::kDouble).mean().item<double>();
  EXPECT_GE(agreement, kMinArgmaxAgreement);
  std::printf(
      "%s %s bf16 autocast logits: |bf16 - cpu fp32| max %.3g (bound %.2g), mean %.3g (bound %.2g); argmax "
      "agrees on %.0f%% of %lld positions\n",
      dut_.name().c_str(), GetParam().c_str(), diff, kBf16LogitsMaxAtol, mean_diff, kBf16LogitsMeanAtol,
      100 * agreement, static_cast<long long>(agree.numel()));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaLogits, ::testing::Values("tied-f32", "untied-bf16"),
                         variant_test_name);

// The premise of the model's attention on whole sequences (training, log-prob passes): plain causal
// attention with grouped heads in bf16, at 3B's head layout (16 query heads over 2 KV heads, D = 128),
// has a fused SDPA kernel, so K and V are not copied per query head. (Masked and fp32 cases take
// grouped_attention instead; the logits tests above run both.)
class CudaAttention : public GpuTest {};

TEST_F(CudaAttention, CausalGroupedHeadsInBf16TakeAFusedKernel) {
  const auto bf16 = at::TensorOptions().dtype(at::kBFloat16).device(device());
  at::Tensor q = at::randn({2, 16, 256, 128}, bf16), k = at::randn({2, 2, 256, 128}, bf16),
             v = at::randn({2, 2, 256, 128}, bf16);
  const int64_t backend = at::_fused_sdp_choice(q, k, v, std::nullopt, 0.0, /*is_causal=*/true, std::nullopt,
                                                /*enable_gqa=*/true);
  std::printf("%s SDPA backend for causal bf16 with grouped heads: %lld (0 = math)\n", dut_.name().c_str(),
              static_cast<long long>(backend));
  EXPECT_NE(backend, static_cast<int64_t>(sdp::SDPBackend::math));
  // And its gradients flow through it.
  at::Tensor gq = q.clone().requires_grad_(true);
  at::scaled_dot_product_attention(gq, k, v, std::nullopt, 0.0, true, std::nullopt, true).sum().backward();
  EXPECT_TRUE(gq.grad().isfinite().all().item<bool>());
}

// ---------------------------------------------------------------------------------------------------
class CudaGreedy : public CudaLogits {};

// Greedy decoding with the KV cache: the same token ids (and log-probs within fp32 rounding) on the
// device as on the CPU, and both equal Hugging Face's; EOS handling and compaction included.
TEST_P(CudaGreedy, KvCacheIdsEqualCpuAndHuggingFace) {
  ASSERT_NO_FATAL_FAILURE(require_ieee_fp32_matmuls(device()));
  for (std::string name : {"seqA", "seqB_unpadded", "batch_left_padded", "batch_left_padded_with_eos"}) {
    SCOPED_TRACE(name);
    const nlohmann::json& c = ref_["generation"][name];
    GenerateOptions o;
    o.sampling.greedy = true;
    o.max_new_tokens = 20;
    o.pad_id = ref_["pad_token_id"].get<int64_t>();
    if (name == "batch_left_padded_with_eos") {
      o.eos_ids = {c["eos_token_id"].get<int64_t>()};
      o.pad_id = c["pad_token_id"].get<int64_t>();
    }
    o.check_every = 3;  // several host checks; a finished row is compacted away at one of them
    const at::Tensor ids = to_tensor(c["input_ids"], at::kLong),
                     mask = to_tensor(c["attention_mask"], at::kLong);
    GenerateResult on_cpu = generate(*cpu_, ids, mask, o);
    GenerateResult on_gpu = generate(*gpu_, ids.to(device()), mask.to(device()), o);
    ASSERT_EQ(on_gpu.ids.device(), device());
    const at::Tensor gpu_ids = on_gpu.ids.cpu();  // (rows, 20)
    EXPECT_TRUE(gpu_ids.equal(on_cpu.ids)) << "gpu\n" << gpu_ids << "\ncpu\n" << on_cpu.ids;
    EXPECT_TRUE(gpu_ids.equal(to_tensor(c["new_ids"], at::kLong))) << gpu_ids;
    EXPECT_TRUE(on_gpu.lengths.cpu().equal(on_cpu.lengths));
    EXPECT_EQ(on_gpu.finish, on_cpu.finish);
    EXPECT_LE(max_abs_diff(on_gpu.logprobs.cpu(), on_cpu.logprobs), kFp32LogProbTol);
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaGreedy, ::testing::Values("tied-f32", "untied-bf16"),
                         variant_test_name);

// ---------------------------------------------------------------------------------------------------
class CudaSampling : public GpuTest {
 protected:
  void SetUp() override {
    GpuTest::SetUp();
    if (IsSkipped()) return;
    model_ = load_causal_lm(fixture_dir("tied-f32"), at::kFloat, device());
    model_->eval();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    ids_ = at::randint(0, 699, {3, 7}, gen, at::kLong);  // (3, 7)
    mask_ = at::ones({3, 7}, at::kLong);
    mask_.index_put_({1, torch::indexing::Slice(0, 2)}, 0);
    mask_.index_put_({2, torch::indexing::Slice(0, 5)}, 0);
    ids_.masked_fill_(mask_ == 0, 699);
    ids_ = ids_.to(device());
    mask_ = mask_.to(device());
  }
  GenerateResult sample(uint64_t seed, CausalLMImpl* on = nullptr) {
    GenerateOptions o;
    o.max_new_tokens = 16;
    o.num_samples = 2;
    o.seed = seed;
    o.eos_ids = {5, 17, 300};  // some rows end early: refills and compaction run too
    o.max_active_rows = 4;
    o.pad_id = 699;
    o.check_every = 4;
    o.sampling.temperature = 1.0;
    return on ? generate(*on, ids_.cpu(), mask_.cpu(), o) : generate(*model_, ids_, mask_, o);
  }
  CausalLM model_{nullptr};
  at::Tensor ids_, mask_;
};

// generate() samples from keyed streams of its own: the same seed gives the same tokens (on the CPU
// too), another seed other tokens, and the global generator does not move.
TEST_F(CudaSampling, SameSeedSameTokensOtherSeedOtherTokens) {
  GenerateResult a = sample(1234), b = sample(1234), c = sample(99);
  ASSERT_EQ(a.ids.device(), device());
  ASSERT_EQ(a.ids.size(0), 6);  // 3 prompts x 2 samples
  EXPECT_TRUE(a.ids.equal(b.ids)) << a.ids << b.ids;
  EXPECT_TRUE(a.logprobs.equal(b.logprobs));
  EXPECT_TRUE(a.lengths.equal(b.lengths));
  EXPECT_FALSE(a.ids.equal(c.ids)) << "seeds 1234 and 99 gave the same samples\n" << a.ids;
  for (const GenerateResult* r : {&a, &c}) {
    EXPECT_GE(r->ids.min().item<int64_t>(), 0);
    EXPECT_LT(r->ids.max().item<int64_t>(), 700);
    EXPECT_TRUE(r->logprobs.isfinite().all().item<bool>());
    EXPECT_LE(r->logprobs.max().item<float>(), 0.0f);
  }
  // Each sample's stream is keyed by (seed, prompt, sample), not drawn from a device generator: the
  // CPU gives the same tokens (fp32 logits equal to rounding; a near-tie could flip one).
  CausalLM cpu = load_causal_lm(fixture_dir("tied-f32"), at::kFloat);
  cpu->eval();
  EXPECT_TRUE(sample(1234, cpu.get()).ids.equal(a.ids.cpu())) << sample(1234, cpu.get()).ids << a.ids;
  // Sampling neither drew from nor reseeded the global generator of the device.
  torch::manual_seed(7);
  const at::Tensor reference_draw = torch::rand({8}, at::TensorOptions().device(device()));
  torch::manual_seed(7);
  sample(1234);
  EXPECT_TRUE(torch::rand({8}, at::TensorOptions().device(device())).equal(reference_draw));
}

// The decode step captured as CUDA graphs (one per rows x width shape) and replayed gives the tokens of
// the eager step, greedy and sampled, with refills and compaction; 70 new tokens take the attention
// past one width bucket. In fp32 the eager step is the dynamic-shape one: padding rows and masked
// columns change nothing. Under bf16 autocast a wider attention rounds differently (near-ties of this
// random model's flat logits then flip), so there the eager step runs the same static shapes, and the
// graphs must replay it exactly. (Rehearsed on the CPU, no graph is captured: the static shapes run
// eagerly.)
TEST_F(CudaSampling, CudaGraphsGiveTheEagerTokens) {
  for (bool autocast : {false, true}) {
    for (bool greedy : {true, false}) {
      SCOPED_TRACE(std::string(autocast ? "bf16 autocast" : "fp32") + (greedy ? ", greedy" : ", sampled"));
      AutocastGuard guard(device(), autocast);
      GenerateOptions o;
      o.max_new_tokens = 70;
      o.num_samples = 2;
      o.seed = 5;
      o.eos_ids = {5, 17, 300};
      o.max_active_rows = 4;
      o.pad_id = 699;
      o.check_every = 4;
      o.sampling.greedy = greedy;
      o.static_shapes = autocast;
      const GenerateResult eager = generate(*model_, ids_, mask_, o);
      o.cuda_graphs = true;
      o.static_shapes = true;  // what graphs imply on CUDA; what the rehearsal runs on the CPU
      const GenerateResult graphs = generate(*model_, ids_, mask_, o);
      EXPECT_TRUE(graphs.ids.equal(eager.ids)) << "graphs\n" << graphs.ids << "\neager\n" << eager.ids;
      EXPECT_TRUE(graphs.lengths.equal(eager.lengths));
      EXPECT_EQ(graphs.finish, eager.finish);
      EXPECT_LE(max_abs_diff(graphs.logprobs.cpu(), eager.logprobs.cpu()), 1e-3);
      if (device().is_cuda())
        EXPECT_GE(graphs.graphs_captured, 2) << "the steps were not captured";
      else
        EXPECT_EQ(graphs.graphs_captured, 0);
      EXPECT_GT(eager.lengths.max().item<int64_t>(), kDecodeWidthStep - 7) << "one width bucket only";
    }
  }
}

// ---------------------------------------------------------------------------------------------------
class CudaCheckpoint : public GpuTest {};

// A model on the device with mixed fp32 / bf16 parameters, written by the HF checkpoint writer with
// each tensor in its own dtype: the file holds exactly the device tensors' bytes, and loading it back
// onto the device gives the same values.
TEST_F(CudaCheckpoint, MixedDtypesWrittenFromTheDeviceReadBackBitIdentical) {
  CausalLM model = load_causal_lm(fixture_dir("untied-bf16"), at::kFloat, device());
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      if (p.value().dim() == 2) p.value().set_data(p.value().to(at::kBFloat16));  // matrices bf16
    }
  }
  std::vector<std::pair<std::string, at::Tensor>> originals;
  int bf16 = 0, fp32 = 0;
  for (const auto& p : model->named_parameters()) {
    ASSERT_EQ(p.value().device(), device()) << p.key();
    originals.emplace_back(p.key(), p.value().detach().clone());
    (p.value().scalar_type() == at::kBFloat16 ? bf16 : fp32)++;
  }
  ASSERT_GT(bf16, 0);
  ASSERT_GT(fp32, 0);

  HfCheckpoint ckpt = make_hf_checkpoint(*model, at::kBFloat16);
  ckpt.float_dtype = c10::ScalarType::Undefined;  // each tensor keeps its dtype
  const std::string dir = fresh_dir("mixed");
  save_hf_checkpoint(dir, ckpt);

  HfWeights file = HfWeights::open(dir);
  EXPECT_EQ(file.names().size(), originals.size());
  for (const auto& [name, original] : originals) {
    ASSERT_TRUE(file.contains(name)) << name;
    EXPECT_TRUE(bit_identical(file.tensor(name), original)) << name;
  }
  // Loaded back onto the device in fp32: bf16 -> fp32 is exact, so the values are the originals'.
  CausalLM back = load_causal_lm(dir, at::kFloat, device());
  auto params = back->named_parameters();
  for (const auto& [name, original] : originals) {
    ASSERT_EQ(params[name].device(), device()) << name;
    EXPECT_TRUE(bit_identical(params[name], original.to(at::kFloat))) << name;
  }
  std::filesystem::remove_all(dir);
}

// save_causal_lm from an fp32 model on the device, in fp32 and in bf16 (converted on the device while
// writing): loaded back onto the device, fp32 is the model bit for bit (same logits), and bf16 equals
// the CPU's round-to-nearest-even conversion of the same weights.
TEST_F(CudaCheckpoint, SaveCausalLmFromTheDeviceRoundTripsInFp32AndBf16) {
  CausalLM model = load_causal_lm(fixture_dir("tied-f32"), at::kFloat, device());
  model->eval();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    const std::string dir = fresh_dir(dtype_name(dtype));
    save_causal_lm(*model, dir, dtype);
    EXPECT_FALSE(HfWeights::open(dir).contains("lm_head.weight"));  // tied: the head is not stored
    CausalLM back = load_causal_lm(dir, dtype, device());
    EXPECT_EQ(back->config().torch_dtype, dtype_name(dtype));
    auto params = back->named_parameters();
    for (const auto& p : model->named_parameters()) {
      ASSERT_EQ(params[p.key()].device(), device()) << p.key();
      EXPECT_TRUE(bit_identical(params[p.key()], p.value().cpu().to(dtype))) << p.key();
    }
    if (dtype == at::kFloat) {
      torch::NoGradGuard no_grad;
      const at::Tensor ids =
          at::randint(0, 700, {2, 9}, at::TensorOptions().dtype(at::kLong).device(device()));
      EXPECT_TRUE(bit_identical(back->forward(ids), model->forward(ids)));
    }
    std::filesystem::remove_all(dir);
  }
}

}  // namespace
}  // namespace tinyzero
