#include "textflag.h"

// AVX2 and FMA inner loops of attention and SwiGLU; vec_amd64.go describes
// them and vec_test.go checks them against the portable loops.

// Constants, repeated for whole-register memory operands. The float64
// ones are those of expf in mathf.go, so that the vector exponential gives
// the scalar one's bits.
#define CONST4D(name, bits) \
	DATA name<>+0(SB)/8, bits \
	DATA name<>+8(SB)/8, bits \
	DATA name<>+16(SB)/8, bits \
	DATA name<>+24(SB)/8, bits \
	GLOBL name<>(SB), RODATA|NOPTR, $32

#define CONST4S(name, bits) \
	DATA name<>+0(SB)/4, bits \
	DATA name<>+4(SB)/4, bits \
	DATA name<>+8(SB)/4, bits \
	DATA name<>+12(SB)/4, bits \
	GLOBL name<>(SB), RODATA|NOPTR, $16

CONST4D(kLog2e, $0x3ff71547652b82fe)
CONST4D(kLn2, $0x3fe62e42fefa39ef)
CONST4D(kHalf, $0x3fe0000000000000)
CONST4D(kOne, $0x3ff0000000000000)
CONST4D(kC3, $0x3fc5555555555555)
CONST4D(kC4, $0x3fa5555555555555)
CONST4D(kC5, $0x3f81111111111111)
CONST4D(kC6, $0x3f56c16c16c16c17)
CONST4D(kC7, $0x3f2a01a01a01a01a)
CONST4S(kMaxArg, $0x42b1999a) // float32(88.8)
CONST4S(kMinArg, $0xc2d00000) // -104
CONST4S(kInf, $0x7f800000)
CONST4S(kOne32, $0x3f800000)
CONST4S(kSign32, $0x80000000)

// EXPF4 sets X0 to expf of the four float32 values in X0, bit for bit as
// expf in mathf.go: x = n·ln2 + r in float64, Taylor series to r⁷ by
// Horner's rule with separate multiplies and adds (as Go compiles it), n
// added to the exponent bits, then rounded to float32. Clobbers Y1-Y6.
#define EXPF4 \
	VCVTPS2PD   X0, Y1 \
	VMULPD      kLog2e<>(SB), Y1, Y2 \
	VADDPD      kHalf<>(SB), Y2, Y2 \
	VROUNDPD    $1, Y2, Y2 \
	VMULPD      kLn2<>(SB), Y2, Y3 \
	VSUBPD      Y3, Y1, Y3 \
	VMULPD      kC7<>(SB), Y3, Y4 \
	VADDPD      kC6<>(SB), Y4, Y4 \
	VMULPD      Y3, Y4, Y4 \
	VADDPD      kC5<>(SB), Y4, Y4 \
	VMULPD      Y3, Y4, Y4 \
	VADDPD      kC4<>(SB), Y4, Y4 \
	VMULPD      Y3, Y4, Y4 \
	VADDPD      kC3<>(SB), Y4, Y4 \
	VMULPD      Y3, Y4, Y4 \
	VADDPD      kHalf<>(SB), Y4, Y4 \
	VMULPD      Y3, Y4, Y4 \
	VADDPD      kOne<>(SB), Y4, Y4 \
	VMULPD      Y3, Y4, Y4 \
	VADDPD      kOne<>(SB), Y4, Y4 \
	VCVTPD2DQY  Y2, X5 \
	VPMOVSXDQ   X5, Y5 \
	VPSLLQ      $52, Y5, Y5 \
	VPADDQ      Y5, Y4, Y4 \
	VCVTPD2PSY  Y4, X4 \
	VCMPPS      $0x1e, kMaxArg<>(SB), X0, X6 \
	VBLENDVPS   X6, kInf<>(SB), X4, X4 \
	VCMPPS      $0x11, kMinArg<>(SB), X0, X6 \
	VANDNPS     X4, X6, X4 \
	VCMPPS      $3, X0, X0, X6 \
	VBLENDVPS   X6, X0, X4, X0

// func expSumAVX2(s *float32, n int, shift float32) float64
// s[j] = expf(s[j]-shift) for j < n (a multiple of 4); returns the sum of
// the results in float64, four lanes added pairwise at the end.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-32
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS shift+16(FP), X10
	VXORPD       Y11, Y11, Y11
	SHRQ         $2, CX
	JZ           expsum_done

expsum_loop:
	VMOVUPS    (DI), X0
	VSUBPS     X10, X0, X0
	EXPF4
	VMOVUPS    X0, (DI)
	VCVTPS2PD  X0, Y1
	VADDPD     Y1, Y11, Y11
	ADDQ       $16, DI
	DECQ       CX
	JNZ        expsum_loop

