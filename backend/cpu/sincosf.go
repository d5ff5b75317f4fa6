package cpu

import "math"

// sinf and cosf reproduce glibc's single-precision sine and cosine (the
// algorithm of Arm's optimized-routines, glibc ≥ 2.28), bit for bit as the
// x86-64 build that llama.cpp's rope calls on a CPU with FMA runs them:
// glibc selects its FMA variant there, the same C code compiled with
// -mfma, in which GCC fuses every a + b·c of the reduction and the
// polynomials into one rounding. Neither is correctly rounded (a few
// percent of RoPE's angles differ from Go's math.Sin/Cos rounded to
// float32), which is why RoPE needs these and not Go's.

// sincosfCoeffs is one row of glibc's __sincosf_table: the cosine
// polynomial c0..c4 and the sine polynomial s1..s3; the second row, used
// in quadrants 2 and 3, has the cosine's signs flipped.
type sincosfCoeffs struct {
	c0, c1, c2, c3, c4, s1, s2, s3 float64
}

var sincosfTable = [2]sincosfCoeffs{
	{1, -0x1.ffffffd0c621cp-2, 0x1.55553e1068f19p-5, -0x1.6c087e89a359dp-10, 0x1.99343027bf8c3p-16,
		-0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13},
	{-1, 0x1.ffffffd0c621cp-2, -0x1.55553e1068f19p-5, 0x1.6c087e89a359dp-10, -0x1.99343027bf8c3p-16,
		-0x1.555545995a603p-3, 0x1.1107605230bc4p-7, -0x1.994eb3774cf24p-13},
}

// sincosfSign is the sign of the sine in quadrants 0..3.
var sincosfSign = [4]float64{1, -1, -1, 1}

const (
	sincosfHalfPiInv = 0x1.45F306DC9C883p+23 // 2/π·2^24: the quadrant lands in bits 24..31
	sincosfHalfPi    = 0x1.921FB54442D18p0
	sincosfPi63      = 0x1.921FB54442D18p-62 // 2π·2^-64
)

// invPio4 are sliding 32-bit windows of the bits of 4/π, for the reduction
// of large arguments.
var invPio4 = [24]uint32{
	0xa2, 0xa2f9, 0xa2f983, 0xa2f9836e,
	0xf9836e4e, 0x836e4e44, 0x6e4e4415, 0x4e441529,
	0x441529fc, 0x1529fc27, 0x29fc2757, 0xfc2757d1,
	0x2757d1f5, 0x57d1f534, 0xd1f534dd, 0xf534ddc0,
	0x34ddc0db, 0xddc0db62, 0xc0db6295, 0xdb629599,
	0x6295993c, 0x95993c43, 0x993c4390, 0x3c439041,
}

// abstop12 is the top 12 bits of a float32 without its sign, as a double's
// would be: a cheap magnitude class.
func abstop12(y float32) uint32 { return (math.Float32bits(y) >> 20) & 0x7ff }

// sinfPoly evaluates the sine polynomial (n even) or the cosine
// polynomial (n odd) at x, with x2 = x², each a + b·c fused.
func sinfPoly(x, x2 float64, p *sincosfCoeffs, n int) float32 {
	if n&1 == 0 {
		x3 := x * x2
		s1 := math.FMA(x2, p.s3, p.s2)
		x7 := x3 * x2
		s := math.FMA(x3, p.s1, x)
		return float32(math.FMA(x7, s1, s))
	}
	x4 := x2 * x2
	c2 := math.FMA(x2, p.c4, p.c3)
	c1 := math.FMA(x2, p.c1, p.c0)
	x6 := x4 * x2
	c := math.FMA(x4, p.c2, c1)
	return float32(math.FMA(x6, c2, c))
}

// reduceFast reduces |x| < 120 to x - n·π/2 with n the nearest quadrant.
func reduceFast(x float64) (float64, int) {
	r := x * sincosfHalfPiInv
	n := (int32(r) + 0x800000) >> 24
	return math.FMA(-float64(n), sincosfHalfPi, x), int(n)
}

// reduceLarge reduces a finite |x| ≥ 120, given as its bits, with the
// bits of 4/π in fixed point: the result is in radians, n the quadrant.
func reduceLarge(xi uint32) (float64, int) {
	arr := invPio4[(xi>>26)&15:]
	shift := (xi >> 23) & 7
	xi = (xi & 0xffffff) | 0x800000
	xi <<= shift
	res0 := uint64(xi * arr[0])
	res1 := uint64(xi) * uint64(arr[4])
	res2 := uint64(xi) * uint64(arr[8])
	res0 = (res2 >> 32) | (res0 << 32)
	res0 += res1
	n := (res0 + 1<<61) >> 62
	res0 -= n << 62
	return float64(int64(res0)) * sincosfPi63, int(n)
}

// sinf is glibc's sinf (see above).
func sinf(y float32) float32 {
	x := float64(y)
	switch t := abstop12(y); {
	case t < abstop12(math.Pi/4):
		if t < abstop12(0x1p-12) {
			return y
		}
		return sinfPoly(x, x*x, &sincosfTable[0], 0)
	case t < abstop12(120):
		x, n := reduceFast(x)
		s := sincosfSign[n&3]
		return sinfPoly(x*s, x*x, &sincosfTable[(n>>1)&1], n)
	case t < abstop12(float32(math.Inf(1))):
		xi := math.Float32bits(y)
		sign := int(xi >> 31)
		x, n := reduceLarge(xi)
		s := sincosfSign[(n+sign)&3]
		return sinfPoly(x*s, x*x, &sincosfTable[((n+sign)>>1)&1], n)
	}
	return float32(math.NaN())
}

// cosf is glibc's cosf (see above).
func cosf(y float32) float32 {
	x := float64(y)
	switch t := abstop12(y); {
	case t < abstop12(math.Pi/4):
		if t < abstop12(0x1p-12) {
			return 1
		}
		return sinfPoly(x, x*x, &sincosfTable[0], 1)
	case t < abstop12(120):
		x, n := reduceFast(x)
		s := sincosfSign[n&3]
		return sinfPoly(x*s, x*x, &sincosfTable[(n>>1)&1], n^1)
	case t < abstop12(float32(math.Inf(1))):
		xi := math.Float32bits(y)
		sign := int(xi >> 31)
		x, n := reduceLarge(xi)
		s := sincosfSign[(n+sign)&3]
		return sinfPoly(x*s, x*x, &sincosfTable[((n+sign)>>1)&1], n^1)
	}
	return float32(math.NaN())
}
