// CPU-order kernels: the CUDA backend's "CPU order" mode (cuda.Options
// CPUOrder, LLAMAGO_CUDA_CPU_ORDER=1). Each kernel computes its operation
// with exactly the float operations of the CPU backend (backend/cpu and
// package kernels, themselves bit for bit llama.cpp's AVX-512 "zen4"
// build), in the same order and with the same roundings, so that every
// result equals the CPU backend's bit for bit. Speed is secondary: plain
// CUDA cores, no tensor cores, no reassociation.
//
// Rules that keep the bits:
//   - every float operation is written as an intrinsic that rounds once
//     (__fadd_rn, __fmul_rn, __fdiv_rn, fmaf, the __d…_rn of double), so
//     that the compiler cannot contract a product and a sum into one fused
//     multiply-add where the CPU rounds twice, nor split one where the CPU
//     fuses (scripts/build-cpuorder-ptx.sh also passes -fmad=false);
//   - no flush of subnormals (no fast math);
//   - a sum over "lanes" (the 16 float lanes of an AVX-512 register) is
//     16 or 64 independent chains, each stepped in the CPU's element order,
//     then added in the tree of _mm512_reduce_add_ps.
//
// Loaded as a module of its own, only in CPU-order mode; the normal
// kernels are in ../llamago.cu.

typedef unsigned char u8;
typedef unsigned short u16;

#define WARP 32
#define FULL_MASK 0xffffffffu

// Weight types (TYPE_… of llamago.cu; only the float ones here).
#define TYPE_F32 0
#define TYPE_F16 1

__device__ __forceinline__ float half_to_float(u16 h) {
    float f;
    asm("{ .reg .b16 t; mov.b16 t, %1; cvt.f32.f16 %0, t; }" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ u16 float_to_half(float f) {
    u16 h;
    asm("{ .reg .b16 t; cvt.rn.f16.f32 t, %1; mov.b16 %0, t; }" : "=h"(h) : "f"(f));
    return h;
}

// round_f16 is the nearest F16 value, ties to even (the CPU's roundF16 and
// Float32ToFP16).
__device__ __forceinline__ float round_f16(float f) { return half_to_float(float_to_half(f)); }

// reduce16 adds 16 lanes as _mm512_reduce_add_ps does (the CPU's reduce16):
// v[i]+v[i+8], then +4, then (t[0]+t[2]) + (t[1]+t[3]).
__device__ __forceinline__ float reduce16(const float *v) {
    float t[8];
#pragma unroll
    for (int i = 0; i < 8; i++) t[i] = __fadd_rn(v[i], v[i + 8]);
    float u[4];
#pragma unroll
    for (int i = 0; i < 4; i++) u[i] = __fadd_rn(t[i], t[i + 4]);
    return __fadd_rn(__fadd_rn(u[0], u[2]), __fadd_rn(u[1], u[3]));
}

// reduce16_lanes is reduce16 over lanes 0..15 of a 16-lane segment of the
// warp (width 16): the result is in the segment's lane 0. Every lane of the
// warp must call it.
__device__ __forceinline__ float reduce16_lanes(float v) {
    v = __fadd_rn(v, __shfl_down_sync(FULL_MASK, v, 8, 16));
    v = __fadd_rn(v, __shfl_down_sync(FULL_MASK, v, 4, 16));
    v = __fadd_rn(v, __shfl_down_sync(FULL_MASK, v, 2, 16));
    return __fadd_rn(v, __shfl_down_sync(FULL_MASK, v, 1, 16));
}

// ---------------------------------------------------------------- exponentials

// vexpf is one lane of ggml_v_expf as the CPU's vexpf computes it
// (backend/cpu/mathf.go): fused multiply-adds rounded once, the scaling by
// 2^n rounded once (also into the subnormals), |n| > 192 sent to 0 or +Inf.
__device__ __forceinline__ float vexpf(float x) {
    const float shift = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, shift);
    const float n = __fsub_rn(z, shift);
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    if (!(fabsf(n) <= 192.f) && n == n) return n <= 0.f ? 0.f : __int_as_float(0x7f800000);
    const float u = __fmul_rn(b, b);
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)), u,
                         fmaf(0x1.ffffecp-1f, b, 1.f));
    if (j != j || n != n) return __int_as_float(0x7fc00000);
    // j·2^n: exact in double (|n| ≤ 192), then one rounding to float.
    const double scale = __longlong_as_double((long long)((int)n + 1023) << 52);
    return __double2float_rn(__dmul_rn((double)j, scale));
}

// expf_taylor is the CPU's scalar expf (mathf.go): x = n·ln2 + r, e^r by
// its Taylor series to r⁷ in double, 2^n through the exponent bits. Only
// SwiGLU's values past a row's last whole group of 16 take it.
__device__ __forceinline__ float expf_taylor(float x) {
    if (x != x) return x;
    if (x > 88.8f) return __int_as_float(0x7f800000);
    if (x < -104.f) return 0.f;
    const double log2e = 1.4426950408889634, ln2 = 0.6931471805599453;
    const double xd = (double)x;
    const double n = floor(__dadd_rn(__dmul_rn(xd, log2e), 0.5));
    const double r = __dsub_rn(xd, __dmul_rn(n, ln2));
    double p = __dadd_rn(1.0 / 720, __dmul_rn(r, 1.0 / 5040));
    p = __dadd_rn(1.0 / 120, __dmul_rn(r, p));
    p = __dadd_rn(1.0 / 24, __dmul_rn(r, p));
    p = __dadd_rn(1.0 / 6, __dmul_rn(r, p));
    p = __dadd_rn(1.0 / 2, __dmul_rn(r, p));
    p = __dadd_rn(1.0, __dmul_rn(r, p));
    p = __dadd_rn(1.0, __dmul_rn(r, p));
    const long long bits = __double_as_longlong(p) + (long long)((unsigned long long)(long long)n << 52);
    return __double2float_rn(__longlong_as_double(bits));
}

