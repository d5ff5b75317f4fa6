//go:build amd64

#include "textflag.h"

// Q4_0 tile kernel (see tiles.go): 8 weight rows × 8 tokens. Per (row,
// token) it computes what dotQ4_0VNNI and dot4Q4_0VNNI in
// dot_legacy_amd64.s compute, with the same float operations: per block
// the exact integer Σ(q-8)·x, converted to float32, times dw·dx added into
// the output's accumulator with one FMA, block after block.
//
// The integer sums are formed the other way round from the row kernels,
// which give each row eight lanes of partial sums to reduce: here the
// eight rows' blocks are transposed once per block, into eight registers
// T0..T7 (Y8..Y15) where lane r of Tk holds row r's values 4k..4k+3
// (unsigned nibbles 0..15); then each token's block takes eight VPDPBUSD
// with its activation bytes 4k..4k+3 broadcast from memory to all lanes,
// which leaves row r's whole block sum Σq·x in lane r, and no reduction
// is needed. The transposition costs about as much as one token's
// products and serves all eight tokens.
//
// Transposition: the 16 nibble bytes of a block are four dwords; rows r
// and r+4 go to the two 128-bit halves of a register (Y0..Y3 for rows
// 0..3 and 4..7), a 4×4 dword transpose within the halves (VPUNPCK*DQ,
// VPUNPCK*QDQ) gives in Y0..Y3 the dwords 0..3 of the eight rows (lane r:
// row r), whose low nibbles are values 4k..4k+3 (Tk) and high nibbles
// values 16+4k.. (Tk+4).
//
// The offset -8·Σx of each token's block, the same for every row, starts
// the token's sums: for all eight tokens it is computed once per block
// (VPDPBUSD with bytes 8, four tokens' lanes reduced with VPHADDD) into
// the frame, and broadcast from there.
//
// func tile8x8Q4_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
// computes the tile of the rows at w, w+rowBytes, ... and the tokens at x,
// x+xStride, ..., into dst[j*dstStride+i].
// Registers: SI, R10, R11, R12 rows 0..3, rows 4..7 at R9 = 4·rowBytes
// past them; tokens 0..3 at DI, DI+BX, DI+2·BX, DI+DX (BX = xStride, DX =
// 3·xStride), tokens 4..7 likewise from R13; CX the blocks left; R8 the
// fp16 table; Y7 the eight rows' dw; Y22 bytes 8; Y23 bytes 0x0f;
// Y24..Y31 the tokens' accumulators (lane r: row r); Y0..Y6 scratch.
// Frame: the tokens' -8·Σx at 4j(SP).

// T88_ARGS loads the Q4_0 tiles' rows (SI, R10, R11, R12 and R9 =
// 4·rowBytes past them) and first tokens (DI, BX = xStride, DX =
// 3·xStride).
#define T88_ARGS \
	MOVQ w+0(FP), SI          \
	MOVQ rowBytes+8(FP), R9   \
	LEAQ (SI)(R9*1), R10      \
	LEAQ (R10)(R9*1), R11     \
	LEAQ (R11)(R9*1), R12     \
	SHLQ $2, R9               \
	MOVQ x+16(FP), DI         \
	MOVQ xStride+24(FP), BX   \
	LEAQ (BX)(BX*2), DX

// T88_NEXT moves rows 0..3 (rows 4..7 follow through R9) and the first
// token to their next block.
#define T88_NEXT \
	ADDQ $18, SI   \
	ADDQ $18, R10  \
	ADDQ $18, R11  \
	ADDQ $18, R12  \
	ADDQ $34, DI

// T88_DST sets DI to dst and AX to its row stride in bytes.
#define T88_DST \
	MOVQ    dst+48(FP), DI       \
	MOVQ    dstStride+56(FP), AX \
	SHLQ    $2, AX

// T88_STORE4 writes the accumulators A..D to four tokens' rows of dst
// from DI (stride AX), leaving DI at the last.
#define T88_STORE4(A, B, C, D) \
	VMOVUPS A, (DI) \
	ADDQ    AX, DI  \
	VMOVUPS B, (DI) \
	ADDQ    AX, DI  \
	VMOVUPS C, (DI) \
	ADDQ    AX, DI  \
	VMOVUPS D, (DI)

