//go:build amd64

#include "textflag.h"

// Q8_0 tile kernels (see tiles.go). Per (row, token) they perform the
// float operations of the one-row kernels in dot_legacy_amd64.s, in the
// same order: each block's 32 products are summed exactly into eight int32
// lanes (lane l: values 4l..4l+3), converted to float32 and added, times
// dw·dx, with one FMA into the pair's one accumulator, block after block;
// its lanes are summed at the end as HSUM8 does.
//
// tile4x4Q8_0VNNI: 4 weight rows × 4 tokens, the 16 accumulators in
// Y16..Y31 (row i, token j: Y(16+4i+j)), which need AVX-512 VL. The lanes'
// integer sums are formed differently from the one-row kernel, which
// changes nothing as they are exact: the weight bytes are made unsigned
// (w+128, a VPXOR with 0x80, once per row and block) and every lane
// starts at -128·Σx of its four activations, prepared once per token and
// block (Y4..Y7): VPDPBUSD then adds Σ(w+128)·x, leaving Σw·x. The 16 scale
// products dw·dx of a block are computed four at a time (the four rows'
// dw times one token's dx) into the frame, and each FMA takes its own
// broadcast from there (an EVEX embedded broadcast), so that a (row,
// token) pair costs a VPDPBUSD, a conversion and an FMA.
//
// func tile4x4Q8_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
// Registers: SI, R10, R11, R12 the rows; tokens at DI, DI+BX, DI+2·BX,
// DI+DX (BX = xStride, DX = 3·xStride); CX the blocks left; R8 the fp16
// table; Y0..Y3 the rows' offset quants; Y4..Y7 the tokens' -128·Σx
// lanes; Y10, Y11, Y14, Y15 the tokens' quants; Y8, Y9 scratch; Y12
// bytes 0x80; X13 the rows' dw. Frame: dw_i·dx_j at 16j+4i(SP).

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

// The addresses of token j's block, o bytes in.
#define TK0(o) o(DI)
#define TK1(o) o(DI)(BX*1)
#define TK2(o) o(DI)(BX*2)
#define TK3(o) o(DI)(DX*1)

// T44_TOK prepares token j's block: its quants into X, -128·Σx lanes
// into OFF, dw·dx of the four rows into the frame.
#define T44_TOK(TK, j, X, OFF) \
	VMOVDQU      TK(2), X           \
	VPXOR        Y8, Y8, Y8         \
	VPDPBUSD     X, Y12, Y8         \
	VPXOR        OFF, OFF, OFF      \
	VPSUBD       Y8, OFF, OFF       \
	MOVWLZX      TK(0), AX          \
	VMULPS.BCST  (R8)(AX*4), X13, X9 \
	VMOVUPS      X9, (16*j)(SP)

// T44_DOT adds row i's block (W) times token j's block into ACC.
#define T44_DOT(X, W, OFF, i, j, ACC) \
	VMOVDQA          OFF, Y8            \
	VPDPBUSD         X, W, Y8           \
	VCVTDQ2PS        Y8, Y8             \
	VFMADD231PS.BCST (16*j+4*i)(SP), Y8, ACC

#define T44_ROW(W, i, A0, A1, A2, A3) \
	T44_DOT(Y10, W, Y4, i, 0, A0) \
	T44_DOT(Y11, W, Y5, i, 1, A1) \
	T44_DOT(Y14, W, Y6, i, 2, A2) \
	T44_DOT(Y15, W, Y7, i, 3, A3)

// T44_OUT stores the lane sum of ACC at o(P).
#define T44_OUT(ACC, o, P) \
	VMOVAPS ACC, Y0      \
	HSUM8(Y0, X0, X1)    \
	VMOVSS  X0, o(P)

// func tile4x4Q8_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile4x4Q8_0VNNI(SB), NOSPLIT, $64-64
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), AX
	LEAQ (SI)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	LEAQ (R11)(AX*1), R12
	MOVQ x+16(FP), DI
	MOVQ xStride+24(FP), BX
	LEAQ (BX)(BX*2), DX
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	BCAST32($0x80808080, X12, Y12)
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
	TESTQ  CX, CX
	JZ     t44_done