// ---------------------------------------------------------------- products

// weight_at is element i of a weight row; act_at element i of an
// activation row as the CPU multiplies it: rounded to F16 for F16
// weights (the activations' vec-dot type), as is for F32.
template <int TYPE> __device__ __forceinline__ float weight_at(const u8 *row, int i) {
    if (TYPE == TYPE_F16) return half_to_float(((const u16 *)row)[i]);
    return ((const float *)row)[i];
}

template <int TYPE> __device__ __forceinline__ float act_at(const float *x, int i) {
    if (TYPE == TYPE_F16) return round_f16(x[i]);
    return x[i];
}

#define VEC_ROWS 4 // weight rows (warps) per co_mm_vec block

// co_mm_vec computes Y[t][r] = W[r]·X[t] in ggml_vec_dot_f32/_f16's order
// (the CPU's one-token order, kernels.dotF32/dotF16): 64 chains, element
// i of each group of 64 into chain i%64 by FMA; chain c is lane c%16 of
// accumulator c/16; the accumulators added as (a0+a2)+(a1+a3) lane by
// lane, the 16 lanes by reduce16; the elements past the last whole group
// added one by one (F32: in float, fused for the last cols%8; F16: in
// double). A warp per (row, token): lane l steps chains l and l+32. The
// tokens are toks[blockIdx.y] (toks not null) or blockIdx.y.
template <int TYPE>
__device__ void mm_vec(const u8 *W, long long rowBytes, int wrows, int cols, const float *X, float *Y, const int *toks) {
    const int lane = threadIdx.x % WARP;
    const int r = blockIdx.x * VEC_ROWS + threadIdx.x / WARP;
    if (r >= wrows) return; // whole warps
    const int t = toks ? toks[blockIdx.y] : blockIdx.y;
    const u8 *w = W + (size_t)r * rowBytes;
    const float *x = X + (size_t)t * cols;
    const int np = cols & ~63;
    float a = 0.f, b = 0.f; // chains lane and lane+32
    for (int i = 0; i < np; i += 64) {
        a = fmaf(weight_at<TYPE>(w, i + lane), act_at<TYPE>(x, i + lane), a);
        b = fmaf(weight_at<TYPE>(w, i + 32 + lane), act_at<TYPE>(x, i + 32 + lane), b);
    }
    // Lane l < 16 holds a0[l], a2[l]; lane l+16 holds a1[l], a3[l].
    float v = __fadd_rn(a, b);
    v = __fadd_rn(v, __shfl_down_sync(FULL_MASK, v, 16));
    v = reduce16_lanes(v);
    if (lane != 0) return;
    if (TYPE == TYPE_F16) {
        double s = (double)v;
        for (int i = np; i < cols; i++) s = __dadd_rn(s, (double)__fmul_rn(weight_at<TYPE>(w, i), act_at<TYPE>(x, i)));
        v = __double2float_rn(s);
    } else {
        int i = np;
        for (; i < (cols & ~7); i++) v = __fadd_rn(v, __fmul_rn(weight_at<TYPE>(w, i), act_at<TYPE>(x, i)));
        for (; i < cols; i++) v = fmaf(weight_at<TYPE>(w, i), act_at<TYPE>(x, i), v);
    }
    Y[(size_t)t * wrows + r] = v;
}

extern "C" __global__ void __launch_bounds__(VEC_ROWS * WARP)
    co_mm_vec_f32(const u8 *W, long long rowBytes, int wrows, int cols, const float *X, float *Y, const int *toks) {
    mm_vec<TYPE_F32>(W, rowBytes, wrows, cols, X, Y, toks);
}

extern "C" __global__ void __launch_bounds__(VEC_ROWS * WARP)
    co_mm_vec_f16(const u8 *W, long long rowBytes, int wrows, int cols, const float *X, float *Y, const int *toks) {
    mm_vec<TYPE_F16>(W, rowBytes, wrows, cols, X, Y, toks);
}

#define TILE 16    // weight rows and tokens per co_mm_tiled block
#define TILE_K 64  // values of a row per shared-memory step
#define TILE_THREADS 256

