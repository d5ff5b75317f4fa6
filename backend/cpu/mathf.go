package cpu

import (
	"math"

	"llamago/tensor"
)

const (
	log2e = 1.4426950408889634
	ln2   = 0.6931471805599453
)

// expf is e^x for float32 arguments, within an ulp of the correctly rounded
// value: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to r⁷ in
// float64 (truncation error under 1e-8), then scaled by 2^n through the
// exponent bits. It is several times faster than math.Exp, which the
// softmax and SiLU call once per element.
func expf(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 88.8:
		return float32(math.Inf(1))
	case x < -104:
		return 0
	}
	xd := float64(x)
	n := math.Floor(xd*log2e + 0.5)
	r := xd - n*ln2
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720+r*(1.0/5040)))))))
	return float32(math.Float64frombits(math.Float64bits(p) + uint64(int64(n))<<52))
}

// roundF16 rounds every value to the nearest F16 (ties to even), as storing
// it in an F16 tensor and reading it back would.
func roundF16(x []float32) {
	for i, v := range x {
		b := math.Float32bits(v)
		abs := b &^ (1 << 31)
		if abs >= 0x38800000 && abs < 0x477ff000 {
			// A normal half: drop 13 mantissa bits, rounding to even; a
			// carry correctly bumps the exponent.
			b += 0xfff + (b>>13)&1
			x[i] = math.Float32frombits(b &^ 0x1fff)
			continue
		}
		if abs < 0x38800000 {
			// A subnormal half, a multiple of 2^-24: adding 0.75, whose
			// float32 ulp is 2^-24 and whose neighbours keep that ulp,
			// rounds to that grid with ties to even; zero keeps its sign.
			y := (v + 0.75) - 0.75
			if y == 0 {
				y = math.Float32frombits(b & (1 << 31))
			}
			x[i] = y
			continue
		}
		x[i] = tensor.FP16ToFloat32(tensor.Float32ToFP16(v))
	}
}

// fma32 returns a*b+c rounded once to float32, as the VFMADD instructions
// of ggml's SIMD code compute it (Go has no float32 fused multiply-add, and
// rounding math.FMA's float64 result again can differ from one rounding).
// The product of two float32 values is exact in float64, so only the sum
// rounds before the last rounding; its error, recovered exactly with
// Knuth's two-sum, settles the cases where the float64 sum is a tie
// between two float32 values. (kernels has the same function for the
// weight products; attention's copy lives here so the packages stay apart.)
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	s := p + float64(c)
	r := float32(s)
	if float64(r) == s {
		return r
	}
	bv := s - p
	e := (p - (s - bv)) + (float64(c) - bv)
	if e == 0 || e != e {
		return r
	}
	var other float32
	if float64(r) < s {
		other = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		other = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if (float64(r)+float64(other))/2 != s {
		return r
	}
	if (e > 0) == (other > r) {
		return other
	}
	return r
}

// The constants of ggml's vector exponential (ggml_v_expf, vec.h), an
// adaptation of Arm's optimized-routines expf: a shift that rounds x·log2e
// to an integer n, ln2 split in two for the reduction, and a degree-5
// polynomial for e^b on the reduced argument.
const (
	vexpShift = 0x1.8p23
	vexpLog2e = 0x1.715476p+0
	vexpLn2Hi = 0x1.62e4p-1
	vexpLn2Lo = 0x1.7f7d1cp-20
	vexpC5    = 0x1.0e4020p-7
	vexpC4    = 0x1.573e2ep-5
	vexpC3    = 0x1.555e66p-3
	vexpC2    = 0x1.fffdb6p-2
	vexpC1    = 0x1.ffffecp-1
)

// vexpf is one lane of ggml_v_expf as llama.cpp's AVX-512 build computes
// it (the build this CPU runs): every fused multiply-add rounded once, the
// scaling by 2^n done as VSCALEFPS does (one rounding, also for results in
// the subnormal range), and |n| > 192 sent to 0 or +Inf. It is not e^x
// correctly rounded (up to ~2 ulp off); it is what ggml's softmax and SiLU
// use for every whole group of 16 values.
func vexpf(x float32) float32 {
	z := fma32(x, vexpLog2e, vexpShift)
	n := z - vexpShift
	b := fma32(-n, vexpLn2Lo, fma32(-n, vexpLn2Hi, x))
	if !(math.Abs(float64(n)) <= 192) && n == n {
		// ggml blends these lanes: |n| > 192 (ordered compare).
		if n <= 0 {
			return 0
		}
		return float32(math.Inf(1))
	}
	u := b * b
	j := fma32(fma32(fma32(vexpC5, b, vexpC4), u, fma32(vexpC3, b, vexpC2)), u, fma32(vexpC1, b, 1))
	return scalef(j, n)
}

// scalef is VSCALEFPS for an integral n: j·2^n rounded once to float32.
func scalef(j, n float32) float32 {
	if j != j || n != n {
		return float32(math.NaN())
	}
	// j has 24 significant bits and |n| ≤ 192 here, so the float64
	// product is exact and the conversion is the only rounding.
	return float32(math.Ldexp(float64(j), int(n)))
}

// vsilu is one lane of ggml_v_silu: x/(1+e⁻ˣ) with ggml's vector
// exponential.
func vsilu(x float32) float32 {
	return x / (1 + vexpf(0-x))
}

// reduce16 adds 16 lanes in the order of GCC's _mm512_reduce_add_ps (halves
// of 8, then of 4, then pairs two apart, then the last two), which ggml's
// AVX-512 code uses for every horizontal sum.
func reduce16(v *[16]float32) float32 {
	var t [8]float32
	for i := range t {
		t[i] = v[i] + v[i+8]
	}
	var t2 [4]float32
	for i := range t2 {
		t2[i] = t[i] + t[i+4]
	}
	return (t2[0] + t2[2]) + (t2[1] + t2[3])
}

// ropeThetaScale is base^(-2/dims), the ratio of RoPE's successive angles,
// as ggml computes it: powf(base, -2.0f/dims), the exponent rounded to
// float32 first. math.Pow's result rounded to float32 equals glibc's powf
// for the bases and sizes of common models (tested).
func ropeThetaScale(base float32, dims int) float32 {
	return float32(math.Pow(float64(base), float64(float32(-2.0)/float32(dims))))
}
