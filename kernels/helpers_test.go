package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// weightTypes are the weight formats the kernels support.
var weightTypes = []tensor.Type{
	tensor.F32, tensor.F16, tensor.BF16,
	tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0,
	tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
}

// scaleOffsets lists, per quantized weight type, the byte offsets of the
// fp16 scale fields inside a block (read from ggml-common.h, not from the
// code under test): random test blocks get finite values there.
var scaleOffsets = map[tensor.Type][]int{
	tensor.Q4_0: {0},
	tensor.Q4_1: {0, 2},
	tensor.Q5_0: {0},
	tensor.Q5_1: {0, 2},
	tensor.Q8_0: {0},
	tensor.Q2_K: {80, 82},
	tensor.Q3_K: {108},
	tensor.Q4_K: {0, 2},
	tensor.Q5_K: {0, 2},
	tensor.Q6_K: {208},
}

// lengthsFor returns row lengths of 1, 2, 3 and 8 blocks (and odd lengths
// for the plain formats, which have no blocks).
func lengthsFor(t tensor.Type) []int {
	switch t {
	case tensor.F32, tensor.F16, tensor.BF16:
		return []int{1, 7, 33, 256, 2048}
	}
	bs := t.BlockSize()
	return []int{bs, 2 * bs, 3 * bs, 8 * bs}
}

// randomProduct returns the inputs of a product with s: rows random rows of
// n weights of type wt and nTok rows of n "normal" activations rounded to
// wt's dot-product type, with their row sizes.
func randomProduct(rng *rand.Rand, s *Set, wt tensor.Type, n, rows, nTok int) (w []byte, rb int, xq []byte, xb int) {
	vt := VecDotType(wt)
	rb, xb = RowBytes(wt, n), RowBytes(vt, n)
	for r := 0; r < rows; r++ {
		w = append(w, randomWeightRow(rng, wt, n, 0.1)...)
	}
	xq = make([]byte, nTok*xb)
	for tok := 0; tok < nTok; tok++ {
		s.QuantizeRow(vt, activationRows(rng, n)["normal"], xq[tok*xb:])
	}
	return w, rb, xq, xb
}

// randomWeightRow returns n elements of type t as raw bytes: arbitrary
// quant bits, with the scale fields set to finite fp16 values of the given
// magnitude (and random signs for the offsets/mins), so every bit of the
// layout is exercised and the result is a finite number.
func randomWeightRow(rng *rand.Rand, t tensor.Type, n int, scale float32) []byte {
	switch t {
	case tensor.F32:
		b := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(rng.NormFloat64())*scale))
		}
		return b
	case tensor.F16:
		b := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(b[2*i:], tensor.Float32ToFP16(float32(rng.NormFloat64())*scale))
		}
		return b
	case tensor.BF16:
		b := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			binary.LittleEndian.PutUint16(b[2*i:], tensor.Float32ToBF16(float32(rng.NormFloat64())*scale))
		}
		return b
	}
	bs, ts := t.BlockSize(), t.TypeSize()
	b := make([]byte, n/bs*ts)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	for blk := 0; blk < n/bs; blk++ {
		for _, off := range scaleOffsets[t] {
			v := float32(rng.Float64()+0.1) * scale
			if off != 0 && rng.IntN(2) == 0 {
				v = -v // an offset m or dmin may have either sign
			}
			binary.LittleEndian.PutUint16(b[blk*ts+off:], tensor.Float32ToFP16(v))
		}
	}
	return b
}

// activationRows returns named activation rows of length n: random ones
// of several distributions and adversarial ones.
func activationRows(rng *rand.Rand, n int) map[string][]float32 {
	gen := func(f func(i int) float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	return map[string][]float32{
		"normal":    gen(func(int) float32 { return float32(rng.NormFloat64()) }),
		"uniform":   gen(func(int) float32 { return float32(rng.Float64()*2 - 1) }),
		"wide":      gen(func(int) float32 { return float32(rng.NormFloat64() * math.Exp(2*rng.NormFloat64())) }),
		"large":     gen(func(int) float32 { return float32(rng.NormFloat64() * 1e4) }),
		"small":     gen(func(int) float32 { return float32(rng.NormFloat64() * 1e-6) }),
		"zeros":     gen(func(int) float32 { return 0 }),
		"constant":  gen(func(int) float32 { return -0.75 }),
		"positive":  gen(func(int) float32 { return float32(rng.Float64()) }),
		"alternate": gen(func(i int) float32 { return float32(1-2*(i%2)) * 3 }),
		"outlier": gen(func(i int) float32 {
			if i%37 == 5 {
				return 300
			}
			return float32(rng.NormFloat64() * 0.01)
		}),
	}
}

// dequantizeActivation decodes an activation row of type vt. tensor
// decodes every type but Q8_1, whose d and qs mean what they mean in Q8_0
// (the extra s field only serves the dot product).
func dequantizeActivation(t testing.TB, vt tensor.Type, xq []byte, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if vt == tensor.Q8_1 {
		for blk := 0; blk < n/32; blk++ {
			b := xq[blk*36:]
			d := tensor.FP16ToFloat32(binary.LittleEndian.Uint16(b))
			for j := 0; j < 32; j++ {
				out[blk*32+j] = d * float32(int8(b[4+j]))
			}
		}
		return out
	}
	if err := tensor.Dequantize(vt, xq, out); err != nil {
		t.Fatalf("dequantize %s: %v", vt, err)
	}
	return out
}

func dequantizeWeight(t testing.TB, wt tensor.Type, w []byte, n int) []float32 {
	t.Helper()
	out := make([]float32, n)
	if err := tensor.Dequantize(wt, w, out); err != nil {
		t.Fatalf("dequantize %s: %v", wt, err)
	}
	return out
}

// fp16Err bounds the error of rounding a non-negative float32 v to fp16:
// half an ulp, relative 2^-11 for normals, 2^-25 absolute below them.
func fp16Err(v float64) float64 { return math.Max(v*0x1p-11, 0x1p-25) }

// activationErr bounds |x_i - dequantized x_i| for every element of a row
// quantized to vt, from the format alone: half a quantization step plus
// what rounding the block's scale to fp16 can add.
func activationErr(vt tensor.Type, x []float32) []float64 {
	e := make([]float64, len(x))
	block := func(size int, f func(amax float64) float64) {
		for b := 0; b < len(x); b += size {
			var amax float64
			for _, v := range x[b : b+size] {
				amax = math.Max(amax, math.Abs(float64(v)))
			}
			for i := b; i < b+size; i++ {
				e[i] = f(amax)
			}
		}
	}
	switch vt {
	case tensor.Q8_0, tensor.Q8_1:
		block(32, func(amax float64) float64 {
			d := amax / 127
			return 0.5*d*(1+1e-6) + 127*fp16Err(d)
		})
	case tensor.Q8_K:
		block(256, func(amax float64) float64 { return 0.5 * amax / 127 * (1 + 1e-5) })
	case tensor.F16:
		for i, v := range x {
			e[i] = fp16Err(math.Abs(float64(v)))
		}
	case tensor.BF16:
		for i, v := range x {
			e[i] = math.Abs(float64(v)) * 0x1p-8
		}
	}
	return e
}

func bytesOf(t testing.TB, vt tensor.Type, x []float32) []byte {
	t.Helper()
	b := make([]byte, RowBytes(vt, len(x)))
	QuantizeRow(vt, x, b)
	return b
}
