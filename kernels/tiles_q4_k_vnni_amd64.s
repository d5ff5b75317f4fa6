//go:build amd64

#include "textflag.h"

// The Q4_K kernels of the avx512vnni set for eight weight rows at once:
// a tile of 8 rows × 4 tokens in ggml_gemm_q4_K_8x8_q8_K's order
// (dotQ4_KBatch) and 8 rows × 1 token in ggml_gemv_q4_K_8x8_q8_K's
// (dotQ4_K), computed the way those kernels compute them: one 32-bit lane per weight row, so that no sum has
// to be reduced across lanes. ggml repacks the weights once, eight rows
// interleaved four bytes at a time; here each 32-byte part (64 values,
// two sub-blocks) of the eight rows is transposed in registers instead
// (an 8×8 transpose of 32-bit elements), after which vector k holds
// bytes 4k..4k+3 of every row. VPDPBUSD then multiplies those by the
// token's four activation bytes, broadcast from memory, and sums them
// into each row's lane: eight of them give a sub-block's exact sum for
// all eight rows, which VPMULLD scales by each row's 6-bit scale. Per 64
// values and token, the eight rows' integer sums are converted once and
// fused, times d·x.d, into the token's accumulator; the mins' sums
// (VPDPWSSD of each row's two mins with the token's two 32-value
// activation sums) likewise, times dmin·x.d, into a second; the results
// are the first minus the second, as in the one-row kernels. The gemv
// kernel does the same with whole super-blocks instead of 64 values.
//
// Registers: SI, BX, DX, R9 with R14 (the row stride) address the eight
// rows; R10 walks the next eight (Q4V_PREFETCH); DI, R12 with R13 the four tokens; CX the super-blocks left; R8
// the fp16 table. Y0..Y7 the low nibbles (vector k: bytes 4k..4k+3 of
// the rows), Y8..Y15 the high nibbles; Y24 the rows' d, Y25 their dmin;
// Y26 the current mins pairs; the others sums and scratch. The gemm
// keeps the tokens' float accumulators (lane r: row r) in the frame, to
// leave registers for eight independent integer sums; the gemv keeps its
// two in Y16 and Y20.
// Frame: token j's eight 32-value activation sums (int16) at 16j; the
// rows' scale of sub-block c (int32 lanes) at 64+32c; the rows' mins of
// sub-blocks 2s and 2s+1 (int16 pairs) at 320+32s; the gemm's
// accumulators at 448+32j and its mins' at 576+32j.

DATA q4vMask3f<>+0(SB)/8, $0x0000003f0000003f
DATA q4vMask3f<>+8(SB)/8, $0x0000003f0000003f
DATA q4vMask3f<>+16(SB)/8, $0x0000003f0000003f
DATA q4vMask3f<>+24(SB)/8, $0x0000003f0000003f
GLOBL q4vMask3f<>(SB), RODATA|NOPTR, $32

DATA q4vMask0f<>+0(SB)/8, $0x0000000f0000000f
DATA q4vMask0f<>+8(SB)/8, $0x0000000f0000000f
DATA q4vMask0f<>+16(SB)/8, $0x0000000f0000000f
DATA q4vMask0f<>+24(SB)/8, $0x0000000f0000000f
GLOBL q4vMask0f<>(SB), RODATA|NOPTR, $32

DATA q4vMask30<>+0(SB)/8, $0x0000003000000030
DATA q4vMask30<>+8(SB)/8, $0x0000003000000030
DATA q4vMask30<>+16(SB)/8, $0x0000003000000030
DATA q4vMask30<>+24(SB)/8, $0x0000003000000030
GLOBL q4vMask30<>(SB), RODATA|NOPTR, $32

DATA q4vNibble<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q4vNibble<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q4vNibble<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q4vNibble<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL q4vNibble<>(SB), RODATA|NOPTR, $32

// Q4V_ROWk is the address of weight row k, given an offset in front.
#define Q4V_ROW0 (SI)
#define Q4V_ROW1 (SI)(R14*1)
#define Q4V_ROW2 (SI)(R14*2)
#define Q4V_ROW3 (BX)(R14*2)
#define Q4V_ROW4 (SI)(R14*4)
#define Q4V_ROW5 (BX)(R14*4)
#define Q4V_ROW6 (DX)(R14*4)
#define Q4V_ROW7 (R9)(R14*4)

// Q4V_BSUMS stores token T's eight 32-value activation sums at 16j(SP).
#define Q4V_BSUMS(T, j) \
	VMOVDQU (260)T, X0 \
	VPHADDW (276)T, X0, X0 \
	VMOVDQU X0, (16*j)(SP)

