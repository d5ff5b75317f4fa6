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

// The loops below compute in the order of llama.cpp's AVX-512 build; vec.go
// describes that order and holds the portable loops they must equal bit
// for bit.

// REDUCE16 sets X0's lane 0 to the sum of the 16 lanes Y0 (lanes 0-7) and
// Y1 (lanes 8-15) in _mm512_reduce_add_ps's order: halves of 8, of 4,
// then (l0+l2)+(l1+l3). Clobbers Y1.
#define REDUCE16 \
	VADDPS       Y1, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VPERMILPS    $0x4e, X0, X1 \
	VADDPS       X1, X0, X0 \
	VPERMILPS    $0xb1, X0, X1 \
	VADDPS       X1, X0, X0

// ADDSS4 adds lanes 0-3 of X12 to X0's lane 0 one after another, in
// float32. Clobbers X13.
#define ADDSS4 \
	VADDSS    X12, X0, X0 \
	VPERMILPS $1, X12, X13 \
	VADDSS    X13, X0, X0 \
	VPERMILPS $2, X12, X13 \
	VADDSS    X13, X0, X0 \
	VPERMILPS $3, X12, X13 \
	VADDSS    X13, X0, X0

// ADDSD4 adds lanes 0-3 of X12, each widened to float64, to X11's lane 0
// one after another. Clobbers X13.
#define ADDSD4 \
	VCVTSS2SD X12, X12, X13 \
	VADDSD    X13, X11, X11 \
	VPERMILPS $1, X12, X13 \
	VCVTSS2SD X13, X13, X13 \
	VADDSD    X13, X11, X11 \
	VPERMILPS $2, X12, X13 \
	VCVTSS2SD X13, X13, X13 \
	VADDSD    X13, X11, X11 \
	VPERMILPS $3, X12, X13 \
	VCVTSS2SD X13, X13, X13 \
	VADDSD    X13, X11, X11

