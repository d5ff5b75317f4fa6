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

// Rows per block of the one-token kernels: one warp per weight row, so a
// row needs no shared memory or barrier, and a block carries MV_ROWS rows
// (one block per row left the GPU scheduling blocks of 2 units a thread).
#define MV_ROWS 4
#define MV_THREADS (MV_ROWS * WARP)

// mv is the one-token product over units of 8 values: warp w of block b
// computes row MV_ROWS·b + w, lane l summing units l, l+32, … so that the
// warp reads consecutive bytes of the row. cols must be a multiple of 8
// (the Go side uses mm for F32/F16 rows that are not).
template <int TYPE>
__device__ void mv(const uint8_t *W, long long rowBytes, int wrows, int cols, const float *X, float *Y) {
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

// block_dot_q is the dot product of a whole weight block (32 values) with
// int8 activations: the one-token kernels give each lane whole blocks, so
// that a warp has a whole row's bytes in flight at once (a unit of 8
// values a lane left the memory system waiting on too few loads).
template <int TYPE>
__device__ __forceinline__ float block_dot_q(const uint8_t *row, int b, const int8_t *xq, const float *xd);

template <>
__device__ __forceinline__ float block_dot_q<TYPE_Q4_0>(const uint8_t *row, int b, const int8_t *xq, const float *xd) {
    const uint8_t *bp = row + (size_t)b * Q4_0_BYTES;
    const uint16_t *h = (const uint16_t *)bp; // blocks are 2-byte aligned
    const float d = half_to_float(h[0]);
    const int4 xa = *(const int4 *)(xq + (size_t)b * QK), xb = *(const int4 *)(xq + (size_t)b * QK + 16);
    const int xs[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
    int nib = 0, sx = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        // Quant bytes 4i..4i+3: values 4i.. (low nibbles), 16+4i.. (high).
        const uint32_t q = (uint32_t)h[1 + 2 * i] | ((uint32_t)h[2 + 2 * i] << 16);
        nib = __dp4a((int)(q & 0x0f0f0f0fu), xs[i], nib);
        nib = __dp4a((int)((q >> 4) & 0x0f0f0f0fu), xs[4 + i], nib);
        sx = __dp4a(0x01010101, xs[i], __dp4a(0x01010101, xs[4 + i], sx));
    }
    // Nibbles are 0..15 for weights -8..7: subtract 8·Σx.
    return (float)(nib - 8 * sx) * (d * xd[b]);
}

template <>
__device__ __forceinline__ float block_dot_q<TYPE_Q8_0>(const uint8_t *row, int b, const int8_t *xq, const float *xd) {
    const uint8_t *bp = row + (size_t)b * Q8_0_BYTES;
    const uint16_t *h = (const uint16_t *)bp;
    const float d = half_to_float(h[0]);
    const int4 xa = *(const int4 *)(xq + (size_t)b * QK), xb = *(const int4 *)(xq + (size_t)b * QK + 16);
    const int xs[8] = {xa.x, xa.y, xa.z, xa.w, xb.x, xb.y, xb.z, xb.w};
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) sum = __dp4a((int)((uint32_t)h[1 + 2 * i] | ((uint32_t)h[2 + 2 * i] << 16)), xs[i], sum);
    return (float)sum * (d * xd[b]);
}

