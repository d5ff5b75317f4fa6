//go:build amd64

#include "textflag.h"

// The one-token float products in ggml_vec_dot's order (dot_float.go):
// four accumulators of 16 float32 lanes over each group of 64 elements.
// A 16-lane accumulator is kept as two 8-lane AVX2 registers (lanes 0..7
// and 8..15): every step is lane by lane, so that gives the bits of
// ggml's 512-bit code, runs on any AVX2 CPU, and avoids the 512-bit
// VCVTPH2PS, which is slow on Zen 4. Accumulator j's halves are Y(2j) and
// Y(2j+1). The kernels take the whole groups only (n a multiple of 64);
// the Go wrappers add the leftover elements.

// VEC_REDUCE adds the eight registers as GGML_F32x16_REDUCE does,
// (a0+a2) + (a1+a3), then the 16 lanes as _mm512_reduce_add_ps does
// (lane l + lane l+8, + l+4, + l+2, + l+1), into the low lane of X0.
#define VEC_REDUCE \
	VADDPS       Y4, Y0, Y0 \
	VADDPS       Y5, Y1, Y1 \
	VADDPS       Y6, Y2, Y2 \
	VADDPS       Y7, Y3, Y3 \
	VADDPS       Y2, Y0, Y0 \
	VADDPS       Y3, Y1, Y1 \
	VADDPS       Y1, Y0, Y0 \
	VEXTRACTF128 $1, Y0, X1 \
	VADDPS       X1, X0, X0 \
	VMOVHLPS     X0, X0, X1 \
	VADDPS       X1, X0, X0 \
	VMOVSHDUP    X0, X1     \
	VADDSS       X1, X0, X0

#define VEC_ZERO \
	VXORPS Y0, Y0, Y0 \
	VXORPS Y1, Y1, Y1 \
	VXORPS Y2, Y2, Y2 \
	VXORPS Y3, Y3, Y3 \
	VXORPS Y4, Y4, Y4 \
	VXORPS Y5, Y5, Y5 \
	VXORPS Y6, Y6, Y6 \
	VXORPS Y7, Y7, Y7

// F32 step: 8 elements at byte offset off into accumulator half A.
#define F32V(off, A) \
	VMOVUPS     off(SI), Y8 \
	VFMADD231PS off(DI), Y8, A

// F16 step: the same from fp16 values.
#define F16V(off, A) \
	VCVTPH2PS   off(SI), Y8 \
	VCVTPH2PS   off(DI), Y9 \
	VFMADD231PS Y9, Y8, A

// VEC_ROWS4 runs LOOP (which consumes SI, DI, CX) over the four rows at
// w, w+rowBytes, ..., storing each result in out[i]: the one-row kernel
// four times, without four calls.
#define VEC_ROWS4(LOOP, lbl) \
	MOVQ  w+0(FP), R8            \
	MOVQ  out+32(FP), R10        \
	XORQ  R11, R11               \
lbl:                             \
	MOVQ  R8, SI                 \
	MOVQ  x+16(FP), DI           \
	MOVQ  n+24(FP), CX           \
	LOOP                         \
	VMOVSS X0, (R10)(R11*4)      \
	ADDQ  rowBytes+8(FP), R8     \
	INCQ  R11                    \
	CMPQ  R11, $4                \
	JB    lbl

// F32V_ROW: the whole row at SI (n = CX elements, a multiple of 64, with
// the activations at DI) into the low lane of X0; the labels must be
// unique to each use.
#define F32V_ROW(loop, done) \
	VEC_ZERO            \
	TESTQ CX, CX        \
	JZ    done          \
loop:                   \
	F32V(0, Y0)         \
	F32V(32, Y1)        \
	F32V(64, Y2)        \
	F32V(96, Y3)        \
	F32V(128, Y4)       \
	F32V(160, Y5)       \
	F32V(192, Y6)       \
	F32V(224, Y7)       \
	ADDQ $256, SI       \
	ADDQ $256, DI       \
	SUBQ $64, CX        \
	JNZ  loop           \
done:                   \
	VEC_REDUCE

#define F16V_ROW(loop, done) \
	VEC_ZERO            \
	TESTQ CX, CX        \
	JZ    done          \