// The addresses of token j's block, o bytes in.
#define TK0(o) o(DI)
#define TK1(o) o(DI)(BX*1)
#define TK2(o) o(DI)(BX*2)
#define TK3(o) o(DI)(DX*1)
#define TK4(o) o(R13)
#define TK5(o) o(R13)(BX*1)
#define TK6(o) o(R13)(BX*2)
#define TK7(o) o(R13)(DX*1)

// T88_W transposes the eight rows' blocks into Y8..Y15 and gathers their
// dw into Y7.
// T88_DWORDS loads the eight rows' blocks (rows r and r+4 in the halves
// of one register) and transposes them: Y0..Y3 hold dwords 0..3 of the
// eight rows (lane r: row r); Y4..Y7 are scratch.
#define T88_DWORDS \
	VMOVDQU     2(SI), X0               \
	VINSERTI128 $1, 2(SI)(R9*1), Y0, Y0  \
	VMOVDQU     2(R10), X1              \
	VINSERTI128 $1, 2(R10)(R9*1), Y1, Y1 \
	VMOVDQU     2(R11), X2              \
	VINSERTI128 $1, 2(R11)(R9*1), Y2, Y2 \
	VMOVDQU     2(R12), X3              \
	VINSERTI128 $1, 2(R12)(R9*1), Y3, Y3 \
	VPUNPCKLDQ  Y1, Y0, Y4              \
	VPUNPCKHDQ  Y1, Y0, Y5              \
	VPUNPCKLDQ  Y3, Y2, Y6              \
	VPUNPCKHDQ  Y3, Y2, Y7              \
	VPUNPCKLQDQ Y6, Y4, Y0              \
	VPUNPCKHQDQ Y6, Y4, Y1              \
	VPUNPCKLQDQ Y7, Y5, Y2              \
	VPUNPCKHQDQ Y7, Y5, Y3

#define T88_W \
	T88_DWORDS                          \
	VPANDD      Y23, Y0, Y8             \
	VPANDD      Y23, Y1, Y9             \
	VPANDD      Y23, Y2, Y10            \
	VPANDD      Y23, Y3, Y11            \
	VPSRLW      $4, Y0, Y0              \
	VPSRLW      $4, Y1, Y1              \
	VPSRLW      $4, Y2, Y2              \
	VPSRLW      $4, Y3, Y3              \
	VPANDD      Y23, Y0, Y12            \
	VPANDD      Y23, Y1, Y13            \
	VPANDD      Y23, Y2, Y14            \
	VPANDD      Y23, Y3, Y15            \
	T88_SCALES

// T88_SCALES converts the eight rows' fp16 dw into Y7 (lane r: row r)
// with one VCVTPH2PS, exact like the fp16 table it replaces, after
// inserting the eight halves straight from memory: nine instructions
// where the table took seventeen (a load of the index, a load of the
// float and an insert per row).
#define T88_SCALES T88_SCALES_TO(X7, Y7)

// T88_SCALES_TO is T88_SCALES into Y (X its low half).
#define T88_SCALES_TO(X, Y) \
	VPINSRW     $0, (SI), X, X        \
	VPINSRW     $1, (R10), X, X       \
	VPINSRW     $2, (R11), X, X       \
	VPINSRW     $3, (R12), X, X       \
	VPINSRW     $4, (SI)(R9*1), X, X  \
	VPINSRW     $5, (R10)(R9*1), X, X \
	VPINSRW     $6, (R11)(R9*1), X, X \
	VPINSRW     $7, (R12)(R9*1), X, X \
	VCVTPH2PS   X, Y

// T88_OFF4 stores -8·Σx of four tokens' blocks at off(SP).
#define T88_OFF4(A, B, C, D, off) \
	VPXOR        Y0, Y0, Y0    \
	VPDPBUSD     A(2), Y22, Y0 \
	VPXOR        Y1, Y1, Y1    \
	VPDPBUSD     B(2), Y22, Y1 \
	VPXOR        Y2, Y2, Y2    \
	VPDPBUSD     C(2), Y22, Y2 \
	VPXOR        Y3, Y3, Y3    \
	VPDPBUSD     D(2), Y22, Y3 \
	T88_NEG4(off)

