#!/usr/bin/env bash
# Checks the syntax of the CUDA kernels on a machine without the CUDA
# toolkit: clang's CUDA front end (Debian's clang, 14 or newer) parses
# backend/cuda/kernels/*.cu for sm_80 against a few declarations of the
# CUDA built-ins they use, in place of the toolkit's headers. It compiles
# nothing: the PTX is still made by scripts/build-ptx.sh on a machine with
# nvcc. A clean run takes seconds and catches typos before a device call.
#
# usage: scripts/cuda-syntax.sh   (CLANG overrides the compiler)
set -euo pipefail
cd "$(dirname "$0")/.."
clang=${CLANG:-$(command -v clang++ || command -v clang++-14 || true)}
[ -n "$clang" ] || { echo "cuda-syntax.sh: no clang++ (apt install clang)" >&2; exit 2; }
prelude=$(mktemp --suffix=.h)
trap 'rm -f "$prelude"' EXIT
cat >"$prelude" <<'H'
#define __device__ __attribute__((device))
#define __global__ __attribute__((global))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))
#define __align__(n) __attribute__((aligned(n)))
#include "__clang_cuda_builtin_vars.h"
#include <stddef.h>
#include <stdint.h>
struct uint4 { unsigned x, y, z, w; };
struct int4 { int x, y, z, w; };
struct uint2 { unsigned x, y; };
struct int2 { int x, y; };
struct float2 { float x, y; };
struct float4 { float x, y, z, w; };
__device__ float __shfl_xor_sync(unsigned, float, int);
__device__ double __shfl_xor_sync(unsigned, double, int);
__device__ int __shfl_xor_sync(unsigned, int, int);
__device__ unsigned __shfl_xor_sync(unsigned, unsigned, int);
__device__ long long __shfl_xor_sync(unsigned, long long, int);
__device__ float __shfl_sync(unsigned, float, int);
__device__ int __shfl_sync(unsigned, int, int);
__device__ unsigned __shfl_sync(unsigned, unsigned, int);
__device__ float __shfl_down_sync(unsigned, float, int, int width = 32);
__device__ double __shfl_down_sync(unsigned, double, int, int width = 32);
__device__ float __shfl_xor_sync(unsigned, float, int, int);
__device__ float __fadd_rn(float, float);
__device__ double __dadd_rn(double, double);
__device__ double __dmul_rn(double, double);
__device__ double __dsub_rn(double, double);
__device__ double __ddiv_rn(double, double);
__device__ double __dsqrt_rn(double);
__device__ float __fdiv_rn(float, float);
__device__ double floor(double);
__device__ float floorf(float);
__device__ float __double2float_rn(double);
__device__ float fmaf(float, float, float);
__device__ unsigned __ballot_sync(unsigned, int);
__device__ int __any_sync(unsigned, int);
__device__ unsigned __activemask();
__device__ void __syncwarp(unsigned mask = 0xffffffffu);
__device__ void __syncthreads();
__device__ int __syncthreads_or(int);
__device__ void __threadfence();
__device__ int __dp4a(int, int, int);
__device__ int4 make_int4(int, int, int, int);
__device__ uint4 make_uint4(unsigned, unsigned, unsigned, unsigned);
__device__ float __ldcg(const float *);
__device__ int atomicAdd(int *, int);
__device__ unsigned atomicAdd(unsigned *, unsigned);
__device__ int __popc(unsigned);
__device__ int __float2int_rn(float);
__device__ float __int_as_float(int);
__device__ int __float_as_int(float);
__device__ float __uint_as_float(unsigned);
__device__ unsigned __float_as_uint(float);
__device__ double __longlong_as_double(long long);
__device__ long long __double_as_longlong(double);
__device__ float __fmul_rn(float, float);
__device__ float __fsub_rn(float, float);
__device__ float __fmaf_rn(float, float, float);
__device__ unsigned __cvta_generic_to_shared(const void *);
__device__ float sqrtf(float);
__device__ double sqrt(double);
__device__ double exp(double);
__device__ float expf(float);
__device__ float fabsf(float);
__device__ float fmaxf(float, float);
__device__ float fminf(float, float);
__device__ float rintf(float);
__device__ float roundf(float);
__device__ void sincosf(float, float *, float *);
__device__ void sincos(double, double *, double *);
__device__ int isnan(float);
__device__ int isinf(float);
__device__ int max(int, int);
__device__ int min(int, int);
H
status=0
for src in backend/cuda/kernels/*.cu backend/cuda/kernels/*/*.cu; do
	[ -e "$src" ] || continue
	if "$clang" -x cuda --cuda-gpu-arch=sm_80 -nocudainc -nocudalib --cuda-device-only -fsyntax-only -std=c++17 \
		-include "$prelude" "$src"; then
		echo "$src: syntax ok"
	else
		status=1
	fi
done
exit $status
