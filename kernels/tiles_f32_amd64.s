//go:build amd64

#include "textflag.h"

// The float products for several tokens in the order of llamafile's
// tinyBLAS<16, __m512, ...> (dot_float.go): one accumulator of 16 float32
// lanes per (row, token) pair, lane l taking by FMA the elements ≡ l mod
// 16, then the 16 lanes added in halves as _mm512_reduce_add_ps does.
// Which tile computes a pair does not change that, as in tinyBLAS. n is a
// multiple of 16 in every kernel here.
//
// dotF32Tiled1 and dotF16Tiled1 compute one pair with two 8-lane AVX2
// registers (lanes 0..7 and 8..15), for the rows and tokens outside whole
// tiles; the AVX2 set's 2×2 tiles do the same for four pairs. The 4×4
// tiles (AVX-512) keep the 16 pairs' accumulators in Z16..Z31.

// HSUM16 reduces the 16 lanes of Z (its low half Y) to a float32 at
// P, using Y5 and X6.
#define HSUM16(Z, Y, P) \
	VEXTRACTF64X4 $1, Z, Y5 \
	VADDPS        Y, Y5, Y5 \
	VEXTRACTF128  $1, Y5, X6 \
	VADDPS        X6, X5, X5 \
	VMOVHLPS      X5, X5, X6 \
	VADDPS        X6, X5, X5 \
	VMOVSHDUP     X5, X6     \
	VADDSS        X6, X5, X5 \
	VMOVSS        X5, P

// HSUM8x2 reduces the 16 lanes held as Y0 (0..7) and Y1 (8..15) into
// the low lane of X0. Its additions take their operands in HSUM16's
// order, so that a NaN result has the same payload.
#define HSUM8x2 \
	VADDPS       Y0, Y1, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VMOVHLPS     X0, X0, X1 \
	VADDPS       X1, X0, X0 \
	VMOVSHDUP    X0, X1     \
	VADDSS       X1, X0, X0

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

// Loads of 16 elements at offset BX of the row at P.
#define F32_LD(P, Z) VMOVUPS (P)(BX*1), Z
#define F16_LD(P, Z) VCVTPH2PS (P)(BX*1), Z

#define TILE_ROW(LD, P, A0, A1, A2, A3) \
	LD(P, Z4)                \
	VFMADD231PS Z0, Z4, A0   \
	VFMADD231PS Z1, Z4, A1   \
	VFMADD231PS Z2, Z4, A2   \
	VFMADD231PS Z3, Z4, A3

#define TILE_STEP(LD) \
	LD(DI, Z0)                               \
	LD(R12, Z1)                              \
	LD(R13, Z2)                              \
	LD(R8, Z3)                               \
	TILE_ROW(LD, SI, Z16, Z17, Z18, Z19)     \
	TILE_ROW(LD, R9, Z20, Z21, Z22, Z23)     \
	TILE_ROW(LD, R10, Z24, Z25, Z26, Z27)    \
	TILE_ROW(LD, R11, Z28, Z29, Z30, Z31)

#define TILE_ZERO \
	VPXORD Z16, Z16, Z16 \
	VPXORD Z17, Z17, Z17 \
	VPXORD Z18, Z18, Z18 \
	VPXORD Z19, Z19, Z19 \
	VPXORD Z20, Z20, Z20 \
	VPXORD Z21, Z21, Z21 \
	VPXORD Z22, Z22, Z22 \
	VPXORD Z23, Z23, Z23 \
	VPXORD Z24, Z24, Z24 \
	VPXORD Z25, Z25, Z25 \
	VPXORD Z26, Z26, Z26 \
	VPXORD Z27, Z27, Z27 \
	VPXORD Z28, Z28, Z28 \
	VPXORD Z29, Z29, Z29 \
	VPXORD Z30, Z30, Z30 \
	VPXORD Z31, Z31, Z31

