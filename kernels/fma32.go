package kernels

import "math"

// fma32 returns a*b+c rounded once to float32, as the VFMADD instructions
// of ggml's SIMD code compute it. Go has no float32 fused multiply-add:
// math.FMA rounds to float64, and rounding that again to float32 can
// differ from one rounding when the float64 result lands exactly halfway
// between two float32 values. The product of two float32 values is exact in
// float64, so the only rounding before the last one is that of the sum;
// its error, recovered exactly with Knuth's two-sum, decides such ties.
func fma32(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact: 24+24 significant bits
	s := p + float64(c)
	r := float32(s)
	if float64(r) == s {
		return r // s is a float32 value: no second rounding happened
	}
	// Two-sum: e is exactly (p + c) - s.
	bv := s - p
	e := (p - (s - bv)) + (float64(c) - bv)
	if e == 0 || e != e {
		return r // s is exact (or not finite): one rounding only
	}
	// r is the float32 nearest to s; the other float32 around s is one
	// step from r towards s. s is a tie only if it is their exact midpoint
	// (both are float32, so the sum and the halving are exact in float64).
	var other float32
	if float64(r) < s {
		other = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		other = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if (float64(r)+float64(other))/2 != s {
		return r
	}
	// The exact value lies on e's side of the midpoint.
	if (e > 0) == (other > r) {
		return other
	}
	return r
}
