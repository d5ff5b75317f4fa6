package kernels

import (
	"encoding/binary"
	"math"

	"llamago/tensor"
)

// The float formats (F32, F16, BF16 weights with activations of the same
// type) follow, float operation for float operation, what llama.cpp's
// AVX-512 ("zen4") CPU build computes, which has two orders:
//
//   - one token (ggml_vec_dot_f32 / _f16 / _bf16 in ggml-cpu/vec.cpp, with
//     GGML_F32_STEP 64 and GGML_F32_EPR 16 of simd-mappings.h): four
//     accumulators of 16 float32 lanes; element i of each group of 64
//     goes by FMA into lane i%16 of accumulator (i/16)%4; the four are
//     added as (a0+a2) + (a1+a3), the 16 lanes halved in a tree (lane l
//     plus lane l+8, then l+4, l+2, l+1: _mm512_reduce_add_ps), and the
//     elements past the last whole group of 64 are added one by one
//     (in float32 for F32, see dotF32; in float64 for F16 and BF16). BF16
//     uses VDPBF16PS instead (see dotBF16).
//   - several tokens (llamafile's tinyBLAS<16, __m512, ...> in
//     llamafile/sgemm.cpp, which ggml_compute_forward_mul_mat calls when
//     src1 has two columns or more, the weight matrix a multiple of 4
//     rows and the row length a multiple of KN = 16, or 32 for BF16): one
//     accumulator of 16 lanes per output, element i by FMA into lane
//     i%16, then the same 16-lane tree. Which RM×RN tile an output falls
//     in does not change this order. The *Tiled functions compute it.
//
// Go has no float32 FMA: fma32 rounds once, as VFMADD does. For F16 and
// BF16 the products of two values are exact in float32, so an FMA and an
// addition of the product give the same bits.

// f32At and f16At read element i of a row of float32 or fp16 values.
func f32At(b []byte, i int) float32 {
	return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
}

// fp16Table maps every fp16 bit pattern to its float32 value, as ggml's
// ggml_table_f32_f16 does: a table lookup is much cheaper than decoding
// each weight. It is filled once at start-up and only read afterwards.
var fp16Table = func() *[1 << 16]float32 {
	var t [1 << 16]float32
	for i := range t {
		t[i] = tensor.FP16ToFloat32(uint16(i))
	}
	return &t
}()

func f16At(b []byte, i int) float32 {
	return fp16Table[binary.LittleEndian.Uint16(b[2*i:])]
}

// f32Lanes is the width of ggml's float32 vectors on AVX-512, and
// vecDotStep the elements one iteration of ggml_vec_dot_f32 / _f16 takes
// (four vectors).
const (
	f32Lanes   = 16
	vecDotStep = 64
	// tiledStep is the multiple of the row length tinyBLAS needs for F32
	// and F16 (its KN); BF16 needs bf16TiledStep.
	tiledStep     = 16
	bf16TiledStep = 32
)

// reduce16 is _mm512_reduce_add_ps: the 16 lanes added in halves.
func reduce16(v *[f32Lanes]float32) float32 {
	var t [8]float32
	for i := range 8 {
		t[i] = v[i] + v[i+8]
	}
	for i := range 4 {
		t[i] += t[i+4]
	}
	t[0] += t[2]
	t[1] += t[3]
	return t[0] + t[1]
}

// reduce4x16 is GGML_F32x16_REDUCE for four accumulators: (a0+a2) +
// (a1+a3) lane by lane, then reduce16.
func reduce4x16(acc *[4][f32Lanes]float32) float32 {
	var v [f32Lanes]float32
	for l := range v {
		v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l])
	}
	return reduce16(&v)
}

// floatAt reads element i of a row of one of the float formats.
type floatAt func(b []byte, i int) float32

// vecDotGroups runs ggml_vec_dot's main loop over the whole groups of 64
// and returns the reduced sum and the number of elements it took.
func vecDotGroups(at floatAt, w, x []byte, n int) (float32, int) {
	var acc [4][f32Lanes]float32
	np := n &^ (vecDotStep - 1)
	for i := 0; i < np; i += vecDotStep {
		for j := range acc {
			for l := range f32Lanes {
				e := i + j*f32Lanes + l
				acc[j][l] = fma32(at(w, e), at(x, e), acc[j][l])
			}
		}
	}
	return reduce4x16(&acc), np
}

// dotF32 is ggml_vec_dot_f32. Its loop over the leftover elements
// (sumf += x[i]*y[i] in float32) is what the compiler made of it in the
// zen4 build: vectorized by 16 and then 8 elements, whose products are
// rounded and then added one by one in order, and a scalar loop over the
// last n%8, contracted to FMA (TestFloatDotMatchesGGMLZen4 tells).
func dotF32(w, xq []byte, n int) float32 {
	w, xq = w[:4*n], xq[:4*n]
	sum, np := vecDotGroups(f32At, w, xq, n)
	return dotF32Leftover(w, xq, sum, np, n)
}

// dotF32Leftover adds the products of elements [i, n) to sum as
// ggml_vec_dot_f32 adds its leftover elements.
func dotF32Leftover(w, xq []byte, sum float32, i, n int) float32 {
	for ; i < n&^7; i++ {
		sum += float32(f32At(w, i) * f32At(xq, i))
	}
	for ; i < n; i++ {
		sum = fma32(f32At(w, i), f32At(xq, i), sum)
	}
	return sum
}

