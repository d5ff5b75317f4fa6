#!/usr/bin/env bash
# Checks the CUDA backend on a machine with an NVIDIA GPU, in one go:
# rebuilds the PTX with nvcc (when nvcc is there) and uses it, prints the
# kernels' register and spill report, runs the GPU tests of backend/cuda
# (operations against the CPU backend, stories260K greedy and probe diff,
# synthetic quantized models), then "llamago trace" / "llamago diff" /
# "llamago run --json --backend cuda", and ends with a short table.
#
# The machine needs no Go: build the binaries elsewhere into $DEV
# (default .device) with
#
#   CGO_ENABLED=0 go build -ldflags=-s -o .device/llamago ./cmd/llamago
#   CGO_ENABLED=0 go test -c -ldflags=-s -o .device/cuda.test ./backend/cuda
#
# and copy the shared assets the tests use under $DEV/shared (same layout
# as ../shared: models/stories260K/stories260K.gguf,
# tokenizers/llama-spm/ggml-vocab-llama-spm.gguf). Results go to $OUT
# (default a temporary folder): the PTX, the test log, the reports.
set -uo pipefail
cd "$(dirname "$0")/.."
DEV=$(cd "${DEV:-.device}" && pwd)
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true

# sm_90 and newer load the compute_90 PTX (programmatic dependent launch).
suffix=
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)
[ "${cc%%.*}" -ge 9 ] 2>/dev/null && suffix=_sm90
ptx=$PWD/backend/cuda/kernels/llamago$suffix.ptx
if command -v nvcc >/dev/null; then
	echo "== PTX"
	if scripts/build-ptx.sh "$OUT/llamago.ptx"; then
		ptx=$OUT/llamago$suffix.ptx
		for f in llamago.ptx llamago_sm90.ptx; do
			cmp -s "$OUT/$f" "backend/cuda/kernels/$f" && echo "$f: as committed" || echo "$f: differs from the committed file"
		done
	else
		echo "build-ptx.sh failed: testing the committed PTX"
	fi
	nvcc -cubin -arch=sm_90 -O3 -Xptxas -v -o "$work/k.cubin" backend/cuda/kernels/llamago.cu >"$OUT/ptxas.txt" 2>&1 || true
	grep -E 'Compiling entry|registers|spill' "$OUT/ptxas.txt" | paste - - - | sed -E 's/ptxas info *: //g' | cut -c1-200
fi
export LLAMAGO_CUDA=1 LLAMAGO_CUDA_PTX=$ptx LLAMAGO_SHARED=$DEV/shared LLAMAGO_CUDA_OUT=$work

# LLAMAGO_CUDA_BIG=1 (set it before calling) adds the TinyLlama-shaped
# speed test. SKIP, a -test.skip pattern, leaves tests out (cuda-bench.sh
# passes CPUOrder and runs those later on the synthetic files it writes,
# which the CPU-order TinyLlama tests would otherwise write themselves).
echo "== go tests (LLAMAGO_CUDA=1)"
skip=()
[ -n "${SKIP:-}" ] && skip=(-test.skip "$SKIP") && echo "(skipping $SKIP)"
# Go tests run in their package's folder (the PTX hash test reads kernels/).
(cd backend/cuda && timeout 420 "$DEV/cuda.test" -test.v -test.count=1 -test.timeout=410s "${skip[@]}") >"$OUT/test.log" 2>&1
test_rc=$?
grep -E '^(=== RUN|--- |\s+\S+_test.go:|PASS|FAIL|ok|panic)' "$OUT/test.log" | grep -v '^=== RUN' | cut -c1-400

model=$DEV/shared/models/stories260K/stories260K.gguf
echo "== llamago trace --backend cuda / diff"
if "$DEV/llamago" trace --backend cuda --kv-f32 -m "$model" --no-chat -p "Once upon a time" -n 100 --dump "$work/cli-cuda.safetensors" >/dev/null 2>"$work/trace.err"; then
	"$DEV/llamago" trace --backend cpu --kv-f32 -m "$model" --no-chat -p "Once upon a time" -n 100 --dump "$work/cli-cpu.safetensors" >/dev/null
	"$DEV/llamago" diff "$work/cli-cuda.safetensors" "$work/cli-cpu.safetensors" | tail -4
else
	head -c 300 "$work/trace.err"; echo
	if [ -f "$work/trace-cuda.safetensors" ]; then
		echo "(the dumps of TestTraceDiffStories260K instead)"
		"$DEV/llamago" diff "$work/trace-cuda.safetensors" "$work/trace-cpu.safetensors" >"$OUT/diff.txt" 2>&1
		tail -4 "$OUT/diff.txt"
	fi
fi

echo "== llamago run --json"
for be in cuda cpu; do
	"$DEV/llamago" run --json --backend "$be" -m "$model" --no-chat -p "Once upon a time" -n 200 --temp 0 -c 256 >"$work/run-$be.json" 2>&1
	echo "$be: $(grep -o '"generated_ids":\[[0-9,]\{0,80\}' "$work/run-$be.json")… $(grep -o '"[a-z_]*tokens_per_second":[0-9.]*' "$work/run-$be.json" | tr '\n' ' ')"
done
"$DEV/llamago" run --backend cuda -m "$model" -n 4 -p x 2>&1 | head -3

echo "== summary"
printf '%-44s %s\n' test result
grep -E '^\s*--- (PASS|FAIL|SKIP)' "$OUT/test.log" | sed -E 's/^\s*--- (\w+): (\S+) \(([0-9.]+s)\)/\2 \1 \3/' | awk '{printf "%-44s %s %s\n", $1, $2, $3}'
grep -E 'ids equal|diff cuda vs cpu|TinyLlama|decode step|wrote|MatMul |Add \(|Attention, ' "$OUT/test.log" | sed -E 's/^\s+\S+_test.go:[0-9]+: //' | cut -c1-330
echo "go tests exit status $test_rc"
exit $test_rc