t44_loop:
	MOVWLZX   (SI), AX
	VMOVSS    (R8)(AX*4), X13
	MOVWLZX   (R10), AX
	VINSERTPS $0x10, (R8)(AX*4), X13, X13
	MOVWLZX   (R11), AX
	VINSERTPS $0x20, (R8)(AX*4), X13, X13
	MOVWLZX   (R12), AX
	VINSERTPS $0x30, (R8)(AX*4), X13, X13
	T44_TOK(TK0, 0, Y10, Y4)
	T44_TOK(TK1, 1, Y11, Y5)
	T44_TOK(TK2, 2, Y14, Y6)
	T44_TOK(TK3, 3, Y15, Y7)
	VPXOR 2(SI), Y12, Y0
	VPXOR 2(R10), Y12, Y1
	VPXOR 2(R11), Y12, Y2
	VPXOR 2(R12), Y12, Y3
	T44_ROW(Y0, 0, Y16, Y17, Y18, Y19)
	T44_ROW(Y1, 1, Y20, Y21, Y22, Y23)
	T44_ROW(Y2, 2, Y24, Y25, Y26, Y27)
	T44_ROW(Y3, 3, Y28, Y29, Y30, Y31)
	ADDQ $34, SI
	ADDQ $34, R10
	ADDQ $34, R11
	ADDQ $34, R12
	ADDQ $34, DI
	DECQ CX
	JNZ  t44_loop

t44_done:
	MOVQ dst+48(FP), DI
	MOVQ dstStride+56(FP), AX
	SHLQ $2, AX
	LEAQ (DI)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	LEAQ (R11)(AX*1), R12
	T44_OUT(Y16, 0, DI)
	T44_OUT(Y17, 0, R10)
	T44_OUT(Y18, 0, R11)
	T44_OUT(Y19, 0, R12)
	T44_OUT(Y20, 4, DI)
	T44_OUT(Y21, 4, R10)
	T44_OUT(Y22, 4, R11)
	T44_OUT(Y23, 4, R12)
	T44_OUT(Y24, 8, DI)
	T44_OUT(Y25, 8, R10)
	T44_OUT(Y26, 8, R11)
	T44_OUT(Y27, 8, R12)
	T44_OUT(Y28, 12, DI)
	T44_OUT(Y29, 12, R10)
	T44_OUT(Y30, 12, R11)
	T44_OUT(Y31, 12, R12)
	VZEROUPPER
	RET

// tile8x4Q8_0VNNI: 8 weight rows × 4 tokens in 512-bit registers, two
// tokens per register (lanes 0..7 the even token, 8..15 the odd one), so
// that each instruction serves two (row, token) pairs; each 256-bit half
// performs exactly the operations tile4x4Q8_0VNNI performs for its pair:
// offset weight quants (the row's block in both halves, XOR 0x80), lanes
// started at -128·Σx of the pair's token, one VPDPBUSD, a conversion and
// an FMA with dw·dx (dw broadcast times the two tokens' dx). Zen 4 runs a
// 512-bit instruction as two 256-bit halves, so this saves instructions
// (decode, dispatch, retire), not arithmetic.
//
// Registers: SI the first row, R9 rowBytes, R10 the fourth row, R11 the
// seventh (rows at SI, SI+R9, SI+2·R9, R10, R10+R9, R10+2·R9, R11,
// R11+R9); tokens, CX, R8 as in tile4x4Q8_0VNNI. Z0, Z1 the token pairs'
// quants, Z2, Z3 their -128·Σx lanes, Z4, Z5 their dx (eight lanes each),
// Z6 bytes 0x80, Z7/Z12 the row's offset quants, Z8, Z9 / Z13, Z14 the
// row's dw·dx, Z10, Z11 scratch. Accumulators Z16..Z31: row i, token pair
// p in Z(16+2i+p).

// T84_PAIR loads tokens A and B's blocks into X (quants; XY its low
// half), OFF (-128·Σx lanes) and D (dx; DY its low half).
#define T84_PAIR(TA, TB, X, XY, OFF, D, DY) \
	VMOVDQU       TA(2), XY                  \
	VINSERTI64X4  $1, TB(2), X, X            \
	VPXORD        Z10, Z10, Z10              \
	VPDPBUSD      X, Z6, Z10                 \
	VPXORD        OFF, OFF, OFF              \
	VPSUBD        Z10, OFF, OFF              \
	MOVWLZX       TA(0), AX                  \
	VBROADCASTSS  (R8)(AX*4), DY             \
	MOVWLZX       TB(0), AX                  \
	VBROADCASTSS  (R8)(AX*4), Y11            \
	VINSERTF64X4  $1, Y11, D, D

