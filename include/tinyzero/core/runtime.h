// Process-wide runtime set-up: logging, CPU threads, device choice, and a BLAS sanity probe.
#pragma once

#include <string>

namespace tinyzero {

// Sets the log level ("trace" ... "error"). Throws ConfigError on an unknown level.
void set_log_level(const std::string& level);

// Sets LibTorch's intra-op thread count; 0 = OMP_NUM_THREADS when set, else all cores (LibTorch
// alone would use 1 on these machines). Returns the count in effect.
int configure_threads(int requested);

// Keeps freed memory in the process's heap instead of handing it back to the kernel (glibc only; a
// no-op elsewhere, or when MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ are set). CPU training
// frees and re-makes tensors of tens of MB every step; by default each went back to the kernel and
// was faulted in again, zero-filled, which took a third of a tiny SFT step's wall time.
void keep_freed_memory();

// "cpu" or "cuda" for a config value of auto | cpu | cuda. Throws Error when cuda is asked for and
// this LibTorch build or machine has none.
std::string resolve_device(const std::string& requested);

struct BlasProbe {
  double gflops = 0;             // measured fp32 matmul rate
  bool looks_reference = false;  // far below an optimised BLAS: likely the reference BLAS fallback
};
// Times a small fp32 matmul (~0.1 s). Reference BLAS runs at ~5 GFLOP/s here, OpenBLAS at 100+.
BlasProbe probe_blas();

// Whether this CPU has native bf16 matmul instructions: x86 avx512_bf16 or amx_bf16, Arm bf16, as
// /proc/cpuinfo lists them (false where it cannot be read). Without them oneDNN's bf16 matmuls run
// 10-30x slower than fp32 (5 against 164 GFLOP/s on a 2-core AVX2 EPYC).
bool cpu_has_native_bf16();
// The same decision from the text of a /proc/cpuinfo.
bool cpuinfo_has_native_bf16(const std::string& cpuinfo);

// Whether model.autocast_bf16=auto turns bf16 on for this CPU: where bf16 matmuls beat fp32 ones, which
// takes a matrix engine: x86 AMX (amx_bf16), or Arm bf16 (kept from the earlier rule, not measured
// here). AVX-512 BF16 alone is not enough: on a 2-core Xeon with avx512_bf16 and no AMX (2026-12-07)
// oneDNN's bf16 matmuls reached 156 GFLOP/s against 254-271 in fp32, and a step of the tiny demo took
// 19-22 s under bf16 autocast against 12-14 s in fp32.
bool cpu_prefers_bf16();
// The same decision from the text of a /proc/cpuinfo.
bool cpuinfo_prefers_bf16(const std::string& cpuinfo);

// Whether bf16 autocast runs for model.autocast_bf16 = "true" | "false" | "auto" on `device` ("cpu" or
// "cuda"): auto = on for CUDA and for a CPU that prefers bf16 (above), off on any other CPU.
bool resolve_autocast_bf16(const std::string& setting, const std::string& device);

// Tells a loaded OpenBLAS to use `threads` threads (found at run time; a no-op for other BLAS
// libraries). OpenBLAS keeps one global count, set by the last call from a thread whose OpenMP limit
// differed: a call from a 1-thread worker leaves every later call, on any thread, single-threaded.
// PyTorch's aarch64 wheels and distributions' LibTorch use OpenBLAS; the x86 wheels link MKL, whose
// count at::set_num_threads keeps per thread.
void set_blas_threads(int threads);

// Path of the BLAS shared library loaded in this process ("" when none is found, e.g. MKL linked into
// LibTorch).
std::string loaded_blas_library();

// One line each: LibTorch version, device, threads, BLAS; warns when probe_blas() looks slow.
void log_runtime_info(const std::string& device, const std::string& dtype, int threads);

// "2.11.0" (the LibTorch this binary was built against).
std::string torch_version();
// Two lines: "tinyzero 0.1.0 (git abc123)" and "LibTorch 2.11.0, built with CUDA 13.0 (no CUDA device
// visible)".
std::string version_string();
// The malloc this process runs on: "tcmalloc (gperftools 2.10)" when tcmalloc replaced glibc's.
std::string allocator_name();

}  // namespace tinyzero
