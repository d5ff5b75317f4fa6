#!/usr/bin/env bash
# Times the kernels of a decode step on the GPU's clock, on a machine with
# an NVIDIA GPU and nvcc: compiles the kernels with -DTIMELINE=1 (every
# decode kernel stamps %globaltimer; see TIMELINE in kernels/llamago.cu)
# and runs the GPU test TestDecodeTimeline on a TinyLlama-shaped file,
# which it makes first when $FILE is not given (TYPE, default f16). The
# test prints, for each kind of launch, what it adds to the step, how long
# it waited after the launch before it and how long it ran. With BLOCKS=1
# every block also stamps its end (TL_BLOCKS=1), and the test reports when
# each launch's slowest block ended and how the blocks fell on the
# multiprocessors (the stamps' atomics make the step about 5% slower).
#
# Build the test binary elsewhere, as scripts/cuda-check.sh says, then
#   DEV=.device OUT=$OUT bash scripts/cuda-timeline.sh
set -uo pipefail
cd "$(dirname "$0")/.."
DEV=$(cd "${DEV:-.device}" && pwd)
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
TYPE=${TYPE:-f16}
for f in "$DEV"/*.gz; do [ -e "$f" ] && gunzip -f "$f"; done
chmod +x "$DEV/cuda.test"
nvcc -ptx -arch=compute_90 -O3 -std=c++17 -DTIMELINE=1 -DTL_BLOCKS="${BLOCKS:-0}" -o "$OUT/timeline_sm90.ptx" backend/cuda/kernels/llamago.cu || exit 1
file=${FILE:-}
if [ -z "$file" ]; then
	syn=/tmp/llamago-synth
	mkdir -p "$syn"
	(cd backend/cuda && LLAMAGO_SHARED=$DEV/shared LLAMAGO_CUDA_SYNTH_DIR=$syn LLAMAGO_CUDA_SYNTH_TYPES=$TYPE \
		"$DEV/cuda.test" -test.run='^TestWriteBenchModels$' -test.timeout=500s >/dev/null) || exit 1
	file=$syn/tinyllama-$TYPE.gguf
fi
cd backend/cuda &&
	LLAMAGO_CUDA=1 LLAMAGO_CUDA_TIMELINE=1 LLAMAGO_CUDA_PTX="$OUT/timeline_sm90.ptx" LLAMAGO_CUDA_TINYLLAMA="$file" \
		"$DEV/cuda.test" -test.run='^TestDecodeTimeline$' -test.v -test.count=1 -test.timeout=300s | tee "$OUT/timeline.log"
