// Kernels of llamago's CUDA backend (package backend/cuda).
//
// Every kernel is extern "C" so that the Go side finds it by its plain name
// in the PTX. The file includes no CUDA header: half-precision conversions
// are single PTX instructions written inline, so the same source builds with
// nvcc and, for a syntax check on machines without the toolkit, with clang.
//
// Numerics follow the CPU backend (and through it ggml) wherever that is
// cheap: the activations of a product are first rounded through the weight
// type's dot-product format (F16, Q8_0 or Q8_K) exactly as the CPU quantizes
// them, so that the GPU's float product of dequantized weights and rounded
// activations equals the CPU's integer block sums up to the order of
// additions. RMSNorm sums in double, exponentials are taken in double and
// rounded to float, RoPE accumulates its angle in float pair by pair.
//
// Layouts: activations are row-major float32, one token per row. Weights keep
// GGUF's block layout, rowBytes bytes per output row. The KV cache is
// [slot][layer][position][kvDim], float32 or F16 bits.

#include <stddef.h>
#include <stdint.h>

#define WARP 32

// ---------------------------------------------------------------- helpers

__device__ __forceinline__ float half_to_float(uint16_t h) {
    float f;
    asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ uint16_t float_to_half(float f) {
    uint16_t h;
    asm("{ .reg .b16 t; cvt.rn.f16.f32 t, %1; mov.b16 %0, t; }" : "=h"(h) : "f"(f));
    return h;
}

// round_f16 rounds a float to the nearest F16 value.
__device__ __forceinline__ float round_f16(float f) { return half_to_float(float_to_half(f)); }

// load_u16 reads a little-endian 16-bit value at any even or odd address.
__device__ __forceinline__ uint16_t load_u16(const uint8_t *p) {
    return (uint16_t)p[0] | ((uint16_t)p[1] << 8);
}

// ACT_Q8_0_INT activations (see the activation kinds below): n int8
// values, then, from byte q8_scales_at(n) on, one float scale (the
// F16-rounded d) per 32 values. The one-token Q4_0 and Q8_0 products
// (mvq_…) read 1 byte of activation a value instead of 4 and sum integer
// products (dp4a), as the CPU does.
__device__ __forceinline__ size_t q8_scales_at(int n) { return ((size_t)n + 15) & ~(size_t)15; }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// ------------------------------------------------ programmatic dependent launch

// On sm_90 and newer the Go side launches kernels with programmatic stream
// serialization (cuLaunchKernelEx; it holds inside CUDA graphs too): a
// kernel may be launched before the kernel before it has finished, so
// that its launch and block scheduling overlap that kernel's end. Every
// kernel therefore calls pdl_begin() before it touches anything: it waits
// until the previous kernel has finished and its writes are visible.
// Compiled for an older target, or launched without the attribute, it is
// nothing.
//
// Most kernels never call griddepcontrol.launch_dependents (pdl_release):
// the next kernel then launches as each block of this one exits. On an
// H100 (TinyLlama-shaped decode, tg128) triggering at the start of every
// kernel let the blocks of the next kernels sit waiting on the
// multiprocessors and was slower than no PDL at all for Q8_0 (582 against
// 679 tokens/s); triggering after the products' main loops was no better
// than not triggering (Q4_0 930/924, Q8_0 702/716, Q4_K_M 829/842, F16
// 610/600). Prefetching the one-token products' weight rows into L2
// before the wait (the weights are no kernel's output) made decode slower
// too (F16 496 tokens/s with the prefetch, 595 without), and so did
// copying them into shared memory with cp.async before the wait (session
// five: Q4_0 979–1012 → 741, F16 631–637 → 426). Only the kernels followed
// by a few blocks release their successor early (pdl_release).
__device__ __forceinline__ void pdl_begin() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// pdl_release lets the next kernel launch now instead of as this one's
// blocks exit (griddepcontrol.launch_dependents); the next kernel still
// waits for this one to finish, and its writes, before it reads anything
// (pdl_begin). Called first thing by the kernels whose successor is small
// or whose own blocks are few, so that the two do not compete for the
// multiprocessors: rms_norm and attention for one row (decode: one block,
// a block per head; the product after them launches and schedules its
// blocks meanwhile) and the one-token products (followed by attention, an
// RMSNorm or argmax; see mvq). Measured on an H100 (tg128, three
// alternating runs each, session five), the first two: Q8_0 772 → 794
// tokens/s, Q4_K_M 906 → 918, Q4_0 1023 → 1032, F16 unchanged (646 →
// 645); releasing in mvq_glu too (so that the down product launches
// early) made Q4_0 and Q4_K_M 3–5% slower.
__device__ __forceinline__ void pdl_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// TIMELINE (for measuring; 0, off): the decode step's kernels stamp the
// GPU's nanosecond clock (%globaltimer) when the first and the last
// block of a launch start, when their wait for the kernel before returns
// and when they end (rms_norm and attention also at two points inside:
// TL_MID1, TL_MID2; the products, rms_norm and attention just before
// their wait: TL_PRE), into tl_time and tl_tag (kernel TL_…, event,
// whether the last block), tl_count counting the stamps; the GPU test
// TestDecodeTimeline reads them back (scripts/cuda-timeline.sh). A
// stamping block reserves its slots with one atomic at its start, so
// that the stamps after it are plain stores (taking a slot at each
// stamp held thread 0 about 0.5 µs a stamp). With TL_BLOCKS=1 as well,
// every block also stamps its end in a slot of its own, taken then (tag
// bit 13), so that the test sees when a launch's slowest block ended.
// Built with -DTIMELINE=1 only, never committed so.
#ifndef TIMELINE
#define TIMELINE 0
#endif
#ifndef TL_BLOCKS
#define TL_BLOCKS 0
#endif
enum { TL_GET_ROWS = 1, TL_RMS_NORM, TL_MVQ, TL_MVQ_GLU, TL_ATTENTION, TL_COPY_ROWS, TL_ACT, TL_OTHER };
enum { TL_START = 0, TL_WAITED = 1, TL_END = 2, TL_MID1 = 3, TL_MID2 = 4, TL_PRE = 5, TL_P1 = 6, TL_P2 = 7, TL_EVENTS = 8 };
#if TIMELINE
#define TL_CAP (TL_BLOCKS ? 1 << 19 : 1 << 16)
__device__ unsigned long long tl_time[TL_CAP];
__device__ unsigned int tl_tag[TL_CAP];
__device__ unsigned int tl_count;
#if TL_BLOCKS
__device__ unsigned int tl_info[TL_CAP]; // a block's end stamp: its multiprocessor | blockIdx.x << 8
#endif
__device__ __forceinline__ void tl_mark(int kernel, int event) {
    // A stamping block takes TL_EVENTS slots at its start (before its
    // wait), so that its later stamps are stores alone, which wait for
    // nothing.
    __shared__ unsigned int tl_base;
    if (threadIdx.x != 0) return;
    const bool first = blockIdx.x == 0 && blockIdx.y == 0;
    const bool last = blockIdx.x == gridDim.x - 1 && blockIdx.y == gridDim.y - 1;
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    if (TL_BLOCKS && event == TL_END) {
        const unsigned int i = atomicAdd(&tl_count, 1u);
        if (i < TL_CAP) {
            tl_time[i] = t;
            tl_tag[i] = kernel | event << 8 | 1u << 13 | 1u << 16;
#if TL_BLOCKS
            unsigned int sm;
            asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
            tl_info[i] = sm | blockIdx.x << 8;
#endif
        }
    }
    if (!first && !last) return;
    if (event == TL_START) tl_base = atomicAdd(&tl_count, (unsigned int)TL_EVENTS);
    const unsigned int i = tl_base + event;
    if (i < TL_CAP) {
        tl_time[i] = t;
        tl_tag[i] = kernel | event << 8 | (first ? 0 : 1) << 12 | 1u << 16;
    }
}
#else
__device__ __forceinline__ void tl_mark(int, int) {}
#endif

// Weight type codes, shared with the Go side (gpuType in cuda.go).
enum {
    TYPE_F32 = 0,
    TYPE_F16 = 1,
    TYPE_Q4_0 = 2,
    TYPE_Q8_0 = 3,
    TYPE_Q4_K = 4,
    TYPE_Q6_K = 5,
};

// Block geometry: values per block, bytes per block.
#define QK 32
#define Q4_0_BYTES 18
#define Q8_0_BYTES 34
#define QK_K 256
#define Q4_K_BYTES 144
#define Q6_K_BYTES 210

// dequant_chunk writes the 32 values of chunk c (values 32c..32c+31) of a
// quantized row. Every supported block type splits into independent chunks
// of 32 values, which lets one lane own a chunk.
template <int TYPE>
__device__ __forceinline__ void dequant_chunk(const uint8_t *row, int c, float w[QK]);

template <>
__device__ __forceinline__ void dequant_chunk<TYPE_Q4_0>(const uint8_t *row, int c, float w[QK]) {
    const uint8_t *b = row + (size_t)c * Q4_0_BYTES;
    const float d = half_to_float(load_u16(b));
#pragma unroll
    for (int i = 0; i < 16; i++) {
        const uint8_t q = b[2 + i];
        w[i] = (float)((int)(q & 15) - 8) * d;
        w[i + 16] = (float)((int)(q >> 4) - 8) * d;
    }
}

template <>
__device__ __forceinline__ void dequant_chunk<TYPE_Q8_0>(const uint8_t *row, int c, float w[QK]) {
    const uint8_t *b = row + (size_t)c * Q8_0_BYTES;
    const float d = half_to_float(load_u16(b));
#pragma unroll
    for (int i = 0; i < QK; i++) w[i] = (float)(int8_t)b[2 + i] * d;
}

// scale_min_k4 unpacks the 6-bit scale and min of sub-block j of a Q4_K
// block's 12 scale bytes.
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

template <>
__device__ __forceinline__ void dequant_chunk<TYPE_Q4_K>(const uint8_t *row, int c, float w[QK]) {
    // A Q4_K block: d, dmin (F16), 12 scale bytes, 128 bytes of nibbles.
    // Chunk k of a block is 64-group k/2, low nibbles for even k.
    const uint8_t *b = row + (size_t)(c / 8) * Q4_K_BYTES;
    const int k = c % 8;
    const float d = half_to_float(load_u16(b));
    const float dmin = half_to_float(load_u16(b + 2));
    int sc, m;
    scale_min_k4(k, b + 4, &sc, &m);
    const float d1 = d * (float)sc;
    const float m1 = dmin * (float)m;
    const uint8_t *q = b + 16 + 32 * (k / 2);
    const int shift = (k & 1) ? 4 : 0;
#pragma unroll
    for (int l = 0; l < QK; l++) w[l] = d1 * (float)((q[l] >> shift) & 15) - m1;
}

template <>
__device__ __forceinline__ void dequant_chunk<TYPE_Q6_K>(const uint8_t *row, int c, float w[QK]) {
    // A Q6_K block: ql[128], qh[64], scales[16] (int8), d (F16). Each half
    // of 128 values uses 64 ql bytes, 32 qh bytes and 8 scales; chunk k of
    // a half takes low (k < 2) or high nibbles of ql[l + 32·(k&1)] and
    // bits 2k..2k+1 of qh[l].
    const uint8_t *b = row + (size_t)(c / 8) * Q6_K_BYTES;
    const int half = (c % 8) / 4;
    const int k = c % 4;
    const uint8_t *ql = b + 64 * half + 32 * (k & 1);
    const uint8_t *qh = b + 128 + 32 * half;
    const int8_t *sc = (const int8_t *)(b + 192) + 8 * half;
    const float d = half_to_float(load_u16(b + 208));
    const int lowShift = (k >> 1) * 4;
    const int highShift = 2 * k;
#pragma unroll
    for (int l = 0; l < QK; l++) {
        const int q = (((ql[l] >> lowShift) & 15) | (((qh[l] >> highShift) & 3) << 4)) - 32;
        w[l] = d * (float)sc[l / 16 + 2 * k] * (float)q;
    }
}

// ---------------------------------------------------------------- products

// weight_at is value l (0..31) of 32-value chunk c of a weight row. The 32
// lanes of a warp read the 32 values of one chunk together, so that their
// loads of the weight bytes and of the activations coalesce (the scales
// are one broadcast load). Plain types may end in a partial chunk; the
// caller keeps c·32 + l below the row length.
template <int TYPE>
__device__ __forceinline__ float weight_at(const uint8_t *row, int c, int l);

template <>
__device__ __forceinline__ float weight_at<TYPE_F32>(const uint8_t *row, int c, int l) {
    return ((const float *)row)[c * QK + l];
}

template <>
__device__ __forceinline__ float weight_at<TYPE_F16>(const uint8_t *row, int c, int l) {
    return half_to_float(((const uint16_t *)row)[c * QK + l]);
}

template <>
__device__ __forceinline__ float weight_at<TYPE_Q4_0>(const uint8_t *row, int c, int l) {
    // Values 0..15 are the low nibbles of qs[0..15], 16..31 the high ones.
    const uint8_t *b = row + (size_t)c * Q4_0_BYTES;
    const uint8_t q = b[2 + (l & 15)];
    return (float)((int)(l < 16 ? q & 15 : q >> 4) - 8) * half_to_float(load_u16(b));
}

template <>
__device__ __forceinline__ float weight_at<TYPE_Q8_0>(const uint8_t *row, int c, int l) {
    const uint8_t *b = row + (size_t)c * Q8_0_BYTES;
    return (float)(int8_t)b[2 + l] * half_to_float(load_u16(b));
}

template <>
__device__ __forceinline__ float weight_at<TYPE_Q4_K>(const uint8_t *row, int c, int l) {
    const uint8_t *b = row + (size_t)(c / 8) * Q4_K_BYTES;
    const int k = c % 8;
    int sc, m;
    scale_min_k4(k, b + 4, &sc, &m);
    const float d1 = half_to_float(load_u16(b)) * (float)sc;
    const float m1 = half_to_float(load_u16(b + 2)) * (float)m;
    const uint8_t q = b[16 + 32 * (k / 2) + l];
    return d1 * (float)((k & 1) ? q >> 4 : q & 15) - m1;
}

template <>
__device__ __forceinline__ float weight_at<TYPE_Q6_K>(const uint8_t *row, int c, int l) {
    const uint8_t *b = row + (size_t)(c / 8) * Q6_K_BYTES;
    const int half = (c % 8) / 4;
    const int k = c % 4;
    const uint8_t ql = b[64 * half + 32 * (k & 1) + l];
    const uint8_t qh = b[128 + 32 * half + l];
    const int8_t sc = (int8_t)b[192 + 8 * half + l / 16 + 2 * k];
    const int q = (((ql >> ((k >> 1) * 4)) & 15) | (((qh >> (2 * k)) & 3) << 4)) - 32;
    return half_to_float(load_u16(b + 208)) * (float)sc * (float)q;
}

// Tokens per tile of the product kernels: each weight row is read once for
// MM_TOKENS activation rows. Decode (one token) has kernels of its own
// (mv_…) with a single accumulator: fewer registers, more warps in flight.
#define MM_TOKENS 8
#define MM_WARPS 4

// mm computes y[t][r] = Σ w[r][i]·x[t][i]: one block of MM_WARPS warps per
// weight row r (blockIdx.x) and NT tokens (blockIdx.y). Warp w takes chunks
// w, w+MM_WARPS, …; lane l value l of each chunk. The warps' sums meet in
// shared memory.
template <int TYPE, int NT, int UNROLL>
__device__ void mm(const uint8_t *W, long long rowBytes, int wrows, int cols, const float *X, float *Y, int ntok) {
    pdl_begin();
    __shared__ float part[MM_WARPS][NT];
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int r = blockIdx.x;
    const int t0 = blockIdx.y * NT;
    const int nt = ntok - t0 < NT ? ntok - t0 : NT;
    const uint8_t *row = W + (size_t)r * rowBytes;
    const float *x0 = X + (size_t)t0 * cols;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.f;
    const int chunks = (cols + QK - 1) / QK;
#pragma unroll UNROLL
    for (int c = warp; c < chunks; c += MM_WARPS) {
        const int i = c * QK + lane;
        if (i < cols) {
            const float w = weight_at<TYPE>(row, c, lane);
#pragma unroll
            for (int t = 0; t < NT; t++) {
                if (t < nt) acc[t] += w * x0[(size_t)t * cols + i];
            }
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        const float s = warp_sum(acc[t]);
        if (lane == 0) part[warp][t] = s;
    }
    __syncthreads();
    if (threadIdx.x < nt) {
        float s = 0.f;
#pragma unroll
        for (int w = 0; w < MM_WARPS; w++) s += part[w][threadIdx.x];
        Y[(size_t)(t0 + threadIdx.x) * wrows + r] = s;
    }
}

// unit_dot is the dot product of one "unit" of a quantized row, 8 values,
// with the activations: the one-token kernels give each thread a run of
// units, consecutive threads consecutive units, so that a warp reads whole
// blocks with 2- and 4-byte weight loads and 16-byte activation loads
// (the lane-per-value layout of mm reads a byte per thread). The weights
// are dequantized as dequant_chunk does, value by value.
template <int TYPE>
__device__ __forceinline__ float unit_dot(const uint8_t *row, int u, const float *x);

__device__ __forceinline__ float dot4(float4 x, float a, float b, float c, float d) {
    return a * x.x + b * x.y + c * x.z + d * x.w;
}

template <>
__device__ __forceinline__ float unit_dot<TYPE_Q4_0>(const uint8_t *row, int u, const float *x) {
    // Unit m of a block: quant bytes 4m..4m+3, values 4m..4m+3 (low
    // nibbles) and 16+4m.. (high nibbles).
    const int b = u / 4, m = u % 4;
    const uint8_t *bp = row + (size_t)b * Q4_0_BYTES;
    const float d = half_to_float(*(const uint16_t *)bp);
    const uint32_t q = (uint32_t)*(const uint16_t *)(bp + 2 + 4 * m) | ((uint32_t)*(const uint16_t *)(bp + 4 + 4 * m) << 16);
    const float *xb = x + (size_t)b * QK;
    const float4 lo = *(const float4 *)(xb + 4 * m), hi = *(const float4 *)(xb + 16 + 4 * m);
    float w[8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int byte = (q >> (8 * i)) & 255;
        w[i] = (float)((byte & 15) - 8) * d;
        w[4 + i] = (float)((byte >> 4) - 8) * d;
    }
    return dot4(lo, w[0], w[1], w[2], w[3]) + dot4(hi, w[4], w[5], w[6], w[7]);
}

template <>
__device__ __forceinline__ float unit_dot<TYPE_Q8_0>(const uint8_t *row, int u, const float *x) {
    // Unit m of a block: values 8m..8m+7.
    const int b = u / 4, m = u % 4;
    const uint8_t *bp = row + (size_t)b * Q8_0_BYTES;
    const float d = half_to_float(*(const uint16_t *)bp);
    const uint16_t *qs = (const uint16_t *)(bp + 2 + 8 * m);
    const float *xb = x + (size_t)b * QK + 8 * m;
    const float4 x0 = *(const float4 *)xb, x1 = *(const float4 *)(xb + 4);
    float w[8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const uint16_t two = qs[i];
        w[2 * i] = (float)(int8_t)(two & 255) * d;
        w[2 * i + 1] = (float)(int8_t)(two >> 8) * d;
    }
    return dot4(x0, w[0], w[1], w[2], w[3]) + dot4(x1, w[4], w[5], w[6], w[7]);
}

template <>
__device__ __forceinline__ float unit_dot<TYPE_Q4_K>(const uint8_t *row, int u, const float *x) {
    // 32 units a block: unit l takes quant bytes 4m..4m+3 (m = l%8) of
    // 64-group j = l/8, which hold values 64j+4m.. (low nibbles, sub-block
    // 2j) and 64j+32+4m.. (high nibbles, sub-block 2j+1).
    const int s = u / 32, l = u % 32, j = l / 8, m = l % 8;
    const uint8_t *bp = row + (size_t)s * Q4_K_BYTES;
    const float d = half_to_float(*(const uint16_t *)bp);
    const float dmin = half_to_float(*(const uint16_t *)(bp + 2));
    int sc, mn;
    scale_min_k4(2 * j, bp + 4, &sc, &mn);
    const float d1 = d * (float)sc, m1 = dmin * (float)mn;
    scale_min_k4(2 * j + 1, bp + 4, &sc, &mn);
    const float d2 = d * (float)sc, m2 = dmin * (float)mn;
    const uint32_t q = *(const uint32_t *)(bp + 16 + 32 * j + 4 * m);
    const float *xs = x + (size_t)s * QK_K + 64 * j + 4 * m;
    const float4 lo = *(const float4 *)xs, hi = *(const float4 *)(xs + 32);
    float w[8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const int byte = (q >> (8 * i)) & 255;
        w[i] = d1 * (float)(byte & 15) - m1;
        w[4 + i] = d2 * (float)(byte >> 4) - m2;
    }
    return dot4(lo, w[0], w[1], w[2], w[3]) + dot4(hi, w[4], w[5], w[6], w[7]);
}

template <>
__device__ __forceinline__ float unit_dot<TYPE_Q6_K>(const uint8_t *row, int u, const float *x) {
    // 32 units a block, 16 a half of 128 values: unit l takes positions
    // 2mm and 2mm+1 (mm = l%16) of each of the half's four 32-value chunks.
    const int s = u / 32, l = u % 32, half = l / 16, mm = l % 16;
    const uint8_t *bp = row + (size_t)s * Q6_K_BYTES;
    const uint16_t a = *(const uint16_t *)(bp + 64 * half + 2 * mm);      // chunks 0 (low) and 2 (high)
    const uint16_t c = *(const uint16_t *)(bp + 64 * half + 32 + 2 * mm); // chunks 1 (low) and 3 (high)
    const uint16_t h = *(const uint16_t *)(bp + 128 + 32 * half + 2 * mm);
    const int8_t *sc = (const int8_t *)(bp + 192) + 8 * half + mm / 8;
    const float d = half_to_float(*(const uint16_t *)(bp + 208));
    const float *xh = x + (size_t)s * QK_K + 128 * half + 2 * mm;
    float sum = 0.f;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const float2 xv = *(const float2 *)(xh + 32 * k);
        const uint16_t lq = (k & 1) ? c : a;
        const float ds = d * (float)sc[2 * k];
        float w[2];
#pragma unroll
        for (int i = 0; i < 2; i++) {
            const int byte = (lq >> (8 * i)) & 255;
            const int nib = (k >> 1) ? byte >> 4 : byte & 15;
            const int q = (nib | ((((h >> (8 * i)) & 255) >> (2 * k) & 3) << 4)) - 32;
            w[i] = ds * (float)q;
        }
        sum += w[0] * xv.x + w[1] * xv.y;
    }
    return sum;
}

template <>
__device__ __forceinline__ float unit_dot<TYPE_F32>(const uint8_t *row, int u, const float *x) {
    const float4 *w = (const float4 *)(row + (size_t)u * 32);
    const float4 *xv = (const float4 *)(x + (size_t)u * 8);
    const float4 w0 = w[0], w1 = w[1], x0 = xv[0], x1 = xv[1];
    return dot4(x0, w0.x, w0.y, w0.z, w0.w) + dot4(x1, w1.x, w1.y, w1.z, w1.w);
}

template <>
__device__ __forceinline__ float unit_dot<TYPE_F16>(const uint8_t *row, int u, const float *x) {
    // One 16-byte load of eight F16 values.
    const uint4 q = *(const uint4 *)(row + (size_t)u * 16);
    const float4 *xv = (const float4 *)(x + (size_t)u * 8);
    const float4 x0 = xv[0], x1 = xv[1];
    return dot4(x0, half_to_float(q.x & 0xffff), half_to_float(q.x >> 16), half_to_float(q.y & 0xffff), half_to_float(q.y >> 16)) +
           dot4(x1, half_to_float(q.z & 0xffff), half_to_float(q.z >> 16), half_to_float(q.w & 0xffff), half_to_float(q.w >> 16));
}

// Warps per block of the one-token kernels, MV_ROWS: one warp per weight
// row, so that a row needs no shared memory or barrier, and a block
// carries MV_ROWS rows (one block per row left the GPU scheduling blocks
// of 2 units a thread); F16's mvq and mvq_glu give a row MVQ_SPLIT_F16
// warps (mvq_split), so their blocks carry MV_ROWS / MVQ_SPLIT_F16 rows.
#define MV_ROWS 4
#define MV_THREADS (MV_ROWS * WARP)

// mv is the one-token product over units of 8 values: warp w of block b
// computes row MV_ROWS·b + w, lane l summing units l, l+32, … so that the
// warp reads consecutive bytes of the row. cols must be a multiple of 8
// (the Go side uses mm for F32/F16 rows that are not).
template <int TYPE>
__device__ void mv(const uint8_t *W, long long rowBytes, int wrows, int cols, const float *X, float *Y) {
    pdl_begin();
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int r = blockIdx.x * MV_ROWS + warp;
    if (r >= wrows) return;
    const uint8_t *row = W + (size_t)r * rowBytes;
    const int units = cols / 8;
    float acc = 0.f;
#pragma unroll 4
    for (int u = lane; u < units; u += WARP) acc += unit_dot<TYPE>(row, u, X);
    acc = warp_sum(acc);
    if (lane == 0) Y[r] = acc;
}

// Weight loads of the one-token products (block_dot_q) are streams read
// once a step: they ask L2 for 256 bytes at a miss (.L2::256B) and, for
// F16's 16-byte loads, keep out of L1 (.L1::no_allocate); the 2-byte loads
// of the 2-byte-aligned Q4_0 and Q8_0 blocks keep L1, which serves the
// warp's neighbouring loads of the same sectors. Measured on an H100
// (tg128, session five, three alternating runs): F16 651 → 720 tokens/s,
// Q4_0 1019 → 1044, Q8_0 and Q4_K_M unchanged (the same hint on Q4_K's
// 16-byte loads and on Q6_K's 2-byte ones changed nothing either).
__device__ __forceinline__ uint32_t ldw_u16(const void *p) {
    unsigned short v;
    asm("ld.global.nc.L2::256B.u16 %0, [%1];" : "=h"(v) : "l"(p));
    return v;
}
__device__ __forceinline__ uint4 ldw_stream16(const void *p) {
    uint4 v;
    asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(p));
    return v;
}

