package oracle

import (
	"math"

	"llamago/tensor"
)

// activationFormat is the format ggml's CPU code rounds activations to
// before multiplying them by weights of type t (its vec_dot_type): F16 and
// BF16 weights multiply activations rounded to their own type, the legacy
// formats 8-bit blocks of 32 (Q8_0, whose quants Q8_1 shares), the
// k-quants 8-bit blocks of 256 (Q8_K), F32 plain floats.
func activationFormat(t tensor.Type) tensor.Type {
	switch t {
	case tensor.F16, tensor.BF16:
		return t
	case tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0:
		return tensor.Q8_0
	case tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K:
		return tensor.Q8_K
	}
	return tensor.F32
}

// roundActivations rounds x (a whole row) in place as format f stores it:
// the value each element has once quantized and read back.
func roundActivations(f tensor.Type, x []float64) {
	switch f {
	case tensor.F32:
		for i, v := range x {
			x[i] = float64(float32(v))
		}
	case tensor.F16:
		for i, v := range x {
			x[i] = float64(tensor.FP16ToFloat32(tensor.Float32ToFP16(float32(v))))
		}
	case tensor.BF16:
		for i, v := range x {
			x[i] = float64(tensor.BF16ToFloat32(tensor.Float32ToBF16(float32(v))))
		}
	case tensor.Q8_0:
		// ggml's x86 quantize_row_q8_0: per block of 32, d = amax/127 kept
		// as F16, quants round(x·127/amax) with halves to even, in float32.
		for b := 0; b+32 <= len(x); b += 32 {
			var amax float32
			for _, v := range x[b : b+32] {
				amax = max(amax, float32(math.Abs(float64(float32(v)))))
			}
			d := tensor.FP16ToFloat32(tensor.Float32ToFP16(amax / 127))
			var id float32
			if amax != 0 {
				id = 127 / amax
			}
			for i := b; i < b+32; i++ {
				q := float32(math.RoundToEven(float64(float32(x[i]) * id)))
				x[i] = float64(d) * float64(q)
			}
		}
	case tensor.Q8_K:
		// ggml's reference quantize_row_q8_K, through package tensor.
		f32 := make([]float32, len(x))
		for i, v := range x {
			f32[i] = float32(v)
		}
		q := make([]byte, len(x)/tensor.QK_K*tensor.Q8_K.TypeSize())
		if tensor.Quantize(tensor.Q8_K, f32, q) == nil && tensor.Dequantize(tensor.Q8_K, q, f32) == nil {
			for i, v := range f32 {
				x[i] = float64(v)
			}
		}
	}
}