// Q4V_FP16S sets the lanes of DST to the eight rows' fp16 field at off.
#define Q4V_FP16S(off, DST) \
	MOVWLZX (off)Q4V_ROW0, AX \
	VMOVSS (R8)(AX*4), X0 \
	MOVWLZX (off)Q4V_ROW1, AX \
	VINSERTPS $0x10, (R8)(AX*4), X0, X0 \
	MOVWLZX (off)Q4V_ROW2, AX \
	VINSERTPS $0x20, (R8)(AX*4), X0, X0 \
	MOVWLZX (off)Q4V_ROW3, AX \
	VINSERTPS $0x30, (R8)(AX*4), X0, X0 \
	MOVWLZX (off)Q4V_ROW4, AX \
	VMOVSS (R8)(AX*4), X1 \
	MOVWLZX (off)Q4V_ROW5, AX \
	VINSERTPS $0x10, (R8)(AX*4), X1, X1 \
	MOVWLZX (off)Q4V_ROW6, AX \
	VINSERTPS $0x20, (R8)(AX*4), X1, X1 \
	MOVWLZX (off)Q4V_ROW7, AX \
	VINSERTPS $0x30, (R8)(AX*4), X1, X1 \
	VINSERTF128 $1, X1, Y0, Y0 \
	VMOVAPS Y0, DST

// Q4V_WORDS sets the lanes of Y to the eight rows' 32-bit word at off.
#define Q4V_WORDS(off, Y) \
	VMOVD (off)Q4V_ROW0, X0 \
	VPINSRD $1, (off)Q4V_ROW1, X0, X0 \
	VPINSRD $2, (off)Q4V_ROW2, X0, X0 \
	VPINSRD $3, (off)Q4V_ROW3, X0, X0 \
	VMOVD (off)Q4V_ROW4, X1 \
	VPINSRD $1, (off)Q4V_ROW5, X1, X1 \
	VPINSRD $2, (off)Q4V_ROW6, X1, X1 \
	VPINSRD $3, (off)Q4V_ROW7, X1, X1 \
	VINSERTI128 $1, X1, Y0, Y
// Q4V_SCALE_LO0: scale 0 to the frame, min 0 to Y8.
#define Q4V_SCALE_LO0 \
	VPSRLD $0, Y2, Y5 \
	VPAND q4vMask3f<>(SB), Y5, Y5 \
	VMOVDQU Y5, 64(SP) \
	VPSRLD $0, Y3, Y8 \
	VPAND q4vMask3f<>(SB), Y8, Y8

// Q4V_SCALE_LO1: likewise for sub-block 1.
#define Q4V_SCALE_LO1 \
	VPSRLD $8, Y2, Y5 \
	VPAND q4vMask3f<>(SB), Y5, Y5 \
	VMOVDQU Y5, 96(SP) \
	VPSRLD $8, Y3, Y9 \
	VPAND q4vMask3f<>(SB), Y9, Y9

// Q4V_SCALE_LO2: likewise for sub-block 2.
#define Q4V_SCALE_LO2 \
	VPSRLD $16, Y2, Y5 \
	VPAND q4vMask3f<>(SB), Y5, Y5 \
	VMOVDQU Y5, 128(SP) \
	VPSRLD $16, Y3, Y10 \
	VPAND q4vMask3f<>(SB), Y10, Y10

// Q4V_SCALE_LO3: likewise for sub-block 3.
#define Q4V_SCALE_LO3 \
	VPSRLD $24, Y2, Y5 \
	VPAND q4vMask3f<>(SB), Y5, Y5 \
	VMOVDQU Y5, 160(SP) \
	VPSRLD $24, Y3, Y11 \
	VPAND q4vMask3f<>(SB), Y11, Y11

// Q4V_SCALE_HI0: scale 4 to the frame, min 4 to Y12.
#define Q4V_SCALE_HI0 \
	VPSRLD $0, Y4, Y5 \
	VPAND q4vMask0f<>(SB), Y5, Y5 \
	VPSRLD $2, Y2, Y6 \
	VPAND q4vMask30<>(SB), Y6, Y6 \
	VPOR Y6, Y5, Y5 \
	VMOVDQU Y5, 192(SP) \
	VPSRLD $4, Y4, Y12 \
	VPAND q4vMask0f<>(SB), Y12, Y12 \
	VPSRLD $2, Y3, Y6 \
	VPAND q4vMask30<>(SB), Y6, Y6 \
	VPOR Y6, Y12, Y12

// Q4V_SCALE_HI1: likewise for sub-block 5.
#define Q4V_SCALE_HI1 \
	VPSRLD $8, Y4, Y5 \
	VPAND q4vMask0f<>(SB), Y5, Y5 \
	VPSRLD $10, Y2, Y6 \
	VPAND q4vMask30<>(SB), Y6, Y6 \
	VPOR Y6, Y5, Y5 \
	VMOVDQU Y5, 224(SP) \
	VPSRLD $12, Y4, Y13 \
	VPAND q4vMask0f<>(SB), Y13, Y13 \
	VPSRLD $10, Y3, Y6 \
	VPAND q4vMask30<>(SB), Y6, Y6 \
	VPOR Y6, Y13, Y13

