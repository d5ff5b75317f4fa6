package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// TestQ4_0SpanMatchesDot checks the one-token span kernel against the set's
// one-row Q4_0 kernel, bit for bit, for rows short and long: up to
// spanMaxBlocks blocks the token's table is built once per call, past it
// the kernel falls back to one call per group.
func TestQ4_0SpanMatchesDot(t *testing.T) {
	set := Available()[0]
	if set.span8[tensor.Q4_0] == nil {
		t.Skip("no span kernel for Q4_0 on this CPU")
	}
	rng := rand.New(rand.NewPCG(45, 46))
	for _, c := range []struct{ groups, n int }{
		{1, 32}, {3, 2048}, {5, 5632}, {2, qk * spanMaxBlocks}, {2, qk * (spanMaxBlocks + 3)},
	} {
		rowBytes := RowBytes(tensor.Q4_0, c.n)
		rows := 8 * c.groups
		w := make([]byte, 0, rows*rowBytes)
		for r := 0; r < rows; r++ {
			w = append(w, randomWeightRow(rng, tensor.Q4_0, c.n, 0.05)...)
		}
		xq := make([]byte, RowBytes(tensor.Q8_0, c.n))
		QuantizeRow(tensor.Q8_0, activationRows(rng, c.n)["normal"], xq)
		got := make([]float32, rows)
		dot8SpanQ4_0VNNIRows(w, rowBytes, c.groups, xq, c.n, got)
		for r := range got {
			want := set.Dot(tensor.Q4_0, w[r*rowBytes:(r+1)*rowBytes], xq, c.n)
			if math.Float32bits(got[r]) != math.Float32bits(want) {
				t.Fatalf("%d groups of %d values, row %d: span %v, Dot %v", c.groups, c.n, r, got[r], want)
			}
		}
	}
}
