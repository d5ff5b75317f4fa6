package kernels

import (
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// BenchmarkQ4_0Span times the one-token Q4_0 decode product over a 72 MB
// matrix two ways in one process, with the same bits: dot8Q4_0VNNI once
// per group of eight rows (how MatMulRows took one token before) and the
// span kernel over all groups in one call. "L2" repeats both on 256 rows
// (288 KB), which stay in cache, to show the instructions alone.
func BenchmarkQ4_0Span(b *testing.B) {
	if Available()[0].span8[tensor.Q4_0] == nil {
		b.Skip("no span kernel for Q4_0 on this CPU")
	}
	const n = 2048
	rng := rand.New(rand.NewPCG(43, 44))
	w, rowBytes, rows := mappedWeights(b, rng, tensor.Q4_0, n)
	xq := make([]byte, RowBytes(tensor.Q8_0, n))
	QuantizeRow(tensor.Q8_0, activationRows(rng, n)["normal"], xq)
	dst := make([]float32, rows)
	for _, shape := range []struct {
		name string
		rows int
	}{{"DRAM", rows}, {"L2", 256}} {
		for _, k := range []struct {
			name string
			run  func(rows int)
		}{
			{"groups", func(rows int) {
				for g := 0; g < rows; g += 8 {
					dot8Q4_0VNNIRows(w[g*rowBytes:], rowBytes, xq, n, dst[g:g+8])
				}
			}},
			{"span", func(rows int) { dot8SpanQ4_0VNNIRows(w, rowBytes, rows/8, xq, n, dst[:rows]) }},
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