// Q4V_SCALE_HI2: likewise for sub-block 6.
#define Q4V_SCALE_HI2 \
	VPSRLD $16, Y4, Y5 \
	VPAND q4vMask0f<>(SB), Y5, Y5 \
	VPSRLD $18, Y2, Y6 \
	VPAND q4vMask30<>(SB), Y6, Y6 \
	VPOR Y6, Y5, Y5 \
	VMOVDQU Y5, 256(SP) \
	VPSRLD $20, Y4, Y14 \
	VPAND q4vMask0f<>(SB), Y14, Y14 \
	VPSRLD $18, Y3, Y6 \
	VPAND q4vMask30<>(SB), Y6, Y6 \
	VPOR Y6, Y14, Y14

// Q4V_SCALE_HI3: likewise for sub-block 7.
#define Q4V_SCALE_HI3 \
	VPSRLD $24, Y4, Y5 \
	VPAND q4vMask0f<>(SB), Y5, Y5 \
	VPSRLD $26, Y2, Y6 \
	VPAND q4vMask30<>(SB), Y6, Y6 \
	VPOR Y6, Y5, Y5 \
	VMOVDQU Y5, 288(SP) \
	VPSRLD $28, Y4, Y15 \
	VPAND q4vMask0f<>(SB), Y15, Y15 \
	VPSRLD $26, Y3, Y6 \
	VPAND q4vMask30<>(SB), Y6, Y6 \
	VPOR Y6, Y15, Y15

// Q4V_MINPAIR0: the mins of sub-blocks 0 and 1 as int16 pairs.
#define Q4V_MINPAIR0 \
	VPSLLD $16, Y9, Y5 \
	VPOR Y5, Y8, Y5 \
	VMOVDQU Y5, 320(SP)

// Q4V_MINPAIR1: likewise for sub-blocks 2, 3.
#define Q4V_MINPAIR1 \
	VPSLLD $16, Y11, Y5 \
	VPOR Y5, Y10, Y5 \
	VMOVDQU Y5, 352(SP)

// Q4V_MINPAIR2: likewise for sub-blocks 4, 5.
#define Q4V_MINPAIR2 \
	VPSLLD $16, Y13, Y5 \
	VPOR Y5, Y12, Y5 \
	VMOVDQU Y5, 384(SP)

// Q4V_MINPAIR3: likewise for sub-blocks 6, 7.
#define Q4V_MINPAIR3 \
	VPSLLD $16, Y15, Y5 \
	VPOR Y5, Y14, Y5 \
	VMOVDQU Y5, 416(SP)

// Q4V_SCALES stores the rows' scales and mins: U0, U1, U2 (Y2, Y3, Y4)
// are the three 32-bit words of their 12-byte fields. Sub-block c < 4
// has scale (U0 >> 8c) & 63 and min (U1 >> 8c) & 63; sub-block c = 4+i
// has scale (U2 >> 8i) & 15 | (U0 >> (8i+2)) & 0x30 and min
// (U2 >> (8i+4)) & 15 | (U1 >> (8i+2)) & 0x30, the top two bits of the
// first two words' bytes being the high bits of sub-blocks 4..7. The
// scales go to 64+32c(SP) as int32 lanes, the mins of sub-blocks 2s and
// 2s+1 to 320+32s(SP) as the int16 pairs VPDPWSSD takes.
#define Q4V_SCALES \
	Q4V_WORDS(4, Y2) \
	Q4V_WORDS(8, Y3) \
	Q4V_WORDS(12, Y4) \
	Q4V_SCALE_LO0 \
	Q4V_SCALE_LO1 \
	Q4V_SCALE_LO2 \
	Q4V_SCALE_LO3 \
	Q4V_SCALE_HI0 \
	Q4V_SCALE_HI1 \
	Q4V_SCALE_HI2 \
	Q4V_SCALE_HI3 \
	Q4V_MINPAIR0 \
	Q4V_MINPAIR1 \
	Q4V_MINPAIR2 \
	Q4V_MINPAIR3