// block_dot_q is the dot product of a whole weight block (32 values) with
// int8 activations: the one-token kernels give each lane whole blocks, so
// that a warp has a whole row's bytes in flight at once (a unit of 8
// values a lane left the memory system waiting on too few loads).
template <int TYPE>
__device__ __forceinline__ float block_dot_q(const uint8_t *row, int b, const int8_t *xq, const float *xd, const int *xs);

// mvq_unit is the values a lane takes at a time in mvq: 8 for F16, a block of
// Q4_0/Q8_0, a 64-value group of the k-quants (two Q4_K sub-blocks sharing
// their quant bytes; a quarter of a Q6_K half).
template <int TYPE>
__host__ __device__ constexpr int mvq_unit() { return TYPE == TYPE_Q4_K || TYPE == TYPE_Q6_K ? 64 : TYPE == TYPE_F16 ? 8 : QK; }

// load_u32_a2 reads 4 bytes at a 2-byte-aligned address (Q6_K's 210-byte
// blocks leave every other block off 4-byte alignment).
__device__ __forceinline__ uint32_t load_u32_a2(const uint8_t *p) {
    const uint16_t *h = (const uint16_t *)p;
    return (uint32_t)h[0] | ((uint32_t)h[1] << 16);
}

// sub_bytes subtracts c (at most 0x80) from each byte of v, whose bytes are
// at most 0x7f, without borrows between bytes: the int8 weights of
// Q4_0 (nibble − 8) and Q6_K (6 bits − 32) four at a time.
__device__ __forceinline__ int sub_bytes(uint32_t v, uint32_t c) {
    return (int)(((v | 0x80808080u) - c) ^ 0x80808080u);
}

// The one-token Q4_0 and Q8_0 products read a block as the aligned 4-byte
// words around it (block_words) instead of 2-byte loads: 9 loads a Q8_0
// block instead of 17, 5 a Q4_0 block instead of 9. A warp's lanes read
// blocks 34 (18) bytes apart, so each load instruction spans about nine
// (five) 128-byte lines of L1, and the 2-byte loads kept the products
// waiting on L1 rather than on DRAM. Measured on an H100 (session six):
// one product alone, its matrix read from DRAM, Q8_0 5632×2048 8.30 →
// 7.28 µs, 2048×5632 8.88 → 7.97, 11264×2048 13.16 → 11.35 (Q4_0 within
// ±5%); tg128 Q8_0 843 → 884 tokens/s, Q4_0 1182 → 1227 (three
// alternating runs). Q6_K's 2-byte-aligned runs read the same way gained
// nothing (tg128 Q4_K_M within 1%).

// ldw_u32 is ldw_u16 for an aligned 4-byte word.
__device__ __forceinline__ uint32_t ldw_u32(const void *p) {
    uint32_t v;
    asm("ld.global.nc.L2::256B.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}

// prmt picks 4 of the 8 bytes of (a, b) by selector (PTX prmt).
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
    uint32_t r;
    asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(sel));
    return r;
}

// A 2-byte-aligned Q4_0/Q8_0 block read as the aligned words around it
// (block_words here, MmqWords for the prefill tiles, which load them
// differently): aligned, the scale is word 0's low half and quant word i
// lies across words i and i+1; misaligned (the words start 2 bytes
// early), the scale is word 0's high half and quant word i is word i+1.
__device__ __forceinline__ uint16_t block_scale_bits(uint32_t w0, bool mis) { return (uint16_t)(mis ? w0 >> 16 : w0 & 0xffff); }
__device__ __forceinline__ uint32_t block_quant_word(uint32_t wi, uint32_t wnext, bool mis) {
    return prmt(wi, wnext, mis ? 0x7654 : 0x5432);
}

// block_words loads the N aligned words that hold the 2-byte-aligned block
// at bp (its F16 scale, then quant bytes) and returns its quant words: q[i]
// is quant bytes 4i..4i+3, and *d the scale. At a 4-byte-aligned bp the
// last word is read as its first 2 bytes only, so that no load passes the
// block's end.
template <int N>
__device__ __forceinline__ void block_words(const uint8_t *bp, uint32_t q[N - 1], float *d) {
    const bool mis = ((uintptr_t)bp & 2) != 0;
    const uint32_t *w = (const uint32_t *)(bp - (mis ? 2 : 0));
    uint32_t v[N];
#pragma unroll
    for (int i = 0; i < N - 1; i++) v[i] = ldw_u32(w + i);
    v[N - 1] = mis ? ldw_u32(w + N - 1) : ldw_u16(bp + 4 * (N - 1));
#pragma unroll
    for (int i = 0; i < N - 1; i++) q[i] = block_quant_word(v[i], v[i + 1], mis);
    *d = half_to_float(block_scale_bits(v[0], mis));
}

// WUnit<TYPE> is a unit's weights in registers (wload), which the
// one-token products of Q4_0, Q8_0 and F16 load for their first units
// before they wait for the kernel before them (see mvq); wdot is the
// unit's dot product with the activations, block_dot_q's arithmetic.
template <int TYPE>
struct WUnit {};
template <>
struct WUnit<TYPE_Q4_0> {
    uint32_t q[4];
    float d;
};
template <>
struct WUnit<TYPE_Q8_0> {
    uint32_t q[8];
    float d;
};
template <>
struct WUnit<TYPE_F16> {
    uint4 w;
};

template <int TYPE>
__device__ __forceinline__ WUnit<TYPE> wload(const uint8_t *row, int u);
template <>
__device__ __forceinline__ WUnit<TYPE_Q4_0> wload<TYPE_Q4_0>(const uint8_t *row, int b) {
    WUnit<TYPE_Q4_0> w;
    block_words<5>(row + (size_t)b * Q4_0_BYTES, w.q, &w.d);
    return w;
}
template <>
__device__ __forceinline__ WUnit<TYPE_Q8_0> wload<TYPE_Q8_0>(const uint8_t *row, int b) {
    WUnit<TYPE_Q8_0> w;
    block_words<9>(row + (size_t)b * Q8_0_BYTES, w.q, &w.d);
    return w;
}
template <>
__device__ __forceinline__ WUnit<TYPE_F16> wload<TYPE_F16>(const uint8_t *row, int u) {
    return WUnit<TYPE_F16>{ldw_stream16(row + (size_t)u * 16)};
}

template <int TYPE>
__device__ __forceinline__ float wdot(const WUnit<TYPE> &w, int u, const int8_t *xq, const float *xd);

template <>
__device__ __forceinline__ float wdot<TYPE_Q4_0>(const WUnit<TYPE_Q4_0> &w, int b, const int8_t *xq, const float *xd) {
    const uint32_t *qw = w.q;
    const float d = w.d;
    const int4 xa = *(const int4 *)(xq + (size_t)b * QK), xb = *(const int4 *)(xq + (size_t)b * QK + 16);
    const int xs[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
    int nib = 0, sx = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        // Quant bytes 4i..4i+3: values 4i.. (low nibbles), 16+4i.. (high).
        const uint32_t q = qw[i];
        nib = __dp4a((int)(q & 0x0f0f0f0fu), xs[i], nib);
        nib = __dp4a((int)((q >> 4) & 0x0f0f0f0fu), xs[4 + i], nib);
        sx = __dp4a(0x01010101, xs[i], __dp4a(0x01010101, xs[4 + i], sx));
    }
    // Nibbles are 0..15 for weights -8..7: subtract 8·Σx.
    return (float)(nib - 8 * sx) * (d * xd[b]);
}

template <>
__device__ __forceinline__ float wdot<TYPE_Q8_0>(const WUnit<TYPE_Q8_0> &w, int b, const int8_t *xq, const float *xd) {
    const uint32_t *qw = w.q;
    const float d = w.d;
    const int4 xa = *(const int4 *)(xq + (size_t)b * QK), xb = *(const int4 *)(xq + (size_t)b * QK + 16);
    const int xs[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) sum = __dp4a((int)qw[i], xs[i], sum);
    return (float)sum * (d * xd[b]);
}

template <>
__device__ __forceinline__ float wdot<TYPE_F16>(const WUnit<TYPE_F16> &wu, int u, const int8_t *xq, const float *) {
    // Unit u: values 8u..8u+7, weights and activations (ACT_F16_BITS)
    // both F16, one 16-byte load each; products and sums in float.
    const uint4 w = wu.w, x = *(const uint4 *)(xq + (size_t)u * 16);
    const uint32_t ws[4] = {w.x, w.y, w.z, w.w}, xs[4] = {x.x, x.y, x.z, x.w};
    float sum = 0.f;
#pragma unroll
    for (int i = 0; i < 4; i++)
        sum += half_to_float(ws[i] & 0xffff) * half_to_float(xs[i] & 0xffff) + half_to_float(ws[i] >> 16) * half_to_float(xs[i] >> 16);
    return sum;
}

template <>
__device__ __forceinline__ float block_dot_q<TYPE_Q4_0>(const uint8_t *row, int b, const int8_t *xq, const float *xd, const int *) {
    return wdot<TYPE_Q4_0>(wload<TYPE_Q4_0>(row, b), b, xq, xd);
}
template <>
__device__ __forceinline__ float block_dot_q<TYPE_Q8_0>(const uint8_t *row, int b, const int8_t *xq, const float *xd, const int *) {
    return wdot<TYPE_Q8_0>(wload<TYPE_Q8_0>(row, b), b, xq, xd);
}

// A Q4_K unit u of the one-token products: 64-group g = u % 4 of block
// s = u / 4, its 32 quant bytes holding sub-block 2g (low nibbles) and
// 2g+1 (high nibbles). As the CPU: integer sums times the 6-bit scales,
// d·dx once, the minimums through the activations' chunk sums.
// q4k_wunit holds a unit's weights, q4k_xunit its activations (the same
// for every matrix of a product), q4k_dot their product.
struct Q4KWeights {
    float d, dmin;
    int sc1, m1, sc2, m2;
    uint32_t q[8];
};
struct Q4KActs {
    int lo[8], hi[8];
    float dx;
    int bs0, bs1;
};

__device__ __forceinline__ Q4KWeights q4k_wunit(const uint8_t *row, int u) {
    const int s = u / 4, g = u % 4;
    const uint8_t *bp = row + (size_t)s * Q4_K_BYTES;
    Q4KWeights w;
    w.d = half_to_float(load_u16(bp)), w.dmin = half_to_float(load_u16(bp + 2));
    scale_min_k4(2 * g, bp + 4, &w.sc1, &w.m1);
    scale_min_k4(2 * g + 1, bp + 4, &w.sc2, &w.m2);
    const uint4 qa = *(const uint4 *)(bp + 16 + 32 * g), qb = *(const uint4 *)(bp + 32 + 32 * g);
    w.q[0] = qa.x, w.q[1] = qa.y, w.q[2] = qa.z, w.q[3] = qa.w, w.q[4] = qb.x, w.q[5] = qb.y, w.q[6] = qb.z, w.q[7] = qb.w;
    return w;
}

__device__ __forceinline__ Q4KActs q4k_xunit(int u, const int8_t *xq, const float *xd, const int *xs) {
    const int s = u / 4, g = u % 4;
    const int8_t *x = xq + (size_t)s * QK_K + 64 * g;
    const int4 x0 = *(const int4 *)x, x1 = *(const int4 *)(x + 16), x2 = *(const int4 *)(x + 32), x3 = *(const int4 *)(x + 48);
    Q4KActs a;
    a.lo[0] = x0.x, a.lo[1] = x0.y, a.lo[2] = x0.z, a.lo[3] = x0.w, a.lo[4] = x1.x, a.lo[5] = x1.y, a.lo[6] = x1.z, a.lo[7] = x1.w;
    a.hi[0] = x2.x, a.hi[1] = x2.y, a.hi[2] = x2.z, a.hi[3] = x2.w, a.hi[4] = x3.x, a.hi[5] = x3.y, a.hi[6] = x3.z, a.hi[7] = x3.w;
    a.dx = xd[s * 8];
    const int *bs = xs + s * 8 + 2 * g;
    a.bs0 = bs[0], a.bs1 = bs[1];
    return a;
}

__device__ __forceinline__ float q4k_dot(const Q4KWeights &w, const Q4KActs &a) {
    int s1 = 0, s2 = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        s1 = __dp4a((int)(w.q[i] & 0x0f0f0f0fu), a.lo[i], s1);
        s2 = __dp4a((int)((w.q[i] >> 4) & 0x0f0f0f0fu), a.hi[i], s2);
    }
    return w.d * a.dx * (float)(w.sc1 * s1 + w.sc2 * s2) - w.dmin * a.dx * (float)(w.m1 * a.bs0 + w.m2 * a.bs1);
}

// WUnit<TYPE_Q4_K> is q4k_wunit's weights (WUnit<TYPE_Q6_K> q6k_wunit's,
// below); wdot_x is wdot with the activations' chunk sums, which Q4_K
// needs.
template <>
struct WUnit<TYPE_Q4_K> {
    Q4KWeights k;
};
template <>
__device__ __forceinline__ WUnit<TYPE_Q4_K> wload<TYPE_Q4_K>(const uint8_t *row, int u) {
    return WUnit<TYPE_Q4_K>{q4k_wunit(row, u)};
}

template <>
__device__ __forceinline__ float block_dot_q<TYPE_Q4_K>(const uint8_t *row, int u, const int8_t *xq, const float *xd, const int *xs) {
    return q4k_dot(q4k_wunit(row, u), q4k_xunit(u, xq, xd, xs));
}

// A Q6_K unit u of the one-token products: positions 16h..16h+15 (h =
// u%2) of half c = (u/2)%2 of block s = u/4, in each of the half's four
// 32-value chunks k; the 16 values of a chunk share one scale. Its
// weights (q6k_wunit: low-nibble words of the half's two 32-byte runs,
// high-bit words, the chunks' scales, d) and their dot product with the
// activations (q6k_dot) apart, so that the products can load a unit
// before their wait.
struct Q6KWeights {
    uint32_t la[4], lb[4], qh[4];
    int sc[4];
    uint16_t d;
};

__device__ __forceinline__ Q6KWeights q6k_wunit(const uint8_t *row, int u) {
    const int s = u / 4, c = (u / 2) % 2, h = u % 2;
    const uint8_t *bp = row + (size_t)s * Q6_K_BYTES;
    const uint8_t *qla = bp + 64 * c + 16 * h, *qh = bp + 128 + 32 * c + 16 * h;
    const int8_t *sc = (const int8_t *)(bp + 192) + 8 * c + h;
    Q6KWeights w;
#pragma unroll
    for (int i = 0; i < 4; i++) w.la[i] = load_u32_a2(qla + 4 * i), w.lb[i] = load_u32_a2(qla + 32 + 4 * i), w.qh[i] = load_u32_a2(qh + 4 * i);
#pragma unroll
    for (int k = 0; k < 4; k++) w.sc[k] = sc[2 * k];
    w.d = (uint16_t)ldw_u16(bp + 208); // blocks are 2-byte aligned
    return w;
}

__device__ __forceinline__ float q6k_dot(const Q6KWeights &w, int u, const int8_t *xq, const float *xd) {
    const int s = u / 4, c = (u / 2) % 2, h = u % 2;
    const int8_t *x = xq + (size_t)s * QK_K + 128 * c + 16 * h;
    int sum = 0;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        const int shift = (k >> 1) * 4;
        const uint32_t *ql = (k & 1) ? w.lb : w.la;
        const int4 xv = *(const int4 *)(x + 32 * k);
        const int xs4[4] = {xv.x, xv.y, xv.z, xv.w};
        int part = 0;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint32_t l = (ql[i] >> shift) & 0x0f0f0f0fu;
            const uint32_t hb = ((w.qh[i] >> (2 * k)) & 0x03030303u) << 4;
            part = __dp4a(sub_bytes(l | hb, 0x20202020u), xs4[i], part);
        }
        sum += w.sc[k] * part;
    }
    return half_to_float(w.d) * xd[s * 8] * (float)sum;
}

template <>
__device__ __forceinline__ float block_dot_q<TYPE_Q6_K>(const uint8_t *row, int u, const int8_t *xq, const float *xd, const int *) {
    return q6k_dot(q6k_wunit(row, u), u, xq, xd);
}

template <>
struct WUnit<TYPE_Q6_K> {
    Q6KWeights k;
};
template <>
__device__ __forceinline__ WUnit<TYPE_Q6_K> wload<TYPE_Q6_K>(const uint8_t *row, int u) {
    return WUnit<TYPE_Q6_K>{q6k_wunit(row, u)};
}

template <int TYPE>
__device__ __forceinline__ float wdot_x(const WUnit<TYPE> &w, int u, const int8_t *xq, const float *xd, const int *xs) {
    if constexpr (TYPE == TYPE_Q4_K) {
        return q4k_dot(w.k, q4k_xunit(u, xq, xd, xs));
    } else if constexpr (TYPE == TYPE_Q6_K) {
        return q6k_dot(w.k, u, xq, xd);
    } else {
        return wdot<TYPE>(w, u, xq, xd);
    }
}

template <>
__device__ __forceinline__ float block_dot_q<TYPE_F16>(const uint8_t *row, int u, const int8_t *xq, const float *xd, const int *) {
    return wdot<TYPE_F16>(wload<TYPE_F16>(row, u), u, xq, xd);
}

// MVQ_PRE: units of its row a lane of a one-token product loads before
// the wait (Q4_0, Q8_0; MVQ_PRE_F16, MVQ_PRE_Q4K and MVQ_PRE_Q6K for the
// other types): the products launch early (their
// predecessor releases them) and their blocks then wait with their first
// weights in registers instead of fetching them from DRAM after the wait.
// Measured on an H100 (session six, tg128, two alternating runs; with
// GLU_PRE 1): Q8_0 922 → 999 tokens/s, Q4_0 1217 → 1237, F16 765 → 765;
// products alone (GLU_PRE 0) Q8_0 964, Q4_0 1198; 1 and 1 Q8_0 984, F16
// 785; 2 and 2 Q8_0 972, Q4_0 1246.
#ifndef MVQ_PRE
#define MVQ_PRE 2
#endif
// MVQ_PRE_F16: MVQ_PRE for F16 (mvq_f16 only; mvq_glu_f16 takes GLU_PRE).
// tg128 on an H100 (session ten, four calls, alternating runs, with
// 12 blocks a multiprocessor and two warps a row): 1 against 2 took F16
// 932 → 942, 936 → 937, 924 → 939 and 938 → 941 tokens/s; 4 gave 939
// against 932 and 921 against 924. Session sixteen: 3, with
// MVQ_F16_MINB_MV 8 (below), took the F16 step (TinyLlama-shaped file,
// one graph replayed back to back) from 968 to 956 µs; 3 at 12 blocks
// 961, 2 at 8 blocks 967, 4 970, 5 972, 1 at 8 blocks 978.
#ifndef MVQ_PRE_F16
#define MVQ_PRE_F16 3
#endif
// MVQ_PRE_Q4K: MVQ_PRE for Q4_K (mvq and mvq_glu; a lane's one unit of
// a 2048-value row is its whole share). tg128 on an H100 (session
// eleven, Q4_K_M, six runs each in ABBA order): 0 → 1 1216–1241 → 1235–
// 1256 tokens/s (means 1234 → 1248); 2 (the down product's second unit
// too, 100 registers in mvq_glu_q4_k) 1213–1252, mean 1233.
#ifndef MVQ_PRE_Q4K
#define MVQ_PRE_Q4K 1
#endif
// MVQ_PRE_Q6K: MVQ_PRE for Q6_K (mvq only: Q4_K_M's v, down and output
// products, Q4_0's output). tg128 on an H100 (session eleven,
// ABBA order): 0 → 1 Q4_K_M median 1271 → 1275 tokens/s (within the
// noise), Q4_0 1386–1405 → 1386–1449 (three of four runs 1445–1449).
#ifndef MVQ_PRE_Q6K
#define MVQ_PRE_Q6K 1
#endif
// MVQ_SPLIT_F16: warps that share a weight row in F16's one-token
// products (mvq_f16 and mvq_glu_f16; 1 for the other types; mvqSplit in
// ops.go must agree): each warp takes every other 8-value unit of the
// row and the row's first warp adds the two sums, so that a product has
// twice the warps, and loads, in flight. mvq and mvq_glu split alike, so
// that fused and eager launches keep the same bits. Measured on an H100
// (session seven, tg128, three alternating runs): both split F16 773 →
// 810 tokens/s; mvq only F16 773 → 798, Q4_0 1221 → 1242, Q8_0 1012 →
// 970, Q4_K_M 1016 → 972; both split Q4_0 1223 → 1157 (so 1 for the
// quantized types); 4 warps a row (mvq only) slower but for F16 (790).
#ifndef MVQ_SPLIT_F16
#define MVQ_SPLIT_F16 2
#endif
template <int TYPE>
__host__ __device__ constexpr int mvq_split() { return TYPE == TYPE_F16 ? MVQ_SPLIT_F16 : 1; }

// split_sum returns, in the first of every S warps that share a row, the
// sum of their sums v (lane 0's), added in order; a barrier of the
// block, which every thread must reach.
template <int S>
__device__ __forceinline__ float split_sum(float v, int warp, int lane) {
    __shared__ float parts[MV_ROWS];
    if (lane == 0) parts[warp] = v;
    __syncthreads();
    float sum = parts[warp - warp % S];
#pragma unroll
    for (int k = 1; k < S; k++) sum += parts[warp - warp % S + k];
    return sum;
}

// MVQ_L2PF, GLU_L2PF (for measuring; 0, off): bit TYPE set, mvq's
// (mvq_glu's) warps of weights of TYPE ask L2 for their whole rows
// before the wait, a 128-byte line a lane (from line first, every
// stride·128 bytes), so that the loads after the wait find them there;
// the kernel before a product is mostly a few blocks (attention, an
// RMSNorm) that leave DRAM idle. Only launches of at most MVQ_L2PF_GRID
// blocks prefetch. tg128 on an H100 (session eleven, three alternating
// runs each), all types, mvq and mvq_glu: F16 931–942 → 795–805 tokens/s,
// Q4_K_M 1244–1260 → 1208–1224, Q4_0 1399–1420 → 1466–1492; mvq alone
// or mvq_glu alone F16 about 850, Q4_K_M 1199–1254; only launches of up
// to 1584 or 1100 blocks (one wave) F16 833–862, Q4_K_M and Q8_0 within
// the noise or slower; Q4_0 alone (bit 4 set) 1–2% faster within a
// noisy run. The prefetch's DRAM traffic during attention and the norms
// seems to slow their own latency-bound loads more than it saves.
#ifndef MVQ_L2PF
#define MVQ_L2PF 0
#endif
#ifndef GLU_L2PF
#define GLU_L2PF 0
#endif
#ifndef MVQ_L2PF_GRID
#define MVQ_L2PF_GRID 1000000
#endif
__device__ __forceinline__ void l2_prefetch_row(const uint8_t *row, long long bytes, int first, int stride) {
    for (long long o = (long long)first * 128; o < bytes; o += (long long)stride * 128)
        asm volatile("prefetch.global.L2 [%0];" ::"l"(row + o));
}

