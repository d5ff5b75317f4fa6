package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

func TestExpfWithinAnUlp(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	check := func(x float32) {
		got := expf(x)
		want := float32(math.Exp(float64(x)))
		if got == want {
			return
		}
		ulp := math.Nextafter32(want, float32(math.Inf(1))) - want
		if math.Abs(float64(got-want)) > float64(ulp) {
			t.Fatalf("expf(%g) = %g, want %g", x, got, want)
		}
	}
	for _, x := range []float32{0, -0, 1, -1, 88.7, -87, -103.9, -104, 1e-8, -1e-8, 20, -20} {
		check(x)
	}
	for i := 0; i < 200000; i++ {
		check(float32(r.Float64()*190 - 102))
	}
	if expf(-200) != 0 || !math.IsInf(float64(expf(100)), 1) || !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Fatal("expf limits")
	}
}

func TestRoundF16MatchesConversion(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := []float32{0, 1, -1, 65504, 65519, 65520, 1e-5, 6.1e-5, 6.2e-5, -3.3e-8, 1e9, float32(math.Inf(-1))}
	for i := 0; i < 100000; i++ {
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	got := append([]float32(nil), xs...)
	roundF16(got)
	for i, x := range xs {
		want := tensor.FP16ToFloat32(tensor.Float32ToFP16(x))
		if math.Float32bits(got[i]) != math.Float32bits(want) && !(want != want && got[i] != got[i]) {
			t.Fatalf("roundF16(%g) = %g, want %g", x, got[i], want)
		}
	}
}