// Q4V_PART loads the 32 bytes of part p (values 64p..64p+63) of the
// eight rows, transposes them (an 8×8 transpose of 32-bit words: after
// it vector k holds word k of every row) and splits the nibbles: the low
// ones (sub-block 2p) to Y0..Y7, the high ones (2p+1) to Y8..Y15.
#define Q4V_PART(p) \
	VMOVDQU (16+32*p)Q4V_ROW0, Y0 \
	VMOVDQU (16+32*p)Q4V_ROW1, Y1 \
	VMOVDQU (16+32*p)Q4V_ROW2, Y2 \
	VMOVDQU (16+32*p)Q4V_ROW3, Y3 \
	VMOVDQU (16+32*p)Q4V_ROW4, Y4 \
	VMOVDQU (16+32*p)Q4V_ROW5, Y5 \
	VMOVDQU (16+32*p)Q4V_ROW6, Y6 \
	VMOVDQU (16+32*p)Q4V_ROW7, Y7 \
	VPUNPCKLDQ Y1, Y0, Y8 \
	VPUNPCKHDQ Y1, Y0, Y9 \
	VPUNPCKLDQ Y3, Y2, Y10 \
	VPUNPCKHDQ Y3, Y2, Y11 \
	VPUNPCKLDQ Y5, Y4, Y12 \
	VPUNPCKHDQ Y5, Y4, Y13 \
	VPUNPCKLDQ Y7, Y6, Y14 \
	VPUNPCKHDQ Y7, Y6, Y15 \
	VPUNPCKLQDQ Y10, Y8, Y0 \
	VPUNPCKHQDQ Y10, Y8, Y1 \
	VPUNPCKLQDQ Y11, Y9, Y2 \
	VPUNPCKHQDQ Y11, Y9, Y3 \
	VPUNPCKLQDQ Y14, Y12, Y4 \
	VPUNPCKHQDQ Y14, Y12, Y5 \
	VPUNPCKLQDQ Y15, Y13, Y6 \
	VPUNPCKHQDQ Y15, Y13, Y7 \
	VPERM2I128 $0x20, Y4, Y0, Y8 \
	VPERM2I128 $0x31, Y4, Y0, Y12 \
	VPERM2I128 $0x20, Y5, Y1, Y9 \
	VPERM2I128 $0x31, Y5, Y1, Y13 \
	VPERM2I128 $0x20, Y6, Y2, Y10 \
	VPERM2I128 $0x31, Y6, Y2, Y14 \
	VPERM2I128 $0x20, Y7, Y3, Y11 \
	VPERM2I128 $0x31, Y7, Y3, Y15 \
	VPAND q4vNibble<>(SB), Y8, Y0 \
	VPSRLW $4, Y8, Y8 \
	VPAND q4vNibble<>(SB), Y8, Y8 \
	VPAND q4vNibble<>(SB), Y9, Y1 \
	VPSRLW $4, Y9, Y9 \
	VPAND q4vNibble<>(SB), Y9, Y9 \
	VPAND q4vNibble<>(SB), Y10, Y2 \
	VPSRLW $4, Y10, Y10 \
	VPAND q4vNibble<>(SB), Y10, Y10 \
	VPAND q4vNibble<>(SB), Y11, Y3 \
	VPSRLW $4, Y11, Y11 \
	VPAND q4vNibble<>(SB), Y11, Y11 \
	VPAND q4vNibble<>(SB), Y12, Y4 \
	VPSRLW $4, Y12, Y12 \
	VPAND q4vNibble<>(SB), Y12, Y12 \
	VPAND q4vNibble<>(SB), Y13, Y5 \
	VPSRLW $4, Y13, Y13 \
	VPAND q4vNibble<>(SB), Y13, Y13 \
	VPAND q4vNibble<>(SB), Y14, Y6 \
	VPSRLW $4, Y14, Y14 \
	VPAND q4vNibble<>(SB), Y14, Y14 \
	VPAND q4vNibble<>(SB), Y15, Y7 \
	VPSRLW $4, Y15, Y15 \
	VPAND q4vNibble<>(SB), Y15, Y15

// Q4V_SUBLO sets Y27 to the eight rows' sums of the low-nibble
// sub-block times token T's 32 activations at off.
#define Q4V_SUBLO(T, off) \
	VPXORD Y27, Y27, Y27 \
	VPDPBUSD.BCST (off+0)T, Y0, Y27 \
	VPDPBUSD.BCST (off+4)T, Y1, Y27 \
	VPDPBUSD.BCST (off+8)T, Y2, Y27 \
	VPDPBUSD.BCST (off+12)T, Y3, Y27 \
	VPDPBUSD.BCST (off+16)T, Y4, Y27 \
	VPDPBUSD.BCST (off+20)T, Y5, Y27 \
	VPDPBUSD.BCST (off+24)T, Y6, Y27 \
	VPDPBUSD.BCST (off+28)T, Y7, Y27

// Q4V_SUBHI is Q4V_SUBLO for the high-nibble sub-block.
#define Q4V_SUBHI(T, off) \
	VPXORD Y27, Y27, Y27 \
	VPDPBUSD.BCST (off+0)T, Y8, Y27 \
	VPDPBUSD.BCST (off+4)T, Y9, Y27 \
	VPDPBUSD.BCST (off+8)T, Y10, Y27 \
	VPDPBUSD.BCST (off+12)T, Y11, Y27 \
	VPDPBUSD.BCST (off+16)T, Y12, Y27 \
	VPDPBUSD.BCST (off+20)T, Y13, Y27 \
	VPDPBUSD.BCST (off+24)T, Y14, Y27 \
	VPDPBUSD.BCST (off+28)T, Y15, Y27

