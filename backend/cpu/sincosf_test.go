package cpu

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/ebitengine/purego"
)

// glibcMath is the C library's float functions, loaded through purego:
// the reference that sinf, cosf and RoPE's powf must equal.
type glibcMath struct {
	sinf, cosf func(float32) float32
	powf       func(float32, float32) float32
}

func openGlibcMath(t *testing.T) *glibcMath {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("glibc's libm is the reference only on Linux")
	}
	h, err := purego.Dlopen("libm.so.6", purego.RTLD_NOW)
	if err != nil {
		t.Skipf("no glibc libm to compare with: %v", err)
	}
	var m glibcMath
	purego.RegisterLibFunc(&m.sinf, h, "sinf")
	purego.RegisterLibFunc(&m.cosf, h, "cosf")
	purego.RegisterLibFunc(&m.powf, h, "powf")
	return &m
}

// TestSinCosfMatchGlibc compares sinf and cosf with glibc's on every angle
// RoPE meets for positions up to 8192 and the usual bases and head sizes,
// on random angles of every magnitude, and on edge cases.
func TestSinCosfMatchGlibc(t *testing.T) {
	m := openGlibcMath(t)
	var angles []float32
	for _, base := range []float32{10000, 500000, 1e6} {
		for _, dims := range []int{32, 64, 128} {
			ts := float32(math.Pow(float64(base), -2.0/float64(dims)))
			for p := 0; p < 8192; p += 1 + p/512 {
				theta := float32(p)
				for i := 0; i < dims/2; i++ {
					angles = append(angles, theta)
					theta *= ts
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200000 {
		angles = append(angles, math.Float32frombits(r.Uint32()))
	}
	for range 100000 {
		angles = append(angles, float32((r.Float64()-0.5)*300))
	}
	angles = append(angles, 0, float32(math.Copysign(0, -1)), 0x1p-130, 0x1p-12, math.Pi/4, 120, -120, math.MaxFloat32,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()))
	bad := 0
	for _, a := range angles {
		for _, f := range []struct {
			name      string
			ours, ref func(float32) float32
		}{{"sinf", sinf, m.sinf}, {"cosf", cosf, m.cosf}} {
			got, want := f.ours(a), f.ref(a)
			if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
				if bad++; bad <= 10 {
					t.Errorf("%s(%g = %#x) = %g, glibc %g", f.name, a, math.Float32bits(a), got, want)
				}
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d values differ", bad, 2*len(angles))
	}
}

// TestRoPEThetaScaleMatchesPowf checks that RoPE's base^(-2/dims), computed
// with Go's math.Pow, is glibc's powf for the bases and sizes of common
// models.
func TestRoPEThetaScaleMatchesPowf(t *testing.T) {
	m := openGlibcMath(t)
	for _, base := range []float32{10000, 500000, 1e6, 100000, 1000000000} {
		for _, dims := range []int{16, 32, 64, 80, 96, 128, 256} {
			if got, want := ropeThetaScale(base, dims), m.powf(base, -2.0/float32(dims)); got != want {
				t.Errorf("base %g dims %d: %g, powf %g", base, dims, got, want)
			}
		}
	}
}
