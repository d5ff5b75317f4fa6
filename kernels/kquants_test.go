package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// matMulWant is what MatMulRows must give for token tok of nTok: the
// set's Dot, except for the weight types with a batch kernel, whose
// tokens in the groups of four (the first nTok - nTok%4, when nTok >= 4)
// take the batch kernel's order, as llama.cpp's gemm does, and for the
// float types with several tokens, which take tinyBLAS's order.
func matMulWant(s *Set, wt tensor.Type, w, xq []byte, n, tok, nTok int) float32 {
	w, xq = w[:RowBytes(wt, n)], xq[:RowBytes(VecDotType(wt), n)]
	if b := s.batch[wt]; b != nil && nTok >= 4 && tok < nTok&^3 {
		return b(w, xq, n)
	}
	dot, _ := s.productDot(wt, n, nTok)
	return dot(w, xq, n)
}

// batchWant returns want (Dot's results, wantStride per token) with the
// tokens that MatMulRows gives the batch kernel's order for nTok tokens
// recomputed with that kernel; for types without one it is want itself.
func batchWant(s *Set, wt tensor.Type, want []float32, wantStride int, w []byte, wRowBytes int, xq []byte, xRowBytes, nTok, n int) []float32 {
	if s.batch[wt] == nil || nTok < 4 {
		return want
	}
	out := append([]float32(nil), want...)
	for tok := 0; tok < nTok&^3; tok++ {
		for r := 0; r < wantStride; r++ {
			out[tok*wantStride+r] = matMulWant(s, wt, w[r*wRowBytes:], xq[tok*xRowBytes:], n, tok, nTok)
		}
	}
	return out
}

// TestBatchKernels checks what the sets promise about the batch kernels:
// a type with one has no four-row kernel (which would give Dot's bits),
// its tile kernel takes four tokens, every set's batch kernel gives the
// portable one's bits, and the batch order is a different one (a test
// that compared Dot with itself would pass either way).
func TestBatchKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(81, 82))
	for _, s := range Available() {
		for _, wt := range weightTypes {
			b := s.batch[wt]
			if b == nil {
				if Portable().batch[wt] != nil {
					t.Errorf("%s %s: no batch kernel, portable has one", s.Name(), wt)
				}
				continue
			}
			if s.dot4[wt] != nil {
				t.Errorf("%s %s: a four-row kernel next to a batch kernel", s.Name(), wt)
			}
			if tk := s.tile[wt]; tk.f != nil && tk.toks != 4 {
				t.Errorf("%s %s: tile of %d tokens, the batch order needs 4", s.Name(), wt, tk.toks)
			}
			differ := 0
			for trial := 0; trial < 50; trial++ {
				n := qkK * (1 + rng.IntN(8))
				w := randomWeightRow(rng, wt, n, 0.05)
				xq := bytesOf(t, VecDotType(wt), activationRows(rng, n)["normal"])
				got, want := b(w, xq, n), Portable().batch[wt](w, xq, n)
				if math.Float32bits(got) != math.Float32bits(want) {
					t.Errorf("%s %s n=%d: batch kernel %g, portable %g", s.Name(), wt, n, got, want)
				}
				if math.Float32bits(got) != math.Float32bits(s.Dot(wt, w, xq, n)) {
					differ++
				}
			}
			if differ == 0 {
				t.Errorf("%s %s: the batch kernel gave Dot's bits on all 50 rows", s.Name(), wt)
			}
		}
	}
}

