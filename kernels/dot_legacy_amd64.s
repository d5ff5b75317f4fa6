//go:build amd64

#include "textflag.h"

// Dot products of the 32-value block formats with Q8_0 / Q8_1
// activations. Per block, the 32 integer products are summed exactly into
// eight 32-bit lanes, the lanes are converted to float32 and added, times
// the block's scale dw·dx (rounded to float32 as in the portable code),
// into float32 accumulators with FMA. Two accumulators (two blocks per
// loop iteration) hide the FMA latency.
//
// func dotXxxAVX2(w, x *byte, nb int) float32: nb blocks of each row.
//
// Signed × signed byte products: VPMADDUBSW and VPDPBUSD take one
// unsigned operand, so the weight's absolute value is used and its sign
// moved onto the activation (VPSIGNB). That is exact for any weight byte
// (|-128| = 128 is fine as unsigned) and for activations in [-127, 127],
// the range QuantizeRow produces (negating -128 would overflow).

// HSUM8 adds the eight float32 lanes of Y (X its low half) into the low
// lane of X; T is a scratch X register.
#define HSUM8(Y, X, T) \
	VEXTRACTF128 $1, Y, T \
	VADDPS       T, X, X  \
	VMOVHLPS     X, X, T  \
	VADDPS       T, X, X  \
	VMOVSHDUP    X, T     \
	VADDSS       T, X, X

// ROWS4 loads the arguments of a four-row kernel
// (defined before the first TEXT, where vet does not mistake it for
// part of a function):
// func(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)
#define ROWS4 \
	MOVQ w+0(FP), SI            \
	MOVQ rowBytes+8(FP), R9     \
	MOVQ x+16(FP), DI           \
	MOVQ nb+24(FP), CX          \
	MOVQ tab+32(FP), R8         \
	MOVQ out+40(FP), DX         \
	LEAQ (SI)(R9*1), R10        \
	LEAQ (R10)(R9*1), R11       \
	LEAQ (R11)(R9*1), R12

// BCAST32 fills the 32-bit lanes of Y (X its low half) with the constant c.
#define BCAST32(c, X, Y) \
	MOVL         c, AX \
	VMOVD        AX, X \
	VPBROADCASTD X, Y

// SCALE_TAB broadcasts fp16(w[wd]) * fp16(x[xd]) as float32 into D (XD
// its low half). The fp16 values are converted by lookups in the
// package's fp16 → float32 table at R8, as ggml's x86 kernels do: cheaper
// than VCVTPH2PS, and the few distinct scales of a row stay in cache.
#define SCALE_TAB(wd, xd, D, XD) \
	MOVWLZX      wd, AX          \
	MOVWLZX      xd, BX          \
	VMOVSS       (R8)(AX*4), XD  \
	VMULSS       (R8)(BX*4), XD, XD \
	VBROADCASTSS XD, D

// ---------------------------------------------------------------- Q8_0

// Q80_AVX2 adds block (SI+o, DI+o) into ACC. Y15: int16 ones.
#define Q80_AVX2(o, ACC) \
	VMOVDQU    (o+2)(SI), Y2 \
	VMOVDQU    (o+2)(DI), Y3 \
	VPSIGNB    Y2, Y3, Y3   \
	VPABSB     Y2, Y2       \
	VPMADDUBSW Y3, Y2, Y2   \
	VPMADDWD   Y15, Y2, Y2  \
	VCVTDQ2PS  Y2, Y2       \
	SCALE_TAB((o)(SI), (o)(DI), Y4, X4) \
	VFMADD231PS Y4, Y2, ACC

// func dotQ8_0AVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ8_0AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x00010001, X15, Y15)
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	CMPQ   CX, $2
	JB     q80avx2_one

q80avx2_two:
	Q80_AVX2(0, Y0)
	Q80_AVX2(34, Y1)
	ADDQ $68, SI
	ADDQ $68, DI
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  q80avx2_two

q80avx2_one:
	TESTQ CX, CX
	JZ    q80avx2_done
	Q80_AVX2(0, Y0)

q80avx2_done:
	VADDPS Y1, Y0, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// Q80_VNNI is Q80_AVX2 with VPDPBUSD doing the multiply and the sums of
// four in one instruction.
#define Q80_VNNI(o, ACC) \
	VMOVDQU    (o+2)(SI), Y2 \
	VMOVDQU    (o+2)(DI), Y3 \
	VPSIGNB    Y2, Y3, Y3   \
	VPABSB     Y2, Y2       \
	VPXOR      Y6, Y6, Y6   \
	VPDPBUSD   Y3, Y2, Y6   \
	VCVTDQ2PS  Y6, Y2       \
	SCALE_TAB((o)(SI), (o)(DI), Y4, X4) \
	VFMADD231PS Y4, Y2, ACC

