#!/usr/bin/env bash
# Prints markdown tables of `tinyzero-train --dry-run` memory estimates: every shipped GPU config on the
# hardware it declares, then Qwen2.5 0.5B-7B x GRPO/PPO x 1/2/4/8 GPUs of 80 GiB, each with the lowest
# distributed.zero_stage that fits in 90% of the GPU (10% headroom). The README's fit table is its output.
#   bash scripts/fit-table.sh            # uses ${BUILD_DIR:-build}/tinyzero-train
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/tinyzero-train
[ -x "$bin" ] || { echo "fit-table: $bin not built (bash scripts/build.sh)" >&2; exit 2; }

# The shape file of a config's model: configs/models/<lowercased basename of model.path>.json.
shape_of() {
  local path
  path=$("$bin" --config "$1" --print-config | awk '/^model:/{m=1} m && /^  path:/{print $2; exit}' | tr -d '"')
  echo "configs/models/$(basename "$path" | tr '[:upper:]' '[:lower:]').json"
}
# "GiB percent zero_stage" of a dry run (extra arguments: flags and overrides).
estimate() {
  local out
  out=$("$bin" --dry-run "$@")
  local total pct stage
  total=$(awk '$1 == "total" {print $2; exit}' <<<"$out")
  pct=$(sed -n 's/^.*fit (\([0-9]*\)% of capacity)$/\1/p; s/^fits (\([0-9]*\)% of capacity)$/\1/p' <<<"$out" | head -1)
  stage=$(sed -n 's/^parameters:.*ZeRO stage \([0-9]\)$/\1/p' <<<"$out")
  echo "$total ${pct:-?} $stage"
}
verdict() { if [ "$1" != "?" ] && [ "$1" -le 90 ]; then echo "yes"; elif [ "$1" != "?" ] && [ "$1" -le 100 ]; then echo "tight (no 10% headroom)"; else echo "no"; fi; }

echo "Shipped configs on their declared hardware (\`hardware.gpus\` x \`hardware.gpu_memory_gb\`):"
echo
echo "| config | GPUs | ZeRO stage | GiB per GPU | of capacity | fits with 10% headroom |"
echo "|---|---|---|---|---|---|"
for cfg in configs/countdown-*.yaml configs/multiply-*.yaml; do
  [ "$(basename "$cfg")" = countdown-base.yaml ] && continue
  gpus=$("$bin" --config "$cfg" --print-config | awk '/^hardware:/{h=1} h && /^  gpus:/{print $2; exit}')
  gb=$("$bin" --config "$cfg" --print-config | awk '/^hardware:/{h=1} h && /^  gpu_memory_gb:/{print $2; exit}')
  read -r total pct stage < <(estimate --config "$cfg" --model-config "$(shape_of "$cfg")")
  echo "| $(basename "$cfg") | ${gpus} x $(printf %g "$gb") GiB | $stage | $total | $pct% | $(verdict "$pct") |"
done

echo
echo "Qwen2.5 on GPUs of 80 GiB with the Countdown recipe (countdown-SIZE[-grpo].yaml and its micro-batch"
echo "settings): GiB per GPU at the lowest distributed.zero_stage (Z) that leaves 10% headroom; \"no\" when none"
echo "does (with the estimate at the highest stage tried):"
echo
echo "| model | algorithm | 1 GPU | 2 GPUs | 4 GPUs | 8 GPUs |"
echo "|---|---|---|---|---|---|"
for size in 0.5b 1.5b 3b 7b; do
  for algo in grpo ppo; do
    cfg=configs/countdown-$size.yaml
    [ "$algo" = grpo ] && cfg=configs/countdown-$size-grpo.yaml
    row="| ${size^^} | ${algo^^} |"
    for gpus in 1 2 4 8; do
      best=""
      stages="0 1 2 3"
      [ "$gpus" = 1 ] && stages="0"
      for z in $stages; do
        read -r total pct _ < <(estimate --config "$cfg" --model-config "configs/models/qwen2.5-$size.json" \
          --world-size "$gpus" --device-memory-gb 80 distributed.zero_stage="$z")
        best="$z $total $pct"
        [ "$pct" != "?" ] && [ "$pct" -le 90 ] && break
      done
      read -r z total pct <<<"$best"
      if [ "$pct" != "?" ] && [ "$pct" -le 90 ]; then row="$row $total Z$z |"; else row="$row no ($total Z$z) |"; fi
    done
    echo "$row"
  done
done
