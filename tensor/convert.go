package tensor

import (
	"fmt"
	"math"
)

// A rowCodec converts whole blocks of one type. The per-type functions
// (DequantizeQ4_0, QuantizeQ4_K, ...) check sizes and then call these.
type rowCodec struct {
	dequantize func(src []byte, dst []float32)
	quantize   func(src []float32, dst []byte)
}

// codecFor returns the converters of a supported type. A switch rather
// than a package-level map keeps the package free of mutable globals.
func codecFor(t Type) (rowCodec, bool) {
	switch t {
	case F32:
		return rowCodec{dequantizeF32, quantizeF32}, true
	case F16:
		return rowCodec{dequantizeF16, quantizeF16}, true
	case BF16:
		return rowCodec{dequantizeBF16, quantizeBF16}, true
	case Q4_0:
		return rowCodec{dequantizeQ4_0, quantizeQ4_0}, true
	case Q4_1:
		return rowCodec{dequantizeQ4_1, quantizeQ4_1}, true
	case Q5_0:
		return rowCodec{dequantizeQ5_0, quantizeQ5_0}, true
	case Q5_1:
		return rowCodec{dequantizeQ5_1, quantizeQ5_1}, true
	case Q8_0:
		return rowCodec{dequantizeQ8_0, quantizeQ8_0}, true
	case Q2_K:
		return rowCodec{dequantizeQ2_K, quantizeQ2_K}, true
	case Q3_K:
		return rowCodec{dequantizeQ3_K, quantizeQ3_K}, true
	case Q4_K:
		return rowCodec{dequantizeQ4_K, quantizeQ4_K}, true
	case Q5_K:
		return rowCodec{dequantizeQ5_K, quantizeQ5_K}, true
	case Q6_K:
		return rowCodec{dequantizeQ6_K, quantizeQ6_K}, true
	case Q8_K:
		return rowCodec{dequantizeQ8_K, quantizeQ8_K}, true
	}
	return rowCodec{}, false
}

// Dequantize converts len(dst) elements of type t, stored in src, to
// float32 exactly as ggml's to_float for the type does. len(dst) must be a
// whole number of blocks and src exactly their size in bytes.
func Dequantize(t Type, src []byte, dst []float32) error {
	c, ok := codecFor(t)
	if !ok {
		return fmt.Errorf("%w: cannot dequantize %s", ErrUnsupported, t)
	}
	if err := checkSizes("dequantize", t, len(dst), len(src)); err != nil {
		return err
	}
	c.dequantize(src, dst)
	return nil
}

// Quantize converts src to type t into dst exactly as ggml's
// ggml_quantize_chunk does without an importance matrix (for Q8_K, which
// ggml_quantize_chunk lacks: quantize_row_q8_K_ref). Every supported format
// quantizes each block on its own, so src may hold any number of rows laid
// end to end; len(src) must be a whole number of blocks and dst exactly
// their size in bytes.
func Quantize(t Type, src []float32, dst []byte) error {
	c, ok := codecFor(t)
	if !ok {
		return fmt.Errorf("%w: cannot quantize %s", ErrUnsupported, t)
	}
	if err := checkSizes("quantize", t, len(src), len(dst)); err != nil {
		return err
	}
	c.quantize(src, dst)
	return nil
}

// checkSizes verifies that n elements of t are whole blocks that take
// exactly nbytes bytes.
func checkSizes(op string, t Type, n, nbytes int) error {
	bs, ts := t.BlockSize(), t.TypeSize()
	if n%bs != 0 {
		return fmt.Errorf("tensor: %s %s: %d elements are not a whole number of %d-element blocks", op, t, n, bs)
	}
	if want := n / bs * ts; nbytes != want {
		return fmt.Errorf("tensor: %s %s: %d elements take %d bytes, got %d", op, t, n, want, nbytes)
	}
	return nil
}

// dequantizeChecked and quantizeChecked back the exported per-type
// functions.
func dequantizeChecked(t Type, f func([]byte, []float32), src []byte, dst []float32) error {
	if err := checkSizes("dequantize", t, len(dst), len(src)); err != nil {
		return err
	}
	f(src, dst)
	return nil
}

func quantizeChecked(t Type, f func([]float32, []byte), src []float32, dst []byte) error {
	if err := checkSizes("quantize", t, len(src), len(dst)); err != nil {
		return err
	}
	f(src, dst)
	return nil
}

// The helpers below reproduce C's float and integer semantics as ggml's
// reference code is compiled for x86-64 (SSE2, no FMA, no fast-math), so
// that results match bit for bit.

// abs32 is fabsf: it clears the sign bit and nothing else.
func abs32(x float32) float32 {
	return math.Float32frombits(math.Float32bits(x) &^ (1 << 31))
}

// truncInt32 is a C float-to-int conversion as x86 executes it
// (cvttss2si): toward zero, and 0x80000000 for NaN or out-of-range values,
// where C leaves the result undefined. ggml's code relies on it for
// values such as NaN*0 in degenerate blocks.
func truncInt32(x float32) int32 {
	if !(x >= -2147483648 && x < 2147483648) { // also true for NaN
		return math.MinInt32
	}
	return int32(x)
}

// nearestInt is ggml's nearest_int: adding 1.5*2^23 makes the float adder
// round to an integer (to nearest, ties to even) and leaves it in the low
// mantissa bits. Out-of-range inputs give garbage, but the same garbage as
// ggml, so they are reproduced rather than rejected.
func nearestInt(x float32) int {
	// float32(x) keeps a product passed as x from being fused with this
	// add once inlined: C rounds the product first.
	v := float32(x) + 12582912
	i := int32(math.Float32bits(v))
	return int((i & 0x007fffff) - 0x00400000)
}

// roundf rounds half away from zero, as C's roundf.
func roundf(x float32) float32 {
	return float32(math.Round(float64(x)))
}

// clampInt limits v to [lo, hi] in the order ggml's MAX(lo, MIN(hi, v))
// does.
func clampInt(v, lo, hi int) int {
	if v > hi {
		v = hi
	}
	if v < lo {
		v = lo
	}
	return v
}