// mvq is mv with int8 activations for up to three weight matrices that
// share the input (q, k and v; gate and up), as one launch: a warp per
// weight row, the warps numbered over the matrices' rows one after the
// other, lane l taking blocks l, l+32, … The small k and v products alone
// were launches of 64 blocks bound by their fixed cost.
template <int TYPE>
__device__ void mvq(const int8_t *xq, int cols, const uint8_t *W0, long long rb0, int rows0, float *Y0,
                    const uint8_t *W1, long long rb1, int rows1, float *Y1, const uint8_t *W2, long long rb2,
                    int rows2, float *Y2) {
    const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    int r = blockIdx.x * MV_ROWS + warp;
    const uint8_t *W = W0;
    long long rb = rb0;
    float *Y = Y0;
    if (r >= rows0) {
        r -= rows0;
        W = W1, rb = rb1, Y = Y1;
        if (r >= rows1) {
            r -= rows1;
            W = W2, rb = rb2, Y = Y2;
            if (r >= rows2) return;
        }
    }
    const float *xd = (const float *)(xq + q8_scales_at(cols));
    const uint8_t *row = W + (size_t)r * rb;
    const int blocks = cols / QK;
    float acc = 0.f;
#pragma unroll 4
    for (int b = lane; b < blocks; b += WARP) acc += block_dot_q<TYPE>(row, b, xq, xd);
    acc = warp_sum(acc);
    if (lane == 0) Y[r] = acc;
}

#define MVQ_ARGS                                                                                                   \
    const int8_t *xq, int cols, const uint8_t *W0, long long rb0, int rows0, float *Y0, const uint8_t *W1,         \
        long long rb1, int rows1, float *Y1, const uint8_t *W2, long long rb2, int rows2, float *Y2
extern "C" __global__ void mvq_q4_0(MVQ_ARGS) {
    mvq<TYPE_Q4_0>(xq, cols, W0, rb0, rows0, Y0, W1, rb1, rows1, Y1, W2, rb2, rows2, Y2);
}
extern "C" __global__ void mvq_q8_0(MVQ_ARGS) {
    mvq<TYPE_Q8_0>(xq, cols, W0, rb0, rows0, Y0, W1, rb1, rows1, Y1, W2, rb2, rows2, Y2);
}

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
enum { ACT_NONE = 0, ACT_F16 = 1, ACT_Q8_0 = 2, ACT_Q8_K = 3, ACT_Q8_0_INT = 4 };

// The roundings below give a whole warp one block: the block's largest
// magnitude is a warp reduction (a maximum is exact in any order, and
// Q8_K's "first on ties" is kept by reducing (magnitude, index) pairs),
// then each lane rounds its own values. The results equal the CPU's
// value-by-value loops bit for bit; one thread per block made the
// roundings of a decode step serial loops of 32 or 256 values.