// func dotQ8_0VNNI(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ8_0VNNI(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	CMPQ   CX, $2
	JB     q80vnni_one

q80vnni_two:
	Q80_VNNI(0, Y0)
	Q80_VNNI(34, Y1)
	ADDQ $68, SI
	ADDQ $68, DI
	SUBQ $2, CX
	CMPQ CX, $2
	JAE  q80vnni_two

q80vnni_one:
	TESTQ CX, CX
	JZ    q80vnni_done
	Q80_VNNI(0, Y0)

q80vnni_done:
	VADDPS Y1, Y0, Y0
	HSUM8(Y0, X0, X1)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- Q4_0

// The Q4_0 kernels take two blocks A, B per step and keep block A in the
// low 128-bit half of each register and B in the high half: one 32-byte
// register holds the 32 nibble bytes of A and B (A's low nibbles are its
// values 0..15, B's likewise), and the activations are arranged to match
// (values 0..15 of A and B in one register, values 16..31 in another).
// The nibbles 0..15 are used unsigned as they are and the offset taken
// out afterwards, Σ(q-8)·x = Σq·x - Σ8·x; Σ8·x depends on the activation
// only, so the four-row kernels compute it once for all rows.
//
// The one-row kernel and the four-row kernel (dot4) perform the same float
// operations in the same order for each row, so MatMulRows gives the same
// bits whichever of them handles a row.
//
// Registers: DI the activations, R8 the fp16 table; Y4, Y5 the
// activation values 0..15 and 16..31 of A|B; Y6 Σ8·x (int32 lanes, A in
// 0..3, B in 4..7); Y7 the activation scales (A's in lanes 0..3, B's in
// 4..7); Y12 bytes 8; Y13 bytes 0x0f; Y15 int16 ones (AVX2 only).

// Q40_X2 prepares the activation blocks A (DI), B (DI+34).
#define Q40_X2 \
	VMOVDQU      2(DI), X4            \
	VINSERTI128  $1, 36(DI), Y4, Y4   \
	VMOVDQU      18(DI), X5           \
	VINSERTI128  $1, 52(DI), Y5, Y5   \
	MOVWLZX      (DI), AX             \
	MOVWLZX      34(DI), BX           \
	VBROADCASTSS (R8)(AX*4), X7       \
	VBROADCASTSS (R8)(BX*4), X6       \
	VINSERTF128  $1, X6, Y7, Y7

// Q40_X1 prepares the single activation block A (DI); B is zero.
#define Q40_X1 \
	VMOVDQU      2(DI), X4            \
	VMOVDQU      18(DI), X5           \
	MOVWLZX      (DI), AX             \
	VBROADCASTSS (R8)(AX*4), Y7

// Σ8·x of the prepared blocks into Y6 (AVX2), or -Σ8·x (VNNI, where it
// then starts each row's VPDPBUSD sums).
#define Q40_XSUM_VNNI \
	VPXOR    Y6, Y6, Y6   \
	VPDPBUSD Y4, Y12, Y6  \
	VPDPBUSD Y5, Y12, Y6  \
	VPXOR    Y10, Y10, Y10 \
	VPSUBD   Y6, Y10, Y6

#define Q40_XSUM_AVX2 \
	VPMADDUBSW Y4, Y12, Y6  \
	VPMADDUBSW Y5, Y12, Y9  \
	VPADDW     Y9, Y6, Y6   \
	VPMADDWD   Y15, Y6, Y6

// Q40_W2 loads the nibbles of blocks A (R), B (R+18) of a row into Y8
// (low nibbles) and Y9 (high nibbles) and its scales into Y11 (A's in
// lanes 0..3, B's in 4..7).
#define Q40_W2(R) \
	VMOVDQU      2(R), X8             \
	VINSERTI128  $1, 20(R), Y8, Y8    \
	MOVWLZX      (R), AX              \
	MOVWLZX      18(R), BX            \
	VBROADCASTSS (R8)(AX*4), X11      \
	VBROADCASTSS (R8)(BX*4), X10      \
	VINSERTF128  $1, X10, Y11, Y11    \
	VPSRLW       $4, Y8, Y9           \
	VPAND        Y13, Y8, Y8          \
	VPAND        Y13, Y9, Y9

