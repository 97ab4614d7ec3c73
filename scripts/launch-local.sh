#!/usr/bin/env bash
# Starts N ranks of a command on this machine, as `torchrun --nproc-per-node N --no-python` would: each
# gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1 and one free MASTER_PORT;
# each output line is prefixed with "[rank i] ". It waits for all; when one fails it stops the others
# (TERM, then KILL after 5 s) and exits with that rank's status (128+signal for a killed rank).
#
# Usage:
#   scripts/launch-local.sh N -- --config configs/smoke.yaml [key=value ...]   # N ranks of tinyzero-train
#   scripts/launch-local.sh N -- COMMAND [ARGS...]                             # N ranks of any command
# The command is tinyzero-train (${TINYZERO_BIN:-${BUILD_DIR:-build}/tinyzero-train}) unless the first
# argument after -- is an executable path or a command on PATH. OMP_NUM_THREADS defaults to cores / N.
# Examples:
#   scripts/launch-local.sh 2 -- --config configs/smoke.yaml trainer.run_dir=runs/dp2
#   scripts/launch-local.sh 2 -- sh -c 'echo "I am $RANK of $WORLD_SIZE"'
set -uo pipefail

usage() {
  sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
n=$1
shift
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "launch-local: N must be a positive integer, got '$n'" >&2; usage; }
if [ "${1:-}" = "--" ]; then shift; fi

if [ $# -gt 0 ] && [[ "$1" != -* ]] && { [[ "$1" == */* && -x "$1" ]] || type -P "$1" >/dev/null 2>&1; }; then
  cmd=("$@")
else
  here=$(cd "$(dirname "$0")/.." && pwd)
  bin=${TINYZERO_BIN:-${BUILD_DIR:-$here/build}/tinyzero-train}
  [ -x "$bin" ] || { echo "launch-local: $bin not found; build it (scripts/build.sh) or set TINYZERO_BIN" >&2; exit 2; }
  cmd=("$bin" "$@")
fi

# A free port: ask the kernel for one (python3), else try random ones until none answers.
free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' && return
  fi
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo 29500
}

port=${MASTER_PORT:-$(free_port)}
cores=$(nproc 2>/dev/null || echo 1)
threads=$((cores / n))
[ "$threads" -ge 1 ] || threads=1

# Each rank runs in its own process group (setsid), so stopping it also stops what it started.
setsid=()
if command -v setsid >/dev/null 2>&1; then setsid=(setsid); fi
pids=()
stop_all() {
  local sig=$1
  for p in "${pids[@]}"; do kill "-$sig" -- "-$p" 2>/dev/null || kill "-$sig" "$p" 2>/dev/null; done
}
trap 'stop_all TERM; sleep 1; stop_all KILL; exit 130' INT TERM

for ((i = 0; i < n; i++)); do
  RANK=$i LOCAL_RANK=$i WORLD_SIZE=$n LOCAL_WORLD_SIZE=$n MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-$threads} \
    "${setsid[@]}" "${cmd[@]}" > >(sed -u "s/^/[rank $i] /") 2>&1 &
  pids+=($!)
done

# Poll until every rank has finished or one has failed.
status=0
failed_rank=-1
remaining=$n
declare -A done_rank=()
while [ "$remaining" -gt 0 ]; do
  for ((i = 0; i < n; i++)); do
    [ -n "${done_rank[$i]:-}" ] && continue
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      wait "${pids[$i]}"
      code=$?
      done_rank[$i]=1
      remaining=$((remaining - 1))
      if [ "$code" -ne 0 ] && [ "$failed_rank" -lt 0 ]; then
        failed_rank=$i
        status=$code
        echo "launch-local: rank $i exited with status $code; stopping the other ranks" >&2
        stop_all TERM
        kill_at=$((SECONDS + 5))
      fi
    fi
  done
  if [ -n "${kill_at:-}" ] && [ "$SECONDS" -ge "$kill_at" ]; then
    stop_all KILL
    kill_at=
  fi
  [ "$remaining" -gt 0 ] && sleep 0.1
done
wait 2>/dev/null  # the output filters
exit "$status"
