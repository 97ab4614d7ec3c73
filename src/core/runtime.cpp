// Runtime set-up: logging level, threads, device, BLAS probe, version strings.
#include "tinyzero/core/runtime.h"

#include <torch/torch.h>
#include <torch/version.h>
#include "tinyzero/core/log.h"

#include <dlfcn.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <thread>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "tinyzero/build_info.h"
#include "tinyzero/core/errors.h"

namespace tinyzero {

void set_log_level(const std::string& level) {
  if (!logging::set_level(level))
    throw ConfigError("log level '" + level + "' is unknown; use trace, debug, info, warn or error");
}

int configure_threads(int requested) {
  int threads = requested;
  if (threads <= 0) {
    // OMP_NUM_THREADS, when set, is the user's (or the test runner's) choice for "all cores".
    const char* env = std::getenv("OMP_NUM_THREADS");
    threads = env ? std::atoi(env) : 0;
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  torch::set_num_threads(threads);
  return torch::get_num_threads();
}

void keep_freed_memory() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return;
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // allocations up to 1 GiB come from the heap
  mallopt(M_TRIM_THRESHOLD, INT_MAX);  // and the heap's top is not trimmed after each free
#endif
}

std::string resolve_device(const std::string& requested) {
  const bool has_cuda = torch::cuda::is_available();
  if (requested == "auto") return has_cuda ? "cuda" : "cpu";
  if (requested == "cuda" && !has_cuda)
    throw Error(
        "trainer.device is cuda, but " +
        std::string(torch::cuda::device_count() == 0 ? "no CUDA device is visible" : "CUDA is unavailable") +
        " to this LibTorch build (" + torch_version() +
        "); use trainer.device=cpu, or build against a CUDA LibTorch (see README, 'On GPUs')");
  if (requested != "cpu" && requested != "cuda")
    throw ConfigError("device '" + requested + "' is unknown; use auto, cpu or cuda");
  return requested;
}

BlasProbe probe_blas() {
  torch::NoGradGuard no_grad;
  const int64_t n = 384;
  auto a = torch::randn({n, n});
  auto b = torch::randn({n, n});
  auto c = torch::matmul(a, b);  // warm-up
  const int reps = 8;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) c = torch::matmul(a, b);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BlasProbe probe;
  probe.gflops = 2.0 * n * n * n * reps / seconds / 1e9;
  // Reference BLAS measured ~5 GFLOP/s here and OpenBLAS 100+ on 2 cores; 15 separates them on any
  // machine that is not badly overloaded.
  probe.looks_reference = probe.gflops < 15.0;
  return probe;
}

namespace {

// The words of the first "flags" (x86) or "Features" (Arm) line of a /proc/cpuinfo. Every core lists the
// same set, so the first such line decides.
std::vector<std::string> cpu_flags(const std::string& cpuinfo) {
  std::istringstream in(cpuinfo);
  std::string line;
  std::vector<std::string> flags;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0 && line.rfind("Features", 0) != 0) continue;
    const size_t colon = line.find(':');
    std::istringstream words(colon == std::string::npos ? std::string() : line.substr(colon + 1));
    std::string w;
    while (words >> w) flags.push_back(w);
    break;
  }
  return flags;
}

bool has_any(const std::vector<std::string>& flags, std::initializer_list<const char*> wanted) {
  for (const std::string& f : flags)
    for (const char* w : wanted)
      if (f == w) return true;
  return false;
}

const std::string& proc_cpuinfo() {
  static const std::string text = [] {
    std::ifstream in("/proc/cpuinfo");
    std::ostringstream all;
    all << in.rdbuf();
    return all.str();
  }();
  return text;
}

}  // namespace

bool cpuinfo_has_native_bf16(const std::string& cpuinfo) {
  return has_any(cpu_flags(cpuinfo), {"avx512_bf16", "amx_bf16", "bf16"});
}

bool cpuinfo_prefers_bf16(const std::string& cpuinfo) {
  return has_any(cpu_flags(cpuinfo), {"amx_bf16", "bf16"});  // x86 AMX; Arm's bf16 ("Features")
}

bool cpu_has_native_bf16() { return cpuinfo_has_native_bf16(proc_cpuinfo()); }

