#!/usr/bin/env bash
# The README's first command: the tiny CPU demo end to end. Installs what is missing, builds the CLI,
# then, from nothing downloaded:
#   1. a tiny Qwen2 model with its own BPE tokenizer (scripts/make-tiny-model.sh -> runs/tiny-model),
#   2. a warm-up corpus that teaches the answer format and arithmetic but not how to solve Countdown
#      (tinyzero-train data countdown-sft --order fixed --stop-prob 0.2: a prefix of all candidate
#      equations in one fixed order, each worked out and compared with the target, that stops after
#      each candidate with probability 0.2 whatever it gave, the last one answered), and SFT on it
#      (configs/tiny/sft.yaml) in two legs: 800 steps from the random model, then 800 more at
#      lr 1e-3 on a second corpus of other problems (--seed 1) from the first leg's checkpoint,
#   3. GRPO on Countdown with TinyZero's reward (configs/tiny/grpo.yaml), validating greedily on 500
#      held-out problems before training (the base) and as it goes,
# then prints the held-out success rate of the base and of the trained model, and where the plot is.
# Idempotent: a finished step is skipped and an interrupted run resumes from its last checkpoint.
#
# Usage: bash scripts/quickstart.sh [extra GRPO config overrides...]
#   QUICK=1 bash scripts/quickstart.sh        # a few minutes' check of the pipeline (too short to learn)
#   SFT_STEPS=1000 GRPO_STEPS=100 bash scripts/quickstart.sh   # longer
#   SFT2_STEPS=0 bash scripts/quickstart.sh   # one SFT leg only (the recipe before 2026-11-25)
#   DEMO_DIR=runs/my-demo bash scripts/quickstart.sh actor.optim.lr=5e-5
#   SMOKE=1 bash scripts/quickstart.sh        # the 2-step smoke run of configs/smoke.yaml instead
#   TINYZERO_BIN=path/to/tinyzero-train ...   # use that binary: no install, no build
#   WARM_MODEL=runs/tiny-demo/sft/checkpoints/step_00000800 DEMO_DIR=runs/again ...   # skip steps 1-2:
#                                             # GRPO from that warmed-up model (e.g. with other overrides)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${TINYZERO_BIN:-}" ]; then
  bin=$TINYZERO_BIN
else
  bash scripts/install-deps.sh
  TARGETS=tinyzero-train bash scripts/build.sh
  bin=${BUILD_DIR:-build}/tinyzero-train
fi
model_dir=${TINY_MODEL_DIR:-runs/tiny-model}
if [ -z "${WARM_MODEL:-}" ] && [ ! -f "$model_dir/model/config.json" ]; then
  TINYZERO_BIN=$bin bash scripts/make-tiny-model.sh "$model_dir"
fi
if [ "${SMOKE:-0}" = 1 ]; then
  exec "$bin" --config configs/smoke.yaml trainer.run_dir="runs/smoke-$(date +%Y%m%d-%H%M%S)" "$@"
fi

start=$(date +%s)
task=() sets=() grpo_extra=()
if [ "${QUICK:-0}" = 1 ]; then
  # A few minutes' check of the whole pipeline (too short to learn): the same task, fewer steps.
  demo=${DEMO_DIR:-runs/tiny-demo-quick} sft_steps=${SFT_STEPS:-100} sft2_steps=${SFT2_STEPS:-0}
  grpo_steps=${GRPO_STEPS:-4}
  attempts=64 problems=1300 val=100
  task=(data.val_size=100)
  grpo_extra=(data.train_batch_size=16 trainer.test_freq=4)
else
  demo=${DEMO_DIR:-runs/tiny-demo} sft_steps=${SFT_STEPS:-800} sft2_steps=${SFT2_STEPS:-800}
  grpo_steps=${GRPO_STEPS:-40}
  attempts=64 problems=1300 val=500
fi
for kv in "${task[@]}"; do sets+=(--set "$kv"); done
checkpoint() { printf '%s/checkpoints/step_%08d' "$1" "$2"; }  # RUN_DIR STEP
ckpt=$(checkpoint "$demo/sft" "$sft_steps")
batch=$(awk '/train_batch_size:/ { print $2; exit }' configs/tiny/sft.yaml)

if [ -n "${WARM_MODEL:-}" ]; then
  echo "== 1/3, 2/3 skipped: GRPO from the warmed-up model $WARM_MODEL"
  ckpt=$WARM_MODEL
else
  echo "== 1/3 warm-up corpora ($demo/warmup.jsonl, $demo/warmup2.jsonl)"
  corpus() {  # OUT EXAMPLES SEED: problems and traces of their own seed, none of them held out
    if [ ! -f "$1" ]; then
      "$bin" data countdown-sft --config configs/tiny/grpo.yaml "${sets[@]}" --problems "$problems" \
        --order fixed --attempts "$attempts" --min-attempts 1 --stop-prob 0.2 --answer last --compare \
        --examples "$2" --seed "$3" --out "$1"
    fi
  }
  corpus "$demo/warmup.jsonl" $((sft_steps * batch)) 0
  if [ "$sft2_steps" -gt 0 ]; then corpus "$demo/warmup2.jsonl" $((sft2_steps * batch)) 1; fi
  echo "== 2/3 SFT warm-up, $sft_steps + $sft2_steps steps ($demo/sft, $demo/sft2)"
  sft() {  # MODEL CORPUS RUN_DIR STEPS [overrides...]
    local model=$1 corpus=$2 run=$3 steps=$4
    shift 4
    if [ ! -f "$(checkpoint "$run" "$steps")/trainer_state.json" ]; then
      "$bin" --config configs/tiny/sft.yaml model.path="$model" data.train_files="$corpus" \
        trainer.run_dir="$run" trainer.total_steps="$steps" trainer.save_freq="$steps" \
        trainer.test_freq=0 logging.tensorboard=false "${task[@]}" "$@"
    fi
  }
  sft "$model_dir/model" "$demo/warmup.jsonl" "$demo/sft" "$sft_steps"
  if [ "$sft2_steps" -gt 0 ]; then
    # The second leg: a restarted cosine schedule from a third of the first one's learning rate.
    sft "$ckpt" "$demo/warmup2.jsonl" "$demo/sft2" "$sft2_steps" actor.optim.lr=1.0e-3
    ckpt=$(checkpoint "$demo/sft2" "$sft2_steps")
  fi
fi
echo "== 3/3 GRPO on Countdown, $grpo_steps steps ($demo/grpo)"
"$bin" --config configs/tiny/grpo.yaml model.path="$ckpt" trainer.run_dir="$demo/grpo" \
  trainer.total_steps="$grpo_steps" "${task[@]}" "${grpo_extra[@]}" "$@"

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