// co_mm_tiled computes Y[t][r] = W[r]·X[t] in llamafile tinyBLAS's order
// (the CPU's several-token order, kernels.dotF32Tiled/dotF16Tiled; cols
// a multiple of 16): one 16-lane accumulator per output, element i into
// lane i%16 by FMA, then reduce16. A block computes 16 rows × 16 tokens;
// thread (lane l, group g) steps lane l of the 4×4 outputs of group g, and
// the 16 lanes of an output are one 16-thread segment of a warp.
template <int TYPE>
__device__ void mm_tiled(const u8 *W, long long rowBytes, int wrows, int cols, const float *X, float *Y, int ntok) {
    __shared__ float ws[TILE][TILE_K + 1];
    __shared__ float xs[TILE][TILE_K + 1];
    const int tid = threadIdx.x;
    const int l = tid % 16, g = tid / 16;
    const int gr = g / 4, gt = g % 4;
    const int row0 = blockIdx.x * TILE, tok0 = blockIdx.y * TILE;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < cols; k0 += TILE_K) {
        const int kc = min(TILE_K, cols - k0); // a multiple of 16
        for (int e = tid; e < TILE * TILE_K; e += TILE_THREADS) {
            const int rr = e / TILE_K, cc = e % TILE_K;
            const int r = row0 + rr, t = tok0 + rr;
            ws[rr][cc] = (r < wrows && cc < kc) ? weight_at<TYPE>(W + (size_t)r * rowBytes, k0 + cc) : 0.f;
            xs[rr][cc] = (t < ntok && cc < kc) ? act_at<TYPE>(X + (size_t)t * cols, k0 + cc) : 0.f;
        }
        __syncthreads();
        for (int kk = 0; kk < kc; kk += 16) {
            float wv[4], xv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) wv[i] = ws[gr * 4 + i][kk + l];
#pragma unroll
            for (int j = 0; j < 4; j++) xv[j] = xs[gt * 4 + j][kk + l];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(wv[i], xv[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            const float v = reduce16_lanes(acc[i][j]);
            const int r = row0 + gr * 4 + i, t = tok0 + gt * 4 + j;
            if (l == 0 && r < wrows && t < ntok) Y[(size_t)t * wrows + r] = v;
        }
}

extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    co_mm_tiled_f32(const u8 *W, long long rowBytes, int wrows, int cols, const float *X, float *Y, int ntok) {
    mm_tiled<TYPE_F32>(W, rowBytes, wrows, cols, X, Y, ntok);
}

extern "C" __global__ void __launch_bounds__(TILE_THREADS)
    co_mm_tiled_f16(const u8 *W, long long rowBytes, int wrows, int cols, const float *X, float *Y, int ntok) {
    mm_tiled<TYPE_F16>(W, rowBytes, wrows, cols, X, Y, ntok);
}

// ---------------------------------------------------------------- Q8_0, Q4_0

#define QK 32 // values per Q8_0 / Q4_0 block
#define Q8_0_BYTES 34
#define Q4_0_BYTES 18
#define TYPE_Q4_0 2
#define TYPE_Q8_0 3

// co_act_q8_0 quantizes nblocks blocks of 32 activations to Q8_0 as the
// CPU's quantizeQ8_0 (ggml's x86 quantize_row_q8_0): d = amax/127, the
// multiplier 127/amax (not 1/d), q = nearest(x·127/amax) with halves to
// even; d kept as its F16 value. A warp per block, lane j for value j;
// q[b·32+j] the values, d[b] the scales.
extern "C" __global__ void co_act_q8_0(const float *x, signed char *q, float *d, int nblocks) {
    const int b = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (b >= nblocks) return; // whole warps
    const int lane = threadIdx.x % WARP;
    const float v = x[(size_t)b * QK + lane];
    float amax = fabsf(v);
    for (int o = WARP / 2; o > 0; o /= 2) amax = fmaxf(amax, __shfl_xor_sync(FULL_MASK, amax, o));
    const float id = amax != 0.f ? __fdiv_rn(127.f, amax) : 0.f;
    q[(size_t)b * QK + lane] = (signed char)__float2int_rn(__fmul_rn(v, id));
    if (lane == 0) d[b] = round_f16(__fdiv_rn(amax, 127.f));
}

// mm_q computes Y[t][r] = W[r]·X[t] for Q4_0 and Q8_0 weights in the
// CPU's order (kernels.dotQ4_0, dotQ8_0; the same for every token count):
// each block's integer sums are exact; Q4_0 adds sumi·(dw·dx) to one float
// accumulator by FMA, block after block; Q8_0 keeps eight accumulators,
// lane l taking the sum of values 4l..4l+3 of each block times dw·dx by
// FMA, added at the end as ggml's hsum_float_8. A warp per (row, token
// blockIdx.y): lane b computes the sums of block b of each 32, then the
// chain steps through the 32 blocks in order, their sums broadcast.
template <int TYPE>
__device__ void mm_q(const u8 *W, long long rowBytes, int wrows, int cols, const signed char *xq, const float *xd, float *Y) {
    const int lane = threadIdx.x % WARP;
    const int r = blockIdx.x * VEC_ROWS + threadIdx.x / WARP;
    if (r >= wrows) return; // whole warps
    const int t = blockIdx.y;
    const int nb = cols / QK;
    const u8 *w = W + (size_t)r * rowBytes;
    const signed char *x = xq + (size_t)t * cols;
    const float *dx = xd + (size_t)t * nb;
    const int lanes = TYPE == TYPE_Q8_0 ? 8 : 1;
    float acc[8];
#pragma unroll
    for (int l = 0; l < 8; l++) acc[l] = 0.f;
    for (int c0 = 0; c0 < nb; c0 += WARP) {
        const int b = c0 + lane;
        int s[8];
#pragma unroll
        for (int l = 0; l < 8; l++) s[l] = 0;
        float d = 0.f;
        if (b < nb) {
            const signed char *xb = x + (size_t)b * QK;
            if (TYPE == TYPE_Q8_0) {
                const u8 *blk = w + (size_t)b * Q8_0_BYTES;
                const float dw = half_to_float((u16)(blk[0] | (blk[1] << 8)));
                d = __fmul_rn(dw, dx[b]);
#pragma unroll
                for (int j = 0; j < QK; j++) s[j / 4] += (int)(signed char)blk[2 + j] * (int)xb[j];
            } else {
                const u8 *blk = w + (size_t)b * Q4_0_BYTES;
                const float dw = half_to_float((u16)(blk[0] | (blk[1] << 8)));
                d = __fmul_rn(dw, dx[b]);
#pragma unroll
                for (int j = 0; j < 16; j++) {
                    const int qv = blk[2 + j];
                    s[0] += ((qv & 15) - 8) * (int)xb[j] + ((qv >> 4) - 8) * (int)xb[j + 16];
                }
            }
        }
        const int m = min(WARP, nb - c0);
        for (int k = 0; k < m; k++) {
            const float dk = __shfl_sync(FULL_MASK, d, k);
#pragma unroll
            for (int l = 0; l < lanes; l++) {
                const float sk = (float)__shfl_sync(FULL_MASK, s[l], k);
                acc[l] = fmaf(dk, sk, acc[l]);
            }
        }
    }
    if (lane != 0) return;
    float v = acc[0];
    if (TYPE == TYPE_Q8_0) {
        v = __fadd_rn(__fadd_rn(__fadd_rn(acc[0], acc[4]), __fadd_rn(acc[2], acc[6])),
                      __fadd_rn(__fadd_rn(acc[1], acc[5]), __fadd_rn(acc[3], acc[7])));
    }
    Y[(size_t)t * wrows + r] = v;
}

extern "C" __global__ void __launch_bounds__(VEC_ROWS * WARP)
    co_mm_q4_0(const u8 *W, long long rowBytes, int wrows, int cols, const signed char *xq, const float *xd, float *Y) {
    mm_q<TYPE_Q4_0>(W, rowBytes, wrows, cols, xq, xd, Y);
}

extern "C" __global__ void __launch_bounds__(VEC_ROWS * WARP)
    co_mm_q8_0(const u8 *W, long long rowBytes, int wrows, int cols, const signed char *xq, const float *xd, float *Y) {
    mm_q<TYPE_Q8_0>(W, rowBytes, wrows, cols, xq, xd, Y);
}

// ---------------------------------------------------------------- Q4_K, Q6_K

#define QK_K 256 // values per k-quant super-block (and Q8_K block)
#define Q4_K_BYTES 144
#define Q6_K_BYTES 210

// co_act_q8_k quantizes nblocks blocks of 256 activations to Q8_K as the
// CPU's quantizeQ8_K (ggml's quantize_row_q8_K_ref): the signed value of
// largest magnitude (the first one on ties; NaNs never win) sets iscale =
// -127/max, q = min(127, nearest(iscale·x)) with halves to even, d =
// 1/iscale in float; an all-zero block gets d = 0 and q = 0. A warp per
// block, lane l taking values l, l+32, …, l+224: q[b·256+i] the values,
// d[b] the scale, bs[b·16+g] the sums of q over the groups of 16 (the
// CPU's bsums, exact).
extern "C" __global__ void co_act_q8_k(const float *x, signed char *q, float *d, int *bs, int nblocks) {
    const int b = blockIdx.x * (blockDim.x / WARP) + threadIdx.x / WARP;
    if (b >= nblocks) return; // whole warps
    const int lane = threadIdx.x % WARP;
    const float *xb = x + (size_t)b * QK_K;
    float v[QK_K / WARP];
    float best = 0.f;
    int at = -1;
#pragma unroll
    for (int k = 0; k < QK_K / WARP; k++) {
        v[k] = xb[lane + WARP * k];
        const float a = fabsf(v[k]);
        if (a > best) { // this lane's indices ascend with k: the first on ties
            best = a;
            at = lane + WARP * k;
        }
    }
    for (int o = WARP / 2; o > 0; o /= 2) {
        const float ob = __shfl_xor_sync(FULL_MASK, best, o);
        const int oat = __shfl_xor_sync(FULL_MASK, at, o);
        if (ob > best || (ob == best && oat >= 0 && (at < 0 || oat < at))) {
            best = ob;
            at = oat;
        }
    }
    float iscale = 0.f, dv = 0.f;
    if (at >= 0) {
        iscale = __fdiv_rn(-127.f, xb[at]);
        dv = __fdiv_rn(1.f, iscale);
    }
#pragma unroll
    for (int k = 0; k < QK_K / WARP; k++) {
        int qv = at >= 0 ? __float2int_rn(__fmul_rn(iscale, v[k])) : 0;
        qv = qv < 127 ? qv : 127;
        q[(size_t)b * QK_K + lane + WARP * k] = (signed char)qv;
        // Values 32k..32k+15 are group 2k (lanes 0..15), the rest 2k+1.
        int s = qv;
        for (int o = 8; o > 0; o /= 2) s += __shfl_xor_sync(FULL_MASK, s, o);
        if (lane == 0) bs[(size_t)b * (QK_K / 16) + 2 * k] = s;
        if (lane == 16) bs[(size_t)b * (QK_K / 16) + 2 * k + 1] = s;
    }
    if (lane == 0) d[b] = dv;
}

// int_to_float is the nearest float to v, ties to even (cvt.rn.f32.s32),
// as Go's float32(int32) and VCVTDQ2PS convert.
__device__ __forceinline__ float int_to_float(int v) { return (float)v; }

// k_scales_mins unpacks the 12 bytes of 6-bit scales and mins of a Q4_K
// block (the CPU's kScalesMins): entries 0..3 keep their 6 bits in bytes
// 0..3 (scales) and 4..7 (mins); entries 4..7 take their low 4 bits from
// bytes 8..11 and their high 2 bits from the top of bytes 0..7.
__device__ __forceinline__ void k_scales_mins(const u8 *p, int *sc, int *mn) {
#pragma unroll
    for (int j = 0; j < 4; j++) {
        sc[j] = p[j] & 63;
        mn[j] = p[j + 4] & 63;
        sc[j + 4] = (p[j + 8] & 15) | ((p[j] >> 6) << 4);
        mn[j + 4] = (p[j + 8] >> 4) | ((p[j + 4] >> 6) << 4);
    }
}

// mm_q4_k computes Y[t][r] = W[r]·X[t] for Q4_K weights in the CPU's
// orders (kernels.dotQ4_K, ggml's repacked gemv, and dotQ4_KBatch, its
// gemm): per super-block the integer sums of the scaled quants (isum) and
// of the mins times the sub-blocks' activation sums (imin) are exact; the
// gemv order fuses float(isum)·(dw·dx) into one accumulator and
// float(imin)·(dmin·dx) into another once per super-block, the gemm order
// once per two sub-blocks (64 values); the result is the first minus the
// second. Token t takes the gemm order when batch is not null and
// batch[t] != 0. A warp per (row, token blockIdx.y): per super-block lane
// l takes quant bytes 4(l%8)..+3 of the 32 that sub-blocks 2j and 2j+1
// (j = l/8) share, and the 8 lanes of j add their sums (exact).
__device__ void mm_q4_k(const u8 *W, long long rowBytes, int wrows, int cols, const signed char *xq, const float *xd,
                        const int *xbs, float *Y, const int *batch) {
    const int lane = threadIdx.x % WARP;
    const int r = blockIdx.x * VEC_ROWS + threadIdx.x / WARP;
    if (r >= wrows) return; // whole warps
    const int t = blockIdx.y;
    const bool gemm = batch != nullptr && batch[t] != 0;
    const int nb = cols / QK_K;
    const u8 *w = W + (size_t)r * rowBytes;
    const signed char *x = xq + (size_t)t * cols;
    const float *dx = xd + (size_t)t * nb;
    const int *bsx = xbs + (size_t)t * (cols / 16);
    const int j = lane / 8, o = 4 * (lane % 8);
    float acc = 0.f, accMin = 0.f;
    for (int s = 0; s < nb; s++) {
        const u8 *blk = w + (size_t)s * Q4_K_BYTES;
        int sc[8], mn[8];
        k_scales_mins(blk + 4, sc, mn);
        const u8 *qs = blk + 16 + 32 * j + o;
        const signed char *xs = x + (size_t)s * QK_K + 64 * j + o;
        int slo = 0, shi = 0;
#pragma unroll
        for (int i = 0; i < 4; i++) {
            slo += (qs[i] & 15) * (int)xs[i];
            shi += (qs[i] >> 4) * (int)xs[i + 32];
        }
        int part = sc[2 * j] * slo + sc[2 * j + 1] * shi;
        for (int m = 4; m > 0; m /= 2) part += __shfl_xor_sync(FULL_MASK, part, m);
        int isum[4], imin[4];
        const int *g = bsx + (size_t)s * (QK_K / 16);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            isum[k] = __shfl_sync(FULL_MASK, part, 8 * k);
            imin[k] = mn[2 * k] * (g[4 * k] + g[4 * k + 1]) + mn[2 * k + 1] * (g[4 * k + 2] + g[4 * k + 3]);
        }
        const float dw = half_to_float((u16)(blk[0] | (blk[1] << 8)));
        const float dmw = half_to_float((u16)(blk[2] | (blk[3] << 8)));
        const float d = __fmul_rn(dw, dx[s]);
        const float dmin = __fmul_rn(dmw, dx[s]);
        if (gemm) {
#pragma unroll
            for (int k = 0; k < 4; k++) {
                acc = fmaf(int_to_float(isum[k]), d, acc);
                accMin = fmaf(int_to_float(imin[k]), dmin, accMin);
            }
        } else {
            const int is = isum[0] + isum[1] + isum[2] + isum[3];
            const int im = imin[0] + imin[1] + imin[2] + imin[3];
            acc = fmaf(int_to_float(is), d, acc);
            accMin = fmaf(int_to_float(im), dmin, accMin);
        }
    }
    if (lane == 0) Y[(size_t)t * wrows + r] = __fsub_rn(acc, accMin);
}

