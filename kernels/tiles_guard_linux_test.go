package kernels

import (
	"math/rand/v2"
	"testing"
)

// TestTilesStayInsideRows runs MatMulRows with enough rows and tokens to
// use every tile kernel (and with one token, every span kernel) on
// weights and activations placed flush against unreadable pages, at both
// ends: the last row's last group (masked loads in the float tiles) must
// not read past it. (Software prefetches may point past it: they do not
// fault.)
func TestTilesStayInsideRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	wMem, xMem := newGuarded(t, 1<<16), newGuarded(t, 1<<16)
	const rows = 8
	// Eight tokens take the tiles, one the one-token (span) kernels.
	for _, nTok := range []int{8, 1} {
		for _, s := range fastSets(t) {
			for _, wt := range weightTypes {
				lengths := []int{wt.BlockSize(), 3 * wt.BlockSize()}
				if wt.BlockSize() == 1 {
					lengths = []int{7, 33, 172}
				}
				for _, n := range lengths {
					w, rb, xq, xb := randomProduct(rng, s, wt, n, rows, nTok)
					want := make([]float32, rows*nTok)
					s.MatMulRows(wt, w, rb, 0, rows, xq, xb, nTok, n, want, rows)
					for _, place := range []func(g *guarded, b []byte) []byte{(*guarded).atEnd, (*guarded).atStart} {
						got := make([]float32, rows*nTok)
						s.MatMulRows(wt, place(wMem, w), rb, 0, rows, place(xMem, xq), xb, nTok, n, got, rows)
						for i := range got {
							if got[i] != want[i] {
								t.Fatalf("%s %s n=%d: product %d is %g in guarded memory, %g elsewhere", s.Name(), wt, n, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}
