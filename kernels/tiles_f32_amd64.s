//go:build amd64

#include "textflag.h"

// F32 kernels: one row (dotF32Tile1x1), four rows × one token
// (dotF32Tile4x1), and tiles of 4 rows × 4 tokens (AVX-512 VL: 32 vector
// registers) and 2 rows × 4 tokens (AVX2); and the F16 kernels of the
// AVX-512 sets (dotF16Tile1x1, dotF16Tile4x1, dotF16Tile4x4), the same
// with fp16 values converted to float32 as they are loaded. They all add each (row, token)
// pair's products the same way, so that every kernel gives the same bits
// for a pair and MatMulRows can mix them freely:
//
//	the elements are taken in chunks of up to 256 (32 groups of 8); within
//	a chunk, lane l of a float32 accumulator takes the products of the
//	elements ≡ l mod 8 by FMA, in order (the last group of a row, if
//	shorter than 8, is loaded with its missing lanes zero); at the end of
//	the first chunk, the accumulator's lanes 0..3 and 4..7 are added as
//	float64 into four float64 lanes d; each further chunk's lanes 0..3,
//	then 4..7 are added to d; the result is (d0+d2) + (d1+d3), rounded to
//	float32.
//
// At most 32 float32 additions per lane keep the result within a few
// float32 roundings of Σ|w·x| of the exact sum, as the portable code (a
// float64 sum) is. One accumulator per pair makes a lone row latency
// bound (one FMA per 4 cycles), which the four-row and tile kernels,
// with 4 to 16 independent pairs, are not.
//
// Register use: BX the byte offset into every row, CX the elements left,
// AX scratch; Y0..Y3 the tokens' group, Y4 the row's,
// Y5..Y7 scratch (Y7 the tail mask); the float64 lanes d of pair k live
// in the frame at 32k(SP), followed by the two slots of F32_LOOP.

// f32Lanes<> holds the int32 lane numbers 0..7: the lanes below m make
// the VMASKMOVPS mask of a last group of m < 8 elements.
DATA f32Lanes<>+0(SB)/8, $0x0000000100000000
DATA f32Lanes<>+8(SB)/8, $0x0000000300000002
DATA f32Lanes<>+16(SB)/8, $0x0000000500000004
DATA f32Lanes<>+24(SB)/8, $0x0000000700000006
GLOBL f32Lanes<>(SB), RODATA|NOPTR, $32

// Loads of one group at offset BX of the row at P into Y: whole, or the
// last, short group under the mask Y7.
#define F32_LD(P, Y) VMOVUPS (P)(BX*1), Y
#define F32_LDM(P, Y) VMASKMOVPS (P)(BX*1), Y7, Y

// The F16 loads convert 8 fp16 values to float32 (exactly); the masked
// one, AVX-512 only, reads the CX < 8 values of a last group under K1.
#define F16_LD(P, Y) VCVTPH2PS (P)(BX*1), Y
#define F16_LDM(P, Y) VCVTPH2PS.Z (P)(BX*1), K1, Y

#define ZERO_VEX(A) VXORPS A, A, A
#define ZERO_EVEX(A) VPXORD A, A, A

// F32_LANES64 converts the float32 lanes of A to float64: 0..3 into Y6,
// 4..7 into Y5.
#define F32_LANES64(A) \
	VMOVAPS      A, Y5            \
	VCVTPS2PD    X5, Y6           \
	VEXTRACTF128 $1, Y5, X5       \
	VCVTPS2PD    X5, Y5

// F32_FIRST sets d of pair k from accumulator A (the first chunk) and
// clears A; F32_NEXT adds A into d.
#define F32_FIRST(A, k, ZERO) \
	F32_LANES64(A)                \
	VADDPD       Y5, Y6, Y7       \
	VMOVUPD      Y7, (32*k)(SP)   \
	ZERO(A)

