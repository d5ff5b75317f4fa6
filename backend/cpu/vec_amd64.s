#include "textflag.h"

// AVX2 and F16C inner loops of attention; vec_amd64.go describes them and
// vec_test.go checks them against the portable loops.

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