// dotF16 is ggml_vec_dot_f16: the reduced sum and the leftover products
// are added in float64.
func dotF16(w, xq []byte, n int) float32 {
	w, xq = w[:2*n], xq[:2*n]
	sum, np := vecDotGroups(f16At, w, xq, n)
	return dotF16Leftover(w, xq, sum, np, n)
}

// dotF16Leftover adds the products of elements [i, n) to sum as
// ggml_vec_dot_f16 does, in float64.
func dotF16Leftover(w, xq []byte, sum float32, i, n int) float32 {
	s := float64(sum)
	for ; i < n; i++ {
		s += float64(f16At(w, i) * f16At(xq, i))
	}
	return float32(s)
}

// tiledDot is one output of tinyBLAS: lane l of one accumulator takes the
// elements ≡ l mod 16 by FMA, then reduce16. n must be a multiple of 16.
func tiledDot(at floatAt, w, x []byte, n int) float32 {
	var acc [f32Lanes]float32
	for i := 0; i < n; i += f32Lanes {
		for l := range f32Lanes {
			acc[l] = fma32(at(w, i+l), at(x, i+l), acc[l])
		}
	}
	return reduce16(&acc)
}

// dotF32Tiled is tinyBLAS<16, __m512, __m512, float, float, float> for one
// output; n a multiple of 16.
func dotF32Tiled(w, xq []byte, n int) float32 {
	return tiledDot(f32At, w[:4*n], xq[:4*n], n)
}

// dotF16Tiled is tinyBLAS<16, __m512, __m512, ggml_fp16_t, ggml_fp16_t,
// float> for one output; n a multiple of 16.
func dotF16Tiled(w, xq []byte, n int) float32 {
	return tiledDot(f16At, w[:2*n], xq[:2*n], n)
}

// BF16: the zen4 build has AVX512_BF16, and both ggml_vec_dot_bf16 and
// tinyBLAS<32, __m512, __m512bh, ...> multiply with VDPBF16PS, which adds
// to float32 lane l of its accumulator the products of bf16 elements 2l
// and 2l+1 of its two 32-element operands. It treats subnormal inputs as
// zero and flushes subnormal results to zero, whatever MXCSR says.

// bf16Value is a bf16 value as VDPBF16PS reads it: subnormals are zero.
func bf16Value(h uint16) float32 {
	if h&0x7f80 == 0 {
		h &= 0x8000
	}
	return tensor.BF16ToFloat32(h)
}

func bf16At(b []byte, i int) float32 {
	return bf16Value(binary.LittleEndian.Uint16(b[2*i:]))
}

// flushSubnormal returns x, or a zero of its sign if x is subnormal.
func flushSubnormal(x float32) float32 {
	if b := math.Float32bits(x); b&0x7f800000 == 0 {
		return math.Float32frombits(b & 0x80000000)
	}
	return x
}

// dpbf16 is one lane of VDPBF16PS: acc plus the products of the pair
// (w[2l], x[2l]) and (w[2l+1], x[2l+1]) of elements e, e+1.
// TestDPBF16MatchesHardware pins the order of the two roundings.
func dpbf16(acc float32, w, x []byte, e int) float32 {
	acc = flushSubnormal(fma32(bf16At(w, e+1), bf16At(x, e+1), acc))
	return flushSubnormal(fma32(bf16At(w, e), bf16At(x, e), acc))
}

// dotBF16 is ggml_vec_dot_bf16 with AVX512_BF16: two accumulators take
// the first and second 32 elements of each group of 64 by VDPBF16PS; each
// is reduced and added in float64, and the leftover products too.
func dotBF16(w, xq []byte, n int) float32 {
	w, xq = w[:2*n], xq[:2*n]
	var c [2][f32Lanes]float32
	np := n &^ (vecDotStep - 1)
	for i := 0; i < np; i += vecDotStep {
		for j := range c {
			for l := range f32Lanes {
				c[j][l] = dpbf16(c[j][l], w, xq, i+32*j+2*l)
			}
		}
	}
	sum := float64(reduce16(&c[0]))
	sum += float64(reduce16(&c[1]))
	return dotBF16Leftover(w, xq, sum, np, n)
}

// dotBF16Leftover adds the products of elements [i, n) to sum in float64,
// as ggml_vec_dot_bf16's scalar loop does (it converts subnormals).
func dotBF16Leftover(w, xq []byte, sum float64, i, n int) float32 {
	for ; i < n; i++ {
		a := tensor.BF16ToFloat32(binary.LittleEndian.Uint16(w[2*i:]))
		b := tensor.BF16ToFloat32(binary.LittleEndian.Uint16(xq[2*i:]))
		sum += float64(a * b)
	}
	return float32(sum)
}

// dotBF16Tiled is tinyBLAS<32, __m512, __m512bh, ggml_bf16_t, ggml_bf16_t,
// float> for one output: one accumulator takes each 32 elements by
// VDPBF16PS; n a multiple of 32.
func dotBF16Tiled(w, xq []byte, n int) float32 {
	w, xq = w[:2*n], xq[:2*n]
	var acc [f32Lanes]float32
	for i := 0; i < n; i += bf16TiledStep {
		for l := range f32Lanes {
			acc[l] = dpbf16(acc[l], w, xq, i+2*l)
		}
	}
	return reduce16(&acc)
}
