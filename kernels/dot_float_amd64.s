//go:build amd64

#include "textflag.h"

// Float dot products (F16, BF16 weights and activations of the same
// type; the F32 kernels are in tiles_f32_amd64.s). Products are
// accumulated with FMA in float32 vector lanes, but only over chunks of at
// most 512 elements (16 terms per lane); each chunk is then added into
// float64 lanes. That keeps the result within a few
// float32 roundings of the exact sum for any length, close to the
// portable code, which sums in float64.
//
// func dotF16AVX2(w, x *byte, n int) float32  (and likewise for BF16)
// w and x hold n elements each; any n >= 0.

// FLUSH8 adds the eight float32 lanes of Y (X its low half) into the
// float64 lanes of A (elements 0..3) and B (4..7); T and U are scratch
// (XU the low half of U).
#define FLUSH8(Y, X, A, B, T, U, XU) \
	VCVTPS2PD X, T                  \
	VEXTRACTF128 $1, Y, XU          \
	VCVTPS2PD XU, U                 \
	VADDPD T, A, A                  \
	VADDPD U, B, B

// FINISH64 reduces the float64 lanes A and B (Y registers; XA, XB their
// low halves), adds the float32 scalar S and leaves the sum as float32 in
// the low lane of XA.
#define FINISH64(A, XA, B, XB, S) \
	VADDPD B, A, A                  \
	VEXTRACTF128 $1, A, XB          \
	VADDPD XB, XA, XA               \
	VPERMILPD $1, XA, XB            \
	VADDSD XB, XA, XA               \
	VCVTSS2SD S, S, S               \
	VADDSD S, XA, XA                \
	VCVTSD2SS XA, XA, XA

// Register use in the AVX2 kernels: SI, DI the two rows, CX the elements
// left, DX the groups left in the chunk; Y0-Y3 the float32 accumulators,
// Y4-Y7 scratch, Y8/Y9 the float64 accumulators, X11 the scalar tail.

// func dotF16AVX2(w, x *byte, n int) float32
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPS X11, X11, X11

f16avx2_chunk:
	MOVQ CX, DX
	SHRQ $5, DX
	JZ   f16avx2_tail
	MOVQ $16, R8
	CMPQ DX, R8
	CMOVQHI R8, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

f16avx2_loop:
	VCVTPH2PS   (SI), Y4
	VCVTPH2PS   16(SI), Y5
	VCVTPH2PS   32(SI), Y6
	VCVTPH2PS   48(SI), Y7
	VCVTPH2PS   (DI), Y12
	VCVTPH2PS   16(DI), Y13
	VCVTPH2PS   32(DI), Y14
	VCVTPH2PS   48(DI), Y15
	VFMADD231PS Y12, Y4, Y0
	VFMADD231PS Y13, Y5, Y1
	VFMADD231PS Y14, Y6, Y2
	VFMADD231PS Y15, Y7, Y3
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $32, CX
	DECQ        DX
	JNZ         f16avx2_loop
	VADDPS      Y1, Y0, Y0
	VADDPS      Y3, Y2, Y2
	VADDPS      Y2, Y0, Y0
	FLUSH8(Y0, X0, Y8, Y9, Y4, Y5, X5)
	JMP         f16avx2_chunk

f16avx2_tail:
	VXORPS Y0, Y0, Y0

f16avx2_tail8:
	CMPQ        CX, $8
	JB          f16avx2_tail1
	VCVTPH2PS   (SI), Y4
	VCVTPH2PS   (DI), Y5
	VFMADD231PS Y5, Y4, Y0
	ADDQ        $16, SI
	ADDQ        $16, DI
	SUBQ        $8, CX
	JMP         f16avx2_tail8

f16avx2_tail1:
	TESTQ       CX, CX
	JZ          f16avx2_done
	MOVWLZX     (SI), AX
	MOVWLZX     (DI), BX
	VMOVD       AX, X4
	VMOVD       BX, X5
	VCVTPH2PS   X4, X4
	VCVTPH2PS   X5, X5
	VFMADD231SS X5, X4, X11
	ADDQ        $2, SI
	ADDQ        $2, DI
	DECQ        CX
	JMP         f16avx2_tail1