// TILE_OUT stores the 16 pairs: row i, token j is Z(16+4i+j), at
// dst[j*dstStride+i].
#define TILE_OUT \
	DST4                        \
	HSUM16(Z16, Y16, (DI))      \
	HSUM16(Z17, Y17, (R12))     \
	HSUM16(Z18, Y18, (R13))     \
	HSUM16(Z19, Y19, (R8))      \
	HSUM16(Z20, Y20, 4(DI))     \
	HSUM16(Z21, Y21, 4(R12))    \
	HSUM16(Z22, Y22, 4(R13))    \
	HSUM16(Z23, Y23, 4(R8))     \
	HSUM16(Z24, Y24, 8(DI))     \
	HSUM16(Z25, Y25, 8(R12))    \
	HSUM16(Z26, Y26, 8(R13))    \
	HSUM16(Z27, Y27, 8(R8))     \
	HSUM16(Z28, Y28, 12(DI))    \
	HSUM16(Z29, Y29, 12(R12))   \
	HSUM16(Z30, Y30, 12(R13))   \
	HSUM16(Z31, Y31, 12(R8))

// The Go assembler has no AVX512_BF16 instructions: DPBF16_Zd_Za_Zb is
// VDPBF16PS Zb, Za, Zd (Zd += the products of the bf16 pairs of Za and Zb),
// encoded by hand (EVEX.512.F3.0F38.W0 52 /r; checked with objdump).
#define DPBF16_Z16_Z0_Z1 BYTE $0x62; BYTE $0xe2; BYTE $0x7e; BYTE $0x48; BYTE $0x52; BYTE $0xc1
#define DPBF16_Z16_Z4_Z0 BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc0
#define DPBF16_Z17_Z4_Z1 BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc9
#define DPBF16_Z18_Z4_Z2 BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xd2
#define DPBF16_Z19_Z4_Z3 BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xdb
#define DPBF16_Z20_Z4_Z0 BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xe0
#define DPBF16_Z21_Z4_Z1 BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xe9
#define DPBF16_Z22_Z4_Z2 BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xf2
#define DPBF16_Z23_Z4_Z3 BYTE $0x62; BYTE $0xe2; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xfb
#define DPBF16_Z24_Z4_Z0 BYTE $0x62; BYTE $0x62; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc0
#define DPBF16_Z25_Z4_Z1 BYTE $0x62; BYTE $0x62; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xc9
#define DPBF16_Z26_Z4_Z2 BYTE $0x62; BYTE $0x62; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xd2
#define DPBF16_Z27_Z4_Z3 BYTE $0x62; BYTE $0x62; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xdb
#define DPBF16_Z28_Z4_Z0 BYTE $0x62; BYTE $0x62; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xe0
#define DPBF16_Z29_Z4_Z1 BYTE $0x62; BYTE $0x62; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xe9
#define DPBF16_Z30_Z4_Z2 BYTE $0x62; BYTE $0x62; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xf2
#define DPBF16_Z31_Z4_Z3 BYTE $0x62; BYTE $0x62; BYTE $0x5e; BYTE $0x48; BYTE $0x52; BYTE $0xfb

// BF16_LD loads 32 bf16 values at offset BX of the row at P.
#define BF16_LD(P, Z) VMOVDQU32 (P)(BX*1), Z

#define BF16_STEP \
	BF16_LD(DI, Z0)                \
	BF16_LD(R12, Z1)               \
	BF16_LD(R13, Z2)               \
	BF16_LD(R8, Z3)                \
	BF16_LD(SI, Z4)                \
	DPBF16_Z16_Z4_Z0               \
	DPBF16_Z17_Z4_Z1               \
	DPBF16_Z18_Z4_Z2               \
	DPBF16_Z19_Z4_Z3               \
	BF16_LD(R9, Z4)                \
	DPBF16_Z20_Z4_Z0               \
	DPBF16_Z21_Z4_Z1               \
	DPBF16_Z22_Z4_Z2               \
	DPBF16_Z23_Z4_Z3               \
	BF16_LD(R10, Z4)               \
	DPBF16_Z24_Z4_Z0               \
	DPBF16_Z25_Z4_Z1               \
	DPBF16_Z26_Z4_Z2               \
	DPBF16_Z27_Z4_Z3               \
	BF16_LD(R11, Z4)               \
	DPBF16_Z28_Z4_Z0               \
	DPBF16_Z29_Z4_Z1               \
	DPBF16_Z30_Z4_Z2               \
	DPBF16_Z31_Z4_Z3

