# Sourced by install-deps.sh, build.sh and gpu-check.sh: where the LibTorch that tinyzero builds
# against lives. Sets TORCH_PIN, TORCH_VENV and TORCH_PYTHON (the python that imports that torch):
#   TINYZERO_PYTHON=/path/to/python   use that python's torch (PyTorch >= 2.5; a GPU node's own)
#   otherwise                         the pinned wheel in ${TINYZERO_CACHE:-~/.cache/tinyzero}/torch-<pin>
TORCH_PIN=2.11.0   # the CUDA 13.0 wheel on PyPI; the lent GPU machines run 2.11.0+cu130
TORCH_VENV="${TINYZERO_CACHE:-$HOME/.cache/tinyzero}/torch-$TORCH_PIN"
TORCH_PYTHON="${TINYZERO_PYTHON:-$TORCH_VENV/bin/python}"
