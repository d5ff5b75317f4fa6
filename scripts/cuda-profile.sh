#!/usr/bin/env bash
# Where a decode step's GPU time goes: rebuilds the PTX (nvcc), makes the
# TinyLlama-shaped q4_0 file, times every kernel of two decode steps with
# Nsight Compute (ncu, clocks left alone) and prints the time per kernel
# name, then "llamago bench --backend cuda" tg128 as it is and eager,
# without PDL, without chunks. Same preparation as scripts/cuda-bench.sh;
# TYPES picks the bench files.
set -uo pipefail
cd "$(dirname "$0")/.."
DEV=$(cd "${DEV:-.device}" && pwd)
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TYPES=${TYPES:-q4_0}
SYN=/tmp/llamago-synth
mkdir -p "$SYN"
for f in "$DEV"/*.gz; do [ -e "$f" ] && gunzip -f "$f"; done
chmod +x "$DEV/llamago" "$DEV/cuda.test"
scripts/build-ptx.sh "$OUT/llamago.ptx" && export LLAMAGO_CUDA_PTX=$OUT/llamago_sm90.ptx # H100/H200: sm_90
(cd backend/cuda && LLAMAGO_SHARED=$DEV/shared LLAMAGO_CUDA_SYNTH_DIR=$SYN LLAMAGO_CUDA_SYNTH_TYPES=$TYPES \
	"$DEV/cuda.test" -test.run='^TestWriteBenchModels$' -test.v) 2>&1 | grep -E 'wrote|FAIL'
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
m=$SYN/tinyllama-q4_0.gguf
if [ -n "$ncu" ]; then
	# The launches as they run (fused, from graphs; ncu times each kernel
	# node by itself, so PDL's overlap does not show, and it flushes the
	# caches between kernels, which makes small kernels read high): about
	# 160 a decode step; skip the prompt and about 25 steps, time 2.
	timeout 200 "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --launch-skip 4000 --launch-count 330 \
		"$DEV/llamago" run --backend cuda -m "$m" --no-chat -p "Once upon a time" -n 40 --temp 0 -c 256 >"$OUT/ncu.csv" 2>"$OUT/ncu.err"
	python3 - "$OUT/ncu.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, vi, ui = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    v = float(r[vi].replace(",", ""))
    v = v / 1000 if r[ui] in ("ns", "nsecond") else v * 1000 if r[ui] in ("ms", "msecond") else v
    name = r[ki].split("(")[0]; tot[name] += v; cnt[name] += 1
n = sum(cnt.values()); t = sum(tot.values())
print("ncu: %d kernels, %.1f us in all" % (n, t))
for k in sorted(tot, key=lambda k: -tot[k]):
    print("  %-16s %5d launches %9.1f us  %7.2f us each" % (k, cnt[k], tot[k], tot[k] / cnt[k]))
PY
	tail -3 "$OUT/ncu.err"
fi
for t in $(echo "$TYPES" | tr ',' ' '); do
	timeout 120 "$DEV/llamago" bench --backend cuda -m "$SYN/tinyllama-$t.gguf" -p 512 -n 128 -r 3 2>&1
	for env in LLAMAGO_CUDA_EAGER=1 LLAMAGO_CUDA_PDL=0 LLAMAGO_CUDA_CHUNK=0 LLAMAGO_CUDA_GLU_TAIL=1; do
		env $env timeout 120 "$DEV/llamago" bench --backend cuda -m "$SYN/tinyllama-$t.gguf" -p 0 -n 128 -r 3 2>&1 | tail -1 | sed "s|^|$env: |"
	done
done
