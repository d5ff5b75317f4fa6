package kernels

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exactFMA32 is a*b+c computed exactly with math/big and rounded once to
// float32 (nearest, ties to even).
func exactFMA32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(0).SetFloat64(float64(a))
	y := new(big.Float).SetPrec(0).SetFloat64(float64(b))
	z := new(big.Float).SetPrec(0).SetFloat64(float64(c))
	p := new(big.Float).SetPrec(2000).Mul(x, y)
	p.Add(p, z)
	f, _ := p.Float32()
	return f
}

func TestFMA32(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(a, b, c float32) {
		t.Helper()
		got, want := fma32(a, b, c), exactFMA32(a, b, c)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), want %g (%#x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	for i := 0; i < 200000; i++ {
		a := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(20)-10)))
		b := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(20)-10)))
		c := float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(40)-20)))
		check(a, b, c)
	}
	// Cases built so that the float64 sum is a float32 midpoint: a*b is
	// half a float32 step of c times (1+u)(1-u) = 1-u², u = 2^-23, which
	// the float64 sum rounds to exactly half a step, while the exact value
	// lies just inside it.
	nTies := 0
	u := float32(math.Pow(2, -23))
	for i := 0; i < 20000; i++ {
		c := float32(1+rng.Float64()) * float32(math.Pow(2, float64(rng.IntN(20)-10)))
		half := (math.Nextafter32(c, float32(math.Inf(1))) - c) / 2
		a, b := half*(1+u), 1-u
		if rng.IntN(2) == 0 {
			a = -a
		}
		if float32(float64(a)*float64(b)+float64(c)) != exactFMA32(a, b, c) {
			nTies++ // rounding the float64 result would be wrong here
		}
		check(a, b, c)
		check(a, b, -c)
	}
	if nTies == 0 {
		t.Fatal("no case needed the tie correction; the test does not test it")
	}
	special := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, math.SmallestNonzeroFloat32}
	for _, a := range special {
		for _, b := range special {
			for _, c := range special {
				got, want := fma32(a, b, c), float32(math.FMA(float64(a), float64(b), float64(c)))
				if math.IsNaN(float64(want)) {
					if !math.IsNaN(float64(got)) {
						t.Fatalf("fma32(%g, %g, %g) = %g, want NaN", a, b, c, got)
					}
					continue
				}
				if math.IsInf(float64(want), 0) || want == 0 {
					if got != want || math.Signbit(float64(got)) != math.Signbit(float64(want)) {
						t.Fatalf("fma32(%g, %g, %g) = %g, want %g", a, b, c, got, want)
					}
					continue
				}
				check(a, b, c)
			}
		}
	}
}