// mvq is mv with int8 activations for up to three weight matrices that
// share the input (q, k and v; gate and up), as one launch: a warp per
// weight row (mvq_split of them for F16), the warps numbered over the
// matrices' rows one after the other, lane l taking blocks l, l+32, …
// The small k and v products alone were launches of 64 blocks bound by
// their fixed cost.
//
// With addSum not null, the rows of the first matrix also add the residual
// after their product: addSum[r] = addA[r] + Y0[r] (the model's Add of
// the product's output, merged into the product; float addition is
// commutative, so the bits are the add kernel's whichever operand the
// product wrote). addA must not overlap Y0; addSum may be addA or Y0.
template <int TYPE>
__device__ void mvq(const int8_t *xq, int cols, const uint8_t *W0, long long rb0, int rows0, float *Y0,
                    const uint8_t *W1, long long rb1, int rows1, float *Y1, const uint8_t *W2, long long rb2,
                    int rows2, float *Y2, const float *addA, float *addSum) {
    // The kernel after a one-token product is attention, an RMSNorm or
    // argmax, a few blocks: let it launch now (pdl_release). Measured on
    // an H100 (tg128, session five): Q4_0 1044 → 1082 tokens/s, F16 720 →
    // 743, Q4_K_M 911 → 943. Q8_0 went 773 → 699 while its blocks took 17
    // 2-byte loads each (their L1 traffic, not understood then); with
    // block_words it gains too (session six: 884 → 928).
    tl_mark(TL_MVQ, TL_START);
    pdl_release();
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    // S warps share a row, warp part of them taking units part·32 + lane,
    // then every S·32nd.
    constexpr int S = mvq_split<TYPE>();
    const int part = warp % S;
    int r = (blockIdx.x * MV_ROWS + warp) / S;
    const uint8_t *W = W0;
    long long rb = rb0;
    float *Y = Y0;
    bool ok = true, set0 = r < rows0;
    if (r >= rows0) {
        r -= rows0;
        W = W1, rb = rb1, Y = Y1;
        if (r >= rows1) {
            r -= rows1;
            W = W2, rb = rb2, Y = Y2;
            ok = r < rows2;
        }
    }
    const uint8_t *row = W + (size_t)r * rb;
    const int units = cols / mvq_unit<TYPE>();
    // The weights of the lane's first units, no kernel's output, load
    // before the wait (MVQ_PRE units and the like).
    constexpr int PRE = TYPE == TYPE_F16                          ? MVQ_PRE_F16
                        : TYPE == TYPE_Q4_0 || TYPE == TYPE_Q8_0 ? MVQ_PRE
                        : TYPE == TYPE_Q4_K                      ? MVQ_PRE_Q4K
                        : TYPE == TYPE_Q6_K                      ? MVQ_PRE_Q6K
                                                                 : 0;
    constexpr int STRIDE = WARP * S;
    const int b0 = part * WARP + lane;
    WUnit<TYPE> pre[PRE > 0 ? PRE : 1];
    if constexpr (PRE > 0) {
#pragma unroll
        for (int i = 0; i < PRE; i++)
            if (ok && b0 + i * STRIDE < units) pre[i] = wload<TYPE>(row, b0 + i * STRIDE);
    }
    if (((MVQ_L2PF >> TYPE) & 1) && ok && gridDim.x <= MVQ_L2PF_GRID) l2_prefetch_row(row, rb, b0, STRIDE);
    tl_mark(TL_MVQ, TL_PRE);
    pdl_begin();
    tl_mark(TL_MVQ, TL_WAITED);
    // The residual's value, loaded now so that its latency overlaps the
    // product (only the lane that writes the row's result).
    const bool adds = addSum && set0 && part == 0 && lane == 0;
    const float addv = adds ? addA[r] : 0.f;
    // One warp a row: no barrier, so warps past the rows leave. (Written
    // apart from the split form below: sharing its code made Q8_0 decode
    // 5% slower, session seven.)
    if constexpr (S == 1) {
        if (!ok) return;
        const float *xd = (const float *)(xq + q8_scales_at(cols));
        const int *xs = (const int *)(xd + cols / QK);
        float acc = 0.f;
        int b = lane;
        if constexpr (PRE > 0) {
#pragma unroll
            for (int i = 0; i < PRE; i++, b += WARP)
                if (b < units) acc += wdot_x<TYPE>(pre[i], b, xq, xd, xs);
        }
#pragma unroll 4
        for (; b < units; b += WARP) acc += block_dot_q<TYPE>(row, b, xq, xd, xs);
        acc = warp_sum(acc);
        if (lane == 0) Y[r] = acc;
        if (adds) addSum[r] = addv + acc;
        tl_mark(TL_MVQ, TL_END);
    } else {
        float acc = 0.f;
        if (ok) {
            const float *xd = (const float *)(xq + q8_scales_at(cols));
            const int *xs = (const int *)(xd + cols / QK);
            int b = b0;
            if constexpr (PRE > 0) {
#pragma unroll
                for (int i = 0; i < PRE; i++, b += STRIDE)
                    if (b < units) acc += wdot_x<TYPE>(pre[i], b, xq, xd, xs);
            }
#pragma unroll 4
            for (; b < units; b += STRIDE) acc += block_dot_q<TYPE>(row, b, xq, xd, xs);
            acc = warp_sum(acc);
        }
        acc = split_sum<S>(acc, warp, lane);
        if (ok && part == 0 && lane == 0) Y[r] = acc;
        if (adds) addSum[r] = addv + acc;
        tl_mark(TL_MVQ, TL_END);
    }
}

#define MVQ_ARGS                                                                                                   \
    const int8_t *xq, int cols, const uint8_t *W0, long long rb0, int rows0, float *Y0, const uint8_t *W1,         \
        long long rb1, int rows1, float *Y1, const uint8_t *W2, long long rb2, int rows2, float *Y2,               \
        const float *addA, float *addSum
#define MVQ_PASS xq, cols, W0, rb0, rows0, Y0, W1, rb1, rows1, Y1, W2, rb2, rows2, Y2, addA, addSum
extern "C" __global__ void mvq_q4_0(MVQ_ARGS) {
    mvq<TYPE_Q4_0>(MVQ_PASS);
}
extern "C" __global__ void mvq_q8_0(MVQ_ARGS) {
    mvq<TYPE_Q8_0>(MVQ_PASS);
}
// MVQ_F16_MINB: blocks a multiprocessor must hold of F16's gate/up
// product (mvq_glu_f16; mvq_f16's until session sixteen, now
// MVQ_F16_MINB_MV), which caps its registers (48 → 40
// at 12): these loops wait on DRAM (ncu: 25–30 cycles stalled on loads
// per instruction, 46–55% of the warps resident at 10 blocks), and more
// warps keep more loads in flight. tg128 on an H100, three alternating
// runs: F16 875–909 → 925–936 tokens/s; 16 blocks (32 registers) spilled
// and took 825–866.
#ifndef MVQ_F16_MINB
#define MVQ_F16_MINB 12
#endif
// MVQ_F16_MINB_MV: MVQ_F16_MINB for mvq_f16 alone, which holds
// MVQ_PRE_F16 units of its rows in registers from before its wait: at 8
// blocks a multiprocessor (56 registers) with 3 units the F16 step took
// 956 µs against 968 (12 blocks, 40 registers, 1 unit) in three calls,
// and tg128 went 979–990 → 986–998 tokens/s (H100, session sixteen, two
// runs a call; one more run 967 ± 48); 8 with 1 unit took 978 µs, 6
// and 7 with 3 units 956. mvq_glu_f16 stays at MVQ_F16_MINB: 2 or 3
// units before its wait at 10 blocks took 983–985 µs, 2 at 12 969.
#ifndef MVQ_F16_MINB_MV
#define MVQ_F16_MINB_MV 8
#endif
// mvq_f16 takes F16 halves (ACT_F16_BITS) instead of int8 values.
extern "C" __global__ void __launch_bounds__(MV_THREADS, MVQ_F16_MINB_MV) mvq_f16(MVQ_ARGS) {
    mvq<TYPE_F16>(MVQ_PASS);
}
extern "C" __global__ void mvq_q4_k(MVQ_ARGS) {
    mvq<TYPE_Q4_K>(MVQ_PASS);
}
extern "C" __global__ void mvq_q6_k(MVQ_ARGS) {
    mvq<TYPE_Q6_K>(MVQ_PASS);
}

// ------------------------------------------------ tensor-core products

// Prefill products on the tensor cores (mma.sync, sm_80 and newer). A
// block computes an MMQ_BM×MMQ_BN tile of the output (weight rows × tokens)
// with 4 warps, each 32 rows × 32 tokens: 2×4 tiles of the m16n8
// instructions (8 warps of 16×32 measured slower). The next step's
// blocks are fetched into registers while the tensor cores work on the
// current one, so the loads' latency hides behind the products.
// Steps of MMQ_KT values: the block copies its weight rows' blocks into
// shared memory as int8 values with their scales, and the tokens' int8
// activations (ACT_Q8_0_INT / ACT_Q8_K_INT) with theirs.
//
// Numerics: the CPU's. int8 × int8 products summed in int32 by the tensor
// cores are exact, so each block (Q4_0, Q8_0) or sub-block (Q4_K: 32
// values, Q6_K: 16) gives the CPU's integer sum; Q4_0/Q8_0 add
// sum·(d_w·d_x) in float per block, the k-quants sum scale·sum in int32
// over the super-block and multiply by d_w·d_x once (minus Q4_K's minimums
// through the activations' chunk sums), as ggml's dot products do. Only
// the order of the float additions differs from the CPU.
#define MMQ_BM 64
#define MMQ_BN 64
#define MMQ_KT 256
#define MMQ_THREADS 128
// Each warp: MMQ_MT m16 tiles (weight rows) × 4 n8 tiles (tokens); the
// warps of a block are (MMQ_THREADS/64) × 2 of these.
#define MMQ_MT (MMQ_BM / 16 / (MMQ_THREADS / WARP / 2))
// Row pitch of the int8 tiles: 16 bytes of padding put the 8 rows × 4
// words a fragment load touches in 32 different banks.
#define MMQ_PITCH (MMQ_KT + 16)

struct MmqTiles {
    int8_t w[MMQ_BM][MMQ_PITCH];
    int8_t x[MMQ_BN][MMQ_PITCH];
    // [sub-block][row]: consecutive rows in consecutive banks.
    float wd[16][MMQ_BM]; // Q4_0/Q8_0: d per block; k-quants: [0] d, [1] dmin
    int ws[16][MMQ_BM];   // k-quants: the sub-blocks' scales
    int wm[8][MMQ_BM];    // Q4_K: the sub-blocks' minimums
    float xd[8][MMQ_BN];  // activation scale per 32 values
    int xs[8][MMQ_BN];    // Q4_K: activation sums per 32 values
};

__device__ __forceinline__ void mma_s8_k32(int c[4], int a0, int a1, int a2, int a3, int b0, int b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%10,%10,%10};"
                 : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1), "r"(0));
}

__device__ __forceinline__ void mma_s8_k16(int c[4], int a0, int a1, int b0) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%7,%7,%7,%7};"
                 : "=r"(c[0]), "=r"(c[1]), "=r"(c[2]), "=r"(c[3])
                 : "r"(a0), "r"(a1), "r"(b0), "r"(0));
}

// MmqFetch<TYPE> holds one step of a thread's share of the weight tile in
// registers: fetch reads step kt of rows r0.. from global memory, put
// writes the int8 values and scales into the tiles (rows past wrows and
// blocks past the row's end as zeros). Splitting the two lets the loads
// of step kt+1 fly while the tensor cores work on step kt.
template <int TYPE>
struct MmqFetch;

// aligned_words reads the n 4-byte words that hold a 2-byte aligned
// Q4_0/Q8_0 block at bp (its 18 or 34 bytes, and 2 bytes of the block
// before it or after it): half as many loads as 2-byte ones. It reports
// whether bp is misaligned (the words start 2 bytes before it). With the
// row length a multiple of 4 bytes the word past a block's end lies in
// the matrix: the last block of a matrix is then misaligned (every
// matrix starts aligned and has a multiple of 4 bytes), so nothing is
// read past it, and a misaligned block is never the first.
__device__ __forceinline__ bool aligned_words(const uint8_t *bp, uint32_t *w, int n, bool ok) {
    const bool mis = ((uintptr_t)bp & 2) != 0;
    const uint32_t *wp = (const uint32_t *)((uintptr_t)bp & ~(uintptr_t)3);
#pragma unroll
    for (int k = 0; k < 9; k++)
        if (k < n) w[k] = ok ? wp[k] : 0;
    return mis;
}

// MmqWords is MmqFetch's raw form for the 2-byte-aligned Q4_0/Q8_0
// blocks: a thread's N blocks of a step as the NW aligned words around
// each (aligned_words), realigned only in put. Realigning in fetch made
// the warp wait for the loads right there, before the step's products
// (ncu, mmq_q8_0 at 512 tokens: a quarter of the stall samples on the
// shifts after the loads); in put the loads have had a whole step.
// pp512 on an H100, with attention_tc's two passes: Q8_0 37.2k → 42.5k
// tokens/s, Q4_0 40.4k → 49.9k (the attention change alone: Q8_0 40.3k).
template <int N, int NW>
struct MmqWords {
    uint32_t w[N][NW];
    uint32_t mis, ok; // bit j: block j's words start 2 bytes early; block j lies in the matrix
    __device__ __forceinline__ void fetch(const uint8_t *W, long long rowBytes, int wrows, int r0, int kt, int cols, int bytes) {
        mis = ok = 0;
#pragma unroll
        for (int j = 0; j < N; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, row = i / 8, gb = kt * 8 + i % 8;
            const bool in = r0 + row < wrows && gb < cols / QK;
            const uint8_t *bp = W + (in ? (size_t)(r0 + row) * rowBytes + (size_t)gb * bytes : 0);
            ok |= (uint32_t)in << j;
            if (rowBytes % 4 == 0) {
                mis |= (uint32_t)aligned_words(bp, w[j], NW, in) << j;
                continue;
            }
            // Rows of an odd number of 2-byte halves: 2-byte loads, kept
            // in the misaligned form (scale in the high half of word 0).
            mis |= 1u << j;
            w[j][0] = in ? (uint32_t)load_u16(bp) << 16 : 0;
#pragma unroll
            for (int k = 1; k < NW; k++) w[j][k] = in ? load_u32_a2(bp + 4 * k - 2) : 0;
        }
    }
    // scale is block j's F16 scale bits (0 outside the matrix).
    __device__ __forceinline__ uint16_t scale(int j) const { return block_scale_bits(w[j][0], mis >> j & 1); }
    // quant is block j's quant word k, or fill outside the matrix.
    __device__ __forceinline__ uint32_t quant(int j, int k, uint32_t fill) const {
        return (ok >> j & 1) ? block_quant_word(w[j][k], w[j][k + 1], mis >> j & 1) : fill;
    }
};

template <>
struct MmqFetch<TYPE_Q4_0> {
    static constexpr int N = MMQ_BM * 8 / MMQ_THREADS; // blocks per thread
    MmqWords<N, 5> b;
    __device__ __forceinline__ void fetch(const uint8_t *W, long long rowBytes, int wrows, int r0, int kt, int cols) {
        b.fetch(W, rowBytes, wrows, r0, kt, cols, Q4_0_BYTES);
    }
    __device__ __forceinline__ void put(MmqTiles &t) const {
#pragma unroll
        for (int j = 0; j < N; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, row = i / 8, blk = i % 8;
            const uint32_t m4 = 0x0f0f0f0fu, e8 = 0x08080808u;
            uint32_t q[4];
#pragma unroll
            for (int k = 0; k < 4; k++) q[k] = b.quant(j, k, 0x88888888u); // nibble 8 is weight 0
            *(int4 *)&t.w[row][blk * QK] = make_int4(sub_bytes(q[0] & m4, e8), sub_bytes(q[1] & m4, e8), sub_bytes(q[2] & m4, e8), sub_bytes(q[3] & m4, e8));
            *(int4 *)&t.w[row][blk * QK + 16] = make_int4(sub_bytes((q[0] >> 4) & m4, e8), sub_bytes((q[1] >> 4) & m4, e8),
                                                          sub_bytes((q[2] >> 4) & m4, e8), sub_bytes((q[3] >> 4) & m4, e8));
            t.wd[blk][row] = half_to_float(b.scale(j));
        }
    }
};

template <>
struct MmqFetch<TYPE_Q8_0> {
    static constexpr int N = MMQ_BM * 8 / MMQ_THREADS;
    MmqWords<N, 9> b;
    __device__ __forceinline__ void fetch(const uint8_t *W, long long rowBytes, int wrows, int r0, int kt, int cols) {
        b.fetch(W, rowBytes, wrows, r0, kt, cols, Q8_0_BYTES);
    }
    __device__ __forceinline__ void put(MmqTiles &t) const {
#pragma unroll
        for (int j = 0; j < N; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, row = i / 8, blk = i % 8;
            uint32_t q[8];
#pragma unroll
            for (int k = 0; k < 8; k++) q[k] = b.quant(j, k, 0);
            *(uint4 *)&t.w[row][blk * QK] = make_uint4(q[0], q[1], q[2], q[3]);
            *(uint4 *)&t.w[row][blk * QK + 16] = make_uint4(q[4], q[5], q[6], q[7]);
            t.wd[blk][row] = half_to_float(b.scale(j));
        }
    }
};

// byte_of is byte b (0..3) of v.
__device__ __forceinline__ int byte_of(uint32_t v, int b) { return (int)((v >> (8 * b)) & 255); }

// scale_min_k4_regs is scale_min_k4 on the 12 scale bytes held in three
// registers (j a compile-time constant after unrolling).
__device__ __forceinline__ void scale_min_k4_regs(int j, const uint32_t s[3], int *sc, int *m) {
    auto q = [&](int b) { return byte_of(s[b / 4], b % 4); };
    if (j < 4) {
        *sc = q(j) & 63;
        *m = q(j + 4) & 63;
    } else {
        *sc = (q(j + 4) & 15) | ((q(j - 4) >> 6) << 4);
        *m = (q(j + 4) >> 4) | ((q(j) >> 6) << 4);
    }
}

template <>
struct MmqFetch<TYPE_Q4_K> {
    // Item: 64-group g of a row's super-block kt (32 quant bytes: sub-block
    // 2g in the low nibbles, 2g+1 in the high ones).
    static constexpr int N = MMQ_BM * 4 / MMQ_THREADS;
    uint4 qa[N], qb[N];
    uint32_t dd[N], sc[N][3];
    __device__ __forceinline__ void fetch(const uint8_t *W, long long rowBytes, int wrows, int r0, int kt, int cols) {
#pragma unroll
        for (int j = 0; j < N; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, row = i / 4, g = i % 4;
            const bool ok = r0 + row < wrows && kt < cols / QK_K;
            const uint8_t *bp = W + (ok ? (size_t)(r0 + row) * rowBytes + (size_t)kt * Q4_K_BYTES : 0);
            dd[j] = ok ? *(const uint32_t *)bp : 0;
#pragma unroll
            for (int k = 0; k < 3; k++) sc[j][k] = ok ? *(const uint32_t *)(bp + 4 + 4 * k) : 0;
            qa[j] = ok ? *(const uint4 *)(bp + 16 + 32 * g) : make_uint4(0, 0, 0, 0);
            qb[j] = ok ? *(const uint4 *)(bp + 32 + 32 * g) : make_uint4(0, 0, 0, 0);
        }
    }
    __device__ __forceinline__ void put(MmqTiles &t) const {
#pragma unroll
        for (int j = 0; j < N; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, row = i / 4, g = i % 4;
            const uint32_t m4 = 0x0f0f0f0fu;
            const uint4 a = qa[j], b = qb[j];
            *(uint4 *)&t.w[row][64 * g] = make_uint4(a.x & m4, a.y & m4, a.z & m4, a.w & m4);
            *(uint4 *)&t.w[row][64 * g + 16] = make_uint4(b.x & m4, b.y & m4, b.z & m4, b.w & m4);
            *(uint4 *)&t.w[row][64 * g + 32] = make_uint4((a.x >> 4) & m4, (a.y >> 4) & m4, (a.z >> 4) & m4, (a.w >> 4) & m4);
            *(uint4 *)&t.w[row][64 * g + 48] = make_uint4((b.x >> 4) & m4, (b.y >> 4) & m4, (b.z >> 4) & m4, (b.w >> 4) & m4);
            // g is i % 4 with i = tid + MMQ_THREADS·j: not a constant, so
            // unpack the four possible pairs and pick.
            int sc1 = 0, m1 = 0, sc2 = 0, m2 = 0;
#pragma unroll
            for (int gg = 0; gg < 4; gg++) {
                if (gg == g) {
                    scale_min_k4_regs(2 * gg, sc[j], &sc1, &m1);
                    scale_min_k4_regs(2 * gg + 1, sc[j], &sc2, &m2);
                }
            }
            t.ws[2 * g][row] = sc1, t.ws[2 * g + 1][row] = sc2;
            t.wm[2 * g][row] = m1, t.wm[2 * g + 1][row] = m2;
            if (g == 0) t.wd[0][row] = half_to_float(dd[j] & 0xffff), t.wd[1][row] = half_to_float(dd[j] >> 16);
        }
    }
};

template <>
struct MmqFetch<TYPE_Q6_K> {
    // Item: positions 16h.. of half c of a row's super-block kt, in the
    // half's four 32-value chunks (see block_dot_q<TYPE_Q6_K>).
    static constexpr int N = MMQ_BM * 4 / MMQ_THREADS;
    uint32_t la[N][4], lb[N][4], hq[N][4], sc[N][2];
    uint16_t d[N];
    __device__ __forceinline__ void fetch(const uint8_t *W, long long rowBytes, int wrows, int r0, int kt, int cols) {
#pragma unroll
        for (int j = 0; j < N; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, row = i / 4, c = (i / 2) % 2, h = i % 2;
            const bool ok = r0 + row < wrows && kt < cols / QK_K;
            const uint8_t *bp = W + (ok ? (size_t)(r0 + row) * rowBytes + (size_t)kt * Q6_K_BYTES : 0);
            const uint8_t *qla = bp + 64 * c + 16 * h, *qh = bp + 128 + 32 * c + 16 * h;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                la[j][k] = ok ? load_u32_a2(qla + 4 * k) : 0x20202020u; // 32 is weight 0
                lb[j][k] = ok ? load_u32_a2(qla + 32 + 4 * k) : 0x20202020u;
                hq[j][k] = ok ? load_u32_a2(qh + 4 * k) : 0;
            }
            sc[j][0] = ok ? load_u32_a2(bp + 192 + 8 * c) : 0;
            sc[j][1] = ok ? load_u32_a2(bp + 196 + 8 * c) : 0;
            d[j] = ok ? load_u16(bp + 208) : 0;
        }
    }
    __device__ __forceinline__ void put(MmqTiles &t) const {
#pragma unroll
        for (int j = 0; j < N; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, row = i / 4, c = (i / 2) % 2, h = i % 2;
#pragma unroll
            for (int k = 0; k < 4; k++) {
                const uint32_t *l = (k & 1) ? lb[j] : la[j];
                const int shift = (k >> 1) * 4;
                int v[4];
#pragma unroll
                for (int e = 0; e < 4; e++)
                    v[e] = sub_bytes(((l[e] >> shift) & 0x0f0f0f0fu) | (((hq[j][e] >> (2 * k)) & 0x03030303u) << 4), 0x20202020u);
                *(int4 *)&t.w[row][128 * c + 32 * k + 16 * h] = make_int4(v[0], v[1], v[2], v[3]);
                // Scale 8c + 2k + h: byte 2k + h of the half's eight.
                const uint32_t sw = sc[j][k >> 1];
                t.ws[8 * c + 2 * k + h][row] = (int)(int8_t)(h ? byte_of(sw, 2 * (k & 1) + 1) : byte_of(sw, 2 * (k & 1)));
            }
            if (c == 0 && h == 0) t.wd[0][row] = half_to_float(d[j]);
        }
    }
};

// MmqFetchX is MmqFetch for step kt of the activations of tokens t0..
// (zero past ntok and past the row's end); SUMS adds the chunk sums.
template <bool SUMS>
struct MmqFetchX {
    static constexpr int NV = MMQ_BN * (MMQ_KT / 16) / MMQ_THREADS; // 16-byte pieces
    static constexpr int NS = MMQ_BN * (MMQ_KT / QK) / MMQ_THREADS; // scales
    int4 v[NV];
    float d[NS];
    int sm[NS];
    __device__ __forceinline__ void fetch(const int8_t *xq, int total, int cols, int t0, int ntok, int kt) {
        const float *xd = (const float *)(xq + q8_scales_at(total));
        const int *xs = (const int *)(xd + total / QK);
        const int chunks = cols / QK;
#pragma unroll
        for (int j = 0; j < NV; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, tok = i / (MMQ_KT / 16), part = i % (MMQ_KT / 16);
            const int ch = kt * (MMQ_KT / QK) + part / 2;
            v[j] = t0 + tok < ntok && ch < chunks ? *(const int4 *)(xq + (size_t)(t0 + tok) * cols + (size_t)kt * MMQ_KT + 16 * part) : make_int4(0, 0, 0, 0);
        }
#pragma unroll
        for (int j = 0; j < NS; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, tok = i / (MMQ_KT / QK), c = i % (MMQ_KT / QK);
            const int ch = kt * (MMQ_KT / QK) + c;
            const bool ok = t0 + tok < ntok && ch < chunks;
            const size_t at = (size_t)(t0 + tok) * chunks + ch;
            d[j] = ok ? xd[at] : 0.f;
            if (SUMS) sm[j] = ok ? xs[at] : 0;
        }
    }
    __device__ __forceinline__ void put(MmqTiles &t) const {
#pragma unroll
        for (int j = 0; j < NV; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, tok = i / (MMQ_KT / 16), part = i % (MMQ_KT / 16);
            *(int4 *)&t.x[tok][16 * part] = v[j];
        }
#pragma unroll
        for (int j = 0; j < NS; j++) {
            const int i = threadIdx.x + MMQ_THREADS * j, tok = i / (MMQ_KT / QK), c = i % (MMQ_KT / QK);
            t.xd[c][tok] = d[j];
            if (SUMS) t.xs[c][tok] = sm[j];
        }
    }
};