#define F32_NEXT(A, k, ZERO) \
	F32_LANES64(A)                \
	VMOVUPD      (32*k)(SP), Y7   \
	VADDPD       Y6, Y7, Y7       \
	VADDPD       Y5, Y7, Y7       \
	VMOVUPD      Y7, (32*k)(SP)   \
	ZERO(A)

// F32_OUT stores (d0+d2) + (d1+d3) of pair k, as float32, at (4i)(P).
#define F32_OUT(k, P, i) \
	VMOVUPD      (32*k)(SP), Y7   \
	VEXTRACTF128 $1, Y7, X6       \
	VADDPD       X6, X7, X7       \
	VPERMILPD    $1, X7, X6       \
	VADDSD       X6, X7, X7       \
	VCVTSD2SS    X7, X7, X7       \
	VMOVSS       X7, (4*i)(P)

// FLOAT_LOOP is the chunked loop around STEP (one group of every pair,
// with the load macro it is given) and FLUSH (every pair, with F32_FIRST
// or F32_NEXT); CX: n. Groups are loaded by LD, a last short group, after
// TAILMASK, by LDM; size is the bytes of a group of one row. The frame
// slot at start holds the offset the chunk started at (0 for the first),
// the one after it the offset it ends at (before a short last group).
#define FLOAT_LOOP(STEP, FLUSH, LD, LDM, TAILMASK, size, start, chunk, capped, loop, tail, flush, next, flushed) \
	XORQ BX, BX                 \
chunk:                          \
	MOVQ  BX, start(SP)         \
	MOVQ  CX, AX                \
	SHRQ  $3, AX                \
	JZ    tail                  \
	CMPQ  AX, $32               \
	JBE   capped                \
	MOVQ  $32, AX               \
capped:                         \
	IMULQ $size, AX             \
	ADDQ  BX, AX                \
	MOVQ  AX, (start+8)(SP)     \
loop:                           \
	STEP(LD)                    \
	ADDQ  $size, BX             \
	SUBQ  $8, CX                \
	CMPQ  BX, (start+8)(SP)     \
	JB    loop                  \
tail:                           \
	CMPQ  CX, $8                \
	JAE   flush                 \
	TESTQ CX, CX                \
	JZ    flush                 \
	TAILMASK                    \
	STEP(LDM)                   \
	ADDQ  $size, BX             \
	XORQ  CX, CX                \
flush:                          \
	CMPQ  start(SP), $0         \
	JNE   next                  \
	FLUSH(F32_FIRST)            \
	JMP   flushed               \
next:                           \
	FLUSH(F32_NEXT)             \
flushed:                        \
	TESTQ CX, CX                \
	JNZ   chunk

// F32_TAILMASK sets Y7 to the VMASKMOVPS mask of the CX < 8 elements of
// a last F32 group; F16_TAILMASK sets K1 to it (AVX-512).
#define F32_TAILMASK \
	VMOVD CX, X7                    \
	VPBROADCASTD X7, Y7             \
	VPCMPGTD f32Lanes<>(SB), Y7, Y7

#define F16_TAILMASK \
	MOVL  $1, AX                    \
	SHLL  CX, AX                    \
	DECL  AX                        \
	KMOVW AX, K1

#define F32_LOOP(STEP, FLUSH, start, chunk, capped, loop, tail, flush, next, flushed) \
	FLOAT_LOOP(STEP, FLUSH, F32_LD, F32_LDM, F32_TAILMASK, 32, start, chunk, capped, loop, tail, flush, next, flushed)

#define F16_LOOP(STEP, FLUSH, start, chunk, capped, loop, tail, flush, next, flushed) \
	FLOAT_LOOP(STEP, FLUSH, F16_LD, F16_LDM, F16_TAILMASK, 16, start, chunk, capped, loop, tail, flush, next, flushed)

