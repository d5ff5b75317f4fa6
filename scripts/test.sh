#!/usr/bin/env bash
# Runs every llamago test: static checks, the test suite (with the llama.cpp
# cross-checks), and a bounded run of each fuzz target.
# Works on a fresh machine: it installs the pinned llama.cpp package first
# when node_modules is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.4.0.so ]; then
  npm ci --omit=optional --ignore-scripts --no-audit --no-fund
fi

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck=$(go env GOPATH)/bin/staticcheck
[ -x "$staticcheck" ] || go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
"$staticcheck" ./...

echo "== go test"
go test -count=1 -timeout 40m ./...

echo "== fuzz (bounded)"
# The GGUF reader reads untrusted files: it gets a minute; every other
# target gets LLAMAGO_FUZZTIME (10s by default).
fuzztime=${LLAMAGO_FUZZTIME:-10s}
for target in $(scripts/fuzz-targets.sh); do
  pkg=${target%%:*}; fn=${target##*:}
  t=$fuzztime
  [ "$pkg:$fn" = "./gguf:FuzzParse" ] && t=${LLAMAGO_GGUF_FUZZTIME:-60s}
  echo "-- $pkg $fn ($t)"
  go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$t" "$pkg"
done
echo "all tests passed"
