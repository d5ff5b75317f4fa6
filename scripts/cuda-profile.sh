#!/usr/bin/env bash
# Where a decode step's GPU time goes: rebuilds the PTX (nvcc), makes the
# TinyLlama-shaped q4_0 file, times every kernel of two decode steps with
# Nsight Compute (ncu, clocks left alone) and prints the time per kernel
# name and per token, then "llamago bench --backend cuda" tg128. Same
# preparation as scripts/cuda-bench.sh; TYPES picks the bench files.
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
scripts/build-ptx.sh "$OUT/llamago.ptx" && export LLAMAGO_CUDA_PTX=$OUT/llamago.ptx
(cd backend/cuda && LLAMAGO_SHARED=$DEV/shared LLAMAGO_CUDA_SYNTH_DIR=$SYN LLAMAGO_CUDA_SYNTH_TYPES=$TYPES \
	"$DEV/cuda.test" -test.run='^TestWriteBenchModels$' -test.v) 2>&1 | grep -E 'wrote|FAIL'
ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
m=$SYN/tinyllama-q4_0.gguf
if [ -n "$ncu" ]; then
	# Eager launches (one per operation, about 470 a token): skip the prompt
	# and about 10 steps, time about 2.
	LLAMAGO_CUDA_EAGER=1 timeout 200 "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --launch-skip 5000 --launch-count 940 \
		"$DEV/llamago" run --backend cuda -m "$m" --no-chat -p "Once upon a time" -n 40 --temp 0 -c 256 >"$OUT/ncu.csv" 2>"$OUT/ncu.err"
	python3 - "$OUT/ncu.csv" <<'PY'
import csv, sys, collections
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]; rows = rows[1:]
ki, vi, ui = head.index("Kernel Name"), head.index("Metric Value"), head.index("Metric Unit")
tot = collections.defaultdict(float); cnt = collections.Counter()
for r in rows:
    v = float(r[vi].replace(",", ""))
    v = v / 1000 if r[ui] == "nsecond" else v * 1000 if r[ui] == "msecond" else v
    name = r[ki].split("(")[0]; tot[name] += v; cnt[name] += 1
n = sum(cnt.values()); t = sum(tot.values())
print("ncu: %d kernels, %.1f us in all, %.1f us per 470 launches (a token)" % (n, t, t * 470 / max(n, 1)))
for k in sorted(tot, key=lambda k: -tot[k]):
    print("  %-12s %5d launches %9.1f us  %7.2f us each" % (k, cnt[k], tot[k], tot[k] / cnt[k]))
PY
	tail -3 "$OUT/ncu.err"
fi
for t in $(echo "$TYPES" | tr ',' ' '); do
	timeout 120 "$DEV/llamago" bench --backend cuda -m "$SYN/tinyllama-$t.gguf" -p 512 -n 128 -r 3 2>&1
	LLAMAGO_CUDA_EAGER=1 timeout 120 "$DEV/llamago" bench --backend cuda -m "$SYN/tinyllama-$t.gguf" -p 0 -n 128 -r 3 2>&1 | tail -1
done
