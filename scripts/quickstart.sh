#!/usr/bin/env bash
# The README's first command: the tiny CPU demo. Installs what is missing, builds the CLI, then runs the
# demo's recipe, configs/tiny/demo.yaml (`tinyzero-train recipe configs/tiny/demo.yaml`): GRPO on
# Countdown with TinyZero's reward from the stored warmed-up model (tests/data/tiny-demo-warm),
# validating on 500 held-out problems before training and as it goes, then prints the held-out success
# of the base and of the trained model, where the learning curve is, and the wall time. A finished
# stage is skipped and an interrupted one resumes from its last checkpoint.
#
# Usage: bash scripts/quickstart.sh [recipe options] [GRPO config overrides...]
#   (the arguments go to `tinyzero-train recipe configs/tiny/demo.yaml`; its --help lists the options)
#   QUICK=1 bash scripts/quickstart.sh         # --profile quick: a few minutes' check (too short to learn)
#   FROM_SCRATCH=1 bash scripts/quickstart.sh  # --from-scratch: make the warm-up too (tokenizer, model,
#                                              # two corpora, two SFT legs; about 55 minutes on 2 cores)
#   SMOKE=1 bash scripts/quickstart.sh         # --profile smoke: 2 GRPO steps of configs/smoke.yaml on a
#                                              # random tiny model, in a new runs/smoke-DATE
#   DEMO_DIR=runs/my-demo bash scripts/quickstart.sh actor.optim.lr=5e-5   # --dir DIR, a GRPO override
#   bash scripts/quickstart.sh --set grpo.steps=100                          # longer
#   TINYZERO_BIN=path/to/tinyzero-train ...    # use that binary: no install, no build
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${TINYZERO_BIN:-}" ]; then
  bin=$TINYZERO_BIN
else
  bash scripts/install-deps.sh
  TARGETS=tinyzero-train bash scripts/build.sh
  bin=${BUILD_DIR:-build}/tinyzero-train
fi
args=()
if [ "${QUICK:-0}" = 1 ]; then args+=(--profile quick); fi
if [ "${SMOKE:-0}" = 1 ]; then
  args+=(--profile smoke --dir "${DEMO_DIR:-runs/smoke-$(date +%Y%m%d-%H%M%S)}")
fi
if [ "${FROM_SCRATCH:-0}" = 1 ]; then args+=(--from-scratch); fi
if [ -n "${DEMO_DIR:-}" ] && [ "${SMOKE:-0}" != 1 ]; then args+=(--dir "$DEMO_DIR"); fi
exec "$bin" recipe configs/tiny/demo.yaml "${args[@]}" "$@"