// Q4V_SUMS_LO sets Y16, Y18, Y20, Y22 to the eight rows' sums of part
// p's low-nibble sub-block times tokens 0..3. The 32 VPDPBUSD go token
// after token and into two accumulators per token (even and odd words),
// eight independent chains, so that the multiplier pipes are not held up
// by the instruction's latency; integer sums are exact in any order.
#define Q4V_SUMS_LO(p) \
	VPXORD Y16, Y16, Y16 \
	VPXORD Y17, Y17, Y17 \
	VPXORD Y18, Y18, Y18 \
	VPXORD Y19, Y19, Y19 \
	VPXORD Y20, Y20, Y20 \
	VPXORD Y21, Y21, Y21 \
	VPXORD Y22, Y22, Y22 \
	VPXORD Y23, Y23, Y23 \
	VPDPBUSD.BCST (4+64*p+0)(DI), Y0, Y16 \
	VPDPBUSD.BCST (4+64*p+0)(DI)(R13*1), Y0, Y18 \
	VPDPBUSD.BCST (4+64*p+0)(DI)(R13*2), Y0, Y20 \
	VPDPBUSD.BCST (4+64*p+0)(R12)(R13*2), Y0, Y22 \
	VPDPBUSD.BCST (4+64*p+4)(DI), Y1, Y17 \
	VPDPBUSD.BCST (4+64*p+4)(DI)(R13*1), Y1, Y19 \
	VPDPBUSD.BCST (4+64*p+4)(DI)(R13*2), Y1, Y21 \
	VPDPBUSD.BCST (4+64*p+4)(R12)(R13*2), Y1, Y23 \
	VPDPBUSD.BCST (4+64*p+8)(DI), Y2, Y16 \
	VPDPBUSD.BCST (4+64*p+8)(DI)(R13*1), Y2, Y18 \
	VPDPBUSD.BCST (4+64*p+8)(DI)(R13*2), Y2, Y20 \
	VPDPBUSD.BCST (4+64*p+8)(R12)(R13*2), Y2, Y22 \
	VPDPBUSD.BCST (4+64*p+12)(DI), Y3, Y17 \
	VPDPBUSD.BCST (4+64*p+12)(DI)(R13*1), Y3, Y19 \
	VPDPBUSD.BCST (4+64*p+12)(DI)(R13*2), Y3, Y21 \
	VPDPBUSD.BCST (4+64*p+12)(R12)(R13*2), Y3, Y23 \
	VPDPBUSD.BCST (4+64*p+16)(DI), Y4, Y16 \
	VPDPBUSD.BCST (4+64*p+16)(DI)(R13*1), Y4, Y18 \
	VPDPBUSD.BCST (4+64*p+16)(DI)(R13*2), Y4, Y20 \
	VPDPBUSD.BCST (4+64*p+16)(R12)(R13*2), Y4, Y22 \
	VPDPBUSD.BCST (4+64*p+20)(DI), Y5, Y17 \
	VPDPBUSD.BCST (4+64*p+20)(DI)(R13*1), Y5, Y19 \
	VPDPBUSD.BCST (4+64*p+20)(DI)(R13*2), Y5, Y21 \
	VPDPBUSD.BCST (4+64*p+20)(R12)(R13*2), Y5, Y23 \
	VPDPBUSD.BCST (4+64*p+24)(DI), Y6, Y16 \
	VPDPBUSD.BCST (4+64*p+24)(DI)(R13*1), Y6, Y18 \
	VPDPBUSD.BCST (4+64*p+24)(DI)(R13*2), Y6, Y20 \
	VPDPBUSD.BCST (4+64*p+24)(R12)(R13*2), Y6, Y22 \
	VPDPBUSD.BCST (4+64*p+28)(DI), Y7, Y17 \
	VPDPBUSD.BCST (4+64*p+28)(DI)(R13*1), Y7, Y19 \
	VPDPBUSD.BCST (4+64*p+28)(DI)(R13*2), Y7, Y21 \
	VPDPBUSD.BCST (4+64*p+28)(R12)(R13*2), Y7, Y23 \
	VPADDD Y17, Y16, Y16 \
	VPADDD Y19, Y18, Y18 \
	VPADDD Y21, Y20, Y20 \
	VPADDD Y23, Y22, Y22