// T88_NEG4 stores at off(SP) minus the sums of the eight int32 lanes of
// each of Y0..Y3 (in that order); Y0..Y2 are clobbered.
#define T88_NEG4(off) \
	VPHADDD      Y1, Y0, Y0    \
	VPHADDD      Y3, Y2, Y2    \
	VPHADDD      Y2, Y0, Y0    \
	VEXTRACTI128 $1, Y0, X1    \
	VPADDD       X1, X0, X0    \
	VPXOR        X1, X1, X1    \
	VPSUBD       X0, X1, X0    \
	VMOVDQU      X0, off(SP)

// T88_TOK adds the eight rows' block times token j's block (at TK) into
// ACC.
#define T88_TOK(TK, j, ACC) \
	VPBROADCASTD  (4*j)(SP), Y0   \
	T88_DOT(TK, ACC)

// T88_DOT adds the eight rows' block times the token's block (at TK) into
// ACC, the token's -8·Σx in every lane of Y0. Two chains of VPDPBUSD
// (even and odd k) halve the latency.
#define T88_DOT(TK, ACC) \
	VPXOR         Y1, Y1, Y1      \
	VPDPBUSD.BCST TK(2), Y8, Y0   \
	VPDPBUSD.BCST TK(6), Y9, Y1   \
	VPDPBUSD.BCST TK(10), Y10, Y0 \
	VPDPBUSD.BCST TK(14), Y11, Y1 \
	VPDPBUSD.BCST TK(18), Y12, Y0 \
	VPDPBUSD.BCST TK(22), Y13, Y1 \
	VPDPBUSD.BCST TK(26), Y14, Y0 \
	VPDPBUSD.BCST TK(30), Y15, Y1 \
	VPADDD        Y1, Y0, Y0      \
	VCVTDQ2PS     Y0, Y0          \
	MOVWLZX       TK(0), AX       \
	VMULPS.BCST   (R8)(AX*4), Y7, Y1 \
	VFMADD231PS   Y1, Y0, ACC

#define BCAST32(c, X, Y) \
	MOVL         c, AX \
	VMOVD        AX, X \
	VPBROADCASTD X, Y

// tile8x4Q4_0AVX2 is the AVX2 tile (16 vector registers): 8 weight rows ×
// 4 tokens, with per (row, token) the float operations of dotQ4_0AVX2 and
// dot4Q4_0AVX2 (the exact integer Σ(q-8)·x of each block, converted, times
// dw·dx added with one FMA, block after block), as tile8x8Q4_0VNNI does
// with AVX-512. The eight rows' blocks are transposed the same way, but
// AVX2 has neither VPDPBUSD nor sixteen more registers: the transposed
// T0..T7 go to the frame (0..255(SP)), and each token's products take,
// per k, the activation bytes 4k..4k+3 broadcast, VPMADDUBSW (T unsigned,
// the activation signed; at most 2·15·128, no saturation) and VPMADDWD
// with int16 ones, which leaves lane r the sum of row r's four products,
// added into the token's int32 lanes; two chains (even and odd k). The
// tokens' -8·Σx are formed once per block at 256(SP).
// Registers: SI, R10, R11, R12 rows 0..3, rows 4..7 at R9 = 4·rowBytes
// past them; tokens 0..3 at DI, DI+BX, DI+2·BX, DI+DX; CX the blocks left;
// R8 the fp16 table; Y8 int16 ones; Y9 bytes 8; Y10 bytes 0x0f; Y11 the
// eight rows' dw; Y12..Y15 the tokens' accumulators; Y0..Y7 scratch.