// warp_act_q8_0 replaces the 32 values at xb by their Q8_0 round trip: d =
// amax/127 stored as F16, q = roundf(x/d) (half away from zero). Lane l
// takes value l.
__device__ __forceinline__ void warp_act_q8_0(const float *xb, float *yb, int lane) {
    const float x = xb[lane];
    float amax = fabsf(x);
    for (int o = WARP / 2; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    const float dh = round_f16(d);
    yb[lane] = (float)(int)roundf(x * id) * dh;
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
__device__ __forceinline__ void warp_act_q8_0_int(const float *xb, int8_t *qb, float *db, int lane) {
    const float x = xb[lane];
    float amax = fabsf(x);
    for (int o = WARP / 2; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    qb[lane] = (int8_t)(int)roundf(x * id);
    if (lane == 0) *db = round_f16(d);
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
    }
}

// act_f16 rounds n values to F16, as the CPU converts activations for F16
// weights.
extern "C" __global__ void act_f16(const float *x, float *y, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = round_f16(x[i]);
}

// ACT_WARPS: rounding blocks (warps) per thread block of act_q8_0/act_q8_k.
#define ACT_WARPS 4

// act_q8_0 rounds nblocks blocks of 32 through Q8_0, a warp per block.
extern "C" __global__ void act_q8_0(const float *x, float *y, int nblocks) {
    const int b = blockIdx.x * ACT_WARPS + threadIdx.x / WARP;
    if (b < nblocks) warp_act_q8_0(x + (size_t)b * QK, y + (size_t)b * QK, threadIdx.x % WARP);
}

// act_q8_0_int rounds nblocks blocks of 32 through Q8_0 into ACT_Q8_0_INT's
// layout, a warp per block.
extern "C" __global__ void act_q8_0_int(const float *x, int8_t *y, int nblocks) {
    const int b = blockIdx.x * ACT_WARPS + threadIdx.x / WARP;
    float *ds = (float *)(y + q8_scales_at(nblocks * QK));
    if (b < nblocks) warp_act_q8_0_int(x + (size_t)b * QK, y + (size_t)b * QK, ds + b, threadIdx.x % WARP);
}

// act_q8_k rounds nblocks blocks of 256 through Q8_K, a warp per block.
extern "C" __global__ void act_q8_k(const float *x, float *y, int nblocks) {
    const int b = blockIdx.x * ACT_WARPS + threadIdx.x / WARP;
    if (b < nblocks) warp_act_q8_k(x + (size_t)b * QK_K, y + (size_t)b * QK_K, threadIdx.x % WARP);
}

// ---------------------------------------------------------------- rows

// get_rows sets dst row i to the dequantized row ids[i] of a weight table;
// one block per row.
extern "C" __global__ void get_rows(const uint8_t *table, long long rowBytes, int cols, int type,
                                    const int *ids, float *dst) {
    const uint8_t *row = table + (size_t)ids[blockIdx.x] * rowBytes;
    float *out = dst + (size_t)blockIdx.x * cols;
    if (type == TYPE_F32 || type == TYPE_F16) {
        for (int i = threadIdx.x; i < cols; i += blockDim.x)
            out[i] = type == TYPE_F32 ? ((const float *)row)[i] : half_to_float(((const uint16_t *)row)[i]);
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

// copy_rows sets dst row i to src row rows[i]; one block per row.
extern "C" __global__ void copy_rows(const float *src, float *dst, int cols, const int *rows) {
    const float *s = src + (size_t)rows[blockIdx.x] * cols;
    float *d = dst + (size_t)blockIdx.x * cols;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) d[i] = s[i];
}

// ---------------------------------------------------------------- element-wise

#define NORM_THREADS 512

// rms_norm: dst = x/sqrt(mean(x²)+eps)·w per row, the sum of squares in
// double like ggml's ggml_float, the scale in float. One block per row.
// Two fusions save passes over memory and launches: with addend not null
// the row is first x + addend, written to sum (the residual add before a
// norm; sum may be x); with act not null, dst is also rounded into act
// through the following product's format (actKind).
extern "C" __global__ void __launch_bounds__(NORM_THREADS) rms_norm(const float *x, const float *addend, float *sum, const float *w, float *dst,
                                    int cols, float eps, void *act, int actKind) {
    __shared__ double part[NORM_THREADS / WARP];
    const size_t off = (size_t)blockIdx.x * cols;
    const float *xr = x + off;
    float *dr = dst + off;
    double s = 0;
    for (int i = threadIdx.x; i < cols; i += NORM_THREADS) {
        float v = xr[i];
        if (addend) {
            v = v + addend[off + i];
            sum[off + i] = v;
        }
        s += (double)(v * v);
    }
    // Warps reduce their sums with shuffles, warp 0 the warps' (a tree
    // in shared memory took ten barriers).
    for (int o = WARP / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    if (threadIdx.x % WARP == 0) part[threadIdx.x / WARP] = s;
    __syncthreads();
    if (threadIdx.x < WARP) {
        s = threadIdx.x < NORM_THREADS / WARP ? part[threadIdx.x] : 0.0;
        for (int o = WARP / 2; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (threadIdx.x == 0) part[0] = s;
    }
    __syncthreads();
    const float mean = (float)(part[0] / (double)cols);
    const float scale = 1.f / (float)sqrt((double)(mean + eps));
    // Each thread reads back only the sums it wrote itself.
    const float *src = addend ? sum + off : xr;
    for (int i = threadIdx.x; i < cols; i += NORM_THREADS) dr[i] = src[i] * scale * w[i];
    if (act) {
        __syncthreads();
        // (ACT_Q8_0_INT is used for one row only.)
        act_span(dr, actKind == ACT_Q8_0_INT ? act : (void *)((float *)act + off), 0, cols, cols, actKind, threadIdx.x, NORM_THREADS);
    }
}

extern "C" __global__ void add(const float *a, const float *b, float *dst, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = a[i] + b[i];
}

#define SWIGLU_THREADS 256

// swiglu: dst = silu(gate)·up with the exponential in double, as the CPU.
// Blocks of SWIGLU_THREADS values; with act not null the block then
// rounds its values into act (actKind's blocks divide SWIGLU_THREADS), the
// input of the down projection, saving a launch and a pass.
extern "C" __global__ void swiglu(const float *gate, const float *up, float *dst, int n, void *act, int actKind) {
    const int base = blockIdx.x * SWIGLU_THREADS;
    const int i = base + threadIdx.x;
    if (i < n) {
        const float g = gate[i];
        dst[i] = g / (1.f + (float)exp((double)(-g))) * up[i];
    }
    if (act) {
        __syncthreads();
        const int m = n - base < SWIGLU_THREADS ? n - base : SWIGLU_THREADS;
        act_span(dst, act, base, m, n, actKind, threadIdx.x, SWIGLU_THREADS);
    }
}

// rope rotates each head of row blockIdx.x by its position. Pair i's angle
// is pos·base^(-2i/dims)·freqScale with the power accumulated in float one
// pair at a time (theta *= thetaScale), as ggml's rope cache does; cos and
// sin in double rounded to float.
extern "C" __global__ void rope(float *x, const int *pos, int heads, int headDim, int dims,
                                float thetaScale, float freqScale, int neox) {
    const int half = dims / 2;
    float *row = x + (size_t)blockIdx.x * heads * headDim;
    const float p = (float)pos[blockIdx.x];
    for (int k = threadIdx.x; k < heads * half; k += blockDim.x) {
        const int h = k / half, i = k % half;
        float theta = p;
        for (int j = 0; j < i; j++) theta *= thetaScale;
        const double t = (double)(freqScale * theta);
        const float c = (float)cos(t), s = (float)sin(t);
        float *head = row + h * headDim;
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        const float x0 = head[i0], x1 = head[i1];
        head[i0] = x0 * c - x1 * s;
        head[i1] = x0 * s + x1 * c;
    }
}

// ---------------------------------------------------------------- KV cache

__device__ __forceinline__ size_t kv_offset(int slot, int layer, int pos, int layers, int ctx, int kvDim) {
    return (((size_t)slot * layers + layer) * ctx + pos) * kvDim;
}

// store_kv writes row blockIdx.x of k and v at (slot, layer, pos) of the
// cache, rounding to F16 when the cache is F16.
extern "C" __global__ void store_kv(const float *k, const float *v, void *kc, void *vc,
                                    const int *slot, const int *pos, int kvDim, int layers, int ctx,
                                    int layer, int f16) {
    const int r = blockIdx.x;
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

#define ATTN_THREADS 512
#define ATTN_WARPS (ATTN_THREADS / WARP)
#define ATTN_MAX_HEAD_DIM 256
// ATTN_KEEP: positions whose scores attention keeps in shared memory.
#define ATTN_KEEP 4096

__device__ __forceinline__ float kv_at(const void *c, size_t i, int f16) {
    return f16 ? half_to_float(((const uint16_t *)c)[i]) : ((const float *)c)[i];
}

// warp_dot is q·k over one head, lanes over the dimensions, the sum
// reduced across the warp (every lane gets it).
__device__ __forceinline__ float warp_dot(const float *qs, const void *kc, size_t kb, int headDim, int f16) {
    float dot = 0.f;
    for (int i = threadIdx.x % WARP; i < headDim; i += WARP) dot += qs[i] * kv_at(kc, kb + i, f16);
    return warp_sum(dot);
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

// attention computes, for query row blockIdx.y and head blockIdx.x, causal
// softmax attention over positions 0..pos of its slot. Three passes over
// the keys (maximum, sum of exponentials, weighted values) recompute the
// scores instead of storing them, so no scratch memory depends on the
// context length. Each warp takes one position at a time, its lanes over
// the head's dimensions, so that key reads coalesce. For the weighted sum,
// the block's threads form ATTN_THREADS/headDim groups, each summing every
// group-th position of a chunk for one dimension; the groups' sums are
// added at the end. With an F16 cache the query and the probabilities are
// rounded to F16 as ggml's F16 products do. scores and probs, when not
// null, receive the scaled scores and the probabilities at
// probeCols/heads values per head.
extern "C" __global__ void attention(const float *q, float *dst, const void *kc, const void *vc,
                                     const int *slotArr, const int *posArr, int heads, int kvHeads,
                                     int headDim, int layers, int ctx, int layer, float scale, int f16,
                                     float *scores, float *probs, int probeCols) {
    __shared__ float qs[ATTN_MAX_HEAD_DIM];
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
    for (int i = tid; i < headDim; i += ATTN_THREADS) qs[i] = f16 ? round_f16(qr[i]) : qr[i];
    __syncthreads();
    const int span = probeCols / heads;

    // Pass 1: the largest score (and the scores probe). Up to
    // ATTN_KEEP positions the scores stay in shared memory for the next
    // two passes (decode at short and medium contexts reads the keys once
    // instead of three times); beyond, the passes recompute them.
    const bool keep = n <= ATTN_KEEP;
    float mx = __int_as_float(0xff800000); // -infinity
#pragma unroll 4
    for (int j = warp; j < n; j += ATTN_WARPS) {
        const float s = __fmul_rn(warp_dot(qs, kc, base + (size_t)j * kvDim, headDim, f16), scale);
        mx = fmaxf(mx, s);
        if (lane == 0) {
            if (keep) kept[j] = s;
            if (scores) scores[(size_t)r * probeCols + (size_t)h * span + j] = s;
        }
    }
    mx = block_max(mx, redf); // its barriers also publish kept[]

    // Pass 2: the sum of exponentials, in double.
    double sum = 0;
    for (int j = warp; j < n; j += ATTN_WARPS) {
        const float s = keep ? kept[j] : __fmul_rn(warp_dot(qs, kc, base + (size_t)j * kvDim, headDim, f16), scale);
        sum += (double)(float)exp((double)(s - mx));
    }
    sum = block_sum(lane == 0 ? sum : 0.0, redd);
    const float inv = (float)(1.0 / sum);

    // Pass 3: probabilities of a chunk of ATTN_THREADS positions, then the
    // weighted values.
    const int groups = ATTN_THREADS / headDim;
    const int g = tid / headDim, d = tid % headDim;
    float acc = 0.f;
    for (int c0 = 0; c0 < n; c0 += ATTN_THREADS) {
        const int m = n - c0 < ATTN_THREADS ? n - c0 : ATTN_THREADS;
        for (int jj = warp; jj < m; jj += ATTN_WARPS) {
            const int j = c0 + jj;
            const float s = keep ? kept[j] : __fmul_rn(warp_dot(qs, kc, base + (size_t)j * kvDim, headDim, f16), scale);
            const float pr = (float)exp((double)(s - mx)) * inv;
            if (lane == 0) {
                if (probs) probs[(size_t)r * probeCols + (size_t)h * span + j] = pr;
                p[jj] = f16 ? round_f16(pr) : pr;
            }
        }
        __syncthreads();
        if (g < groups) {
#pragma unroll 8
            for (int jj = g; jj < m; jj += groups) acc += p[jj] * kv_at(vc, base + (size_t)(c0 + jj) * kvDim + d, f16);
        }
        __syncthreads();
    }
    comb[tid] = acc;
    __syncthreads();
    if (tid < headDim) {
        float o = 0.f;
        for (int k = 0; k < groups; k++) o += comb[k * headDim + tid];
        dst[(size_t)r * heads * headDim + (size_t)h * headDim + tid] = o;
    }
}