// ROWS4 sets SI, R9, R10, R11 to the rows at w, w+rowBytes, ...
#define ROWS4 \
	MOVQ w+0(FP), SI            \
	MOVQ rowBytes+8(FP), AX     \
	LEAQ (SI)(AX*1), R9         \
	LEAQ (R9)(AX*1), R10        \
	LEAQ (R10)(AX*1), R11

// TOKS4 sets DI, R12, R13, R8 to the tokens at x, x+xStride, ...
#define TOKS4 \
	MOVQ x+16(FP), DI           \
	MOVQ xStride+24(FP), AX     \
	LEAQ (DI)(AX*1), R12        \
	LEAQ (R12)(AX*1), R13       \
	LEAQ (R13)(AX*1), R8

// DST4 sets DI, R12, R13, R8 to the dst rows of the four tokens.
#define DST4 \
	MOVQ dst+40(FP), DI         \
	MOVQ dstStride+48(FP), AX   \
	SHLQ $2, AX                 \
	LEAQ (DI)(AX*1), R12        \
	LEAQ (R12)(AX*1), R13       \
	LEAQ (R13)(AX*1), R8

#define F11_STEP(LD) \
	LD(DI, Y0)               \
	LD(SI, Y4)               \
	VFMADD231PS Y0, Y4, Y8

#define F11_FLUSH(F) F(Y8, 0, ZERO_VEX)

#define F41_STEP(LD) \
	LD(DI, Y0)               \
	LD(SI, Y4)               \
	VFMADD231PS Y0, Y4, Y8   \
	LD(R9, Y4)               \
	VFMADD231PS Y0, Y4, Y9   \
	LD(R10, Y4)              \
	VFMADD231PS Y0, Y4, Y10  \
	LD(R11, Y4)              \
	VFMADD231PS Y0, Y4, Y11

#define F41_FLUSH(F) \
	F(Y8, 0, ZERO_VEX)  \
	F(Y9, 1, ZERO_VEX)  \
	F(Y10, 2, ZERO_VEX) \
	F(Y11, 3, ZERO_VEX)

#define F32_TOKS(LD) \
	LD(DI, Y0)   \
	LD(R12, Y1)  \
	LD(R13, Y2)  \
	LD(R8, Y3)

#define F32_ROW(LD, P, A0, A1, A2, A3) \
	LD(P, Y4)                \
	VFMADD231PS Y0, Y4, A0   \
	VFMADD231PS Y1, Y4, A1   \
	VFMADD231PS Y2, Y4, A2   \
	VFMADD231PS Y3, Y4, A3

#define F44_STEP(LD) \
	F32_TOKS(LD)                             \
	F32_ROW(LD, SI, Y16, Y17, Y18, Y19)      \
	F32_ROW(LD, R9, Y20, Y21, Y22, Y23)      \
	F32_ROW(LD, R10, Y24, Y25, Y26, Y27)     \
	F32_ROW(LD, R11, Y28, Y29, Y30, Y31)

#define F24_STEP(LD) \
	F32_TOKS(LD)                             \
	F32_ROW(LD, SI, Y8, Y9, Y10, Y11)        \
	F32_ROW(LD, R9, Y12, Y13, Y14, Y15)

#define F44_FLUSH(F) \
	F(Y16, 0, ZERO_EVEX) \
	F(Y17, 1, ZERO_EVEX) \
	F(Y18, 2, ZERO_EVEX) \
	F(Y19, 3, ZERO_EVEX) \
	F(Y20, 4, ZERO_EVEX) \
	F(Y21, 5, ZERO_EVEX) \
	F(Y22, 6, ZERO_EVEX) \
	F(Y23, 7, ZERO_EVEX) \
	F(Y24, 8, ZERO_EVEX) \
	F(Y25, 9, ZERO_EVEX) \
	F(Y26, 10, ZERO_EVEX) \
	F(Y27, 11, ZERO_EVEX) \
	F(Y28, 12, ZERO_EVEX) \
	F(Y29, 13, ZERO_EVEX) \
	F(Y30, 14, ZERO_EVEX) \
	F(Y31, 15, ZERO_EVEX)

