//go:build amd64

#include "textflag.h"

// Dot products of the 32-value block formats with Q8_0 / Q8_1
// activations. Per block, the 32 integer products are summed exactly into
// eight 32-bit lanes, the lanes are converted to float32 and added, times
// the block's scale dw·dx (rounded to float32 as in the portable code),
// into float32 accumulators with FMA. Q8_0 uses one accumulator, block
// after block, as llama.cpp's x86 code does (its bits are the point; the
// four-row kernel overlaps four rows' chains instead), and so do Q4_1,
// Q5_0 and Q5_1.
// Q4_0 has its own scheme, described at its kernels.
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
	Q80_AVX2(34, Y0)
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
	Q80_VNNI(34, Y0)
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
	HSUM8(Y0, X0, X1)
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// Q8_0, four rows (dot4): the one-row kernel's operations for each row,
// with the activation block loaded, and its scale looked up, once for
// the four. Each row keeps its own accumulator (Y0..Y3), so the four FMA
// chains overlap where the one-row kernel waits on one.
//
// VNNI: the weight bytes are made unsigned (w+128, a VPXOR with 0x80)
// and each row's lanes start at -128·Σx of the block's four activations
// per lane, computed once for the four rows (Y5): VPDPBUSD then adds
// Σ(w+128)·x, leaving Σw·x exactly. AVX2 moves the weight's sign onto the
// activation as the one-row kernel does.
//
// Registers: SI, R10, R11, R12 the rows; DI the activations; R8 the fp16
// table; Y4 the activation block; Y6 dx (all lanes); Y7..Y9 scratch;
// Y14 bytes 0x80 (VNNI); Y15 int16 ones (AVX2).

// Q80X4_X_VNNI loads the activation block at DI into Y4, -128·Σx lanes
// into Y5 and dx into Y6.
#define Q80X4_X_VNNI \
	VMOVDQU      2(DI), Y4       \
	VPXOR        Y7, Y7, Y7      \
	VPDPBUSD     Y4, Y14, Y7     \
	VPXOR        Y5, Y5, Y5      \
	VPSUBD       Y7, Y5, Y5      \
	MOVWLZX      (DI), AX        \
	VBROADCASTSS (R8)(AX*4), Y6

#define Q80X4_X_AVX2 \
	VMOVDQU      2(DI), Y4       \
	MOVWLZX      (DI), AX        \
	VBROADCASTSS (R8)(AX*4), Y6

// Q80X4_ROW_* adds the block of the row at R times the activation block
// into ACC.
#define Q80X4_ROW_VNNI(R, ACC) \
	VPXOR        2(R), Y14, Y8   \
	VMOVDQA      Y5, Y7          \
	VPDPBUSD     Y4, Y8, Y7      \
	VCVTDQ2PS    Y7, Y7          \
	MOVWLZX      (R), AX         \
	VBROADCASTSS (R8)(AX*4), Y9  \
	VMULPS       Y6, Y9, Y9      \
	VFMADD231PS  Y9, Y7, ACC

#define Q80X4_ROW_AVX2(R, ACC) \
	VMOVDQU      2(R), Y8        \
	VPSIGNB      Y8, Y4, Y7      \
	VPABSB       Y8, Y8          \
	VPMADDUBSW   Y7, Y8, Y7      \
	VPMADDWD     Y15, Y7, Y7     \
	VCVTDQ2PS    Y7, Y7          \
	MOVWLZX      (R), AX         \
	VBROADCASTSS (R8)(AX*4), Y9  \
	VMULPS       Y6, Y9, Y9      \
	VFMADD231PS  Y9, Y7, ACC

// Q80_FOUR_ROWS is the body of a four-row kernel (X, ROW the VNNI or
// AVX2 macros), with the next four rows prefetched into L1 and the four
// after them into L2 as in Q40_FOUR_ROWS (136 bytes a step; the L2
// prefetch cut the CPU time of streaming 71 MB from memory by 30%).
#define Q80_FOUR_ROWS(X, ROW, loop, done) \
	VXORPS Y0, Y0, Y0          \
	VXORPS Y1, Y1, Y1          \
	VXORPS Y2, Y2, Y2          \
	VXORPS Y3, Y3, Y3          \
	LEAQ   (R12)(R9*1), R13    \
	LEAQ   (R13)(R9*4), BX     \
	TESTQ  CX, CX              \
	JZ     done                \
