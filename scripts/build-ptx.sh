#!/usr/bin/env bash
# Compiles the CUDA backend's kernels (backend/cuda/kernels/*.cu) to the PTX
# that package backend/cuda embeds, on a machine with nvcc. The first line
# of the PTX records the SHA-256 of the sources (every kernels/*.cu and
# *.cuh, concatenated in byte order of their names); the Go test
# TestPTXMatchesSources checks it against the committed sources in CI.
#
# usage: scripts/build-ptx.sh [OUT.ptx]   (default backend/cuda/kernels/llamago.ptx)
#
# The PTX targets compute_80 (Ampere and newer, Hopper included): the driver
# compiles it for the GPU at load time, so one file serves every such GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=backend/cuda/kernels
out=${1:-$dir/llamago.ptx}
arch=compute_80
flags=(-ptx -arch="$arch" -O3 -std=c++17)

shopt -s nullglob
mapfile -t srcs < <(printf '%s\n' "$dir"/*.cu "$dir"/*.cuh | LC_ALL=C sort)
digest=$(cat "${srcs[@]}" | sha256sum | cut -d' ' -f1)

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
nvcc "${flags[@]}" -o "$tmp" "$dir/llamago.cu"
version=$(nvcc --version | grep -o 'release [0-9.]*' || echo 'release ?')
{
	echo "// llamago-sources-sha256: $digest"
	echo "// made by scripts/build-ptx.sh: nvcc $version ${flags[*]} (do not edit)"
	cat "$tmp"
} >"$out"
echo "wrote $out (sources $digest)"