// HSUM_PAIR reduces the 16 lanes held as L (0..7) and H (8..15) to a
// float32 at P as HSUM16 does (the same operand order), using Y6, Y7.
#define HSUM_PAIR(L, H, P) \
	VADDPS       L, H, Y6  \
	VEXTRACTF128 $1, Y6, X7 \
	VADDPS       X7, X6, X6 \
	VMOVHLPS     X6, X6, X7 \
	VADDPS       X7, X6, X6 \
	VMOVSHDUP    X6, X7     \
	VADDSS       X7, X6, X6 \
	VMOVSS       X6, P

// Loads of the halves (elements 0..7 and 8..15) of a group of 16 at
// offset BX of the row at P.
#define F32_LD2(P, L, H) \
	VMOVUPS (P)(BX*1), L    \
	VMOVUPS 32(P)(BX*1), H

#define F16_LD2(P, L, H) \
	VCVTPH2PS (P)(BX*1), L   \
	VCVTPH2PS 16(P)(BX*1), H

// TILE22_STEP: one group of 16 for the 2 rows (SI, R9) × 2 tokens (DI,
// R12); pair (row i, token j) in Y(8+4i+2j) (lanes 0..7) and Y(9+4i+2j).
#define TILE22_STEP(LD2) \
	LD2(DI, Y0, Y1)          \
	LD2(R12, Y2, Y3)         \
	LD2(SI, Y4, Y5)          \
	VFMADD231PS Y0, Y4, Y8   \
	VFMADD231PS Y1, Y5, Y9   \
	VFMADD231PS Y2, Y4, Y10  \
	VFMADD231PS Y3, Y5, Y11  \
	LD2(R9, Y4, Y5)          \
	VFMADD231PS Y0, Y4, Y12  \
	VFMADD231PS Y1, Y5, Y13  \
	VFMADD231PS Y2, Y4, Y14  \
	VFMADD231PS Y3, Y5, Y15

#define TILE22_ZERO \
	VXORPS Y8, Y8, Y8    \
	VXORPS Y9, Y9, Y9    \
	VXORPS Y10, Y10, Y10 \
	VXORPS Y11, Y11, Y11 \
	VXORPS Y12, Y12, Y12 \
	VXORPS Y13, Y13, Y13 \
	VXORPS Y14, Y14, Y14 \
	VXORPS Y15, Y15, Y15

#define TILE22_ARGS \
	MOVQ w+0(FP), SI          \
	MOVQ rowBytes+8(FP), AX   \
	LEAQ (SI)(AX*1), R9       \
	MOVQ x+16(FP), DI         \
	MOVQ xStride+24(FP), AX   \
	LEAQ (DI)(AX*1), R12      \
	MOVQ n+32(FP), CX

#define TILE22_OUT \
	MOVQ dst+40(FP), DI             \
	MOVQ dstStride+48(FP), AX       \
	LEAQ (DI)(AX*4), R12            \
	HSUM_PAIR(Y8, Y9, (DI))         \
	HSUM_PAIR(Y10, Y11, (R12))      \
	HSUM_PAIR(Y12, Y13, 4(DI))      \
	HSUM_PAIR(Y14, Y15, 4(R12))

