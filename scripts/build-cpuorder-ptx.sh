#!/usr/bin/env bash
# Compiles the CUDA backend's CPU-order kernels
# (backend/cuda/kernels/cpuorder/*.cu, the module loaded only with
# cuda.Options.CPUOrder or LLAMAGO_CUDA_CPU_ORDER=1) to the PTX that
# package backend/cuda embeds, on a machine with nvcc. Like
# scripts/build-ptx.sh, the first line of the PTX records the SHA-256 of
# the sources (every kernels/cpuorder/*.cu and *.cuh, concatenated in byte
# order of their names), which TestCPUOrderPTXMatchesSources checks in CI.
#
# usage: scripts/build-cpuorder-ptx.sh [OUT.ptx]
#        (default backend/cuda/kernels/cpuorder/cpuorder.ptx)
#
# -fmad=false: the kernels must round exactly where the CPU backend does,
# so nvcc may not contract a product and a sum into a fused multiply-add
# (the sources also write every operation as a rounding intrinsic); no
# fast-math flags, so subnormals are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=backend/cuda/kernels/cpuorder
out=${1:-$dir/cpuorder.ptx}
arch=compute_80
flags=(-ptx -arch="$arch" -O3 -std=c++17 -fmad=false)

shopt -s nullglob
mapfile -t srcs < <(printf '%s\n' "$dir"/*.cu "$dir"/*.cuh | LC_ALL=C sort)
digest=$(cat "${srcs[@]}" | sha256sum | cut -d' ' -f1)

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
nvcc "${flags[@]}" -o "$tmp" "$dir/cpuorder.cu"
version=$(nvcc --version | grep -o 'release [0-9.]*' || echo 'release ?')
{
	echo "// llamago-sources-sha256: $digest"
	echo "// made by scripts/build-cpuorder-ptx.sh: nvcc $version ${flags[*]} (do not edit)"
	cat "$tmp"
} >"$out"
echo "wrote $out (sources $digest)"
