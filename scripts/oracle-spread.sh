#!/usr/bin/env bash
# How far apart two correct engines may land on the synthetic TinyLlama-shaped
# files: traces the CPU backend and the float64 oracle on the same prompt and
# token ids, diffs them with "llamago diff", and prints the summary and the
# relative error of each layer's ffn_out at the last prompt position.
#
# The oracle computes every operation in float64 but rounds the activations
# to the weights' dot-product formats exactly as ggml does (F16 for F16
# weights, Q8_0 / Q8_K blocks for the quantized types). Last-bit differences
# before such a rounding flip some rounded values, and the model carries the
# flips on, so the two land at a distance set by the rounding step, not by
# float32 against float64. That distance is the floor any engine that is not
# bit-identical to the CPU backend (another summation order, the GPU) meets,
# and the reason docs/CUDA.md states the tolerance it uses per type.
#
# Usage: scripts/oracle-spread.sh [TYPE ...]   (default: f16 q8_0 q4_0 q4_k_m)
# Makes missing synthetic files first (bench-vs-llamacpp --prepare, minutes).
# Takes about a minute per type (the oracle is plain float64 loops).
set -euo pipefail
cd "$(dirname "$0")/.."
types=("$@")
[ ${#types[@]} -gt 0 ] || types=(f16 q8_0 q4_0 q4_k_m)
cache=${LLAMAGO_SYNTH_CACHE:-$HOME/.cache/llamago/synth}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/llamago" ./cmd/llamago
prompt="Once upon a time there was a little girl"
for t in "${types[@]}"; do
	if ! log=$(go run ./cmd/bench-vs-llamacpp --prepare --types "$t" 2>&1); then
		echo "$log" >&2
		exit 1
	fi
	file=$(ls "$cache"/synth-v1-e2048-l22-*-"$t".gguf | head -1)
	for b in cpu oracle; do
		"$work/llamago" trace --backend "$b" --kv-f32 -m "$file" --no-chat -p "$prompt" -n 8 \
			--dump "$work/$b-$t.safetensors" >/dev/null 2>&1
	done
	echo "== $t: $(basename "$file")"
	# --force: greedy ids may part after a few tokens; then only the
	# positions both runs share are comparable, so compare the prompt.
	"$work/llamago" diff --force --pos 0-9 "$work/oracle-$t.safetensors" "$work/cpu-$t.safetensors" | tail -2
	echo -n "   ffn_out relative error at position 9, by layer:"
	"$work/llamago" diff --force --all --pos 9 --probe 'blk.*.ffn_out' \
		"$work/oracle-$t.safetensors" "$work/cpu-$t.safetensors" |
		awk '$1 ~ /^blk\./ {split($1, p, "."); printf " %s:%s", p[2], $4} END {print ""}'
done
