package kernels

import (
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// BenchmarkQ4_KSpan times the one-token Q4_K decode product over a 72 MB
// matrix read from a file's memory map (as the engine reads weights), and
// over 256 rows that stay in L2, two ways with the same bits: the one-row
// kernel once per row (how MatMulRows took one token before) and the span
// kernel over all rows in one call.
func BenchmarkQ4_KSpan(b *testing.B) {
	if !cpuHasVNNI() {
		b.Skip("no avx512vnni set")
	}
	const n = 2048
	rng := rand.New(rand.NewPCG(47, 48))
	rowBytes := RowBytes(tensor.Q4_K, n)
	rows := (72 << 20) / rowBytes / 8 * 8
	heap := make([]byte, rows*rowBytes)
	for r := 0; r < 64; r++ {
		copy(heap[r*rowBytes:], randomWeightRow(rng, tensor.Q4_K, n, 0.05))
	}
	for r := 64; r < rows; r++ {
		copy(heap[r*rowBytes:(r+1)*rowBytes], heap[(r%64)*rowBytes:])
	}
	w := mapBytes(b, heap)
	xq := make([]byte, RowBytes(tensor.Q8_K, n))
	QuantizeRow(tensor.Q8_K, activationRows(rng, n)["normal"], xq)
	dst := make([]float32, rows)
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
					dst[r] = dotQ4_KVNNIRow(w[r*rowBytes:], xq, n)
				}
			}},
			{"span", func(rows int) { spanQ4_KVNNIRows(w, rowBytes, xq, n, dst[:rows]) }},
		} {
			b.Run(shape.name+"/"+k.name, func(b *testing.B) {
				cpu0 := processCPUSeconds()
				for b.Loop() {
					k.run(shape.rows)
				}
				reportWeightGBs(b, shape.rows*rowBytes, cpu0)
			})
		}
	}
}

func cpuHasVNNI() bool { return Available()[0].Name() == "avx512vnni" }