f16avx2_done:
	FLUSH8(Y0, X0, Y8, Y9, Y4, Y5, X5)
	FINISH64(Y8, X8, Y9, X9, X11)
	VMOVSS X8, ret+24(FP)
	VZEROUPPER
	RET

// func dotBF16AVX2(w, x *byte, n int) float32
// A bf16 value is the top half of a float32: widen and shift left by 16.
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPS X11, X11, X11

bf16avx2_chunk:
	MOVQ CX, DX
	SHRQ $5, DX
	JZ   bf16avx2_tail
	MOVQ $16, R8
	CMPQ DX, R8
	CMOVQHI R8, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

bf16avx2_loop:
	VPMOVZXWD   (SI), Y4
	VPMOVZXWD   16(SI), Y5
	VPMOVZXWD   32(SI), Y6
	VPMOVZXWD   48(SI), Y7
	VPMOVZXWD   (DI), Y12
	VPMOVZXWD   16(DI), Y13
	VPMOVZXWD   32(DI), Y14
	VPMOVZXWD   48(DI), Y15
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VPSLLD      $16, Y6, Y6
	VPSLLD      $16, Y7, Y7
	VPSLLD      $16, Y12, Y12
	VPSLLD      $16, Y13, Y13
	VPSLLD      $16, Y14, Y14
	VPSLLD      $16, Y15, Y15
	VFMADD231PS Y12, Y4, Y0
	VFMADD231PS Y13, Y5, Y1
	VFMADD231PS Y14, Y6, Y2
	VFMADD231PS Y15, Y7, Y3
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $32, CX
	DECQ        DX
	JNZ         bf16avx2_loop
	VADDPS      Y1, Y0, Y0
	VADDPS      Y3, Y2, Y2
	VADDPS      Y2, Y0, Y0
	FLUSH8(Y0, X0, Y8, Y9, Y4, Y5, X5)
	JMP         bf16avx2_chunk

bf16avx2_tail:
	VXORPS Y0, Y0, Y0

bf16avx2_tail8:
	CMPQ        CX, $8
	JB          bf16avx2_tail1
	VPMOVZXWD   (SI), Y4
	VPMOVZXWD   (DI), Y5
	VPSLLD      $16, Y4, Y4
	VPSLLD      $16, Y5, Y5
	VFMADD231PS Y5, Y4, Y0
	ADDQ        $16, SI
	ADDQ        $16, DI
	SUBQ        $8, CX
	JMP         bf16avx2_tail8

bf16avx2_tail1:
	TESTQ       CX, CX
	JZ          bf16avx2_done
	MOVWLZX     (SI), AX
	MOVWLZX     (DI), BX
	SHLL        $16, AX
	SHLL        $16, BX
	VMOVD       AX, X4
	VMOVD       BX, X5
	VFMADD231SS X5, X4, X11
	ADDQ        $2, SI
	ADDQ        $2, DI
	DECQ        CX
	JMP         bf16avx2_tail1

bf16avx2_done:
	FLUSH8(Y0, X0, Y8, Y9, Y4, Y5, X5)
	FINISH64(Y8, X8, Y9, X9, X11)
	VMOVSS X8, ret+24(FP)
	VZEROUPPER
	RET

// The AVX-512 kernels work on 16 lanes and finish a row with one masked
// load instead of a scalar loop (masked-off elements are never read, so
// nothing past the rows is touched).

// FLUSH16 adds the sixteen float32 lanes of Z (Y its low half) into the
// float64 lanes of A (elements 0..7) and B (8..15); T and U are scratch
// (YU the low half of U).
#define FLUSH16(Z, Y, A, B, T, U, YU) \
	VCVTPS2PD Y, T                      \
	VEXTRACTF64X4 $1, Z, YU             \
	VCVTPS2PD YU, U                     \
	VADDPD T, A, A                      \
	VADDPD U, B, B

