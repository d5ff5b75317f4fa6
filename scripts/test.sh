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
# target gets LLAMAGO_FUZZTIME (10s by default). Minimising a new input is
# capped at 2s: the default (60s) can outlast -fuzztime on a loaded machine,
# and the run then fails with "context deadline exceeded" without a crasher.
fuzztime=${LLAMAGO_FUZZTIME:-10s}
for target in $(scripts/fuzz-targets.sh); do
  pkg=${target%%:*}; fn=${target##*:}
  t=$fuzztime
  [ "$pkg:$fn" = "./gguf:FuzzParse" ] && t=${LLAMAGO_GGUF_FUZZTIME:-60s}
  echo "-- $pkg $fn ($t)"
  log=$(mktemp)
  if ! go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$t" -fuzzminimizetime=2s "$pkg" 2>&1 | tee "$log"; then
    # Go's fuzzing engine can miss its own deadline on a loaded machine
    # ("context deadline exceeded", no failing input written): run that
    # target once more. A real failure writes testdata/fuzz and stops here.
    if grep -q "context deadline exceeded" "$log" && [ -z "$(git status --porcelain -- "$pkg/testdata/fuzz" 2>/dev/null)" ]; then
      echo "-- $pkg $fn: the fuzzing engine missed its deadline; running it again"
      go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$t" -fuzzminimizetime=2s "$pkg"
    else
      exit 1
    fi
  fi
  rm -f "$log"
done
echo "all tests passed"