#define F24_FLUSH(F) \
	F(Y8, 0, ZERO_VEX) \
	F(Y9, 1, ZERO_VEX) \
	F(Y10, 2, ZERO_VEX) \
	F(Y11, 3, ZERO_VEX) \
	F(Y12, 4, ZERO_VEX) \
	F(Y13, 5, ZERO_VEX) \
	F(Y14, 6, ZERO_VEX) \
	F(Y15, 7, ZERO_VEX)

// func dotF32Tile1x1(w, x *byte, n int) float32
TEXT ·dotF32Tile1x1(SB), NOSPLIT, $48-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y8, Y8, Y8
	F32_LOOP(F11_STEP, F11_FLUSH, 32, f11_chunk, f11_capped, f11_loop, f11_tail, f11_flush, f11_next, f11_flushed)
	LEAQ ret+24(FP), DI
	F32_OUT(0, DI, 0)
	VZEROUPPER
	RET

// func dotF32Tile4x1(w *byte, rowBytes int, x *byte, n int, out *[4]float32)
TEXT ·dotF32Tile4x1(SB), NOSPLIT, $144-40
	ROWS4
	MOVQ x+16(FP), DI
	MOVQ n+24(FP), CX
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	F32_LOOP(F41_STEP, F41_FLUSH, 128, f41_chunk, f41_capped, f41_loop, f41_tail, f41_flush, f41_next, f41_flushed)
	MOVQ out+32(FP), DI
	F32_OUT(0, DI, 0)
	F32_OUT(1, DI, 1)
	F32_OUT(2, DI, 2)
	F32_OUT(3, DI, 3)
	VZEROUPPER
	RET

// func dotF32Tile4x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)
// The products of the rows at w, w+rowBytes, ... with the tokens at x,
// x+xStride, ... into dst[j*dstStride+i]; pair k = 4i+j.
TEXT ·dotF32Tile4x4(SB), NOSPLIT, $528-56
	ROWS4
	TOKS4
	MOVQ n+32(FP), CX
	VPXORD Y16, Y16, Y16
	VPXORD Y17, Y17, Y17
	VPXORD Y18, Y18, Y18
	VPXORD Y19, Y19, Y19
	VPXORD Y20, Y20, Y20
	VPXORD Y21, Y21, Y21
	VPXORD Y22, Y22, Y22
	VPXORD Y23, Y23, Y23
	VPXORD Y24, Y24, Y24
	VPXORD Y25, Y25, Y25
	VPXORD Y26, Y26, Y26
	VPXORD Y27, Y27, Y27
	VPXORD Y28, Y28, Y28
	VPXORD Y29, Y29, Y29
	VPXORD Y30, Y30, Y30
	VPXORD Y31, Y31, Y31
	F32_LOOP(F44_STEP, F44_FLUSH, 512, f44_chunk, f44_capped, f44_loop, f44_tail, f44_flush, f44_next, f44_flushed)
	DST4
	F32_OUT(0, DI, 0)
	F32_OUT(1, R12, 0)
	F32_OUT(2, R13, 0)
	F32_OUT(3, R8, 0)
	F32_OUT(4, DI, 1)
	F32_OUT(5, R12, 1)
	F32_OUT(6, R13, 1)
	F32_OUT(7, R8, 1)
	F32_OUT(8, DI, 2)
	F32_OUT(9, R12, 2)
	F32_OUT(10, R13, 2)
	F32_OUT(11, R8, 2)
	F32_OUT(12, DI, 3)
	F32_OUT(13, R12, 3)
	F32_OUT(14, R13, 3)
	F32_OUT(15, R8, 3)
	VZEROUPPER
	RET

