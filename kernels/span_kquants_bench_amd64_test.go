package kernels

import (
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// BenchmarkKQuantSpan times the one-token k-quant decode products (Q4_K)
// over a 72 MB matrix read from a file's memory map (as the engine reads
// weights), and over 256 rows that stay in L2, two ways with the same
// bits: the set's one-row kernel once per row (how MatMulRows took one
// token before) and the span kernel over all rows in one call.
func BenchmarkKQuantSpan(b *testing.B) {
	if !cpuHasVNNI() {
		b.Skip("no avx512vnni set")
	}
	const n = 2048
	rng := rand.New(rand.NewPCG(47, 48))
	set := Available()[0]
	for _, sk := range spanKernels {
		rowBytes := RowBytes(sk.wt, n)
		rows := (72 << 20) / rowBytes / 8 * 8
		heap := make([]byte, rows*rowBytes)
		for r := 0; r < 64; r++ {
			copy(heap[r*rowBytes:], randomWeightRow(rng, sk.wt, n, 0.05))
		}
		for r := 64; r < rows; r++ {
			copy(heap[r*rowBytes:(r+1)*rowBytes], heap[(r%64)*rowBytes:])
		}
		w := mapBytes(b, heap)
		xq := make([]byte, RowBytes(tensor.Q8_K, n))
		QuantizeRow(tensor.Q8_K, activationRows(rng, n)["normal"], xq)
		dst := make([]float32, rows)
		dot := set.dot[sk.wt]
		for _, shape := range []struct {
			name string
			rows int
		}{{"DRAM", rows}, {"L2", 256}} {
			for _, k := range []struct {
				name string
				run  func(rows int)
			}{
				{"rows", func(rows int) {
					for r := 0; r < rows; r++ {
						dst[r] = dot(w[r*rowBytes:], xq, n)
					}
				}},
				{"span", func(rows int) { sk.span(w, rowBytes, xq, n, dst[:rows]) }},
			} {
				b.Run(sk.wt.String()+"/"+shape.name+"/"+k.name, func(b *testing.B) {
					cpu0 := processCPUSeconds()
					for b.Loop() {
						k.run(shape.rows)
					}
					reportWeightGBs(b, shape.rows*rowBytes, cpu0)
				})
			}
		}
	}
}

func cpuHasVNNI() bool { return Available()[0].Name() == "avx512vnni" }
