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

// TestVexpfAccuracy checks ggml's vector exponential against e^x: within
// a few ulp (ggml documents 1.45 ulp plus rounding; up to 2.4 seen) over the range
// where the result is a normal float32, 0 below -104 and +Inf above 89 as
// ggml's blend gives, and NaN for NaN.
func TestVexpfAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 200000; i++ {
		x := float32(r.Float64()*174 - 87)
		got, want := vexpf(x), math.Exp(float64(x))
		ulp := float64(math.Nextafter32(float32(want), float32(math.Inf(1))) - float32(want))
		if math.Abs(float64(got)-want) > 3*ulp {
			t.Fatalf("vexpf(%g) = %g, want %g", x, got, want)
		}
	}
	for _, tc := range []struct{ x, want float32 }{
		{0, 1}, {-200, 0}, {-1000, 0}, {float32(math.Inf(-1)), 0}, {200, float32(math.Inf(1))}, {float32(math.Inf(1)), float32(math.Inf(1))},
	} {
		if got := vexpf(tc.x); got != tc.want {
			t.Errorf("vexpf(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	if got := vexpf(float32(math.NaN())); got == got {
		t.Errorf("vexpf(NaN) = %g", got)
	}
	// Subnormal results: one rounding of j·2^n, as VSCALEFPS.
	if got := vexpf(-100); got <= 0 || got > 1e-43 {
		t.Errorf("vexpf(-100) = %g", got)
	}
}

// TestFma32 checks the single rounding on ties that a float64 FMA would
// round twice, against math.FMA where no tie occurs.
func TestFma32(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := 0; i < 100000; i++ {
		a, b, c := float32(r.NormFloat64()), float32(r.NormFloat64()), float32(r.NormFloat64())
		exact := math.FMA(float64(a), float64(b), float64(c))
		got := fma32(a, b, c)
		lo, hi := math.Nextafter32(got, float32(math.Inf(-1))), math.Nextafter32(got, float32(math.Inf(1)))
		if math.Abs(float64(got)-exact) > math.Abs(float64(lo)-exact) || math.Abs(float64(got)-exact) > math.Abs(float64(hi)-exact) {
			t.Fatalf("fma32(%g, %g, %g) = %g, not nearest to %g", a, b, c, got, exact)
		}
	}
	// 1 + 2^-24 + 2^-48... : (1+2^-23)·(1+2^-23)... a case where float64
	// rounding lands on a float32 tie: a·b = 1 + 2^-24 + 2^-47·(...).
	a := float32(1 + 0x1p-23)
	b := float32(1 - 0x1p-24)
	// a·b = 1 + 2^-23 - 2^-24 - 2^-47 = 1 + 2^-24 - 2^-47: just below the
	// midpoint 1 + 2^-24 between 1 and 1 + 2^-23, so it rounds to 1.
	if got := fma32(a, b, 0); got != 1 {
		t.Errorf("fma32 tie: %g, want 1", got)
	}
}