expsum_done:
	VEXTRACTF128 $1, Y11, X1
	VHADDPD      X11, X11, X2 // l0+l1
	VHADDPD      X1, X1, X3   // l2+l3
	VADDSD       X3, X2, X0
	MOVSD        X0, ret+24(FP)
	VZEROUPPER
	RET

// func swigluAVX2(dst, gate, up *float32, n int)
// dst[i] = gate[i] / (1 + expf(-gate[i])) * up[i] for i < n (a multiple of 4).
TEXT ·swigluAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $2, CX
	JZ   swiglu_done

swiglu_loop:
	VMOVUPS (SI), X7
	VXORPS  kSign32<>(SB), X7, X0
	EXPF4
	VADDPS  kOne32<>(SB), X0, X0
	VDIVPS  X0, X7, X7
	VMULPS  (DX), X7, X7
	VMOVUPS X7, (DI)
	ADDQ    $16, SI
	ADDQ    $16, DX
	ADDQ    $16, DI
	DECQ    CX
	JNZ     swiglu_loop

swiglu_done:
	VZEROUPPER
	RET

// REDUCE4 sums each of Y0..Y3's eight lanes into X0's four lanes in the
// same order for every position: ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
#define REDUCE4 \
	VHADDPS      Y1, Y0, Y0 \
	VHADDPS      Y3, Y2, Y2 \
	VHADDPS      Y2, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0

// func scoresAVX2(s, q, keys *float32, n, stride, hd int, scale float32)
// s[j] = scale · q·keys[j*stride : j*stride+hd] for j < n; hd is a
// positive multiple of 8. Four positions at a time share each load of q.
TEXT ·scoresAVX2(SB), NOSPLIT, $0-52
	MOVQ         s+0(FP), DI
	MOVQ         q+8(FP), SI
	MOVQ         keys+16(FP), DX
	MOVQ         n+24(FP), CX
	MOVQ         stride+32(FP), BX
	MOVQ         hd+40(FP), R8
	VBROADCASTSS scale+48(FP), X7
	SHLQ         $2, BX // bytes per position
	SHLQ         $2, R8 // bytes per head

scores_loop4:
	CMPQ   CX, $4
	JLT    scores_tail
	LEAQ   (DX)(BX*1), R9
	LEAQ   (R9)(BX*1), R10
	LEAQ   (R10)(BX*1), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ   AX, AX

scores_dot4:
	VMOVUPS     (SI)(AX*1), Y4
	VFMADD231PS (DX)(AX*1), Y4, Y0
	VFMADD231PS (R9)(AX*1), Y4, Y1
	VFMADD231PS (R10)(AX*1), Y4, Y2
	VFMADD231PS (R11)(AX*1), Y4, Y3
	ADDQ        $32, AX
	CMPQ        AX, R8
	JLT         scores_dot4
	REDUCE4
	VMULPS      X7, X0, X0
	VMOVUPS     X0, (DI)
	ADDQ        $16, DI
	LEAQ        (R11)(BX*1), DX
	SUBQ        $4, CX
	JMP         scores_loop4

scores_tail:
	TESTQ  CX, CX
	JZ     scores_done
	VXORPS Y0, Y0, Y0
	XORQ   AX, AX

scores_dot1:
	VMOVUPS     (SI)(AX*1), Y4
	VFMADD231PS (DX)(AX*1), Y4, Y0
	ADDQ        $32, AX
	CMPQ        AX, R8
	JLT         scores_dot1
	VMOVAPS     Y0, Y1
	VMOVAPS     Y0, Y2
	VMOVAPS     Y0, Y3
	REDUCE4
	VMULSS      X7, X0, X0
	MOVSS       X0, (DI)
	ADDQ        $4, DI
	ADDQ        BX, DX
	DECQ        CX
	JMP         scores_tail

scores_done:
	VZEROUPPER
	RET

// The weighted sums out = Σ_j w[j]·vals[j*stride : j*stride+8·blocks] for
// 1, 2 and 4 blocks of eight values, kept in registers over all
// positions; even and odd positions go to separate accumulators, added at
// the end, so that two chains of FMAs run at once.

// func wsum1AVX2(out, w, vals *float32, n, stride int)
TEXT ·wsum1AVX2(SB), NOSPLIT, $0-40
	MOVQ   out+0(FP), DI
	MOVQ   w+8(FP), SI
	MOVQ   vals+16(FP), DX
	MOVQ   n+24(FP), CX
	MOVQ   stride+32(FP), BX
	SHLQ   $2, BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

