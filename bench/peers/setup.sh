#!/usr/bin/env bash
# Makes the peer bench's own virtual environment, bench/peers/.venv (ignored by git): the pinned
# transformers and TRL of requirements.txt on top of the very torch that tinyzero builds against
# (scripts/torch-env.sh; a .pth file puts that torch's site-packages on the path, so no second 4 GB
# wheel is downloaded and both sides run the same torch build). Idempotent; about 30 s the first time.
# Prints the environment's python as its last line ("peer-python: PATH").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=scripts/torch-env.sh
source "$here/../../scripts/torch-env.sh"
venv="$here/.venv"
stamp="$venv/.complete-$(sha256sum "$here/requirements.txt" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  if ! "$TORCH_PYTHON" -c 'import torch' >/dev/null 2>&1; then
    echo "peers/setup: $TORCH_PYTHON cannot import torch; run scripts/install-deps.sh first" >&2
    exit 1
  fi
  torch_site="$("$TORCH_PYTHON" -c 'import os, torch; print(os.path.dirname(os.path.dirname(torch.__file__)))')"
  rm -rf "$venv"
  "$TORCH_PYTHON" -c 'import sys; print(sys.base_prefix)' >/dev/null
  # The same interpreter version as the torch wheel's (its compiled modules need it).
  base_python="$("$TORCH_PYTHON" -c 'import sys, os; print(os.path.join(sys.base_prefix, "bin", "python3"))')"
  "$base_python" -m venv "$venv"
  purelib="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$torch_site" >"$purelib/tinyzero-torch.pth"
  echo "peers/setup: installing $(grep -v '^#' "$here/requirements.txt" | tr '\n' ' ')into $venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-input -r "$here/requirements.txt"
  touch "$stamp"
fi
"$venv/bin/python" - <<'PY'
import torch, transformers, trl
print(f"peers/setup: torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")
PY
echo "peer-python: $venv/bin/python"