// mmq: Y[t][r] = Σ w[r][i]·x[t][i] for a tile of MMQ_BM rows (blockIdx.x)
// and MMQ_BN tokens (blockIdx.y); X is in ACT_Q8_0_INT (Q4_0, Q8_0) or
// ACT_Q8_K_INT (k-quants) layout for ntok×cols values.
template <int TYPE>
__device__ void mmq(const uint8_t *W, long long rowBytes, int wrows, int cols, const int8_t *X, float *Y, int ntok, int bx) {
    pdl_begin();
    __shared__ __align__(16) MmqTiles t;
    constexpr bool KQ = TYPE == TYPE_Q4_K || TYPE == TYPE_Q6_K;
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int g = lane >> 2, tq = lane & 3;
    const int wm0 = (warp >> 1) * 16 * MMQ_MT, wn0 = (warp & 1) * 32;
    const int r0 = bx * MMQ_BM, t0 = blockIdx.y * MMQ_BN;
    const int total = ntok * cols;
    float acc[MMQ_MT][4][4];
#pragma unroll
    for (int a = 0; a < MMQ_MT; a++)
#pragma unroll
        for (int b = 0; b < 4; b++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[a][b][i] = 0.f;
    const int steps = (cols + MMQ_KT - 1) / MMQ_KT;
    MmqFetch<TYPE> fw;
    MmqFetchX<TYPE == TYPE_Q4_K> fx;
    fw.fetch(W, rowBytes, wrows, r0, 0, cols);
    fx.fetch(X, total, cols, t0, ntok, 0);
    for (int kt = 0; kt < steps; kt++) {
        fw.put(t);
        fx.put(t);
        __syncthreads();
        if (kt + 1 < steps) {
            fw.fetch(W, rowBytes, wrows, r0, kt + 1, cols);
            fx.fetch(X, total, cols, t0, ntok, kt + 1);
        }
        if (!KQ) {
#pragma unroll 2
            for (int sb = 0; sb < MMQ_KT / QK; sb++) {
                const int k0 = sb * QK + 4 * tq;
                int a[MMQ_MT][4], b[4][2];
#pragma unroll
                for (int mt = 0; mt < MMQ_MT; mt++) {
                    const int r = wm0 + 16 * mt + g;
                    a[mt][0] = *(const int *)&t.w[r][k0];
                    a[mt][1] = *(const int *)&t.w[r + 8][k0];
                    a[mt][2] = *(const int *)&t.w[r][k0 + 16];
                    a[mt][3] = *(const int *)&t.w[r + 8][k0 + 16];
                }
#pragma unroll
                for (int nt = 0; nt < 4; nt++) {
                    const int n = wn0 + 8 * nt + g;
                    b[nt][0] = *(const int *)&t.x[n][k0];
                    b[nt][1] = *(const int *)&t.x[n][k0 + 16];
                }
                float wd[MMQ_MT][2], xd[4][2];
#pragma unroll
                for (int mt = 0; mt < MMQ_MT; mt++)
#pragma unroll
                    for (int hh = 0; hh < 2; hh++) wd[mt][hh] = t.wd[sb][wm0 + 16 * mt + g + 8 * hh];
#pragma unroll
                for (int nt = 0; nt < 4; nt++)
#pragma unroll
                    for (int j = 0; j < 2; j++) xd[nt][j] = t.xd[sb][wn0 + 8 * nt + 2 * tq + j];
#pragma unroll
                for (int mt = 0; mt < MMQ_MT; mt++)
#pragma unroll
                    for (int nt = 0; nt < 4; nt++) {
                        int c[4];
                        mma_s8_k32(c, a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[nt][0], b[nt][1]);
#pragma unroll
                        for (int i = 0; i < 4; i++) acc[mt][nt][i] += (float)c[i] * (wd[mt][i >> 1] * xd[nt][i & 1]);
                    }
            }
        } else {
            int is[MMQ_MT][4][4];
#pragma unroll
            for (int a = 0; a < MMQ_MT; a++)
#pragma unroll
                for (int b = 0; b < 4; b++)
#pragma unroll
                    for (int i = 0; i < 4; i++) is[a][b][i] = 0;
            constexpr int SUB = TYPE == TYPE_Q6_K ? 16 : 32;
#pragma unroll 2
            for (int sb = 0; sb < MMQ_KT / SUB; sb++) {
                const int k0 = sb * SUB + 4 * tq;
                int a[MMQ_MT][4], b[4][2];
#pragma unroll
                for (int mt = 0; mt < MMQ_MT; mt++) {
                    const int r = wm0 + 16 * mt + g;
                    a[mt][0] = *(const int *)&t.w[r][k0];
                    a[mt][1] = *(const int *)&t.w[r + 8][k0];
                    if (SUB == 32) {
                        a[mt][2] = *(const int *)&t.w[r][k0 + 16];
                        a[mt][3] = *(const int *)&t.w[r + 8][k0 + 16];
                    }
                }
#pragma unroll
                for (int nt = 0; nt < 4; nt++) {
                    const int n = wn0 + 8 * nt + g;
                    b[nt][0] = *(const int *)&t.x[n][k0];
                    if (SUB == 32) b[nt][1] = *(const int *)&t.x[n][k0 + 16];
                }
                int ws[MMQ_MT][2];
#pragma unroll
                for (int mt = 0; mt < MMQ_MT; mt++)
#pragma unroll
                    for (int hh = 0; hh < 2; hh++) ws[mt][hh] = t.ws[sb][wm0 + 16 * mt + g + 8 * hh];
#pragma unroll
                for (int mt = 0; mt < MMQ_MT; mt++)
#pragma unroll
                    for (int nt = 0; nt < 4; nt++) {
                        int c[4];
                        if (SUB == 32)
                            mma_s8_k32(c, a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[nt][0], b[nt][1]);
                        else
                            mma_s8_k16(c, a[mt][0], a[mt][1], b[nt][0]);
#pragma unroll
                        for (int i = 0; i < 4; i++) is[mt][nt][i] += ws[mt][i >> 1] * c[i];
                    }
            }
#pragma unroll
            for (int mt = 0; mt < MMQ_MT; mt++)
#pragma unroll
                for (int nt = 0; nt < 4; nt++)
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        const int r = wm0 + 16 * mt + g + 8 * (i >> 1), n = wn0 + 8 * nt + 2 * tq + (i & 1);
                        const float dx = t.xd[0][n];
                        float v = t.wd[0][r] * dx * (float)is[mt][nt][i];
                        if (TYPE == TYPE_Q4_K) {
                            int mins = 0;
#pragma unroll
                            for (int j = 0; j < 8; j++) mins += t.wm[j][r] * t.xs[j][n];
                            v -= t.wd[1][r] * dx * (float)mins;
                        }
                        acc[mt][nt][i] += v;
                    }
        }
        __syncthreads();
    }
#pragma unroll
    for (int mt = 0; mt < MMQ_MT; mt++)
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = r0 + wm0 + 16 * mt + g + 8 * (i >> 1), n = t0 + wn0 + 8 * nt + 2 * tq + (i & 1);
                if (r < wrows && n < ntok) Y[(size_t)n * wrows + r] = acc[mt][nt][i];
            }
}

// mmh_f16 is the prefill product of F16 weights on the tensor cores
// (m16n8k16, F16 inputs, float accumulation) with the activations already
// rounded to F16 halves (ACT_F16_BITS): every product of two F16 values is
// exact in float, as on the CPU; the sums differ from the CPU's in order
// (and in the tensor cores' own accumulation rounding). Tiles as mmq,
// steps of MMH_KT values.
#define MMH_KT 64
#define MMH_PITCH (MMH_KT + 8)

