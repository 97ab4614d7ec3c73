#!/usr/bin/env bash
# The peer bench, from a clean clone on a CPU machine: makes its environment (setup.sh: pinned
# transformers and TRL on the build's own torch), builds tinyzero-train if it is missing, then runs
# run.py: decode, log-prob pass and training step against HF transformers on the tiny and small shapes
# (5 alternating rounds), the whole GRPO step against TRL's GRPOTrainer on both shapes, and the 20-step
# learning curves of the tiny demo on both stacks. Writes out/peers-<time>.json, its table (.md) and the
# reward-curve plot (-curve.svg); about 90 minutes on 2 cores, most of it TRL's GRPO.
# Not part of the README's two commands (it downloads about 150 MB of Python packages).
# Usage: bash bench/peers/run.sh [run.py options], e.g. --shapes tiny --grpo step --rounds 3;
#        add --readme to report.py by hand: bench/peers/.venv/bin/python bench/peers/report.py OUT.json --readme
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
peer_python="$(bash bench/peers/setup.sh | sed -n 's/^peer-python: //p')"
if [ ! -x build/tinyzero-train ]; then
  bash scripts/install-deps.sh
  TARGETS=tinyzero-train bash scripts/build.sh
fi
if [ $# -eq 0 ]; then set -- --grpo step,curve; fi
exec "$peer_python" bench/peers/run.py --peer-python "$peer_python" "$@"
