package kernels

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// BenchmarkQ8_0Tiles times the Q8_0 VNNI tiles of different shapes in one
// process on the same 2040×2048 weights and 128 tokens (2040 rows: whole
// tiles of 4 and of 8 rows), one thread, rows outer and tokens inner as
// MatMulRows runs them, so that A/B numbers come from the same machine
// state.
func BenchmarkQ8_0Tiles(b *testing.B) {
	vnni := false
	for _, s := range Available() {
		vnni = vnni || s.Name() == "avx512vnni"
	}
	if !vnni {
		b.Skip("no avx512vnni set on this CPU")
	}
	const rows, n, nTok = 2040, 2048, 128
	rng := rand.New(rand.NewPCG(45, 46))
	rowBytes := RowBytes(tensor.Q8_0, n)
	w := make([]byte, 0, rows*rowBytes)
	for r := 0; r < rows; r++ {
		w = append(w, randomWeightRow(rng, tensor.Q8_0, n, 0.05)...)
	}
	xq := make([]byte, nTok*rowBytes)
	for t := 0; t < nTok; t++ {
		QuantizeRow(tensor.Q8_0, activationRows(rng, n)["normal"], xq[t*rowBytes:(t+1)*rowBytes])
	}
	dst := make([]float32, nTok*rows)
	for _, k := range []struct {
		name string
		tileKernel
	}{{"4x4", q8_0Tile4x4}, {"8x4", q8_0Tile8x4}} {
		b.Run(k.name, func(b *testing.B) {
			b.SetBytes(int64(len(w)))
			for b.Loop() {
				for r := 0; r < rows; r += k.rows {
					for t := 0; t < nTok; t += k.toks {
						k.f(w[r*rowBytes:], rowBytes, xq[t*rowBytes:], rowBytes, n, dst[t*rows+r:], rows)
					}
				}
			}
		})
	}
}

// TestQ8_0TilesMatchDot checks that both Q8_0 VNNI tiles, the registered
// 8×4 one and the 4×4 one BenchmarkQ8_0Tiles compares it with, give each
// (row, token) the bits of the one-row VNNI kernel (which
// TestLegacyMatchGGMLX86 checks against ggml).
func TestQ8_0TilesMatchDot(t *testing.T) {
	var vnni *Set
	for _, s := range Available() {
		if s.Name() == "avx512vnni" {
			vnni = s
		}
	}
	if vnni == nil {
		t.Skip("no avx512vnni set on this CPU")
	}
	rng := rand.New(rand.NewPCG(47, 48))
	const rows, nTok = 8, 4
	for _, n := range []int{32, 64, 96, 320, 2048} {
		rowBytes := RowBytes(tensor.Q8_0, n)
		w := make([]byte, 0, rows*rowBytes)
		for r := 0; r < rows; r++ {
			w = append(w, randomWeightRow(rng, tensor.Q8_0, n, 0.05)...)
		}
		xq := make([]byte, nTok*rowBytes)
		for tok := 0; tok < nTok; tok++ {
			QuantizeRow(tensor.Q8_0, activationRows(rng, n)["normal"], xq[tok*rowBytes:(tok+1)*rowBytes])
		}
		for _, k := range []struct {
			name string
			tileKernel
		}{{"4x4", q8_0Tile4x4}, {"8x4", q8_0Tile8x4}} {
			dst := make([]float32, nTok*rows)
			for tok := 0; tok < nTok; tok += k.toks {
				for r := 0; r < rows; r += k.rows {
					k.f(w[r*rowBytes:], rowBytes, xq[tok*rowBytes:], rowBytes, n, dst[tok*rows+r:], rows)
				}
			}
			for tok := 0; tok < nTok; tok++ {
				for r := 0; r < rows; r++ {
					want := vnni.dot[tensor.Q8_0](w[r*rowBytes:(r+1)*rowBytes], xq[tok*rowBytes:(tok+1)*rowBytes], n)
					if got := dst[tok*rows+r]; math.Float32bits(got) != math.Float32bits(want) {
						t.Errorf("%s n=%d row %d token %d: got %v (%#08x), one-row kernel %v (%#08x)",
							k.name, n, r, tok, got, math.Float32bits(got), want, math.Float32bits(want))
					}
				}
			}
		}
	}
}

// q8_0Tile4x4 is the 4×4 Q8_0 tile the avx512vnni set used before the 8×4
// one, kept as the benchmark's baseline; q8_0Tile8x4 is the one it uses.
var (
	q8_0Tile4x4 = quantTile(tile4x4Q8_0VNNI, blockTileShape{4, 4, qk, q8_0Bytes, q8_0Bytes})
	q8_0Tile8x4 = quantTile(tile8x4Q8_0VNNI, blockTileShape{8, 4, qk, q8_0Bytes, q8_0Bytes})
)