// Q40_W1 is Q40_W2 for block A alone (B's lanes are zero).
#define Q40_W1(R) \
	VMOVDQU      2(R), X8             \
	MOVWLZX      (R), AX              \
	VBROADCASTSS (R8)(AX*4), Y11      \
	VPSRLW       $4, Y8, Y9           \
	VPAND        Y13, Y8, Y8          \
	VPAND        Y13, Y9, Y9

// Q40_DOT_* multiplies the loaded row blocks with the activations and
// adds them, scaled, into ACC.
#define Q40_DOT_VNNI(ACC) \
	VMOVDQA     Y6, Y10         \
	VPDPBUSD    Y4, Y8, Y10     \
	VPDPBUSD    Y5, Y9, Y10     \
	VCVTDQ2PS   Y10, Y10        \
	VMULPS      Y7, Y11, Y11    \
	VFMADD231PS Y11, Y10, ACC

#define Q40_DOT_AVX2(ACC) \
	VPMADDUBSW  Y4, Y8, Y8      \
	VPMADDUBSW  Y5, Y9, Y9      \
	VPADDW      Y9, Y8, Y8      \
	VPMADDWD    Y15, Y8, Y8     \
	VPSUBD      Y6, Y8, Y8      \
	VCVTDQ2PS   Y8, Y10         \
	VMULPS      Y7, Y11, Y11    \
	VFMADD231PS Y11, Y10, ACC

// Q40_ONE_ROW is the body of a one-row kernel, with the VNNI or AVX2
// macros for XSUM and DOT and the given label names.
#define Q40_ONE_ROW(XSUM, DOT, two, one, done) \
	VXORPS Y0, Y0, Y0        \
	CMPQ   CX, $2            \
	JB     one               \
two:                         \
	Q40_X2                   \
	XSUM             \
	Q40_W2(SI)               \
	DOT(Y0)          \
	ADDQ $36, SI             \
	ADDQ $68, DI             \
	SUBQ $2, CX              \
	CMPQ CX, $2              \
	JAE  two                 \
one:                         \
	TESTQ CX, CX             \
	JZ    done               \
	Q40_X1                   \
	XSUM             \
	Q40_W1(SI)               \
	DOT(Y0)          \
done:                        \
	HSUM8(Y0, X0, X1)

// func dotQ4_0VNNI(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ4_0VNNI(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
	BCAST32($0x08080808, X12, Y12)
	Q40_ONE_ROW(Q40_XSUM_VNNI, Q40_DOT_VNNI, q40vnni_two, q40vnni_one, q40vnni_done)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func dotQ4_0AVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ4_0AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	BCAST32($0x0f0f0f0f, X13, Y13)
	BCAST32($0x08080808, X12, Y12)
	BCAST32($0x00010001, X15, Y15)
	Q40_ONE_ROW(Q40_XSUM_AVX2, Q40_DOT_AVX2, q40avx2_two, q40avx2_one, q40avx2_done)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// Q40_FOUR_ROWS is the body of a four-row kernel (arguments as for
// Q40_ONE_ROW): rows at SI, R10, R11, R12 into Y0..Y3, results to DX.
// Four rows read side by side are four streams through memory, which the
// hardware prefetchers follow badly (decode of a model larger than the
// cache read its Q4_0 weights at 6 GB/s on Zen 4): so each step also
// prefetches 144 bytes of the next four rows, which R13 walks from their
// start as fast as the steps walk these four, so that they are in the
// cache when the next call comes; the weights then stream at 11-13 GB/s. At the matrix's last rows the prefetches run past its end, which
// is harmless: a prefetch never faults.
#define Q40_FOUR_ROWS(XSUM, DOT, two, one, done) \
	VXORPS Y0, Y0, Y0        \
	VXORPS Y1, Y1, Y1        \
	VXORPS Y2, Y2, Y2        \
	VXORPS Y3, Y3, Y3        \
	LEAQ   (R12)(R9*1), R13  \
	CMPQ   CX, $2            \
	JB     one               \
two:                         \
	PREFETCHT0 (R13)         \
	PREFETCHT0 64(R13)       \
	PREFETCHT0 128(R13)      \
	ADDQ   $144, R13         \
	Q40_X2                   \
	XSUM             \
	Q40_W2(SI)               \
	DOT(Y0)          \
	Q40_W2(R10)              \
	DOT(Y1)          \
	Q40_W2(R11)              \
	DOT(Y2)          \
	Q40_W2(R12)              \
	DOT(Y3)          \
	ADDQ $36, SI             \
	ADDQ $36, R10            \
	ADDQ $36, R11            \
	ADDQ $36, R12            \
	ADDQ $68, DI             \
	SUBQ $2, CX              \
	CMPQ CX, $2              \
	JAE  two                 \
