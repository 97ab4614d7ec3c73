#!/usr/bin/env bash
# Builds the tiny CPU model of the smoke run and the tiny demo from nothing downloaded: the tiny-model
# stage of configs/tiny/demo.yaml alone (a 512-id byte-level BPE tokenizer trained on generated
# Countdown text, and a randomly initialised Qwen2 model of configs/tiny/model.json with it).
# Usage: scripts/make-tiny-model.sh OUT_DIR    (writes OUT_DIR/tokenizer and OUT_DIR/model; an OUT_DIR
# that already holds them is left as it is)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/make-tiny-model.sh OUT_DIR}
bin=${TINYZERO_BIN:-${BUILD_DIR:-build}/tinyzero-train}
exec "$bin" recipe configs/tiny/demo.yaml --until tiny-model --set "tiny-model.out=$out"
