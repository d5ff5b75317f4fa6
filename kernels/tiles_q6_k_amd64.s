//go:build amd64

#include "textflag.h"

// Q6_K tile kernel (see tiles.go): 2 weight rows × 4 tokens. Per (row,
// token) it performs the operations of dotQ6_KAVX2 in
// dot_kquants_amd64.s: per super-block the integer sum of the 256
// products of the stored 6-bit quants (each group of 16 times its int8
// scale) minus 32·Σ scale·bsum, exact in eight int32 lanes (lane l holds
// the same products there; only the order of exact integer additions
// differs), converted to float32 and added, times d·x.d, into the pair's
// accumulator with one FMA; the result is its lane sum (HSUM8).
//
// Per super-block, each row's quants are unpacked once per half (128
// values) for the four tokens, whose quants and group sums are read as
// memory operands.
//
// Registers: SI, DX the rows; DI, DI+R13, DI+2·R13, R12+2·R13 (R12 =
// DI+R13) the tokens; CX the super-blocks left; R8 the fp16 table; AX
// scratch. Y0, Y1, Y15 scratch; Y2..Y5 a half's quants (values
// 128c+32k.. in Y(2+k)); Y6..Y9 their scales (int16); Y10 the row's 16
// scales as int16, X11 as int8; Y12 bytes 0x0f; Y13 bytes 0x30; Y14 the
// half's qh bytes. Pair (row i, token j): float accumulator Y(16+4i+j),
// integer sums Y(24+4i+j).
//
// func tile2x4Q6_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
// func tile2x4Q6_KVNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

