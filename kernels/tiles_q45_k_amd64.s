//go:build amd64

#include "textflag.h"

// Q4_K and Q5_K tile kernels (see tiles.go): 2 weight rows × 4 tokens.
// Per (row, token) they perform the operations of dotQ5_KAVX2 in
// dot_kquants_amd64.s (ggml's vec_dot_q5_K_q8_K): per super-block the
// integer sums of the 256 products, each group of 32 times its 6-bit
// scale, exact in eight int32 lanes (lane l holds the same products
// there; only the order of exact integer additions differs), converted
// to float32 and fused, times d·x.d, into the pair's accumulator; the
// mins' exact integer sum Σ min·bsum fused, times -dmin·x.d, into a
// scalar; the result is the lane sum of the first plus the second.
//
// Per super-block, each token's group sums (bsums added in pairs) are
// formed once into the frame; each row's scales and mins are unpacked
// once, and each of its four 64-value parts (nibbles split, scales
// spread) once for the four tokens, whose quants are read as memory
// operands.
//
// Registers: SI, DX the rows; DI, DI+R13, DI+2·R13, R12+2·R13 (R12 =
// DI+R13) the tokens; CX the super-blocks left; R8 the fp16 table; AX,
// BX, R9..R11 scratch. Y0, Y1 scratch; Y2, Y3 a part's low and high
// quants (nibbles, with Q5_K's fifth bits); Y4, Y5 their scales; Y6 the row's eight scales (int16, in both
// halves); X7 its eight mins. Pair (row i, token j): float accumulator
// Y(8+4i+j), integer sums Y(16+4i+j), mins accumulator X(24+4i+j).
// Frame: token j's group sums at 16j(SP).
//
// func tile2x4Q4_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
// func tile2x4Q5_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
// func tile2x4Q5_KVNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

