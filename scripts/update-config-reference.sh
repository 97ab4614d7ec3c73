#!/usr/bin/env bash
# Regenerates the config reference in docs/config-reference.md (between its config-reference markers)
# from the schema (`tinyzero-train config reference`). The unit test ConfigReferenceDoc.IsCurrent
# (core_config_reference_doc_test) fails when that copy is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BUILD_DIR:-build}/tinyzero-train
doc=docs/config-reference.md
ref=$(mktemp)
"$bin" config reference > "$ref"
awk -v ref="$ref" '
  /<!-- config-reference:begin -->/ { print; while ((getline line < ref) > 0) print line; skip = 1; next }
  /<!-- config-reference:end -->/ { skip = 0 }
  !skip { print }
' "$doc" > "$doc.new"
mv "$doc.new" "$doc"
rm -f "$ref"
echo "$doc updated"
