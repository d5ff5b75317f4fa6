#!/usr/bin/env bash
# The CUDA backend's whole device session in one go (one call of this
# workplace's device tool): the checks of scripts/cuda-check.sh, then
# llama.cpp's llama-bench and "llamago bench --backend cuda" side by side,
# pp512 and tg128, on TinyLlama-shaped synthetic files made on the machine.
#
# Build here first (the device has no Go and no network):
#
#   CGO_ENABLED=0 go build -ldflags='-s -w' -o .device/llamago ./cmd/llamago
#   CGO_ENABLED=0 go test -c -ldflags='-s -w' -o .device/cuda.test ./backend/cuda
#   gzip -f .device/llamago .device/cuda.test
#   cp node_modules/node-llama-cpp/llama/gitRelease.bundle .device/
#   (and .device/shared as scripts/cuda-check.sh says)
#
# then, there, with .device carried: DEV=.device OUT=$OUT bash scripts/cuda-bench.sh
# TYPES (default q4_0,q8_0,q4_k_m,f16) picks the files; REPS the repetitions.
set -uo pipefail
cd "$(dirname "$0")/.."
DEV=$(cd "${DEV:-.device}" && pwd)
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TYPES=${TYPES:-q4_0,q8_0,q4_k_m,f16}
REPS=${REPS:-3}
SYN=/tmp/llamago-synth
mkdir -p "$SYN"
t0=$(date +%s)
stamp() { echo "[$(($(date +%s) - t0)) s] $*"; }
for f in "$DEV"/*.gz; do [ -e "$f" ] && gunzip -f "$f"; done
chmod +x "$DEV/llamago" "$DEV/cuda.test"

# llama.cpp from the npm package's source bundle, built in the background.
lcpp=/tmp/llama.cpp
(
	{ [ -d "$lcpp/.git" ] || git clone -q "$DEV/gitRelease.bundle" "$lcpp"; } &&
		cmake -S "$lcpp" -B "$lcpp/build" -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release >/tmp/lcpp-cmake.log 2>&1 &&
		cmake --build "$lcpp/build" --target llama-bench -j 12 >/tmp/lcpp-build.log 2>&1
	echo "llama.cpp build exit status $?"
) >/tmp/lcpp.status 2>&1 &
lcpp_pid=$!

stamp "== card"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv,noheader
python3 - <<'EOF' 2>/dev/null || echo "copy bandwidth: torch unavailable"
import torch
x = torch.empty(2**31, dtype=torch.uint8, device="cuda"); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
s.record()
for _ in range(20): y.copy_(x)
e.record(); torch.cuda.synchronize()
print("device-to-device copy: %.0f GB/s (bytes read + written)" % (2 * 2**31 * 20 / (s.elapsed_time(e) / 1e3) / 1e9))
EOF

stamp "== synthetic TinyLlama-shaped q4_0"
synth() {
	(cd backend/cuda && LLAMAGO_SHARED=$DEV/shared LLAMAGO_CUDA_SYNTH_DIR=$SYN LLAMAGO_CUDA_SYNTH_TYPES=$1 \
		"$DEV/cuda.test" -test.run='^TestWriteBenchModels$' -test.v -test.timeout=500s) 2>&1 | grep -E 'wrote|FAIL|Error|error' | cut -c1-200
}
synth q4_0 | tee "$OUT/synth.log"
others=$(echo "$TYPES" | tr ',' '\n' | grep -v '^q4_0$' | paste -sd, -)
if [ -n "$others" ]; then
	(synth "$others" >>"$OUT/synth.log") &
	synth_pid=$!
fi

stamp "== checks (scripts/cuda-check.sh)"
# CPU-order tests later, on the synthetic files (below).
SKIP=CPUOrder LLAMAGO_CUDA_BIG=1 LLAMAGO_CUDA_TINYLLAMA=$SYN/tinyllama-q4_0.gguf DEV=$DEV OUT=$OUT timeout 330 bash scripts/cuda-check.sh
check_rc=$?

stamp "== waiting for the synthetic files"
[ -n "${synth_pid:-}" ] && wait "$synth_pid"
cat "$OUT/synth.log"
ls -lL "$SYN"/tinyllama-*.gguf

# While llama.cpp still builds.
stamp "== CPU-order tests (-test.run CPUOrder) on the synthetic files"
# $LLAMAGO_CUDA_TINYLLAMA_<TYPE> hands the tests the files written above
# instead of letting them write their own (a type missing here is written
# into the same cache, $SYN, which costs minutes).
tiny_env=()
for t in f16 q8_0 q4_0 q4_k_m; do
	[ -e "$SYN/tinyllama-$t.gguf" ] && tiny_env+=("LLAMAGO_CUDA_TINYLLAMA_$(echo "$t" | tr a-z A-Z)=$SYN/tinyllama-$t.gguf")
done
ptx=$PWD/backend/cuda/kernels/llamago.ptx
[ -f "$OUT/llamago.ptx" ] && ptx=$OUT/llamago.ptx
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)
[ "${cc%%.*}" -ge 9 ] 2>/dev/null && ptx=${ptx%.ptx}_sm90.ptx
(cd backend/cuda && env "${tiny_env[@]}" LLAMAGO_CUDA=1 LLAMAGO_CUDA_BIG=1 LLAMAGO_CUDA_PTX="$ptx" LLAMAGO_SHARED="$DEV/shared" \
	LLAMAGO_CUDA_SYNTH_DIR=$SYN LLAMAGO_CUDA_OUT="$(mktemp -d)" timeout 300 "$DEV/cuda.test" -test.run CPUOrder -test.v -test.count=1 -test.timeout=290s) >"$OUT/test-cpuorder.log" 2>&1
cpuorder_rc=$?
grep -E '^\s*--- (PASS|FAIL|SKIP)|^(PASS|FAIL|ok|panic)|diff cuda' "$OUT/test-cpuorder.log" | cut -c1-300
echo "CPU-order tests exit status $cpuorder_rc"
[ "$check_rc" -eq 0 ] && check_rc=$cpuorder_rc

stamp "== waiting for llama.cpp"
wait "$lcpp_pid"
cat /tmp/lcpp.status
tail -3 /tmp/lcpp-build.log 2>/dev/null

stamp "== benchmarks: pp512, tg128, $REPS repetitions, same card"
export LLAMAGO_CUDA_PTX=$OUT/llamago_sm90.ptx
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1)
[ "${cc%%.*}" -ge 9 ] 2>/dev/null || LLAMAGO_CUDA_PTX=$OUT/llamago.ptx
[ -f "$LLAMAGO_CUDA_PTX" ] || unset LLAMAGO_CUDA_PTX
for t in $(echo "$TYPES" | tr ',' ' '); do
	m=$SYN/tinyllama-$t.gguf
	[ -e "$m" ] || { echo "$t: no file"; continue; }
	if [ -x "$lcpp/build/bin/llama-bench" ]; then
		timeout 120 "$lcpp/build/bin/llama-bench" -m "$m" -p 512 -n 128 -fa 1 -ngl 99 -r "$REPS" -o md 2>&1 | grep -E '^\|' | tee -a "$OUT/bench.log"
	fi
	timeout 120 "$DEV/llamago" bench --backend cuda -m "$m" -p 512 -n 128 -r "$REPS" 2>&1 | tee -a "$OUT/bench.log"
	# The same decode without programmatic dependent launch.
	echo "$t without PDL (LLAMAGO_CUDA_PDL=0):" | tee -a "$OUT/bench.log"
	LLAMAGO_CUDA_PDL=0 timeout 120 "$DEV/llamago" bench --backend cuda -m "$m" -p 0 -n 128 -r "$REPS" 2>&1 | tail -1 | tee -a "$OUT/bench.log"
	# And with mvq_glu rounding the down product's input into Q8 blocks
	# itself (its fence-and-counter tail) instead of an act launch (F16
	# rounds value by value in mvq_glu either way).
	if [ "$t" != f16 ]; then
		echo "$t with mvq_glu's rounding tail (LLAMAGO_CUDA_GLU_TAIL=1):" | tee -a "$OUT/bench.log"
		LLAMAGO_CUDA_GLU_TAIL=1 timeout 120 "$DEV/llamago" bench --backend cuda -m "$m" -p 0 -n 128 -r "$REPS" 2>&1 | tail -1 | tee -a "$OUT/bench.log"
	fi
done
stamp "== CUDA against the CPU on the TinyLlama-shaped files (scripts/cuda-diff.sh)"
CPU_ORDER_ENV=LLAMAGO_CUDA_CPU_ORDER=1 DEV=$DEV SYN=$SYN OUT=$OUT timeout 400 bash scripts/cuda-diff.sh
stamp "done (checks exit status $check_rc)"
exit $check_rc