// A84_W transposes the eight rows' blocks into T0..T7 at 0..255(SP) and
// gathers their dw into Y11.
#define A84_W \
	T88_DWORDS                          \
	VPAND       Y10, Y0, Y4             \
	VPAND       Y10, Y1, Y5             \
	VPAND       Y10, Y2, Y6             \
	VPAND       Y10, Y3, Y7             \
	VMOVDQU     Y4, 0(SP)               \
	VMOVDQU     Y5, 32(SP)              \
	VMOVDQU     Y6, 64(SP)              \
	VMOVDQU     Y7, 96(SP)              \
	VPSRLW      $4, Y0, Y0              \
	VPSRLW      $4, Y1, Y1              \
	VPSRLW      $4, Y2, Y2              \
	VPSRLW      $4, Y3, Y3              \
	VPAND       Y10, Y0, Y0             \
	VPAND       Y10, Y1, Y1             \
	VPAND       Y10, Y2, Y2             \
	VPAND       Y10, Y3, Y3             \
	VMOVDQU     Y0, 128(SP)             \
	VMOVDQU     Y1, 160(SP)             \
	VMOVDQU     Y2, 192(SP)             \
	VMOVDQU     Y3, 224(SP)             \
	T88_SCALES_TO(X11, Y11)

// A84_OFF4 stores -8·Σx of the four tokens' blocks at 256(SP).
#define A84_OFF4 \
	VPMADDUBSW   TK0(2), Y9, Y0 \
	VPMADDWD     Y8, Y0, Y0     \
	VPMADDUBSW   TK1(2), Y9, Y1 \
	VPMADDWD     Y8, Y1, Y1     \
	VPMADDUBSW   TK2(2), Y9, Y2 \
	VPMADDWD     Y8, Y2, Y2     \
	VPMADDUBSW   TK3(2), Y9, Y3 \
	VPMADDWD     Y8, Y3, Y3     \
	T88_NEG4(256)

// A84_K adds the products of T_k (at 32k(SP)) and the token's activation
// bytes 4k..4k+3 (at TK(2+4k)) into the int32 lanes of S, with B and P
// scratch.
#define A84_K(TK, k, S, B, P) \
	VPBROADCASTD TK((2+4*k)), B \
	VMOVDQU      (32*k)(SP), P  \
	VPMADDUBSW   B, P, P        \
	VPMADDWD     Y8, P, P       \
	VPADDD       P, S, S

// A84_TOK adds the eight rows' block times token j's block (at TK) into
// ACC.
#define A84_TOK(TK, j, ACC) \
	VPBROADCASTD (256+4*j)(SP), Y0 \
	VPXOR        Y1, Y1, Y1        \
	A84_K(TK, 0, Y0, Y2, Y3)       \
	A84_K(TK, 1, Y1, Y4, Y5)       \
	A84_K(TK, 2, Y0, Y6, Y7)       \
	A84_K(TK, 3, Y1, Y2, Y3)       \
	A84_K(TK, 4, Y0, Y4, Y5)       \
	A84_K(TK, 5, Y1, Y6, Y7)       \
	A84_K(TK, 6, Y0, Y2, Y3)       \
	A84_K(TK, 7, Y1, Y4, Y5)       \
	VPADDD       Y1, Y0, Y0        \
	VCVTDQ2PS    Y0, Y0            \
	MOVWLZX      TK(0), AX         \
	VBROADCASTSS (R8)(AX*4), Y1    \
	VMULPS       Y1, Y11, Y1       \
	VFMADD231PS  Y1, Y0, ACC

// func tile8x8Q4_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile8x8Q4_0VNNI(SB), NOSPLIT, $32-64
	T88_ARGS
	LEAQ (DI)(BX*4), R13
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	BCAST32($0x08080808, X0, Y0)
	VMOVDQA32 Y0, Y22
	BCAST32($0x0f0f0f0f, X0, Y0)
	VMOVDQA32 Y0, Y23
	VPXORD Y24, Y24, Y24
	VPXORD Y25, Y25, Y25
	VPXORD Y26, Y26, Y26
	VPXORD Y27, Y27, Y27
	VPXORD Y28, Y28, Y28
	VPXORD Y29, Y29, Y29
	VPXORD Y30, Y30, Y30
	VPXORD Y31, Y31, Y31
	TESTQ  CX, CX
	JZ     t88_done

t88_loop:
	T88_W
	T88_OFF4(TK0, TK1, TK2, TK3, 0)
	T88_OFF4(TK4, TK5, TK6, TK7, 16)
	T88_TOK(TK0, 0, Y24)
	T88_TOK(TK1, 1, Y25)
	T88_TOK(TK2, 2, Y26)
	T88_TOK(TK3, 3, Y27)
	T88_TOK(TK4, 4, Y28)
	T88_TOK(TK5, 5, Y29)
	T88_TOK(TK6, 6, Y30)
	T88_TOK(TK7, 7, Y31)
	T88_NEXT
	ADDQ $34, R13
	DECQ CX
	JNZ  t88_loop

