//go:build amd64

#include "textflag.h"

// Activation quantizers (AVX2) that give exactly the bytes of the
// portable quantizeQ8_0 and quantizeQ8_K. They handle the blocks whose
// values are all finite and whose scales invert to a finite number, and
// stop at the first other block, returning how many blocks they wrote;
// the Go caller does that block with the portable code (which fixes what
// NaN, infinities and huge inverse scales give) and resumes.
//
// Bit-exactness: the absolute maximum of finite values does not depend on
// the order of comparisons; d = amax/127, 127/amax, -127/max and the
// products v·id are single IEEE float32 operations as in Go; VCVTPS2PH
// rounds to nearest even like tensor.Float32ToFP16; Q8_0's quants and
// Q8_K's nearest_int are VCVTPS2DQ's round to nearest even (Go keeps
// MXCSR at its default), as ggml's x86 quantize_row_q8_0 rounds.

// perm8<>: VPERMD control that undoes the lane interleaving of
// VPACKSSDW + VPACKSSWB on four registers of eight int32.
DATA perm8<>+0(SB)/4, $0
DATA perm8<>+4(SB)/4, $4
DATA perm8<>+8(SB)/4, $1
DATA perm8<>+12(SB)/4, $5
DATA perm8<>+16(SB)/4, $2
DATA perm8<>+20(SB)/4, $6
DATA perm8<>+24(SB)/4, $3
DATA perm8<>+28(SB)/4, $7
GLOBL perm8<>(SB), RODATA|NOPTR, $32

// BCASTF fills the 32-bit lanes of Y (X its low half) with the bits c.
#define BCASTF(c, X, Y) \
	MOVL         c, AX \
	VMOVD        AX, X \
	VPBROADCASTD X, Y

// PACK32 packs the int32 lanes of Y0..Y3 (values 0..31, in range) into
// the 32 bytes of Y0, in order. Y11: perm8<>.
#define PACK32 \
	VPACKSSDW Y1, Y0, Y0  \
	VPACKSSDW Y3, Y2, Y2  \
	VPACKSSWB Y2, Y0, Y0  \
	VPERMD    Y0, Y11, Y0

// func quantizeQ8_0AVX2(x *float32, dst *byte, nb int) int
TEXT ·quantizeQ8_0AVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ nb+16(FP), CX
	XORQ DX, DX
	BCASTF($0x7fffffff, X15, Y15) // |v| mask
	BCASTF($0x7f7fffff, X14, Y14) // largest finite float32
	VMOVDQU perm8<>(SB), Y11

q80_block:
	CMPQ DX, CX
	JAE  q80_done
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VANDPS  Y15, Y0, Y4
	VANDPS  Y15, Y1, Y5
	VANDPS  Y15, Y2, Y6
	VANDPS  Y15, Y3, Y7

	// Any NaN or infinity (!(|v| <= max finite)) stops here.
	VCMPPS    $0x16, Y14, Y4, Y8
	VCMPPS    $0x16, Y14, Y5, Y10
	VORPS     Y10, Y8, Y8
	VCMPPS    $0x16, Y14, Y6, Y10
	VORPS     Y10, Y8, Y8
	VCMPPS    $0x16, Y14, Y7, Y10
	VORPS     Y10, Y8, Y8
	VMOVMSKPS Y8, AX
	TESTL     AX, AX
	JNZ       q80_done

	VMAXPS       Y5, Y4, Y4
	VMAXPS       Y7, Y6, Y6
	VMAXPS       Y6, Y4, Y4
	VEXTRACTF128 $1, Y4, X5
	VMAXPS       X5, X4, X4
	VMOVHLPS     X4, X4, X5
	VMAXPS       X5, X4, X4
	VMOVSHDUP    X4, X5
	VMAXSS       X5, X4, X4 // amax
	VMOVAPS      X4, X9 // amax
	MOVL         $0x42fe0000, AX // 127
	VMOVD        AX, X5
	VDIVSS       X5, X4, X4 // d = amax/127

	// id = 127/amax, or 0 when amax is 0; an infinite id (amax tiny)
	// stops here.
	VDIVSS    X9, X5, X5
	VXORPS    X6, X6, X6
	VCMPSS    $4, X6, X9, X7 // amax != 0
	VANDPS    X7, X5, X5
	VMOVD     X5, AX
	CMPL      AX, $0x7f7fffff
	JA        q80_done
	VCVTPS2PH $0, X4, X6
	VPEXTRW   $0, X6, AX
	MOVW      AX, (DI)
	VBROADCASTSS X5, Y5

	VMULPS    Y5, Y0, Y0
	VMULPS    Y5, Y1, Y1
	VMULPS    Y5, Y2, Y2
	VMULPS    Y5, Y3, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	PACK32
	VMOVDQU    Y0, 2(DI)

	ADDQ $128, SI
	ADDQ $34, DI
	INCQ DX
	JMP  q80_block

q80_done:
	MOVQ DX, ret+24(FP)
	VZEROUPPER
	RET

// func quantizeQ8_KAVX2(x *float32, dst *byte, nb int) int
TEXT ·quantizeQ8_KAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ nb+16(FP), CX
	XORQ DX, DX
	BCASTF($0x7fffffff, X15, Y15) // |v| mask
	BCASTF($0x7f7fffff, X14, Y14) // largest finite float32
	BCASTF($127, X13, Y13)        // int32 127
	VMOVDQU perm8<>(SB), Y11
	MOVL    $0xc2fe0000, AX       // -127
	VMOVD   AX, X10
	MOVL    $0x3f800000, AX       // 1
	VMOVD   AX, X9

