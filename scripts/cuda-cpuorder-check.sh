#!/usr/bin/env bash
# Checks the CUDA backend's CPU-order mode on a machine with an NVIDIA GPU
# in one go: builds the CPU-order PTX with nvcc (scripts/build-cpuorder-ptx.sh)
# and tests with it, prints ptxas's register report, runs the GPU tests of
# the mode (every operation and whole models against the CPU backend, bit
# for bit; with LLAMAGO_CUDA_BIG=1 the TinyLlama-shaped F16, Q8_0, Q4_0 and
# Q4_K_M models), then "llamago trace"/"llamago diff" of CUDA (CPU order,
# and default for comparison) against the CPU on those models and
# "llamago run" 128 greedy tokens on both backends.
#
# Variables: TESTS, the -test.run patterns (several separated by ';', one
# cuda.test run each); CLI_TYPES, the TinyLlama-shaped files of the CLI
# part (default "f16 q8_0 q4_0 q4_k_m"; each must have been written by the
# tests); BENCH_TYPE, the file "llamago bench" runs in both modes
# (default f16; "none" skips it).
#
# The machine needs no Go: build the binaries elsewhere into $DEV with
#
#   CGO_ENABLED=0 go build -ldflags=-s -o $DEV/llamago ./cmd/llamago
#   CGO_ENABLED=0 go test -c -ldflags=-s -o $DEV/cuda.test ./backend/cuda
#
# (gzip them if you like), copy the shared assets under $DEV/shared
# (models/stories260K/stories260K.gguf,
# tokenizers/llama-spm/ggml-vocab-llama-spm.gguf) and the sources this
# script builds (scripts/build-cpuorder-ptx.sh, backend/cuda/kernels/cpuorder)
# under $DEV/src. Results go to $OUT: the PTX, the test log, the diffs.
set -uo pipefail
DEV=$(cd "${DEV:?set DEV}" && pwd)
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
work=$(mktemp -d)
for f in "$DEV"/*.gz; do [ -e "$f" ] && gunzip -f "$f"; done
chmod +x "$DEV/llamago" "$DEV/cuda.test"
echo "== GPU"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== PTX"
ptx=
if bash "$DEV/src/scripts/build-cpuorder-ptx.sh" "$OUT/cpuorder.ptx"; then
	ptx=$OUT/cpuorder.ptx
	(cd "$DEV/src" && nvcc -cubin -arch=sm_90 -O3 -std=c++17 -fmad=false -Xptxas -v -o "$work/co.cubin" backend/cuda/kernels/cpuorder/cpuorder.cu) >"$OUT/ptxas.txt" 2>&1
	grep -E 'Compiling entry|registers|spill' "$OUT/ptxas.txt" | paste - - - | sed -E 's/ptxas info *: //g' | cut -c1-160
else
	echo "build-cpuorder-ptx.sh failed"; exit 1
fi
export LLAMAGO_CUDA=1 LLAMAGO_CUDA_CPU_ORDER_PTX=$ptx LLAMAGO_SHARED=$DEV/shared LLAMAGO_CUDA_OUT=$work
export LLAMAGO_CUDA_SYNTH_DIR=$work/synth
mkdir -p "$LLAMAGO_CUDA_SYNTH_DIR"

echo "== go tests (LLAMAGO_CUDA=1 LLAMAGO_CUDA_BIG=${LLAMAGO_CUDA_BIG:-})"
runs=${TESTS:-'CPUOrder(MatMul|Rowwise|Attention|Stories260K|Synthetic|TinyLlama)|TestStories260KGreedyMatchesCPU|TestElementwiseMatchCPU|TestMatMulAndGetRowsMatchCPU'}
test_rc=0
: >"$OUT/test.log"
IFS=';' read -ra patterns <<<"$runs"
for run in "${patterns[@]}"; do
	start=$(date +%s)
	(cd "$work" && timeout 230 "$DEV/cuda.test" -test.v -test.count=1 -test.timeout=220s -test.run "$run") >"$work/test.log" 2>&1
	rc=$?
	cat "$work/test.log" >>"$OUT/test.log"
	[ $rc -ne 0 ] && test_rc=$rc
	echo "-- -test.run '$run'"
	grep -E '^(--- |\s+\S+_test.go:|PASS|FAIL|ok|panic)' "$work/test.log" | grep -vE '^\s+--- PASS' | cut -c1-600
	echo "tests: rc $rc in $(($(date +%s) - start)) s"
done

prompt="Once upon a time there was a little girl"
for typ in ${CLI_TYPES:-f16 q8_0 q4_0 q4_k_m}; do
	model=$(ls "$LLAMAGO_CUDA_SYNTH_DIR"/*-$typ.gguf 2>/dev/null | head -1)
	if [ -z "$model" ]; then
		echo "no TinyLlama-shaped $typ file (LLAMAGO_CUDA_BIG unset?)"
		continue
	fi
	echo "== llamago trace/diff, TinyLlama-shaped $typ ($(basename "$model")), F32 cache, 8 greedy tokens"
	start=$(date +%s)
	timeout 90 "$DEV/llamago" trace --backend cpu --kv-f32 -m "$model" --no-chat -p "$prompt" -n 8 --dump "$work/cli-cpu.safetensors" >/dev/null
	LLAMAGO_CUDA_CPU_ORDER=1 timeout 90 "$DEV/llamago" trace --backend cuda --kv-f32 -m "$model" --no-chat -p "$prompt" -n 8 --dump "$work/cli-exact.safetensors" >/dev/null
	timeout 90 "$DEV/llamago" trace --backend cuda --kv-f32 -m "$model" --no-chat -p "$prompt" -n 8 --dump "$work/cli-default.safetensors" >/dev/null
	echo "-- CPU-order mode vs cpu:"
	"$DEV/llamago" diff "$work/cli-exact.safetensors" "$work/cli-cpu.safetensors" >"$OUT/diff-exact-$typ.txt" 2>&1; echo "exit $?"
	tail -2 "$OUT/diff-exact-$typ.txt"
	echo "-- CPU-order mode vs cpu, rows with any nonzero error (-agree 1e-38):"
	"$DEV/llamago" diff -agree 1e-38 "$work/cli-exact.safetensors" "$work/cli-cpu.safetensors" 2>&1 | tail -2
	echo "-- default kernels vs cpu:"
	"$DEV/llamago" diff "$work/cli-default.safetensors" "$work/cli-cpu.safetensors" >"$OUT/diff-default-$typ.txt" 2>&1; echo "exit $?"
	tail -2 "$OUT/diff-default-$typ.txt"
	echo "-- llamago run --backend cuda (CPU order) vs cpu, 128 greedy tokens, F16 cache:"
	LLAMAGO_CUDA_CPU_ORDER=1 timeout 90 "$DEV/llamago" run --backend cuda -m "$model" --no-chat -p "$prompt" -n 128 --temp 0 --json >"$work/run-exact.json" 2>"$work/run-exact.err" || head -c 400 "$work/run-exact.err"
	timeout 90 "$DEV/llamago" run --backend cpu -m "$model" --no-chat -p "$prompt" -n 128 --temp 0 --json >"$work/run-cpu.json" 2>"$work/run-cpu.err" || head -c 400 "$work/run-cpu.err"
	ids() { grep -o '"generated_ids":\[[^]]*\]' "$1"; }
	if [ -n "$(ids "$work/run-cpu.json")" ] && [ "$(ids "$work/run-exact.json")" = "$(ids "$work/run-cpu.json")" ]; then echo "run: token ids equal"; else echo "run: token ids DIFFER (or not found)"; fi
	echo "cli $typ: $(($(date +%s) - start)) s"
done

bench=${BENCH_TYPE:-f16}
model=$(ls "$LLAMAGO_CUDA_SYNTH_DIR"/*-"$bench".gguf 2>/dev/null | head -1)
if [ "$bench" != none ] && [ -n "$model" ]; then
	echo "== llamago bench, TinyLlama-shaped $bench: CPU-order mode, then the default kernels"
	{
		LLAMAGO_CUDA_CPU_ORDER=1 timeout 120 "$DEV/llamago" bench --backend cuda -m "$model" -p 512 -n 32 -r 2
		timeout 120 "$DEV/llamago" bench --backend cuda -m "$model" -p 512 -n 32 -r 2
	} 2>&1 | tee "$OUT/bench.txt" | grep -E '^\|' | grep -v -- '---'
fi
exit $test_rc
