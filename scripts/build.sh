#!/usr/bin/env bash
# Configures and builds tinyzero (Release, Ninja) into ${BUILD_DIR:-build}, one job per core, against
# the LibTorch of scripts/torch-env.sh: the pinned wheel that scripts/install-deps.sh installs, or your
# own PyTorch >= 2.5 with TINYZERO_PYTHON=/path/to/python. Configure's findings are printed.
# Extra arguments are passed to cmake's configure step. TARGETS builds only some targets (default: all).
# Compiles go through ccache when it is installed (cache in ~/.cache/ccache, shared by every clone).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
source scripts/torch-env.sh
BUILD_DIR=${BUILD_DIR:-build}
jobs=$(nproc)

if ! "$TORCH_PYTHON" -c 'import torch' >/dev/null 2>&1; then
  echo "build: $TORCH_PYTHON cannot import torch; run scripts/install-deps.sh first, or set TINYZERO_PYTHON" \
       "to a python with PyTorch >= 2.5" >&2
  exit 2
fi
# Everything cmake needs from the torch install, asked once.
mapfile -t torch_info < <("$TORCH_PYTHON" - <<'PY' 2>/dev/null
import os, torch, torch.utils
print(torch.utils.cmake_prefix_path)
print(torch.__version__)
# nccl.h of the nvidia-nccl wheel torch depends on (CUDA wheels), else empty
try:
    import nvidia.nccl
    inc = os.path.join(list(nvidia.nccl.__path__)[0], "include")
    print(inc if os.path.isfile(os.path.join(inc, "nccl.h")) else "")
except ImportError:
    print("")
PY
)
prefix=${torch_info[0]}
echo "build: torch ${torch_info[1]} from $TORCH_PYTHON"
args=(-DCMAKE_PREFIX_PATH="$prefix")
if [ -n "${torch_info[2]:-}" ]; then args+=(-DNCCL_INCLUDE_DIR="${torch_info[2]}"); fi
if command -v ccache >/dev/null; then
  # Paths under the clone are hashed relative to it, so another clone of the same commit hits the cache.
  export CCACHE_BASEDIR="$PWD"
  export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
  args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# CUDA libraries: torch's CMake config looks for the CUDA toolkit (nvcc) to describe libtorch_cuda.
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
  export PATH="/usr/local/cuda/bin:$PATH"
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release "${args[@]}" "$@" |
  grep -vE '^-- (Detecting|Check for working|Looking for|Performing Test|Found Threads|Configuring done|Generating done)'
# shellcheck disable=SC2086
ninja -C "$BUILD_DIR" -j"$jobs" ${TARGETS:-}
if command -v ccache >/dev/null; then ccache --show-stats 2>/dev/null | grep -E '^(Cacheable calls|  Hits|  Misses)' || true; fi
