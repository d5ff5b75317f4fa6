#!/usr/bin/env bash
# Lists the fuzz targets of the module as PACKAGE:FUNCTION lines.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . --exclude-dir=node_modules | sort | while read -r f; do
  pkg="./$(dirname "${f#./}")"
  grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //' | while read -r fn; do echo "$pkg:$fn"; done
done