// FINISH512 reduces the float64 lanes of A and B (Z registers; YA, XA
// and YB, XB their low parts) to a float32 in the low lane of XA.
#define FINISH512(A, YA, XA, B, YB, XB) \
	VADDPD B, A, A                      \
	VEXTRACTF64X4 $1, A, YB             \
	VADDPD YB, YA, YA                   \
	VEXTRACTF128 $1, YA, XB             \
	VADDPD XB, XA, XA                   \
	VPERMILPD $1, XA, XB                \
	VADDSD XB, XA, XA                   \
	VCVTSD2SS XA, XA, XA

// TAILMASK sets K1 to the low CX bits (CX < 16).
#define TAILMASK \
	MOVL $1, AX  \
	SHLL CX, AX  \
	DECL AX      \
	KMOVW AX, K1

// Only BF16 has a 512-bit kernel. On Zen 4 (which executes 512-bit
// operations as two 256-bit halves) a 512-bit F16 kernel was slower than
// the AVX2 one (32 vs 47 GB/s from L1: the 512-bit VCVTPH2PS), and a
// 512-bit F32 kernel was as fast from cache but slower streaming from
// memory (26 vs 32 GB/s). The AVX-512 sets' F16 kernels, and every set's
// F32 kernels, are 256-bit ones that add the way their tiles do (see
// tiles_f32_amd64.s); dotF16AVX2 is the AVX2 set's alone.

// func dotBF16AVX512(w, x *byte, n int) float32
TEXT ·dotBF16AVX512(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPD Z8, Z8, Z8
	VXORPD Z9, Z9, Z9

bf16avx512_chunk:
	MOVQ CX, DX
	SHRQ $6, DX
	JZ   bf16avx512_tail
	MOVQ $8, R8
	CMPQ DX, R8
	CMOVQHI R8, DX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

bf16avx512_loop:
	VPMOVZXWD   (SI), Z4
	VPMOVZXWD   32(SI), Z5
	VPMOVZXWD   64(SI), Z6
	VPMOVZXWD   96(SI), Z7
	VPMOVZXWD   (DI), Z12
	VPMOVZXWD   32(DI), Z13
	VPMOVZXWD   64(DI), Z14
	VPMOVZXWD   96(DI), Z15
	VPSLLD      $16, Z4, Z4
	VPSLLD      $16, Z5, Z5
	VPSLLD      $16, Z6, Z6
	VPSLLD      $16, Z7, Z7
	VPSLLD      $16, Z12, Z12
	VPSLLD      $16, Z13, Z13
	VPSLLD      $16, Z14, Z14
	VPSLLD      $16, Z15, Z15
	VFMADD231PS Z12, Z4, Z0
	VFMADD231PS Z13, Z5, Z1
	VFMADD231PS Z14, Z6, Z2
	VFMADD231PS Z15, Z7, Z3
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $64, CX
	DECQ        DX
	JNZ         bf16avx512_loop
	VADDPS      Z1, Z0, Z0
	VADDPS      Z3, Z2, Z2
	VADDPS      Z2, Z0, Z0
	FLUSH16(Z0, Y0, Z8, Z9, Z4, Z5, Y5)
	JMP         bf16avx512_chunk

bf16avx512_tail:
	VXORPS Z0, Z0, Z0

bf16avx512_tail16:
	CMPQ        CX, $16
	JB          bf16avx512_tailmask
	VPMOVZXWD   (SI), Z4
	VPMOVZXWD   (DI), Z5
	VPSLLD      $16, Z4, Z4
	VPSLLD      $16, Z5, Z5
	VFMADD231PS Z5, Z4, Z0
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $16, CX
	JMP         bf16avx512_tail16

bf16avx512_tailmask:
	TESTQ       CX, CX
	JZ          bf16avx512_done
	TAILMASK
	VPMOVZXWD.Z (SI), K1, Z4
	VPMOVZXWD.Z (DI), K1, Z5
	VPSLLD      $16, Z4, Z4
	VPSLLD      $16, Z5, Z5
	VFMADD231PS Z5, Z4, Z0

bf16avx512_done:
	FLUSH16(Z0, Y0, Z8, Z9, Z4, Z5, Y5)
	FINISH512(Z8, Y8, X8, Z9, Y9, X9)
	VMOVSS X8, ret+24(FP)
	VZEROUPPER
	RET
