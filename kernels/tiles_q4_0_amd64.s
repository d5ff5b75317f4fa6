//go:build amd64

#include "textflag.h"

// Q4_0 tile kernel (see tiles.go): 4 weight rows × 4 tokens. Per (row,
// token) it performs exactly the float operations of dotQ4_0VNNI and
// dot4Q4_0VNNI in dot_legacy_amd64.s (which says how): per block the
// exact integer Σ(q-8)·x, converted to float32, times dw·dx added into
// the output's accumulator with one FMA. Each block of the four rows is
// unpacked once (Y0..Y3) with the rows' dw (X7), then taken with each
// token's block in turn: the four rows' integer sums are reduced into the
// lanes of X8 and added, scaled, into that token's accumulator X24+j
// (lane i: row i), which is stored as it is, the tile's four outputs of
// a token lying side by side in dst.
//
// func tile4x4Q4_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
// computes the tile of the rows at w, w+rowBytes, ... and the tokens at x,
// x+xStride, ..., into dst[j*dstStride+i].
// Registers: SI, R10, R11, R12 the rows; DI, R9, R13, DX the tokens; CX
// the blocks left; R8 the fp16 table; the constants and scratch registers
// of the one-row kernels.

#define BCAST32(c, X, Y) \
	MOVL         c, AX \
	VMOVD        AX, X \
	VPBROADCASTD X, Y

DATA t4Shift<>+0(SB)/8, $0
DATA t4Shift<>+8(SB)/8, $0
DATA t4Shift<>+16(SB)/8, $4
DATA t4Shift<>+24(SB)/8, $4
GLOBL t4Shift<>(SB), RODATA|NOPTR, $32

// T40_W unpacks the quants of the block at R into W (unsigned 0..15, in
// value order: the high 128-bit half shifted right by 4).
#define T40_W(R, W) \
	VBROADCASTI128 2(R), W \
	VPSRLVQ        Y14, W, W \
	VPAND          Y13, W, W

// T40_TOK adds the four rows' block times the block of the token at P
// into ACC.
#define T40_TOK(P, ACC) \
	VMOVDQU      2(P), Y4         \
	VPXOR        Y6, Y6, Y6       \
	VPDPBUSD     Y4, Y12, Y6      \
	VPXOR        Y5, Y5, Y5       \
	VPSUBD       Y6, Y5, Y5       \
	VMOVDQA      Y5, Y8           \
	VPDPBUSD     Y4, Y0, Y8       \
	VMOVDQA      Y5, Y9           \
	VPDPBUSD     Y4, Y1, Y9       \
	VMOVDQA      Y5, Y10          \
	VPDPBUSD     Y4, Y2, Y10      \
	VMOVDQA      Y5, Y11          \
	VPDPBUSD     Y4, Y3, Y11      \
	VPHADDD      Y9, Y8, Y8       \
	VPHADDD      Y11, Y10, Y10    \
	VPHADDD      Y10, Y8, Y8      \
	VEXTRACTI128 $1, Y8, X9       \
	VPADDD       X9, X8, X8       \
	VCVTDQ2PS    X8, X8           \
	MOVWLZX      (P), AX          \
	VBROADCASTSS (R8)(AX*4), X6   \
	VMULPS       X6, X7, X6       \
	VFMADD231PS  X6, X8, ACC

// func tile4x4Q4_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile4x4Q4_0VNNI(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), AX
	LEAQ (SI)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	LEAQ (R11)(AX*1), R12
	MOVQ x+16(FP), DI
	MOVQ xStride+24(FP), AX
	LEAQ (DI)(AX*1), R9
	LEAQ (R9)(AX*1), R13
	LEAQ (R13)(AX*1), DX
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
	BCAST32($0x08080808, X12, Y12)
	VMOVDQU t4Shift<>(SB), Y14
	VXORPS  X24, X24, X24
	VXORPS  X25, X25, X25
	VXORPS  X26, X26, X26
	VXORPS  X27, X27, X27
	TESTQ   CX, CX
	JZ      t40_done

t40_loop:
	T40_W(SI, Y0)
	T40_W(R10, Y1)
	T40_W(R11, Y2)
	T40_W(R12, Y3)
	MOVWLZX   (SI), AX
	VMOVSS    (R8)(AX*4), X7
	MOVWLZX   (R10), AX
	VINSERTPS $0x10, (R8)(AX*4), X7, X7
	MOVWLZX   (R11), AX
	VINSERTPS $0x20, (R8)(AX*4), X7, X7
	MOVWLZX   (R12), AX
	VINSERTPS $0x30, (R8)(AX*4), X7, X7
	T40_TOK(DI, X24)
	T40_TOK(R9, X25)
	T40_TOK(R13, X26)
	T40_TOK(DX, X27)
	ADDQ $18, SI
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $18, R12
	ADDQ $34, DI
	ADDQ $34, R9
	ADDQ $34, R13
	ADDQ $34, DX
	DECQ CX
	JNZ  t40_loop

t40_done:
	MOVQ    dst+48(FP), DI
	MOVQ    dstStride+56(FP), AX
	SHLQ    $2, AX
	VMOVUPS X24, (DI)
	ADDQ    AX, DI
	VMOVUPS X25, (DI)
	ADDQ    AX, DI
	VMOVUPS X26, (DI)
	ADDQ    AX, DI
	VMOVUPS X27, (DI)
	VZEROUPPER
	RET