wsum1_loop2:
	CMPQ         CX, $2
	JLT          wsum1_tail
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VFMADD231PS  (DX), Y8, Y0
	VFMADD231PS  (DX)(BX*1), Y9, Y1
	ADDQ         $8, SI
	LEAQ         (DX)(BX*2), DX
	SUBQ         $2, CX
	JMP          wsum1_loop2

wsum1_tail:
	TESTQ        CX, CX
	JZ           wsum1_done
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (DX), Y8, Y0

wsum1_done:
	VADDPS  Y1, Y0, Y0
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET

// func wsum2AVX2(out, w, vals *float32, n, stride int)
TEXT ·wsum2AVX2(SB), NOSPLIT, $0-40
	MOVQ   out+0(FP), DI
	MOVQ   w+8(FP), SI
	MOVQ   vals+16(FP), DX
	MOVQ   n+24(FP), CX
	MOVQ   stride+32(FP), BX
	SHLQ   $2, BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

wsum2_loop2:
	CMPQ         CX, $2
	JLT          wsum2_tail
	LEAQ         (DX)(BX*1), R9
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VFMADD231PS  (DX), Y8, Y0
	VFMADD231PS  32(DX), Y8, Y1
	VFMADD231PS  (R9), Y9, Y2
	VFMADD231PS  32(R9), Y9, Y3
	ADDQ         $8, SI
	LEAQ         (DX)(BX*2), DX
	SUBQ         $2, CX
	JMP          wsum2_loop2

wsum2_tail:
	TESTQ        CX, CX
	JZ           wsum2_done
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (DX), Y8, Y0
	VFMADD231PS  32(DX), Y8, Y1

wsum2_done:
	VADDPS  Y2, Y0, Y0
	VADDPS  Y3, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VZEROUPPER
	RET

// func wsum4AVX2(out, w, vals *float32, n, stride int)
TEXT ·wsum4AVX2(SB), NOSPLIT, $0-40
	MOVQ   out+0(FP), DI
	MOVQ   w+8(FP), SI
	MOVQ   vals+16(FP), DX
	MOVQ   n+24(FP), CX
	MOVQ   stride+32(FP), BX
	SHLQ   $2, BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

wsum4_loop2:
	CMPQ         CX, $2
	JLT          wsum4_tail
	LEAQ         (DX)(BX*1), R9
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VFMADD231PS  (DX), Y8, Y0
	VFMADD231PS  32(DX), Y8, Y1
	VFMADD231PS  64(DX), Y8, Y2
	VFMADD231PS  96(DX), Y8, Y3
	VFMADD231PS  (R9), Y9, Y4
	VFMADD231PS  32(R9), Y9, Y5
	VFMADD231PS  64(R9), Y9, Y6
	VFMADD231PS  96(R9), Y9, Y7
	ADDQ         $8, SI
	LEAQ         (DX)(BX*2), DX
	SUBQ         $2, CX
	JMP          wsum4_loop2

wsum4_tail:
	TESTQ        CX, CX
	JZ           wsum4_done
	VBROADCASTSS (SI), Y8
	VFMADD231PS  (DX), Y8, Y0
	VFMADD231PS  32(DX), Y8, Y1
	VFMADD231PS  64(DX), Y8, Y2
	VFMADD231PS  96(DX), Y8, Y3

wsum4_done:
	VADDPS  Y4, Y0, Y0
	VADDPS  Y5, Y1, Y1
	VADDPS  Y6, Y2, Y2
	VADDPS  Y7, Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VZEROUPPER
	RET

// func roundF16F16C(x *float32, n int)
// Rounds x[i] to the nearest F16 (ties to even) for i < n (a multiple of
// 8), through the F16C conversions.
TEXT ·roundF16F16C(SB), NOSPLIT, $0-16
	MOVQ x+0(FP), DI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	JZ   round_done

round_loop:
	VMOVUPS    (DI), Y0
	VCVTPS2PH  $0, Y0, X1
	VCVTPH2PS  X1, Y0
	VMOVUPS    Y0, (DI)
	ADDQ       $32, DI
	DECQ       CX
	JNZ        round_loop

round_done:
	VZEROUPPER
	RET

// func maxAVX2(s *float32, n int) float32
// The largest of s[i] for i < n (a positive multiple of 8).
TEXT ·maxAVX2(SB), NOSPLIT, $0-20
	MOVQ    s+0(FP), DI
	MOVQ    n+8(FP), CX
	VMOVUPS (DI), Y0
	ADDQ    $32, DI
	SUBQ    $8, CX
	JZ      max_reduce

