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
