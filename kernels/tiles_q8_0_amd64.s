//go:build amd64

#include "textflag.h"

// Q8_0 tile kernels (see tiles.go). tile2x4Q8_0VNNI: 2 weight rows × 4
// tokens. Per (row, token) it performs the float operations of
// dotQ8_0VNNI in dot_legacy_amd64.s, in the same order: each block's 32
// products are summed exactly into eight int32 lanes (lane l: values
// 4l..4l+3), converted to float32 and added, times dw·dx, with one FMA
// into the pair's one accumulator, block after block; its lanes are
// summed at the end as HSUM8 does.
//
// The lanes' integer sums are formed differently, which changes nothing
// as they are exact: the one-row kernel moves the weight's sign onto the
// activation, here the weight bytes are offset to unsigned (w+128, a
// VPXOR with 0x80, once per row) and every lane starts at -128·Σx of its
// four activations, prepared once per token: VPDPBUSD then adds
// Σ(w+128)·x, leaving Σw·x.
//
// Per step of two blocks, the four tokens' activation blocks are kept in
// Y0..Y7 (token j's even block in Y(2j), odd in Y(2j+1)), their -128·Σx
// lanes and dx in the frame; each row's blocks are unpacked once into
// Y8 (the offset quants) and Y11 (dw) and multiplied with the four
// tokens. Accumulators: Y16+4i+j for row i and token j. Frame: token j,
// block b (0 even, 1 odd) has its -128·Σx lanes at 128j+64b(SP) and dx
// at 128j+64b+32(SP).
//
// func tile2x4Q8_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

#define HSUM8(Y, X, T) \
	VEXTRACTF128 $1, Y, T \
	VADDPS       T, X, X  \
	VMOVHLPS     X, X, T  \
	VADDPS       T, X, X  \
	VMOVSHDUP    X, T     \
	VADDSS       T, X, X

#define BCAST32(c, X, Y) \
	MOVL         c, AX \
	VMOVD        AX, X \
	VPBROADCASTD X, Y

// T80_TOK prepares block o (byte offset) of the token at P into Y, frame
// slot k.
#define T80_TOK(P, o, Y, k) \
	VMOVDQU      (o+2)(P), Y        \
	VPXOR        Y10, Y10, Y10      \
	VPDPBUSD     Y, Y14, Y10        \
	VPXOR        Y12, Y12, Y12      \
	VPSUBD       Y10, Y12, Y10      \
	VMOVDQU      Y10, (64*k)(SP)    \
	MOVWLZX      o(P), AX           \
	VBROADCASTSS (R8)(AX*4), Y12    \
	VMOVUPS      Y12, (64*k+32)(SP)

// T80_W prepares block o of the row at R.
#define T80_W(R, o) \
	VMOVDQU      (o+2)(R), Y8       \
	VPXOR        Y14, Y8, Y8        \
	MOVWLZX      o(R), AX           \
	VBROADCASTSS (R8)(AX*4), Y11

// T80_DOT adds the prepared row block times token block Y (slot k) into
// ACC.
#define T80_DOT(Y, k, ACC) \
	VMOVDQU     (64*k)(SP), Y10         \
	VPDPBUSD    Y, Y8, Y10              \
	VCVTDQ2PS   Y10, Y10                \
	VMULPS      (64*k+32)(SP), Y11, Y12 \
	VFMADD231PS Y12, Y10, ACC

#define T80_STEP2 \
	T80_TOK(DI, 0, Y0, 0) \
	T80_TOK(DI, 34, Y1, 1) \
	T80_TOK(R12, 0, Y2, 2) \
	T80_TOK(R12, 34, Y3, 3) \
	T80_TOK(R13, 0, Y4, 4) \
	T80_TOK(R13, 34, Y5, 5) \
	T80_TOK(DX, 0, Y6, 6) \
	T80_TOK(DX, 34, Y7, 7) \
	T80_W(SI, 0) \
	T80_DOT(Y0, 0, Y16) \
	T80_DOT(Y2, 2, Y17) \
	T80_DOT(Y4, 4, Y18) \
	T80_DOT(Y6, 6, Y19) \
	T80_W(SI, 34) \
	T80_DOT(Y1, 1, Y16) \
	T80_DOT(Y3, 3, Y17) \
	T80_DOT(Y5, 5, Y18) \
	T80_DOT(Y7, 7, Y19) \
	T80_W(R9, 0) \
	T80_DOT(Y0, 0, Y20) \
	T80_DOT(Y2, 2, Y21) \
	T80_DOT(Y4, 4, Y22) \
	T80_DOT(Y6, 6, Y23) \
	T80_W(R9, 34) \
	T80_DOT(Y1, 1, Y20) \
	T80_DOT(Y3, 3, Y21) \
	T80_DOT(Y5, 5, Y22) \
	T80_DOT(Y7, 7, Y23)

#define T80_STEP1 \
	T80_TOK(DI, 0, Y0, 0) \
	T80_TOK(R12, 0, Y2, 2) \
	T80_TOK(R13, 0, Y4, 4) \
	T80_TOK(DX, 0, Y6, 6) \
	T80_W(SI, 0) \
	T80_DOT(Y0, 0, Y16) \
	T80_DOT(Y2, 2, Y17) \
	T80_DOT(Y4, 4, Y18) \
	T80_DOT(Y6, 6, Y19) \
	T80_W(R9, 0) \
	T80_DOT(Y0, 0, Y20) \
	T80_DOT(Y2, 2, Y21) \
	T80_DOT(Y4, 4, Y22) \
	T80_DOT(Y6, 6, Y23)

// tile2x2Q8_0AVX2 is the AVX2 tile (16 vector registers): 2 rows × 2
// tokens, with the operations of dotQ8_0AVX2 per (row, token): each
// block's byte products (the weight's sign moved onto the activation,
// VPMADDUBSW with the weight's absolute value) summed exactly into eight
// int32 lanes, converted, and added times dw·dx into the pair's
// accumulator; then its lanes as HSUM8 adds them. Per block, the
// two tokens' quants (Y0, Y1) and dx (Y2, Y3) are loaded once, each row's
// absolute quants (Y4) and dw (Y5) once. Accumulators: Y8+2i+j for row
// i and token j; Y6, Y7 scratch.

// q8Ones<>: int16 ones.
DATA q8Ones<>+0(SB)/8, $0x0001000100010001
DATA q8Ones<>+8(SB)/8, $0x0001000100010001
DATA q8Ones<>+16(SB)/8, $0x0001000100010001
DATA q8Ones<>+24(SB)/8, $0x0001000100010001
GLOBL q8Ones<>(SB), RODATA|NOPTR, $32

// A80_TOK loads block o of the token at P: quants into Y, dx lanes into D.
#define A80_TOK(P, o, Y, D) \
	VMOVDQU      (o+2)(P), Y     \
	MOVWLZX      o(P), AX        \
	VBROADCASTSS (R8)(AX*4), D

// A80_DOT adds block o of the row at R (absolute quants in Y4, dw in
// Y5) times the token block in Y (dx in D) into ACC.
#define A80_DOT(R, o, Y, D, ACC) \
	VPSIGNB     (o+2)(R), Y, Y6  \
	VPMADDUBSW  Y6, Y4, Y6       \
	VPMADDWD    q8Ones<>(SB), Y6, Y6 \
	VCVTDQ2PS   Y6, Y6           \
	VMULPS      D, Y5, Y7        \
	VFMADD231PS Y7, Y6, ACC

#define A80_STEP2 \
	A80_TOK(DI, 0, Y0, Y2) \
	A80_TOK(R12, 0, Y1, Y3) \
	VPABSB (0+2)(SI), Y4 \
	MOVWLZX 0(SI), AX \
	VBROADCASTSS (R8)(AX*4), Y5 \
	A80_DOT(SI, 0, Y0, Y2, Y8) \
	A80_DOT(SI, 0, Y1, Y3, Y9) \
	VPABSB (0+2)(R9), Y4 \
	MOVWLZX 0(R9), AX \
	VBROADCASTSS (R8)(AX*4), Y5 \
	A80_DOT(R9, 0, Y0, Y2, Y10) \
	A80_DOT(R9, 0, Y1, Y3, Y11) \
	A80_TOK(DI, 34, Y0, Y2) \
	A80_TOK(R12, 34, Y1, Y3) \
	VPABSB (34+2)(SI), Y4 \
	MOVWLZX 34(SI), AX \
	VBROADCASTSS (R8)(AX*4), Y5 \
	A80_DOT(SI, 34, Y0, Y2, Y8) \
	A80_DOT(SI, 34, Y1, Y3, Y9) \
	VPABSB (34+2)(R9), Y4 \
	MOVWLZX 34(R9), AX \
	VBROADCASTSS (R8)(AX*4), Y5 \
	A80_DOT(R9, 34, Y0, Y2, Y10) \
	A80_DOT(R9, 34, Y1, Y3, Y11)

#define A80_STEP1 \
	A80_TOK(DI, 0, Y0, Y2) \
	A80_TOK(R12, 0, Y1, Y3) \
	VPABSB (0+2)(SI), Y4 \
	MOVWLZX 0(SI), AX \
	VBROADCASTSS (R8)(AX*4), Y5 \
	A80_DOT(SI, 0, Y0, Y2, Y8) \
	A80_DOT(SI, 0, Y1, Y3, Y9) \
	VPABSB (0+2)(R9), Y4 \
	MOVWLZX 0(R9), AX \
	VBROADCASTSS (R8)(AX*4), Y5 \
	A80_DOT(R9, 0, Y0, Y2, Y10) \
	A80_DOT(R9, 0, Y1, Y3, Y11)

// func tile2x4Q8_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile2x4Q8_0VNNI(SB), NOSPLIT, $512-64
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), AX
	LEAQ (SI)(AX*1), R9
	MOVQ x+16(FP), DI
	MOVQ xStride+24(FP), AX
	LEAQ (DI)(AX*1), R12
	LEAQ (R12)(AX*1), R13
	LEAQ (R13)(AX*1), DX
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	BCAST32($0x80808080, X14, Y14)
	VPXORD Y16, Y16, Y16
	VPXORD Y17, Y17, Y17
	VPXORD Y18, Y18, Y18
	VPXORD Y19, Y19, Y19
	VPXORD Y20, Y20, Y20
	VPXORD Y21, Y21, Y21
	VPXORD Y22, Y22, Y22
	VPXORD Y23, Y23, Y23
	CMPQ CX, $2
	JB   q80t_one

q80t_two:
	T80_STEP2
	ADDQ $68, SI
	ADDQ $68, R9
	ADDQ $68, DI
	ADDQ $68, R12
	ADDQ $68, R13
	ADDQ $68, DX
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  q80t_two

q80t_one:
	TESTQ CX, CX
	JZ    q80t_done
	T80_STEP1

q80t_done:
	MOVQ dst+48(FP), DI
	MOVQ dstStride+56(FP), AX
	SHLQ $2, AX
	LEAQ (DI)(AX*1), R12
	LEAQ (R12)(AX*1), R13
	LEAQ (R13)(AX*1), DX
	VMOVAPS Y16, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 0(DI)
	VMOVAPS Y17, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 0(R12)
	VMOVAPS Y18, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 0(R13)
	VMOVAPS Y19, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 0(DX)
	VMOVAPS Y20, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 4(DI)
	VMOVAPS Y21, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 4(R12)
	VMOVAPS Y22, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 4(R13)
	VMOVAPS Y23, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 4(DX)
	VZEROUPPER
	RET

// func tile2x2Q8_0AVX2(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile2x2Q8_0AVX2(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), AX
	LEAQ (SI)(AX*1), R9
	MOVQ x+16(FP), DI
	MOVQ xStride+24(FP), AX
	LEAQ (DI)(AX*1), R12
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	CMPQ CX, $2
	JB   a80t_one

a80t_two:
	A80_STEP2
	ADDQ $68, SI
	ADDQ $68, R9
	ADDQ $68, DI
	ADDQ $68, R12
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  a80t_two

a80t_one:
	TESTQ CX, CX
	JZ    a80t_done
	A80_STEP1

a80t_done:
	MOVQ dst+48(FP), DI
	MOVQ dstStride+56(FP), AX
	LEAQ (DI)(AX*4), R12
	VMOVAPS Y8, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 0(DI)
	VMOVAPS Y9, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 0(R12)
	VMOVAPS Y10, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 4(DI)
	VMOVAPS Y11, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, 4(R12)
	VZEROUPPER
	RET
