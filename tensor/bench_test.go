package tensor_test

import (
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// benchMatrix is a 4096 x 64 weight matrix of normal values.
func benchMatrix() []float32 {
	r := rand.New(rand.NewPCG(42, 42))
	x := make([]float32, 4096*64)
	for i := range x {
		x[i] = float32(r.NormFloat64() * 0.02)
	}
	return x
}

// BenchmarkDequantize reports, per type, bytes of float32 output per
// second (MB/s) and elements per second.
func BenchmarkDequantize(b *testing.B) {
	x := benchMatrix()
	for _, typ := range supported {
		b.Run(typ.String(), func(b *testing.B) {
			q := make([]byte, len(x)/typ.BlockSize()*typ.TypeSize())
			if err := tensor.Quantize(typ, x, q); err != nil {
				b.Fatal(err)
			}
			y := make([]float32, len(x))
			b.SetBytes(int64(4 * len(x)))
			b.ResetTimer()
			for b.Loop() {
				if err := tensor.Dequantize(typ, q, y); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
		})
	}
}

// BenchmarkQuantize reports, per type, bytes of float32 input per second
// (MB/s) and elements per second.
func BenchmarkQuantize(b *testing.B) {
	x := benchMatrix()
	for _, typ := range supported {
		b.Run(typ.String(), func(b *testing.B) {
			q := make([]byte, len(x)/typ.BlockSize()*typ.TypeSize())
			b.SetBytes(int64(4 * len(x)))
			b.ResetTimer()
			for b.Loop() {
				if err := tensor.Quantize(typ, x, q); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
		})
	}
}