q8k_block:
	CMPQ DX, CX
	JAE  q8k_done

	// amax over the 256 values, and whether any is NaN or infinite.
	VXORPS Y4, Y4, Y4
	VXORPS Y8, Y8, Y8
	XORQ   BX, BX

q8k_amax:
	VANDPS  (SI)(BX*1), Y15, Y0
	VANDPS  32(SI)(BX*1), Y15, Y1
	VMAXPS  Y0, Y4, Y4
	VMAXPS  Y1, Y4, Y4
	VCMPPS  $0x16, Y14, Y0, Y2
	VCMPPS  $0x16, Y14, Y1, Y3
	VORPS   Y2, Y8, Y8
	VORPS   Y3, Y8, Y8
	ADDQ    $64, BX
	CMPQ    BX, $1024
	JB      q8k_amax
	VMOVMSKPS Y8, AX
	TESTL     AX, AX
	JNZ       q8k_done
	VEXTRACTF128 $1, Y4, X5
	VMAXPS       X5, X4, X4
	VMOVHLPS     X4, X4, X5
	VMAXPS       X5, X4, X4
	VMOVSHDUP    X4, X5
	VMAXSS       X5, X4, X4 // amax
	VXORPS       X6, X6, X6
	VUCOMISS     X6, X4
	JEQ          q8k_zero

	// max: the first value whose magnitude is amax.
	VBROADCASTSS X4, Y4
	XORQ         BX, BX

q8k_find:
	VANDPS    (SI)(BX*4), Y15, Y0
	VCMPPS    $0, Y4, Y0, Y0
	VMOVMSKPS Y0, AX
	TESTL     AX, AX
	JNZ       q8k_found
	ADDQ      $8, BX
	JMP       q8k_find

q8k_found:
	BSFL   AX, AX
	ADDQ   AX, BX
	VMOVSS (SI)(BX*4), X5 // max
	VDIVSS X5, X10, X5    // iscale = -127/max
	VMOVD  X5, AX
	ANDL   $0x7fffffff, AX
	CMPL   AX, $0x7f7fffff
	JA     q8k_done       // iscale infinite: the portable code decides
	VDIVSS X5, X9, X6     // d = 1/iscale
	VMOVSS X6, (DI)
	VBROADCASTSS X5, Y5

	// Quants and group sums, 32 values (two groups) at a time.
	XORQ BX, BX

q8k_quant:
	VMULPS    (SI)(BX*4), Y5, Y0
	VMULPS    32(SI)(BX*4), Y5, Y1
	VMULPS    64(SI)(BX*4), Y5, Y2
	VMULPS    96(SI)(BX*4), Y5, Y3
	VCVTPS2DQ Y0, Y0
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VPMINSD   Y13, Y0, Y0
	VPMINSD   Y13, Y1, Y1
	VPMINSD   Y13, Y2, Y2
	VPMINSD   Y13, Y3, Y3
	// Sums of values 0..15 and 16..31 of the 32: lanes of Y0+Y1, Y2+Y3.
	VPADDD       Y1, Y0, Y6
	VPADDD       Y3, Y2, Y7
	VPHADDD      Y7, Y6, Y6   // per half: [s01 s01 s23 s23]...
	VEXTRACTI128 $1, Y6, X7
	VPADDD       X7, X6, X6   // [a a b b] (a: group 2j, b: group 2j+1)
	VPHADDD      X6, X6, X6   // [a b a b]
	VMOVD        X6, AX
	MOVQ         BX, R9
	SHRQ         $3, R9       // BX/8 = 4j: bsums of group 2j at 260+4j
	MOVW         AX, 260(DI)(R9*1)
	VPEXTRD      $1, X6, AX
	MOVW         AX, 262(DI)(R9*1)
	PACK32
	VMOVDQU      Y0, 4(DI)(BX*1)
	ADDQ         $32, BX
	CMPQ         BX, $256
	JB           q8k_quant
	JMP          q8k_next

q8k_zero:
	// All zero: ggml zeroes d and the quants; the group sums are zeroed too.
	VXORPS  Y0, Y0, Y0
	XORQ    BX, BX

q8k_clear:
	VMOVDQU Y0, (DI)(BX*1)
	ADDQ    $32, BX
	CMPQ    BX, $288
	JB      q8k_clear
	MOVL    $0, 288(DI)

q8k_next:
	ADDQ $1024, SI
	ADDQ $292, DI
	INCQ DX
	JMP  q8k_block

q8k_done:
	MOVQ DX, ret+24(FP)
	VZEROUPPER
	RET

// func quantizeF16AVX2(x *float32, dst *byte, n int) int
// Converts the whole groups of 8 values with VCVTPS2PH (round to nearest
// even, NaN payloads kept, as ggml's ggml_cpu_fp32_to_fp16 and
// quantizeF16 do); returns the values converted.
TEXT ·quantizeF16AVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ dst+8(FP), DI
	MOVQ n+16(FP), CX
	XORQ DX, DX

f16q_loop:
	LEAQ      8(DX), BX
	CMPQ      BX, CX
	JA        f16q_done
	VMOVUPS   (SI)(DX*4), Y0
	VCVTPS2PH $0, Y0, X0
	VMOVDQU   X0, (DI)(DX*2)
	MOVQ      BX, DX
	JMP       f16q_loop

f16q_done:
	MOVQ DX, ret+24(FP)
	VZEROUPPER
	RET