t88_done:
	T88_DST
	T88_STORE4(Y24, Y25, Y26, Y27)
	ADDQ    AX, DI
	T88_STORE4(Y28, Y29, Y30, Y31)
	VZEROUPPER
	RET

// dot8Q4_0VNNI is the tile's scheme for one token and eight rows
// (MatMulRows's eight-row path where the span kernel below does not
// apply: several tokens' leftovers, rows over 512 blocks), same bits as every other
// Q4_0 kernel. One transposition per block serves the eight rows, and the
// rows' sums come out in the lanes of one register, where the four-row
// kernel reduces each row's lanes: about a fifth fewer instructions per
// byte. Each step also prefetches, as the four-row kernel does, the next
// eight rows into L1 (R13 walks them from their start, 144 bytes a step)
// and the eight after them into L2 (BX); without the L2 prefetch this
// kernel streamed from memory slower than the four-row one, with it about
// 10% faster (75 MB, one thread, alternating the two in one process).
//
// func dot8Q4_0VNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[8]float32)
TEXT ·dot8Q4_0VNNI(SB), NOSPLIT, $0-48
	MOVQ w+0(FP), SI
	MOVQ rowBytes+8(FP), R9
	LEAQ (SI)(R9*1), R10
	LEAQ (R10)(R9*1), R11
	LEAQ (R11)(R9*1), R12
	LEAQ (R12)(R9*4), R13
	ADDQ R9, R13
	LEAQ (R13)(R9*8), BX
	SHLQ $2, R9
	MOVQ x+16(FP), DI
	MOVQ nb+24(FP), CX
	MOVQ tab+32(FP), R8
	BCAST32($0x08080808, X0, Y0)
	VMOVDQA32 Y0, Y22
	BCAST32($0x0f0f0f0f, X0, Y0)
	VMOVDQA32 Y0, Y23
	VPXORD Y24, Y24, Y24
	TESTQ  CX, CX
	JZ     d8_done

d8_loop:
	PREFETCHT0 (R13)
	PREFETCHT0 64(R13)
	PREFETCHT0 128(R13)
	ADDQ       $144, R13
	PREFETCHT1 (BX)
	PREFETCHT1 64(BX)
	PREFETCHT1 128(BX)
	ADDQ       $144, BX
	T88_W
	VPXOR        Y0, Y0, Y0
	VPDPBUSD     2(DI), Y22, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VPXOR        X1, X1, X1
	VPSUBD       X0, X1, X0
	VPBROADCASTD X0, Y0
	T88_DOT(TK0, Y24)
	T88_NEXT
	DECQ CX
	JNZ  d8_loop

d8_done:
	MOVQ    out+40(FP), DX
	VMOVUPS Y24, (DX)
	VZEROUPPER
	RET

// dot8SpanQ4_0VNNI is dot8Q4_0VNNI over groups consecutive groups of eight
// rows (out gets 8·groups results), for one token, with the work that
// depends on the token alone done once per call instead of once per
// group: a prologue stores, for every block of x, its -8·Σx and its dx
// as float32 in off (two dwords a block), and the loop takes them from
// there. The integer sums and the float operations are those of
// dot8Q4_0VNNI, so the bits are the same.
//
// func dot8SpanQ4_0VNNI(w *byte, rowBytes int, groups int, x *byte, nb int, tab *float32, off *int32, out *float32)
// Registers: as dot8Q4_0VNNI, plus DX walking off, R14 the current
// group's first row; frame: 0(SP) groups left, 8(SP) out.
TEXT ·dot8SpanQ4_0VNNI(SB), NOSPLIT, $16-64
	MOVQ groups+16(FP), AX
	TESTQ AX, AX
	JZ    s8_ret
	MOVQ  AX, 0(SP)
	MOVQ  out+56(FP), AX
	MOVQ  AX, 8(SP)
	MOVQ  nb+32(FP), CX
	TESTQ CX, CX
	JZ    s8_ret
	MOVQ  x+24(FP), DI
	MOVQ  tab+40(FP), R8
	MOVQ  off+48(FP), DX
	BCAST32($0x08080808, X0, Y0)
	VMOVDQA32 Y0, Y22
	BCAST32($0x0f0f0f0f, X0, Y0)
	VMOVDQA32 Y0, Y23

