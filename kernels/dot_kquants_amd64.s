//go:build amd64

#include "textflag.h"

// Dot products of the k-quant formats with Q8_K activations (layouts in
// dot_kquants.go). Per super-block of 256 values the integer sums are
// exact: VPMADDUBSW multiplies the unsigned quants (0..15, 0..63) with the
// signed activations into int16 pairs (at most 63·128·2 = 16128, no
// saturation), VPMADDWD multiplies those by the int16 sub-block scales
// into int32 lanes. The float32 work follows ggml's x86 code exactly (see
// dot_kquants.go): for Q2_K, Q3_K, Q5_K and Q6_K each super-block's eight
// lanes are converted to float32 and fused, times d·x.d, into eight
// float32 accumulators, added at the end as hsum_float_8 does; Q4_K
// (ggml's repacked gemv) converts each super-block's whole sum once.
// Mins and Q6_K's offset of 32 go through the activation's group sums
// (bsums) where ggml's code takes them that way.
//
// func dotXxxAVX2(w, x *byte, nb int, tab *float32) float32: nb
// super-blocks of each row; tab is the fp16 → float32 table.

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

// q4kScale<>+32i: VPSHUFB control that copies int16 lane i of each
// 128-bit half to all its lanes.
DATA q4kScale<>+0(SB)/8, $0x0100010001000100
DATA q4kScale<>+8(SB)/8, $0x0100010001000100
DATA q4kScale<>+16(SB)/8, $0x0100010001000100
DATA q4kScale<>+24(SB)/8, $0x0100010001000100
DATA q4kScale<>+32(SB)/8, $0x0302030203020302
DATA q4kScale<>+40(SB)/8, $0x0302030203020302
DATA q4kScale<>+48(SB)/8, $0x0302030203020302
DATA q4kScale<>+56(SB)/8, $0x0302030203020302
DATA q4kScale<>+64(SB)/8, $0x0504050405040504
DATA q4kScale<>+72(SB)/8, $0x0504050405040504
DATA q4kScale<>+80(SB)/8, $0x0504050405040504
DATA q4kScale<>+88(SB)/8, $0x0504050405040504
DATA q4kScale<>+96(SB)/8, $0x0706070607060706
DATA q4kScale<>+104(SB)/8, $0x0706070607060706
DATA q4kScale<>+112(SB)/8, $0x0706070607060706
DATA q4kScale<>+120(SB)/8, $0x0706070607060706
DATA q4kScale<>+128(SB)/8, $0x0908090809080908
DATA q4kScale<>+136(SB)/8, $0x0908090809080908
DATA q4kScale<>+144(SB)/8, $0x0908090809080908
DATA q4kScale<>+152(SB)/8, $0x0908090809080908
DATA q4kScale<>+160(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kScale<>+168(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kScale<>+176(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kScale<>+184(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q4kScale<>+192(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kScale<>+200(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kScale<>+208(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kScale<>+216(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q4kScale<>+224(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kScale<>+232(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kScale<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q4kScale<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL q4kScale<>(SB), RODATA|NOPTR, $256

// q6kScale<>+16i: VPSHUFB control that makes bytes 0..7 copies of byte
// 2i and bytes 8..15 copies of byte 2i+1.
DATA q6kScale<>+0(SB)/8, $0x0000000000000000
DATA q6kScale<>+8(SB)/8, $0x0101010101010101
DATA q6kScale<>+16(SB)/8, $0x0202020202020202
DATA q6kScale<>+24(SB)/8, $0x0303030303030303
DATA q6kScale<>+32(SB)/8, $0x0404040404040404
DATA q6kScale<>+40(SB)/8, $0x0505050505050505
DATA q6kScale<>+48(SB)/8, $0x0606060606060606
DATA q6kScale<>+56(SB)/8, $0x0707070707070707
DATA q6kScale<>+64(SB)/8, $0x0808080808080808
DATA q6kScale<>+72(SB)/8, $0x0909090909090909
DATA q6kScale<>+80(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA q6kScale<>+88(SB)/8, $0x0b0b0b0b0b0b0b0b
DATA q6kScale<>+96(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA q6kScale<>+104(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA q6kScale<>+112(SB)/8, $0x0e0e0e0e0e0e0e0e
DATA q6kScale<>+120(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL q6kScale<>(SB), RODATA|NOPTR, $128

// KSCALES_AT unpacks the 12 bytes of 6-bit scales and mins (Q4_K, Q5_K)
// held in the dwords M4, M8, M12 into Y6 (8 scales, 8 mins as int16), SC
// (the scales in both halves) and MN (the mins). Scales 0..3 are the low
// 6 bits of bytes 0..3, mins 0..3 of bytes 4..7; scales 4..7 take their
// low 4 bits from the low nibbles of bytes 8..11 and their high 2 bits
// from the top of bytes 0..3; mins 4..7 likewise from the high nibbles of
// bytes 8..11 and the top of bytes 4..7. Uses AX, R9..R13.
#define KSCALES_AT(M4, M8, M12, SC, MN) \
	MOVL M4, R9            \
	MOVL M8, R10           \
	MOVL M12, R11          \
	MOVL R9, R12           \
	ANDL $0x3f3f3f3f, R12  \
	MOVL R11, R13          \
	ANDL $0x0f0f0f0f, R13  \
	MOVL R9, AX            \
	SHRL $6, AX            \
	ANDL $0x03030303, AX   \
	SHLL $4, AX            \
	ORL  AX, R13           \
	SHLQ $32, R13          \
	ORQ  R13, R12          \
	MOVL R10, AX           \
	ANDL $0x3f3f3f3f, AX   \
	SHRL $4, R11           \
	ANDL $0x0f0f0f0f, R11  \
	SHRL $6, R10           \
	ANDL $0x03030303, R10  \
	SHLL $4, R10           \
	ORL  R10, R11          \
	SHLQ $32, R11          \
	ORQ  R11, AX           \
	VMOVQ     R12, X6      \
	VPINSRQ   $1, AX, X6, X6 \
	VPMOVZXBW X6, Y6       \
	VPERMQ    $0x44, Y6, SC \
	VEXTRACTI128 $1, Y6, MN

// KSCALES_MINS is KSCALES_AT for the block at SI: the scales and mins
// at SI+4 into Y10 and X7 (the span kernel takes two rows at a time).
#define KSCALES_MINS KSCALES_AT(4(SI), 8(SI), 12(SI), Y10, X7)

// KMINS does X1 = X1 - dmin·x.d·Σ_j min_j·(sum of the 32 activations of
// sub-block j) with one rounding, as Q5_K's summs += dmin * (float)sum
// compiles in ggml (dmin there is -x.d·dmin): the exact integer sum, from
// X7 (the mins) and the 16 group sums at DI+260, converted once.
#define KMINS \
	VMOVDQU      260(DI), X8      \
	VPHADDW      276(DI), X8, X8  \
	VPMADDWD     X8, X7, X7       \
	VPSHUFD      $0x4e, X7, X8    \
	VPADDD       X8, X7, X7       \
	VPSHUFD      $0xb1, X7, X8    \
	VPADDD       X8, X7, X7       \
	VCVTDQ2PS    X7, X7           \
	MOVWLZX      2(SI), AX        \
	VMOVSS       (R8)(AX*4), X5   \
	VMULSS       (DI), X5, X5     \
	VFNMADD231SS X5, X7, X1

// KFINISH adds the int32 lanes of SUM, times d·x.d (d the fp16 at SI),
// into the float32 lanes of Y0.
#define KFINISH(SUM, dOff) \
	VCVTDQ2PS    SUM, SUM       \
	MOVWLZX      dOff(SI), AX   \
	VMOVSS       (R8)(AX*4), X4 \
	VMULSS       (DI), X4, X4   \
	VBROADCASTSS X4, Y4         \
	VFMADD231PS  Y4, SUM, Y0

// ---------------------------------------------------------------- Q4_K

// Q4K_PART adds the 64 values 64j..64j+63 of the super-block into the
// int32 lanes of SUM: 32 bytes of nibbles at SI+16+32j (low nibbles are
// values 64j.., scale 2j; high nibbles values 64j+32.., scale 2j+1).
// Y10: the eight scales as int16 in both halves; Y13: bytes 0x0f.
#define Q4K_PART(j, SUM) \
	VMOVDQU    (16+32*j)(SI), Y2      \
	VPSRLW     $4, Y2, Y3             \
	VPAND      Y13, Y2, Y2            \
	VPAND      Y13, Y3, Y3            \
	VPMADDUBSW (4+64*j)(DI), Y2, Y2   \
	VPMADDUBSW (36+64*j)(DI), Y3, Y3  \
	VPSHUFB    q4kScale<>+(64*j)(SB), Y10, Y4    \
	VPSHUFB    q4kScale<>+(64*j+32)(SB), Y10, Y5 \
	VPMADDWD   Y4, Y2, Y2             \
	VPMADDWD   Y5, Y3, Y3             \
	VPADDD     Y2, SUM, SUM           \
	VPADDD     Y3, SUM, SUM

// HSUMD adds the eight int32 lanes of Y (X its low half) into the low
// lane of X; T is a scratch X register. Integer sums are exact, so the
// order does not matter.
#define HSUMD(Y, X, T) \
	VEXTRACTI128 $1, Y, T \
	VPADDD       T, X, X  \
	VPSHUFD      $0x4e, X, T \
	VPADDD       T, X, X  \
	VPSHUFD      $0xb1, X, T \
	VPADDD       T, X, X

// Q4K_PART2 is Q4K_PART with VPDPWSSD (AVX-512 VNNI), which multiplies
// the int16 pairs by the scales and adds them into SUM in one
// instruction (the same exact integer sums), for the 32 bytes of nibbles
// at MW with the scales in SC.
#define Q4K_PART2(j, MW, SC, SUM) \
	VMOVDQU    MW, Y2                 \
	VPSRLW     $4, Y2, Y3             \
	VPAND      Y13, Y2, Y2            \
	VPAND      Y13, Y3, Y3            \
	VPMADDUBSW (4+64*j)(DI), Y2, Y2   \
	VPMADDUBSW (36+64*j)(DI), Y3, Y3  \
	VPSHUFB    q4kScale<>+(64*j)(SB), SC, Y4    \
	VPSHUFB    q4kScale<>+(64*j+32)(SB), SC, Y5 \
	VPDPWSSD   Y4, Y2, SUM            \
	VPDPWSSD   Y5, Y3, SUM

// Q4K_PART_VNNI is Q4K_PART2 for the block at SI (the span kernel takes
// two rows at a time).
#define Q4K_PART_VNNI(j, SUM) Q4K_PART2(j, (16+32*j)(SI), Y10, SUM)

// Q4K_GEMV_BLOCK is one super-block of dotQ4_KAVX2 and dotQ4_KVNNI, PART
// being Q4K_PART or Q4K_PART_VNNI: the mins times the sums of the 32
// activations of their sub-blocks into the four lanes of X7, the scaled
// quants into Y11, both reduced with one horizontal add and fused, times
// [d·x.d, dmin·x.d], into lanes 0 and 1 of X0.
#define Q4K_GEMV_BLOCK(PART) \
	KSCALES_MINS \
	VMOVDQU      260(DI), X8 \
	VPHADDW      276(DI), X8, X8 \
	VPMADDWD     X8, X7, X7 \
	VPXOR Y11, Y11, Y11 \
	VPXOR Y12, Y12, Y12 \
	PART(0, Y11) \
	PART(1, Y12) \
	PART(2, Y11) \
	PART(3, Y12) \
	VPADDD       Y12, Y11, Y11 \
	VEXTRACTI128 $1, Y11, X2 \
	VPADDD       X2, X11, X11 \
	VPHADDD      X7, X11, X11 \
	VPHADDD      X11, X11, X11 \
	VCVTDQ2PS    X11, X11 \
	MOVWLZX      (SI), AX \
	VMOVSS       (R8)(AX*4), X4 \
	MOVWLZX      2(SI), AX \
	VINSERTPS    $0x10, (R8)(AX*4), X4, X4 \
	VBROADCASTSS (DI), X5 \
	VMULPS       X5, X4, X4 \
	VFMADD231PS  X4, X11, X0

// func dotQ4_KAVX2(w, x *byte, nb int, tab *float32) float32
//
// ggml_gemv_q4_K_8x8_q8_K's order (dotQ4_K): per super-block, the whole
// integer sum of the scaled quants and that of the mins times their
// activation sums, each converted once and fused, times d·x.d and
// dmin·x.d, into lanes 0 and 1 of X0; the result is lane 0 minus lane 1.
// One horizontal add reduces both sums together.
TEXT ·dotQ4_KAVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
	VXORPS X0, X0, X0
	TESTQ  CX, CX
	JZ     q4k_done

q4k_block:
	Q4K_GEMV_BLOCK(Q4K_PART)

	ADDQ $144, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q4k_block

q4k_done:
	VMOVSHDUP X0, X1
	VSUBSS    X1, X0, X0
	VMOVSS    X0, ret+32(FP)
	VZEROUPPER
	RET

// func dotQ4_KVNNI(w, x *byte, nb int, tab *float32) float32
//
// dotQ4_KAVX2 with VPDPWSSD (Q4K_PART_VNNI), for the avx512vnni set.
TEXT ·dotQ4_KVNNI(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
	VXORPS X0, X0, X0
	TESTQ  CX, CX
	JZ     q4kv_done

q4kv_block:
	Q4K_GEMV_BLOCK(Q4K_PART_VNNI)

	ADDQ $144, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q4kv_block

q4kv_done:
	VMOVSHDUP X0, X1
	VSUBSS    X1, X0, X0
	VMOVSS    X0, ret+32(FP)
	VZEROUPPER
	RET

// Q4KB_PART fuses part j (values 64j..64j+63, two sub-blocks) of the
// super-block, its exact integer sum converted once, times d·x.d (X14)
// into X0, as ggml's gemm does per 64 values.
#define Q4KB_PART(j) \
	VPXOR       Y11, Y11, Y11 \
	Q4K_PART(j, Y11)          \
	HSUMD(Y11, X11, X2)       \
	VCVTDQ2PS   X11, X11      \
	VFMADD231SS X14, X11, X0

// func dotQ4_KBatchAVX2(w, x *byte, nb int, tab *float32) float32
//
// ggml_gemm_q4_K_8x8_q8_K's order (dotQ4_KBatch): per 64 values, the
// integer sum of the scaled quants fused times d·x.d into X0 and that
// of the mins times their activation sums, times dmin·x.d, into X1.
TEXT ·dotQ4_KBatchAVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
	VXORPS X0, X0, X0
	VXORPS X1, X1, X1
	TESTQ  CX, CX
	JZ     q4kb_done

q4kb_block:
	KSCALES_MINS
	// Lane q of X7: the mins' sum of values 64q..64q+63.
	VMOVDQU      260(DI), X8
	VPHADDW      276(DI), X8, X8
	VPMADDWD     X8, X7, X7
	VCVTDQ2PS    X7, X7
	MOVWLZX      2(SI), AX
	VMOVSS       (R8)(AX*4), X5
	VMULSS       (DI), X5, X5
	VFMADD231SS  X5, X7, X1
	VPSRLDQ      $4, X7, X7
	VFMADD231SS  X5, X7, X1
	VPSRLDQ      $4, X7, X7
	VFMADD231SS  X5, X7, X1
	VPSRLDQ      $4, X7, X7
	VFMADD231SS  X5, X7, X1

	MOVWLZX      (SI), AX
	VMOVSS       (R8)(AX*4), X14
	VMULSS       (DI), X14, X14
	Q4KB_PART(0)
	Q4KB_PART(1)
	Q4KB_PART(2)
	Q4KB_PART(3)

	ADDQ $144, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q4kb_block

q4kb_done:
	VSUBSS X1, X0, X0
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- Q6_K

// Q6K_HALF adds values 128c..128c+127 of the super-block into the int32
// lanes of SUM. Value 128c+32k+l has the low 4 bits of ql byte 64c+l
// (k=0: low nibble, k=2: high nibble) or 64c+32+l (k=1, 3) and, as bits
// 4-5, bits 2k..2k+1 of qh byte 32c+l; each 32 values span two groups of
// 16 with their own int8 scales. X8: the 16 scales; Y14: bytes 0x0f;
// Y15: bytes 0x30.
#define Q6K_HALF(c, SUM) \
	VMOVDQU    (64*c)(SI), Y2     \
	VMOVDQU    (64*c+32)(SI), Y3  \
	VMOVDQU    (128+32*c)(SI), Y9 \
	VPSRLW     $4, Y2, Y4         \
	VPSRLW     $4, Y3, Y5         \
	VPAND      Y14, Y2, Y2        \
	VPAND      Y14, Y3, Y3        \
	VPAND      Y14, Y4, Y4        \
	VPAND      Y14, Y5, Y5        \
	VPSLLW     $4, Y9, Y6         \
	VPAND      Y15, Y6, Y6        \
	VPOR       Y6, Y2, Y2         \
	VPSLLW     $2, Y9, Y6         \
	VPAND      Y15, Y6, Y6        \
	VPOR       Y6, Y3, Y3         \
	VPAND      Y15, Y9, Y6        \
	VPOR       Y6, Y4, Y4         \
	VPSRLW     $2, Y9, Y6         \
	VPAND      Y15, Y6, Y6        \
	VPOR       Y6, Y5, Y5         \
	VPMADDUBSW (4+128*c)(DI), Y2, Y2  \
	VPMADDUBSW (36+128*c)(DI), Y3, Y3 \
	VPMADDUBSW (68+128*c)(DI), Y4, Y4 \
	VPMADDUBSW (100+128*c)(DI), Y5, Y5 \
	VPSHUFB    q6kScale<>+(64*c)(SB), X8, X6    \
	VPMOVSXBW  X6, Y6                            \
	VPMADDWD   Y6, Y2, Y2                        \
	VPSHUFB    q6kScale<>+(64*c+16)(SB), X8, X6 \
	VPMOVSXBW  X6, Y6                            \
	VPMADDWD   Y6, Y3, Y3                        \
	VPSHUFB    q6kScale<>+(64*c+32)(SB), X8, X6 \
	VPMOVSXBW  X6, Y6                            \
	VPMADDWD   Y6, Y4, Y4                        \
	VPSHUFB    q6kScale<>+(64*c+48)(SB), X8, X6 \
	VPMOVSXBW  X6, Y6                            \
	VPMADDWD   Y6, Y5, Y5                        \
	VPADDD     Y2, Y3, Y3                        \
	VPADDD     Y4, Y5, Y5                        \
	VPADDD     Y3, SUM, SUM                      \
	VPADDD     Y5, SUM, SUM

// func dotQ6_KAVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ6_KAVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x0f0f0f0f, X14, Y14)
	BCAST32($0x30303030, X15, Y15)
	VXORPS Y0, Y0, Y0
	TESTQ  CX, CX
	JZ     q6k_done

q6k_block:
	// The quants are stored plus 32: take 32·Σ_g scale_g·bsum_g off.
	VMOVDQU   192(SI), X8
	VPMOVSXBW X8, Y7
	VPMADDWD  260(DI), Y7, Y7
	VPSLLD    $5, Y7, Y11
	VPXOR     Y12, Y12, Y12
	Q6K_HALF(0, Y12)
	Q6K_HALF(1, Y12)
	VPSUBD       Y11, Y12, Y12
	VCVTDQ2PS    Y12, Y12
	MOVWLZX      208(SI), AX
	VMOVSS       (R8)(AX*4), X4
	VMULSS       (DI), X4, X4
	VBROADCASTSS X4, Y4
	VFMADD231PS  Y4, Y12, Y0

	ADDQ $210, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q6k_block

q6k_done:
	HSUM8(Y0, X0, X2)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- Q5_K

// Q5K_PART is Q4K_PART with the fifth bits: bit 2j (low nibbles) and
// 2j+1 (high nibbles) of qh byte l, for value 64j+l and 64j+32+l, moved to
// bit 4 by a shift in 16-bit lanes that keeps it inside its byte, then
// masked with Y14 (bytes 0x10). Y9: the 32 qh bytes.
#define Q5K_PART(j, SHLO, nlo, SHHI, nhi, SUM) \
	VMOVDQU    (48+32*j)(SI), Y2      \
	VPSRLW     $4, Y2, Y3             \
	VPAND      Y13, Y2, Y2            \
	VPAND      Y13, Y3, Y3            \
	SHLO       $nlo, Y9, Y4           \
	VPAND      Y14, Y4, Y4            \
	VPOR       Y4, Y2, Y2             \
	SHHI       $nhi, Y9, Y5           \
	VPAND      Y14, Y5, Y5            \
	VPOR       Y5, Y3, Y3             \
	VPMADDUBSW (4+64*j)(DI), Y2, Y2   \
	VPMADDUBSW (36+64*j)(DI), Y3, Y3  \
	VPSHUFB    q4kScale<>+(64*j)(SB), Y10, Y4    \
	VPSHUFB    q4kScale<>+(64*j+32)(SB), Y10, Y5 \
	VPMADDWD   Y4, Y2, Y2             \
	VPMADDWD   Y5, Y3, Y3             \
	VPADDD     Y2, SUM, SUM           \
	VPADDD     Y3, SUM, SUM

// func dotQ5_KAVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ5_KAVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
	BCAST32($0x10101010, X14, Y14)
	VXORPS Y0, Y0, Y0
	VXORPS X1, X1, X1
	TESTQ  CX, CX
	JZ     q5k_done

q5k_block:
	KSCALES_MINS
	KMINS
	VMOVDQU 16(SI), Y9
	VPXOR   Y11, Y11, Y11
	VPXOR   Y12, Y12, Y12
	Q5K_PART(0, VPSLLW, 4, VPSLLW, 3, Y11)
	Q5K_PART(1, VPSLLW, 2, VPSLLW, 1, Y12)
	Q5K_PART(2, VPSRLW, 0, VPSRLW, 1, Y11)
	Q5K_PART(3, VPSRLW, 2, VPSRLW, 3, Y12)
	VPADDD Y12, Y11, Y11
	KFINISH(Y11, 0)
	ADDQ $292, DI
	ADDQ $176, SI
	DECQ CX
	JNZ  q5k_block

q5k_done:
	HSUM8(Y0, X0, X2)
	VADDSS    X1, X0, X0
	VMOVSS    X0, ret+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- Q3_K

// Q3K_PART adds values 128c+32s..128c+32s+31 (groups 8c+2s, 8c+2s+1)
// into SUM: 2 bits from (qs byte 32c+l) >> 2s and, as bit 2, bit 4c+s of
// hmask byte l, moved there by SHOP $sh in 16-bit lanes (the bit stays in
// its byte). The quants are 0..7 here, their values minus 4: the 4 is
// taken off each int16 pair sum before the scales, so that every lane
// holds what ggml's AVX2 code puts there. Y2: the 32 qs bytes of half c;
// Y9: the hmask bytes; X8: the 16 int8 scales; Y13: bytes 3; Y14: bytes 4.
#define Q3K_PART(c, s, SHOP, sh, SUM) \
	VPSRLW     $(2*s), Y2, Y3                     \
	VPAND      Y13, Y3, Y3                        \
	SHOP       $sh, Y9, Y4                        \
	VPAND      Y14, Y4, Y4                        \
	VPOR       Y4, Y3, Y3                         \
	VPMADDUBSW (4+128*c+32*s)(DI), Y3, Y3         \
	VPMADDUBSW (4+128*c+32*s)(DI), Y14, Y4        \
	VPSUBW     Y4, Y3, Y3                         \
	VPSHUFB    q6kScale<>+(16*(4*c+s))(SB), X8, X5 \
	VPMOVSXBW  X5, Y5                             \
	VPMADDWD   Y5, Y3, Y3                         \
	VPADDD     Y3, SUM, SUM

// func dotQ3_KAVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ3_KAVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x03030303, X13, Y13)
	BCAST32($0x04040404, X14, Y14)
	BCAST32($0x20202020, X15, Y15)
	VXORPS Y0, Y0, Y0
	TESTQ  CX, CX
	JZ     q3k_done

q3k_block:
	// Sixteen 6-bit scales, stored plus 32: the low 4 bits in the nibbles
	// of bytes 0..7 (scale j in byte j%8, high nibble for j >= 8), the high
	// 2 bits in bytes 8..11 (two bits per scale, scale j at bits
	// 2(j/4)..2(j/4)+1 of byte 8+j%4).
	MOVL 96(SI), R9   // a0
	MOVL 100(SI), R10 // a1
	MOVL 104(SI), R11 // tmp
	MOVL R9, R12
	ANDL $0x0f0f0f0f, R12
	MOVL R11, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	ORL  AX, R12          // scales 0..3
	MOVL R10, R13
	ANDL $0x0f0f0f0f, R13
	MOVL R11, AX
	SHRL $2, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	ORL  AX, R13          // scales 4..7
	SHLQ $32, R13
	ORQ  R13, R12
	SHRL $4, R9
	ANDL $0x0f0f0f0f, R9
	MOVL R11, AX
	SHRL $4, AX
	ANDL $0x03030303, AX
	SHLL $4, AX
	ORL  AX, R9           // scales 8..11
	SHRL $4, R10
	ANDL $0x0f0f0f0f, R10
	SHRL $6, R11
	ANDL $0x03030303, R11
	SHLL $4, R11
	ORL  R11, R10         // scales 12..15
	SHLQ $32, R10
	ORQ  R10, R9
	VMOVQ   R12, X8
	VPINSRQ $1, R9, X8, X8
	VPSUBB  X15, X8, X8   // minus 32: int8 scales

	VMOVDQU (SI), Y9
	VPXOR   Y12, Y12, Y12
	VMOVDQU 32(SI), Y2
	Q3K_PART(0, 0, VPSLLW, 2, Y12)
	Q3K_PART(0, 1, VPSLLW, 1, Y12)
	Q3K_PART(0, 2, VPSRLW, 0, Y12)
	Q3K_PART(0, 3, VPSRLW, 1, Y12)
	VMOVDQU 64(SI), Y2
	Q3K_PART(1, 0, VPSRLW, 2, Y12)
	Q3K_PART(1, 1, VPSRLW, 3, Y12)
	Q3K_PART(1, 2, VPSRLW, 4, Y12)
	Q3K_PART(1, 3, VPSRLW, 5, Y12)
	KFINISH(Y12, 108)

	ADDQ $110, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q3k_block

q3k_done:
	HSUM8(Y0, X0, X2)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- Q2_K

// Q2K_PART adds values 128c+32j..128c+32j+31 (groups 8c+2j, 8c+2j+1)
// into SUM: the 2 bits (qs byte 32c+l) >> 2j, times the groups' 4-bit
// scales. Y2: the 32 qs bytes of half c; X8: the 16 scales; Y13: bytes 3.
#define Q2K_PART(c, j, SUM) \
	VPSRLW     $(2*j), Y2, Y3                     \
	VPAND      Y13, Y3, Y3                        \
	VPMADDUBSW (4+128*c+32*j)(DI), Y3, Y3         \
	VPSHUFB    q6kScale<>+(16*(4*c+j))(SB), X8, X5 \
	VPMOVZXBW  X5, Y5                             \
	VPMADDWD   Y5, Y3, Y3                         \
	VPADDD     Y3, SUM, SUM

// Q2K_MINS sets Y9 to the mins times the groups' activation sums (lane
// k: groups 2k and 2k+1), from the scale bytes in X8, which it leaves
// as the 16 scales; X14: bytes 0x0f.
#define Q2K_MINS \
	VMOVDQU      (SI), X8        \
	VPSRLW       $4, X8, X9      \
	VPAND        X14, X9, X9     \
	VPAND        X14, X8, X8     \
	VPMOVZXBW    X9, Y9          \
	VPMADDWD     260(DI), Y9, Y9

// Q2K_DMIN sets X4 to [d·x.d, dmin·x.d].
#define Q2K_DMIN \
	MOVWLZX      80(SI), AX                  \
	VMOVSS       (R8)(AX*4), X4              \
	MOVWLZX      82(SI), AX                  \
	VINSERTPS    $0x10, (R8)(AX*4), X4, X4   \
	VBROADCASTSS (DI), X5                    \
	VMULPS       X5, X4, X4

// Q2K_FUSE reduces the four int32 lanes of X12 (scaled quants) and of
// MIN (mins) to one sum each with two horizontal adds, converts them and
// fuses them, times X4, into lanes 0 and 1 of X0.
#define Q2K_FUSE(MIN) \
	VPHADDD     MIN, X12, X12 \
	VPHADDD     X12, X12, X12 \
	VCVTDQ2PS   X12, X12      \
	VFMADD231PS X4, X12, X0

// func dotQ2_KAVX2(w, x *byte, nb int, tab *float32) float32
//
// ggml_gemv_q2_K_8x8_q8_K's order (dotQ2_K): per super-block, the whole
// integer sums of the scaled quants and of the mins times their
// activation sums, converted once and fused, times d·x.d and dmin·x.d,
// into lanes 0 and 1 of X0; the result is lane 0 minus lane 1.
TEXT ·dotQ2_KAVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x03030303, X13, Y13)
	BCAST32($0x0f0f0f0f, X14, Y14)
	VXORPS X0, X0, X0
	TESTQ  CX, CX
	JZ     q2k_done

q2k_block:
	Q2K_MINS
	VPXOR   Y12, Y12, Y12
	VMOVDQU 16(SI), Y2
	Q2K_PART(0, 0, Y12)
	Q2K_PART(0, 1, Y12)
	Q2K_PART(0, 2, Y12)
	Q2K_PART(0, 3, Y12)
	VMOVDQU 48(SI), Y2
	Q2K_PART(1, 0, Y12)
	Q2K_PART(1, 1, Y12)
	Q2K_PART(1, 2, Y12)
	Q2K_PART(1, 3, Y12)
	VEXTRACTI128 $1, Y12, X2
	VPADDD       X2, X12, X12
	VEXTRACTI128 $1, Y9, X2
	VPADDD       X2, X9, X9
	Q2K_DMIN
	Q2K_FUSE(X9)

	ADDQ $84, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q2k_block

q2k_done:
	VMOVSHDUP X0, X1
	VSUBSS    X1, X0, X0
	VMOVSS    X0, ret+32(FP)
	VZEROUPPER
	RET

// func dotQ2_KBatchAVX2(w, x *byte, nb int, tab *float32) float32
//
// ggml_gemm_q2_K_8x8_q8_K's order (dotQ2_KBatch): as dotQ2_KAVX2, one
// fused multiply-add per 128 values (groups 8c..8c+7: the mins' lanes of
// the 128-bit half c of Y9).
TEXT ·dotQ2_KBatchAVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x03030303, X13, Y13)
	BCAST32($0x0f0f0f0f, X14, Y14)
	VXORPS X0, X0, X0
	TESTQ  CX, CX
	JZ     q2kb_done

q2kb_block:
	Q2K_MINS
	Q2K_DMIN
	VPXOR   Y12, Y12, Y12
	VMOVDQU 16(SI), Y2
	Q2K_PART(0, 0, Y12)
	Q2K_PART(0, 1, Y12)
	Q2K_PART(0, 2, Y12)
	Q2K_PART(0, 3, Y12)
	VEXTRACTI128 $1, Y12, X2
	VPADDD       X2, X12, X12
	Q2K_FUSE(X9)
	VPXOR   Y12, Y12, Y12
	VMOVDQU 48(SI), Y2
	Q2K_PART(1, 0, Y12)
	Q2K_PART(1, 1, Y12)
	Q2K_PART(1, 2, Y12)
	Q2K_PART(1, 3, Y12)
	VEXTRACTI128 $1, Y12, X2
	VPADDD       X2, X12, X12
	VEXTRACTI128 $1, Y9, X9
	Q2K_FUSE(X9)

	ADDQ $84, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q2kb_block

q2kb_done:
	VMOVSHDUP X0, X1
	VSUBSS    X1, X0, X0
	VMOVSS    X0, ret+32(FP)
	VZEROUPPER
	RET

// ------------------------------------------------- Q4_K span (one token)

// func spanQ4_KVNNI(w *byte, rowBytes int, pairs int, x *byte, nb int, tab *float32, out *float32)
//
// dotQ4_KVNNI for the 2·pairs consecutive rows at w (row r at
// w + r·rowBytes) into out[r], with the same bits, in one call: for one
// token MatMulRows hands it a worker's whole range of rows. The rows go
// two at a time: rows A and B of a pair pass through each super-block
// together, which gives the core two independent chains of work, shares
// the activation's sub-block sums, and reduces both rows' four integer
// sums ([A, A mins, B, B mins]) with three horizontal adds, one
// conversion and one fused multiply-add on four lanes; each lane does
// exactly the one-row kernel's float operations.
//
// Two rows read side by side defeat the hardware prefetchers (about a
// third of the speed of one row after the other, from memory), so every
// super-block prefetches, into L1, its share (288 bytes) of the pair two
// pairs ahead, one linear stream: AX = SI + 144·(super-blocks done) +
// 4·rowBytes.
TEXT ·spanQ4_KVNNI(SB), NOSPLIT, $0-56
	MOVQ pairs+16(FP), R14
	TESTQ R14, R14
	JLE  q4ks_done
	MOVQ nb+32(FP), CX
	TESTQ CX, CX
	JLE  q4ks_zero
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), BX
	MOVQ out+48(FP), DX
	MOVQ tab+40(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
q4ks_pair:
	MOVQ x+24(FP), DI
	MOVQ nb+32(FP), CX
	VXORPS X0, X0, X0
q4ks_block:
	MOVQ nb+32(FP), AX
	SUBQ CX, AX
	IMULQ $144, AX
	ADDQ SI, AX
	LEAQ (AX)(BX*4), AX
	PREFETCHT0 (AX)
	PREFETCHT0 64(AX)
	PREFETCHT0 128(AX)
	PREFETCHT0 192(AX)
	PREFETCHT0 256(AX)
	KSCALES_AT(4(SI), 8(SI), 12(SI), Y10, X7)
	KSCALES_AT(4(SI)(BX*1), 8(SI)(BX*1), 12(SI)(BX*1), Y14, X15)
	VMOVDQU  260(DI), X9
	VPHADDW  276(DI), X9, X9
	VPMADDWD X9, X7, X7
	VPMADDWD X9, X15, X15
	VPXOR Y11, Y11, Y11
	VPXOR Y12, Y12, Y12
	VPXOR Y1, Y1, Y1
	VPXOR Y8, Y8, Y8
	Q4K_PART2(0, 16(SI), Y10, Y11)
	Q4K_PART2(0, 16(SI)(BX*1), Y14, Y1)
	Q4K_PART2(1, 48(SI), Y10, Y12)
	Q4K_PART2(1, 48(SI)(BX*1), Y14, Y8)
	Q4K_PART2(2, 80(SI), Y10, Y11)
	Q4K_PART2(2, 80(SI)(BX*1), Y14, Y1)
	Q4K_PART2(3, 112(SI), Y10, Y12)
	Q4K_PART2(3, 112(SI)(BX*1), Y14, Y8)
	VPADDD       Y12, Y11, Y11
	VEXTRACTI128 $1, Y11, X2
	VPADDD       X2, X11, X11
	VPADDD       Y8, Y1, Y1
	VEXTRACTI128 $1, Y1, X3
	VPADDD       X3, X1, X1
	VPHADDD      X7, X11, X11
	VPHADDD      X15, X1, X1
	VPHADDD      X1, X11, X11
	VCVTDQ2PS    X11, X11
	MOVWLZX      (SI), AX
	VMOVSS       (R8)(AX*4), X4
	MOVWLZX      2(SI), AX
	VINSERTPS    $0x10, (R8)(AX*4), X4, X4
	MOVWLZX      (SI)(BX*1), AX
	VINSERTPS    $0x20, (R8)(AX*4), X4, X4
	MOVWLZX      2(SI)(BX*1), AX
	VINSERTPS    $0x30, (R8)(AX*4), X4, X4
	VBROADCASTSS (DI), X5
	VMULPS       X5, X4, X4
	VFMADD231PS  X4, X11, X0
	ADDQ $144, SI
	ADDQ $292, DI
	DECQ CX
	JNZ  q4ks_block
	VMOVSHDUP X0, X1
	VSUBPS    X1, X0, X0
	VSHUFPS   $0x88, X0, X0, X0
	VMOVQ     X0, (DX)
	ADDQ $8, DX
	MOVQ nb+32(FP), AX
	IMULQ $144, AX
	SUBQ AX, SI
	LEAQ (SI)(BX*2), SI
	DECQ R14
	JNZ  q4ks_pair
	JMP  q4ks_done
q4ks_zero:
	MOVQ out+48(FP), DX
q4ks_zloop:
	MOVQ $0, (DX)
	ADDQ $8, DX
	DECQ R14
	JNZ  q4ks_zloop
q4ks_done:
	VZEROUPPER
	RET