loop:                          \
	PREFETCHT0 (R13)           \
	PREFETCHT0 64(R13)         \
	PREFETCHT0 128(R13)        \
	ADDQ   $136, R13           \
	PREFETCHT1 (BX)            \
	PREFETCHT1 64(BX)          \
	PREFETCHT1 128(BX)         \
	ADDQ   $136, BX            \
	X                          \
	ROW(SI, Y0)                \
	ROW(R10, Y1)               \
	ROW(R11, Y2)               \
	ROW(R12, Y3)               \
	ADDQ $34, SI               \
	ADDQ $34, R10              \
	ADDQ $34, R11              \
	ADDQ $34, R12              \
	ADDQ $34, DI               \
	DECQ CX                    \
	JNZ  loop                  \
done:                          \
	HSUM8(Y0, X0, X4)          \
	HSUM8(Y1, X1, X4)          \
	HSUM8(Y2, X2, X4)          \
	HSUM8(Y3, X3, X4)          \
	VMOVSS X0, (DX)            \
	VMOVSS X1, 4(DX)           \
	VMOVSS X2, 8(DX)           \
	VMOVSS X3, 12(DX)

// func dot4Q8_0VNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)
TEXT ·dot4Q8_0VNNI(SB), NOSPLIT, $0-48
	ROWS4
	BCAST32($0x80808080, X14, Y14)
	Q80_FOUR_ROWS(Q80X4_X_VNNI, Q80X4_ROW_VNNI, q80vnni4_loop, q80vnni4_done)
	VZEROUPPER
	RET

// func dot4Q8_0AVX2(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)
TEXT ·dot4Q8_0AVX2(SB), NOSPLIT, $0-48
	ROWS4
	BCAST32($0x00010001, X15, Y15)
	Q80_FOUR_ROWS(Q80X4_X_AVX2, Q80X4_ROW_AVX2, q80avx24_loop, q80avx24_done)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- Q4_0

// The Q4_0 kernels compute what llama.cpp's repacked q4_0_8x8 gemv and
// gemm compute (dotQ4_0 in dot_legacy.go): per block, the exact integer
// Σ(q-8)·x of its 32 products, converted to float32, then
// acc = fma(sum, dw·dx, acc), block after block, one accumulator per
// output and no horizontal float sum.
//
// A block's 16 bytes are broadcast to both 128-bit halves of a register,
// the high half shifted right by 4 (VPSRLVQ by q4Shift<>) and masked:
// the register then holds the 32 nibbles in value order, unsigned 0..15,
// lined up with the 32 activation bytes as they lie in memory. The
// integer products give eight int32 lanes, Σq·x over four values each;
// the offset comes out as Σ(q-8)·x = Σq·x - Σ8·x, Σ8·x computed once per
// activation block for all rows (VNNI: the rows' VPDPBUSD sums start at
// -Σ8·x). The lanes of four rows are then summed together: three VPHADDD
// and one add of the halves leave the four rows' block sums in the four
// lanes of one X register, which is converted, scaled by the rows' dw
// (gathered from the fp16 table) times dx, and added into the four rows'
// accumulator lanes with one FMA. The one-row kernel does the same with
// one row (a horizontal add of its eight lanes, scalar FMA): the float
// operations per row are the same in both, so MatMulRows gives the same
// bits whichever of them handles a row.
//
// Registers: DI the activations, R8 the fp16 table; Y4 the activation
// block, Y5 its Σ8·x lanes (negated for VNNI), Y6 scratch; Y12 bytes 8;
// Y13 bytes 0x0f; Y14 q4Shift<>; Y15 int16 ones (AVX2).

// q4Shift<>: VPSRLVQ counts that keep the low 128-bit half and shift the
// high half right by 4.
DATA q4Shift<>+0(SB)/8, $0
DATA q4Shift<>+8(SB)/8, $0
DATA q4Shift<>+16(SB)/8, $4
DATA q4Shift<>+24(SB)/8, $4
GLOBL q4Shift<>(SB), RODATA|NOPTR, $32

