// The device the GPU tests (tests/gpu/) run on: one rule for every test, and the skip reasons.
//
// Normally the device under test is cuda:0, and a test skips (GTEST_SKIP) when no CUDA device is
// usable, naming what is missing. Rehearsal: with TINYZERO_GPU_TESTS_DEVICE=cpu the device under test
// is the CPU (and the collective tests' ranks use Gloo on 2 CPU processes instead of NCCL on 2 GPUs),
// so that the tests' own logic and assertions run on a machine without a GPU. A rehearsal compares the
// CPU with itself: it proves the test code, not the CUDA paths. TINYZERO_GPU_TESTS_DEVICE=cuda (or
// unset) asks for CUDA; any other value is an error, so that a typo does not turn into a skip.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <c10/core/Device.h>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace tinyzero::testing_gpu {

constexpr const char* kDeviceEnv = "TINYZERO_GPU_TESTS_DEVICE";

struct DeviceUnderTest {
  c10::Device device{c10::kCPU};
  bool rehearsal = false;  // TINYZERO_GPU_TESTS_DEVICE=cpu: the CPU stands in for the GPU
  std::string missing;     // why there is nothing to test (the skip reason); empty when usable
  bool usable() const { return missing.empty(); }
  std::string name() const { return rehearsal ? "cpu (rehearsal)" : device.str(); }
};

// Whether LibTorch's CUDA library is in this process: without it (a CPU-only LibTorch, or a link that
// dropped it) torch::cuda reports no device even on a GPU machine.
inline bool libtorch_cuda_loaded() {
  void* handle = ::dlopen("libtorch_cuda.so", RTLD_NOW | RTLD_NOLOAD);
  if (handle != nullptr) ::dlclose(handle);
  return handle != nullptr;
}

inline std::string no_cuda_reason() {
  return std::string("no CUDA device visible (torch::cuda::is_available() is false; libtorch_cuda.so ") +
         (libtorch_cuda_loaded() ? "is loaded" : "is not loaded, so this build has no CUDA support") +
         "); set " + kDeviceEnv + "=cpu to rehearse these tests on the CPU";
}

// The rule: TINYZERO_GPU_TESTS_DEVICE=cpu -> the CPU; otherwise cuda:0 when a CUDA device is visible,
// else nothing (with the reason). Throws std::invalid_argument for any other value of the variable.
inline DeviceUnderTest device_under_test() {
  const char* env = std::getenv(kDeviceEnv);
  const std::string want = env != nullptr ? env : "";
  DeviceUnderTest d;
  if (want == "cpu") {
    d.rehearsal = true;
    return d;
  }
  if (!want.empty() && want != "cuda")
    throw std::invalid_argument(std::string(kDeviceEnv) + "=" + want + ": expected cpu, cuda or unset");
  if (!torch::cuda::is_available()) {
    d.missing = no_cuda_reason();
    return d;
  }
  d.device = c10::Device(c10::kCUDA, 0);
  return d;
}

// Base of the single-device tests: SetUp() skips the test when there is no device under test.
class GpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dut_ = device_under_test();
    if (!dut_.usable()) GTEST_SKIP() << dut_.missing;
  }
  const c10::Device& device() const { return dut_.device; }
  DeviceUnderTest dut_;
};

}  // namespace tinyzero::testing_gpu