// t6kScale<>+16i: VPSHUFB control that makes bytes 0..7 copies of byte
// 2i and bytes 8..15 copies of byte 2i+1.
DATA t6kScale<>+0(SB)/8, $0x0000000000000000
DATA t6kScale<>+8(SB)/8, $0x0101010101010101
DATA t6kScale<>+16(SB)/8, $0x0202020202020202
DATA t6kScale<>+24(SB)/8, $0x0303030303030303
DATA t6kScale<>+32(SB)/8, $0x0404040404040404
DATA t6kScale<>+40(SB)/8, $0x0505050505050505
DATA t6kScale<>+48(SB)/8, $0x0606060606060606
DATA t6kScale<>+56(SB)/8, $0x0707070707070707
DATA t6kScale<>+64(SB)/8, $0x0808080808080808
DATA t6kScale<>+72(SB)/8, $0x0909090909090909
DATA t6kScale<>+80(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA t6kScale<>+88(SB)/8, $0x0b0b0b0b0b0b0b0b
DATA t6kScale<>+96(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA t6kScale<>+104(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA t6kScale<>+112(SB)/8, $0x0e0e0e0e0e0e0e0e
DATA t6kScale<>+120(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL t6kScale<>(SB), RODATA|NOPTR, $128

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

// T6K_SCALES loads the 16 scales of the row at R into X11 (int8) and
// Y10 (int16).
#define T6K_SCALES(R) \
	VMOVDQU   192(R), X11 \
	VPMOVSXBW X11, Y10

// T6K_START sets SUM to -32·Σ scale·bsum of the row (Y10) and token T.
#define T6K_START(T, SUM) \
	VPMADDWD  (260)T, Y10, Y0 \
	VPSLLD    $5, Y0, Y0      \
	VPXORD    SUM, SUM, SUM   \
	VPSUBD    Y0, SUM, SUM

// T6K_HALF unpacks half c of the row at R: value 128c+32k+l has the low
// 4 bits of ql byte 64c+l (k=0: low nibble, k=2: high nibble) or 64c+32+l
// (k=1, 3) and, as bits 4-5, bits 2k..2k+1 of qh byte 32c+l.
#define T6K_HALF(R, c) \
	VMOVDQU    (64*c)(R), Y2       \
	VMOVDQU    (64*c+32)(R), Y3    \
	VMOVDQU    (128+32*c)(R), Y14  \
	VPSRLW     $4, Y2, Y4          \
	VPSRLW     $4, Y3, Y5          \
	VPAND      Y12, Y2, Y2         \
	VPAND      Y12, Y3, Y3         \
	VPAND      Y12, Y4, Y4         \
	VPAND      Y12, Y5, Y5         \
	VPSLLW     $4, Y14, Y15        \
	VPAND      Y13, Y15, Y15       \
	VPOR       Y15, Y2, Y2         \
	VPSLLW     $2, Y14, Y15        \
	VPAND      Y13, Y15, Y15       \
	VPOR       Y15, Y3, Y3         \
	VPAND      Y13, Y14, Y15       \
	VPOR       Y15, Y4, Y4         \
	VPSRLW     $2, Y14, Y15        \
	VPAND      Y13, Y15, Y15       \
	VPOR       Y15, Y5, Y5         \
	VPSHUFB    t6kScale<>+(64*c)(SB), X11, X6    \
	VPMOVSXBW  X6, Y6                            \
	VPSHUFB    t6kScale<>+(64*c+16)(SB), X11, X7 \
	VPMOVSXBW  X7, Y7                            \
	VPSHUFB    t6kScale<>+(64*c+32)(SB), X11, X8 \
	VPMOVSXBW  X8, Y8                            \
	VPSHUFB    t6kScale<>+(64*c+48)(SB), X11, X9 \
	VPMOVSXBW  X9, Y9

// T6K_DOT adds half c of the unpacked row times token T into SUM.
#define T6K_DOT(T, c, SUM) \
	VPMADDUBSW (4+128*c)T, Y2, Y0    \
	VPMADDWD   Y6, Y0, Y0            \
	VPADDD     Y0, SUM, SUM          \
	VPMADDUBSW (36+128*c)T, Y3, Y1   \
	VPMADDWD   Y7, Y1, Y1            \
	VPADDD     Y1, SUM, SUM          \
	VPMADDUBSW (68+128*c)T, Y4, Y0   \
	VPMADDWD   Y8, Y0, Y0            \
	VPADDD     Y0, SUM, SUM          \
	VPMADDUBSW (100+128*c)T, Y5, Y1  \
	VPMADDWD   Y9, Y1, Y1            \
	VPADDD     Y1, SUM, SUM

// T6K_DOTVNNI is T6K_DOT with VPDPWSSD (AVX-512 VNNI), which multiplies
// the int16 pairs by the scales and adds them into SUM in one
// instruction: the same exact integer sums.
#define T6K_DOTVNNI(T, c, SUM) \
	VPMADDUBSW (4+128*c)T, Y2, Y0    \
	VPDPWSSD   Y6, Y0, SUM           \
	VPMADDUBSW (36+128*c)T, Y3, Y1   \
	VPDPWSSD   Y7, Y1, SUM           \
	VPMADDUBSW (68+128*c)T, Y4, Y0   \
	VPDPWSSD   Y8, Y0, SUM           \
	VPMADDUBSW (100+128*c)T, Y5, Y1  \
	VPDPWSSD   Y9, Y1, SUM

// T6K_FINISH adds SUM of the row at R and token T, times d·x.d, into ACC.
#define T6K_FINISH(R, T, SUM, ACC) \
	VCVTDQ2PS    SUM, SUM         \
	MOVWLZX      208(R), AX       \
	VMOVSS       (R8)(AX*4), X0   \
	VMULSS       (0)T, X0, X0     \
	VBROADCASTSS X0, Y0           \
	VFMADD231PS  Y0, SUM, ACC

// T6K_ROW0 multiplies row 0 with the four tokens, DOT being T6K_DOT or
// T6K_DOTVNNI.
#define T6K_ROW0(DOT) \
	T6K_SCALES(SI) \
	T6K_START((DI), Y24) \
	T6K_START((DI)(R13*1), Y25) \
	T6K_START((DI)(R13*2), Y26) \
	T6K_START((R12)(R13*2), Y27) \
	T6K_HALF(SI, 0) \
	DOT((DI), 0, Y24) \
	DOT((DI)(R13*1), 0, Y25) \
	DOT((DI)(R13*2), 0, Y26) \
	DOT((R12)(R13*2), 0, Y27) \
	T6K_HALF(SI, 1) \
	DOT((DI), 1, Y24) \
	DOT((DI)(R13*1), 1, Y25) \
	DOT((DI)(R13*2), 1, Y26) \
	DOT((R12)(R13*2), 1, Y27) \
	T6K_FINISH(SI, (DI), Y24, Y16) \
	T6K_FINISH(SI, (DI)(R13*1), Y25, Y17) \
	T6K_FINISH(SI, (DI)(R13*2), Y26, Y18) \
	T6K_FINISH(SI, (R12)(R13*2), Y27, Y19)

// T6K_ROW1 multiplies row 1 with the four tokens.
#define T6K_ROW1(DOT) \
	T6K_SCALES(DX) \
	T6K_START((DI), Y28) \
	T6K_START((DI)(R13*1), Y29) \
	T6K_START((DI)(R13*2), Y30) \
	T6K_START((R12)(R13*2), Y31) \
	T6K_HALF(DX, 0) \
	DOT((DI), 0, Y28) \
	DOT((DI)(R13*1), 0, Y29) \
	DOT((DI)(R13*2), 0, Y30) \
	DOT((R12)(R13*2), 0, Y31) \
	T6K_HALF(DX, 1) \
	DOT((DI), 1, Y28) \
	DOT((DI)(R13*1), 1, Y29) \
	DOT((DI)(R13*2), 1, Y30) \
	DOT((R12)(R13*2), 1, Y31) \
	T6K_FINISH(DX, (DI), Y28, Y20) \
	T6K_FINISH(DX, (DI)(R13*1), Y29, Y21) \
	T6K_FINISH(DX, (DI)(R13*2), Y30, Y22) \
	T6K_FINISH(DX, (R12)(R13*2), Y31, Y23)

// T6K_ENTER loads the arguments and clears the accumulators.
#define T6K_ENTER \
	MOVQ w+0(FP), SI \
	MOVQ rowBytes+8(FP), AX \
	LEAQ (SI)(AX*1), DX \
	MOVQ x+16(FP), DI \
	MOVQ xStride+24(FP), R13 \
	LEAQ (DI)(R13*1), R12 \
	MOVQ nb+32(FP), CX \
	MOVQ tab+40(FP), R8 \
	BCAST32($0x0f0f0f0f, X12, Y12) \
	BCAST32($0x30303030, X13, Y13) \
	VPXORD Y16, Y16, Y16 \
	VPXORD Y17, Y17, Y17 \
	VPXORD Y18, Y18, Y18 \
	VPXORD Y19, Y19, Y19 \
	VPXORD Y20, Y20, Y20 \
	VPXORD Y21, Y21, Y21 \
	VPXORD Y22, Y22, Y22 \
	VPXORD Y23, Y23, Y23

// T6K_STORE writes each pair's lane sum to dst.
#define T6K_STORE \
	MOVQ dst+48(FP), DI \
	MOVQ dstStride+56(FP), R13 \
	SHLQ $2, R13 \
	LEAQ (DI)(R13*1), R12 \
	VMOVAPS Y16, Y0 \
	HSUM8(Y0, X0, X1) \
	VMOVSS X0, (0)(DI) \
	VMOVAPS Y17, Y0 \
	HSUM8(Y0, X0, X1) \
	VMOVSS X0, (0)(DI)(R13*1) \
	VMOVAPS Y18, Y0 \
	HSUM8(Y0, X0, X1) \
	VMOVSS X0, (0)(DI)(R13*2) \
	VMOVAPS Y19, Y0 \
	HSUM8(Y0, X0, X1) \
	VMOVSS X0, (0)(R12)(R13*2) \
	VMOVAPS Y20, Y0 \
	HSUM8(Y0, X0, X1) \
	VMOVSS X0, (4)(DI) \
	VMOVAPS Y21, Y0 \
	HSUM8(Y0, X0, X1) \
	VMOVSS X0, (4)(DI)(R13*1) \
	VMOVAPS Y22, Y0 \
	HSUM8(Y0, X0, X1) \
	VMOVSS X0, (4)(DI)(R13*2) \
	VMOVAPS Y23, Y0 \
	HSUM8(Y0, X0, X1) \
	VMOVSS X0, (4)(R12)(R13*2)

// func tile2x4Q6_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile2x4Q6_KAVX512(SB), NOSPLIT, $0-64
	T6K_ENTER
	TESTQ CX, CX
	JZ    q6kt_done

q6kt_block:
	T6K_ROW0(T6K_DOT)
	T6K_ROW1(T6K_DOT)
	ADDQ $210, SI
	ADDQ $210, DX
	ADDQ $292, DI
	ADDQ $292, R12
	DECQ CX
	JNZ  q6kt_block

q6kt_done:
	T6K_STORE
	VZEROUPPER
	RET

// func tile2x4Q6_KVNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile2x4Q6_KVNNI(SB), NOSPLIT, $0-64
	T6K_ENTER
	TESTQ CX, CX
	JZ    q6kv_done

q6kv_block:
	T6K_ROW0(T6K_DOTVNNI)
	T6K_ROW1(T6K_DOTVNNI)
	ADDQ $210, SI
	ADDQ $210, DX
	ADDQ $292, DI
	ADDQ $292, R12
	DECQ CX
	JNZ  q6kv_block

q6kv_done:
	T6K_STORE
	VZEROUPPER
	RET