// t4kScale<>+32i: VPSHUFB control that copies int16 lane i of each
// 128-bit half to all its lanes.
DATA t4kScale<>+0(SB)/8, $0x0100010001000100
DATA t4kScale<>+8(SB)/8, $0x0100010001000100
DATA t4kScale<>+16(SB)/8, $0x0100010001000100
DATA t4kScale<>+24(SB)/8, $0x0100010001000100
DATA t4kScale<>+32(SB)/8, $0x0302030203020302
DATA t4kScale<>+40(SB)/8, $0x0302030203020302
DATA t4kScale<>+48(SB)/8, $0x0302030203020302
DATA t4kScale<>+56(SB)/8, $0x0302030203020302
DATA t4kScale<>+64(SB)/8, $0x0504050405040504
DATA t4kScale<>+72(SB)/8, $0x0504050405040504
DATA t4kScale<>+80(SB)/8, $0x0504050405040504
DATA t4kScale<>+88(SB)/8, $0x0504050405040504
DATA t4kScale<>+96(SB)/8, $0x0706070607060706
DATA t4kScale<>+104(SB)/8, $0x0706070607060706
DATA t4kScale<>+112(SB)/8, $0x0706070607060706
DATA t4kScale<>+120(SB)/8, $0x0706070607060706
DATA t4kScale<>+128(SB)/8, $0x0908090809080908
DATA t4kScale<>+136(SB)/8, $0x0908090809080908
DATA t4kScale<>+144(SB)/8, $0x0908090809080908
DATA t4kScale<>+152(SB)/8, $0x0908090809080908
DATA t4kScale<>+160(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA t4kScale<>+168(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA t4kScale<>+176(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA t4kScale<>+184(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA t4kScale<>+192(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA t4kScale<>+200(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA t4kScale<>+208(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA t4kScale<>+216(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA t4kScale<>+224(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA t4kScale<>+232(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA t4kScale<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA t4kScale<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL t4kScale<>(SB), RODATA|NOPTR, $256

// t4kNibble<>: bytes 0x0f.
DATA t4kNibble<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA t4kNibble<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA t4kNibble<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA t4kNibble<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL t4kNibble<>(SB), RODATA|NOPTR, $32

#define HSUM8(Y, X, T) \
	VEXTRACTF128 $1, Y, T \
	VADDPS       T, X, X  \
	VMOVHLPS     X, X, T  \
	VADDPS       T, X, X  \
	VMOVSHDUP    X, T     \
	VADDSS       T, X, X

// T4K_BSUMS forms the eight group sums of token T into frame slot j.
#define T4K_BSUMS(T, j) \
	VMOVDQU  (260)T, X0       \
	VPHADDW  (276)T, X0, X0   \
	VMOVDQU  X0, (16*j)(SP)

// T4K_SCALES unpacks the scales and mins of the row at R into Y6 (the
// scales as int16 in both halves) and X7 (the mins), as KSCALES_MINS
// does. Scales 0..3 are the low 6 bits of bytes 0..3, mins 0..3 of bytes
// 4..7; scales 4..7 take their low 4 bits from the low nibbles of bytes
// 8..11 and their high 2 bits from the top of bytes 0..3; mins 4..7
// likewise from the high nibbles of bytes 8..11 and the top of bytes 4..7.
#define T4K_SCALES(R) \
	MOVL 4(R), R9            \
	MOVL 8(R), R10           \
	MOVL 12(R), R11          \
	MOVL R9, BX              \
	ANDL $0x3f3f3f3f, BX     \
	MOVL R11, AX             \
	ANDL $0x0f0f0f0f, AX     \
	SHRL $6, R9              \
	ANDL $0x03030303, R9     \
	SHLL $4, R9              \
	ORL  R9, AX              \
	SHLQ $32, AX             \
	ORQ  AX, BX              \
	VMOVQ BX, X6             \
	MOVL R10, BX             \
	ANDL $0x3f3f3f3f, BX     \
	SHRL $4, R11             \
	ANDL $0x0f0f0f0f, R11    \
	SHRL $6, R10             \
	ANDL $0x03030303, R10    \
	SHLL $4, R10             \
	ORL  R10, R11            \
	SHLQ $32, R11            \
	ORQ  R11, BX             \
	VPINSRQ   $1, BX, X6, X6 \
	VPMOVZXBW X6, Y6         \
	VEXTRACTI128 $1, Y6, X7  \
	VPERMQ    $0x44, Y6, Y6

// T4K_MINS does MIN = MIN - dmin·x.d·Σ min·(group sum) with one rounding
// for the row at R (mins in X7) and token T (slot j), as KMINS does.
#define T4K_MINS(R, T, j, MIN) \
	VPMADDWD     (16*j)(SP), X7, X0 \
	VPSHUFD      $0x4e, X0, X1      \
	VPADDD       X1, X0, X0         \
	VPSHUFD      $0xb1, X0, X1      \
	VPADDD       X1, X0, X0         \
	VCVTDQ2PS    X0, X0             \
	MOVWLZX      2(R), AX           \
	VMOVSS       (R8)(AX*4), X1     \
	VMULSS       (0)T, X1, X1       \
	VFNMADD231SS X1, X0, MIN

// T4K_PART unpacks part p (values 64p..64p+63) of the row at R.
#define T4K_PART(R, p) \
	VMOVDQU    (16+32*p)(R), Y2                 \
	VPSRLW     $4, Y2, Y3                       \
	VPAND      t4kNibble<>(SB), Y2, Y2          \
	VPAND      t4kNibble<>(SB), Y3, Y3          \
	VPSHUFB    t4kScale<>+(64*p)(SB), Y6, Y4    \
	VPSHUFB    t4kScale<>+(64*p+32)(SB), Y6, Y5

// T4K_DOT adds part p of the unpacked row times token T into SUM.
#define T4K_DOT(T, p, SUM) \
	VPMADDUBSW (4+64*p)T, Y2, Y0    \
	VPMADDUBSW (36+64*p)T, Y3, Y1   \
	VPMADDWD   Y4, Y0, Y0           \
	VPMADDWD   Y5, Y1, Y1           \
	VPADDD     Y0, SUM, SUM         \
	VPADDD     Y1, SUM, SUM

// T4K_DOTVNNI is T4K_DOT with VPDPWSSD (AVX-512 VNNI), which multiplies
// the int16 pairs by the scales and adds them into SUM in one
// instruction: the same exact integer sums.
#define T4K_DOTVNNI(T, p, SUM) \
	VPMADDUBSW (4+64*p)T, Y2, Y0    \
	VPDPWSSD   Y4, Y0, SUM          \
	VPMADDUBSW (36+64*p)T, Y3, Y1   \
	VPDPWSSD   Y5, Y1, SUM

// T4K_FINISH adds the integer sums SUM of the row at R and token T,
// times d·x.d, into ACC.
#define T4K_FINISH(R, T, SUM, ACC) \
	VCVTDQ2PS    SUM, SUM         \
	MOVWLZX      (R), AX          \
	VMOVSS       (R8)(AX*4), X0   \
	VMULSS       (0)T, X0, X0     \
	VBROADCASTSS X0, Y0           \
	VFMADD231PS  Y0, SUM, ACC

// t5kBit<>: bytes 0x10, the fifth bit of a Q5_K quant.
DATA t5kBit<>+0(SB)/8, $0x1010101010101010
DATA t5kBit<>+8(SB)/8, $0x1010101010101010
DATA t5kBit<>+16(SB)/8, $0x1010101010101010
DATA t5kBit<>+24(SB)/8, $0x1010101010101010
GLOBL t5kBit<>(SB), RODATA|NOPTR, $32

// T5K_PART unpacks part p of the Q5_K row at R, as Q5K_PART does: the
// nibbles at 48+32p, with their fifth bits from qh (at 16): bit 2p (low
// nibbles) and 2p+1 (high nibbles) of qh byte l, moved to bit 4 by SHLO
// $nlo and SHHI $nhi in 16-bit lanes.
#define T5K_PART(R, p, SHLO, nlo, SHHI, nhi) \
	VMOVDQU    (48+32*p)(R), Y2                 \
	VPSRLW     $4, Y2, Y3                       \
	VPAND      t4kNibble<>(SB), Y2, Y2          \
	VPAND      t4kNibble<>(SB), Y3, Y3          \
	VMOVDQU    16(R), Y0                        \
	SHLO       $nlo, Y0, Y1                     \
	VPAND      t5kBit<>(SB), Y1, Y1             \
	VPOR       Y1, Y2, Y2                       \
	SHHI       $nhi, Y0, Y1                     \
	VPAND      t5kBit<>(SB), Y1, Y1             \
	VPOR       Y1, Y3, Y3                       \
	VPSHUFB    t4kScale<>+(64*p)(SB), Y6, Y4    \
	VPSHUFB    t4kScale<>+(64*p+32)(SB), Y6, Y5

// T5K_ROW0 multiplies Q5_K row 0 with the four tokens, DOT being T4K_DOT
// or T4K_DOTVNNI.
#define T5K_ROW0(DOT) \
	T4K_SCALES(SI) \
	T4K_MINS(SI, (DI), 0, X24) \
	T4K_MINS(SI, (DI)(R13*1), 1, X25) \
	T4K_MINS(SI, (DI)(R13*2), 2, X26) \
	T4K_MINS(SI, (R12)(R13*2), 3, X27) \
	VPXORD Y16, Y16, Y16 \
	VPXORD Y17, Y17, Y17 \
	VPXORD Y18, Y18, Y18 \
	VPXORD Y19, Y19, Y19 \
	T5K_PART(SI, 0, VPSLLW, 4, VPSLLW, 3) \
	DOT((DI), 0, Y16) \
	DOT((DI)(R13*1), 0, Y17) \
	DOT((DI)(R13*2), 0, Y18) \
	DOT((R12)(R13*2), 0, Y19) \
	T5K_PART(SI, 1, VPSLLW, 2, VPSLLW, 1) \
	DOT((DI), 1, Y16) \
	DOT((DI)(R13*1), 1, Y17) \
	DOT((DI)(R13*2), 1, Y18) \
	DOT((R12)(R13*2), 1, Y19) \
	T5K_PART(SI, 2, VPSRLW, 0, VPSRLW, 1) \
	DOT((DI), 2, Y16) \
	DOT((DI)(R13*1), 2, Y17) \
	DOT((DI)(R13*2), 2, Y18) \
	DOT((R12)(R13*2), 2, Y19) \
	T5K_PART(SI, 3, VPSRLW, 2, VPSRLW, 3) \
	DOT((DI), 3, Y16) \
	DOT((DI)(R13*1), 3, Y17) \
	DOT((DI)(R13*2), 3, Y18) \
	DOT((R12)(R13*2), 3, Y19) \
	T4K_FINISH(SI, (DI), Y16, Y8) \
	T4K_FINISH(SI, (DI)(R13*1), Y17, Y9) \
	T4K_FINISH(SI, (DI)(R13*2), Y18, Y10) \
	T4K_FINISH(SI, (R12)(R13*2), Y19, Y11)

// T5K_ROW1 multiplies Q5_K row 1 with the four tokens.
#define T5K_ROW1(DOT) \
	T4K_SCALES(DX) \
	T4K_MINS(DX, (DI), 0, X28) \
	T4K_MINS(DX, (DI)(R13*1), 1, X29) \
	T4K_MINS(DX, (DI)(R13*2), 2, X30) \
	T4K_MINS(DX, (R12)(R13*2), 3, X31) \
	VPXORD Y20, Y20, Y20 \
	VPXORD Y21, Y21, Y21 \
	VPXORD Y22, Y22, Y22 \
	VPXORD Y23, Y23, Y23 \
	T5K_PART(DX, 0, VPSLLW, 4, VPSLLW, 3) \
	DOT((DI), 0, Y20) \
	DOT((DI)(R13*1), 0, Y21) \
	DOT((DI)(R13*2), 0, Y22) \
	DOT((R12)(R13*2), 0, Y23) \
	T5K_PART(DX, 1, VPSLLW, 2, VPSLLW, 1) \
	DOT((DI), 1, Y20) \
	DOT((DI)(R13*1), 1, Y21) \
	DOT((DI)(R13*2), 1, Y22) \
	DOT((R12)(R13*2), 1, Y23) \
	T5K_PART(DX, 2, VPSRLW, 0, VPSRLW, 1) \
	DOT((DI), 2, Y20) \
	DOT((DI)(R13*1), 2, Y21) \
	DOT((DI)(R13*2), 2, Y22) \
	DOT((R12)(R13*2), 2, Y23) \
	T5K_PART(DX, 3, VPSRLW, 2, VPSRLW, 3) \
	DOT((DI), 3, Y20) \
	DOT((DI)(R13*1), 3, Y21) \
	DOT((DI)(R13*2), 3, Y22) \
	DOT((R12)(R13*2), 3, Y23) \
	T4K_FINISH(DX, (DI), Y20, Y12) \
	T4K_FINISH(DX, (DI)(R13*1), Y21, Y13) \
	T4K_FINISH(DX, (DI)(R13*2), Y22, Y14) \
	T4K_FINISH(DX, (R12)(R13*2), Y23, Y15)

// ---------------------------------------------------------------- Q4_K
//
// The Q4_K tile follows ggml_gemm_q4_K_8x8_q8_K (dotQ4_KBatch): per 64
// values (two sub-blocks) of each super-block, each (row, token) pair's
// exact integer sum is converted once and fused, times d·x.d, into the
// pair's accumulator, and its mins' sum, times dmin·x.d, into a second;
// the result is the first minus the second. The eight pairs of the tile
// are the eight lanes of one vector (lane 4i+j: row i, token j), so each
// step is one conversion and one FMA for the whole tile: per 64 values,
// the pairs' eight-lane integer sums (Y8..Y15) are reduced to one lane
// each with VPHADDD (a VEX-only instruction, hence the low registers);
// per super-block, the mins' four per-64-value sums of each pair (four
// VPMADDWD, both rows at once) are transposed into four vectors of eight
// pairs.
//
// Registers: Y24 the accumulators, Y25 the mins' accumulators, Y26 and
// Y27 d·x.d and dmin·x.d of the eight pairs; Y6 row 0's scales, Y16 row
// 1's; Y7 the mins of row 0 (low half) and row 1 (high half). Frame:
// token j's group sums at 16j(SP), row 1's mins at 64(SP).

// Q4T_PART unpacks part p of the row at R with the scales in SC.
#define Q4T_PART(R, p, SC) \
	VMOVDQU    (16+32*p)(R), Y2                 \
	VPSRLW     $4, Y2, Y3                       \
	VPAND      t4kNibble<>(SB), Y2, Y2          \
	VPAND      t4kNibble<>(SB), Y3, Y3          \
	VPSHUFB    t4kScale<>+(64*p)(SB), SC, Y4    \
	VPSHUFB    t4kScale<>+(64*p+32)(SB), SC, Y5

// Q4T_DOT sets SUM to part p of the unpacked row times token T.
#define Q4T_DOT(T, p, SUM) \
	VPMADDUBSW (4+64*p)T, Y2, Y0    \
	VPMADDUBSW (36+64*p)T, Y3, Y1   \
	VPMADDWD   Y4, Y0, Y0           \
	VPMADDWD   Y5, Y1, Y1           \
	VPADDD     Y0, Y1, SUM

// Q4T_REDUCE4 sets each 128-bit half of OUT to the sums of the four
// int32 lanes of that half of V0, V1, V2 and V3 (in that order): the
// transposing unpacks and adds cost fewer micro-ops than VPHADDD. V0..V3
// are overwritten; Y2, Y3 are scratch.
#define Q4T_REDUCE4(V0, V1, V2, V3, OUT) \
	VPUNPCKLDQ  V1, V0, Y2   \
	VPUNPCKHDQ  V1, V0, Y3   \
	VPADDD      Y3, Y2, V0   \
	VPUNPCKLDQ  V3, V2, Y2   \
	VPUNPCKHDQ  V3, V2, Y3   \
	VPADDD      Y3, Y2, V2   \
	VPUNPCKLQDQ V2, V0, Y2   \
	VPUNPCKHQDQ V2, V0, Y3   \
	VPADDD      Y3, Y2, OUT

// Q4T_STEP multiplies part p of both rows with the four tokens and fuses
// the eight pairs' sums, times d·x.d, into Y24.
#define Q4T_STEP(p) \
	Q4T_PART(SI, p, Y6) \
	Q4T_DOT4(p, Y8, Y9, Y10, Y11) \
	Q4T_PART(DX, p, Y16) \
	Q4T_DOT4(p, Y12, Y13, Y14, Y15) \
	Q4T_REDUCE4(Y8, Y9, Y10, Y11, Y0)  \
	Q4T_REDUCE4(Y12, Y13, Y14, Y15, Y1) \
	Q4T_FUSE(Y0, Y1, Y26, Y24)

// Q4T_DOT4 sets S0..S3 to part p of the unpacked row times the four
// tokens.
#define Q4T_DOT4(p, S0, S1, S2, S3) \
	Q4T_DOT((DI), p, S0) \
	Q4T_DOT((DI)(R13*1), p, S1) \
	Q4T_DOT((DI)(R13*2), p, S2) \
	Q4T_DOT((R12)(R13*2), p, S3)

// Q4T_FUSE fuses the eight pairs' sums, row 0's (reduced, in R0) and row
// 1's (R1), times D into ACC: the halves' sums added into lane 4i+j.
#define Q4T_FUSE(R0, R1, D, ACC) \
	VPERM2I128 $0x20, R1, R0, Y2    \
	VPERM2I128 $0x31, R1, R0, Y3    \
	VPADDD     Y3, Y2, Y2           \
	VCVTDQ2PS  Y2, Y2               \
	VFMADD231PS D, Y2, ACC

// Q4T_SCALE sets Y to the eight pairs' fp16 field at OFF of the rows
// times the tokens' d; Y0 holds [d0 d1 d2 d3 d0 d1 d2 d3].
#define Q4T_SCALE(OFF, Y) \
	MOVWLZX      OFF(SI), AX          \
	VBROADCASTSS (R8)(AX*4), X1       \
	MOVWLZX      OFF(DX), AX          \
	VBROADCASTSS (R8)(AX*4), X2       \
	VINSERTF128  $1, X2, Y1, Y1       \
	VMULPS       Y0, Y1, Y

// Q4T_ARGS loads the Q4_K tiles' arguments: rows at SI and DX, tokens
// from DI (stride R13; R12 = DI+R13), CX super-blocks, R8 the fp16 table.
#define Q4T_ARGS \
	MOVQ w+0(FP), SI          \
	MOVQ rowBytes+8(FP), AX   \
	LEAQ (SI)(AX*1), DX       \
	MOVQ x+16(FP), DI         \
	MOVQ xStride+24(FP), R13  \
	LEAQ (DI)(R13*1), R12     \
	MOVQ nb+32(FP), CX        \
	MOVQ tab+40(FP), R8

// Q4T_NEXT moves the rows and tokens to their next super-block.
#define Q4T_NEXT \
	ADDQ $144, SI  \
	ADDQ $144, DX  \
	ADDQ $292, DI  \
	ADDQ $292, R12

// Q4T_HEAD forms what a super-block's pairs share: the tokens' group
// sums in the frame (T4K_BSUMS), d·x.d and dmin·x.d of the eight pairs
// in DP and MP, row 0's scales in Y6, row 1's where KEEP1 (a macro)
// keeps them, and the mins in Y7 (row 0's in the low half, row 1's in the
// high one, by way of the frame).
#define Q4T_HEAD(DP, MP, KEEP1) \
	T4K_BSUMS((DI), 0)                         \
	T4K_BSUMS((DI)(R13*1), 1)                  \
	T4K_BSUMS((DI)(R13*2), 2)                  \
	T4K_BSUMS((R12)(R13*2), 3)                 \
	VMOVSS       (DI), X0                      \
	VINSERTPS    $0x10, (DI)(R13*1), X0, X0    \
	VINSERTPS    $0x20, (DI)(R13*2), X0, X0    \
	VINSERTPS    $0x30, (R12)(R13*2), X0, X0   \
	VINSERTF128  $1, X0, Y0, Y0                \
	Q4T_SCALE(0, DP)                           \
	Q4T_SCALE(2, MP)                           \
	T4K_SCALES(DX)                             \
	KEEP1                                      \
	VMOVDQU      X7, 64(SP)                    \
	T4K_SCALES(SI)                             \
	VINSERTI128  $1, 64(SP), Y7, Y7

// Q4T_KEEP_EVEX and Q4T_KEEP_AVX2 keep row 1's scales (Q4T_HEAD's KEEP1).
#define Q4T_KEEP_EVEX VMOVDQU64 Y6, Y16
#define Q4T_KEEP_AVX2 VMOVDQU Y6, Y12

// Q4T_MINS fuses the mins, times dmin·x.d (MP), into ACC: pair (i, j)'s
// four per-64-value sums, lane q of the 128-bit half i of P_j (Y8..Y11),
// transposed into O0..O3 (one vector of the eight pairs per 64 values)
// and fused in that order. Y0..Y3 are scratch.
#define Q4T_MINS(O0, O1, O2, O3, MP, ACC) \
	VBROADCASTI128 0(SP), Y8      \
	VPMADDWD       Y7, Y8, Y8     \
	VBROADCASTI128 16(SP), Y9     \
	VPMADDWD       Y7, Y9, Y9     \
	VBROADCASTI128 32(SP), Y10    \
	VPMADDWD       Y7, Y10, Y10   \
	VBROADCASTI128 48(SP), Y11    \
	VPMADDWD       Y7, Y11, Y11   \
	VPUNPCKLDQ     Y9, Y8, Y0     \
	VPUNPCKLDQ     Y11, Y10, Y1   \
	VPUNPCKHDQ     Y9, Y8, Y2     \
	VPUNPCKHDQ     Y11, Y10, Y3   \
	VPUNPCKLQDQ    Y1, Y0, O0     \
	VPUNPCKHQDQ    Y1, Y0, O1     \
	VPUNPCKLQDQ    Y3, Y2, O2     \
	VPUNPCKHQDQ    Y3, Y2, O3     \
	VCVTDQ2PS      O0, O0         \
	VFMADD231PS    MP, O0, ACC    \
	VCVTDQ2PS      O1, O1         \
	VFMADD231PS    MP, O1, ACC    \
	VCVTDQ2PS      O2, O2         \
	VFMADD231PS    MP, O2, ACC    \
	VCVTDQ2PS      O3, O3         \
	VFMADD231PS    MP, O3, ACC

// Q4T_STORE writes ACC - MIN, the eight pairs' results (lane 4i+j: row
// i, token j), to dst.
#define Q4T_STORE(ACC, MIN) \
	MOVQ dst+48(FP), DI                       \
	MOVQ dstStride+56(FP), R13                \
	SHLQ $2, R13                              \
	LEAQ (DI)(R13*1), R12                     \
	VSUBPS       MIN, ACC, Y0                 \
	VMOVSS       X0, (DI)                     \
	VEXTRACTPS   $1, X0, (DI)(R13*1)          \
	VEXTRACTPS   $2, X0, (DI)(R13*2)          \
	VEXTRACTPS   $3, X0, (R12)(R13*2)         \
	VEXTRACTF128 $1, Y0, X0                   \
	VMOVSS       X0, 4(DI)                    \
	VEXTRACTPS   $1, X0, 4(DI)(R13*1)         \
	VEXTRACTPS   $2, X0, 4(DI)(R13*2)         \
	VEXTRACTPS   $3, X0, 4(R12)(R13*2)

// tile2x4Q4_KAVX2 is tile2x4Q4_KAVX512 in the sixteen AVX2 registers:
// the same operations in the same order (ggml_gemm_q4_K_8x8_q8_K's,
// dotQ4_KBatch), row 0's part sums reduced before row 1's are formed
// instead of both rows' at once. Registers: Y13 the accumulators, Y14 the
// mins' accumulators, Y15 d·x.d of the eight pairs (dmin·x.d in Y4 while
// the mins are fused); Y6 row 0's scales, Y12 row 1's; Y7 the mins, then
// row 0's reduced part sums; Y8..Y11 a row's four part sums; Y0..Y5
// scratch. Frame as tile2x4Q4_KAVX512's.

// Q4A_STEP multiplies part p of both rows with the four tokens and fuses
// the eight pairs' sums, times d·x.d, into Y13.
#define Q4A_STEP(p) \
	Q4T_PART(SI, p, Y6) \
	Q4T_DOT4(p, Y8, Y9, Y10, Y11) \
	Q4T_REDUCE4(Y8, Y9, Y10, Y11, Y7) \
	Q4T_PART(DX, p, Y12) \
	Q4T_DOT4(p, Y8, Y9, Y10, Y11) \
	Q4T_REDUCE4(Y8, Y9, Y10, Y11, Y0) \
	Q4T_FUSE(Y7, Y0, Y15, Y13)

// func tile2x4Q4_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile2x4Q4_KAVX512(SB), NOSPLIT, $80-64
	Q4T_ARGS
	VPXORD Y24, Y24, Y24
	VPXORD Y25, Y25, Y25
	TESTQ CX, CX
	JZ    q4kt_done

q4kt_block:
	Q4T_HEAD(Y26, Y27, Q4T_KEEP_EVEX)
	Q4T_MINS(Y12, Y13, Y14, Y15, Y27, Y25)

	Q4T_STEP(0)
	Q4T_STEP(1)
	Q4T_STEP(2)
	Q4T_STEP(3)

	Q4T_NEXT
	DECQ CX
	JNZ  q4kt_block

q4kt_done:
	Q4T_STORE(Y24, Y25)
	VZEROUPPER
	RET

// T5K_ENTER loads the arguments and clears the accumulators.
#define T5K_ENTER \
	MOVQ w+0(FP), SI \
	MOVQ rowBytes+8(FP), AX \
	LEAQ (SI)(AX*1), DX \
	MOVQ x+16(FP), DI \
	MOVQ xStride+24(FP), R13 \
	LEAQ (DI)(R13*1), R12 \
	MOVQ nb+32(FP), CX \
	MOVQ tab+40(FP), R8 \
	VPXORD Y8, Y8, Y8 \
	VPXORD Y9, Y9, Y9 \
	VPXORD Y10, Y10, Y10 \
	VPXORD Y11, Y11, Y11 \
	VPXORD Y12, Y12, Y12 \
	VPXORD Y13, Y13, Y13 \
	VPXORD Y14, Y14, Y14 \
	VPXORD Y15, Y15, Y15 \
	VPXORD Y24, Y24, Y24 \
	VPXORD Y25, Y25, Y25 \
	VPXORD Y26, Y26, Y26 \
	VPXORD Y27, Y27, Y27 \
	VPXORD Y28, Y28, Y28 \
	VPXORD Y29, Y29, Y29 \
	VPXORD Y30, Y30, Y30 \
	VPXORD Y31, Y31, Y31

// T5K_STORE writes each pair's result to dst.
#define T5K_STORE \
	MOVQ dst+48(FP), DI \
	MOVQ dstStride+56(FP), R13 \
	SHLQ $2, R13 \
	LEAQ (DI)(R13*1), R12 \
	VMOVAPS Y8, Y0 \
	HSUM8(Y0, X0, X2) \
	VADDSS X24, X0, X0 \
	VMOVSS X0, (0)(DI) \
	VMOVAPS Y9, Y0 \
	HSUM8(Y0, X0, X2) \
	VADDSS X25, X0, X0 \
	VMOVSS X0, (0)(DI)(R13*1) \
	VMOVAPS Y10, Y0 \
	HSUM8(Y0, X0, X2) \
	VADDSS X26, X0, X0 \
	VMOVSS X0, (0)(DI)(R13*2) \
	VMOVAPS Y11, Y0 \
	HSUM8(Y0, X0, X2) \
	VADDSS X27, X0, X0 \
	VMOVSS X0, (0)(R12)(R13*2) \
	VMOVAPS Y12, Y0 \
	HSUM8(Y0, X0, X2) \
	VADDSS X28, X0, X0 \
	VMOVSS X0, (4)(DI) \
	VMOVAPS Y13, Y0 \
	HSUM8(Y0, X0, X2) \
	VADDSS X29, X0, X0 \
	VMOVSS X0, (4)(DI)(R13*1) \
	VMOVAPS Y14, Y0 \
	HSUM8(Y0, X0, X2) \
	VADDSS X30, X0, X0 \
	VMOVSS X0, (4)(DI)(R13*2) \
	VMOVAPS Y15, Y0 \
	HSUM8(Y0, X0, X2) \
	VADDSS X31, X0, X0 \
	VMOVSS X0, (4)(R12)(R13*2)

// func tile2x4Q5_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile2x4Q5_KAVX512(SB), NOSPLIT, $64-64
	T5K_ENTER
	TESTQ CX, CX
	JZ    q5kt_done

q5kt_block:
	T4K_BSUMS((DI), 0)
	T4K_BSUMS((DI)(R13*1), 1)
	T4K_BSUMS((DI)(R13*2), 2)
	T4K_BSUMS((R12)(R13*2), 3)
	T5K_ROW0(T4K_DOT)
	T5K_ROW1(T4K_DOT)
	ADDQ $176, SI
	ADDQ $176, DX
	ADDQ $292, DI
	ADDQ $292, R12
	DECQ CX
	JNZ  q5kt_block

q5kt_done:
	T5K_STORE
	VZEROUPPER
	RET

// func tile2x4Q5_KVNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile2x4Q5_KVNNI(SB), NOSPLIT, $64-64
	T5K_ENTER
	TESTQ CX, CX
	JZ    q5kv_done

q5kv_block:
	T4K_BSUMS((DI), 0)
	T4K_BSUMS((DI)(R13*1), 1)
	T4K_BSUMS((DI)(R13*2), 2)
	T4K_BSUMS((R12)(R13*2), 3)
	T5K_ROW0(T4K_DOTVNNI)
	T5K_ROW1(T4K_DOTVNNI)
	ADDQ $176, SI
	ADDQ $176, DX
	ADDQ $292, DI
	ADDQ $292, R12
	DECQ CX
	JNZ  q5kv_block

q5kv_done:
	T5K_STORE
	VZEROUPPER
	RET

// func tile2x4Q4_KAVX2(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile2x4Q4_KAVX2(SB), NOSPLIT, $80-64
	Q4T_ARGS
	VPXOR Y13, Y13, Y13
	VPXOR Y14, Y14, Y14
	TESTQ CX, CX
	JZ    q4ka_done

q4ka_block:
	Q4T_HEAD(Y15, Y4, Q4T_KEEP_AVX2)
	Q4T_MINS(Y8, Y9, Y10, Y11, Y4, Y14)

	Q4A_STEP(0)
	Q4A_STEP(1)
	Q4A_STEP(2)
	Q4A_STEP(3)

	Q4T_NEXT
	DECQ CX
	JNZ  q4ka_block

q4ka_done:
	Q4T_STORE(Y13, Y14)
	VZEROUPPER
	RET