// func dotF32Tile2x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)
// As dotF32Tile4x4 for two rows.
TEXT ·dotF32Tile2x4(SB), NOSPLIT, $272-56
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), AX
	LEAQ (SI)(AX*1), R9
	TOKS4
	MOVQ n+32(FP), CX
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	F32_LOOP(F24_STEP, F24_FLUSH, 256, f24_chunk, f24_capped, f24_loop, f24_tail, f24_flush, f24_next, f24_flushed)
	DST4
	F32_OUT(0, DI, 0)
	F32_OUT(1, R12, 0)
	F32_OUT(2, R13, 0)
	F32_OUT(3, R8, 0)
	F32_OUT(4, DI, 1)
	F32_OUT(5, R12, 1)
	F32_OUT(6, R13, 1)
	F32_OUT(7, R8, 1)
	VZEROUPPER
	RET

// func dotF16Tile1x1(w, x *byte, n int) float32
TEXT ·dotF16Tile1x1(SB), NOSPLIT, $48-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y8, Y8, Y8
	F16_LOOP(F11_STEP, F11_FLUSH, 32, h11_chunk, h11_capped, h11_loop, h11_tail, h11_flush, h11_next, h11_flushed)
	LEAQ ret+24(FP), DI
	F32_OUT(0, DI, 0)
	VZEROUPPER
	RET

// func dotF16Tile4x1(w *byte, rowBytes int, x *byte, n int, out *[4]float32)
TEXT ·dotF16Tile4x1(SB), NOSPLIT, $144-40
	ROWS4
	MOVQ x+16(FP), DI
	MOVQ n+24(FP), CX
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	F16_LOOP(F41_STEP, F41_FLUSH, 128, h41_chunk, h41_capped, h41_loop, h41_tail, h41_flush, h41_next, h41_flushed)
	MOVQ out+32(FP), DI
	F32_OUT(0, DI, 0)
	F32_OUT(1, DI, 1)
	F32_OUT(2, DI, 2)
	F32_OUT(3, DI, 3)
	VZEROUPPER
	RET

// func dotF16Tile4x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)
// The products of the rows at w, w+rowBytes, ... with the tokens at x,
// x+xStride, ... into dst[j*dstStride+i]; pair k = 4i+j.
TEXT ·dotF16Tile4x4(SB), NOSPLIT, $528-56
	ROWS4
	TOKS4
	MOVQ n+32(FP), CX
	VPXORD Y16, Y16, Y16
	VPXORD Y17, Y17, Y17
	VPXORD Y18, Y18, Y18
	VPXORD Y19, Y19, Y19
	VPXORD Y20, Y20, Y20
	VPXORD Y21, Y21, Y21
	VPXORD Y22, Y22, Y22
	VPXORD Y23, Y23, Y23
	VPXORD Y24, Y24, Y24
	VPXORD Y25, Y25, Y25
	VPXORD Y26, Y26, Y26
	VPXORD Y27, Y27, Y27
	VPXORD Y28, Y28, Y28
	VPXORD Y29, Y29, Y29
	VPXORD Y30, Y30, Y30
	VPXORD Y31, Y31, Y31
	F16_LOOP(F44_STEP, F44_FLUSH, 512, h44_chunk, h44_capped, h44_loop, h44_tail, h44_flush, h44_next, h44_flushed)
	DST4
	F32_OUT(0, DI, 0)
	F32_OUT(1, R12, 0)
	F32_OUT(2, R13, 0)
	F32_OUT(3, R8, 0)
	F32_OUT(4, DI, 1)
	F32_OUT(5, R12, 1)
	F32_OUT(6, R13, 1)
	F32_OUT(7, R8, 1)
	F32_OUT(8, DI, 2)
	F32_OUT(9, R12, 2)
	F32_OUT(10, R13, 2)
	F32_OUT(11, R8, 2)
	F32_OUT(12, DI, 3)
	F32_OUT(13, R12, 3)
	F32_OUT(14, R13, 3)
	F32_OUT(15, R8, 3)
	VZEROUPPER
	RET