#define Q40_CONSTS \
	BCAST32($0x0f0f0f0f, X13, Y13) \
	BCAST32($0x08080808, X12, Y12) \
	BCAST32($0x00010001, X15, Y15) \
	VMOVDQU q4Shift<>(SB), Y14

// Q40_W unpacks the quants of the block at R into W (unsigned, value
// order).
#define Q40_W(R, W) \
	VBROADCASTI128 2(R), W \
	VPSRLVQ        Y14, W, W \
	VPAND          Y13, W, W

// Q40_X_* loads the activation block at P into Y4 and its Σ8·x lanes
// into Y5 (VNNI: -Σ8·x).
#define Q40_X_VNNI(P) \
	VMOVDQU  2(P), Y4    \
	VPXOR    Y6, Y6, Y6  \
	VPDPBUSD Y4, Y12, Y6 \
	VPXOR    Y5, Y5, Y5  \
	VPSUBD   Y6, Y5, Y5

#define Q40_X_AVX2(P) \
	VMOVDQU    2(P), Y4    \
	VPMADDUBSW Y4, Y12, Y5 \
	VPMADDWD   Y15, Y5, Y5

// Q40_SUM_* sets the int32 lanes of A to Σ(q-8)·x of the unpacked row
// block W and the activation block.
#define Q40_SUM_VNNI(W, A) \
	VMOVDQA  Y5, A \
	VPDPBUSD Y4, W, A

#define Q40_SUM_AVX2(W, A) \
	VPMADDUBSW Y4, W, A  \
	VPMADDWD   Y15, A, A \
	VPSUBD     Y5, A, A

// Q40_REDUCE4 leaves in X8 the float32 block sums of the rows whose
// lanes are in Y8..Y11 (row i in lane i); Y9..Y11 are clobbered.
#define Q40_REDUCE4 \
	VPHADDD      Y9, Y8, Y8    \
	VPHADDD      Y11, Y10, Y10 \
	VPHADDD      Y10, Y8, Y8   \
	VEXTRACTI128 $1, Y8, X9    \
	VPADDD       X9, X8, X8    \
	VCVTDQ2PS    X8, X8

// Q40_SCALE4 sets X0 to dw·dx for the blocks at SI, R10, R11, R12 (lanes
// 0..3) and the activation block at P; X1 is clobbered.
#define Q40_SCALE4(P) \
	MOVWLZX      (SI), AX                   \
	VMOVSS       (R8)(AX*4), X0             \
	MOVWLZX      (R10), AX                  \
	VINSERTPS    $0x10, (R8)(AX*4), X0, X0  \
	MOVWLZX      (R11), AX                  \
	VINSERTPS    $0x20, (R8)(AX*4), X0, X0  \
	MOVWLZX      (R12), AX                  \
	VINSERTPS    $0x30, (R8)(AX*4), X0, X0  \
	MOVWLZX      (P), AX                    \
	VBROADCASTSS (R8)(AX*4), X1             \
	VMULPS       X1, X0, X0

// Q40_ONE_ROW is the body of a one-row kernel (X, SUM the VNNI or AVX2
// macros): the sum of the rows at SI times DI into X7.
#define Q40_ONE_ROW(X, SUM, loop, done) \
	VXORPS X7, X7, X7          \
	TESTQ  CX, CX              \
	JZ     done                \
loop:                          \
	X(DI)                      \
	Q40_W(SI, Y0)              \
	SUM(Y0, Y8)                \
	VEXTRACTI128 $1, Y8, X9    \
	VPADDD       X9, X8, X8    \
	VPSHUFD      $0x4e, X8, X9 \
	VPADDD       X9, X8, X8    \
	VPSHUFD      $0xb1, X8, X9 \
	VPADDD       X9, X8, X8    \
	VCVTDQ2PS    X8, X8        \
	MOVWLZX      (SI), AX      \
	MOVWLZX      (DI), BX      \
	VMOVSS       (R8)(AX*4), X0 \
	VMULSS       (R8)(BX*4), X0, X0 \
	VFMADD231SS  X0, X8, X7    \
	ADDQ $18, SI               \
	ADDQ $34, DI               \
	DECQ CX                    \
	JNZ  loop                  \