loop:                   \
	F16V(0, Y0)         \
	F16V(16, Y1)        \
	F16V(32, Y2)        \
	F16V(48, Y3)        \
	F16V(64, Y4)        \
	F16V(80, Y5)        \
	F16V(96, Y6)        \
	F16V(112, Y7)       \
	ADDQ $128, SI       \
	ADDQ $128, DI       \
	SUBQ $64, CX        \
	JNZ  loop           \
done:                   \
	VEC_REDUCE

// func dotF32Vec(w, x *byte, n int) float32
// n a multiple of 64.
TEXT ·dotF32Vec(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	F32V_ROW(f32v_loop, f32v_done)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF32Vec4(w *byte, rowBytes int, x *byte, n int, out *[4]float32)
// dotF32Vec of four rows.
TEXT ·dotF32Vec4(SB), NOSPLIT, $0-40
	VEC_ROWS4(F32V_ROW(f32v4_loop, f32v4_done), f32v4_row)
	VZEROUPPER
	RET

// func dotF16Vec(w, x *byte, n int) float32
// n a multiple of 64.
TEXT ·dotF16Vec(SB), NOSPLIT, $0-28
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	F16V_ROW(f16v_loop, f16v_done)
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func dotF16Vec4(w *byte, rowBytes int, x *byte, n int, out *[4]float32)
// dotF16Vec of four rows.
TEXT ·dotF16Vec4(SB), NOSPLIT, $0-40
	VEC_ROWS4(F16V_ROW(f16v4_loop, f16v4_done), f16v4_row)
	VZEROUPPER
	RET

// The Go assembler has no AVX512_BF16 instructions: DPBF16_Zd_Za_Zb is
// VDPBF16PS Zb, Za, Zd (Zd += the products of the bf16 pairs of Za and Zb),
// encoded by hand (EVEX.512.F3.0F38.W0 52 /r; checked with objdump).
#define DPBF16_Z16_Z0_Z1 BYTE $0x62; BYTE $0xe2; BYTE $0x7e; BYTE $0x48; BYTE $0x52; BYTE $0xc1
#define DPBF16_Z17_Z2_Z3 BYTE $0x62; BYTE $0xe2; BYTE $0x6e; BYTE $0x48; BYTE $0x52; BYTE $0xcb

// func dotBF16Vec(w, x *byte, n int) (c1, c2 float32)
// ggml_vec_dot_bf16 with AVX512_BF16 over n elements, a multiple of 64:
// the first and second 32 of each 64 go into accumulators c1 (Z16) and
// c2 (Z17) by VDPBF16PS; each is reduced as _mm512_reduce_add_ps does
// (the wrapper adds them in float64, as ggml does).
TEXT ·dotBF16Vec(SB), NOSPLIT, $0-32
	MOVQ   w+0(FP), SI
	MOVQ   x+8(FP), DI
	MOVQ   n+16(FP), CX
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	TESTQ  CX, CX
	JZ     bf16v_done

bf16v_loop:
	VMOVDQU32 (SI), Z0
	VMOVDQU32 (DI), Z1
	VMOVDQU32 64(SI), Z2
	VMOVDQU32 64(DI), Z3
	DPBF16_Z16_Z0_Z1
	DPBF16_Z17_Z2_Z3
	ADDQ      $128, SI
	ADDQ      $128, DI
	SUBQ      $64, CX
	JNZ       bf16v_loop

bf16v_done:
	VEXTRACTF64X4 $1, Z16, Y0
	VADDPS        Y16, Y0, Y0
	VEXTRACTF64X4 $1, Z17, Y1
	VADDPS        Y17, Y1, Y1
	VEXTRACTF128  $1, Y0, X2
	VADDPS        X2, X0, X0
	VEXTRACTF128  $1, Y1, X3
	VADDPS        X3, X1, X1
	VMOVHLPS      X0, X0, X2
	VADDPS        X2, X0, X0
	VMOVHLPS      X1, X1, X3
	VADDPS        X3, X1, X1
	VMOVSHDUP     X0, X2
	VADDSS        X2, X0, X0
	VMOVSHDUP     X1, X3
	VADDSS        X3, X1, X1
	VMOVSS        X0, c1+24(FP)
	VMOVSS        X1, c2+28(FP)
	VZEROUPPER
	RET