__device__ __forceinline__ void mma_f16(float c[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// mmh_load copies rows r0.. (of nrows, each cols halves rowBytes apart) at
// values k0..k0+MMH_KT-1 into a tile, zero outside.
__device__ __forceinline__ void mmh_load(uint16_t (*tile)[MMH_PITCH], const uint8_t *src, long long rowBytes, int nrows, int r0, int cols, int k0) {
    if ((cols & 7) == 0) {
        for (int i = threadIdx.x; i < MMQ_BM * (MMH_KT / 8); i += MMQ_THREADS) {
            const int row = i / (MMH_KT / 8), part = i % (MMH_KT / 8), k = k0 + 8 * part;
            uint4 v = make_uint4(0, 0, 0, 0);
            if (r0 + row < nrows && k < cols) v = *(const uint4 *)(src + (size_t)(r0 + row) * rowBytes + (size_t)k * 2);
            *(uint4 *)&tile[row][8 * part] = v;
        }
    } else {
        for (int i = threadIdx.x; i < MMQ_BM * MMH_KT; i += MMQ_THREADS) {
            const int row = i / MMH_KT, kk = i % MMH_KT, k = k0 + kk;
            tile[row][kk] = r0 + row < nrows && k < cols ? ((const uint16_t *)(src + (size_t)(r0 + row) * rowBytes))[k] : 0;
        }
    }
}

// cp_async16 copies 16 bytes from global to shared memory without
// passing through registers (sm_80 cp.async), zero-filling when !ok.
__device__ __forceinline__ void cp_async16(void *sdst, const void *gsrc, bool ok) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(sdst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gsrc), "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// mmh_issue is mmh_load for rows of whole 16-byte pieces (cols a multiple
// of 8), as asynchronous copies.
__device__ __forceinline__ void mmh_issue(uint16_t (*tile)[MMH_PITCH], const uint8_t *src, long long rowBytes, int nrows, int r0, int cols, int k0) {
    for (int i = threadIdx.x; i < MMQ_BM * (MMH_KT / 8); i += MMQ_THREADS) {
        const int row = i / (MMH_KT / 8), part = i % (MMH_KT / 8), k = k0 + 8 * part;
        const bool ok = r0 + row < nrows && k < cols;
        cp_async16(&tile[row][8 * part], ok ? src + (size_t)(r0 + row) * rowBytes + (size_t)k * 2 : src, ok);
    }
}

// mmh_f16: two shared-memory stages; with rows of whole 16-byte pieces the
// next step's tiles arrive by cp.async while the tensor cores work on the
// current ones.
extern "C" __global__ void __launch_bounds__(MMQ_THREADS) mmh_f16(const uint8_t *W, long long rowBytes, int wrows, int cols, const uint16_t *X, float *Y, int ntok) {
    pdl_begin();
    __shared__ __align__(16) uint16_t tw[2][MMQ_BM][MMH_PITCH];
    __shared__ __align__(16) uint16_t tx[2][MMQ_BN][MMH_PITCH];
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int g = lane >> 2, tq = lane & 3;
    const int wm0 = (warp >> 1) * 16 * MMQ_MT, wn0 = (warp & 1) * 32;
    const int r0 = blockIdx.x * MMQ_BM, t0 = blockIdx.y * MMQ_BN;
    const bool async = (cols & 7) == 0;
    const uint8_t *Xb = (const uint8_t *)X;
    float acc[MMQ_MT][4][4];
#pragma unroll
    for (int a = 0; a < MMQ_MT; a++)
#pragma unroll
        for (int b = 0; b < 4; b++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[a][b][i] = 0.f;
    const int steps = (cols + MMH_KT - 1) / MMH_KT;
    auto load = [&](int st, int k0) {
        if (async) {
            mmh_issue(tw[st], W, rowBytes, wrows, r0, cols, k0);
            mmh_issue(tx[st], Xb, 2LL * cols, ntok, t0, cols, k0);
            cp_async_commit();
        } else {
            mmh_load(tw[st], W, rowBytes, wrows, r0, cols, k0);
            mmh_load(tx[st], Xb, 2LL * cols, ntok, t0, cols, k0);
        }
    };
    load(0, 0);
    for (int step = 0; step < steps; step++) {
        if (step + 1 < steps) {
            load((step + 1) & 1, (step + 1) * MMH_KT);
            if (async) cp_async_wait<1>();
        } else if (async) {
            cp_async_wait<0>();
        }
        __syncthreads();
        const uint16_t (*cw)[MMH_PITCH] = tw[step & 1];
        const uint16_t (*cx)[MMH_PITCH] = tx[step & 1];
#pragma unroll
        for (int ks = 0; ks < MMH_KT; ks += 16) {
            const int k = ks + 2 * tq;
            uint32_t a[MMQ_MT][4], b[4][2];
#pragma unroll
            for (int mt = 0; mt < MMQ_MT; mt++) {
                const int r = wm0 + 16 * mt + g;
                a[mt][0] = *(const uint32_t *)&cw[r][k];
                a[mt][1] = *(const uint32_t *)&cw[r + 8][k];
                a[mt][2] = *(const uint32_t *)&cw[r][k + 8];
                a[mt][3] = *(const uint32_t *)&cw[r + 8][k + 8];
            }
#pragma unroll
            for (int nt = 0; nt < 4; nt++) {
                const int n = wn0 + 8 * nt + g;
                b[nt][0] = *(const uint32_t *)&cx[n][k];
                b[nt][1] = *(const uint32_t *)&cx[n][k + 8];
            }
#pragma unroll
            for (int mt = 0; mt < MMQ_MT; mt++)
#pragma unroll
                for (int nt = 0; nt < 4; nt++) mma_f16(acc[mt][nt], a[mt][0], a[mt][1], a[mt][2], a[mt][3], b[nt][0], b[nt][1]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int mt = 0; mt < MMQ_MT; mt++)
#pragma unroll
        for (int nt = 0; nt < 4; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int r = r0 + wm0 + 16 * mt + g + 8 * (i >> 1), n = t0 + wn0 + 8 * nt + 2 * tq + (i & 1);
                if (r < wrows && n < ntok) Y[(size_t)n * wrows + r] = acc[mt][nt][i];
            }
}

// The mmq_… kernels take up to three weight matrices that share the
// input (q, k and v; gate and up), as mvq does: blockIdx.x counts the
// first matrix's row tiles, then the second's, then the third's. Alone,
// k's and v's products (4 row tiles of TinyLlama's 256 rows × 8 token
// tiles: 32 blocks on 132 multiprocessors) took 78% of q's time for an
// eighth of its work.
#define MMQ_ARGS                                                                                                   \
    const int8_t *X, int cols, int ntok, const uint8_t *W0, long long rb0, int rows0, float *Y0, const uint8_t *W1, \
        long long rb1, int rows1, float *Y1, const uint8_t *W2, long long rb2, int rows2, float *Y2
template <int TYPE>
__device__ __forceinline__ void mmq_sets(MMQ_ARGS) {
    int bx = blockIdx.x;
    const uint8_t *W = W0;
    long long rb = rb0;
    int rows = rows0;
    float *Y = Y0;
    int tiles = (rows0 + MMQ_BM - 1) / MMQ_BM;
    if (bx >= tiles) {
        bx -= tiles;
        W = W1, rb = rb1, rows = rows1, Y = Y1;
        tiles = (rows1 + MMQ_BM - 1) / MMQ_BM;
        if (bx >= tiles) {
            bx -= tiles;
            W = W2, rb = rb2, rows = rows2, Y = Y2;
        }
    }
    mmq<TYPE>(W, rb, rows, cols, X, Y, ntok, bx);
}
#define MMQ_KERNEL(name, TYPE)                                                              \
    extern "C" __global__ void __launch_bounds__(MMQ_THREADS) mmq_##name(MMQ_ARGS) {        \
        mmq_sets<TYPE>(X, cols, ntok, W0, rb0, rows0, Y0, W1, rb1, rows1, Y1, W2, rb2, rows2, Y2); \
    }
MMQ_KERNEL(q4_0, TYPE_Q4_0)
MMQ_KERNEL(q8_0, TYPE_Q8_0)
MMQ_KERNEL(q4_k, TYPE_Q4_K)
MMQ_KERNEL(q6_k, TYPE_Q6_K)

#define MM_ARGS const uint8_t *W, long long rowBytes, int wrows, int cols, const float *X, float *Y, int ntok
#define MM_KERNEL(name, TYPE) \
    extern "C" __global__ void mm_##name(MM_ARGS) { mm<TYPE, MM_TOKENS, 4>(W, rowBytes, wrows, cols, X, Y, ntok); }
MM_KERNEL(f32, TYPE_F32)
MM_KERNEL(f16, TYPE_F16)
MM_KERNEL(q4_0, TYPE_Q4_0)
MM_KERNEL(q8_0, TYPE_Q8_0)
MM_KERNEL(q4_k, TYPE_Q4_K)
MM_KERNEL(q6_k, TYPE_Q6_K)
// One token: every type with whole-unit loads, a warp per row.
extern "C" __global__ void mv_f32(MM_ARGS) { mv<TYPE_F32>(W, rowBytes, wrows, cols, X, Y); }
extern "C" __global__ void mv_f16(MM_ARGS) { mv<TYPE_F16>(W, rowBytes, wrows, cols, X, Y); }
extern "C" __global__ void mv_q4_0(MM_ARGS) { mv<TYPE_Q4_0>(W, rowBytes, wrows, cols, X, Y); }
extern "C" __global__ void mv_q8_0(MM_ARGS) { mv<TYPE_Q8_0>(W, rowBytes, wrows, cols, X, Y); }
extern "C" __global__ void mv_q4_k(MM_ARGS) { mv<TYPE_Q4_K>(W, rowBytes, wrows, cols, X, Y); }
extern "C" __global__ void mv_q6_k(MM_ARGS) { mv<TYPE_Q6_K>(W, rowBytes, wrows, cols, X, Y); }

// ------------------------------------------------ activation rounding

// Activation rounding kinds (ACT_… ; actKind in the Go code): the
// dot-product format of a weight type.
// The integer kinds keep the int8 values and their scales apart for the
// integer products (mvq_…, mmq_…): ACT_Q8_0_INT (Q4_0, Q8_0 weights) and
// ACT_Q8_K_INT (k-quants) lay out n int8 values, then from byte
// q8_scales_at(n) one float scale per 32 values (Q8_K's one scale per 256
// repeated for each of its 32-value chunks), and for ACT_Q8_K_INT after
// those one int per 32 values: the sum of the chunk's int8 values (Q4_K's
// minimums need it, as Q8_K's bsums). ACT_F16_BITS is F16 as 16-bit
// halves for the tensor-core F16 product (mmh_f16).
enum { ACT_NONE = 0, ACT_F16 = 1, ACT_Q8_0 = 2, ACT_Q8_K = 3, ACT_Q8_0_INT = 4, ACT_Q8_K_INT = 5, ACT_F16_BITS = 6 };

// The roundings below give a whole warp one block: the block's largest
// magnitude is a warp reduction (a maximum is exact in any order, and
// Q8_K's "first on ties" is kept by reducing (magnitude, index) pairs),
// then each lane rounds its own values. The results equal the CPU's
// value-by-value loops bit for bit; one thread per block made the
// roundings of a decode step serial loops of 32 or 256 values.

// warp_act_q8_0 replaces the 32 values at xb by their Q8_0 round trip as
// the CPU backend (and ggml's x86 quantizer) computes it: d = amax/127
// stored as F16, q = x·(127/amax) rounded to nearest, halves to even (not
// x·(1/d) with halves away from zero, ggml's scalar reference: the two
// differ in a value's last bit now and then, which moves q by one). Lane l
// takes value l.
__device__ __forceinline__ void warp_act_q8_0(const float *xb, float *yb, int lane) {
    const float x = xb[lane];
    float amax = fabsf(x);
    for (int o = WARP / 2; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    const float dh = round_f16(d);
    yb[lane] = (float)__float2int_rn(x * id) * dh;
}

// warp_act_q8_k replaces the 256 values at xb by their Q8_K round trip:
// the signed value of largest magnitude (the first one on ties) sets
// iscale = -127/max, q = min(127, nearest(iscale·x)), d = 1/iscale in
// float32. Lane l takes values l, l+32, …, l+224.
__device__ __forceinline__ void warp_act_q8_k(const float *xb, float *yb, int lane) {
    float v[QK_K / WARP];
    float best = 0.f;
    int at = -1;
#pragma unroll
    for (int k = 0; k < QK_K / WARP; k++) {
        v[k] = xb[lane + WARP * k];
        const float a = fabsf(v[k]);
        if (a > best) {
            best = a;
            at = lane + WARP * k;
        }
    }
    for (int o = WARP / 2; o > 0; o >>= 1) {
        const float ob = __shfl_xor_sync(0xffffffffu, best, o);
        const int oat = __shfl_xor_sync(0xffffffffu, at, o);
        if (ob > best || (ob == best && oat >= 0 && (at < 0 || oat < at))) {
            best = ob;
            at = oat;
        }
    }
    if (at < 0) { // every value is zero
#pragma unroll
        for (int k = 0; k < QK_K / WARP; k++) yb[lane + WARP * k] = 0.f;
        return;
    }
    const float mx = xb[at];
    const float iscale = -127.f / mx;
    const float d = 1.f / iscale;
#pragma unroll
    for (int k = 0; k < QK_K / WARP; k++) {
        int q = __float2int_rn(iscale * v[k]);
        q = q < 127 ? q : 127;
        yb[lane + WARP * k] = (float)q * d;
    }
}

// warp_act_q8_0_int is warp_act_q8_0 keeping q and d apart (ACT_Q8_0_INT).
__device__ __forceinline__ void warp_q8_0_int(float x, int8_t *qb, float *db, int lane);
__device__ __forceinline__ void warp_act_q8_0_int(const float *xb, int8_t *qb, float *db, int lane) {
    warp_q8_0_int(xb[lane], qb, db, lane);
}

// warp_q8_0_int is warp_act_q8_0_int with the block's values in the
// lanes' registers, value lane in lane.
__device__ __forceinline__ void warp_q8_0_int(float x, int8_t *qb, float *db, int lane) {
    float amax = fabsf(x);
    for (int o = WARP / 2; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.f;
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    qb[lane] = (int8_t)__float2int_rn(x * id);
    if (lane == 0) *db = round_f16(d);
}

// warp_act_q8_k_int is warp_act_q8_k keeping q apart from d (ACT_Q8_K_INT):
// q into qb[256], d into db[0..7] (one per 32-value chunk), the chunks'
// sums of q into sb[0..7].
__device__ __forceinline__ void warp_act_q8_k_int(const float *xb, int8_t *qb, float *db, int *sb, int lane) {
    float v[QK_K / WARP];
    float best = 0.f;
    int at = -1;
#pragma unroll
    for (int k = 0; k < QK_K / WARP; k++) {
        v[k] = xb[lane + WARP * k];
        const float a = fabsf(v[k]);
        if (a > best) {
            best = a;
            at = lane + WARP * k;
        }
    }
    for (int o = WARP / 2; o > 0; o >>= 1) {
        const float ob = __shfl_xor_sync(0xffffffffu, best, o);
        const int oat = __shfl_xor_sync(0xffffffffu, at, o);
        if (ob > best || (ob == best && oat >= 0 && (at < 0 || oat < at))) {
            best = ob;
            at = oat;
        }
    }
    const float mx = xb[at < 0 ? 0 : at];
    const float iscale = at < 0 ? 0.f : -127.f / mx;
    const float d = at < 0 ? 0.f : 1.f / iscale;
#pragma unroll
    for (int k = 0; k < QK_K / WARP; k++) {
        int q = __float2int_rn(iscale * v[k]);
        q = q < 127 ? q : 127;
        qb[lane + WARP * k] = (int8_t)q;
        // Chunk k is value lane of every lane's k-th value: sum over lanes.
        for (int o = WARP / 2; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
        if (lane == k) sb[k] = q;
    }
    if (lane < QK_K / QK) db[lane] = d;
}

// act_span rounds values first..first+n-1 (whole blocks of the kind) of a
// vector of total values, x its floats and y its rounded copy, with the
// calling block's nthreads threads (a multiple of 32), a warp per
// rounding block: the fused kernels call it after a barrier on values
// they have just written.
__device__ void act_span(const float *x, void *y, int first, int n, int total, int kind, int tid, int nthreads) {
    const int warp = tid / WARP, lane = tid % WARP, warps = nthreads / WARP;
    float *yf = (float *)y;
    switch (kind) {
    case ACT_F16:
        for (int i = first + tid; i < first + n; i += nthreads) yf[i] = round_f16(x[i]);
        break;
    case ACT_Q8_0:
        for (int b = first / QK + warp; b < (first + n) / QK; b += warps) warp_act_q8_0(x + (size_t)b * QK, yf + (size_t)b * QK, lane);
        break;
    case ACT_Q8_K:
        for (int b = first / QK_K + warp; b < (first + n) / QK_K; b += warps) warp_act_q8_k(x + (size_t)b * QK_K, yf + (size_t)b * QK_K, lane);
        break;
    case ACT_Q8_0_INT: {
        int8_t *q = (int8_t *)y;
        float *ds = (float *)(q + q8_scales_at(total));
        for (int b = first / QK + warp; b < (first + n) / QK; b += warps) warp_act_q8_0_int(x + (size_t)b * QK, q + (size_t)b * QK, ds + b, lane);
        break;
    }
    case ACT_Q8_K_INT: {
        int8_t *q = (int8_t *)y;
        float *ds = (float *)(q + q8_scales_at(total));
        int *ss = (int *)(ds + total / QK);
        for (int b = first / QK_K + warp; b < (first + n) / QK_K; b += warps)
            warp_act_q8_k_int(x + (size_t)b * QK_K, q + (size_t)b * QK_K, ds + (size_t)b * 8, ss + (size_t)b * 8, lane);
        break;
    }
    case ACT_F16_BITS:
        for (int i = first + tid; i < first + n; i += nthreads) ((uint16_t *)y)[i] = float_to_half(x[i]);
        break;
    }
}

// act_f16 rounds n values to F16, as the CPU converts activations for F16
// weights.
extern "C" __global__ void act_f16(const float *x, float *y, int n) {
    pdl_begin();
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = round_f16(x[i]);
}

// ACT_WARPS: rounding blocks (warps) per thread block of act_q8_0/act_q8_k.
#define ACT_WARPS 4

// act_q8_0 rounds nblocks blocks of 32 through Q8_0, a warp per block.
extern "C" __global__ void act_q8_0(const float *x, float *y, int nblocks) {
    pdl_begin();
    const int b = blockIdx.x * ACT_WARPS + threadIdx.x / WARP;
    if (b < nblocks) warp_act_q8_0(x + (size_t)b * QK, y + (size_t)b * QK, threadIdx.x % WARP);
}

// ACT_RELEASE: the integer rounding launches (act_q8_0_int,
// act_q8_k_int) let the kernel after them launch at once (pdl_release).
// In decode that is the down product after mvq_glu (whose Q8 rounding
// is a launch of its own; see gluTail on the Go side) or a k-quant o
// product after attention: its blocks are resident, Q4_0's and Q8_0's
// with their first weights loaded, when the rounding ends. tg128 on an
// H100 (session ten, one call, three alternating runs): Q4_0 1403–1415
// → 1419–1439 tokens/s, Q8_0 1183–1189 → 1197–1203; Q4_K_M within the
// noise (1037–1052 → 1031–1061, with a slower RMSNorm since dropped).
#ifndef ACT_RELEASE
#define ACT_RELEASE 1
#endif

// act_q8_0_int rounds nblocks blocks of 32 through Q8_0 into ACT_Q8_0_INT's
// layout, a warp per block.
extern "C" __global__ void act_q8_0_int(const float *x, int8_t *y, int nblocks) {
    if (ACT_RELEASE) pdl_release();
    pdl_begin();
    const int b = blockIdx.x * ACT_WARPS + threadIdx.x / WARP;
    float *ds = (float *)(y + q8_scales_at(nblocks * QK));
    if (b < nblocks) warp_act_q8_0_int(x + (size_t)b * QK, y + (size_t)b * QK, ds + b, threadIdx.x % WARP);
}

// act_q8_k_int rounds nblocks blocks of 256 through Q8_K into
// ACT_Q8_K_INT's layout, a warp per block.
extern "C" __global__ void act_q8_k_int(const float *x, int8_t *y, int nblocks) {
    if (ACT_RELEASE) pdl_release();
    pdl_begin();
    const int b = blockIdx.x * ACT_WARPS + threadIdx.x / WARP;
    const int total = nblocks * QK_K;
    float *ds = (float *)(y + q8_scales_at(total));
    int *ss = (int *)(ds + total / QK);
    if (b < nblocks) warp_act_q8_k_int(x + (size_t)b * QK_K, y + (size_t)b * QK_K, ds + (size_t)b * 8, ss + (size_t)b * 8, threadIdx.x % WARP);
}

// act_f16_bits rounds n values to F16 halves (ACT_F16_BITS).
extern "C" __global__ void act_f16_bits(const float *x, uint16_t *y, int n) {
    tl_mark(TL_ACT, TL_START);
    pdl_begin();
    tl_mark(TL_ACT, TL_WAITED);
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = float_to_half(x[i]);
    tl_mark(TL_ACT, TL_END);
}

// act_q8_k rounds nblocks blocks of 256 through Q8_K, a warp per block.
extern "C" __global__ void act_q8_k(const float *x, float *y, int nblocks) {
    pdl_begin();
    const int b = blockIdx.x * ACT_WARPS + threadIdx.x / WARP;
    if (b < nblocks) warp_act_q8_k(x + (size_t)b * QK_K, y + (size_t)b * QK_K, threadIdx.x % WARP);
}

// ---------------------------------------------------------------- rows

// get_rows sets dst row i to the dequantized row ids[i] of a weight table;
// one block per row.
// table and dst are restrict: with them apart, the F16/F32 copy's loads
// go out together instead of each waiting for the store before it (a
// decode step's first kernel).
extern "C" __global__ void get_rows(const uint8_t *__restrict__ table, long long rowBytes, int cols, int type,
                                    const int *ids, float *__restrict__ dst) {
    tl_mark(TL_GET_ROWS, TL_START);
    pdl_begin();
    tl_mark(TL_GET_ROWS, TL_WAITED);
    const uint8_t *row = table + (size_t)ids[blockIdx.x] * rowBytes;
    float *out = dst + (size_t)blockIdx.x * cols;
    if (type == TYPE_F32 || type == TYPE_F16) {
#pragma unroll 8
        for (int i = threadIdx.x; i < cols; i += blockDim.x)
            out[i] = type == TYPE_F32 ? ((const float *)row)[i] : half_to_float(((const uint16_t *)row)[i]);
        tl_mark(TL_GET_ROWS, TL_END);
        return;
    }
    float w[QK];
    for (int c = threadIdx.x; c < cols / QK; c += blockDim.x) {
        switch (type) {
        case TYPE_Q4_0: dequant_chunk<TYPE_Q4_0>(row, c, w); break;
        case TYPE_Q8_0: dequant_chunk<TYPE_Q8_0>(row, c, w); break;
        case TYPE_Q4_K: dequant_chunk<TYPE_Q4_K>(row, c, w); break;
        default: dequant_chunk<TYPE_Q6_K>(row, c, w); break;
        }
        for (int i = 0; i < QK; i++) out[c * QK + i] = w[i];
    }
}

// copy_rows sets dst row i to src row rows[i]; one block per row. src
// and dst never overlap (the Go side refuses shared storage): restrict,
// so that a thread's loads go out together.
extern "C" __global__ void copy_rows(const float *__restrict__ src, float *__restrict__ dst, int cols, const int *rows) {
    tl_mark(TL_COPY_ROWS, TL_START);
    pdl_begin();
    tl_mark(TL_COPY_ROWS, TL_WAITED);
    const float *s = src + (size_t)rows[blockIdx.x] * cols;
    float *d = dst + (size_t)blockIdx.x * cols;
#pragma unroll 8
    for (int i = threadIdx.x; i < cols; i += blockDim.x) d[i] = s[i];
    tl_mark(TL_COPY_ROWS, TL_END);
}

// ---------------------------------------------------------------- element-wise

// NORM_THREADS: rms_norm's block (normThreads in ops.go must agree).
// 256 and 128 threads (8 and 16 values a thread in registers), whose
// blocks fit beside a product's on a multiprocessor: F16 tg128 within
// the noise, Q4_0 6% and 14% slower (H100, session twelve).
#ifndef NORM_THREADS
#define NORM_THREADS 512
#endif

// NORM_FLOAT_RED: rms_norm adds its threads' sums of squares (each in
// double) in float, one shuffle a step instead of two, and takes the
// scale in float (the CPU adds every square in double: the relative
// difference in the sum is about 1e-7, far below the F16 rounding of the
// products' input). TestDecodeTimeline on an H100 (session thirteen):
// a norm 3.33 → 3.05 µs of the F16 decode step, the step 1013 → 997 µs;
// tg128 F16 966 → 971 tokens/s, Q4_0 1525 → 1545 (six runs each).
#ifndef NORM_FLOAT_RED
#define NORM_FLOAT_RED 1
#endif

// rms_norm keeps the first NORM_REGS values of each thread's share of a
// row (and their norm weights) in registers.
#ifndef NORM_REGS
#define NORM_REGS 4
#endif

// norm_scale returns a row's 1/sqrt(mean(x²)+eps) to every thread of a
// block of NORM_THREADS from each thread's sum of its squares s: the
// warps reduce their sums with shuffles, then every warp the warps' sums
// with the same shuffle tree, so that all get warp 0's result after one
// barrier (a tree in shared memory took ten barriers; warp 0 alone and a
// second barrier to share its result, one more; each thread adding the
// warps' sums from shared memory in the tree's order, 2.5 µs instead of
// 0.7: session twelve). rms_norm and the norm-folded products share it,
// and with it their bits.
__device__ __forceinline__ float norm_scale(double s, int cols, float eps) {
#if NORM_FLOAT_RED
    __shared__ float partf[NORM_THREADS / WARP];
    float sf = (float)s;
    for (int o = WARP / 2; o > 0; o >>= 1) sf += __shfl_xor_sync(0xffffffffu, sf, o);
    if (threadIdx.x % WARP == 0) partf[threadIdx.x / WARP] = sf;
    __syncthreads();
    sf = threadIdx.x % WARP < NORM_THREADS / WARP ? partf[threadIdx.x % WARP] : 0.f;
    for (int o = WARP / 2; o > 0; o >>= 1) sf += __shfl_xor_sync(0xffffffffu, sf, o);
    const float mean = sf / (float)cols;
    return 1.f / sqrtf(mean + eps);
#else
    __shared__ double part[NORM_THREADS / WARP];
    for (int o = WARP / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (threadIdx.x % WARP == 0) part[threadIdx.x / WARP] = s;
    __syncthreads();
    s = threadIdx.x % WARP < NORM_THREADS / WARP ? part[threadIdx.x % WARP] : 0.0;
    for (int o = WARP / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const float mean = (float)(s / (double)cols);
    return 1.f / (float)sqrt((double)(mean + eps));
#endif
}

// rms_norm: dst = x/sqrt(mean(x²)+eps)·w per row, each thread's squares
// summed in double like ggml's ggml_float, the threads' sums in float
// (NORM_FLOAT_RED), the scale in float. One block per row.
// Two fusions save passes over memory and launches: with addend not null
// the row is first x + addend, written to sum (the residual add before a
// norm; sum may be x); with act not null, dst is also rounded into act
// through the following product's format (actKind).
extern "C" __global__ void __launch_bounds__(NORM_THREADS) rms_norm(const float *x, const float *addend, float *sum, const float *w, float *dst,
                                    int cols, float eps, void *act, int actKind) {
    tl_mark(TL_RMS_NORM, TL_START);
    if (gridDim.x == 1) pdl_release();
    // The norm's weights are no kernel's output: in registers before the
    // wait (the first NORM_REGS values a thread scales), and the row's
    // values kept from the sum of squares to the scaling.
    float wv[NORM_REGS], xv[NORM_REGS];
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * NORM_THREADS;
        wv[k] = i < cols ? w[i] : 0.f;
        xv[k] = 0.f;
    }
    tl_mark(TL_RMS_NORM, TL_PRE);
    pdl_begin();
    tl_mark(TL_RMS_NORM, TL_WAITED);
    const size_t off = (size_t)blockIdx.x * cols;
    const float *xr = x + off;
    float *dr = dst + off;
    double s = 0;
    // All of a thread's loads first, then the sums and their stores: sum
    // may be x, so a load after a store of sum would wait for it (loading
    // as they were needed took 1.3 µs of a decode step's 2.3 µs norm, four
    // round trips to L2: TestDecodeTimeline, session twelve).
    float av[NORM_REGS];
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * NORM_THREADS;
        av[k] = 0.f;
        if (i < cols) {
            xv[k] = xr[i];
            if (addend) av[k] = addend[off + i];
        }
    }
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * NORM_THREADS;
        if (i < cols) {
            float v = xv[k];
            if (addend) {
                v = v + av[k];
                sum[off + i] = v;
            }
            xv[k] = v;
            s += (double)(v * v);
        }
    }
    for (int i = threadIdx.x + NORM_REGS * NORM_THREADS; i < cols; i += NORM_THREADS) {
        float v = xr[i];
        if (addend) {
            v = v + addend[off + i];
            sum[off + i] = v;
        }
        s += (double)(v * v);
    }
    tl_mark(TL_RMS_NORM, TL_MID1);
    const float scale = norm_scale(s, cols, eps);
    tl_mark(TL_RMS_NORM, TL_MID2);
    // Each thread reads back only the sums it wrote itself.
    const float *src = addend ? sum + off : xr;
    // The rounding for the next product (act) of the values in registers
    // goes straight from there where each rounding block lies in one
    // warp: value i of a thread is element tid + i·NORM_THREADS, so with
    // whole 32-value blocks a warp holds block k·NORM_THREADS/32 + warp,
    // value lane in lane (as act_span hands them out). Q8_K's 256-value
    // blocks span warps: act_span, after a barrier, from dst.
    const int total = gridDim.x * cols;
    const bool regs = act && cols % QK == 0 && (actKind == ACT_Q8_0_INT || actKind == ACT_F16_BITS);
    int8_t *q = (int8_t *)act;
    float *ds = regs ? (float *)(q + q8_scales_at(total)) : nullptr;
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * NORM_THREADS;
        if (i < cols) { // the same for the whole warp when regs
            const float y = xv[k] * scale * wv[k];
            dr[i] = y;
            if (regs && actKind == ACT_F16_BITS) ((uint16_t *)act)[off + i] = float_to_half(y);
            if (regs && actKind == ACT_Q8_0_INT) {
                const size_t b = (off + i) / QK;
                warp_q8_0_int(y, q + b * QK, ds + b, threadIdx.x % WARP);
            }
        }
    }
    for (int i = threadIdx.x + NORM_REGS * NORM_THREADS; i < cols; i += NORM_THREADS) dr[i] = src[i] * scale * w[i];
    if (act) {
        // act_span indexes the whole matrix (gridDim.x rows): the integer
        // kinds keep all values before all scales.
        const int done = !regs ? 0 : cols < NORM_REGS * NORM_THREADS ? cols : NORM_REGS * NORM_THREADS;
        if (done < cols) {
            __syncthreads();
            act_span(dst, act, (int)off + done, cols - done, total, actKind, threadIdx.x, NORM_THREADS);
        }
    }
    tl_mark(TL_RMS_NORM, TL_END);
}

extern "C" __global__ void add(const float *a, const float *b, float *dst, int n) {
    pdl_begin();
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = a[i] + b[i];
}

#define SWIGLU_THREADS 256

// silu_mul is SwiGLU's value silu(g)·u, the exponential in double as the
// CPU; swiglu and the fused gate/up product (mvq_glu_…) share it, so that
// both give the same bits.
__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.f + (float)exp((double)(-g))) * u; }

// swiglu: dst = silu(gate)·up with the exponential in double, as the CPU.
// Blocks of SWIGLU_THREADS values; with act not null the block then
// rounds its values into act (actKind's blocks divide SWIGLU_THREADS), the
// input of the down projection, saving a launch and a pass.
extern "C" __global__ void swiglu(const float *gate, const float *up, float *dst, int n, void *act, int actKind) {
    pdl_begin();
    const int base = blockIdx.x * SWIGLU_THREADS;
    const int i = base + threadIdx.x;
    float y = 0.f;
    if (i < n) {
        y = silu_mul(gate[i], up[i]);
        dst[i] = y;
    }
    // F16 halves and Q8_0 blocks straight from the registers (a warp's
    // lanes hold one whole block, value lane in lane, as act_span hands
    // them out); Q8_K's blocks span warps: act_span from dst.
    if (act && actKind == ACT_F16_BITS) {
        if (i < n) ((uint16_t *)act)[i] = float_to_half(y);
        return;
    }
    if (act && actKind == ACT_Q8_0_INT && n % QK == 0) {
        if (base + (int)(threadIdx.x / WARP) * WARP < n) { // the whole warp's block lies in the matrix
            int8_t *q = (int8_t *)act;
            float *ds = (float *)(q + q8_scales_at(n));
            warp_q8_0_int(y, q + (size_t)(i / QK) * QK, ds + i / QK, threadIdx.x % WARP);
        }
        return;
    }
    if (act) {
        __syncthreads();
        const int m = n - base < SWIGLU_THREADS ? n - base : SWIGLU_THREADS;
        act_span(dst, act, base, m, n, actKind, threadIdx.x, SWIGLU_THREADS);
    }
}

// glu_out writes row r's results of mvq_glu: gate ag, up au and
// silu(ag)·au (in F16 halves to act too when asked).
__device__ __forceinline__ void glu_out(float ag, float au, int r, float *G, float *U, float *D, void *act, int actKind) {
    const float d = silu_mul(ag, au);
    if (G != D) G[r] = ag;
    if (U != D) U[r] = au;
    D[r] = d;
    if (act && actKind == ACT_F16_BITS) ((uint16_t *)act)[r] = float_to_half(d);
}

// GLU_Q4K_PAIR: mvq_glu_q4_k loads a lane's gate and up units together.
#ifndef GLU_Q4K_PAIR
#define GLU_Q4K_PAIR 1
#endif

// GLU_RELEASE_LATE: each block of mvq_glu lets the down product launch
// once its main loop is done (pdl_release), so that the down product's
// launch overlaps the last blocks' sums and exits; released at the
// blocks' start instead, the down product's blocks took the
// multiprocessors unevenly as the glu's blocks left and it was no faster
// (sessions five, eleven and twelve). tg128 on an H100 (session
// thirteen, four to six runs each, alternating): F16 974 → 975 tokens/s,
// Q4_0 1483 → 1518, Q4_K_M 1347 → 1339; the down product's first block
// waited 0.96 µs after the glu's slowest block instead of 1.36.
#ifndef GLU_RELEASE_LATE
#define GLU_RELEASE_LATE 1
#endif

// GLU_PRE: MVQ_PRE for mvq_glu's gate and up rows.
#ifndef GLU_PRE
#define GLU_PRE 1
#endif

// mvq_glu is the gate and up products of one token and SwiGLU in one
// launch (decode's FFN): warp w of block b takes row i = MV_ROWS·b + w of
// both matrices (for F16 two warps a row, as mvq), summing each exactly as
// mvq does (lane l over units l, l+32, …, then warp_sum), so G and U get
// mvq's bits, and D[i] =
// silu_mul(G[i], U[i]) swiglu's. G is written unless D replaces it (the
// model's in-place SwiGLU), U unless D replaces it.
//
// With act not null D is also rounded into act (actKind: ACT_Q8_0_INT,
// ACT_Q8_K_INT or ACT_F16_BITS, the down product's input). F16 halves are
// per value. The Q8 kinds come only with the Go side's gluTail
// ($LLAMAGO_CUDA_GLU_TAIL=1): by default an act launch of its own rounds
// D into Q8 blocks (faster, session ten). A Q8 block's scale needs all
// its values (32 or 256 rows, 8 or 64 blocks of this kernel): each block
// counts itself done in counters[group] after its writes, and the
// group's last block rounds the group (reading the values from L2) and
// sets the counter back to zero for the next launch. The rounding is
// that of act_q8_0_int/act_q8_k_int on the same values, so the result
// does not depend on which block is last. act must not overlap xq: other blocks may still be reading xq while a
// group's last block writes act (the Go side rounds into its second
// scratch buffer).
template <int TYPE>
__device__ void mvq_glu(const int8_t *xq, int cols, const uint8_t *Wg, long long rbg, const uint8_t *Wu, long long rbu, int rows,
                        float *G, float *U, float *D, void *act, int actKind, int *counters) {
    tl_mark(TL_MVQ_GLU, TL_START);
    __shared__ float vals[QK_K];
    __shared__ int last;
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    // As mvq: S warps a row.
    constexpr int S = mvq_split<TYPE>(), STRIDE = WARP * S;
    const int r = (blockIdx.x * MV_ROWS + warp) / S, b0 = warp % S * WARP + lane;
    const bool ok = r < rows;
    const uint8_t *rowg = Wg + (size_t)r * rbg, *rowu = Wu + (size_t)r * rbu;
    const int units = cols / mvq_unit<TYPE>();
    // As mvq: the first units' weights of both rows before the wait.
    constexpr int PRE = TYPE == TYPE_Q4_0 || TYPE == TYPE_Q8_0 || TYPE == TYPE_F16 ? GLU_PRE
                        : TYPE == TYPE_Q4_K && GLU_Q4K_PAIR                       ? MVQ_PRE_Q4K
                                                                                  : 0;
    WUnit<TYPE> preg[PRE > 0 ? PRE : 1], preu[PRE > 0 ? PRE : 1];
    if constexpr (PRE > 0) {
#pragma unroll
        for (int i = 0; i < PRE; i++)
            if (ok && b0 + i * STRIDE < units) preg[i] = wload<TYPE>(rowg, b0 + i * STRIDE), preu[i] = wload<TYPE>(rowu, b0 + i * STRIDE);
    }
    if (((GLU_L2PF >> TYPE) & 1) && ok && gridDim.x <= MVQ_L2PF_GRID)
        l2_prefetch_row(rowg, rbg, b0, STRIDE), l2_prefetch_row(rowu, rbu, b0, STRIDE);
    tl_mark(TL_MVQ_GLU, TL_PRE);
    pdl_begin();
    tl_mark(TL_MVQ_GLU, TL_WAITED);
    if constexpr (S == 1) {
        if (ok) {
            const float *xd = (const float *)(xq + q8_scales_at(cols));
            const int *xs = (const int *)(xd + cols / QK);
            float ag = 0.f, au = 0.f;
            if constexpr (TYPE == TYPE_Q4_K && GLU_Q4K_PAIR) {
                // Q4_K: the gate and up units' weights loaded together and
                // the activations once for both, so that one memory round
                // trip serves both rows (one after the other took two).
                int b = lane;
                if constexpr (PRE > 0) {
#pragma unroll
                    for (int i = 0; i < PRE; i++, b += WARP) {
                        if (b < units) {
                            const Q4KActs a = q4k_xunit(b, xq, xd, xs);
                            ag += q4k_dot(preg[i].k, a);
                            au += q4k_dot(preu[i].k, a);
                        }
                    }
                }
#pragma unroll 2
                for (; b < units; b += WARP) {
                    const Q4KWeights wg = q4k_wunit(rowg, b), wu = q4k_wunit(rowu, b);
                    const Q4KActs a = q4k_xunit(b, xq, xd, xs);
                    ag += q4k_dot(wg, a);
                    au += q4k_dot(wu, a);
                }
            } else if constexpr (TYPE == TYPE_Q4_K || TYPE == TYPE_Q6_K) {
                // One matrix after the other: the k-quants' units hold many
                // registers (both at once took 132 for Q4_K).
#pragma unroll 4
                for (int b = lane; b < units; b += WARP) ag += block_dot_q<TYPE>(rowg, b, xq, xd, xs);
#pragma unroll 4
                for (int b = lane; b < units; b += WARP) au += block_dot_q<TYPE>(rowu, b, xq, xd, xs);
            } else {
                int b = lane;
                if constexpr (PRE > 0) {
#pragma unroll
                    for (int i = 0; i < PRE; i++, b += WARP)
                        if (b < units) ag += wdot<TYPE>(preg[i], b, xq, xd), au += wdot<TYPE>(preu[i], b, xq, xd);
                }
#pragma unroll 4
                for (; b < units; b += WARP) {
                    ag += block_dot_q<TYPE>(rowg, b, xq, xd, xs);
                    au += block_dot_q<TYPE>(rowu, b, xq, xd, xs);
                }
            }
            if (GLU_RELEASE_LATE) pdl_release();
            ag = warp_sum(ag);
            au = warp_sum(au);
            if (lane == 0) glu_out(ag, au, r, G, U, D, act, actKind);
        }
    } else {
        // S warps a row (F16; the k-quants do not split).
        static_assert(TYPE != TYPE_Q4_K && TYPE != TYPE_Q6_K, "k-quant rows are not split");
        float ag = 0.f, au = 0.f;
        if (ok) {
            const float *xd = (const float *)(xq + q8_scales_at(cols));
            const int *xs = (const int *)(xd + cols / QK);
            int b = b0;
            if constexpr (PRE > 0) {
#pragma unroll
                for (int i = 0; i < PRE; i++, b += STRIDE)
                    if (b < units) ag += wdot<TYPE>(preg[i], b, xq, xd), au += wdot<TYPE>(preu[i], b, xq, xd);
            }
#pragma unroll 4
            for (; b < units; b += STRIDE) {
                ag += block_dot_q<TYPE>(rowg, b, xq, xd, xs);
                au += block_dot_q<TYPE>(rowu, b, xq, xd, xs);
            }
            if (GLU_RELEASE_LATE) pdl_release();
            ag = warp_sum(ag);
            au = warp_sum(au);
        }
        ag = split_sum<S>(ag, warp, lane);
        __syncthreads(); // split_sum's buffer is read before it is written again
        au = split_sum<S>(au, warp, lane);
        if (ok && warp % S == 0 && lane == 0) glu_out(ag, au, r, G, U, D, act, actKind);
    }
    tl_mark(TL_MVQ_GLU, TL_END);
    if (!act || actKind == ACT_F16_BITS) return;
    // A block's MV_ROWS / S rows lie in one group (MV_ROWS divides 32).
    const int group = actKind == ACT_Q8_K_INT ? QK_K : QK;
    const int g = blockIdx.x * (MV_ROWS / S) / group;
    __threadfence(); // this block's D values visible to the group's last block
    __syncthreads();
    if (threadIdx.x == 0) last = atomicAdd(&counters[g], 1) == group / (MV_ROWS / S) - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    for (int i = threadIdx.x; i < group; i += MV_THREADS) vals[i] = __ldcg(D + (size_t)g * group + i);
    __syncthreads();
    if (warp == 0) {
        int8_t *q = (int8_t *)act;
        float *ds = (float *)(q + q8_scales_at(rows));
        if (actKind == ACT_Q8_0_INT) {
            warp_act_q8_0_int(vals, q + (size_t)g * QK, ds + g, lane);
        } else {
            int *ss = (int *)(ds + rows / QK);
            warp_act_q8_k_int(vals, q + (size_t)g * QK_K, ds + (size_t)g * 8, ss + (size_t)g * 8, lane);
        }
    }
    if (threadIdx.x == 0) counters[g] = 0;
}

#define MVQ_GLU_ARGS                                                                                                   \
    const int8_t *xq, int cols, const uint8_t *Wg, long long rbg, const uint8_t *Wu, long long rbu, int rows, float *G, \
        float *U, float *D, void *act, int actKind, int *counters
#define MVQ_GLU_KERNEL(name, TYPE)                                                                  \
    extern "C" __global__ void mvq_glu_##name(MVQ_GLU_ARGS) {                                       \
        mvq_glu<TYPE>(xq, cols, Wg, rbg, Wu, rbu, rows, G, U, D, act, actKind, counters); \
    }
MVQ_GLU_KERNEL(q4_0, TYPE_Q4_0)
MVQ_GLU_KERNEL(q8_0, TYPE_Q8_0)
extern "C" __global__ void __launch_bounds__(MV_THREADS, MVQ_F16_MINB) mvq_glu_f16(MVQ_GLU_ARGS) {
    mvq_glu<TYPE_F16>(xq, cols, Wg, rbg, Wu, rbu, rows, G, U, D, act, actKind, counters);
}
MVQ_GLU_KERNEL(q4_k, TYPE_Q4_K)
MVQ_GLU_KERNEL(q6_k, TYPE_Q6_K)

// ------------------------------------------------ norm-folded F16 products

// The one-token F16 products after an RMSNorm (decode's q/k/v after the
// attention norm, gate/up after the FFN norm, the output product after
// the final norm) with the norm folded in: every block computes the
// norm of the row itself, exactly as rms_norm does (NORM_THREADS threads,
// the same values a thread, the same order of sums), into F16 halves in
// its shared memory, and then its rows' products from there — one launch
// and one kernel boundary less than rms_norm followed by mvq_f16. Block 0
// also writes the norm's output (ndst) and its halves (xq) as rms_norm
// would, for any later reader. The norm must take no addend (the
// residual add goes into the product before it: mvq's addSum), since a
// block could otherwise read the residual after another had rewritten it.
//
// The blocks are few and large, so that the norm's reads (8 KB of row and
// 8 KB of weights a block for TinyLlama) cost little: NORM_THREADS
// threads, MVQN_PAIRS pairs of warps, a pair a row (as mvq_f16: the same
// units a lane, the same sums), looping over groups of MVQN_PAIRS rows
// (mvqn_rows; the Go side launches no more blocks than the
// multiprocessors hold at once). A pair adds its two sums after a named
// barrier of its own, so that the pairs do not wait for each other from
// row to row. (Session twelve folded the norm into mvq_f16's own blocks
// of 128 threads: each of 1280–2816 blocks repeating the norm made decode
// a third slower.)
//
// Measured on an H100 (session seventeen, TinyLlama-shaped F16 file; "the
// step" is the decode step as one graph replayed back to back): the step
// 951 → 907 µs, tg128 987–1001 → 1037–1049 tokens/s. Folding only the
// q/k/v norm took the step to 932 µs, the FFN norm too (at
// MVQN_GLU_MINB 2) to 912; the output product's fold is within ±1 µs.
#define MVQN_THREADS NORM_THREADS
#define MVQN_PAIRS (MVQN_THREADS / WARP / 2)
// MVQN_MAX_COLS: the longest row the fold takes (its halves are in
// shared memory); mvqnMaxCols in ops.go must agree.
#ifndef MVQN_MAX_COLS
#define MVQN_MAX_COLS 8192
#endif
// MVQN_MINB, MVQN_GLU_MINB: blocks a multiprocessor must hold of
// mvqn_f16 and mvqn_glu_f16: 2, 64 registers, as many warps as mvq_f16's
// 8 blocks of 128 threads. The step (above): mvqn_glu_f16 at 3 (40
// registers, 56 bytes spilled, as many warps as mvq_glu_f16's 12 blocks)
// took 1000 µs with the FFN norm folded alone, against 950 unfolded;
// mvqn_f16 at 3 (32 bytes spilled) 940 against 907.
#ifndef MVQN_MINB
#define MVQN_MINB 2
#endif
#ifndef MVQN_GLU_MINB
#define MVQN_GLU_MINB 2
#endif
// MVQN_PRE, MVQN_GLU_PRE: units of its first row a lane loads before the
// wait (MVQ_PRE_F16 and GLU_PRE of the unfolded kernels). The step
// (above): MVQN_PRE 1, 2, 3, 4 took 915, 907, 911, 931 µs; MVQN_GLU_PRE
// 0, 1, 2 936, 913, 923 (with MVQN_PRE 3).
#ifndef MVQN_PRE
#define MVQN_PRE 2
#endif
#ifndef MVQN_GLU_PRE
#define MVQN_GLU_PRE GLU_PRE
#endif

// NormWeights is a thread's first NORM_REGS norm weights, loaded before
// the wait (no kernel writes them).
struct NormWeights {
    float w[NORM_REGS];
};

__device__ __forceinline__ NormWeights norm_weights(const float *w, int cols) {
    NormWeights nw;
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * NORM_THREADS;
        nw.w[k] = i < cols ? w[i] : 0.f;
    }
    return nw;
}

// norm_halves computes rms_norm's output for row x (cols values, no
// addend) with the block's NORM_THREADS threads, in rms_norm's order of
// operations, and stores its F16 halves in xs (shared); with write set
// also the floats in dst and the halves in act, as rms_norm does. Ends
// with a barrier, after which xs is complete.
__device__ __forceinline__ void norm_halves(const float *x, const float *w, const NormWeights &nw, float *dst, uint16_t *act, int cols,
                                            float eps, uint16_t *xs, bool write) {
    float xv[NORM_REGS];
    double s = 0;
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * NORM_THREADS;
        xv[k] = i < cols ? x[i] : 0.f;
    }
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * NORM_THREADS;
        if (i < cols) s += (double)(xv[k] * xv[k]);
    }
    for (int i = threadIdx.x + NORM_REGS * NORM_THREADS; i < cols; i += NORM_THREADS) {
        const float v = x[i];
        s += (double)(v * v);
    }
    const float scale = norm_scale(s, cols, eps);