one:                         \
	TESTQ CX, CX             \
	JZ    done               \
	Q40_X1                   \
	XSUM             \
	Q40_W1(SI)               \
	DOT(Y0)          \
	Q40_W1(R10)              \
	DOT(Y1)          \
	Q40_W1(R11)              \
	DOT(Y2)          \
	Q40_W1(R12)              \
	DOT(Y3)          \
done:                        \
	HSUM8(Y0, X0, X4)        \
	HSUM8(Y1, X1, X4)        \
	HSUM8(Y2, X2, X4)        \
	HSUM8(Y3, X3, X4)        \
	VMOVSS X0, (DX)          \
	VMOVSS X1, 4(DX)         \
	VMOVSS X2, 8(DX)         \
	VMOVSS X3, 12(DX)

// func dot4Q4_0VNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)
TEXT ·dot4Q4_0VNNI(SB), NOSPLIT, $0-48
	ROWS4
	BCAST32($0x0f0f0f0f, X13, Y13)
	BCAST32($0x08080808, X12, Y12)
	Q40_FOUR_ROWS(Q40_XSUM_VNNI, Q40_DOT_VNNI, q40vnni4_two, q40vnni4_one, q40vnni4_done)
	VZEROUPPER
	RET

// func dot4Q4_0AVX2(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)
TEXT ·dot4Q4_0AVX2(SB), NOSPLIT, $0-48
	ROWS4
	BCAST32($0x0f0f0f0f, X13, Y13)
	BCAST32($0x08080808, X12, Y12)
	BCAST32($0x00010001, X15, Y15)
	Q40_FOUR_ROWS(Q40_XSUM_AVX2, Q40_DOT_AVX2, q40avx24_two, q40avx24_one, q40avx24_done)
	VZEROUPPER
	RET

// ------------------------------------------------- Q4_1, Q5_0 and Q5_1

// These take one block per step into two alternating accumulators (Y0,
// Y1), like the Q8_0 kernels. Q4_1 and Q5_1 use their quants unsigned as
// they are and add the block's m·s (weight offset times activation sum)
// into the scalar accumulator X10; Q5_0 takes its offset 16 out as
// Σ(q-16)·x = Σq·x - Σ16·x. Y12: bytes 16; Y13: bytes 0x0f; Y15: int16
// ones; Y14: q5Bits<>; Y11: q5Spread<>.

// q5Spread<>: VPSHUFB control that spreads the 4 bytes of qh (in every
// 32-bit lane) so that byte i of the result holds qh byte i/8; q5Bits<>:
// byte i is 1 << (i%8). Together they turn the 32 bits of qh into 32
// bytes, one per value.
DATA q5Spread<>+0(SB)/8, $0x0000000000000000
DATA q5Spread<>+8(SB)/8, $0x0101010101010101
DATA q5Spread<>+16(SB)/8, $0x0202020202020202
DATA q5Spread<>+24(SB)/8, $0x0303030303030303
GLOBL q5Spread<>(SB), RODATA|NOPTR, $32
DATA q5Bits<>+0(SB)/8, $0x8040201008040201
DATA q5Bits<>+8(SB)/8, $0x8040201008040201
DATA q5Bits<>+16(SB)/8, $0x8040201008040201
DATA q5Bits<>+24(SB)/8, $0x8040201008040201
GLOBL q5Bits<>(SB), RODATA|NOPTR, $32

// Q4_UNPACK loads the 16 bytes of nibbles at addr into Y (X its low
// half): bytes 0..15 the low nibbles (values 0..15 of the block), bytes
// 16..31 the high nibbles (values 16..31). Y13: bytes 0x0f; T scratch X.
#define Q4_UNPACK(addr, Y, X, T) \
	VMOVDQU     addr, X      \
	VPSRLW      $4, X, T     \
	VINSERTI128 $1, T, Y, Y  \
	VPAND       Y13, Y, Y

// Q5_HIGH sets bit 4 of byte i of Y2 when bit i of the uint32 at qh is set.
#define Q5_HIGH(qh) \
	VPBROADCASTD qh, Y6        \
	VPSHUFB      Y11, Y6, Y6   \
	VPAND        Y14, Y6, Y6   \
	VPCMPEQB     Y14, Y6, Y6   \
	VPAND        Y12, Y6, Y6   \
	VPOR         Y6, Y2, Y2

