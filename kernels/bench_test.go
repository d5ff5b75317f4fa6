package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// reportWeightGBs reports the weight bytes read per second: the figure
// that bounds decode speed, which streams every weight once per token.
// "GB/s" is from wall-clock time, "cpuGB/s" from the CPU time the
// benchmark used since cpu0 (processCPUSeconds at the start), which stays
// meaningful on a busy machine.
func reportWeightGBs(b *testing.B, weightBytes int, cpu0 float64) {
	b.SetBytes(int64(weightBytes))
	total := float64(weightBytes) * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GB/s")
	if cpu := processCPUSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(total/cpu/1e9, "cpuGB/s")
		b.ReportMetric(cpu*1e9/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkDot/<type>/<path> times one row of 2048 values with each set
// of kernels the CPU can run.
func BenchmarkDot(b *testing.B) {
	const n = 2048
	rng := rand.New(rand.NewPCG(31, 32))
	for _, wt := range weightTypes {
		b.Run(wt.String(), func(b *testing.B) {
			w := randomWeightRow(rng, wt, n, 0.05)
			xq := bytesOf(b, VecDotType(wt), activationRows(rng, n)["normal"])
			for _, s := range Available() {
				dot, err := s.DotFunc(wt)
				if err != nil {
					b.Fatal(err)
				}
				b.Run(s.Name(), func(b *testing.B) {
					var sink float32
					cpu0 := processCPUSeconds()
					for b.Loop() {
						sink += dot(w, xq, n)
					}
					_ = sink
					reportWeightGBs(b, len(w), cpu0)
				})
			}
		})
	}
}

// BenchmarkMatMulRows/<type>/<rows>x<n>/tok=<k>/<path> multiplies a whole
// weight matrix (the shapes of a 1B-class model's attention and FFN
// matrices) with 1 token (decode, bound by reading the weights), 8
// (batched decode) and 32 or 128 tokens (prompt processing, bound by
// arithmetic) on one goroutine. The small 64-row matrix stays in the L2
// cache and shows the kernels' own speed. Besides the weight bytes read
// per second it reports "GMAC/s", multiply-adds per second (rows·n·tok
// per op), from the CPU time.
func BenchmarkMatMulRows(b *testing.B) {
	rng := rand.New(rand.NewPCG(33, 34))
	for _, wt := range weightTypes {
		b.Run(wt.String(), func(b *testing.B) {
			for _, shape := range []struct{ rows, n int }{{64, 2048}, {2048, 2048}, {5632, 2048}} {
				b.Run(fmt.Sprintf("%dx%d", shape.rows, shape.n), func(b *testing.B) {
					benchMatMul(b, rng, wt, shape.rows, shape.n)
				})
			}
		})
	}
}

func benchMatMul(b *testing.B, rng *rand.Rand, wt tensor.Type, rows, n int) {
	rowBytes := RowBytes(wt, n)
	// Distinct memory for every row (what matters for bandwidth), filled
	// from a few random rows (generating all of them would be slow).
	const distinct = 64
	w := make([]byte, rows*rowBytes)
	for r := 0; r < distinct; r++ {
		copy(w[r*rowBytes:], randomWeightRow(rng, wt, n, 0.05))
	}
	for r := distinct; r < rows; r++ {
		copy(w[r*rowBytes:(r+1)*rowBytes], w[(r%distinct)*rowBytes:])
	}
	benchMatMulTokens(b, rng, wt, w, rowBytes, rows, n, []int{1, 8, 32, 128})
}

// BenchmarkMatMulRowsDRAM/<type>/<path> multiplies 96 MB of weight rows
// 2048 values wide (three times the largest L3 cache of the machines
// here) with one token: decode of a model that does not fit the cache,
// where the weights come from memory and what counts is how well the
// kernels' access pattern streams.
func BenchmarkMatMulRowsDRAM(b *testing.B) {
	const n, total = 2048, 96 << 20
	rng := rand.New(rand.NewPCG(39, 40))
	for _, wt := range []tensor.Type{tensor.F32, tensor.F16, tensor.Q8_0, tensor.Q4_0, tensor.Q4_K} {
		b.Run(wt.String(), func(b *testing.B) {
			rowBytes := RowBytes(wt, n)
			rows := total / rowBytes
			const distinct = 64
			w := make([]byte, rows*rowBytes)
			for r := 0; r < distinct; r++ {
				copy(w[r*rowBytes:], randomWeightRow(rng, wt, n, 0.05))
			}
			for r := distinct; r < rows; r++ {
				copy(w[r*rowBytes:(r+1)*rowBytes], w[(r%distinct)*rowBytes:])
			}
			benchMatMulTokens(b, rng, wt, w, rowBytes, rows, n, []int{1})
		})
	}
}

// BenchmarkMatMulRowsSmall times the F32 matrices of stories260K (64-wide
// activations, FFN hidden size 172, vocabulary 512), where the work per
// call is small and overheads dominate, for one token and a batch of 8.
func BenchmarkMatMulRowsSmall(b *testing.B) {
	rng := rand.New(rand.NewPCG(37, 38))
	wt := tensor.F32
	for _, shape := range []struct{ rows, n int }{{64, 64}, {172, 64}, {64, 172}, {512, 64}} {
		b.Run(fmt.Sprintf("%s/%dx%d", wt, shape.rows, shape.n), func(b *testing.B) {
			rowBytes := RowBytes(wt, shape.n)
			var w []byte
			for r := 0; r < shape.rows; r++ {
				w = append(w, randomWeightRow(rng, wt, shape.n, 0.05)...)
			}
			benchMatMulTokens(b, rng, wt, w, rowBytes, shape.rows, shape.n, []int{1, 8})
		})
	}
}

func benchMatMulTokens(b *testing.B, rng *rand.Rand, wt tensor.Type, w []byte, rowBytes, rows, n int, toks []int) {
	vt := VecDotType(wt)
	for _, nTok := range toks {
		b.Run(fmt.Sprintf("tok=%d", nTok), func(b *testing.B) {
			xRowBytes := RowBytes(vt, n)
			xq := make([]byte, nTok*xRowBytes)
			for t := 0; t < nTok; t++ {
				QuantizeRow(vt, activationRows(rng, n)["normal"], xq[t*xRowBytes:])
			}
			dst := make([]float32, nTok*rows)
			for _, s := range Available() {
				b.Run(s.Name(), func(b *testing.B) {
					cpu0 := processCPUSeconds()
					for b.Loop() {
						s.MatMulRows(wt, w, rowBytes, 0, rows, xq, xRowBytes, nTok, n, dst, rows)
					}
					reportWeightGBs(b, len(w), cpu0)
					if cpu := processCPUSeconds() - cpu0; cpu > 0 {
						b.ReportMetric(float64(rows)*float64(n)*float64(nTok)*float64(b.N)/cpu/1e9, "GMAC/s")
					}
				})
			}
		})
	}
}

// BenchmarkQuantizeRow/<type>/<path> quantizes one activation row of 2048
// values with each set.
func BenchmarkQuantizeRow(b *testing.B) {
	const n = 2048
	rng := rand.New(rand.NewPCG(35, 36))
	x := activationRows(rng, n)["normal"]
	for _, vt := range []tensor.Type{tensor.Q8_0, tensor.Q8_1, tensor.Q8_K, tensor.F16, tensor.BF16, tensor.F32} {
		dst := make([]byte, RowBytes(vt, n))
		b.Run(vt.String(), func(b *testing.B) {
			for _, s := range Available() {
				b.Run(s.Name(), func(b *testing.B) {
					for b.Loop() {
						s.QuantizeRow(vt, x, dst)
					}
					b.SetBytes(4 * n)
				})
			}
		})
	}
}