done:

// func dotQ4_0VNNI(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ4_0VNNI(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	Q40_CONSTS
	Q40_ONE_ROW(Q40_X_VNNI, Q40_SUM_VNNI, q40vnni_loop, q40vnni_done)
	VMOVSS X7, ret+32(FP)
	VZEROUPPER
	RET

// func dotQ4_0AVX2(w, x *byte, nb int, tab *float32) float32
TEXT ·dotQ4_0AVX2(SB), NOSPLIT, $0-36
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ nb+16(FP), CX
	MOVQ tab+24(FP), R8
	Q40_CONSTS
	Q40_ONE_ROW(Q40_X_AVX2, Q40_SUM_AVX2, q40avx2_loop, q40avx2_done)
	VMOVSS X7, ret+32(FP)
	VZEROUPPER
	RET

// Q40_FOUR_ROWS is the body of a four-row kernel (arguments as for
// Q40_ONE_ROW): rows at SI, R10, R11, R12 into the lanes of X7, stored
// to DX. Four rows read side by side are four streams through memory,
// which the hardware prefetchers follow badly: so each step also
// prefetches the next four rows' bytes as far as these four have come
// (R13 walks them from their start, 72 bytes a step) into L1, so that
// they are in the cache when the next call comes, and the four rows after
// those (BX) into L2, which keeps more requests in flight (5% less CPU
// time than the L1 prefetch alone, streaming 75 MB from memory). At the
// matrix's last rows the prefetches run past its end, which is harmless:
// a prefetch never faults.
#define Q40_FOUR_ROWS(X, SUM, loop, done) \
	VXORPS X7, X7, X7          \
	LEAQ   (R12)(R9*1), R13    \
	LEAQ   (R13)(R9*4), BX     \
	TESTQ  CX, CX              \
	JZ     done                \
loop:                          \
	PREFETCHT0 (R13)           \
	PREFETCHT0 64(R13)         \
	ADDQ   $72, R13            \
	PREFETCHT1 (BX)            \
	PREFETCHT1 64(BX)          \
	ADDQ   $72, BX             \
	X(DI)                      \
	Q40_W(SI, Y0)              \
	SUM(Y0, Y8)                \
	Q40_W(R10, Y1)             \
	SUM(Y1, Y9)                \
	Q40_W(R11, Y2)             \
	SUM(Y2, Y10)               \
	Q40_W(R12, Y3)             \
	SUM(Y3, Y11)               \
	Q40_REDUCE4                \
	Q40_SCALE4(DI)             \
	VFMADD231PS X0, X8, X7     \
	ADDQ $18, SI               \
	ADDQ $18, R10              \
	ADDQ $18, R11              \
	ADDQ $18, R12              \
	ADDQ $34, DI               \
	DECQ CX                    \
	JNZ  loop                  \
done:                          \
	VMOVUPS X7, (DX)

// func dot4Q4_0VNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)
TEXT ·dot4Q4_0VNNI(SB), NOSPLIT, $0-48
	ROWS4
	Q40_CONSTS
	Q40_FOUR_ROWS(Q40_X_VNNI, Q40_SUM_VNNI, q40vnni4_loop, q40vnni4_done)
	VZEROUPPER
	RET

// func dot4Q4_0AVX2(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)
TEXT ·dot4Q4_0AVX2(SB), NOSPLIT, $0-48
	ROWS4
	Q40_CONSTS
	Q40_FOUR_ROWS(Q40_X_AVX2, Q40_SUM_AVX2, q40avx24_loop, q40avx24_done)
	VZEROUPPER
	RET

// ------------------------------------------------- Q4_1, Q5_0 and Q5_1

// These add block after block into one accumulator (Y0), like the Q8_0
// kernels, in llama.cpp's x86 order (dot_legacy.go). Q4_1 and Q5_1 use their quants unsigned as
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
	BLOCK(wsz, xsz, Y0)       \
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