// func dotF32Tiled1(w, x *byte, n int) float32
TEXT ·dotF32Tiled1(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	TESTQ  CX, CX
	JZ     f32t1_done

f32t1_loop:
	VMOVUPS     (SI), Y2
	VMOVUPS     32(SI), Y3
	VFMADD231PS (DI), Y2, Y0
	VFMADD231PS 32(DI), Y3, Y1
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JNZ         f32t1_loop

f32t1_done:
	HSUM8x2
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF16Tiled1(w, x *byte, n int) float32
TEXT ·dotF16Tiled1(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	TESTQ  CX, CX
	JZ     f16t1_done

f16t1_loop:
	VCVTPH2PS   (SI), Y2
	VCVTPH2PS   16(SI), Y3
	VCVTPH2PS   (DI), Y4
	VCVTPH2PS   16(DI), Y5
	VFMADD231PS Y4, Y2, Y0
	VFMADD231PS Y5, Y3, Y1
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $16, CX
	JNZ         f16t1_loop

f16t1_done:
	HSUM8x2
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF32Tile4x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)
// The products of the rows at w, w+rowBytes, ... with the tokens at x,
// x+xStride, ... into dst[j*dstStride+i].
TEXT ·dotF32Tile4x4(SB), NOSPLIT, $0-56
	ROWS4
	TOKS4
	MOVQ n+32(FP), CX
	TILE_ZERO
	XORQ BX, BX
	TESTQ CX, CX
	JZ   f32t44_done

f32t44_loop:
	TILE_STEP(F32_LD)
	ADDQ $64, BX
	SUBQ $16, CX
	JNZ  f32t44_loop

f32t44_done:
	TILE_OUT
	VZEROUPPER
	RET

// func dotF16Tile4x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)
// As dotF32Tile4x4 for fp16 rows.
TEXT ·dotF16Tile4x4(SB), NOSPLIT, $0-56
	ROWS4
	TOKS4
	MOVQ n+32(FP), CX
	TILE_ZERO
	XORQ BX, BX
	TESTQ CX, CX
	JZ   f16t44_done

f16t44_loop:
	TILE_STEP(F16_LD)
	ADDQ $32, BX
	SUBQ $16, CX
	JNZ  f16t44_loop

f16t44_done:
	TILE_OUT
	VZEROUPPER
	RET

// func dotBF16Tile4x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)
// tinyBLAS<32, __m512, __m512bh, ...>: as dotF32Tile4x4, but each
// accumulator takes 32 bf16 elements per step by VDPBF16PS; n a multiple
// of 32.
TEXT ·dotBF16Tile4x4(SB), NOSPLIT, $0-56
	ROWS4
	TOKS4
	MOVQ n+32(FP), CX
	TILE_ZERO
	XORQ BX, BX
	TESTQ CX, CX
	JZ   bf16t44_done

bf16t44_loop:
	BF16_STEP
	ADDQ $64, BX
	SUBQ $32, CX
	JNZ  bf16t44_loop

bf16t44_done:
	TILE_OUT
	VZEROUPPER
	RET

// func dotBF16Tiled1(w, x *byte, n int) float32
// One pair of dotBF16Tile4x4; n a multiple of 32.
TEXT ·dotBF16Tiled1(SB), NOSPLIT, $0-28
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	XORQ   BX, BX
	VPXORD Z16, Z16, Z16
	TESTQ  CX, CX
	JZ     bf16t1_done

bf16t1_loop:
	BF16_LD(SI, Z0)
	BF16_LD(DI, Z1)
	DPBF16_Z16_Z0_Z1
	ADDQ $64, BX
	SUBQ $32, CX
	JNZ  bf16t1_loop

bf16t1_done:
	LEAQ ret+24(FP), DI
	HSUM16(Z16, Y16, (DI))
	VZEROUPPER
	RET

// func dotF32Tile2x2(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)
// The AVX2 tile: 2 rows × 2 tokens, each pair's 16 lanes in two 8-lane
// registers; n a multiple of 16.
TEXT ·dotF32Tile2x2(SB), NOSPLIT, $0-56
	TILE22_ARGS
	TILE22_ZERO
	XORQ  BX, BX
	TESTQ CX, CX
	JZ    f32t22_done

f32t22_loop:
	TILE22_STEP(F32_LD2)
	ADDQ $64, BX
	SUBQ $16, CX
	JNZ  f32t22_loop

f32t22_done:
	TILE22_OUT
	VZEROUPPER
	RET

// func dotF16Tile2x2(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)
// As dotF32Tile2x2 for fp16 rows.
TEXT ·dotF16Tile2x2(SB), NOSPLIT, $0-56
	TILE22_ARGS
	TILE22_ZERO
	XORQ  BX, BX
	TESTQ CX, CX
	JZ    f16t22_done

f16t22_loop:
	TILE22_STEP(F16_LD2)
	ADDQ $32, BX
	SUBQ $16, CX
	JNZ  f16t22_loop

f16t22_done:
	TILE22_OUT
	VZEROUPPER
	RET