#pragma unroll
    for (int k = 0; k < NORM_REGS; ++k) {
        const int i = threadIdx.x + k * NORM_THREADS;
        if (i < cols) {
            const float y = xv[k] * scale * nw.w[k];
            const uint16_t h = float_to_half(y);
            xs[i] = h;
            if (write) dst[i] = y, act[i] = h;
        }
    }
    for (int i = threadIdx.x + NORM_REGS * NORM_THREADS; i < cols; i += NORM_THREADS) {
        const float y = x[i] * scale * w[i];
        const uint16_t h = float_to_half(y);
        xs[i] = h;
        if (write) dst[i] = y, act[i] = h;
    }
    __syncthreads();
}

// mvqn_norm is a norm-folded block's part between its loads before the
// wait and its rows: the norm's weights (before the wait too), the wait
// for the kernel before, and the norm into xs (norm_halves; block 0 also
// writing ndst and its halves at xq). tl is the kernel's TL_ code.
__device__ __forceinline__ void mvqn_norm(int tl, const float *nx, const float *nw, float *ndst, const int8_t *xq, int cols, float eps,
                                          uint16_t *xs) {
    const NormWeights nwv = norm_weights(nw, cols);
    tl_mark(tl, TL_PRE);
    pdl_begin();
    tl_mark(tl, TL_WAITED);
    norm_halves(nx, nw, nwv, ndst, (uint16_t *)xq, cols, eps, xs, blockIdx.x == 0);
}

// pair_sum returns, in both warps of pair p (warps 2p and 2p+1), the sum
// of their lane-0 values v, the first warp's first (split_sum's order),
// meeting at named barrier 1 + p; parts alternates between two buffers
// from call to call (buf), so that a pair's next call does not overwrite
// values its partner has yet to read.
__device__ __forceinline__ float pair_sum(float v, float (*parts)[MVQN_THREADS / WARP], int &buf, int warp, int lane) {
    if (lane == 0) parts[buf][warp] = v;
    asm volatile("bar.sync %0, %1;" ::"r"(1 + warp / 2), "r"(2 * WARP) : "memory");
    const float sum = parts[buf][warp & ~1] + parts[buf][warp | 1];
    buf ^= 1;
    return sum;
}

// MvqnRows is the rows pair p of a norm-folded block computes: first,
// first + step, … below end — groups of MVQN_PAIRS rows, the blocks
// taking them in turn (b, b + grid, …). Giving each block a contiguous
// share of the rows instead (every block nearly the same number) made
// the F16 decode step slower: 917 against 907 µs (H100, session
// seventeen, the step as one graph replayed back to back).
struct MvqnRows {
    int first, step, end;
};

__device__ __forceinline__ MvqnRows mvqn_rows(int rows, int pair) {
    return MvqnRows{(int)blockIdx.x * MVQN_PAIRS + pair, (int)gridDim.x * MVQN_PAIRS, rows};
}

// MvqRow is row r of the matrices an mvq launch takes one after the
// other: its matrix's weights, row bytes and output, and its index there.
struct MvqRow {
    const uint8_t *W;
    long long rb;
    float *Y;
    int r;
};

__device__ __forceinline__ MvqRow mvq_row(int r, const uint8_t *W0, long long rb0, int rows0, float *Y0, const uint8_t *W1,
                                          long long rb1, int rows1, float *Y1, const uint8_t *W2, long long rb2, float *Y2) {
    if (r < rows0) return MvqRow{W0, rb0, Y0, r};
    if (r < rows0 + rows1) return MvqRow{W1, rb1, Y1, r - rows0};
    return MvqRow{W2, rb2, Y2, r - rows0 - rows1};
}

// mvqn_f16 is rms_norm followed by mvq_f16 (up to three matrices). It
// adds no residual: MVQ_ARGS' addA and addSum are not read (the Go side
// merges residual adds only into mvq).
extern "C" __global__ void __launch_bounds__(MVQN_THREADS, MVQN_MINB) mvqn_f16(MVQ_ARGS, const float *nx, const float *nw, float *ndst, float eps) {
    tl_mark(TL_MVQ, TL_START);
    pdl_release();
    __shared__ __align__(16) uint16_t xs[MVQN_MAX_COLS];
    __shared__ float parts[2][MVQN_THREADS / WARP];
    constexpr int STRIDE = 2 * WARP, PRE = MVQN_PRE;
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, pair = warp / 2, b0 = warp % 2 * WARP + lane;
    const int total = rows0 + rows1 + rows2, units = cols / 8;
    // The first row's first units and the norm's weights before the wait.
    const MvqnRows rs = mvqn_rows(total, pair);
    WUnit<TYPE_F16> pre[PRE];
    if (rs.first < rs.end) {
        const MvqRow m = mvq_row(rs.first, W0, rb0, rows0, Y0, W1, rb1, rows1, Y1, W2, rb2, Y2);
#pragma unroll
        for (int i = 0; i < PRE; i++)
            if (b0 + i * STRIDE < units) pre[i] = wload<TYPE_F16>(m.W + (size_t)m.r * m.rb, b0 + i * STRIDE);
    }
    mvqn_norm(TL_MVQ, nx, nw, ndst, xq, cols, eps, xs);
    const int8_t *xh = (const int8_t *)xs;
    int buf = 0;
    // Both warps of a pair take the same rows: no barrier is left behind.
    for (int r0 = rs.first; r0 < rs.end; r0 += rs.step) {
        const bool first = r0 == rs.first;
        const MvqRow m = mvq_row(r0, W0, rb0, rows0, Y0, W1, rb1, rows1, Y1, W2, rb2, Y2);
        const uint8_t *row = m.W + (size_t)m.r * m.rb;
        float acc = 0.f;
        int b = b0;
        if (first) {
#pragma unroll
            for (int i = 0; i < PRE; i++, b += STRIDE)
                if (b < units) acc += wdot<TYPE_F16>(pre[i], b, xh, nullptr);
        }
#pragma unroll 4
        for (; b < units; b += STRIDE) acc += block_dot_q<TYPE_F16>(row, b, xh, nullptr, nullptr);
        acc = warp_sum(acc);
        acc = pair_sum(acc, parts, buf, warp, lane);
        if (warp % 2 == 0 && lane == 0) m.Y[m.r] = acc;
    }
    tl_mark(TL_MVQ, TL_END);
}

// mvqn_glu_f16 is rms_norm followed by mvq_glu_f16 (F16 halves of its
// output only: act, when not null, is the down product's input).
// MVQN_GLU_RELEASE_EARLY: mvqn_glu_f16 lets the down product launch at
// its start (pdl_release) instead of after its blocks' last main loop
// (GLU_RELEASE_LATE): its blocks fill the multiprocessors' registers, so
// the down product's blocks take them only as they leave either way. The
// step (above): 906 against 911 µs.
#ifndef MVQN_GLU_RELEASE_EARLY
#define MVQN_GLU_RELEASE_EARLY 1
#endif
extern "C" __global__ void __launch_bounds__(MVQN_THREADS, MVQN_GLU_MINB) mvqn_glu_f16(MVQ_GLU_ARGS, const float *nx, const float *nw, float *ndst, float eps) {
    tl_mark(TL_MVQ_GLU, TL_START);
    if (MVQN_GLU_RELEASE_EARLY) pdl_release();
    __shared__ __align__(16) uint16_t xs[MVQN_MAX_COLS];
    __shared__ float parts[2][MVQN_THREADS / WARP];
    constexpr int STRIDE = 2 * WARP, PRE = MVQN_GLU_PRE;
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, pair = warp / 2, b0 = warp % 2 * WARP + lane;
    const int units = cols / 8;
    const MvqnRows rs = mvqn_rows(rows, pair);
    WUnit<TYPE_F16> preg[PRE > 0 ? PRE : 1], preu[PRE > 0 ? PRE : 1];
    if constexpr (PRE > 0) {
        const int r = rs.first;
#pragma unroll
        for (int i = 0; i < PRE; i++)
            if (r < rs.end && b0 + i * STRIDE < units)
                preg[i] = wload<TYPE_F16>(Wg + (size_t)r * rbg, b0 + i * STRIDE), preu[i] = wload<TYPE_F16>(Wu + (size_t)r * rbu, b0 + i * STRIDE);
    }
    mvqn_norm(TL_MVQ_GLU, nx, nw, ndst, xq, cols, eps, xs);
    const int8_t *xh = (const int8_t *)xs;
    int buf = 0;
    for (int r = rs.first; r < rs.end; r += rs.step) {
        const bool first = r == rs.first;
        const uint8_t *rowg = Wg + (size_t)r * rbg, *rowu = Wu + (size_t)r * rbu;
        float ag = 0.f, au = 0.f;
        int b = b0;
        if constexpr (PRE > 0) {
            if (first) {
#pragma unroll
                for (int i = 0; i < PRE; i++, b += STRIDE)
                    if (b < units) ag += wdot<TYPE_F16>(preg[i], b, xh, nullptr), au += wdot<TYPE_F16>(preu[i], b, xh, nullptr);
            }
        }
#pragma unroll 4
        for (; b < units; b += STRIDE) {
            ag += block_dot_q<TYPE_F16>(rowg, b, xh, nullptr, nullptr);
            au += block_dot_q<TYPE_F16>(rowu, b, xh, nullptr, nullptr);
        }
        if (GLU_RELEASE_LATE && !MVQN_GLU_RELEASE_EARLY && r + rs.step >= rs.end) pdl_release();
        ag = warp_sum(ag);
        au = warp_sum(au);
        ag = pair_sum(ag, parts, buf, warp, lane);
        au = pair_sum(au, parts, buf, warp, lane);
        if (warp % 2 == 0 && lane == 0) glu_out(ag, au, r, G, U, D, act, actKind);
    }
    tl_mark(TL_MVQ_GLU, TL_END);
}

// ---------------------------------------------------------------- KV cache

__device__ __forceinline__ size_t kv_offset(int slot, int layer, int pos, int layers, int ctx, int kvDim) {
    return (((size_t)slot * layers + layer) * ctx + pos) * kvDim;
}

// store_kv_row writes row r of k and v at (slot, layer, pos) of the cache
// with the calling block's threads, rounding to F16 when the cache is F16.
__device__ __forceinline__ void store_kv_row(const float *k, const float *v, void *kc, void *vc, const int *slot,
                                             const int *pos, int kvDim, int layers, int ctx, int layer, int f16, int r) {
    const size_t off = kv_offset(slot[r], layer, pos[r], layers, ctx, kvDim);
    const float *kr = k + (size_t)r * kvDim, *vr = v + (size_t)r * kvDim;
    for (int i = threadIdx.x; i < kvDim; i += blockDim.x) {
        if (f16) {
            ((uint16_t *)kc)[off + i] = float_to_half(kr[i]);
            ((uint16_t *)vc)[off + i] = float_to_half(vr[i]);
        } else {
            ((float *)kc)[off + i] = kr[i];
            ((float *)vc)[off + i] = vr[i];
        }
    }
}

// store_kv writes row blockIdx.x of k and v at (slot, layer, pos) of the
// cache, rounding to F16 when the cache is F16.
extern "C" __global__ void store_kv(const float *k, const float *v, void *kc, void *vc,
                                    const int *slot, const int *pos, int kvDim, int layers, int ctx,
                                    int layer, int f16) {
    pdl_begin();
    store_kv_row(k, v, kc, vc, slot, pos, kvDim, layers, ctx, layer, f16, blockIdx.x);
}

// ROPE_SINCOS: rope_angle takes cos and sin in one sincos, one argument
// reduction for both (0: cos, then sin). With the attention prologue's
// loads moved before the angles, tg128 on an H100 (session twelve, ABBA,
// three rounds): F16 913–946 → 934–966 tokens/s (cos and sin apart:
// 908–954), Q4_0 1410–1458 → 1466–1497, Q4_K_M 1230–1276 → 1305–1342.
#ifndef ROPE_SINCOS
#define ROPE_SINCOS 1
#endif
// ROPE_MAX_PAIRS: the most rotated pairs a head takes (dims/2).
#define ROPE_MAX_PAIRS 256

// rope_angle sets *c, *s to the cos and sin of pair i's angle at position
// p: p·thetaScale^i·freqScale with the power accumulated in float one pair
// at a time (theta *= thetaScale), as ggml's rope cache does; cos and sin
// in double rounded to float. rope and the attention kernel's fused
// rotation share it (and rope_pair), so that both give the same bits.
__device__ __forceinline__ void rope_angle(float p, int i, float thetaScale, float freqScale, float *c, float *s) {
    float theta = p;
    for (int j = 0; j < i; j++) theta *= thetaScale;
    const double t = (double)(freqScale * theta);
#if ROPE_SINCOS
    double sd, cd;
    sincos(t, &sd, &cd); // one argument reduction for both
    *c = (float)cd;
    *s = (float)sd;
#else
    *c = (float)cos(t);
    *s = (float)sin(t);
#endif
}

// rope_pair rotates the pair (x0, x1) by the angle of cos c, sin s, each
// product rounded (no contraction left to the compiler, which could pick
// differently in two kernels).
__device__ __forceinline__ void rope_pair(float x0, float x1, float c, float s, float *y0, float *y1) {
    *y0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    *y1 = __fmaf_rn(x0, s, __fmul_rn(x1, c));
}

// rope rotates each head of row blockIdx.x by its position. Pair i's angle
// is pos·base^(-2i/dims)·freqScale with the power accumulated in float one
// pair at a time (theta *= thetaScale), as ggml's rope cache does; cos and
// sin in double rounded to float.
//
// Two fusions save launches of a decode layer: with x2 not null the heads2
// heads of x2's row (k after q) rotate in the same launch, and with kc not
// null the block then stores row blockIdx.x of kst (the rotated k) and v at
// (slot, pos) of the cache (store_kv's work, after a barrier so that the
// block's own rotations are visible).
extern "C" __global__ void rope(float *x, const int *pos, int heads, int headDim, int dims,
                                float thetaScale, float freqScale, int neox, float *x2, int heads2,
                                const float *v, const float *kst, void *kc, void *vc, const int *slot,
                                int kvDim, int layers, int ctx, int layer, int f16) {
    pdl_begin();
    // Pair i's cos and sin are the same for every head of the row: take
    // them once (the serial power and the double sincos are the cost),
    // then rotate all heads.
    __shared__ float cs[ROPE_MAX_PAIRS], sn[ROPE_MAX_PAIRS];
    const int half = dims / 2;
    const int r = blockIdx.x;
    const float p = (float)pos[r];
    for (int i = threadIdx.x; i < half; i += blockDim.x) rope_angle(p, i, thetaScale, freqScale, &cs[i], &sn[i]);
    __syncthreads();
    for (int k = threadIdx.x; k < (heads + heads2) * half; k += blockDim.x) {
        const int h = k / half, i = k % half;
        const float c = cs[i], s = sn[i];
        float *head = h < heads ? x + (size_t)r * heads * headDim + h * headDim
                                : x2 + (size_t)r * heads2 * headDim + (h - heads) * headDim;
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        rope_pair(head[i0], head[i1], c, s, &head[i0], &head[i1]);
    }
    if (kc) {
        __syncthreads();
        store_kv_row(kst, v, kc, vc, slot, pos, kvDim, layers, ctx, layer, f16, r);
    }
}

// ATTN_THREADS: threads of an attention block (attnThreads in ops.go
// must agree; a macro for measuring). 256 instead of 512, tg128 on an
// H100 (session eleven, three alternating runs): F16 934–938 → 900–912
// tokens/s, Q4_0 1433–1450 → 1336–1359, Q4_K_M and Q8_0 slower within a
// noisy run.
#ifndef ATTN_THREADS
#define ATTN_THREADS 512
#endif
#define ATTN_WARPS (ATTN_THREADS / WARP)
#define ATTN_MAX_HEAD_DIM 256
// DEC64_KEYS: the old positions whose keys attention_dec64 holds in
// registers from before the wait (half a key a lane).
#define DEC64_KEYS (ATTN_THREADS / 2)
// ATTN_KEEP: positions whose scores attention keeps in shared memory.
#define ATTN_KEEP 4096
// ATTN_PRE_V: old positions a thread loads the values of before the wait
// in decode (the keys: DEC64_KEYS). Measured on an H100 (tg128, session
// five, three alternating runs, with 4 positions' keys a warp then): 8
// values, Q4_0 1090 → 1183 tokens/s, Q4_K_M 951 → 1010, F16 741 → 772,
// Q8_0 796 → 811; 16 took 128 registers and gained half that. Session
// eight (attention_dec64): 12 and 16 within the noise.
// ATTN_PREFETCH: decode attention also asks L2 for the rows of the old
// positions past those (prefetch, no registers) before the wait. Measured
// on an H100 (session six, three alternating runs): tg128 Q4_0 1220 →
// 1245 tokens/s, Q8_0 919 → 943, Q4_K_M 1024 → 1032, F16 unchanged;
// tg512 Q4_0 806 → 912, Q8_0 654 → 725, Q4_K_M 705 → 789, F16 651 → 653.
#ifndef ATTN_PREFETCH
#define ATTN_PREFETCH 1
#endif
// ATTN_ACT_REGS: decode attention rounds its output for a Q8_0 o product
// from the registers of the threads that summed it, instead of reading it
// back after a barrier.
#ifndef ATTN_ACT_REGS
#define ATTN_ACT_REGS 1
#endif
#ifndef ATTN_PRE_V
#define ATTN_PRE_V 8
#endif
// ATTN_POST_V: old positions past ATTN_PRE_V's a thread loads the values
// of right after the wait (when there are any), so that their latency
// overlaps passes 1 and 2 instead of following them. On an H100 (session
// fifteen, F16 TinyLlama-shaped file, the decode step's graphs replayed
// back to back, TestTinyLlamaDecodeGPUTime's way) 16 took a step at
// positions 97–129 from 1017.9 to 994.9 µs, at 129–161 from 1036.9 to
// 998.8, and at 1–33 968.6 → 970.1; tg128 within its noise (974–982 →
// 977–985 tokens/s); 8 and 24 in between.
#ifndef ATTN_POST_V
#define ATTN_POST_V 16
#endif

__device__ __forceinline__ float kv_at(const void *c, size_t i, int f16) {
    return f16 ? half_to_float(((const uint16_t *)c)[i]) : ((const float *)c)[i];
}

