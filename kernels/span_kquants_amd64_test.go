package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// spanKernels are the one-token k-quant span kernels of the avx512vnni
// set, with their types.
var spanKernels = []struct {
	wt   tensor.Type
	span rowSpan
}{
	{tensor.Q4_K, spanQ4_KVNNIRows},
}

// TestKQuantSpanMatchesDot checks the one-token span kernels against the
// set's one-row kernel of their type, bit for bit, for even and odd row
// counts and short and long rows, with random bits in the rows too.
func TestKQuantSpanMatchesDot(t *testing.T) {
	if !cpuHasVNNI() {
		t.Skip("no avx512vnni set on this CPU")
	}
	set := Available()[0]
	rng := rand.New(rand.NewPCG(49, 50))
	for _, k := range spanKernels {
		for _, c := range []struct{ rows, n int }{
			{1, 256}, {2, 256}, {3, 2048}, {8, 2048}, {7, 5632}, {16, 4096},
		} {
			rowBytes := RowBytes(k.wt, c.n)
			for _, random := range []bool{false, true} {
				w := make([]byte, 0, c.rows*rowBytes)
				for r := 0; r < c.rows; r++ {
					row := randomWeightRow(rng, k.wt, c.n, 0.05)
					if random {
						for i := range row {
							row[i] = byte(rng.Uint32())
						}
					}
					w = append(w, row...)
				}
				xq := make([]byte, RowBytes(tensor.Q8_K, c.n))
				QuantizeRow(tensor.Q8_K, activationRows(rng, c.n)["normal"], xq)
				got := make([]float32, c.rows)
				k.span(w, rowBytes, xq, c.n, got)
				for r := range got {
					want := set.Dot(k.wt, w[r*rowBytes:(r+1)*rowBytes], xq, c.n)
					if math.Float32bits(got[r]) != math.Float32bits(want) {
						t.Fatalf("%s: %d rows of %d values (random bits %v), row %d: span %v, Dot %v", k.wt, c.rows, c.n, random, r, got[r], want)
					}
				}
			}
		}
	}
}
