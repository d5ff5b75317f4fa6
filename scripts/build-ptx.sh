#!/usr/bin/env bash
# Compiles the CUDA backend's kernels (backend/cuda/kernels/*.cu) to the PTX
# that package backend/cuda embeds, on a machine with nvcc. The first line
# of the PTX records the SHA-256 of the sources (every kernels/*.cu and
# *.cuh, concatenated in byte order of their names); the Go test
# TestPTXMatchesSources checks it against the committed sources in CI.
#
# usage: scripts/build-ptx.sh [OUT.ptx]   (default backend/cuda/kernels/llamago.ptx)
#
# Two files: OUT.ptx targets compute_80 (Ampere and newer: the driver
# compiles it for the GPU at load time), OUT_sm90.ptx (llamago_sm90.ptx next
# to it) compute_90, whose kernels also take part in programmatic dependent
# launch (griddepcontrol, Hopper and newer). The backend loads the second
# on sm_90 and newer GPUs.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=backend/cuda/kernels
out=${1:-$dir/llamago.ptx}
out90=${out%.ptx}_sm90.ptx

shopt -s nullglob
mapfile -t srcs < <(printf '%s\n' "$dir"/*.cu "$dir"/*.cuh | LC_ALL=C sort)
digest=$(cat "${srcs[@]}" | sha256sum | cut -d' ' -f1)
version=$(nvcc --version | grep -o 'release [0-9.]*' || echo 'release ?')

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
for target in "compute_80:$out" "compute_90:$out90"; do
	arch=${target%%:*} file=${target#*:}
	flags=(-ptx -arch="$arch" -O3 -std=c++17)
	nvcc "${flags[@]}" -o "$tmp" "$dir/llamago.cu"
	{
		echo "// llamago-sources-sha256: $digest"
		echo "// made by scripts/build-ptx.sh: nvcc $version ${flags[*]} (do not edit)"
		cat "$tmp"
	} >"$file"
	echo "wrote $file (sources $digest)"
done
