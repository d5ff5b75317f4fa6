package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// TestQ4_KSpanMatchesDot checks the one-token Q4_K span kernel against
// the set's one-row Q4_K kernel, bit for bit, for even and odd row
// counts and short and long rows, with random bits in the rows too.
func TestQ4_KSpanMatchesDot(t *testing.T) {
	if !cpuHasVNNI() {
		t.Skip("no avx512vnni set on this CPU")
	}
	set := Available()[0]
	rng := rand.New(rand.NewPCG(49, 50))
	for _, c := range []struct{ rows, n int }{
		{1, 256}, {2, 256}, {3, 2048}, {8, 2048}, {7, 5632}, {16, 4096},
	} {
		rowBytes := RowBytes(tensor.Q4_K, c.n)
		for _, random := range []bool{false, true} {
			w := make([]byte, 0, c.rows*rowBytes)
			for r := 0; r < c.rows; r++ {
				row := randomWeightRow(rng, tensor.Q4_K, c.n, 0.05)
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
			spanQ4_KVNNIRows(w, rowBytes, xq, c.n, got)
			for r := range got {
				want := set.Dot(tensor.Q4_K, w[r*rowBytes:(r+1)*rowBytes], xq, c.n)
				if math.Float32bits(got[r]) != math.Float32bits(want) {
					t.Fatalf("%d rows of %d values (random bits %v), row %d: span %v, Dot %v", c.rows, c.n, random, r, got[r], want)
				}
			}
		}
	}
}