extern "C" __global__ void __launch_bounds__(VEC_ROWS * WARP)
    co_mm_q4_k(const u8 *W, long long rowBytes, int wrows, int cols, const signed char *xq, const float *xd, const int *xbs,
               float *Y, const int *batch) {
    mm_q4_k(W, rowBytes, wrows, cols, xq, xd, xbs, Y, batch);
}

// mm_q6_k computes Y[t][r] = W[r]·X[t] for Q6_K weights in the CPU's
// order (kernels.dotQ6_K, ggml_vec_dot_q6_K_q8_K's AVX2 branch; the same
// for every token count): per super-block eight int32 lanes, lane k
// taking the products of bytes 4k..4k+3 of each 32 values times the
// scale of their group of 16, the quants unsigned (0..63), then losing
// 32·(scale_2k·bsum_2k + scale_2k+1·bsum_2k+1); each lane converted to
// float and fused, times dx·dw, into float lane k; at the end the eight
// float lanes added as hsum_float_8. A warp per (row, token
// blockIdx.y): thread 4c+m takes bytes 8m..8m+7 of chunk c (values
// 32c..32c+31), that is its part of lanes 2m and 2m+1, and the threads
// of equal m add their parts (exact).
__device__ void mm_q6_k(const u8 *W, long long rowBytes, int wrows, int cols, const signed char *xq, const float *xd,
                        const int *xbs, float *Y) {
    const int lane = threadIdx.x % WARP;
    const int r = blockIdx.x * VEC_ROWS + threadIdx.x / WARP;
    if (r >= wrows) return; // whole warps
    const int t = blockIdx.y;
    const int nb = cols / QK_K;
    const u8 *w = W + (size_t)r * rowBytes;
    const signed char *x = xq + (size_t)t * cols;
    const float *dx = xd + (size_t)t * nb;
    const int *bsx = xbs + (size_t)t * (cols / 16);
    const int c = lane / 4, m = lane % 4;
    const int half = c / 4, kk = c % 4;
    float acc[8];
#pragma unroll
    for (int k = 0; k < 8; k++) acc[k] = 0.f;
    for (int s = 0; s < nb; s++) {
        const u8 *blk = w + (size_t)s * Q6_K_BYTES;
        const u8 *ql = blk + 64 * half + 32 * (kk & 1);
        const u8 *qh = blk + 128 + 32 * half;
        const signed char *xs = x + (size_t)s * QK_K + 32 * c;
        const int scale = (int)(signed char)blk[192 + 2 * c + (m >= 2 ? 1 : 0)];
        int p[2] = {0, 0};
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int l = 8 * m + i;
            const int lo = kk < 2 ? (ql[l] & 15) : (ql[l] >> 4);
            const int hi = (qh[l] >> (2 * kk)) & 3;
            p[i / 4] += (lo | (hi << 4)) * (int)xs[l];
        }
        int lanes2[2] = {scale * p[0], scale * p[1]};
#pragma unroll
        for (int h = 0; h < 2; h++)
            for (int o = 4; o < WARP; o *= 2) lanes2[h] += __shfl_xor_sync(FULL_MASK, lanes2[h], o);
        // Thread m (and every thread of equal m) now holds lanes 2m, 2m+1.
        const int *g = bsx + (size_t)s * (QK_K / 16);
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const int k = 2 * m + h;
            const int s0 = (int)(signed char)blk[192 + 2 * k], s1 = (int)(signed char)blk[192 + 2 * k + 1];
            lanes2[h] -= 32 * (s0 * g[2 * k] + s1 * g[2 * k + 1]);
        }
        const float dw = half_to_float((u16)(blk[208] | (blk[209] << 8)));
        const float d = __fmul_rn(dx[s], dw);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const int lk = __shfl_sync(FULL_MASK, lanes2[k % 2], k / 2);
            acc[k] = fmaf(d, int_to_float(lk), acc[k]);
        }
    }
    if (lane == 0)
        Y[(size_t)t * wrows + r] = __fadd_rn(__fadd_rn(__fadd_rn(acc[0], acc[4]), __fadd_rn(acc[2], acc[6])),
                                             __fadd_rn(__fadd_rn(acc[1], acc[5]), __fadd_rn(acc[3], acc[7])));
}