// TestKQuantSetsMatchPortableBits requires every set's k-quant kernels
// to give the portable kernels' bits (which TestKQuantsMatchGGMLZen4 and
// TestQ4_KMatchGGMLRepack tie to llama.cpp's): random bits, extreme
// weights, every kind of activation and raw quants at the ends of their
// range, for every block count up to 9 and a long row.
func TestKQuantSetsMatchPortableBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(83, 84))
	for _, s := range fastSets(t) {
		for _, wt := range []tensor.Type{tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K} {
			kernels := map[string][2]RowDot{"Dot": {s.dot[wt], Portable().dot[wt]}}
			if s.batch[wt] != nil {
				kernels["batch"] = [2]RowDot{s.batch[wt], Portable().batch[wt]}
			}
			var cases int
			for _, n := range simdLengths(wt) {
				weights := [][]byte{randomWeightRow(rng, wt, n, 0.02), randomWeightRow(rng, wt, n, 1), extremeWeightRow(rng, wt, n)}
				var acts [][]byte
				for _, x := range activationRows(rng, n) {
					acts = append(acts, bytesOf(t, tensor.Q8_K, x))
				}
				for _, q := range []int8{127, -127, 0} {
					acts = append(acts, rawActivationRow(rng, tensor.Q8_K, n, func() int8 { return q }))
				}
				acts = append(acts, rawActivationRow(rng, tensor.Q8_K, n, func() int8 { return int8(254*rng.IntN(2) - 127) }))
				for _, w := range weights {
					for _, xq := range acts {
						for name, k := range kernels {
							got, want := k[0](w, xq, n), k[1](w, xq, n)
							cases++
							if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
								t.Fatalf("%s %s %s n=%d: %g (%#08x), portable %g (%#08x)", s.Name(), wt, name, n,
									got, math.Float32bits(got), want, math.Float32bits(want))
							}
						}
					}
				}
			}
			t.Logf("%-10s %s: %d products, all the portable bits", s.Name(), wt, cases)
		}
	}
}

// TestMatMulRowsTokenCount states what holds between decoding and
// prefilling the same token: for Q4_K and Q2_K, which llama.cpp multiplies
// with its repacked gemv or gemm depending on the batch, a token's
// product has Dot's bits when it is computed alone or among the last
// nTok%4 tokens of a batch, and the batch kernel's bits when it is among
// the first nTok - nTok%4 (and the two differ on some rows); the float
// types take tinyBLAS's order in any batch of two tokens or more
// (TestFloatOrderByTokens says more); every other type has Dot's bits
// whatever the batch.
func TestMatMulRowsTokenCount(t *testing.T) {
	rng := rand.New(rand.NewPCG(85, 86))
	const rows, n = 16, 2 * qkK
	for _, s := range Available() {
		for _, wt := range weightTypes {
			vt := VecDotType(wt)
			rowBytes := RowBytes(wt, n)
			w := make([]byte, 0, rows*rowBytes)
			for r := 0; r < rows; r++ {
				w = append(w, randomWeightRow(rng, wt, n, 0.1)...)
			}
			stride := RowBytes(vt, n)
			const nTok = 6
			xq := make([]byte, nTok*stride)
			for tok := 0; tok < nTok; tok++ {
				QuantizeRow(vt, activationRows(rng, n)["normal"], xq[tok*stride:])
			}
			batch := make([]float32, nTok*rows)
			s.MatMulRows(wt, w, rowBytes, 0, rows, xq, stride, nTok, n, batch, rows)
			differ := 0
			for tok := 0; tok < nTok; tok++ {
				alone := make([]float32, rows)
				s.MatMulRows(wt, w, rowBytes, 0, rows, xq[tok*stride:], stride, 1, n, alone, rows)
				for r := 0; r < rows; r++ {
					dot := s.Dot(wt, w[r*rowBytes:(r+1)*rowBytes], xq[tok*stride:(tok+1)*stride], n)
					if math.Float32bits(alone[r]) != math.Float32bits(dot) {
						t.Fatalf("%s %s token %d row %d alone: %g, Dot %g", s.Name(), wt, tok, r, alone[r], dot)
					}
					got := batch[tok*rows+r]
					want := matMulWant(s, wt, w[r*rowBytes:(r+1)*rowBytes], xq[tok*stride:(tok+1)*stride], n, tok, nTok)
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%s %s token %d of %d row %d: %g, want %g", s.Name(), wt, tok, nTok, r, got, want)
					}
					if got != alone[r] {
						differ++
					}
				}
			}
			// Types with a batch kernel, and the float types (tinyBLAS's
			// order for several tokens), must differ somewhere.
			if hasBatch := s.batch[wt] != nil || s.tile[wt].order != nil; hasBatch != (differ > 0) {
				t.Errorf("%s %s: %d of %d products differ between the batch and the token alone (batch order: %v)",
					s.Name(), wt, differ, nTok*rows, hasBatch)
			}
		}
	}
}