// Q4V_SUMS_HI is Q4V_SUMS_LO for the high-nibble sub-block.
#define Q4V_SUMS_HI(p) \
	VPXORD Y16, Y16, Y16 \
	VPXORD Y17, Y17, Y17 \
	VPXORD Y18, Y18, Y18 \
	VPXORD Y19, Y19, Y19 \
	VPXORD Y20, Y20, Y20 \
	VPXORD Y21, Y21, Y21 \
	VPXORD Y22, Y22, Y22 \
	VPXORD Y23, Y23, Y23 \
	VPDPBUSD.BCST (36+64*p+0)(DI), Y8, Y16 \
	VPDPBUSD.BCST (36+64*p+0)(DI)(R13*1), Y8, Y18 \
	VPDPBUSD.BCST (36+64*p+0)(DI)(R13*2), Y8, Y20 \
	VPDPBUSD.BCST (36+64*p+0)(R12)(R13*2), Y8, Y22 \
	VPDPBUSD.BCST (36+64*p+4)(DI), Y9, Y17 \
	VPDPBUSD.BCST (36+64*p+4)(DI)(R13*1), Y9, Y19 \
	VPDPBUSD.BCST (36+64*p+4)(DI)(R13*2), Y9, Y21 \
	VPDPBUSD.BCST (36+64*p+4)(R12)(R13*2), Y9, Y23 \
	VPDPBUSD.BCST (36+64*p+8)(DI), Y10, Y16 \
	VPDPBUSD.BCST (36+64*p+8)(DI)(R13*1), Y10, Y18 \
	VPDPBUSD.BCST (36+64*p+8)(DI)(R13*2), Y10, Y20 \
	VPDPBUSD.BCST (36+64*p+8)(R12)(R13*2), Y10, Y22 \
	VPDPBUSD.BCST (36+64*p+12)(DI), Y11, Y17 \
	VPDPBUSD.BCST (36+64*p+12)(DI)(R13*1), Y11, Y19 \
	VPDPBUSD.BCST (36+64*p+12)(DI)(R13*2), Y11, Y21 \
	VPDPBUSD.BCST (36+64*p+12)(R12)(R13*2), Y11, Y23 \
	VPDPBUSD.BCST (36+64*p+16)(DI), Y12, Y16 \
	VPDPBUSD.BCST (36+64*p+16)(DI)(R13*1), Y12, Y18 \
	VPDPBUSD.BCST (36+64*p+16)(DI)(R13*2), Y12, Y20 \
	VPDPBUSD.BCST (36+64*p+16)(R12)(R13*2), Y12, Y22 \
	VPDPBUSD.BCST (36+64*p+20)(DI), Y13, Y17 \
	VPDPBUSD.BCST (36+64*p+20)(DI)(R13*1), Y13, Y19 \
	VPDPBUSD.BCST (36+64*p+20)(DI)(R13*2), Y13, Y21 \
	VPDPBUSD.BCST (36+64*p+20)(R12)(R13*2), Y13, Y23 \
	VPDPBUSD.BCST (36+64*p+24)(DI), Y14, Y16 \
	VPDPBUSD.BCST (36+64*p+24)(DI)(R13*1), Y14, Y18 \
	VPDPBUSD.BCST (36+64*p+24)(DI)(R13*2), Y14, Y20 \
	VPDPBUSD.BCST (36+64*p+24)(R12)(R13*2), Y14, Y22 \
	VPDPBUSD.BCST (36+64*p+28)(DI), Y15, Y17 \
	VPDPBUSD.BCST (36+64*p+28)(DI)(R13*1), Y15, Y19 \
	VPDPBUSD.BCST (36+64*p+28)(DI)(R13*2), Y15, Y21 \
	VPDPBUSD.BCST (36+64*p+28)(R12)(R13*2), Y15, Y23 \
	VPADDD Y17, Y16, Y16 \
	VPADDD Y19, Y18, Y18 \
	VPADDD Y21, Y20, Y20 \
	VPADDD Y23, Y22, Y22

