#!/usr/bin/env bash
# The README's first command: the tiny CPU demo end to end. Installs what is missing, builds the CLI,
# then, from nothing downloaded:
#   1. a tiny Qwen2 model with its own BPE tokenizer (scripts/make-tiny-model.sh -> runs/tiny-model),
#   2. a warm-up corpus that teaches the answer format and arithmetic but not how to solve Countdown
#      (tinyzero-train data countdown-sft: random attempts with worked arithmetic, answer picked at
#      random), and SFT on it (configs/tiny/sft.yaml),
#   3. GRPO on Countdown with TinyZero's reward (configs/tiny/grpo.yaml), validating greedily on 500
#      held-out problems before training (the base) and as it goes,
# then prints the held-out success rate of the base and of the trained model, and where the plot is.
# Idempotent: a finished step is skipped and an interrupted run resumes from its last checkpoint.
#
# Usage: bash scripts/quickstart.sh [extra GRPO config overrides...]
#   QUICK=1 bash scripts/quickstart.sh        # the CI-sized variant (tests/integration/cli/
#                                             # demo_learn_test.cpp): 2 numbers, 4 attempts, minutes
#   SFT_STEPS=1200 GRPO_STEPS=200 bash scripts/quickstart.sh   # longer
#   DEMO_DIR=runs/my-demo bash scripts/quickstart.sh actor.optim.lr=5e-5
#   SMOKE=1 bash scripts/quickstart.sh        # the 2-step smoke run of configs/smoke.yaml instead
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
TARGETS=tinyzero-train bash scripts/build.sh
bin=${BUILD_DIR:-build}/tinyzero-train
if [ ! -f runs/tiny-model/model/config.json ]; then
  TINYZERO_BIN=$bin bash scripts/make-tiny-model.sh runs/tiny-model
fi
if [ "${SMOKE:-0}" = 1 ]; then
  exec "$bin" --config configs/smoke.yaml trainer.run_dir="runs/smoke-$(date +%Y%m%d-%H%M%S)" "$@"
fi

start=$(date +%s)
task=() sets=()
if [ "${QUICK:-0}" = 1 ]; then
  demo=${DEMO_DIR:-runs/tiny-demo-quick} sft_steps=${SFT_STEPS:-200} grpo_steps=${GRPO_STEPS:-20}
  attempts=4 problems=700 val=400
  task=(data.countdown.min_numbers=2 data.countdown.max_numbers=2 data.countdown.max_number=30
    data.countdown.max_target=100 data.val_size=400 data.train_size=700 data.max_response_length=64)
else
  demo=${DEMO_DIR:-runs/tiny-demo} sft_steps=${SFT_STEPS:-600} grpo_steps=${GRPO_STEPS:-100}
  attempts=10 problems=1300 val=500
fi
for kv in "${task[@]}"; do sets+=(--set "$kv"); done
ckpt=$(printf '%s/sft/checkpoints/step_%08d' "$demo" "$sft_steps")

echo "== 1/3 warm-up corpus ($demo/warmup.jsonl)"
if [ ! -f "$demo/warmup.jsonl" ]; then
  "$bin" data countdown-sft --config configs/tiny/grpo.yaml "${sets[@]}" --problems "$problems" \
    --attempts "$attempts" --examples $((sft_steps * 32)) --out "$demo/warmup.jsonl"
fi
echo "== 2/3 SFT warm-up, $sft_steps steps ($demo/sft)"
if [ ! -f "$ckpt/trainer_state.json" ]; then
  "$bin" --config configs/tiny/sft.yaml model.path=runs/tiny-model/model data.train_files="$demo/warmup.jsonl" \
    trainer.run_dir="$demo/sft" trainer.total_steps="$sft_steps" trainer.save_freq="$sft_steps" \
    trainer.test_freq=0 logging.tensorboard=false "${task[@]}"
fi
echo "== 3/3 GRPO on Countdown, $grpo_steps steps ($demo/grpo)"
"$bin" --config configs/tiny/grpo.yaml model.path="$ckpt" trainer.run_dir="$demo/grpo" \
  trainer.total_steps="$grpo_steps" "${task[@]}" "$@"

# The held-out success rates: the first validation (before GRPO, i.e. the warmed-up base) and the last.
rates=$(grep -o '"step": *[0-9]*\|"val/success_rate/countdown": *[0-9.e+-]*' "$demo/grpo/metrics.jsonl" |
  awk -F': *' '/"step"/ { step = $2 } /success_rate/ { print step, $2 }')
base=$(echo "$rates" | head -n 1) final=$(echo "$rates" | tail -n 1)
echo
echo "held-out Countdown success (greedy, $val problems never trained on; TinyZero's reward = 1.0):"
awk -v b="$base" -v f="$final" 'BEGIN {
  split(b, x, " "); split(f, y, " ")
  printf "  base (after SFT, before GRPO), step %d: %5.1f%%\n", x[1], 100 * x[2]
  printf "  trained with GRPO,            step %d: %5.1f%%\n", y[1], 100 * y[2] }'
echo "learning curve: $demo/grpo/plot.svg  (metrics: $demo/grpo/metrics.jsonl)"
echo "wall time of this invocation: $(($(date +%s) - start)) s"