// kv_raw is the bits of cache value i (an F16 cache's half in the low 16
// bits), kv_value the value of those bits: kv_at in two steps, so that a
// load issued before the wait is not held up by its conversion.
__device__ __forceinline__ uint32_t kv_raw(const void *c, size_t i, int f16) {
    return f16 ? (uint32_t)((const uint16_t *)c)[i] : ((const uint32_t *)c)[i];
}
__device__ __forceinline__ float kv_value(uint32_t raw, int f16) {
    return f16 ? half_to_float((uint16_t)raw) : __int_as_float((int)raw);
}

// thread_dot is the dot product of count values of q (qs, in shared
// memory) with a key's (key(i)) computed by one thread: value i added to
// partial sum i mod 4, the partial sums added in pairs.
template <typename Key>
__device__ __forceinline__ float thread_dot(const float *qs, int count, Key key) {
    float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma unroll
    for (int i = 0; i < count; i += 4) {
        a0 += qs[i] * key(i);
        if (i + 1 < count) a1 += qs[i + 1] * key(i + 1);
        if (i + 2 < count) a2 += qs[i + 2] * key(i + 2);
        if (i + 3 < count) a3 += qs[i + 3] * key(i + 3);
    }
    return (a0 + a1) + (a2 + a3);
}

// thread_dot_cache is thread_dot of q with count values of the cache from
// kb: F16 values 16-byte aligned as 8 a load (the same sums, in the same
// order), else value by value.
__device__ __forceinline__ float thread_dot_cache(const float *qs, int count, const void *kc, size_t kb, int f16) {
    if (f16 && count % 8 == 0 && kb % 8 == 0) {
        const uint4 *row = (const uint4 *)((const uint16_t *)kc + kb);
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
#pragma unroll 2
        for (int i = 0; i < count; i += 8) {
            const uint4 w = row[i / 8];
            a0 += qs[i] * half_to_float((uint16_t)w.x);
            a1 += qs[i + 1] * half_to_float((uint16_t)(w.x >> 16));
            a2 += qs[i + 2] * half_to_float((uint16_t)w.y);
            a3 += qs[i + 3] * half_to_float((uint16_t)(w.y >> 16));
            a0 += qs[i + 4] * half_to_float((uint16_t)w.z);
            a1 += qs[i + 5] * half_to_float((uint16_t)(w.z >> 16));
            a2 += qs[i + 6] * half_to_float((uint16_t)w.w);
            a3 += qs[i + 7] * half_to_float((uint16_t)(w.w >> 16));
        }
        return (a0 + a1) + (a2 + a3);
    }
    return thread_dot(qs, count, [&](int i) { return kv_at(kc, kb + i, f16); });
}

// A score's dot product q·k is that of the head's first half (headDim/2
// values) plus that of the rest, each a thread_dot: attention_dec64 has
// two lanes compute the halves of a position, other positions and
// kernels compute both in one thread, with the same operations.

// key_dot_cache is q·k for the key at kb of the cache.
__device__ __forceinline__ float key_dot_cache(const float *qs, int headDim, const void *kc, size_t kb, int f16) {
    const int h2 = headDim / 2;
    return thread_dot_cache(qs, h2, kc, kb, f16) + thread_dot_cache(qs + h2, headDim - h2, kc, kb + h2, f16);
}

__device__ float block_max(float v, float *red) {
    for (int o = WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x % WARP == 0) red[threadIdx.x / WARP] = v;
    __syncthreads();
    float m = red[0];
    for (int w = 1; w < ATTN_WARPS; w++) m = fmaxf(m, red[w]);
    __syncthreads();
    return m;
}

__device__ double block_sum(double v, double *red) {
    for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % WARP == 0) red[threadIdx.x / WARP] = v;
    __syncthreads();
    double s = 0;
    for (int w = 0; w < ATTN_WARPS; w++) s += red[w];
    __syncthreads();
    return s;
}

// ATTN_RED_SHFL: decode attention's maximum and sum of the block's warps
// as one barrier and a shuffle tree in every warp (block_max1,
// block_sum1) instead of two barriers and a loop over the warps' values.
#ifndef ATTN_RED_SHFL
#define ATTN_RED_SHFL 1
#endif

