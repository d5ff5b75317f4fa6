package kernels

import (
	"encoding/binary"
	"math"

	"llamago/tensor"
)

// The float formats follow the scalar branches of ggml's ggml_vec_dot_f32,
// ggml_vec_dot_f16 and ggml_vec_dot_bf16: each product is rounded to
// float32 (for fp16 and bf16 inputs it is exact) and the products are
// summed in float64; the sum is returned as float32.

func dotF32(w, xq []byte, n int) float32 {
	w, xq = w[:4*n], xq[:4*n]
	var sum float64
	for i := 0; i < len(w); i += 4 {
		a := math.Float32frombits(binary.LittleEndian.Uint32(w[i:]))
		b := math.Float32frombits(binary.LittleEndian.Uint32(xq[i:]))
		sum += float64(a * b)
	}
	return float32(sum)
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

func dotF16(w, xq []byte, n int) float32 {
	w, xq = w[:2*n], xq[:2*n]
	tab := fp16Table
	var sum float64
	for i := 0; i < len(w); i += 2 {
		a := tab[binary.LittleEndian.Uint16(w[i:])]
		b := tab[binary.LittleEndian.Uint16(xq[i:])]
		sum += float64(a * b)
	}
	return float32(sum)
}

func dotBF16(w, xq []byte, n int) float32 {
	w, xq = w[:2*n], xq[:2*n]
	var sum float64
	for i := 0; i < len(w); i += 2 {
		a := tensor.BF16ToFloat32(binary.LittleEndian.Uint16(w[i:]))
		b := tensor.BF16ToFloat32(binary.LittleEndian.Uint16(xq[i:]))
		sum += float64(a * b)
	}
	return float32(sum)
}
