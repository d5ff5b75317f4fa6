package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// spanKernel is a one-token span kernel and the set it belongs to.
type spanKernel struct {
	wt   tensor.Type
	set  string // the slowest set that has it (the faster ones keep it)
	span rowSpan
}

// spanKernels are the amd64 span kernels.
var spanKernels = []spanKernel{
	{tensor.Q4_K, "avx512vnni", spanQ4_KVNNIRows},
}

// setNamed returns the available set called name, or nil.
func setNamed(name string) *Set {
	for _, s := range Available() {
		if s.Name() == name {
			return s
		}
	}
	return nil
}

// TestSpanMatchesDot checks each one-token span kernel against its set's
// one-row kernel of the type, bit for bit, for even and odd row counts,
// short and long rows, with random bits in the rows too; and that the set
// uses it.
func TestSpanMatchesDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	for _, k := range spanKernels {
		set := setNamed(k.set)
		if set == nil {
			t.Logf("%s: no %s set on this CPU", k.wt, k.set)
			continue
		}
		if set.span[k.wt] == nil {
			t.Errorf("set %s does not use its %s span kernel", set.Name(), k.wt)
		}
		for _, c := range []struct{ rows, n int }{{1, 256}, {2, 256}, {3, 2048}, {8, 2048}, {7, 5632}, {16, 4096}} {
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
				vt := VecDotType(k.wt)
				xq := make([]byte, RowBytes(vt, c.n))
				set.QuantizeRow(vt, activationRows(rng, c.n)["normal"], xq)
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
