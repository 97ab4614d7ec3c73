#!/usr/bin/env bash
# Installs every build and test dependency of tinyzero:
#   - Debian 12 packages (compiler, CMake, the libraries below);
#   - LibTorch, from PyTorch's pinned wheel (CUDA 13.0 flavour: libtorch_cuda, c10d with NCCL and Gloo)
#     and the nvidia-* wheels it depends on (cuDNN, cuBLAS, NCCL with nccl.h), into a virtual environment
#     outside the clone, reused by every clone on this machine (~4 GB, downloaded once):
#       ${TINYZERO_CACHE:-~/.cache/tinyzero}/torch-<pin>
#     A machine that already has PyTorch >= 2.5 (a GPU node usually does) can use it instead: set
#     TINYZERO_PYTHON to the python that imports it, and no wheel is installed.
# Idempotent: what is present is skipped. Prints the python whose torch the build will use as its last
# line ("torch-python: PATH").
# Usage: scripts/install-deps.sh            (as root, or with sudo available)
set -euo pipefail

# shellcheck source=scripts/torch-env.sh
source "$(dirname "$0")/torch-env.sh"

packages=(
  build-essential cmake ninja-build pkg-config git ccache
  libgloo-dev           # headers c10d's ProcessGroupGloo needs (the wheel ships none)
  libsentencepiece-dev sentencepiece
  libcli11-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libyaml-cpp-dev
  libpcre2-dev          # Unicode regex for the byte-level BPE pre-tokenizer
  libutf8proc-dev       # NFC normalisation
  libtcmalloc-minimal4  # tinyzero-train's malloc (gperftools): 9-21% faster CPU training steps than glibc's
  libgtest-dev libgmock-dev
  clang-format-14       # the format check (scripts/check-format.sh), pinned: versions format differently
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# The virtual environment that holds the wheel needs a python3 with venv (any: Debian's, pyenv's).
if [ -z "${TINYZERO_PYTHON:-}" ] && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=(python3 python3-venv)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all Debian packages present"
else
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -n "${TINYZERO_PYTHON:-}" ]; then
  echo "install-deps: using the torch of TINYZERO_PYTHON=$TINYZERO_PYTHON (no wheel installed)"
  echo "torch-python: $TINYZERO_PYTHON"
  exit 0
fi

# The marker is written last: an interrupted install is redone, not trusted.
if [ ! -f "$TORCH_VENV/.tinyzero-complete" ]; then
  echo "install-deps: installing torch==$TORCH_PIN into $TORCH_VENV (about 4 GB, once per machine)"
  rm -rf "$TORCH_VENV"
  mkdir -p "$(dirname "$TORCH_VENV")"
  python3 -m venv "$TORCH_VENV"
  "$TORCH_VENV/bin/pip" install --quiet --disable-pip-version-check --no-input "torch==$TORCH_PIN"
  "$TORCH_VENV/bin/python" -c 'import torch; print("install-deps: torch", torch.__version__, "CUDA", torch.version.cuda)'
  touch "$TORCH_VENV/.tinyzero-complete"
else
  echo "install-deps: torch $TORCH_PIN present in $TORCH_VENV"
fi
echo "torch-python: $TORCH_PYTHON"