bool cpu_prefers_bf16() { return cpuinfo_prefers_bf16(proc_cpuinfo()); }

bool resolve_autocast_bf16(const std::string& setting, const std::string& device) {
  if (setting == "true") return true;
  if (setting == "false") return false;
  if (setting != "auto")
    throw ConfigError("model.autocast_bf16 \"" + setting + "\" is not one of true, false, auto");
  return device == "cuda" || cpu_prefers_bf16();
}

void set_blas_threads(int threads) {
  using SetThreads = void (*)(int);
  static const auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (fn != nullptr && threads > 0) fn(threads);
}

std::string loaded_blas_library() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    std::string file = path.substr(path.rfind('/') + 1);
    if (file.rfind("libblas.so", 0) == 0 || file.rfind("libopenblas", 0) == 0 ||
        file.rfind("libmkl_rt", 0) == 0)
      return path;
  }
  return "";
}

namespace {

// The BLAS compiled into LibTorch, from its build configuration: "built into LibTorch (mkl)" for the
// PyTorch x86 wheels, which link MKL statically.
std::string built_in_blas() {
  const std::string config = torch::show_config();
  const std::string key = "BLAS_INFO=";
  auto at = config.find(key);
  if (at == std::string::npos) return "built into LibTorch";
  auto end = config.find_first_of(", \n", at + key.size());
  return "built into LibTorch (" + config.substr(at + key.size(), end - at - key.size()) + ")";
}

}  // namespace

void log_runtime_info(const std::string& device, const std::string& dtype, int threads) {
  logging::info("LibTorch {}, device {}, dtype {}, {} intra-op thread(s)", torch_version(), device, dtype,
                threads);
  const std::string blas = loaded_blas_library();
  BlasProbe probe = probe_blas();
  logging::info("BLAS {}; probe: fp32 matmul {:.1f} GFLOP/s", blas.empty() ? built_in_blas() : blas,
                probe.gflops);
  // Debian's reference BLAS lives in .../blas/libblas.so.3; OpenBLAS in .../openblas-*/.
  const bool reference_path = blas.find("/blas/libblas.so") != std::string::npos;
  if (reference_path)
    logging::warn(
        "LibTorch is using the reference BLAS ({}), about 20x slower than an optimised one; build against "
        "PyTorch's wheel (MKL; scripts/install-deps.sh installs it) or install libopenblas0-openmp",
        blas);
  else if (probe.looks_reference && blas.find("openblas") != std::string::npos)
    logging::warn(
        "fp32 matmul runs at only {:.1f} GFLOP/s although OpenBLAS is loaded: other processes are probably "
        "competing for the cores, and every phase will run slower",
        probe.gflops);
  else if (probe.looks_reference)
    logging::warn(
        "fp32 matmul runs at {:.1f} GFLOP/s, the speed of the reference BLAS fallback (about 20x slower than "
        "an optimised BLAS); check that the machine is not overloaded, and that LibTorch is PyTorch's wheel "
        "(MKL) or links OpenBLAS",
        probe.gflops);
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

std::string allocator_name() {
  // gperftools' tcmalloc exports tc_version(&major, &minor, &patch) -> "gperftools 2.10".
  using TcVersion = const char* (*)(int*, int*, const char**);
  auto* version = reinterpret_cast<TcVersion>(dlsym(RTLD_DEFAULT, "tc_version"));
  if (version == nullptr) return "glibc malloc";
  int major = 0, minor = 0;
  const char* patch = nullptr;
  return std::string("tcmalloc (") + version(&major, &minor, &patch) + ")";
}

std::string version_string() {
  std::string cuda = TINYZERO_CUDA_VERSION;
  std::string devices;
  if (cuda.empty()) {
    devices = "CPU only";
  } else {
    const auto count = torch::cuda::device_count();
    devices = count == 0 ? "no CUDA device visible" : std::to_string(count) + " CUDA device(s) visible";
  }
  return std::string("tinyzero ") + TINYZERO_VERSION + " (git " + TINYZERO_GIT_HASH + ")\nLibTorch " +
         torch_version() + (cuda.empty() ? ", without CUDA" : ", built with CUDA " + cuda) + " (" + devices +
         ")\nmemory allocator: " + allocator_name();
}

}  // namespace tinyzero