extern "C" __global__ void __launch_bounds__(VEC_ROWS * WARP)
    co_mm_q6_k(const u8 *W, long long rowBytes, int wrows, int cols, const signed char *xq, const float *xd, const int *xbs,
               float *Y) {
    mm_q6_k(W, rowBytes, wrows, cols, xq, xd, xbs, Y);
}

// ---------------------------------------------------------------- row-wise

#define ROW_THREADS 256
#define NORM_CHUNK 4096 // squares staged in shared memory at a time

// co_rms_norm is the CPU's rmsNormRow, a block per row: the squares
// (rounded to float) summed in double in element order by one thread,
// mean and scale as the CPU rounds them, then (x·scale)·w.
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
    co_rms_norm(const float *x, const float *w, float *dst, int cols, float eps) {
    __shared__ float sq[NORM_CHUNK];
    __shared__ float scale;
    const float *xr = x + (size_t)blockIdx.x * cols;
    float *dr = dst + (size_t)blockIdx.x * cols;
    // The squares are computed by all threads, a chunk at a time; their
    // sum is serial, as the CPU's.
    double s = 0;
    for (int c0 = 0; c0 < cols; c0 += NORM_CHUNK) {
        const int m = min(NORM_CHUNK, cols - c0);
        for (int i = threadIdx.x; i < m; i += ROW_THREADS) sq[i] = __fmul_rn(xr[c0 + i], xr[c0 + i]);
        __syncthreads();
        if (threadIdx.x == 0)
            for (int i = 0; i < m; i++) s = __dadd_rn(s, (double)sq[i]);
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        const float mean = __double2float_rn(__ddiv_rn(s, (double)cols));
        scale = __fdiv_rn(1.f, __double2float_rn(__dsqrt_rn((double)__fadd_rn(mean, eps))));
    }
    __syncthreads();
    const float k = scale;
    for (int i = threadIdx.x; i < cols; i += ROW_THREADS) dr[i] = __fmul_rn(__fmul_rn(xr[i], k), w[i]);
}

