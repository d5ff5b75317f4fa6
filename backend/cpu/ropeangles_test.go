package cpu

import (
	"fmt"
	"math"
	"testing"

	"llamago/backend"
)

// TestRoPEAnglesAreWhatRoPERotatesBy rotates unit pairs (1, 0), which RoPE
// turns into exactly (cos, sin) of their angle (x0·cos − 0·sin and
// x0·sin + 0·cos, each rounded once), and checks that RoPEAngles gives
// those bits for every pair and position.
func TestRoPEAnglesAreWhatRoPERotatesBy(t *testing.T) {
	b := New(Options{Threads: 1})
	defer b.Close()
	pos := []int32{0, 1, 7, 511, 4095, 100000}
	for _, p := range []backend.RoPEParams{
		{Heads: 1, HeadDim: 64, Dims: 64, FreqBase: 10000, FreqScale: 1},
		{Heads: 1, HeadDim: 32, Dims: 16, FreqBase: 500000, FreqScale: 0.25},
	} {
		t.Run(fmt.Sprintf("%+v", p), func(t *testing.T) {
			x := b.NewMat(len(pos), p.HeadDim)
			unit := make([]float32, len(pos)*p.HeadDim)
			for r := range pos {
				for i := 0; i < p.Dims; i += 2 {
					unit[r*p.HeadDim+i] = 1
				}
			}
			b.Write(x, unit)
			b.RoPE(x, pos, p)
			got := make([]float32, len(unit))
			b.Read(x, got)
			want := make([]float32, len(pos)*p.Dims)
			RoPEAngles(want, pos, p)
			for r := range pos {
				for i := 0; i < p.Dims; i++ {
					g, w := got[r*p.HeadDim+i], want[r*p.Dims+i]
					if math.Float32bits(g) != math.Float32bits(w) {
						t.Fatalf("position %d value %d: RoPE rotated (1, 0) to %g, RoPEAngles says %g", pos[r], i, g, w)
					}
				}
			}
		})
	}
}