// block_max1 is block_max with one barrier: each warp reduces the warps'
// maxima itself. red must not be written again by the launch.
__device__ float block_max1(float v, float *red) {
    for (int o = WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    if (threadIdx.x % WARP == 0) red[threadIdx.x / WARP] = v;
    __syncthreads();
    float m = threadIdx.x % WARP < ATTN_WARPS ? red[threadIdx.x % WARP] : __int_as_float(0xff800000);
    for (int o = WARP / 2; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    return m;
}

// block_sum1 is block_sum with one barrier, the warps' sums added in a
// shuffle tree (the same in every lane) rather than in warp order. red
// must not be written again by the launch.
__device__ double block_sum1(double v, double *red) {
    for (int o = WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (threadIdx.x % WARP == 0) red[threadIdx.x / WARP] = v;
    __syncthreads();
    double s = threadIdx.x % WARP < ATTN_WARPS ? red[threadIdx.x % WARP] : 0.0;
    for (int o = WARP / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    return s;
}

// attention computes, for query row blockIdx.y and head blockIdx.x, causal
// softmax attention over positions 0..pos of its slot. Three passes over
// the keys (maximum, sum of exponentials, weighted values) recompute the
// scores instead of storing them, so no scratch memory depends on the
// context length (up to ATTN_KEEP positions the scores stay in shared
// memory between the passes). One thread computes a position's score
// (key_dot_cache), which needs no shuffles. For the weighted sum,
// the block's threads form ATTN_THREADS/headDim groups, each summing every
// group-th position of a chunk for one dimension; the groups' sums are
// added at the end. With an F16 cache the query and the probabilities are
// rounded to F16 as ggml's F16 products do. scores and probs, when not
// null, receive the scaled scores and the probabilities at
// probeCols/heads values per head.
//
// With ropeDims > 0 (decode, one row) the kernel also does the rope
// launch's work before it (q's and k's rotation, the cache store): each
// block rotates its head of q (writing it back) and its KV head of k in
// shared memory, and takes the new position's key and value from there
// instead of the cache. The blocks of a KV head count themselves in
// counters[kvh] once they have read k's raw row; the last one, at its
// end, writes the rotated head back to k and stores k and v at the new
// position of the cache (which no block of this launch reads), then sets
// the counter back to zero. Same float operations as rope and store_kv (rope_angle,
// rope_pair; the cache's F16 rounding), so the same bits.
//
// attention_impl is that kernel's body. DEC64 compiles it for the common
// decode launch only: heads of 64 values, an F16 cache, the rotation
// fused (ropeDims > 0), no probes (the Go side launches attention_dec64
// only then). The arithmetic is the same, in the same order, so both
// kernels give the same bits; the specialized one has fewer instructions
// and holds the first keys in registers (the generic kernel's decode
// launches, 13.5k instructions, stalled for instruction fetches about a
// quarter of their time and at barriers another: H200, ncu).
template <bool DEC64>
__device__ __forceinline__ void attention_impl(const float *q, float *dst, const void *kc, const void *vc,
                                               const int *slotArr, const int *posArr, int heads, int kvHeads,
                                               int headDim, int layers, int ctx, int layer, float scale, int f16,
                                               float *scores, float *probs, int probeCols, int8_t *act,
                                               float *kRow, const float *vRow, int ropeDims, float thetaScale,
                                               float freqScale, int neox, int *counters, int actKind) {
    tl_mark(TL_ATTENTION, TL_START);
    if constexpr (DEC64) {
        headDim = 64;
        f16 = 1;
        scores = probs = nullptr;
    }
    __shared__ float qs[ATTN_MAX_HEAD_DIM];
    __shared__ float kh[ATTN_MAX_HEAD_DIM], vh[ATTN_MAX_HEAD_DIM]; // the new position's key and value (ropeDims > 0)
    __shared__ float rc[ROPE_MAX_PAIRS], rsn[ROPE_MAX_PAIRS];
    __shared__ int lastOfHead;
    __shared__ float p[ATTN_THREADS];
    __shared__ float comb[ATTN_THREADS];
    __shared__ float redf[ATTN_WARPS];
    __shared__ double redd[ATTN_WARPS];
    __shared__ float kept[ATTN_KEEP];
    const int h = blockIdx.x, r = blockIdx.y, tid = threadIdx.x;
    const int warp = tid / WARP, lane = tid % WARP;
    const int kvDim = kvHeads * headDim;
    const int kvh = h / (heads / kvHeads);
    const int n = posArr[r] + 1;
    const size_t base = kv_offset(slotArr[r], layer, 0, layers, ctx, kvDim) + (size_t)kvh * headDim;
    const float *qr = q + (size_t)r * heads * headDim + (size_t)h * headDim;
    const bool fused = DEC64 || ropeDims > 0;
    if (gridDim.y == 1) pdl_release();
    // Before the wait: the positions and slots (uploaded before the queue's
    // first kernel, no kernel's output) and the rotation's angles from
    // them; q, k, v and the cache after it.
    const int half = ropeDims / 2;
    // Decode (fused) with heads of up to 64 values: values of the first
    // old positions, which earlier forward passes wrote, go into registers
    // before the wait too, in pass 3's layout (thread (g, d) value d of
    // every groups-th position); attention_dec64 also holds keys there
    // (kw below).
    const bool pre = fused && headDim <= 2 * WARP;
    // attention_dec64: half a key of the first DEC64_KEYS positions a
    // lane (see pass 1), 32 F16 values in 16 words (pairs of halves).
    uint32_t kw[DEC64 ? WARP / 2 : 1];
    // The first old positions' values as the cache holds them, converted
    // after the wait (converting them before held the prologue until they
    // arrived: 0.55 µs of its 2.2, TestDecodeTimeline, session thirteen).
    uint32_t vpre[ATTN_PRE_V > 0 ? ATTN_PRE_V : 1];
    if (pre) {
        if constexpr (DEC64) {
            const int jp = warp * (WARP / 2) + lane % (WARP / 2), hf = lane / (WARP / 2);
            if (jp < n - 1) {
                const uint4 *row = (const uint4 *)((const uint16_t *)kc + base + (size_t)jp * kvDim + hf * 32);
#pragma unroll
                for (int i = 0; i < WARP / 8; i++) {
                    const uint4 w = row[i];
                    kw[4 * i] = w.x, kw[4 * i + 1] = w.y, kw[4 * i + 2] = w.z, kw[4 * i + 3] = w.w;
                }
            }
        }
        tl_mark(TL_ATTENTION, TL_P1);
        const int g = tid / headDim, d = tid % headDim, groups = ATTN_THREADS / headDim;
#pragma unroll
        for (int k = 0; k < ATTN_PRE_V; k++) {
            const int j = g + k * groups;
            vpre[k] = g < groups && j < n - 1 ? kv_raw(vc, base + (size_t)j * kvDim + d, f16) : 0u;
        }
        if (ATTN_PREFETCH) {
            // The old positions past those: their keys' and values' rows
            // of this head into L2 (no registers), a thread a row, so
            // that the passes' loads after the wait find them there.
            const int bytes = headDim * (f16 ? 2 : 4);
            const int k0 = DEC64 ? DEC64_KEYS : 0, v0 = ATTN_PRE_V * groups;
            for (int j = (k0 < v0 ? k0 : v0) + tid; j < n - 1; j += ATTN_THREADS) {
                const size_t at = (base + (size_t)j * kvDim) * (f16 ? 2 : 4);
                for (int o = 0; o < bytes; o += 128) {
                    if (j >= k0) asm volatile("prefetch.global.L2 [%0];" ::"l"((const char *)kc + at + o));
                    if (j >= v0) asm volatile("prefetch.global.L2 [%0];" ::"l"((const char *)vc + at + o));
                }
            }
        }
    }
    tl_mark(TL_ATTENTION, TL_P2);
    // The angles after the loads above, so that the loads are in flight
    // while the angles are computed: decode attention mostly starts only
    // once the q/k/v product's blocks have left a multiprocessor (its
    // blocks fit beside none), so this prologue is on the step's critical
    // path (TestDecodeTimeline, session twelve).
    if (fused)
        for (int i = tid; i < half; i += ATTN_THREADS) rope_angle((float)posArr[r], i, thetaScale, freqScale, &rc[i], &rsn[i]);
    tl_mark(TL_ATTENTION, TL_PRE);
    pdl_begin();
    tl_mark(TL_ATTENTION, TL_WAITED);
    uint32_t vpost[ATTN_POST_V > 0 ? ATTN_POST_V : 1];
    if (ATTN_POST_V > 0 && pre && n - 1 > ATTN_PRE_V * (ATTN_THREADS / headDim)) {
        const int g = tid / headDim, d = tid % headDim, groups = ATTN_THREADS / headDim;
#pragma unroll
        for (int k = 0; k < ATTN_POST_V; k++) {
            const int j = g + (ATTN_PRE_V + k) * groups;
            vpost[k] = g < groups && j < n - 1 ? kv_raw(vc, base + (size_t)j * kvDim + d, f16) : 0u;
        }
    }
    // The rotated key (thread i holds value i), and thread 0's count of
    // the KV head's blocks that had read k's raw row before this one.
    float ky = 0.f;
    int arrived = 0;
    float *kr = kRow + (size_t)kvh * headDim;
    if (fused) {
        // headDim ≤ ATTN_THREADS: thread i takes value i of the heads.
        __syncthreads();
        float qy = 0.f;
        if (tid < headDim) {
            qy = qr[tid], ky = kr[tid];
            const float vy = vRow[(size_t)kvh * headDim + tid];
            if (tid < ropeDims) {
                // Value tid is element e of pair i, whose other value is at o.
                const int i = neox ? tid % half : tid / 2;
                const int e = neox ? tid / half : tid % 2;
                const int o = neox ? (e ? tid - half : tid + half) : tid ^ 1;
                const float qo = qr[o], ko = kr[o];
                float y0, y1;
                rope_pair(e ? qo : qy, e ? qy : qo, rc[i], rsn[i], &y0, &y1);
                qy = e ? y1 : y0;
                rope_pair(e ? ko : ky, e ? ky : ko, rc[i], rsn[i], &y0, &y1);
                ky = e ? y1 : y0;
            }
            qs[tid] = f16 ? round_f16(qy) : qy;
            kh[tid] = f16 ? round_f16(ky) : ky;
            vh[tid] = f16 ? round_f16(vy) : vy;
        }
        // Every thread has read its values of q and k: write q's head back
        // (this block's alone), count the reads of k's.
        __syncthreads();
        if (tid < headDim) ((float *)qr)[tid] = qy;
        // The count's result is needed only at the end: its round trip
        // overlaps the passes below.
        if (tid == 0) arrived = atomicAdd(&counters[kvh], 1);
    } else {
        for (int i = tid; i < headDim; i += ATTN_THREADS) qs[i] = f16 ? round_f16(qr[i]) : qr[i];
        __syncthreads();
    }
    tl_mark(TL_ATTENTION, TL_MID1);
    const int span = probeCols / heads;
    // The dot product of q with the key at position j: the new position's
    // from shared memory when this launch rotated it, else the cache's
    // (key_dot_cache). One thread computes it, the same way in every pass.
    const int h2 = headDim / 2;
    auto score = [&](int j) {
        float dot;
        if (fused && j == n - 1) {
            dot = thread_dot(qs, h2, [&](int i) { return kh[i]; }) + thread_dot(qs + h2, headDim - h2, [&](int i) { return kh[h2 + i]; });
        } else {
            dot = key_dot_cache(qs, headDim, kc, base + (size_t)j * kvDim, f16);
        }
        return __fmul_rn(dot, scale);
    };

    // Pass 1: the largest score (and the scores probe), a thread a
    // position. Up to ATTN_KEEP positions the scores stay in shared memory
    // for the next two passes (decode at short and medium contexts reads
    // the keys once instead of three times); beyond, the passes recompute
    // them.
    const bool keep = n <= ATTN_KEEP;
    float mx = __int_as_float(0xff800000); // -infinity
    int first = 0;
    if constexpr (DEC64) {
        // The first DEC64_KEYS positions from the registers, a lane a half
        // of a key: lane l of warp w takes half l / 16 of position
        // 16w + l mod 16, and the two halves' sums meet by a shuffle (each
        // lane adds them in the order of score).
        const int jp = warp * (WARP / 2) + lane % (WARP / 2), hf = lane / (WARP / 2);
        float part = 0.f;
        if (jp < n) {
            part = jp == n - 1 ? thread_dot(qs + hf * 32, 32, [&](int i) { return kh[hf * 32 + i]; })
                               : thread_dot(qs + hf * 32, 32, [&](int i) { return half_to_float((uint16_t)(kw[i / 2] >> (16 * (i % 2)))); });
        }
        const float other = __shfl_xor_sync(0xffffffffu, part, WARP / 2);
        if (jp < n) {
            const float s = __fmul_rn(hf ? other + part : part + other, scale);
            mx = fmaxf(mx, s);
            if (hf == 0 && keep) kept[jp] = s;
        }
        first = DEC64_KEYS;
    }
    for (int j = first + tid; j < n; j += ATTN_THREADS) {
        const float s = score(j);
        mx = fmaxf(mx, s);
        if (keep) kept[j] = s;
        if (scores) scores[(size_t)r * probeCols + (size_t)h * span + j] = s;
    }
    mx = ATTN_RED_SHFL ? block_max1(mx, redf) : block_max(mx, redf); // its barriers also publish kept[]

    // Pass 2: the sum of exponentials, in double.
    double sum = 0;
    if (keep) {
        // One exponential a position, a thread each; kept holds the
        // exponentials from here on (pass 3 needs them again).
        for (int j = tid; j < n; j += ATTN_THREADS) {
            const float e = (float)exp((double)(kept[j] - mx));
            kept[j] = e;
            sum += (double)e;
        }
        sum = ATTN_RED_SHFL ? block_sum1(sum, redd) : block_sum(sum, redd);
    } else {
        for (int j = tid; j < n; j += ATTN_THREADS) sum += (double)(float)exp((double)(score(j) - mx));
        sum = ATTN_RED_SHFL ? block_sum1(sum, redd) : block_sum(sum, redd);
    }
    const float inv = (float)(1.0 / sum);
    tl_mark(TL_ATTENTION, TL_MID2);

    // Pass 3: the probabilities and the weighted values. Thread (g, d)
    // sums value d of positions g, g + groups, … With the scores kept,
    // each thread computes the probabilities it needs itself (the same
    // float operations as the chunked form below, in the same order), so
    // no barrier separates them from the sums; otherwise chunks of
    // ATTN_THREADS positions, their probabilities recomputed by warps
    // into shared memory first.
    const int groups = ATTN_THREADS / headDim;
    const int g = tid / headDim, d = tid % headDim;
    float acc = 0.f;
    if (keep) {
        if (probs)
            for (int j = tid; j < n; j += ATTN_THREADS) probs[(size_t)r * probeCols + (size_t)h * span + j] = kept[j] * inv;
        auto prob = [&](int j) {
            const float pr = kept[j] * inv;
            return f16 ? round_f16(pr) : pr;
        };
        if (g < groups) {
            int j = g;
            if (pre) {
#pragma unroll
                for (int k = 0; k < ATTN_PRE_V; k++, j += groups) {
                    if (j >= n) break;
                    acc += prob(j) * (j == n - 1 ? vh[d] : kv_value(vpre[k], f16));
                }
                if (ATTN_POST_V > 0 && n - 1 > ATTN_PRE_V * groups) {
#pragma unroll
                    for (int k = 0; k < ATTN_POST_V; k++, j += groups) {
                        if (j >= n) break;
                        acc += prob(j) * (j == n - 1 ? vh[d] : kv_value(vpost[k], f16));
                    }
                }
            }
#pragma unroll 8
            for (; j < n; j += groups) {
                const float v = fused && j == n - 1 ? vh[d] : kv_at(vc, base + (size_t)j * kvDim + d, f16);
                acc += prob(j) * v;
            }
        }
    }
    for (int c0 = 0; !keep && c0 < n; c0 += ATTN_THREADS) {
        const int m = n - c0 < ATTN_THREADS ? n - c0 : ATTN_THREADS;
        for (int jj = tid; jj < m; jj += ATTN_THREADS) {
            const int j = c0 + jj;
            const float pr = (float)exp((double)(score(j) - mx)) * inv;
            if (probs) probs[(size_t)r * probeCols + (size_t)h * span + j] = pr;
            p[jj] = f16 ? round_f16(pr) : pr;
        }
        __syncthreads();
        if (g < groups) {
            int jj = g;
            if (pre && c0 == 0) {
#pragma unroll
                for (int k = 0; k < ATTN_PRE_V; k++, jj += groups) {
                    if (jj >= m) break;
                    acc += p[jj] * (jj == n - 1 ? vh[d] : kv_value(vpre[k], f16));
                }
            }
#pragma unroll 8
            for (; jj < m; jj += groups) {
                const float v = fused && c0 + jj == n - 1 ? vh[d] : kv_at(vc, base + (size_t)(c0 + jj) * kvDim + d, f16);
                acc += p[jj] * v;
            }
        }
        __syncthreads();
    }
    comb[tid] = acc;
    __syncthreads();
    float *out = dst + (size_t)r * heads * headDim + (size_t)h * headDim;
    if (tid < headDim) {
        float o = 0.f;
        for (int k = 0; k < groups; k++) o += comb[k * headDim + tid];
        out[tid] = o;
        // Fused rounding of the output (one row) into F16 halves for an
        // F16 o projection (ACT_F16_BITS), value by value.
        if (act && actKind == ACT_F16_BITS) ((uint16_t *)act)[(size_t)h * headDim + tid] = float_to_half(o);
        // Q8_0 blocks straight from the registers: with headDim a
        // multiple of 32 (as the Go side asks) the threads below headDim
        // are whole warps, warp w holding the head's block w, value lane
        // in lane.
        if (ATTN_ACT_REGS && act && actKind == ACT_Q8_0_INT) {
            float *ds = (float *)(act + q8_scales_at(heads * headDim));
            const int gb = (h * headDim + tid) / QK;
            warp_q8_0_int(o, act + (size_t)gb * QK, ds + gb, lane);
        }
    }
    if (!ATTN_ACT_REGS && act && actKind == ACT_Q8_0_INT) {
        // Fused rounding of the output (one row, headDim a multiple of 32)
        // into ACT_Q8_0_INT for the o projection: this head's values are
        // whole Q8_0 blocks of the row, a warp each.
        __syncthreads();
        float *ds = (float *)(act + q8_scales_at(heads * headDim));
        for (int b = warp; b < headDim / QK; b += ATTN_WARPS) {
            const int gb = h * headDim / QK + b;
            warp_act_q8_0_int(out + b * QK, act + (size_t)gb * QK, ds + gb, lane);
        }
    }
    if (fused) {
        // The KV head's last block to have read k's raw row writes the
        // rotated row back and stores the new position's key and value in
        // the cache (read by no block of this launch: they take it from
        // kh and vh). Waiting here for the count instead of before the
        // passes: Q4_0 1079 → 1096 tokens/s, Q4_K_M 925 → 943, F16 748 →
        // 754, Q8_0 789 → 788 (H100, session five).
        if (tid == 0) lastOfHead = arrived == heads / kvHeads - 1;
        __syncthreads();
        if (lastOfHead && tid < headDim) {
            kr[tid] = ky;
            const size_t at = base + (size_t)(n - 1) * kvDim + tid;
            if (f16) {
                ((uint16_t *)kc)[at] = float_to_half(ky);
                ((uint16_t *)vc)[at] = float_to_half(vh[tid]);
            } else {
                ((float *)kc)[at] = ky;
                ((float *)vc)[at] = vh[tid];
            }
            if (tid == 0) counters[kvh] = 0;
        }
    }
    tl_mark(TL_ATTENTION, TL_END);
}

#define ATTENTION_ARGS                                                                                                  \
    const float *q, float *dst, const void *kc, const void *vc, const int *slotArr, const int *posArr, int heads,       \
        int kvHeads, int headDim, int layers, int ctx, int layer, float scale, int f16, float *scores, float *probs,   \
        int probeCols, int8_t *act, float *kRow, const float *vRow, int ropeDims, float thetaScale, float freqScale,   \
        int neox, int *counters, int actKind
#define ATTENTION_KERNEL(name, DEC64)                                                                                  \
    extern "C" __global__ void __launch_bounds__(ATTN_THREADS, 1) name(ATTENTION_ARGS) {                               \
        attention_impl<DEC64>(q, dst, kc, vc, slotArr, posArr, heads, kvHeads, headDim, layers, ctx, layer, scale, f16, \
                              scores, probs, probeCols, act, kRow, vRow, ropeDims, thetaScale, freqScale, neox,         \
                              counters, actKind);                                                                      \
    }
// ATTN_NO_DEC64 (for measuring): attention_dec64 is the generic kernel.
#ifndef ATTN_NO_DEC64
#define ATTN_NO_DEC64 0
#endif
ATTENTION_KERNEL(attention, false)
ATTENTION_KERNEL(attention_dec64, !ATTN_NO_DEC64)

// ------------------------------------------------ split-K decode attention (flash decoding)

// SPLIT_MAX_CHUNK: the most positions one split block takes (the host's
// chunk argument is at most this); SPLIT_MAX_CHUNKS: the most chunks a
// (row, head) is cut into.
#define SPLIT_MAX_CHUNK 1024
#define SPLIT_MAX_CHUNKS 1024

// Split-K ("flash decoding") attention, for decode rows at long contexts,
// where one block per (row, head) leaves most multiprocessors idle: the
// positions 0..n-1 of row r (n = pos[r]+1) are cut into chunks of chunk
// positions, and three launches share the work:
//
//   attention_split   block (h, r, c): chunk c's scores (kept in the
//                     scratch), their maximum and the sum of exponentials
//                     relative to that maximum (in double);
//   attention_split_v block (h, r, c): the largest score M and the sum S of
//                     every chunk of (r, h) (the rescaling
//                     Σ_c s_c·exp(m_c − M)), then chunk c's probabilities
//                     exp(score − M)/S as attention computes them and its
//                     share of the weighted values;
//   attention_combine block (h, r): the chunks' shares added, in order.
//
// So the probabilities are those of the one-block kernel (the same
// maximum, the same float operations; only the double sum S adds in
// another order, which can move 1/S by its last bit), and with an F16
// cache they round to F16 before they weight the values just as there;
// what changes is the order of the output's float sums. Part
// (r·heads + h)·chunks + c (chunks = gridDim.z) holds chunk c's results.
// Chunks starting at or past n do nothing and are read by nobody.
//
// None of these kernels writes the cache: the new position's key and
// value must already be there (the rope/store launch runs before them on
// the stream; the host never fuses the rotation into the split path).
extern "C" __global__ void attention_split(const float *q, const void *kc, const int *slotArr, const int *posArr,
                                           int heads, int kvHeads, int headDim, int layers, int ctx, int layer,
                                           float scale, int f16, int chunk, float *sc, float *pm, double *ps) {
    pdl_begin();
    __shared__ float qs[ATTN_MAX_HEAD_DIM];
    __shared__ float w[SPLIT_MAX_CHUNK]; // the chunk's scores
    __shared__ float redf[ATTN_WARPS];
    __shared__ double redd[ATTN_WARPS];
    const int h = blockIdx.x, r = blockIdx.y, c = blockIdx.z, tid = threadIdx.x;
    const int n = posArr[r] + 1;
    const int j0 = c * chunk;
    // The same for every thread of the block, before any barrier.
    if (j0 >= n) return;
    const int m = n - j0 < chunk ? n - j0 : chunk;
    const int kvDim = kvHeads * headDim;
    const int kvh = h / (heads / kvHeads);
    const size_t base = kv_offset(slotArr[r], layer, 0, layers, ctx, kvDim) + (size_t)kvh * headDim;
    const float *qr = q + (size_t)r * heads * headDim + (size_t)h * headDim;
    for (int i = tid; i < headDim; i += ATTN_THREADS) qs[i] = f16 ? round_f16(qr[i]) : qr[i];
    __syncthreads();

    // Scores of the chunk, a thread a position (as attention computes
    // them), and their maximum.
    float mx = __int_as_float(0xff800000); // -infinity
    for (int jj = tid; jj < m; jj += ATTN_THREADS) {
        const float s = __fmul_rn(key_dot_cache(qs, headDim, kc, base + (size_t)(j0 + jj) * kvDim, f16), scale);
        mx = fmaxf(mx, s);
        w[jj] = s;
    }
    mx = block_max(mx, redf); // its barriers also publish w[]

    // The scores for attention_split_v, the sum of exponentials relative
    // to the chunk's maximum: a thread a position.
    const size_t part = ((size_t)r * heads + h) * gridDim.z + c;
    double sum = 0;
    for (int jj = tid; jj < m; jj += ATTN_THREADS) {
        sc[part * chunk + jj] = w[jj];
        sum += (double)(float)exp((double)(w[jj] - mx));
    }
    sum = block_sum(sum, redd);
    if (tid == 0) {
        pm[part] = mx;
        ps[part] = sum;
    }
}

// attention_split_v: see attention_split.
extern "C" __global__ void attention_split_v(const void *vc, const int *slotArr, const int *posArr, int heads,
                                             int kvHeads, int headDim, int layers, int ctx, int layer, int f16,
                                             int chunk, const float *sc, const float *pm, const double *ps,
                                             float *pv) {
    pdl_begin();
    __shared__ float p[SPLIT_MAX_CHUNK]; // the chunk's probabilities
    __shared__ float comb[ATTN_THREADS];
    __shared__ double fc[SPLIT_MAX_CHUNKS]; // the chunks' factors s_c·exp(m_c − M)
    __shared__ float totals[2];             // M, 1/S
    const int h = blockIdx.x, r = blockIdx.y, c = blockIdx.z, tid = threadIdx.x;
    const int warp = tid / WARP, lane = tid % WARP;
    const int n = posArr[r] + 1;
    const int j0 = c * chunk;
    if (j0 >= n) return; // the same for every thread of the block
    const int m = n - j0 < chunk ? n - j0 : chunk;
    int used = (n + chunk - 1) / chunk;
    used = used < (int)gridDim.z ? used : (int)gridDim.z; // the host sizes the grid for the largest position; a guard all the same
    const int kvDim = kvHeads * headDim;
    const int kvh = h / (heads / kvHeads);
    const size_t base = kv_offset(slotArr[r], layer, 0, layers, ctx, kvDim) + (size_t)kvh * headDim;
    const size_t part0 = ((size_t)r * heads + h) * gridDim.z, part = part0 + c;
    // The head's largest score M and 1/S as attention rounds it (S the
    // sum of exponentials relative to M, Σ_c s_c·exp(m_c − M), chunks in
    // order): warp 0's lanes take the chunks' factors, its lane 0 adds
    // them. Every block of the head computes the same bits.
    if (warp == 0) {
        float b = __int_as_float(0xff800000);
        for (int k = 0; k < used; k++) b = fmaxf(b, pm[part0 + k]);
        for (int k = lane; k < used; k += WARP) fc[k] = ps[part0 + k] * exp((double)(pm[part0 + k] - b));
        __syncwarp();
        if (lane == 0) {
            double total = 0;
            for (int k = 0; k < used; k++) total += fc[k];
            totals[0] = b;
            totals[1] = (float)(1.0 / total);
        }
    }
    __syncthreads();
    const float big = totals[0], inv = totals[1];
    for (int jj = tid; jj < m; jj += ATTN_THREADS) {
        const float pr = (float)exp((double)(sc[part * chunk + jj] - big)) * inv;
        p[jj] = f16 ? round_f16(pr) : pr;
    }
    __syncthreads();
    // Weighted values: ATTN_THREADS/headDim groups of threads, each over
    // every groups-th position for one dimension; the groups' sums added
    // at the end.
    const int groups = ATTN_THREADS / headDim;
    const int g = tid / headDim, d = tid % headDim;
    float acc = 0.f;
    if (g < groups) {
#pragma unroll 8
        for (int jj = g; jj < m; jj += groups) acc += p[jj] * kv_at(vc, base + (size_t)(j0 + jj) * kvDim + d, f16);
    }
    comb[tid] = acc;
    __syncthreads();
    if (tid < headDim) {
        float o = 0.f;
        for (int k = 0; k < groups; k++) o += comb[k * headDim + tid];
        pv[part * headDim + tid] = o;
    }
}

// attention_combine: see attention_split. Block (h, r) adds the shares of
// the used chunks of (r, h) out of chunks per head. With act not null
// (one row, headDim a multiple of 32) it also rounds the head's output
// into ACT_Q8_0_INT for the o projection, as attention does.
extern "C" __global__ void attention_combine(float *dst, const int *posArr, int heads, int headDim, int chunks,
                                             int chunk, const float *pv, int8_t *act) {
    pdl_begin();
    const int h = blockIdx.x, r = blockIdx.y, tid = threadIdx.x;
    const int n = posArr[r] + 1;
    int used = (n + chunk - 1) / chunk;
    used = used < chunks ? used : chunks; // the host sizes chunks for the largest position; a guard all the same
    const size_t part0 = ((size_t)r * heads + h) * chunks;
    float *out = dst + (size_t)r * heads * headDim + (size_t)h * headDim;
    for (int d = tid; d < headDim; d += blockDim.x) {
        float o = 0.f;
        for (int c = 0; c < used; c++) o += pv[(part0 + c) * headDim + d];
        out[d] = o;
    }
    if (act) {
        // The head's values are whole Q8_0 blocks of the row, a warp each;
        // the barrier makes the block's writes of out visible.
        __syncthreads();
        float *ds = (float *)(act + q8_scales_at(heads * headDim));
        const int warps = blockDim.x / WARP, warp = tid / WARP, lane = tid % WARP;
        for (int b = warp; b < headDim / QK; b += warps) {
            const int gb = h * headDim / QK + b;
            warp_act_q8_0_int(out + b * QK, act + (size_t)gb * QK, ds + gb, lane);
        }
    }
}

// ------------------------------------------------ prefill attention on the tensor cores

// attention_tc is attention for many query rows (prefill) with an F16
// cache, on the tensor cores (m16n8k16, F16 inputs, float sums). A block
// takes one head and a tile of up to FA_ROWS query rows of one slot (the
// Go side cuts the batch into tiles that never mix slots: tiles[2·y] is
// the first row of tile y, tiles[2·y+1] its row count); warp w owns rows
// 16w..16w+15. Keys go through shared memory FA_KEYS at a time, up to the
// tile's largest position, each row masking the keys after its own.
//
// Numerics: close to the attention kernel's and the CPU's. The query is
// rounded to F16 (as ggml's F16 products round it), scores are the F16
// dot products summed in float, times the scale; a first pass over the
// keys gives the row's maximum and the sum of exponentials (float
// exponentials summed in double, the sum rescaled in double whenever a
// thread's running maximum grows), a second the probabilities
// exp(s − max)/sum rounded to F16, which weight the values (F16) with
// float sums. The CPU takes the maximum in a pass of its own and its
// exponentials in double before rounding them to float; here expf (2 ulp)
// and the rescaling change the probabilities in their last float bits,
// below their F16 rounding. Three passes with double exponentials took
// twice as long (pp512 on an H100: F16 84k → 101k tokens/s, Q8_0 37.4k
// → 40.3k; attention_tc64 105 → 54 µs at 512 rows); the double
// exponentials were most of it.
#define FA_ROWS 64
#define FA_KEYS 64
#define FA_THREADS 128
// The kernel is compiled for heads of up to 64 and up to 128 dimensions
// (MAXD): register arrays sized for 128 would halve the blocks a
// multiprocessor holds for the common 64.
#define FA_VPITCH (FA_KEYS + 8)

__device__ __forceinline__ int imax(int a, int b) { return a > b ? a : b; }

__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
    return (uint32_t)float_to_half(lo) | ((uint32_t)float_to_half(hi) << 16);
}

// fa_scores computes the warp's 16×FA_KEYS scores of one key chunk (before
// scaling): s[nt] is the m16n8 fragment of keys 8nt..8nt+7.
template <int MAXD>
__device__ __forceinline__ void fa_scores(const uint16_t (*ks)[MAXD + 8], const uint32_t qa[MAXD / 16][4], int D, float s[FA_KEYS / 8][4]) {
    const int lane = threadIdx.x % WARP, g = lane >> 2, tq = lane & 3;
#pragma unroll
    for (int nt = 0; nt < FA_KEYS / 8; nt++) {
        s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
        for (int kk = 0; kk < MAXD / 16; kk++) {
            if (kk < D / 16) {
                const uint32_t b0 = *(const uint32_t *)&ks[8 * nt + g][16 * kk + 2 * tq];
                const uint32_t b1 = *(const uint32_t *)&ks[8 * nt + g][16 * kk + 8 + 2 * tq];
                mma_f16(s[nt], qa[kk][0], qa[kk][1], qa[kk][2], qa[kk][3], b0, b1);
            }
        }
    }
}

template <int MAXD>
__device__ void attention_tc(const float *q, float *dst, const uint16_t *kc, const uint16_t *vc, const int *slotArr,
                             const int *posArr, const int *tiles, int heads, int kvHeads, int D, int layers, int ctx,
                             int layer, float scale) {
    pdl_begin();
    __shared__ __align__(16) uint16_t ks[FA_KEYS][MAXD + 8];
    __shared__ __align__(16) uint16_t vt[MAXD][FA_VPITCH];
    __shared__ int maxPos[FA_THREADS / WARP];
    const int h = blockIdx.x, tid = threadIdx.x;
    const int first = tiles[2 * blockIdx.y], count = tiles[2 * blockIdx.y + 1];
    const int warp = tid / WARP, lane = tid % WARP, g = lane >> 2, tq = lane & 3;
    const int kvDim = kvHeads * D, kvh = h / (heads / kvHeads);
    const size_t base = kv_offset(slotArr[first], layer, 0, layers, ctx, kvDim) + (size_t)kvh * D;
    // This thread's two rows (fragment rows g and g+8 of its warp); rows
    // past the tile compute with row 0's query and position and are not
    // written.
    const int ra = warp * 16 + g, rb = ra + 8;
    const bool oka = ra < count, okb = rb < count;
    const int pa = posArr[first + (oka ? ra : 0)], pb = posArr[first + (okb ? rb : 0)];
    int mp = imax(pa, pb);
    for (int o = WARP / 2; o > 0; o >>= 1) mp = imax(mp, __shfl_xor_sync(0xffffffffu, mp, o));
    if (lane == 0) maxPos[warp] = mp;

    uint32_t qa[MAXD / 16][4];
    {
        const float *qra = q + (size_t)(first + (oka ? ra : 0)) * heads * D + (size_t)h * D;
        const float *qrb = q + (size_t)(first + (okb ? rb : 0)) * heads * D + (size_t)h * D;
#pragma unroll
        for (int kk = 0; kk < MAXD / 16; kk++) {
            if (kk < D / 16) {
                const int c = 16 * kk + 2 * tq;
                qa[kk][0] = pack_f16(qra[c], qra[c + 1]);
                qa[kk][1] = pack_f16(qrb[c], qrb[c + 1]);
                qa[kk][2] = pack_f16(qra[c + 8], qra[c + 9]);
                qa[kk][3] = pack_f16(qrb[c + 8], qrb[c + 9]);
            }
        }
    }
    __syncthreads();
    mp = imax(imax(maxPos[0], maxPos[1]), imax(maxPos[2], maxPos[3]));
    const int chunks = mp / FA_KEYS + 1;
    const int parts = D / 8; // 16-byte pieces of a key row

    float mxa = __int_as_float(0xff800000), mxb = mxa;
    double suma = 0, sumb = 0;
    float inva = 0.f, invb = 0.f;
    float o[MAXD / 8][4];
#pragma unroll
    for (int dt = 0; dt < MAXD / 8; dt++) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;

    // Pass 1 finds the row's maximum and the sum of exponentials together
    // (each thread over its own columns, rescaling its sum when its
    // maximum grows; the four of a fragment row meet after the pass),
    // pass 2 weights the values.
    for (int pass = 1; pass <= 2; pass++) {
        for (int ch = 0; ch < chunks; ch++) {
            const int j0 = ch * FA_KEYS;
            for (int i = tid; i < FA_KEYS * parts; i += FA_THREADS) {
                const int key = i / parts, part = i % parts;
                uint4 v = make_uint4(0, 0, 0, 0);
                if (j0 + key <= mp) v = *(const uint4 *)(kc + base + (size_t)(j0 + key) * kvDim + 8 * part);
                *(uint4 *)&ks[key][8 * part] = v;
            }
            if (pass == 2) {
                // Values transposed ([dimension][key]) so that the
                // fragments of the product with the probabilities are
                // single 32-bit loads; consecutive threads take
                // consecutive keys.
                for (int i = tid; i < FA_KEYS * parts; i += FA_THREADS) {
                    const int key = i % FA_KEYS, part = i / FA_KEYS;
                    uint4 v = make_uint4(0, 0, 0, 0);
                    if (j0 + key <= mp) v = *(const uint4 *)(vc + base + (size_t)(j0 + key) * kvDim + 8 * part);
                    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                    for (int e = 0; e < 4; e++) {
                        vt[8 * part + 2 * e][key] = (uint16_t)(w[e] & 0xffff);
                        vt[8 * part + 2 * e + 1][key] = (uint16_t)(w[e] >> 16);
                    }
                }
            }
            __syncthreads();
            float s[FA_KEYS / 8][4];
            fa_scores<MAXD>(ks, qa, D, s);
#pragma unroll
            for (int nt = 0; nt < FA_KEYS / 8; nt++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int j = j0 + 8 * nt + 2 * tq + (i & 1);
                    const bool valid = j <= (i < 2 ? pa : pb);
                    s[nt][i] = valid ? __fmul_rn(s[nt][i], scale) : __int_as_float(0xff800000);
                }
            if (pass == 1) {
                float ca = mxa, cb = mxb;
#pragma unroll
                for (int nt = 0; nt < FA_KEYS / 8; nt++) {
                    ca = fmaxf(ca, fmaxf(s[nt][0], s[nt][1]));
                    cb = fmaxf(cb, fmaxf(s[nt][2], s[nt][3]));
                }
                // A thread that has seen only masked keys has −∞ and a sum
                // of 0 (exp(−∞) = 0 rescales it) and adds nothing.
                const float ninf = __int_as_float(0xff800000);
                if (ca > mxa) suma *= exp((double)mxa - (double)ca), mxa = ca;
                if (cb > mxb) sumb *= exp((double)mxb - (double)cb), mxb = cb;
                if (mxa != ninf)
#pragma unroll
                    for (int nt = 0; nt < FA_KEYS / 8; nt++)
                        suma += (double)expf(s[nt][0] - mxa) + (double)expf(s[nt][1] - mxa);
                if (mxb != ninf)
#pragma unroll
                    for (int nt = 0; nt < FA_KEYS / 8; nt++)
                        sumb += (double)expf(s[nt][2] - mxb) + (double)expf(s[nt][3] - mxb);
            } else {
                // Probabilities, rounded to F16, straight into the A
                // fragments of the product with the values: the m16n8
                // fragments of keys 16kk.. and 16kk+8.. are the m16k16
                // fragment of keys 16kk..16kk+15.
#pragma unroll
                for (int kk = 0; kk < FA_KEYS / 16; kk++) {
                    float p[2][4];
#pragma unroll
                    for (int e = 0; e < 2; e++)
#pragma unroll
                        for (int i = 0; i < 4; i++) {
                            const float sv = s[2 * kk + e][i];
                            p[e][i] = sv == __int_as_float(0xff800000) ? 0.f : expf(sv - (i < 2 ? mxa : mxb)) * (i < 2 ? inva : invb);
                        }
                    const uint32_t a0 = pack_f16(p[0][0], p[0][1]), a1 = pack_f16(p[0][2], p[0][3]);
                    const uint32_t a2 = pack_f16(p[1][0], p[1][1]), a3 = pack_f16(p[1][2], p[1][3]);
#pragma unroll
                    for (int dt = 0; dt < MAXD / 8; dt++) {
                        if (dt < D / 8) {
                            const uint32_t b0 = *(const uint32_t *)&vt[8 * dt + g][16 * kk + 2 * tq];
                            const uint32_t b1 = *(const uint32_t *)&vt[8 * dt + g][16 * kk + 8 + 2 * tq];
                            mma_f16(o[dt], a0, a1, a2, a3, b0, b1);
                        }
                    }
                }
            }
            __syncthreads();
        }
        if (pass == 1) {
            // The four threads of a fragment row hold its other columns,
            // each sum relative to its thread's own maximum: bring them
            // to the row's and add them.
            float ma = mxa, mb = mxb;
            for (int m = 1; m < 4; m <<= 1) {
                ma = fmaxf(ma, __shfl_xor_sync(0xffffffffu, ma, m));
                mb = fmaxf(mb, __shfl_xor_sync(0xffffffffu, mb, m));
            }
            suma *= exp((double)mxa - (double)ma), sumb *= exp((double)mxb - (double)mb);
            mxa = ma, mxb = mb;
            for (int m = 1; m < 4; m <<= 1) {
                suma += __shfl_xor_sync(0xffffffffu, suma, m);
                sumb += __shfl_xor_sync(0xffffffffu, sumb, m);
            }
            inva = (float)(1.0 / suma);
            invb = (float)(1.0 / sumb);
        }
    }
#pragma unroll
    for (int dt = 0; dt < MAXD / 8; dt++) {
        if (dt < D / 8) {
            const int c = 8 * dt + 2 * tq;
            if (oka) {
                float *out = dst + (size_t)(first + ra) * heads * D + (size_t)h * D + c;
                out[0] = o[dt][0], out[1] = o[dt][1];
            }
            if (okb) {
                float *out = dst + (size_t)(first + rb) * heads * D + (size_t)h * D + c;
                out[0] = o[dt][2], out[1] = o[dt][3];
            }
        }
    }
}

#define ATTN_TC_ARGS                                                                                                      \
    const float *q, float *dst, const uint16_t *kc, const uint16_t *vc, const int *slotArr, const int *posArr,         \
        const int *tiles, int heads, int kvHeads, int D, int layers, int ctx, int layer, float scale
extern "C" __global__ void __launch_bounds__(FA_THREADS, 3) attention_tc64(ATTN_TC_ARGS) {
    attention_tc<64>(q, dst, kc, vc, slotArr, posArr, tiles, heads, kvHeads, D, layers, ctx, layer, scale);
}
extern "C" __global__ void __launch_bounds__(FA_THREADS) attention_tc128(ATTN_TC_ARGS) {
    attention_tc<128>(q, dst, kc, vc, slotArr, posArr, tiles, heads, kvHeads, D, layers, ctx, layer, scale);
}

// ---------------------------------------------------------------- greedy sampling

#define ARGMAX_THREADS 1024

// argmax_before reports whether candidate (v, i) comes before (w, j) in
// greedy sampling's order: the larger logit, on equal logits the lower
// index (llama.cpp's and the Go sampler's tie rule; -0 equals +0). Index
// -1, no candidate, carries -infinity and comes after every real one.
__device__ __forceinline__ bool argmax_before(float v, int i, float w, int j) {
    return v > w || (v == w && (unsigned)i < (unsigned)j);
}

// warp_argmax reduces the warp's (value, index) candidates and smallest
// bad index with xor shuffles: every lane ends with the warp's pick.
__device__ __forceinline__ void warp_argmax(float &best, int &idx, unsigned &bad) {
    for (int o = WARP / 2; o > 0; o >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, best, o);
        const int i = __shfl_xor_sync(0xffffffffu, idx, o);
        const unsigned b = __shfl_xor_sync(0xffffffffu, bad, o);
        if (argmax_before(v, i, best, idx)) {
            best = v;
            idx = i;
        }
        bad = b < bad ? b : bad;
    }
}

// argmax finds greedy sampling's pick in each row of logits, as Go's
// sample.FindBest does, so that only 12 bytes a row go back to the host
// instead of the row: out[3r] = the lowest index of the row's largest
// logit that is neither NaN nor +Inf (-1 when none is above -Inf),
// out[3r+1] = the lowest index of a NaN or +Inf logit (-1 when none),
// out[3r+2] = that logit's bits (0 when none). One block per row. The
// order (value, then index) is total on the candidates, so the result does
// not depend on how the reduction pairs them: each thread scans its
// strided values in increasing index order keeping the first of equal
// maxima, then warps and the block reduce (value, index) pairs and the
// minimum bad index.
extern "C" __global__ void __launch_bounds__(ARGMAX_THREADS) argmax(const float *x, int cols, int *out) {
    pdl_begin();
    __shared__ float wval[ARGMAX_THREADS / WARP];
    __shared__ int widx[ARGMAX_THREADS / WARP];
    __shared__ unsigned wbad[ARGMAX_THREADS / WARP];
    const float neg_inf = __int_as_float(0xff800000), pos_inf = __int_as_float(0x7f800000);
    const float *row = x + (size_t)blockIdx.x * cols;
    float best = neg_inf;
    int idx = -1;
    unsigned bad = 0xffffffffu; // as unsigned, "none" is above every index
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        const float v = row[i];
        if (!(v < pos_inf)) { // NaN or +Inf: the sampler's error, never a pick
            if (bad == 0xffffffffu) bad = (unsigned)i;
            continue;
        }
        if (v > best) { // strictly: this thread's earlier equal value stays
            best = v;
            idx = i;
        }
    }
    warp_argmax(best, idx, bad);
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    const int nwarps = (blockDim.x + WARP - 1) / WARP;
    if (lane == 0) {
        wval[warp] = best;
        widx[warp] = idx;
        wbad[warp] = bad;
    }
    __syncthreads();
    if (warp != 0) return;
    best = lane < nwarps ? wval[lane] : neg_inf;
    idx = lane < nwarps ? widx[lane] : -1;
    bad = lane < nwarps ? wbad[lane] : 0xffffffffu;
    warp_argmax(best, idx, bad);
    if (lane == 0) {
        int *o = out + 3 * (size_t)blockIdx.x;
        o[0] = idx;
        o[1] = (int)bad; // 0xffffffff is -1
        o[2] = bad == 0xffffffffu ? 0 : __float_as_int(row[bad]);
    }
}