// co_swiglu is the CPU's swigluGo row by row: ggml's vector SiLU for the
// values of a row's whole groups of 16, x/(1+expf(-x)) for the rest, times
// up. A thread per value; in place is fine.
extern "C" __global__ void co_swiglu(const float *gate, const float *up, float *dst, int n, int cols) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float x = gate[i], u = up[i];
    float s;
    if (i % cols < (cols & ~15)) {
        s = __fdiv_rn(x, __fadd_rn(1.f, vexpf(__fsub_rn(0.f, x))));
    } else {
        s = __fdiv_rn(x, __fadd_rn(1.f, expf_taylor(-x)));
    }
    dst[i] = __fmul_rn(s, u);
}

// co_rope rotates row blockIdx.x of x by the cosines and sines of tab's row
// (dims values: cos, sin per pair, computed on the host by the CPU
// backend's own functions, cpu.RoPEAngles): (x0, x1) → (fma(x0, c, -(x1·s)),
// fma(x0, s, x1·c)), as the CPU's ropeGo. A thread per (head, pair).
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
    co_rope(float *x, const float *tab, int heads, int headDim, int dims, int neox) {
    const int half = dims / 2;
    float *xr = x + (size_t)blockIdx.x * heads * headDim;
    const float *cs = tab + (size_t)blockIdx.x * dims;
    for (int e = threadIdx.x; e < heads * half; e += ROW_THREADS) {
        const int h = e / half, i = e % half;
        const float c = cs[2 * i], s = cs[2 * i + 1];
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        float *head = xr + (size_t)h * headDim;
        const float x0 = head[i0], x1 = head[i1];
        head[i0] = fmaf(x0, c, -__fmul_rn(x1, s));
        head[i1] = fmaf(x0, s, __fmul_rn(x1, c));
    }
}