// Q4V_GEMM_TOKENS fuses part p of the rows times the four tokens into
// their accumulators in the frame (at 448+32j, the mins' at 576+32j):
// the eight rows' exact sums Σ scale·(sub-block sum) of the two
// sub-blocks (Y27..Y30), converted once, times d·x.d, and their mins' sums
// Σ min·(activation sum), times dmin·x.d (Y26: the part's mins pairs).
#define Q4V_GEMM_TOKENS(p) \
	Q4V_SUMS_LO(p) \
	VPMULLD (64+64*p)(SP), Y16, Y27 \
	VPMULLD (64+64*p)(SP), Y18, Y28 \
	VPMULLD (64+64*p)(SP), Y20, Y29 \
	VPMULLD (64+64*p)(SP), Y22, Y30 \
	Q4V_SUMS_HI(p) \
	VPMULLD (96+64*p)(SP), Y16, Y16 \
	VPADDD Y16, Y27, Y27 \
	VPMULLD (96+64*p)(SP), Y18, Y18 \
	VPADDD Y18, Y28, Y28 \
	VPMULLD (96+64*p)(SP), Y20, Y20 \
	VPADDD Y20, Y29, Y29 \
	VPMULLD (96+64*p)(SP), Y22, Y22 \
	VPADDD Y22, Y30, Y30 \
	VCVTDQ2PS Y27, Y27 \
	VMULPS.BCST (0)(DI), Y24, Y16 \
	VMOVUPS 448(SP), Y31 \
	VFMADD231PS Y16, Y27, Y31 \
	VMOVUPS Y31, 448(SP) \
	VPXORD Y17, Y17, Y17 \
	VPDPWSSD.BCST (0+4*p)(SP), Y26, Y17 \
	VCVTDQ2PS Y17, Y17 \
	VMULPS.BCST (0)(DI), Y25, Y16 \
	VMOVUPS 576(SP), Y31 \
	VFMADD231PS Y16, Y17, Y31 \
	VMOVUPS Y31, 576(SP) \
	VCVTDQ2PS Y28, Y28 \
	VMULPS.BCST (0)(DI)(R13*1), Y24, Y18 \
	VMOVUPS 480(SP), Y31 \
	VFMADD231PS Y18, Y28, Y31 \
	VMOVUPS Y31, 480(SP) \
	VPXORD Y19, Y19, Y19 \
	VPDPWSSD.BCST (16+4*p)(SP), Y26, Y19 \
	VCVTDQ2PS Y19, Y19 \
	VMULPS.BCST (0)(DI)(R13*1), Y25, Y18 \
	VMOVUPS 608(SP), Y31 \
	VFMADD231PS Y18, Y19, Y31 \
	VMOVUPS Y31, 608(SP) \
	VCVTDQ2PS Y29, Y29 \
	VMULPS.BCST (0)(DI)(R13*2), Y24, Y20 \
	VMOVUPS 512(SP), Y31 \
	VFMADD231PS Y20, Y29, Y31 \
	VMOVUPS Y31, 512(SP) \
	VPXORD Y21, Y21, Y21 \
	VPDPWSSD.BCST (32+4*p)(SP), Y26, Y21 \
	VCVTDQ2PS Y21, Y21 \
	VMULPS.BCST (0)(DI)(R13*2), Y25, Y20 \
	VMOVUPS 640(SP), Y31 \
	VFMADD231PS Y20, Y21, Y31 \
	VMOVUPS Y31, 640(SP) \
	VCVTDQ2PS Y30, Y30 \
	VMULPS.BCST (0)(R12)(R13*2), Y24, Y22 \
	VMOVUPS 544(SP), Y31 \
	VFMADD231PS Y22, Y30, Y31 \
	VMOVUPS Y31, 544(SP) \
	VPXORD Y23, Y23, Y23 \
	VPDPWSSD.BCST (48+4*p)(SP), Y26, Y23 \
	VCVTDQ2PS Y23, Y23 \
	VMULPS.BCST (0)(R12)(R13*2), Y25, Y22 \
	VMOVUPS 672(SP), Y31 \
	VFMADD231PS Y22, Y23, Y31 \
	VMOVUPS Y31, 672(SP)

// Q4V_GEMM_PART multiplies part p of the rows with the four tokens.
#define Q4V_GEMM_PART(p) \
	Q4V_PART(p) \
	VMOVDQU64 (320+32*p)(SP), Y26 \
	Q4V_GEMM_TOKENS(p)

// Q4V_GEMV_PART adds part p of the rows times the token (DI) into the
// exact integer sums Y30 (scaled quants) and Y31 (mins).
#define Q4V_GEMV_PART(p) \
	Q4V_PART(p) \
	Q4V_SUBLO((DI), 4+64*p) \
	VPMULLD (64+64*p)(SP), Y27, Y28 \
	VPADDD Y28, Y30, Y30 \
	Q4V_SUBHI((DI), 36+64*p) \
	VPMULLD (96+64*p)(SP), Y27, Y27 \
	VPADDD Y27, Y30, Y30 \
	VMOVDQU64 (320+32*p)(SP), Y26 \
	VPDPWSSD.BCST (4*p)(SP), Y26, Y31

// Q4V_PREFETCH prefetches the next 1152 bytes at R10, which walks the
// eight rows after these ones (when the rows are packed, as a model's
// are) as fast as the kernel walks these: eight rows read side by side
// are eight streams through memory, which the hardware prefetchers follow
// badly (a 96 MB matrix read at about a third of the one-row kernel's
// speed without this). A prefetch past the matrix's end is harmless.
#define Q4V_PREFETCH \
	PREFETCHT0 0(R10) \
	PREFETCHT0 64(R10) \
	PREFETCHT0 128(R10) \
	PREFETCHT0 192(R10) \
	PREFETCHT0 256(R10) \
	PREFETCHT0 320(R10) \
	PREFETCHT0 384(R10) \
	PREFETCHT0 448(R10) \
	PREFETCHT0 512(R10) \
	PREFETCHT0 576(R10) \
	PREFETCHT0 640(R10) \
	PREFETCHT0 704(R10) \
	PREFETCHT0 768(R10) \
	PREFETCHT0 832(R10) \
	PREFETCHT0 896(R10) \
	PREFETCHT0 960(R10) \
	PREFETCHT0 1024(R10) \
	PREFETCHT0 1088(R10) \
	ADDQ $1152, R10