s8_off:
	VPXOR        Y0, Y0, Y0
	VPDPBUSD     2(DI), Y22, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xb1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, AX
	NEGL         AX
	MOVL         AX, (DX)
	MOVWLZX      (DI), AX
	MOVL         (R8)(AX*4), AX
	MOVL         AX, 4(DX)
	ADDQ         $34, DI
	ADDQ         $8, DX
	DECQ         CX
	JNZ          s8_off

	MOVQ w+0(FP), R14

s8_group:
	MOVQ rowBytes+8(FP), R9
	MOVQ R14, SI
	LEAQ (SI)(R9*1), R10
	LEAQ (R10)(R9*1), R11
	LEAQ (R11)(R9*1), R12
	LEAQ (R12)(R9*4), R13
	ADDQ R9, R13
	LEAQ (R13)(R9*8), BX
	SHLQ $2, R9
	MOVQ x+24(FP), DI
	MOVQ nb+32(FP), CX
	MOVQ off+48(FP), DX
	VPXORD Y24, Y24, Y24

s8_loop:
	PREFETCHT0 (R13)
	PREFETCHT0 64(R13)
	PREFETCHT0 128(R13)
	ADDQ       $144, R13
	PREFETCHT1 (BX)
	PREFETCHT1 64(BX)
	PREFETCHT1 128(BX)
	ADDQ       $144, BX
	T88_W
	VPBROADCASTD  (DX), Y0
	VPXOR         Y1, Y1, Y1
	VPDPBUSD.BCST 2(DI), Y8, Y0
	VPDPBUSD.BCST 6(DI), Y9, Y1
	VPDPBUSD.BCST 10(DI), Y10, Y0
	VPDPBUSD.BCST 14(DI), Y11, Y1
	VPDPBUSD.BCST 18(DI), Y12, Y0
	VPDPBUSD.BCST 22(DI), Y13, Y1
	VPDPBUSD.BCST 26(DI), Y14, Y0
	VPDPBUSD.BCST 30(DI), Y15, Y1
	VPADDD        Y1, Y0, Y0
	VCVTDQ2PS     Y0, Y0
	VMULPS.BCST   4(DX), Y7, Y1
	VFMADD231PS   Y1, Y0, Y24
	T88_NEXT
	ADDQ $8, DX
	DECQ CX
	JNZ  s8_loop

	MOVQ    8(SP), AX
	VMOVUPS Y24, (AX)
	ADDQ    $32, AX
	MOVQ    AX, 8(SP)
	MOVQ    rowBytes+8(FP), AX
	SHLQ    $3, AX
	ADDQ    AX, R14
	DECQ    0(SP)
	JNZ     s8_group

s8_ret:
	VZEROUPPER
	RET


// func tile8x4Q4_0AVX2(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)
TEXT ·tile8x4Q4_0AVX2(SB), NOSPLIT, $272-64
	T88_ARGS
	MOVQ nb+32(FP), CX
	MOVQ tab+40(FP), R8
	BCAST32($0x00010001, X8, Y8)
	BCAST32($0x08080808, X9, Y9)
	BCAST32($0x0f0f0f0f, X10, Y10)
	VXORPS Y12, Y12, Y12
	VXORPS Y13, Y13, Y13
	VXORPS Y14, Y14, Y14
	VXORPS Y15, Y15, Y15
	TESTQ  CX, CX
	JZ     a84_done

a84_loop:
	A84_W
	A84_OFF4
	A84_TOK(TK0, 0, Y12)
	A84_TOK(TK1, 1, Y13)
	A84_TOK(TK2, 2, Y14)
	A84_TOK(TK3, 3, Y15)
	T88_NEXT
	DECQ CX
	JNZ  a84_loop

a84_done:
	T88_DST
	T88_STORE4(Y12, Y13, Y14, Y15)
	VZEROUPPER
	RET
