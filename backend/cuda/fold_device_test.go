package cuda_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"llamago/backend"
	"llamago/backend/cuda"
	"llamago/internal/testenv"
	"llamago/tensor"
)

// TestFoldedNormMatchesEager checks the norm-folded F16 products
// (mvqn_f16, mvqn_glu_f16) and the residual adds merged into the products
// before the norms against a backend launching every operation by
// itself: a decode layer's operations, then an output product longer than
// one pass of the folded blocks over their rows, every result bit for bit
// the eager backend's. Rows of 256 values (all in a thread's registers),
// TinyLlama's 2048, and 4608 (past them); matrices whose rows are no
// multiple of a block's; the norm's own output, which block 0 writes.
func TestFoldedNormMatchesEager(t *testing.T) {
	gpu := needGPU(t)
	eager := eagerBackend(t)
	mvqnBlocks, _ := cuda.MVQNBlocks(gpu)
	if mvqnBlocks == 0 {
		t.Fatal("the GPU holds no mvqn_f16 block")
	}
	r := rand.New(rand.NewPCG(41, 42))
	for _, tc := range []struct{ n, kv, nff int }{{256, 40, 768}, {2048, 256, 5632}, {4608, 100, 1000}} {
		// Longer than one pass of the folded blocks: every block loops.
		vocab := 3*8*mvqnBlocks + 5
		specs := map[string]backend.WeightSpec{}
		for _, s := range []struct {
			name       string
			rows, cols int
		}{{"q", tc.n, tc.n}, {"k", tc.kv, tc.n}, {"v", tc.kv, tc.n}, {"o", tc.n, tc.n}, {"gate", tc.nff, tc.n}, {"up", tc.nff, tc.n}, {"down", tc.n, tc.nff}, {"out", vocab, tc.n}} {
			specs[s.name] = backend.WeightSpec{Name: s.name, Type: tensor.F16, Rows: s.rows, Cols: s.cols, Data: quantized(t, r, tensor.F16, s.rows, s.cols)}
		}
		for _, name := range []string{"norm1", "norm2", "norm3"} {
			specs[name] = backend.WeightSpec{Name: name, Type: tensor.F32, Rows: 1, Cols: tc.n, Data: quantized(t, r, tensor.F32, 1, tc.n)}
		}
		a, x := randFloats(r, tc.n, 1), randFloats(r, tc.n, 1)
		t.Run(fmt.Sprintf("%d values, %d rows of k and v, %d of the FFN", tc.n, tc.kv, tc.nff), func(t *testing.T) {
			type result struct {
				name string
				v    []float32
			}
			run := func(b *cuda.Backend, fused bool) []result {
				w := map[string]backend.Weight{}
				for name, s := range specs {
					var err error
					if w[name], err = b.LoadWeight(s); err != nil {
						t.Fatal(err)
					}
				}
				m := map[string]backend.Mat{}
				for _, s := range []struct {
					name string
					cols int
				}{{"a", tc.n}, {"x", tc.n}, {"y", tc.n}, {"xn", tc.n}, {"xn2", tc.n}, {"q", tc.n}, {"k", tc.kv}, {"v", tc.kv},
					{"gate", tc.nff}, {"up", tc.nff}, {"down", tc.n}, {"logits", vocab}} {
					m[s.name] = b.NewMat(1, s.cols)
				}
				// Three times: the first passes grow the activation
				// scratch buffers (the second may grow the one the down
				// product's input then goes to), which sends the queue.
				for pass := range 3 {
					b.Write(m["a"], a)
					b.Write(m["x"], x)
					b.MatMul(m["y"], m["a"], w["o"])
					b.Add(m["x"], m["x"], m["y"])
					b.RMSNorm(m["xn"], m["x"], w["norm1"], 1e-5)
					b.MatMul(m["q"], m["xn"], w["q"])
					b.MatMul(m["k"], m["xn"], w["k"])
					b.MatMul(m["v"], m["xn"], w["v"])
					b.RMSNorm(m["xn2"], m["x"], w["norm2"], 1e-6)
					b.MatMul(m["gate"], m["xn2"], w["gate"])
					b.MatMul(m["up"], m["xn2"], w["up"])
					b.SwiGLU(m["gate"], m["gate"], m["up"])
					b.MatMul(m["down"], m["gate"], w["down"])
					// The rounding of a, the o product with the add, q/k/v
					// with the norm, gate/up/SwiGLU with the norm, down.
					if fused && pass == 2 {
						if got, folded := cuda.PendingLaunches(b), cuda.PendingFolded(b); got != 5 || folded != 2 {
							t.Errorf("%d launches queued, %d of them folded, want 5 and 2", got, folded)
						}
					}
					b.Add(m["x"], m["down"], m["x"])
					b.RMSNorm(m["xn"], m["x"], w["norm3"], 1e-5)
					b.MatMul(m["logits"], m["xn"], w["out"])
				}
				var out []result
				for _, name := range []string{"y", "x", "xn", "xn2", "q", "k", "v", "gate", "up", "down", "logits"} {
					mat := m[name]
					v := make([]float32, mat.Rows()*mat.Cols())
					b.Read(mat, v)
					out = append(out, result{name, v})
				}
				return out
			}
			got, want := run(gpu, true), run(eager, false)
			for i := range got {
				if !slices.Equal(got[i].v, want[i].v) {
					t.Errorf("%s differs from the eager backend's (relative error %.3g; %v… against %v…)",
						got[i].name, testenv.RelErr(got[i].v, want[i].v), head(got[i].v), head(want[i].v))
				}
			}
		})
	}
}