// MS_ADD adds fp16(w[wm]) * fp16(x[xs]) into X10.
#define MS_ADD(wm, xs) \
	MOVWLZX     wm, AX                  \
	MOVWLZX     xs, BX                  \
	VMOVSS      (R8)(AX*4), X5          \
	VFMADD231SS (R8)(BX*4), X5, X10

// Q41_BLOCK adds Q4_1 block SI+ow times Q8_1 block DI+ox into ACC.
#define Q41_BLOCK(ow, ox, ACC) \
	Q4_UNPACK((ow+4)(SI), Y2, X2, X7) \
	VPMADDUBSW  (ox+4)(DI), Y2, Y2    \
	VPMADDWD    Y15, Y2, Y2           \
	VCVTDQ2PS   Y2, Y2                \
	SCALE_TAB((ow)(SI), (ox)(DI), Y4, X4) \
	VFMADD231PS Y4, Y2, ACC           \
	MS_ADD((ow+2)(SI), (ox+2)(DI))

// Q51_BLOCK adds Q5_1 block SI+ow times Q8_1 block DI+ox into ACC.
#define Q51_BLOCK(ow, ox, ACC) \
	Q4_UNPACK((ow+8)(SI), Y2, X2, X7) \
	Q5_HIGH((ow+4)(SI))               \
	VPMADDUBSW  (ox+4)(DI), Y2, Y2    \
	VPMADDWD    Y15, Y2, Y2           \
	VCVTDQ2PS   Y2, Y2                \
	SCALE_TAB((ow)(SI), (ox)(DI), Y4, X4) \
	VFMADD231PS Y4, Y2, ACC           \
	MS_ADD((ow+2)(SI), (ox+2)(DI))

// Q50_BLOCK adds Q5_0 block SI+ow times Q8_0 block DI+ox into ACC.
#define Q50_BLOCK(ow, ox, ACC) \
	Q4_UNPACK((ow+6)(SI), Y2, X2, X7) \
	Q5_HIGH((ow+2)(SI))               \
	VMOVDQU     (ox+2)(DI), Y3        \
	VPMADDUBSW  Y3, Y2, Y2            \
	VPMADDUBSW  Y3, Y12, Y7           \
	VPSUBW      Y7, Y2, Y2            \
	VPMADDWD    Y15, Y2, Y2           \
	VCVTDQ2PS   Y2, Y2                \
	SCALE_TAB((ow)(SI), (ox)(DI), Y4, X4) \
	VFMADD231PS Y4, Y2, ACC

// LEGACY_LOOP runs BLOCK over the CX blocks (wsz, xsz bytes each) and
// leaves the sum in the low lane of X0.
#define LEGACY_LOOP(BLOCK, wsz, xsz, two, one, done) \
	VXORPS Y0, Y0, Y0         \
	VXORPS Y1, Y1, Y1         \
	VXORPS X10, X10, X10      \
	CMPQ   CX, $2             \
	JB     one                \
two:                          \
	BLOCK(0, 0, Y0)           \
	BLOCK(wsz, xsz, Y1)       \
	ADDQ   $(2*wsz), SI       \
	ADDQ   $(2*xsz), DI       \
	SUBQ   $2, CX             \
	CMPQ   CX, $2             \
	JAE    two                \
one:                          \
	TESTQ  CX, CX             \
	JZ     done               \
	BLOCK(0, 0, Y0)           \
done:                         \
	VADDPS Y1, Y0, Y0         \
	HSUM8(Y0, X0, X1)         \
	VADDSS X10, X0, X0

// LEGACY_CONSTS loads the arguments and constants of these kernels.
#define LEGACY_CONSTS \
	BCAST32($0x0f0f0f0f, X13, Y13) \
	BCAST32($0x10101010, X12, Y12) \
	BCAST32($0x00010001, X15, Y15) \
	VMOVDQU q5Bits<>(SB), Y14      \
	VMOVDQU q5Spread<>(SB), Y11

// func dotQ4_1AVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ4_1AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	LEGACY_CONSTS
	LEGACY_LOOP(Q41_BLOCK, 20, 36, q41_two, q41_one, q41_done)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func dotQ5_0AVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ5_0AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	LEGACY_CONSTS
	LEGACY_LOOP(Q50_BLOCK, 22, 34, q50_two, q50_one, q50_done)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func dotQ5_1AVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ5_1AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	LEGACY_CONSTS
	LEGACY_LOOP(Q51_BLOCK, 24, 36, q51_two, q51_one, q51_done)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET
