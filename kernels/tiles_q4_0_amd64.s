//go:build amd64

#include "textflag.h"

// Q4_0 tile kernel (see tiles.go): 4 weight rows × 4 tokens, 16
// accumulators. Per (row, token) it performs exactly the operations of
// dotQ4_0VNNI / dot4Q4_0VNNI in dot_legacy_amd64.s: two blocks A, B per
// step, A in the low 128-bit half of every register and B in the high
// one; the integer lanes start at -Σ8·x and take Σq·x by VPDPBUSD, are
// converted to float32 and added, times dw·dx, into the pair's
// accumulator with one FMA; a last odd block runs alone with B's lanes
// zero; the eight lanes are added at the end as HSUM8 does.
//
// The four tokens' activation blocks are prepared once per step and kept
// in Y0..Y7 (their -Σ8·x and dx lanes in the stack frame, read by the
// products as memory operands); then each row's blocks are unpacked once
// into Y8, Y9 (nibbles) and Y11 (dw) and multiplied with the four tokens.
// The accumulators are Y16..Y31 (acc[row i][token j] = Y(16+4i+j)),
// which need AVX-512 VL: only EVEX-encodable instructions touch them.
//
// func tile4x4Q4_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
// computes the tile of the rows at w, w+rowBytes, ... and the tokens at x,
// x+xStride, ..., into dst[j*dstStride+i].
// Registers: SI, R9, R10, R11 the rows; DI, R12, R13, DX the tokens; CX
// the blocks left; R8 the fp16 table; Y13 bytes 0x0f; Y14 bytes 8; Y10,
// Y12, Y15 scratch. Frame: token j's -Σ8·x lanes at 64j(SP), its dx
// lanes at 64j+32(SP).

// HSUM8 adds the eight float32 lanes of Y (X its low half) into the low
// lane of X; T is a scratch X register.
#define HSUM8(Y, X, T) \
	VEXTRACTF128 $1, Y, T \
	VADDPS       T, X, X  \
	VMOVHLPS     X, X, T  \
	VADDPS       T, X, X  \
	VMOVSHDUP    X, T     \
	VADDSS       T, X, X

// BCAST32 fills the 32-bit lanes of Y (X its low half) with the constant c.
#define BCAST32(c, X, Y) \
	MOVL         c, AX \
	VMOVD        AX, X \
	VPBROADCASTD X, Y

// T40_TOK2 prepares blocks A (P), B (P+34) of one token: values 0..15 of
// A|B into L, 16..31 into H, -Σ8·x and dx lanes into slot k of the frame.
#define T40_TOK2(P, L, XL, H, XH, k) \
	VMOVDQU      2(P), XL           \
	VINSERTI128  $1, 36(P), L, L    \
	VMOVDQU      18(P), XH          \
	VINSERTI128  $1, 52(P), H, H    \
	VPXOR        Y10, Y10, Y10      \
	VPDPBUSD     L, Y14, Y10        \
	VPDPBUSD     H, Y14, Y10        \
	VPXOR        Y12, Y12, Y12      \
	VPSUBD       Y10, Y12, Y10      \
	VMOVDQU      Y10, (64*k)(SP)    \
	MOVWLZX      (P), AX            \
	MOVWLZX      34(P), BX          \
	VBROADCASTSS (R8)(AX*4), X12    \
	VBROADCASTSS (R8)(BX*4), X10    \
	VINSERTF128  $1, X10, Y12, Y12  \
	VMOVUPS      Y12, (64*k+32)(SP)

// T40_TOK1 is T40_TOK2 for the single block A (B's lanes zero, dx in
// all eight lanes).
#define T40_TOK1(P, L, XL, H, XH, k) \
	VMOVDQU      2(P), XL           \
	VMOVDQU      18(P), XH          \
	VPXOR        Y10, Y10, Y10      \
	VPDPBUSD     L, Y14, Y10        \
	VPDPBUSD     H, Y14, Y10        \
	VPXOR        Y12, Y12, Y12      \
	VPSUBD       Y10, Y12, Y10      \
	VMOVDQU      Y10, (64*k)(SP)    \
	MOVWLZX      (P), AX            \
	VBROADCASTSS (R8)(AX*4), Y12    \
	VMOVUPS      Y12, (64*k+32)(SP)

// T40_W2 unpacks blocks A (R), B (R+18) of a row: low nibbles into Y8,
// high nibbles into Y9, dw lanes into Y11.
#define T40_W2(R) \
	VMOVDQU      2(R), X8           \
	VINSERTI128  $1, 20(R), Y8, Y8  \
	MOVWLZX      (R), AX            \
	MOVWLZX      18(R), BX          \
	VBROADCASTSS (R8)(AX*4), X11    \
	VBROADCASTSS (R8)(BX*4), X15    \
	VINSERTF128  $1, X15, Y11, Y11  \
	VPSRLW       $4, Y8, Y9         \
	VPAND        Y13, Y8, Y8        \
	VPAND        Y13, Y9, Y9

// T40_W1 is T40_W2 for block A alone.
#define T40_W1(R) \
	VMOVDQU      2(R), X8           \
	MOVWLZX      (R), AX            \
	VBROADCASTSS (R8)(AX*4), Y11    \
	VPSRLW       $4, Y8, Y9         \
	VPAND        Y13, Y8, Y8        \
	VPAND        Y13, Y9, Y9

// T40_DOT adds the unpacked row times the token in L, H (frame slot k)
// into ACC.
#define T40_DOT(L, H, k, ACC) \
	VMOVDQU     (64*k)(SP), Y10         \
	VPDPBUSD    L, Y8, Y10              \
	VPDPBUSD    H, Y9, Y10              \
	VCVTDQ2PS   Y10, Y10                \
	VMULPS      (64*k+32)(SP), Y11, Y12 \
	VFMADD231PS Y12, Y10, ACC

// T40_ROW multiplies row R (unpacked by W) with the four tokens.
#define T40_ROW(W, R, A0, A1, A2, A3) \
	W(R)                       \
	T40_DOT(Y0, Y1, 0, A0)     \
	T40_DOT(Y2, Y3, 1, A1)     \
	T40_DOT(Y4, Y5, 2, A2)     \
	T40_DOT(Y6, Y7, 3, A3)

// T40_STEP is one step of W/TOK (two blocks or one) for the whole tile.
#define T40_STEP(W, TOK) \
	TOK(DI, Y0, X0, Y1, X1, 0)    \
	TOK(R12, Y2, X2, Y3, X3, 1)   \
	TOK(R13, Y4, X4, Y5, X5, 2)   \
	TOK(DX, Y6, X6, Y7, X7, 3)    \
	T40_ROW(W, SI, Y16, Y17, Y18, Y19)  \
	T40_ROW(W, R9, Y20, Y21, Y22, Y23)  \
	T40_ROW(W, R10, Y24, Y25, Y26, Y27) \
	T40_ROW(W, R11, Y28, Y29, Y30, Y31)

// TILE_OUT stores the lane sum of accumulator A at (4i)(P).
#define TILE_OUT(A, P, i) \
	VMOVAPS A, Y0        \
	HSUM8(Y0, X0, X1)    \
	VMOVSS  X0, (4*i)(P)

// TILE_OUT16 stores all sixteen accumulators (after TILE_DST).
#define TILE_OUT16 \
	TILE_OUT(Y16, DI, 0)  \
	TILE_OUT(Y17, R12, 0) \
	TILE_OUT(Y18, R13, 0) \
	TILE_OUT(Y19, DX, 0)  \
	TILE_OUT(Y20, DI, 1)  \
	TILE_OUT(Y21, R12, 1) \
	TILE_OUT(Y22, R13, 1) \
	TILE_OUT(Y23, DX, 1)  \
	TILE_OUT(Y24, DI, 2)  \
	TILE_OUT(Y25, R12, 2) \
	TILE_OUT(Y26, R13, 2) \
	TILE_OUT(Y27, DX, 2)  \
	TILE_OUT(Y28, DI, 3)  \
	TILE_OUT(Y29, R12, 3) \
	TILE_OUT(Y30, R13, 3) \
	TILE_OUT(Y31, DX, 3)

// TILE_ZERO16 clears the sixteen accumulators.
#define TILE_ZERO16 \
	VPXORD Y16, Y16, Y16 \
	VPXORD Y17, Y17, Y17 \
	VPXORD Y18, Y18, Y18 \
	VPXORD Y19, Y19, Y19 \
	VPXORD Y20, Y20, Y20 \
	VPXORD Y21, Y21, Y21 \
	VPXORD Y22, Y22, Y22 \
	VPXORD Y23, Y23, Y23 \
	VPXORD Y24, Y24, Y24 \
	VPXORD Y25, Y25, Y25 \
	VPXORD Y26, Y26, Y26 \
	VPXORD Y27, Y27, Y27 \
	VPXORD Y28, Y28, Y28 \
	VPXORD Y29, Y29, Y29 \
	VPXORD Y30, Y30, Y30 \
	VPXORD Y31, Y31, Y31

// TILE_PTRS sets SI, R9, R10, R11 to the four rows and DI, R12, R13, DX
// to the four tokens.
#define TILE_PTRS \
	MOVQ w+0(FP), SI            \
	MOVQ rowBytes+8(FP), AX     \
	LEAQ (SI)(AX*1), R9         \
	LEAQ (R9)(AX*1), R10        \
	LEAQ (R10)(AX*1), R11       \
	MOVQ x+16(FP), DI           \
	MOVQ xStride+24(FP), AX     \
	LEAQ (DI)(AX*1), R12        \
	LEAQ (R12)(AX*1), R13       \
	LEAQ (R13)(AX*1), DX

// TILE_DST sets DI, R12, R13, DX to the dst rows of the four tokens.
#define TILE_DST \
	MOVQ dst+48(FP), DI         \
	MOVQ dstStride+56(FP), AX   \
	SHLQ $2, AX                 \
	LEAQ (DI)(AX*1), R12        \
	LEAQ (R12)(AX*1), R13       \
	LEAQ (R13)(AX*1), DX

// func tile4x4Q4_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile4x4Q4_0VNNI(SB), NOSPLIT, $256-64
	TILE_PTRS
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
	BCAST32($0x08080808, X14, Y14)
	TILE_ZERO16
	CMPQ CX, $2
	JB   q40t_one

q40t_two:
	T40_STEP(T40_W2, T40_TOK2)
	ADDQ $36, SI
	ADDQ $36, R9
	ADDQ $36, R10
	ADDQ $36, R11
	ADDQ $68, DI
	ADDQ $68, R12
	ADDQ $68, R13
	ADDQ $68, DX
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  q40t_two

q40t_one:
	TESTQ CX, CX
	JZ    q40t_done
	T40_STEP(T40_W1, T40_TOK1)

q40t_done:
	TILE_DST
	TILE_OUT16
	VZEROUPPER
	RET

