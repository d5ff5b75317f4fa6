package kernels

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSpan times the one-token decode products that have a span
// kernel (Q4_K) over a 72 MB matrix read from a file's memory map (as the
// engine reads weights), and over 256 rows that stay in L2, with the same
// bits three ways: the set's one-row kernel once per row, its four-row
// kernel where it has one ("rows4": how MatMulRows took one token before
// the span kernels), and the span kernel over all rows in one call.
// DRAM2 runs the last two on two goroutines, each on half the rows, as a
// two-thread decode step does: there wall-clock GB/s is what counts.
func BenchmarkSpan(b *testing.B) {
	const n = 2048
	rng := rand.New(rand.NewPCG(47, 48))
	for _, sk := range spanKernels {
		set := setNamed(sk.set)
		if set == nil {
			continue
		}
		w, rowBytes, rows := mappedWeights(b, rng, sk.wt, n)
		vt := VecDotType(sk.wt)
		xq := make([]byte, RowBytes(vt, n))
		set.QuantizeRow(vt, activationRows(rng, n)["normal"], xq)
		dst := make([]float32, rows)
		dot, dot4 := set.dot[sk.wt], set.dot4[sk.wt]
		// rows4 runs [lo, hi) with the set's four-row kernel where it
		// has one (how MatMulRows took one token before the span
		// kernels), else one row at a time.
		rows4 := func(lo, hi int) {
			r := lo
			for ; dot4 != nil && r+4 <= hi; r += 4 {
				dot4(w[r*rowBytes:], rowBytes, xq, n, dst[r:r+4])
			}
			for ; r < hi; r++ {
				dst[r] = dot(w[r*rowBytes:], xq, n)
			}
		}
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
				{"rows4", func(rows int) { rows4(0, rows) }},
				{"span", func(rows int) { sk.span(w, rowBytes, xq, n, dst[:rows]) }},
			} {
				b.Run(sk.wt.String()+"/"+shape.name+"/"+k.name, func(b *testing.B) {
					cpu0 := processCPUSeconds()
					for b.Loop() {
						k.run(shape.rows)
					}
					reportWeightGBs(b, shape.rows*rowBytes, cpu0)
				})
				if shape.name != "DRAM" || k.name == "rows" {
					continue
				}
				// Two goroutines on the two halves, as a decode step
				// with two threads: wall-clock GB/s is what counts.
				b.Run(sk.wt.String()+"/DRAM2/"+k.name, func(b *testing.B) {
					half := shape.rows / 2
					cpu0 := processCPUSeconds()
					for b.Loop() {
						done := make(chan struct{})
						go func() {
							if k.name == "span" {
								sk.span(w[half*rowBytes:], rowBytes, xq, n, dst[half:shape.rows])
							} else {
								rows4(half, shape.rows)
							}
							close(done)
						}()
						if k.name == "span" {
							sk.span(w, rowBytes, xq, n, dst[:half])
						} else {
							rows4(0, half)
						}
						<-done
					}
					reportWeightGBs(b, shape.rows*rowBytes, cpu0)
				})
			}
		}
	}
}