// ---------------------------------------------------------------- attention

#define ATTN_THREADS 256
#define ATTN_MAX_HEAD_DIM 256

// dot_vec_f32 is the CPU attention's dotVecF32 (ggml_vec_dot_f32): 64
// chains over the whole groups of 64, reduced, then the leftover products
// added one by one in float (not fused).
__device__ float dot_vec_f32(const float *q, const float *k, int hd) {
    const int np = hd & ~63;
    float v[16];
#pragma unroll
    for (int l = 0; l < 16; l++) {
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
        for (int i = 0; i < np; i += 64) {
            a0 = fmaf(q[i + l], k[i + l], a0);
            a1 = fmaf(q[i + 16 + l], k[i + 16 + l], a1);
            a2 = fmaf(q[i + 32 + l], k[i + 32 + l], a2);
            a3 = fmaf(q[i + 48 + l], k[i + 48 + l], a3);
        }
        v[l] = __fadd_rn(__fadd_rn(a0, a2), __fadd_rn(a1, a3));
    }
    float sum = np > 0 ? reduce16(v) : 0.f;
    for (int i = np; i < hd; i++) sum = __fadd_rn(sum, __fmul_rn(q[i], k[i]));
    return sum;
}

// dot_vec_f16 is dotVecF16 (ggml_vec_dot_f16): dot_vec_f32's chains on the
// widened keys, the leftovers added in double.
__device__ float dot_vec_f16(const float *q, const u16 *k, int hd) {
    const int np = hd & ~63;
    float v[16];
#pragma unroll
    for (int l = 0; l < 16; l++) {
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
        for (int i = 0; i < np; i += 64) {
            a0 = fmaf(q[i + l], half_to_float(k[i + l]), a0);
            a1 = fmaf(q[i + 16 + l], half_to_float(k[i + 16 + l]), a1);
            a2 = fmaf(q[i + 32 + l], half_to_float(k[i + 32 + l]), a2);
            a3 = fmaf(q[i + 48 + l], half_to_float(k[i + 48 + l]), a3);
        }
        v[l] = __fadd_rn(__fadd_rn(a0, a2), __fadd_rn(a1, a3));
    }
    double sum = (double)reduce16(v);
    for (int i = np; i < hd; i++) sum = __dadd_rn(sum, (double)__fmul_rn(q[i], half_to_float(k[i])));
    return __double2float_rn(sum);
}

// dot_tiled_f16 is dotTiledF16 (tinyBLAS on F16 rows, hd a multiple of
// 16): 16 chains, element i into chain i%16, then reduce16.
__device__ float dot_tiled_f16(const float *q, const u16 *k, int hd) {
    float v[16];
#pragma unroll
    for (int l = 0; l < 16; l++) {
        float a = 0.f;
        for (int i = 0; i < hd; i += 16) a = fmaf(q[i + l], half_to_float(k[i + l]), a);
        v[l] = a;
    }
    return reduce16(v);
}

