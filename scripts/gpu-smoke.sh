#!/usr/bin/env bash
# GPU smoke test: builds tinyzero against a CUDA LibTorch (PyTorch's own), runs the GPU-labelled tests,
# the dist tests (NCCL between 2 GPUs when there are 2), and a few training steps of the tiny model on CUDA.
#
# Usage (on a machine with an NVIDIA GPU and PyTorch 2.x with CUDA installed for python3):
#   scripts/gpu-smoke.sh
# Environment:
#   BUILD_DIR         build directory (default build-gpu; kept apart from the CPU build)
#   LIBTORCH_DIR      use an unpacked LibTorch zip instead of python3's torch (e.g. the cxx11-ABI build)
#   NCCL_INCLUDE_DIR  directory holding nccl.h (default: the nvidia-nccl wheel next to torch, else CUDA's)
#   SKIP_DEPS=1       do not run scripts/install-deps.sh (it also installs Debian's CPU libtorch-dev,
#                     which this build does not use: CMAKE_PREFIX_PATH picks PyTorch's)
#   STEPS             training steps of the smoke run (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-gpu}
STEPS=${STEPS:-3}
say() { echo "gpu-smoke: $*"; }
die() { echo "gpu-smoke: error: $*" >&2; exit 1; }

command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || die "no NVIDIA GPU visible (nvidia-smi -L failed)"
gpus=$(nvidia-smi -L | grep -c '^GPU ')
say "$gpus GPU(s): $(nvidia-smi --query-gpu=name --format=csv,noheader | sort | uniq -c | xargs)"

if [ "${SKIP_DEPS:-0}" != 1 ]; then bash scripts/install-deps.sh; fi

# --- which LibTorch ---------------------------------------------------------------------------------
if [ -n "${LIBTORCH_DIR:-}" ]; then
  prefix=$LIBTORCH_DIR
  [ -f "$prefix/share/cmake/Torch/TorchConfig.cmake" ] || die "LIBTORCH_DIR=$prefix has no share/cmake/Torch"
else
  python3 -c 'import torch' 2>/dev/null || die "python3 cannot import torch; install PyTorch with CUDA, or set LIBTORCH_DIR"
  read -r prefix version cuda abi cuda_ok < <(python3 -c '
import torch
print(torch.utils.cmake_prefix_path, torch.__version__, torch.version.cuda, int(torch._C._GLIBCXX_USE_CXX11_ABI),
      int(torch.cuda.is_available()))')
  say "PyTorch $version (CUDA $cuda, C++11 ABI $abi) at $prefix"
  [ "$cuda" != "None" ] || die "this PyTorch ($version) has no CUDA; install a CUDA build"
  [ "$cuda_ok" = 1 ] || die "PyTorch $version cannot use the GPU (torch.cuda.is_available() is False): driver too old?"
  # The other dependencies (yaml-cpp, spdlog, gtest, ...) are Debian's, built with the C++11 ABI; a LibTorch
  # built with the old ABI cannot be linked with them.
  [ "$abi" = 1 ] || die "PyTorch $version uses the pre-C++11 ABI (wheels before 2.7), which cannot link with \
Debian's C++ libraries; install PyTorch >= 2.7, or download the 'cxx11 ABI' LibTorch zip from pytorch.org \
and set LIBTORCH_DIR to it"
  [ -n "${NCCL_INCLUDE_DIR:-}" ] || NCCL_INCLUDE_DIR=$(python3 -c '
import os
try:
    import nvidia.nccl as n
    d = os.path.join(list(n.__path__)[0], "include")
    print(d if os.path.exists(os.path.join(d, "nccl.h")) else "")
except Exception:
    print("")' 2>/dev/null || true)
fi
# nccl.h should be the NCCL that LibTorch runs with (c10d's option structs depend on its version).
if [ -z "${NCCL_INCLUDE_DIR:-}" ]; then
  for d in /usr/local/cuda/include /usr/include; do [ -f "$d/nccl.h" ] && NCCL_INCLUDE_DIR=$d && break; done
fi
[ -n "${NCCL_INCLUDE_DIR:-}" ] || die "nccl.h not found; set NCCL_INCLUDE_DIR (pip install nvidia-nccl-cu12 provides it)"
say "nccl.h from $NCCL_INCLUDE_DIR"

# --- build ------------------------------------------------------------------------------------------
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  -DNCCL_INCLUDE_DIR="$NCCL_INCLUDE_DIR" | grep -E "dist backends|Torch|CUDA" || true
grep -q "TZ_HAVE_NCCL" "$BUILD_DIR/build.ninja" || die "NCCL was not enabled for src/dist (see 'tinyzero dist backends' above)"
ninja -C "$BUILD_DIR" -j"$(nproc)"

# --- tests ------------------------------------------------------------------------------------------
status=0
say "ctest -L gpu"
ctest --test-dir "$BUILD_DIR" -L gpu --output-on-failure || status=1
say "dist tests (NCCL between 2 ranks needs 2 GPUs; Gloo ones skip where this LibTorch has no Gloo)"
ctest --test-dir "$BUILD_DIR" -L dist --output-on-failure || status=1
ctest --test-dir "$BUILD_DIR" -L unit -R 'EnvTest|PartitionBySize|ProcessGroupSingle' --output-on-failure || status=1

# --- a few training steps of the tiny model on CUDA -------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
TINYZERO_BIN="$BUILD_DIR/tinyzero-train" bash scripts/make-tiny-model.sh "$work"
say "training $STEPS steps on cuda"
"$BUILD_DIR/tinyzero-train" --config configs/smoke.yaml trainer.device=cuda model.path="$work/model" \
  trainer.run_dir="$work/run" trainer.total_steps="$STEPS" || status=1
[ -s "$work/run/metrics.jsonl" ] && say "metrics: $(tail -n 1 "$work/run/metrics.jsonl" | cut -c1-300)"
if [ "$gpus" -ge 2 ]; then
  say "training $STEPS steps on 2 GPUs (NCCL) through scripts/launch-local.sh"
  TINYZERO_BIN="$BUILD_DIR/tinyzero-train" bash scripts/launch-local.sh 2 -- --config configs/smoke.yaml \
    trainer.device=cuda model.path="$work/model" trainer.run_dir="$work/run2" trainer.total_steps="$STEPS" || status=1
fi

if [ "$status" = 0 ]; then say "all passed"; else say "FAILED (see above)"; fi
exit $status
