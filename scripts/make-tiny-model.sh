#!/usr/bin/env bash
# Builds the tiny CPU model of the smoke run and the tiny demo from nothing downloaded:
#   1. Countdown problems from our generator (tinyzero-train data countdown),
#   2. a text corpus of prompts in the smoke template with well-formed (random) answers, plus the
#      demo's warm-up texts (tinyzero-train data countdown-sft, configs/tiny/grpo.yaml's template),
#   3. a 512-id byte-level BPE tokenizer trained on it (tinyzero-train tokenizer train),
#   4. a randomly initialised Qwen2 model of configs/tiny/model.json with that tokenizer (init).
# Usage: scripts/make-tiny-model.sh OUT_DIR    (writes OUT_DIR/tokenizer and OUT_DIR/model)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/make-tiny-model.sh OUT_DIR}
bin=${TINYZERO_BIN:-${BUILD_DIR:-build}/tinyzero-train}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$bin" data countdown --train 4000 --test 16 --seed 11 --min-numbers 3 --max-numbers 3 \
  --min-number 1 --max-number 20 --min-target 1 --max-target 100 --out "$work/data" >/dev/null
# One prompt + answer per problem: the template of configs/smoke.yaml, an answer using the numbers in
# a random order with random operators (well-formed, usually wrong: the corpus teaches the alphabet).
awk -v seed=11 'BEGIN { srand(seed); split("+ - * /", ops, " ") }
{
  line = $0
  match(line, /"target": *[0-9]+/); target = substr(line, RSTART, RLENGTH); gsub(/[^0-9]/, "", target)
  match(line, /\[[0-9, ]+\]/); list = substr(line, RSTART + 1, RLENGTH - 2); n = split(list, nums, /, */)
  printf "Using the numbers [%s], create an equation that equals %s.\nAssistant: <think>", list, target
  expr = nums[1]
  for (i = 2; i <= n; i++) expr = expr " " ops[int(rand() * 4) + 1] " " nums[i]
  printf " %s </think> <answer>%s</answer><|endoftext|>\n", expr, expr
}' "$work/data/train.jsonl" > "$work/corpus.txt"
"$bin" data countdown-sft --config configs/tiny/grpo.yaml --problems 1000 --seed 11 --out "$work/warmup.jsonl" \
  --text "$work/warmup.txt"
cat "$work/warmup.txt" >> "$work/corpus.txt"
"$bin" tokenizer train --input "$work/corpus.txt" --vocab-size 512 --out "$out/tokenizer" >/dev/null
"$bin" init --model-config configs/tiny/model.json --tokenizer "$out/tokenizer" --out "$out/model" --seed 1 >/dev/null
echo "tiny model written to $out/model (tokenizer in $out/tokenizer)"