// co_attention is the CPU backend's attention for query head blockIdx.x of
// row blockIdx.y (attnTask.heads): scores in the CPU's dot order (F32
// cache: dotVecF32; F16 cache: the query rounded to F16, then tinyBLAS's
// order where the row's slot has two or more rows in the batch, tiled[r],
// else ggml_vec_dot_f16's), times the scale; the softmax as ggml's (the
// maximum, ggml's vector exponential in groups of 16 whose sums are added
// in double, the reciprocal of the sum rounded to float); the
// probabilities rounded to F16 for an F16 cache; the weighted sum of the
// values in 16 (tiled) or 64 lane chains reduced as the CPU's reduceLanes.
// scratch holds each (row, head)'s scores, then at offset groupOff its
// groups' sums; stride floats apart.
extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
    co_attention(const float *q, float *dst, const void *kc, const void *vc, const int *slots, const int *pos,
                 const int *tiledRows, int heads, int kvHeads, int hd, int layers, int ctx, int layer, float scale,
                 int f16, float *scores, float *probs, int probeCols, float *scratch, long long stride, int groupOff) {
    __shared__ float qs[ATTN_MAX_HEAD_DIM];
    __shared__ float red[ATTN_THREADS / WARP];
    __shared__ float shared_k;
    const int h = blockIdx.x, r = blockIdx.y, tid = threadIdx.x;
    const int kvDim = kvHeads * hd;
    const int n = pos[r] + 1;
    const int kvh = h / (heads / kvHeads);
    const bool tiled = tiledRows[r] != 0;
    const size_t base = ((size_t)(slots[r] * layers + layer) * ctx) * kvDim + (size_t)kvh * hd;
    float *s = scratch + ((size_t)r * heads + h) * stride;
    float *gsum = s + groupOff;

    for (int d = tid; d < hd; d += ATTN_THREADS) {
        const float v = q[(size_t)r * heads * hd + (size_t)h * hd + d];
        qs[d] = f16 ? round_f16(v) : v;
    }
    __syncthreads();

    // Scores.
    for (int j = tid; j < n; j += ATTN_THREADS) {
        float dot;
        if (!f16) {
            dot = dot_vec_f32(qs, (const float *)kc + base + (size_t)j * kvDim, hd);
        } else {
            const u16 *k = (const u16 *)kc + base + (size_t)j * kvDim;
            dot = (tiled && hd % 16 == 0) ? dot_tiled_f16(qs, k, hd) : dot_vec_f16(qs, k, hd);
        }
        const float v = __fmul_rn(dot, scale);
        s[j] = v;
        if (scores) scores[(size_t)r * probeCols + (size_t)h * (probeCols / heads) + j] = v;
    }
    __syncthreads();

    // The maximum (exact in any order).
    float m = __int_as_float(0xff800000);
    for (int j = tid; j < n; j += ATTN_THREADS) m = fmaxf(m, s[j]);
    for (int o = 16; o > 0; o /= 2) m = fmaxf(m, __shfl_xor_sync(FULL_MASK, m, o));
    if (tid % WARP == 0) red[tid / WARP] = m;
    __syncthreads();
    m = red[0];
    for (int i = 1; i < ATTN_THREADS / WARP; i++) m = fmaxf(m, red[i]);

    // Exponentials by groups of 16, each group's sum by reduce16.
    const int groups = (n + 15) / 16;
    for (int g = tid; g < groups; g += ATTN_THREADS) {
        float v[16];
#pragma unroll
        for (int i = 0; i < 16; i++) {
            const int j = g * 16 + i;
            v[i] = 0.f;
            if (j < n) {
                v[i] = vexpf(__fsub_rn(s[j], m));
                s[j] = v[i];
            }
        }
        gsum[g] = reduce16(v);
    }
    __syncthreads();
    if (tid == 0) {
        double sum = 0;
        for (int g = 0; g < groups; g++) sum = __dadd_rn(sum, (double)gsum[g]);
        shared_k = __double2float_rn(__ddiv_rn(1.0, sum));
    }
    __syncthreads();
    const float k = shared_k;
    for (int j = tid; j < n; j += ATTN_THREADS) {
        const float p = __fmul_rn(s[j], k);
        if (probs) probs[(size_t)r * probeCols + (size_t)h * (probeCols / heads) + j] = p;
        s[j] = f16 ? round_f16(p) : p;
    }
    __syncthreads();

    // The weighted sum of the values: a thread per value of the head.
    for (int d = tid; d < hd; d += ATTN_THREADS) {
        float v[16];
        if (tiled) {
#pragma unroll
            for (int l = 0; l < 16; l++) {
                float a = 0.f;
                for (int j = l; j < n; j += 16) {
                    const size_t off = base + (size_t)j * kvDim + d;
                    const float val = f16 ? half_to_float(((const u16 *)vc)[off]) : ((const float *)vc)[off];
                    a = fmaf(s[j], val, a);
                }
                v[l] = a;
            }
        } else {
#pragma unroll
            for (int l = 0; l < 16; l++) {
                float a[4];
#pragma unroll
                for (int c = 0; c < 4; c++) {
                    a[c] = 0.f;
                    for (int j = 16 * c + l; j < n; j += 64) {
                        const size_t off = base + (size_t)j * kvDim + d;
                        const float val = f16 ? half_to_float(((const u16 *)vc)[off]) : ((const float *)vc)[off];
                        a[c] = fmaf(s[j], val, a[c]);
                    }
                }
                v[l] = __fadd_rn(__fadd_rn(a[0], a[2]), __fadd_rn(a[1], a[3]));
            }
        }
        dst[(size_t)r * heads * hd + (size_t)h * hd + d] = reduce16(v);
    }
}