// func dotsVecAVX2(s, q, keys *float32, n, stride, np, hd int)
// s[j] = ggml_vec_dot_f32(q, keys[j*stride:]) over hd values: four 16-lane
// FMA accumulators over the first np (a multiple of 64, possibly 0), then
// ((a0+a2)+(a1+a3)) reduced as REDUCE16, then the products of the
// leftover values (hd-np, a multiple of 8) added one by one in float32.
TEXT ·dotsVecAVX2(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ keys+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $2, R8
	MOVQ np+40(FP), R9
	MOVQ hd+48(FP), R10
	TESTQ CX, CX
	JZ   dots_done

dots_row:
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	XORQ   AX, AX
	CMPQ   R9, $0
	JE     dots_reduce

dots_step:
	VMOVUPS     (SI)(AX*4), Y10
	VFMADD231PS (DX)(AX*4), Y10, Y2
	VMOVUPS     32(SI)(AX*4), Y10
	VFMADD231PS 32(DX)(AX*4), Y10, Y3
	VMOVUPS     64(SI)(AX*4), Y10
	VFMADD231PS 64(DX)(AX*4), Y10, Y4
	VMOVUPS     96(SI)(AX*4), Y10
	VFMADD231PS 96(DX)(AX*4), Y10, Y5
	VMOVUPS     128(SI)(AX*4), Y10
	VFMADD231PS 128(DX)(AX*4), Y10, Y6
	VMOVUPS     160(SI)(AX*4), Y10
	VFMADD231PS 160(DX)(AX*4), Y10, Y7
	VMOVUPS     192(SI)(AX*4), Y10
	VFMADD231PS 192(DX)(AX*4), Y10, Y8
	VMOVUPS     224(SI)(AX*4), Y10
	VFMADD231PS 224(DX)(AX*4), Y10, Y9
	ADDQ        $64, AX
	CMPQ        AX, R9
	JB          dots_step

dots_reduce:
	// Accumulator k is Y(2+2k) (lanes 0-7) and Y(3+2k) (lanes 8-15).
	VADDPS Y6, Y2, Y2 // a0 + a2
	VADDPS Y7, Y3, Y3
	VADDPS Y8, Y4, Y4 // a1 + a3
	VADDPS Y9, Y5, Y5
	VADDPS Y4, Y2, Y0 // (a0+a2) + (a1+a3)
	VADDPS Y5, Y3, Y1
	REDUCE16
	CMPQ   AX, R10
	JAE    dots_store

dots_tail:
	VMOVUPS      (SI)(AX*4), Y12
	VMULPS       (DX)(AX*4), Y12, Y12
	VEXTRACTF128 $1, Y12, X14
	ADDSS4
	VMOVAPS      X14, X12
	ADDSS4
	ADDQ         $8, AX
	CMPQ         AX, R10
	JB           dots_tail

dots_store:
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, DX
	DECQ   CX
	JNZ    dots_row

dots_done:
	VZEROUPPER
	RET

// ggml_v_expf's constants (mathf.go names them), one float32 each,
// broadcast to every lane when a loop starts.
DATA vexpConsts<>+0(SB)/4, $0x4b400000  // shift 0x1.8p23
DATA vexpConsts<>+4(SB)/4, $0x3fb8aa3b  // log2e
DATA vexpConsts<>+8(SB)/4, $0x3f317200  // ln2 high
DATA vexpConsts<>+12(SB)/4, $0x35bfbe8e // ln2 low
DATA vexpConsts<>+16(SB)/4, $0x3c072010 // c5
DATA vexpConsts<>+20(SB)/4, $0x3d2b9f17 // c4
DATA vexpConsts<>+24(SB)/4, $0x3e2aaf33 // c3
DATA vexpConsts<>+28(SB)/4, $0x3efffedb // c2
DATA vexpConsts<>+32(SB)/4, $0x3f7ffff6 // c1
DATA vexpConsts<>+36(SB)/4, $0x3f800000 // 1
DATA vexpConsts<>+40(SB)/4, $0x7fffffff // |x| mask
DATA vexpConsts<>+44(SB)/4, $0x43400000 // 192
DATA vexpConsts<>+48(SB)/4, $0x7f800000 // +Inf
GLOBL vexpConsts<>(SB), RODATA|NOPTR, $52

// VEXPCONSTS broadcasts the constants into Z16-Z28 and zeroes Z29.
#define VEXPCONSTS \
	VBROADCASTSS vexpConsts<>+0(SB), Z16 \
	VBROADCASTSS vexpConsts<>+4(SB), Z17 \
	VBROADCASTSS vexpConsts<>+8(SB), Z18 \
	VBROADCASTSS vexpConsts<>+12(SB), Z19 \
	VBROADCASTSS vexpConsts<>+16(SB), Z20 \
	VBROADCASTSS vexpConsts<>+20(SB), Z21 \
	VBROADCASTSS vexpConsts<>+24(SB), Z22 \
	VBROADCASTSS vexpConsts<>+28(SB), Z23 \
	VBROADCASTSS vexpConsts<>+32(SB), Z24 \
	VBROADCASTSS vexpConsts<>+36(SB), Z25 \
	VBROADCASTSS vexpConsts<>+40(SB), Z26 \
	VBROADCASTSS vexpConsts<>+44(SB), Z27 \
	VBROADCASTSS vexpConsts<>+48(SB), Z28 \
	VPXORD       Z29, Z29, Z29

// VEXP16 sets Z9 to ggml_v_expf(Z0) (AVX-512 form): z = fma(x, log2e,
// shift), n = z - shift, b = x - n·ln2 in two fused steps, the polynomial
// j in fused steps, Z9 = VSCALEFPS(j, n); lanes with |n| > 192 become +Inf
// (n > 0) or 0. Clobbers Z1-Z8, K1-K3.
#define VEXP16 \
	VMOVAPS      Z16, Z1 \
	VFMADD231PS  Z17, Z0, Z1 \
	VSUBPS       Z16, Z1, Z2 \
	VMOVAPS      Z0, Z3 \
	VFNMADD231PS Z18, Z2, Z3 \
	VFNMADD231PS Z19, Z2, Z3 \
	VPANDD       Z26, Z2, Z4 \
	VCMPPS       $0x1e, Z27, Z4, K1 \
	VMULPS       Z3, Z3, Z5 \
	VMOVAPS      Z21, Z6 \
	VFMADD231PS  Z20, Z3, Z6 \
	VMOVAPS      Z23, Z7 \
	VFMADD231PS  Z22, Z3, Z7 \
	VFMADD231PS  Z5, Z6, Z7 \
	VMOVAPS      Z25, Z8 \
	VFMADD231PS  Z24, Z3, Z8 \
	VFMADD231PS  Z5, Z7, Z8 \
	VSCALEFPS    Z2, Z8, Z9 \
	VCMPPS       $0x12, Z29, Z2, K2 \
	KANDW        K1, K2, K3 \
	VMOVAPS      Z28, K1, Z9 \
	VMOVAPS      Z29, K3, Z9

// func expSumAVX512(s *float32, n int, shift float32) float64
// s[j] = ggml_v_expf(s[j] - shift) for j < n; returns the sum, group of 16
// by group (REDUCE16), in float64. A last partial group is loaded and
// stored under a mask, its missing lanes counted as 0.
TEXT ·expSumAVX512(SB), NOSPLIT, $0-32
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS shift+16(FP), Z30
	VEXPCONSTS
	VXORPD       X10, X10, X10
	MOVQ         CX, DX
	ANDQ         $15, DX      // values in the last partial group
	SHRQ         $4, CX
	JZ           exps_tail

exps_loop:
	VMOVUPS      (DI), Z0
	VSUBPS       Z30, Z0, Z0
	VEXP16
	VMOVUPS      Z9, (DI)
	VMOVAPS      Z9, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	REDUCE16
	VCVTSS2SD    X0, X0, X0
	VADDSD       X0, X10, X10
	ADDQ         $64, DI
	DECQ         CX
	JNZ          exps_loop

exps_tail:
	TESTQ        DX, DX
	JZ           exps_done
	MOVL         $1, AX
	MOVQ         DX, CX
	SHLL         CX, AX
	DECL         AX           // mask of the DX values left
	KMOVW        AX, K4
	VMOVUPS.Z    (DI), K4, Z0
	VSUBPS       Z30, Z0, Z0
	VEXP16
	VMOVAPS.Z    Z9, K4, Z9
	VMOVUPS      Z9, K4, (DI)
	VMOVAPS      Z9, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	REDUCE16
	VCVTSS2SD    X0, X0, X0
	VADDSD       X0, X10, X10

exps_done:
	VMOVSD X10, ret+24(FP)
	VZEROUPPER
	RET

// func swigluAVX512(dst, gate, up *float32, n int)
// dst[i] = gate[i]/(1 + ggml_v_expf(0 - gate[i]))·up[i] for i < n (a
// multiple of 16), as ggml_vec_swiglu_f32.
TEXT ·swigluAVX512(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	VEXPCONSTS
	SHRQ $4, CX
	JZ   swiglu_done

swiglu_loop:
	VMOVUPS (SI), Z10
	VSUBPS  Z10, Z29, Z0
	VEXP16
	VADDPS  Z25, Z9, Z9
	VDIVPS  Z9, Z10, Z10
	VMULPS  (DX), Z10, Z10
	VMOVUPS Z10, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    CX
	JNZ     swiglu_loop

swiglu_done:
	VZEROUPPER
	RET

// func dotsTiledF16AVX2(s, q *float32, keys *uint16, n, stride, hd int)
// s[j] = tinyBLAS's product of q and the F16 row keys[j*stride:], hd a
// positive multiple of 16: one 16-lane FMA accumulator (Y2 lanes 0-7, Y3
// lanes 8-15), reduced as REDUCE16.
TEXT ·dotsTiledF16AVX2(SB), NOSPLIT, $0-48
	MOVQ s+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ keys+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $1, R8
	MOVQ hd+40(FP), R9
	TESTQ CX, CX
	JZ   tiled16_done

tiled16_row:
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ   AX, AX

tiled16_step:
	VCVTPH2PS   (DX)(AX*2), Y4
	VCVTPH2PS   16(DX)(AX*2), Y5
	VFMADD231PS (SI)(AX*4), Y4, Y2
	VFMADD231PS 32(SI)(AX*4), Y5, Y3
	ADDQ        $16, AX
	CMPQ        AX, R9
	JB          tiled16_step

	VMOVAPS Y2, Y0
	VMOVAPS Y3, Y1
	REDUCE16
	VMOVSS  X0, (DI)
	ADDQ    $4, DI
	ADDQ    R8, DX
	DECQ    CX
	JNZ     tiled16_row

tiled16_done:
	VZEROUPPER
	RET

// func dotsVecF16AVX2(s, q *float32, keys *uint16, n, stride, np, hd int)
// As dotsVecAVX2 with F16 keys (ggml_vec_dot_f16), except that the
// leftover products are added in float64 and the sum rounded once.
TEXT ·dotsVecF16AVX2(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ keys+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $1, R8
	MOVQ np+40(FP), R9
	MOVQ hd+48(FP), R10
	TESTQ CX, CX
	JZ   vec16_done

vec16_row:
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	XORQ   AX, AX
	CMPQ   R9, $0
	JE     vec16_reduce

vec16_step:
	VCVTPH2PS   (DX)(AX*2), Y10
	VFMADD231PS (SI)(AX*4), Y10, Y2
	VCVTPH2PS   16(DX)(AX*2), Y10
	VFMADD231PS 32(SI)(AX*4), Y10, Y3
	VCVTPH2PS   32(DX)(AX*2), Y10
	VFMADD231PS 64(SI)(AX*4), Y10, Y4
	VCVTPH2PS   48(DX)(AX*2), Y10
	VFMADD231PS 96(SI)(AX*4), Y10, Y5
	VCVTPH2PS   64(DX)(AX*2), Y10
	VFMADD231PS 128(SI)(AX*4), Y10, Y6
	VCVTPH2PS   80(DX)(AX*2), Y10
	VFMADD231PS 160(SI)(AX*4), Y10, Y7
	VCVTPH2PS   96(DX)(AX*2), Y10
	VFMADD231PS 192(SI)(AX*4), Y10, Y8
	VCVTPH2PS   112(DX)(AX*2), Y10
	VFMADD231PS 224(SI)(AX*4), Y10, Y9
	ADDQ        $64, AX
	CMPQ        AX, R9
	JB          vec16_step

vec16_reduce:
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	VADDPS Y8, Y4, Y4
	VADDPS Y9, Y5, Y5
	VADDPS Y4, Y2, Y0
	VADDPS Y5, Y3, Y1
	REDUCE16
	CMPQ   AX, R10
	JAE    vec16_store
	VCVTSS2SD X0, X0, X11

vec16_tail:
	VCVTPH2PS    (DX)(AX*2), Y12
	VMULPS       (SI)(AX*4), Y12, Y12
	VEXTRACTF128 $1, Y12, X14
	ADDSD4
	VMOVAPS      X14, X12
	ADDSD4
	ADDQ         $8, AX
	CMPQ         AX, R10
	JB           vec16_tail
	VCVTSD2SS    X11, X11, X0

vec16_store:
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, DX
	DECQ   CX
	JNZ    vec16_row

vec16_done:
	VZEROUPPER
	RET

// The weighted sums by lane, one lane at a time: for lane l the positions
// j = l, l+lanes, l+2·lanes, ... are one FMA chain per output value, so
// that chain's accumulators stay in registers while the chain runs, in the
// order accLanesGo gives it. Each function covers a chunk of columns of
// every lane: 64 (eight YMM accumulators) or 8 (one).

// func accLanes64AVX2(acc, w, vals *float32, n, stride, lanes, hd int)
// acc points at column c of lane 0's accumulators (lane l's at
// acc + l·hd), vals at column c of position 0: columns c..c+63.
TEXT ·accLanes64AVX2(SB), NOSPLIT, $0-56
	MOVQ acc+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ vals+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $2, R8
	MOVQ lanes+40(FP), R9
	MOVQ hd+48(FP), R10
	SHLQ $2, R10
	MOVQ R8, R11
	IMULQ R9, R11           // bytes from position j to j+lanes
	XORQ BX, BX             // lane

a64_lane:
	CMPQ    BX, CX
	JAE     a64_done
	CMPQ    BX, R9
	JAE     a64_done
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7
	MOVQ    BX, AX          // j
	MOVQ    BX, R12
	IMULQ   R8, R12
	ADDQ    DX, R12         // &vals[j*stride]

a64_pos:
	VBROADCASTSS (SI)(AX*4), Y8
	VFMADD231PS  (R12), Y8, Y0
	VFMADD231PS  32(R12), Y8, Y1
	VFMADD231PS  64(R12), Y8, Y2
	VFMADD231PS  96(R12), Y8, Y3
	VFMADD231PS  128(R12), Y8, Y4
	VFMADD231PS  160(R12), Y8, Y5
	VFMADD231PS  192(R12), Y8, Y6
	VFMADD231PS  224(R12), Y8, Y7
	ADDQ         R9, AX
	ADDQ         R11, R12
	CMPQ         AX, CX
	JB           a64_pos

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ    R10, DI
	INCQ    BX
	JMP     a64_lane

a64_done:
	VZEROUPPER
	RET

// func accLanes8AVX2(acc, w, vals *float32, n, stride, lanes, hd int)
// As accLanes64AVX2 for columns c..c+7.
TEXT ·accLanes8AVX2(SB), NOSPLIT, $0-56
	MOVQ acc+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ vals+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $2, R8
	MOVQ lanes+40(FP), R9
	MOVQ hd+48(FP), R10
	SHLQ $2, R10
	MOVQ R8, R11
	IMULQ R9, R11
	XORQ BX, BX

a8_lane:
	CMPQ    BX, CX
	JAE     a8_done
	CMPQ    BX, R9
	JAE     a8_done
	VMOVUPS (DI), Y0
	MOVQ    BX, AX
	MOVQ    BX, R12
	IMULQ   R8, R12
	ADDQ    DX, R12

a8_pos:
	VBROADCASTSS (SI)(AX*4), Y8
	VFMADD231PS  (R12), Y8, Y0
	ADDQ         R9, AX
	ADDQ         R11, R12
	CMPQ         AX, CX
	JB           a8_pos

	VMOVUPS Y0, (DI)
	ADDQ    R10, DI
	INCQ    BX
	JMP     a8_lane

a8_done:
	VZEROUPPER
	RET

// func accLanes64F16AVX2(acc, w *float32, vals *uint16, n, stride, lanes, hd int)
// As accLanes64AVX2 with F16 values, widened exactly as they are loaded.
TEXT ·accLanes64F16AVX2(SB), NOSPLIT, $0-56
	MOVQ acc+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ vals+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $1, R8
	MOVQ lanes+40(FP), R9
	MOVQ hd+48(FP), R10
	SHLQ $2, R10
	MOVQ R8, R11
	IMULQ R9, R11
	XORQ BX, BX

h64_lane:
	CMPQ    BX, CX
	JAE     h64_done
	CMPQ    BX, R9
	JAE     h64_done
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VMOVUPS 128(DI), Y4
	VMOVUPS 160(DI), Y5
	VMOVUPS 192(DI), Y6
	VMOVUPS 224(DI), Y7
	MOVQ    BX, AX
	MOVQ    BX, R12
	IMULQ   R8, R12
	ADDQ    DX, R12

h64_pos:
	VBROADCASTSS (SI)(AX*4), Y8
	VCVTPH2PS    (R12), Y9
	VFMADD231PS  Y9, Y8, Y0
	VCVTPH2PS    16(R12), Y9
	VFMADD231PS  Y9, Y8, Y1
	VCVTPH2PS    32(R12), Y9
	VFMADD231PS  Y9, Y8, Y2
	VCVTPH2PS    48(R12), Y9
	VFMADD231PS  Y9, Y8, Y3
	VCVTPH2PS    64(R12), Y9
	VFMADD231PS  Y9, Y8, Y4
	VCVTPH2PS    80(R12), Y9
	VFMADD231PS  Y9, Y8, Y5
	VCVTPH2PS    96(R12), Y9
	VFMADD231PS  Y9, Y8, Y6
	VCVTPH2PS    112(R12), Y9
	VFMADD231PS  Y9, Y8, Y7
	ADDQ         R9, AX
	ADDQ         R11, R12
	CMPQ         AX, CX
	JB           h64_pos

	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	VMOVUPS Y4, 128(DI)
	VMOVUPS Y5, 160(DI)
	VMOVUPS Y6, 192(DI)
	VMOVUPS Y7, 224(DI)
	ADDQ    R10, DI
	INCQ    BX
	JMP     h64_lane

h64_done:
	VZEROUPPER
	RET

// func accLanes8F16AVX2(acc, w *float32, vals *uint16, n, stride, lanes, hd int)
// As accLanes8AVX2 with F16 values.
TEXT ·accLanes8F16AVX2(SB), NOSPLIT, $0-56
	MOVQ acc+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ vals+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $1, R8
	MOVQ lanes+40(FP), R9
	MOVQ hd+48(FP), R10
	SHLQ $2, R10
	MOVQ R8, R11
	IMULQ R9, R11
	XORQ BX, BX

h8_lane:
	CMPQ    BX, CX
	JAE     h8_done
	CMPQ    BX, R9
	JAE     h8_done
	VMOVUPS (DI), Y0
	MOVQ    BX, AX
	MOVQ    BX, R12
	IMULQ   R8, R12
	ADDQ    DX, R12

h8_pos:
	VBROADCASTSS (SI)(AX*4), Y8
	VCVTPH2PS    (R12), Y9
	VFMADD231PS  Y9, Y8, Y0
	ADDQ         R9, AX
	ADDQ         R11, R12
	CMPQ         AX, CX
	JB           h8_pos

	VMOVUPS Y0, (DI)
	ADDQ    R10, DI
	INCQ    BX
	JMP     h8_lane

h8_done:
	VZEROUPPER
	RET

// LANE64 sets Y to v[l] = (lane l + lane l+32) + (lane l+16 + lane l+48)
// for the lane l at BX (R9, R10, R11: byte offsets of lanes l+16, l+32,
// l+48), then moves BX to lane l+1. LANE64ADD adds v[l] to Y instead.
#define LANE64(Y) \
	VMOVUPS (BX), Y9 \
	VADDPS  (BX)(R10*1), Y9, Y9 \
	VMOVUPS (BX)(R9*1), Y10 \
	VADDPS  (BX)(R11*1), Y10, Y10 \
	VADDPS  Y10, Y9, Y \
	ADDQ    R8, BX

#define LANE64ADD(Y) \
	VMOVUPS (BX), Y9 \
	VADDPS  (BX)(R10*1), Y9, Y9 \
	VMOVUPS (BX)(R9*1), Y10 \
	VADDPS  (BX)(R11*1), Y10, Y10 \
	VADDPS  Y10, Y9, Y9 \
	VADDPS  Y9, Y, Y \
	ADDQ    R8, BX

// func reduceLanesAVX2(out, acc *float32, hd, lanes int)
// out[d] = the lanes acc[l*hd + d] (l < lanes, 16 or 64) summed as
// reduceLanes does, for d < hd (a positive multiple of 8), eight values
// of d at a time: every step of ggml's horizontal sum is then a vertical
// add.
TEXT ·reduceLanesAVX2(SB), NOSPLIT, $0-32
	MOVQ out+0(FP), DI
	MOVQ acc+8(FP), SI
	MOVQ hd+16(FP), CX
	MOVQ lanes+24(FP), DX
	MOVQ CX, R8
	SHLQ $2, R8           // bytes between lanes
	MOVQ R8, R9
	SHLQ $4, R9           // 16 lanes
	XORQ AX, AX

rl_col:
	// Y0..Y7: t[i] = v[i] + v[i+8], with v[l] = acc lane l, or for 64
	// lanes v[l] = (lane l + lane l+32) + (lane l+16 + lane l+48).
	LEAQ (SI)(AX*4), BX
	CMPQ DX, $64
	JE   rl_64
	VMOVUPS (BX), Y0
	ADDQ    R8, BX
	VMOVUPS (BX), Y1
	ADDQ    R8, BX
	VMOVUPS (BX), Y2
	ADDQ    R8, BX
	VMOVUPS (BX), Y3
	ADDQ    R8, BX
	VMOVUPS (BX), Y4
	ADDQ    R8, BX
	VMOVUPS (BX), Y5
	ADDQ    R8, BX
	VMOVUPS (BX), Y6
	ADDQ    R8, BX
	VMOVUPS (BX), Y7
	ADDQ    R8, BX
	VADDPS  (BX), Y0, Y0
	ADDQ    R8, BX
	VADDPS  (BX), Y1, Y1
	ADDQ    R8, BX
	VADDPS  (BX), Y2, Y2
	ADDQ    R8, BX
	VADDPS  (BX), Y3, Y3
	ADDQ    R8, BX
	VADDPS  (BX), Y4, Y4
	ADDQ    R8, BX
	VADDPS  (BX), Y5, Y5
	ADDQ    R8, BX
	VADDPS  (BX), Y6, Y6
	ADDQ    R8, BX
	VADDPS  (BX), Y7, Y7
	JMP     rl_tree

rl_64:
	MOVQ R9, R10
	SHLQ $1, R10          // lane l+32
	LEAQ (R10)(R9*1), R11 // lane l+48
	LANE64(Y0)
	LANE64(Y1)
	LANE64(Y2)
	LANE64(Y3)
	LANE64(Y4)
	LANE64(Y5)
	LANE64(Y6)
	LANE64(Y7)
	LANE64ADD(Y0)
	LANE64ADD(Y1)
	LANE64ADD(Y2)
	LANE64ADD(Y3)
	LANE64ADD(Y4)
	LANE64ADD(Y5)
	LANE64ADD(Y6)
	LANE64ADD(Y7)

rl_tree:
	VADDPS  Y4, Y0, Y0     // t2[i] = t[i] + t[i+4]
	VADDPS  Y5, Y1, Y1
	VADDPS  Y6, Y2, Y2
	VADDPS  Y7, Y3, Y3
	VADDPS  Y2, Y0, Y0     // t2[0] + t2[2]
	VADDPS  Y3, Y1, Y1     // t2[1] + t2[3]
	VADDPS  Y1, Y0, Y0
	VMOVUPS Y0, (DI)(AX*4)
	ADDQ    $8, AX
	CMPQ    AX, CX
	JB      rl_col
	VZEROUPPER
	RET

// func ropeAVX2(x, cache *float32, heads, headDim, dims int)
// Rotates the adjacent pairs of the first dims values (a multiple of 8)
// of each of heads heads of x by the angles whose cosines and sines
// alternate in cache: out0 = fma(x0, cos, -(x1·sin)), out1 = fma(x0, sin,
// x1·cos), one VFMADDSUB231PS for both.
TEXT ·ropeAVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), DI
	MOVQ cache+8(FP), SI
	MOVQ heads+16(FP), CX
	MOVQ headDim+24(FP), R8
	SHLQ $2, R8
	MOVQ dims+32(FP), R9
	TESTQ CX, CX
	JZ   rope_done

rope_head:
	XORQ AX, AX

rope_pair:
	VMOVUPS     (DI)(AX*4), Y0     // x0 x1 x0 x1 ...
	VMOVUPS     (SI)(AX*4), Y1     // c s c s ...
	VMOVSLDUP   Y0, Y2             // x0 x0
	VMOVSHDUP   Y0, Y3             // x1 x1
	VPERMILPS   $0xb1, Y1, Y4      // s c
	VMULPS      Y4, Y3, Y3         // x1·s, x1·c (rounded)
	VFMADDSUB231PS Y1, Y2, Y3      // even: x0·c - x1·s, odd: x0·s + x1·c
	VMOVUPS     Y3, (DI)(AX*4)
	ADDQ        $8, AX
	CMPQ        AX, R9
	JB          rope_pair

	ADDQ R8, DI
	DECQ CX
	JNZ  rope_head

rope_done:
	VZEROUPPER
	RET

// The KQ dot products again with AVX-512 registers: one ZMM per 16-lane
// accumulator, the same order as the AVX2 versions above.

// func dotsVecAVX512(s, q, keys *float32, n, stride, np, hd int)
TEXT ·dotsVecAVX512(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ keys+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $2, R8
	MOVQ np+40(FP), R9
	MOVQ hd+48(FP), R10
	TESTQ CX, CX
	JZ   zdots_done

zdots_row:
	VXORPS X0, X0, X0
	XORQ   AX, AX
	CMPQ   R9, $0
	JE     zdots_tailcheck
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5

zdots_step:
	VMOVUPS     (SI)(AX*4), Z10
	VFMADD231PS (DX)(AX*4), Z10, Z2
	VMOVUPS     64(SI)(AX*4), Z10
	VFMADD231PS 64(DX)(AX*4), Z10, Z3
	VMOVUPS     128(SI)(AX*4), Z10
	VFMADD231PS 128(DX)(AX*4), Z10, Z4
	VMOVUPS     192(SI)(AX*4), Z10
	VFMADD231PS 192(DX)(AX*4), Z10, Z5
	ADDQ        $64, AX
	CMPQ        AX, R9
	JB          zdots_step

	VADDPS        Z4, Z2, Z2 // a0 + a2
	VADDPS        Z5, Z3, Z3 // a1 + a3
	VADDPS        Z3, Z2, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	REDUCE16

zdots_tailcheck:
	CMPQ AX, R10
	JAE  zdots_store

zdots_tail:
	VMOVUPS      (SI)(AX*4), Y12
	VMULPS       (DX)(AX*4), Y12, Y12
	VEXTRACTF128 $1, Y12, X14
	ADDSS4
	VMOVAPS      X14, X12
	ADDSS4
	ADDQ         $8, AX
	CMPQ         AX, R10
	JB           zdots_tail

zdots_store:
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, DX
	DECQ   CX
	JNZ    zdots_row

zdots_done:
	VZEROUPPER
	RET

// func dotsVecF16AVX512(s, q *float32, keys *uint16, n, stride, np, hd int)
TEXT ·dotsVecF16AVX512(SB), NOSPLIT, $0-56
	MOVQ s+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ keys+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $1, R8
	MOVQ np+40(FP), R9
	MOVQ hd+48(FP), R10
	TESTQ CX, CX
	JZ   zvec16_done

zvec16_row:
	VXORPS X0, X0, X0
	XORQ   AX, AX
	CMPQ   R9, $0
	JE     zvec16_tailcheck
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5

zvec16_step:
	VCVTPH2PS   (DX)(AX*2), Z10
	VFMADD231PS (SI)(AX*4), Z10, Z2
	VCVTPH2PS   32(DX)(AX*2), Z10
	VFMADD231PS 64(SI)(AX*4), Z10, Z3
	VCVTPH2PS   64(DX)(AX*2), Z10
	VFMADD231PS 128(SI)(AX*4), Z10, Z4
	VCVTPH2PS   96(DX)(AX*2), Z10
	VFMADD231PS 192(SI)(AX*4), Z10, Z5
	ADDQ        $64, AX
	CMPQ        AX, R9
	JB          zvec16_step

	VADDPS        Z4, Z2, Z2
	VADDPS        Z5, Z3, Z3
	VADDPS        Z3, Z2, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	REDUCE16

zvec16_tailcheck:
	CMPQ AX, R10
	JAE  zvec16_store
	VCVTSS2SD X0, X0, X11

zvec16_tail:
	VCVTPH2PS    (DX)(AX*2), Y12
	VMULPS       (SI)(AX*4), Y12, Y12
	VEXTRACTF128 $1, Y12, X14
	ADDSD4
	VMOVAPS      X14, X12
	ADDSD4
	ADDQ         $8, AX
	CMPQ         AX, R10
	JB           zvec16_tail
	VCVTSD2SS    X11, X11, X0

zvec16_store:
	VMOVSS X0, (DI)
	ADDQ   $4, DI
	ADDQ   R8, DX
	DECQ   CX
	JNZ    zvec16_row

zvec16_done:
	VZEROUPPER
	RET

// func dotsTiledF16AVX512(s, q *float32, keys *uint16, n, stride, hd int)
// As dotsTiledF16AVX2 with the accumulator in one ZMM.
TEXT ·dotsTiledF16AVX512(SB), NOSPLIT, $0-48
	MOVQ s+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ keys+16(FP), DX
	MOVQ n+24(FP), CX
	MOVQ stride+32(FP), R8
	SHLQ $1, R8
	MOVQ hd+40(FP), R9
	TESTQ CX, CX
	JZ   ztiled16_done

ztiled16_row:
	VPXORD Z0, Z0, Z0
	XORQ   AX, AX

ztiled16_step:
	VCVTPH2PS   (DX)(AX*2), Z4
	VFMADD231PS (SI)(AX*4), Z4, Z0
	ADDQ        $16, AX
	CMPQ        AX, R9
	JB          ztiled16_step

	VEXTRACTF64X4 $1, Z0, Y1
	REDUCE16
	VMOVSS  X0, (DI)
	ADDQ    $4, DI
	ADDQ    R8, DX
	DECQ    CX
	JNZ     ztiled16_row

ztiled16_done:
	VZEROUPPER
	RET

// ggml_v_expf's AVX-512 algorithm on AVX2 CPUs: the same fused steps, and
// VSCALEFPS's one rounding of j·2^n emulated with two multiplies, the
// first exact: 2^n1 with n1 = n - n2 (|n1| ≤ 100, j·2^n1 stays normal),
// then 2^n2 with n2 = -100, 0 or 100.

#define CONST8(name, bits) \
	DATA name<>+0(SB)/4, bits \
	DATA name<>+4(SB)/4, bits \
	DATA name<>+8(SB)/4, bits \
	DATA name<>+12(SB)/4, bits \
	DATA name<>+16(SB)/4, bits \
	DATA name<>+20(SB)/4, bits \
	DATA name<>+24(SB)/4, bits \
	DATA name<>+28(SB)/4, bits \
	GLOBL name<>(SB), RODATA|NOPTR, $32

CONST8(e8Shift, $0x4b400000)
CONST8(e8Log2e, $0x3fb8aa3b)
CONST8(e8Ln2Hi, $0x3f317200)
CONST8(e8Ln2Lo, $0x35bfbe8e)
CONST8(e8C5, $0x3c072010)
CONST8(e8C4, $0x3d2b9f17)
CONST8(e8C3, $0x3e2aaf33)
CONST8(e8C2, $0x3efffedb)
CONST8(e8C1, $0x3f7ffff6)
CONST8(e8One, $0x3f800000)
CONST8(e8Abs, $0x7fffffff)
CONST8(e8Max, $0x43400000)   // 192
CONST8(e8Inf, $0x7f800000)
CONST8(e8M100, $0xc2c80000)  // -100
CONST8(e8P100, $0x42c80000)  // 100
CONST8(e8Bias, $0x0000007f)  // 127, as an integer

// VEXP8 sets Y9 to ggml_v_expf(Y0) lane by lane as the AVX-512 build
// computes it. Clobbers Y1-Y8, Y10-Y13.
#define VEXP8 \
	VMOVUPS      e8Shift<>(SB), Y1 \
	VFMADD231PS  e8Log2e<>(SB), Y0, Y1 \
	VSUBPS       e8Shift<>(SB), Y1, Y2 \
	VMOVAPS      Y0, Y3 \
	VFNMADD231PS e8Ln2Hi<>(SB), Y2, Y3 \
	VFNMADD231PS e8Ln2Lo<>(SB), Y2, Y3 \
	VMULPS       Y3, Y3, Y5 \
	VMOVUPS      e8C4<>(SB), Y6 \
	VFMADD231PS  e8C5<>(SB), Y3, Y6 \
	VMOVUPS      e8C2<>(SB), Y7 \
	VFMADD231PS  e8C3<>(SB), Y3, Y7 \
	VFMADD231PS  Y5, Y6, Y7 \
	VMOVUPS      e8One<>(SB), Y8 \
	VFMADD231PS  e8C1<>(SB), Y3, Y8 \
	VFMADD231PS  Y5, Y7, Y8 \
	VXORPS       Y10, Y10, Y10 \
	VMOVUPS      e8M100<>(SB), Y11 \
	VCMPPS       $0x11, Y11, Y2, Y12 \
	VBLENDVPS    Y12, Y11, Y10, Y10 \
	VMOVUPS      e8P100<>(SB), Y11 \
	VCMPPS       $0x1e, Y11, Y2, Y12 \
	VBLENDVPS    Y12, Y11, Y10, Y10 \
	VSUBPS       Y10, Y2, Y11 \
	VCVTPS2DQ    Y11, Y11 \
	VPADDD       e8Bias<>(SB), Y11, Y11 \
	VPSLLD       $23, Y11, Y11 \
	VMULPS       Y11, Y8, Y9 \
	VCVTPS2DQ    Y10, Y10 \
	VPADDD       e8Bias<>(SB), Y10, Y10 \
	VPSLLD       $23, Y10, Y10 \
	VMULPS       Y10, Y9, Y9 \
	VANDPS       e8Abs<>(SB), Y2, Y11 \
	VCMPPS       $0x1e, e8Max<>(SB), Y11, Y12 \
	VXORPS       Y13, Y13, Y13 \
	VCMPPS       $0x12, Y13, Y2, Y11 \
	VMOVUPS      e8Inf<>(SB), Y10 \
	VBLENDVPS    Y11, Y13, Y10, Y13 \
	VBLENDVPS    Y12, Y13, Y9, Y9

// func expSumAVX2(s *float32, n int, shift float32) float64
// As expSumAVX512 for n a multiple of 16, groups of 16 as two YMM halves.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-32
	MOVQ         s+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS shift+16(FP), Y14
	VXORPD       X15, X15, X15
	SHRQ         $4, CX
	JZ           e8s_done

e8s_loop:
	VMOVUPS   (DI), Y0
	VSUBPS    Y14, Y0, Y0
	VEXP8
	VMOVUPS   Y9, (DI)
	VMOVUPS   32(DI), Y0
	VSUBPS    Y14, Y0, Y0
	VMOVAPS   Y9, Y4
	VEXP8
	VMOVUPS   Y9, 32(DI)
	VMOVAPS   Y4, Y0
	VMOVAPS   Y9, Y1
	REDUCE16
	VCVTSS2SD X0, X0, X0
	VADDSD    X0, X15, X15
	ADDQ      $64, DI
	DECQ      CX
	JNZ       e8s_loop

e8s_done:
	VMOVSD X15, ret+24(FP)
	VXORPS X15, X15, X15
	VZEROUPPER
	RET

// func swigluAVX2(dst, gate, up *float32, n int)
// As swigluAVX512 for n a multiple of 8.
TEXT ·swigluAVX2(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ gate+8(FP), SI
	MOVQ up+16(FP), DX
	MOVQ n+24(FP), CX
	SHRQ $3, CX
	JZ   sw8_done

sw8_loop:
	VMOVUPS (SI), Y14
	VXORPS  Y0, Y0, Y0
	VSUBPS  Y14, Y0, Y0
	VEXP8
	VADDPS  e8One<>(SB), Y9, Y9
	VDIVPS  Y9, Y14, Y14
	VMULPS  (DX), Y14, Y14
	VMOVUPS Y14, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DX
	ADDQ    $32, DI
	DECQ    CX
	JNZ     sw8_loop

sw8_done:
	VZEROUPPER
	RET
