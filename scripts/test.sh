#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything, runs the whole suite.
#   bash scripts/test.sh              all tests
#   LABEL=unit bash scripts/test.sh   only one label (unit, integration, dist, gpu, lint)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
export BUILD_DIR

t0=$(date +%s)
bash scripts/install-deps.sh
t1=$(date +%s)
bash scripts/build.sh
t2=$(date +%s)

label_args=()
# A label that selects no test is an error, not a pass (a typo, or tests that were never built).
if [ -n "${LABEL:-}" ]; then label_args=(-L "$LABEL" --no-tests=error); fi
status=0
# Each test process uses one intra-op thread; ctest runs one test per core.
OMP_NUM_THREADS=1 ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" --timeout 900 \
  "${label_args[@]}" || status=$?
t3=$(date +%s)
echo "timing: install $((t1 - t0)) s, build $((t2 - t1)) s, tests $((t3 - t2)) s"
exit $status