// T84_DOT adds the row's block (W) times token pair p's block into ACC,
// S the pair's dw·dx.
#define T84_DOT(X, OFF, W, S, T, ACC) \
	VMOVDQA64    OFF, T       \
	VPDPBUSD     X, W, T      \
	VCVTDQ2PS    T, T         \
	VFMADD231PS  S, T, ACC

// T84_ROW: the row's block (dw at R, quants at RQ) with both token pairs.
#define T84_ROW(R, RQ, W, S0, S1, A0, A1) \
	MOVWLZX          R, AX              \
	VBROADCASTI64X4  RQ, W              \
	VPXORD           Z6, W, W           \
	VMULPS.BCST      (R8)(AX*4), Z4, S0 \
	VMULPS.BCST      (R8)(AX*4), Z5, S1 \
	T84_DOT(Z0, Z2, W, S0, Z10, A0)     \
	T84_DOT(Z1, Z3, W, S1, Z11, A1)

// T84_OUT stores the lane sums of ACC's halves at o(PA) and o(PB).
#define T84_OUT(ACC, YACC, o, PA, PB) \
	VMOVAPS       YACC, Y0     \
	HSUM8(Y0, X0, X1)          \
	VMOVSS        X0, o(PA)    \
	VEXTRACTF64X4 $1, ACC, Y0  \
	HSUM8(Y0, X0, X1)          \
	VMOVSS        X0, o(PB)

// func tile8x4Q8_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile8x4Q8_0VNNI(SB), NOSPLIT, $0-64
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), R9
	LEAQ (R9)(R9*2), AX
	LEAQ (SI)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	MOVQ x+16(FP), DI
	MOVQ xStride+24(FP), BX
	LEAQ (BX)(BX*2), DX
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	MOVL $0x80808080, AX
	VPBROADCASTD AX, Z6
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31
	TESTQ  CX, CX
	JZ     t84_done

t84_loop:
	T84_PAIR(TK0, TK1, Z0, Y0, Z2, Z4, Y4)
	T84_PAIR(TK2, TK3, Z1, Y1, Z3, Z5, Y5)
	T84_ROW((SI), 2(SI), Z7, Z8, Z9, Z16, Z17)
	T84_ROW((SI)(R9*1), 2(SI)(R9*1), Z12, Z13, Z14, Z18, Z19)
	T84_ROW((SI)(R9*2), 2(SI)(R9*2), Z7, Z8, Z9, Z20, Z21)
	T84_ROW((R10), 2(R10), Z12, Z13, Z14, Z22, Z23)
	T84_ROW((R10)(R9*1), 2(R10)(R9*1), Z7, Z8, Z9, Z24, Z25)
	T84_ROW((R10)(R9*2), 2(R10)(R9*2), Z12, Z13, Z14, Z26, Z27)
	T84_ROW((R11), 2(R11), Z7, Z8, Z9, Z28, Z29)
	T84_ROW((R11)(R9*1), 2(R11)(R9*1), Z12, Z13, Z14, Z30, Z31)
	ADDQ $34, SI
	ADDQ $34, R10
	ADDQ $34, R11
	ADDQ $34, DI
	DECQ CX
	JNZ  t84_loop

t84_done:
	MOVQ dst+48(FP), DI
	MOVQ dstStride+56(FP), AX
	SHLQ $2, AX
	LEAQ (DI)(AX*1), R10
	LEAQ (R10)(AX*1), R11
	LEAQ (R11)(AX*1), R12
	T84_OUT(Z16, Y16, 0, DI, R10)
	T84_OUT(Z17, Y17, 0, R11, R12)
	T84_OUT(Z18, Y18, 4, DI, R10)
	T84_OUT(Z19, Y19, 4, R11, R12)
	T84_OUT(Z20, Y20, 8, DI, R10)
	T84_OUT(Z21, Y21, 8, R11, R12)
	T84_OUT(Z22, Y22, 12, DI, R10)
	T84_OUT(Z23, Y23, 12, R11, R12)
	T84_OUT(Z24, Y24, 16, DI, R10)
	T84_OUT(Z25, Y25, 16, R11, R12)
	T84_OUT(Z26, Y26, 20, DI, R10)
	T84_OUT(Z27, Y27, 20, R11, R12)
	T84_OUT(Z28, Y28, 24, DI, R10)
	T84_OUT(Z29, Y29, 24, R11, R12)
	T84_OUT(Z30, Y30, 28, DI, R10)
	T84_OUT(Z31, Y31, 28, R11, R12)
	VZEROUPPER
	RET

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
