package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/backend"
	"llamago/tensor"
)

// TestMatMulSharedMatchesMatMul checks that MatMulShared gives every
// output the bits of its own MatMul, for one token and for a batch, with
// weights of one activation type (one operation) and of several (the
// fallback), on one thread and on three.
func TestMatMulSharedMatchesMatMul(t *testing.T) {
	const cols = 256
	rng := rand.New(rand.NewPCG(5, 6))
	cases := []struct {
		name  string
		types []tensor.Type
		rows  []int
	}{
		{"q4_0 qkv", []tensor.Type{tensor.Q4_0, tensor.Q4_0, tensor.Q4_0}, []int{64, 16, 16}},
		{"q4_0 odd rows", []tensor.Type{tensor.Q4_0, tensor.Q4_0}, []int{37, 11}},
		{"q8_0 pair", []tensor.Type{tensor.Q8_0, tensor.Q8_0}, []int{40, 40}},
		{"k-quants", []tensor.Type{tensor.Q4_K, tensor.Q6_K}, []int{24, 8}},
		{"mixed activation types", []tensor.Type{tensor.Q4_0, tensor.F16, tensor.Q4_K}, []int{16, 8, 8}},
	}
	for _, threads := range []int{1, 3} {
		b := New(Options{Threads: threads})
		defer b.Close()
		for _, c := range cases {
			ws := make([]backend.Weight, len(c.types))
			for i, typ := range c.types {
				ws[i] = randomWeight(t, b, rng, typ, c.rows[i], cols)
			}
			for _, tokens := range []int{1, 5, 9} {
				x := b.NewMat(tokens, cols)
				xs := make([]float32, tokens*cols)
				for i := range xs {
					xs[i] = float32(rng.NormFloat64())
				}
				b.Write(x, xs)
				dsts := make([]backend.Mat, len(ws))
				for i, w := range ws {
					dsts[i] = b.NewMat(tokens, w.Rows())
				}
				b.MatMulShared(dsts, x, ws)
				for i, w := range ws {
					want := b.NewMat(tokens, w.Rows())
					b.MatMul(want, x, w)
					got, exp := make([]float32, tokens*w.Rows()), make([]float32, tokens*w.Rows())
					b.Read(dsts[i], got)
					b.Read(want, exp)
					for j := range got {
						if math.Float32bits(got[j]) != math.Float32bits(exp[j]) {
							t.Fatalf("%s, %d threads, %d tokens, weight %d value %d: %v, MatMul gives %v", c.name, threads, tokens, i, j, got[j], exp[j])
						}
					}
				}
			}
		}
	}
}

func randomWeight(t *testing.T, b *Backend, rng *rand.Rand, typ tensor.Type, rows, cols int) backend.Weight {
	t.Helper()
	vals := make([]float32, rows*cols)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64())
	}
	rowBytes, err := typ.RowSize(int64(cols))
	if err != nil {
		t.Fatalf("%s row size: %v", typ, err)
	}
	data := make([]byte, int(rowBytes)*rows)
	if err := tensor.Quantize(typ, vals, data); err != nil {
		t.Fatalf("quantize %s: %v", typ, err)
	}
	w, err := b.LoadWeight(backend.WeightSpec{Name: typ.String(), Type: typ, Rows: rows, Cols: cols, Data: data})
	if err != nil {
		t.Fatalf("load %s: %v", typ, err)
	}
	return w
}

// BenchmarkDecodeSharedMatMul times one token through the five products
// of a TinyLlama-shaped layer that share their input (q, k, v and the
// FFN's gate and up, Q4_0), over eight copies of the layer (about 130 MB,
// so that weights come from memory as in decode), on two workers: one
// MatMul per weight against MatMulShared's two operations, alternately in
// one process.
func BenchmarkDecodeSharedMatMul(b *testing.B) {
	const embd, kv, ff, layers = 2048, 256, 5632, 8
	rng := rand.New(rand.NewPCG(7, 8))
	be := New(Options{Threads: 2})
	defer be.Close()
	shapes := []int{embd, kv, kv, ff, ff}
	proto := make([][]byte, len(shapes))
	for i, rows := range shapes {
		vals := make([]float32, rows*embd)
		for j := range vals {
			vals[j] = float32(rng.NormFloat64())
		}
		rowBytes, _ := tensor.Q4_0.RowSize(embd)
		proto[i] = make([]byte, int(rowBytes)*rows)
		if err := tensor.Quantize(tensor.Q4_0, vals, proto[i]); err != nil {
			b.Fatal(err)
		}
	}
	ws := make([][]backend.Weight, layers)
	for l := range ws {
		for i, rows := range shapes {
			data := append([]byte(nil), proto[i]...)
			w, err := be.LoadWeight(backend.WeightSpec{Name: "w", Type: tensor.Q4_0, Rows: rows, Cols: embd, Data: data})
			if err != nil {
				b.Fatal(err)
			}
			ws[l] = append(ws[l], w)
		}
	}
	x := be.NewMat(1, embd)
	xs := make([]float32, embd)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	be.Write(x, xs)
	dsts := make([]backend.Mat, len(shapes))
	for i, rows := range shapes {
		dsts[i] = be.NewMat(1, rows)
	}
	b.Run("separate", func(b *testing.B) {
		for b.Loop() {
			for _, lw := range ws {
				for i, w := range lw {
					be.MatMul(dsts[i], x, w)
				}
			}
		}
	})
	b.Run("shared", func(b *testing.B) {
		for b.Loop() {
			for _, lw := range ws {
				be.MatMulShared(dsts[:3], x, lw[:3])
				be.MatMulShared(dsts[3:], x, lw[3:])
			}
		}
	})
}