max_loop:
	VMAXPS (DI), Y0, Y0
	ADDQ   $32, DI
	SUBQ   $8, CX
	JNZ    max_loop

max_reduce:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	MOVSS        X0, ret+16(FP)
	VZEROUPPER
	RET

// func scaleAVX2(s *float32, n int, k float32)
// s[i] *= k for i < n (a multiple of 8).
TEXT ·scaleAVX2(SB), NOSPLIT, $0-20
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS k+16(FP), Y1
	SHRQ         $3, CX
	JZ           scale_done

scale_loop:
	VMULPS  (DI), Y1, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	DECQ    CX
	JNZ     scale_loop

scale_done:
	VZEROUPPER
	RET

// The F16 cache's loops: keys and values are stored as F16 and widened
// exactly to float32 as they are loaded, so that the results equal those
// of the float32 loops above on the same (F16-representable) values.

// func toF16F16C(dst *uint16, src *float32, n int)
// dst[i] = F16 nearest src[i] (ties to even) for i < n (a multiple of 8).
TEXT ·toF16F16C(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   tof16_done

tof16_loop:
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X1
	VMOVUPS   X1, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	DECQ      CX
	JNZ       tof16_loop

tof16_done:
	VZEROUPPER
	RET

// func scoresF16AVX2(s, q *float32, keys *uint16, n, stride, hd int, scale float32)
// As scoresAVX2 with F16 keys; stride and hd count values.
TEXT ·scoresF16AVX2(SB), NOSPLIT, $0-52
	MOVQ         s+0(FP), DI
	MOVQ         q+8(FP), SI
	MOVQ         keys+16(FP), DX
	MOVQ         n+24(FP), CX
	MOVQ         stride+32(FP), BX
	MOVQ         hd+40(FP), R8
	VBROADCASTSS scale+48(FP), X7
	SHLQ         $1, BX // bytes per position
	SHLQ         $1, R8 // bytes per head of keys

scoresh_loop4:
	CMPQ   CX, $4
	JLT    scoresh_tail
	LEAQ   (DX)(BX*1), R9
	LEAQ   (R9)(BX*1), R10
	LEAQ   (R10)(BX*1), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ   AX, AX

scoresh_dot4:
	VMOVUPS     (SI)(AX*2), Y4
	VCVTPH2PS   (DX)(AX*1), Y8
	VCVTPH2PS   (R9)(AX*1), Y9
	VCVTPH2PS   (R10)(AX*1), Y10
	VCVTPH2PS   (R11)(AX*1), Y11
	VFMADD231PS Y8, Y4, Y0
	VFMADD231PS Y9, Y4, Y1
	VFMADD231PS Y10, Y4, Y2
	VFMADD231PS Y11, Y4, Y3
	ADDQ        $16, AX
	CMPQ        AX, R8
	JLT         scoresh_dot4
	REDUCE4
	VMULPS      X7, X0, X0
	VMOVUPS     X0, (DI)
	ADDQ        $16, DI
	LEAQ        (R11)(BX*1), DX
	SUBQ        $4, CX
	JMP         scoresh_loop4

scoresh_tail:
	TESTQ  CX, CX
	JZ     scoresh_done
	VXORPS Y0, Y0, Y0
	XORQ   AX, AX

scoresh_dot1:
	VMOVUPS     (SI)(AX*2), Y4
	VCVTPH2PS   (DX)(AX*1), Y8
	VFMADD231PS Y8, Y4, Y0
	ADDQ        $16, AX
	CMPQ        AX, R8
	JLT         scoresh_dot1
	VMOVAPS     Y0, Y1
	VMOVAPS     Y0, Y2
	VMOVAPS     Y0, Y3
	REDUCE4
	VMULSS      X7, X0, X0
	MOVSS       X0, (DI)
	ADDQ        $4, DI
	ADDQ        BX, DX
	DECQ        CX
	JMP         scoresh_tail

scoresh_done:
	VZEROUPPER
	RET

// func wsumF16x1AVX2(out, w *float32, vals *uint16, n, stride int)
TEXT ·wsumF16x1AVX2(SB), NOSPLIT, $0-40
	MOVQ   out+0(FP), DI
	MOVQ   w+8(FP), SI
	MOVQ   vals+16(FP), DX
	MOVQ   n+24(FP), CX
	MOVQ   stride+32(FP), BX
	SHLQ   $1, BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

wsumh1_loop2:
	CMPQ         CX, $2
	JLT          wsumh1_tail
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VCVTPH2PS    (DX), Y10
	VCVTPH2PS    (DX)(BX*1), Y11
	VFMADD231PS  Y10, Y8, Y0
	VFMADD231PS  Y11, Y9, Y1
	ADDQ         $8, SI
	LEAQ         (DX)(BX*2), DX
	SUBQ         $2, CX
	JMP          wsumh1_loop2

wsumh1_tail:
	TESTQ        CX, CX
	JZ           wsumh1_done
	VBROADCASTSS (SI), Y8
	VCVTPH2PS    (DX), Y10
	VFMADD231PS  Y10, Y8, Y0

wsumh1_done:
	VADDPS  Y1, Y0, Y0
	VMOVUPS Y0, (DI)
	VZEROUPPER
	RET

// func wsumF16x2AVX2(out, w *float32, vals *uint16, n, stride int)
TEXT ·wsumF16x2AVX2(SB), NOSPLIT, $0-40
	MOVQ   out+0(FP), DI
	MOVQ   w+8(FP), SI
	MOVQ   vals+16(FP), DX
	MOVQ   n+24(FP), CX
	MOVQ   stride+32(FP), BX
	SHLQ   $1, BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

wsumh2_loop2:
	CMPQ         CX, $2
	JLT          wsumh2_tail
	LEAQ         (DX)(BX*1), R9
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VCVTPH2PS    (DX), Y10
	VCVTPH2PS    16(DX), Y11
	VCVTPH2PS    (R9), Y12
	VCVTPH2PS    16(R9), Y13
	VFMADD231PS  Y10, Y8, Y0
	VFMADD231PS  Y11, Y8, Y1
	VFMADD231PS  Y12, Y9, Y2
	VFMADD231PS  Y13, Y9, Y3
	ADDQ         $8, SI
	LEAQ         (DX)(BX*2), DX
	SUBQ         $2, CX
	JMP          wsumh2_loop2

wsumh2_tail:
	TESTQ        CX, CX
	JZ           wsumh2_done
	VBROADCASTSS (SI), Y8
	VCVTPH2PS    (DX), Y10
	VCVTPH2PS    16(DX), Y11
	VFMADD231PS  Y10, Y8, Y0
	VFMADD231PS  Y11, Y8, Y1

wsumh2_done:
	VADDPS  Y2, Y0, Y0
	VADDPS  Y3, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VZEROUPPER
	RET

// func wsumF16x4AVX2(out, w *float32, vals *uint16, n, stride int)
TEXT ·wsumF16x4AVX2(SB), NOSPLIT, $0-40
	MOVQ   out+0(FP), DI
	MOVQ   w+8(FP), SI
	MOVQ   vals+16(FP), DX
	MOVQ   n+24(FP), CX
	MOVQ   stride+32(FP), BX
	SHLQ   $1, BX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

wsumh4_loop2:
	CMPQ         CX, $2
	JLT          wsumh4_tail
	LEAQ         (DX)(BX*1), R9
	VBROADCASTSS (SI), Y8
	VBROADCASTSS 4(SI), Y9
	VCVTPH2PS    (DX), Y10
	VCVTPH2PS    16(DX), Y11
	VCVTPH2PS    32(DX), Y12
	VCVTPH2PS    48(DX), Y13
	VFMADD231PS  Y10, Y8, Y0
	VFMADD231PS  Y11, Y8, Y1
	VFMADD231PS  Y12, Y8, Y2
	VFMADD231PS  Y13, Y8, Y3
	VCVTPH2PS    (R9), Y10
	VCVTPH2PS    16(R9), Y11
	VCVTPH2PS    32(R9), Y12
	VCVTPH2PS    48(R9), Y13
	VFMADD231PS  Y10, Y9, Y4
	VFMADD231PS  Y11, Y9, Y5
	VFMADD231PS  Y12, Y9, Y6
	VFMADD231PS  Y13, Y9, Y7
	ADDQ         $8, SI
	LEAQ         (DX)(BX*2), DX
	SUBQ         $2, CX
	JMP          wsumh4_loop2

wsumh4_tail:
	TESTQ        CX, CX
	JZ           wsumh4_done
	VBROADCASTSS (SI), Y8
	VCVTPH2PS    (DX), Y10
	VCVTPH2PS    16(DX), Y11
	VCVTPH2PS    32(DX), Y12
	VCVTPH2PS    48(DX), Y13
	VFMADD231PS  Y10, Y8, Y0
	VFMADD231PS  Y11, Y8, Y1
	VFMADD231PS  Y12, Y8, Y2
	VFMADD231PS  Y13, Y8, Y3

wsumh4_done:
	VADDPS  Y4, Y0, Y0
	VADDPS  Y5, Y1, Y1
	VADDPS  Y6, Y2, Y2
	VADDPS  Y7, Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VZEROUPPER
	RET
