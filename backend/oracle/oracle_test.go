package oracle

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/backend"
	"llamago/kernels"
	"llamago/tensor"
)

// TestActivationRoundingMatchesKernels checks the oracle's own, plain
// rounding of activations against what the CPU kernels store (they share
// no code): the values must be equal.
func TestActivationRoundingMatchesKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range []tensor.Type{tensor.Q8_0, tensor.Q8_K, tensor.F16, tensor.BF16} {
		for trial := 0; trial < 20; trial++ {
			n := 512
			x := make([]float64, n)
			x32 := make([]float32, n)
			for i := range x {
				x32[i] = float32(rng.NormFloat64() * math.Pow(10, float64(trial%5-2)))
				x[i] = float64(x32[i])
			}
			roundActivations(f, x)
			q := make([]byte, kernels.RowBytes(f, n))
			kernels.QuantizeRow(f, x32, q)
			want := make([]float32, n)
			if err := tensor.Dequantize(f, q, want); err != nil {
				t.Fatal(err)
			}
			for i := range x {
				if float32(x[i]) != want[i] {
					t.Fatalf("%s trial %d: element %d rounds to %g, the kernels store %g", f, trial, i, x[i], want[i])
				}
			}
		}
	}
}

func TestOpsByHand(t *testing.T) {
	be := New()
	w, err := be.LoadWeight(backend.WeightSpec{Name: "w", Type: tensor.F32, Rows: 2, Cols: 2, Data: f32Bytes(1, 2, 3, 4)})
	if err != nil {
		t.Fatal(err)
	}
	x, dst := be.NewMat(1, 2), be.NewMat(1, 2)
	be.Write(x, []float32{1, -1})
	be.MatMul(dst, x, w)
	got := make([]float32, 2)
	be.Read(dst, got)
	if got[0] != -1 || got[1] != -1 { // [1·1 + 2·(−1), 3·1 + 4·(−1)]
		t.Fatalf("MatMul = %v, want [-1 -1]", got)
	}
	// RoPE at position 0 is the identity; at position 1 pair 0 turns by 1 rad.
	m := be.NewMat(2, 2)
	be.Write(m, []float32{1, 0, 1, 0})
	be.RoPE(m, []int32{0, 1}, backend.RoPEParams{Heads: 1, HeadDim: 2, Dims: 2, FreqBase: 10000, FreqScale: 1})
	r := make([]float32, 4)
	be.Read(m, r)
	if r[0] != 1 || r[1] != 0 || math.Abs(float64(r[2])-math.Cos(1)) > 1e-7 || math.Abs(float64(r[3])-math.Sin(1)) > 1e-7 {
		t.Fatalf("RoPE = %v", r)
	}
}

func f32Bytes(v ...float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return b
}
