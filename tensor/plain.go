package tensor

import (
	"encoding/binary"
	"math"
)

// Plain (non-block) formats, one element per "block", little-endian:
//
//	F32   4 bytes  IEEE binary32
//	F16   2 bytes  IEEE binary16: sign, 5 exponent bits, 10 mantissa bits
//	BF16  2 bytes  bfloat16: the high half of a binary32
//
// libggml-base converts fp16 in software on x86 (it is built without F16C;
// F16C lives only in the CPU backends), so these functions follow that
// code's results: round to nearest even, overflow to infinity, and every
// NaN becomes the canonical quiet NaN 0x7E00 with the input's sign.

// FP16ToFloat32 converts IEEE half-precision bits to float32. The
// conversion is exact; a NaN keeps its payload and comes out quiet, as the
// multiply in ggml's software conversion leaves it on x86.
func FP16ToFloat32(h uint16) float32 {
	if fp16IsNormal(h) {
		return math.Float32frombits(fp16NormalBits(h))
	}
	return fp16SpecialToFloat32(h)
}

// fp16IsNormal reports whether h is a normal number: its exponent field
// is 1..30, which with unsigned wrap-around one comparison tells.
func fp16IsNormal(h uint16) bool { return h&0x7c00-0x0400 < 0x7800 }

// fp16NormalBits converts a normal half to float32 bits: rebias the
// exponent from 15 to 127 (add 112 to the exponent field) and widen the
// mantissa from 10 to 23 bits.
func fp16NormalBits(h uint16) uint32 {
	w := uint32(h)
	return w&0x8000<<16 | (w&0x7fff+112<<10)<<13
}

// fp16SpecialToFloat32 converts the halves that are not normal numbers:
// zeros, subnormals, infinities and NaNs.
func fp16SpecialToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	mant := uint32(h) & 0x3ff
	switch {
	case h&0x7c00 == 0x7c00: // infinity or NaN
		bits := sign | 0x7f800000 | mant<<13
		if mant != 0 {
			bits |= 1 << 22 // quiet bit
		}
		return math.Float32frombits(bits)
	case mant == 0: // signed zero
		return math.Float32frombits(sign)
	default: // subnormal: mant * 2^-24, exact in float32
		v := float32(mant) * (1.0 / (1 << 24))
		return math.Float32frombits(sign | math.Float32bits(v))
	}
}

// Float32ToFP16 converts f to IEEE half-precision bits, rounding to
// nearest even. Values of magnitude 65520 or more become infinity, tiny
// ones half subnormals or zero, and NaN becomes 0x7E00 with f's sign.
func Float32ToFP16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	abs := b &^ (1 << 31)
	switch {
	case abs > 0x7f800000: // NaN
		return sign | 0x7e00
	case abs >= 0x477ff000: // >= 65520 (halfway past 65504) or infinity
		return sign | 0x7c00
	case abs >= 0x38800000: // >= 2^-14: a normal half
		// Rebias the exponent from 127 to 15, then drop 13 mantissa bits
		// rounding to nearest even; a carry out of the mantissa correctly
		// bumps the exponent.
		h := abs - (127-15)<<23
		h += 0xfff + (h>>13)&1
		return sign | uint16(h>>13)
	default: // a half subnormal (or zero): round(|f| * 2^24) to even
		exp := abs >> 23
		if exp < 127-25 { // below 2^-25: rounds to zero
			return sign
		}
		mant := abs&0x7fffff | 0x800000 // |f| = mant * 2^(exp-150)
		shift := 126 - exp              // |f| * 2^24 = mant >> shift, 14 <= shift <= 24
		q := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && q&1 == 1 {
			q++
		}
		return sign | uint16(q)
	}
}

// BF16ToFloat32 converts bfloat16 bits to float32 (exact).
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBF16 converts f to bfloat16 bits, rounding to nearest even;
// a NaN keeps its high payload bits and is forced quiet.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// DequantizeF16 converts little-endian fp16 values to float32.
func DequantizeF16(src []byte, dst []float32) error {
	return dequantizeChecked(F16, dequantizeF16, src, dst)
}

// QuantizeF16 converts float32 values to little-endian fp16.
func QuantizeF16(src []float32, dst []byte) error {
	return quantizeChecked(F16, quantizeF16, src, dst)
}

// DequantizeBF16 converts little-endian bfloat16 values to float32.
func DequantizeBF16(src []byte, dst []float32) error {
	return dequantizeChecked(BF16, dequantizeBF16, src, dst)
}

// QuantizeBF16 converts float32 values to little-endian bfloat16.
func QuantizeBF16(src []float32, dst []byte) error {
	return quantizeChecked(BF16, quantizeBF16, src, dst)
}

func dequantizeF32(src []byte, dst []float32) {
	src = src[:4*len(dst)]
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

func quantizeF32(src []float32, dst []byte) {
	dst = dst[:4*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}

func dequantizeF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		// FP16ToFloat32 with its common case inlined by hand.
		h := binary.LittleEndian.Uint16(src[2*i:])
		if fp16IsNormal(h) {
			dst[i] = math.Float32frombits(fp16NormalBits(h))
		} else {
			dst[i] = fp16SpecialToFloat32(h)
		}
	}
}

func quantizeF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], Float32ToFP16(v))
	}
}

func dequantizeBF16(src []byte, dst []float32) {
	src = src[:2*len(dst)]
	for i := range dst {
		dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
	}
}

func quantizeBF16(src []float32, dst []byte) {
	dst = dst[:2*len(src)]
	for i, v := range src {
		binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBF16(v))
	}
}

// fp16At reads the little-endian fp16 at b[0:2] as float32.
func fp16At(b []byte) float32 {
	return FP16ToFloat32(binary.LittleEndian.Uint16(b))
}

// putFP16 stores f as little-endian fp16 at b[0:2].
func putFP16(b []byte, f float32) {
	binary.LittleEndian.PutUint16(b, Float32ToFP16(f))
}