// Q4V_BLOCK_SETUP reads the eight rows' d (Y24), dmin (Y25), scales and
// mins of the current super-block.
#define Q4V_BLOCK_SETUP \
	Q4V_FP16S(0, Y24) \
	Q4V_FP16S(2, Y25) \
	Q4V_SCALES

// func tile8x4Q4_KVNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile8x4Q4_KVNNI(SB), NOSPLIT, $704-64
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), R14
	LEAQ (SI)(R14*1), BX
	LEAQ (SI)(R14*2), DX
	LEAQ (BX)(R14*2), R9
	MOVQ x+16(FP), DI
	MOVQ xStride+24(FP), R13
	LEAQ (DI)(R13*1), R12
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	LEAQ (SI)(R14*8), R10
	VPXORD Y31, Y31, Y31
	VMOVUPS Y31, 448(SP)
	VMOVUPS Y31, 480(SP)
	VMOVUPS Y31, 512(SP)
	VMOVUPS Y31, 544(SP)
	VMOVUPS Y31, 576(SP)
	VMOVUPS Y31, 608(SP)
	VMOVUPS Y31, 640(SP)
	VMOVUPS Y31, 672(SP)
	TESTQ CX, CX
	JZ    q4v_done

q4v_block:
	Q4V_PREFETCH
	Q4V_BSUMS((DI), 0)
	Q4V_BSUMS((DI)(R13*1), 1)
	Q4V_BSUMS((DI)(R13*2), 2)
	Q4V_BSUMS((R12)(R13*2), 3)
	Q4V_BLOCK_SETUP
	Q4V_GEMM_PART(0)
	Q4V_GEMM_PART(1)
	Q4V_GEMM_PART(2)
	Q4V_GEMM_PART(3)
	ADDQ $144, SI
	ADDQ $144, BX
	ADDQ $144, DX
	ADDQ $144, R9
	ADDQ $292, DI
	ADDQ $292, R12
	DECQ CX
	JNZ  q4v_block

q4v_done:
	MOVQ dst+48(FP), DI
	MOVQ dstStride+56(FP), R13
	SHLQ $2, R13
	LEAQ (DI)(R13*1), R12
	VMOVUPS 448(SP), Y0
	VSUBPS 576(SP), Y0, Y0
	VMOVUPS Y0, (DI)
	VMOVUPS 480(SP), Y0
	VSUBPS 608(SP), Y0, Y0
	VMOVUPS Y0, (DI)(R13*1)
	VMOVUPS 512(SP), Y0
	VSUBPS 640(SP), Y0, Y0
	VMOVUPS Y0, (DI)(R13*2)
	VMOVUPS 544(SP), Y0
	VSUBPS 672(SP), Y0, Y0
	VMOVUPS Y0, (R12)(R13*2)
	VZEROUPPER
	RET

// func gemv8Q4_KVNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, dst *float32)
//
// Eight rows times one token in ggml_gemv_q4_K_8x8_q8_K's order: per
// super-block, the exact integer sums of the eight rows (Y30: scaled
// quants, Y31: mins) are converted once and fused, times d·x.d and
// dmin·x.d, into Y16 and Y20.
TEXT ·gemv8Q4_KVNNI(SB), NOSPLIT, $448-48
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), R14
	LEAQ (SI)(R14*1), BX
	LEAQ (SI)(R14*2), DX
	LEAQ (BX)(R14*2), R9
	MOVQ x+16(FP), DI
	MOVQ nb+24(FP), CX
	MOVQ tab+32(FP), R8
	LEAQ (SI)(R14*8), R10
	VPXORD Y16, Y16, Y16
	VPXORD Y20, Y20, Y20
	TESTQ CX, CX
	JZ    q4g_done

q4g_block:
	Q4V_PREFETCH
	Q4V_BSUMS((DI), 0)
	Q4V_BLOCK_SETUP
	VPXORD Y30, Y30, Y30
	VPXORD Y31, Y31, Y31
	Q4V_GEMV_PART(0)
	Q4V_GEMV_PART(1)
	Q4V_GEMV_PART(2)
	Q4V_GEMV_PART(3)
	VCVTDQ2PS   Y30, Y30
	VMULPS.BCST (DI), Y24, Y29
	VFMADD231PS Y29, Y30, Y16
	VCVTDQ2PS   Y31, Y31
	VMULPS.BCST (DI), Y25, Y29
	VFMADD231PS Y29, Y31, Y20
	ADDQ $144, SI
	ADDQ $144, BX
	ADDQ $144, DX
	ADDQ $144, R9
	ADDQ $292, DI
	DECQ CX
	JNZ  q4g_block

q4g_done:
	MOVQ dst+40(FP), DI
	VSUBPS  Y20, Y16, Y0
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET
