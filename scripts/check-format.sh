#!/usr/bin/env bash
# The format check CI runs (as the ctest test Lint.ClangFormat): every tracked C++ file outside
# third_party/ must be exactly as clang-format leaves it under .clang-format (Google style, 110 columns).
#   bash scripts/check-format.sh         list the files that differ, with the first differences; exit 1
#   bash scripts/check-format.sh --fix   reformat them in place
# The formatter is pinned to Debian 12's clang-format-14 (installed by scripts/install-deps.sh):
# other versions break some lines differently.
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format-14}
if ! command -v "$CLANG_FORMAT" >/dev/null; then
  echo "check-format: $CLANG_FORMAT not found; run scripts/install-deps.sh (or set CLANG_FORMAT)" >&2
  exit 2
fi
mapfile -t files < <(git ls-files -- '*.cpp' '*.h' '*.cu' '*.cuh' '*.cpp.in' ':!:third_party/*')
if [ "${1:-}" = "--fix" ]; then
  "$CLANG_FORMAT" -i "${files[@]}"
  exit 0
fi
bad=0
diff_out=$(mktemp)
trap 'rm -f "$diff_out"' EXIT
for f in "${files[@]}"; do
  if ! "$CLANG_FORMAT" "$f" | diff -u --label "$f" --label "$f (clang-format)" "$f" - >"$diff_out"; then
    bad=$((bad + 1))
    head -n 20 "$diff_out"
  fi
done
if [ "$bad" -ne 0 ]; then
  echo "check-format: $bad of ${#files[@]} files are not clang-formatted; fix with: bash scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
