package kernels

import (
	"encoding/binary"
	"fmt"
	"math"

	"llamago/tensor"
)

// Activation block layouts (little-endian), as ggml-common.h defines them:
//
//	Q8_0 (34 bytes / 32 values): d fp16 | qs [32]int8             value = d*q
//	Q8_1 (36 bytes / 32 values): d fp16 | s fp16 | qs [32]int8    s = d*Σq
//	Q8_K (292 bytes / 256 values): d float32 | qs [256]int8 | bsums [16]int16
//	                               bsums[j] = Σ qs[16j .. 16j+15]
const (
	q8_0Bytes = 34
	q8_1Bytes = 36
	q8_KBytes = 292
	qk        = 32  // values per block of the legacy formats
	qkK       = 256 // values per k-quant super-block
)

// QuantizeRow converts the activation row x to type vt (a VecDotType:
// Q8_0, Q8_1, Q8_K, F16, BF16 or F32) into dst, exactly as ggml's CPU
// from_float for vt does on x86, which is what llama.cpp runs on these
// machines: for Q8_0 and Q8_1 its SIMD quantizers (scale by 127/amax,
// round halves to even), for Q8_K quantize_row_q8_K_ref,
// round-to-nearest-even fp16/bf16, raw float32 bytes. len(x) must be a whole number of vt's
// blocks and dst at least RowBytes(vt, len(x)) long; it panics otherwise,
// or for another vt.
func QuantizeRow(vt tensor.Type, x []float32, dst []byte) { selected.QuantizeRow(vt, x, dst) }

// QuantizeRow is the package-level QuantizeRow with the set's quantizers:
// the SIMD sets have faster ones for some activation types, which write
// exactly the bytes the portable code writes.
func (s *Set) QuantizeRow(vt tensor.Type, x []float32, dst []byte) {
	need := RowBytes(vt, len(x))
	if bs, _ := blockSizes(vt); bs == 0 || len(x)%bs != 0 || len(dst) < need {
		panic(fmt.Sprintf("kernels: QuantizeRow(%s): %d values into %d bytes", vt, len(x), len(dst)))
	}
	dst = dst[:need]
	if uint32(vt) < maxType && s.quant[vt] != nil {
		s.quant[vt](x, dst)
		return
	}
	switch vt {
	case tensor.Q8_0:
		quantizeQ8_0(x, dst)
	case tensor.Q8_1:
		quantizeQ8_1(x, dst)
	case tensor.Q8_K:
		quantizeQ8_K(x, dst)
	case tensor.F16:
		quantizeF16(x, dst, 0)
	case tensor.BF16:
		for i, v := range x {
			binary.LittleEndian.PutUint16(dst[2*i:], tensor.Float32ToBF16(v))
		}
	case tensor.F32:
		for i, v := range x {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	default:
		panic(fmt.Sprintf("kernels: QuantizeRow: %s is not an activation type", vt))
	}
}

// absMax32 is the absolute maximum of a block as ggml's
// amax = MAX(amax, fabsf(v)) loop computes it; MAX(a, b) is a > b ? a : b,
// which also fixes what a NaN does.
func absMax32(x *[qk]float32) float32 {
	var amax float32
	for _, v := range x {
		a := float32(math.Abs(float64(v)))
		if !(amax > a) {
			amax = a
		}
	}
	return amax
}

// scale8 returns d = amax/127 and the multiplier id = 127/amax (0 when
// amax is 0), as ggml's x86 quantize_row_q8_0 and quantize_row_q8_1
// compute them. (The reference quantize_row_q8_0_ref takes id = 1/d, which
// differs from 127/amax in the last bit now and then.)
func scale8(amax float32) (d, id float32) {
	d = amax / 127
	if amax != 0 {
		id = 127 / amax
	}
	return d, id
}

// roundQ8 rounds to the nearest integer with halves to even, as the x86
// quantizers' _mm256_round_ps(v, _MM_ROUND_NEAREST) does. The values ggml
// feeds it lie in [-127, 127]; NaN or infinity give an arbitrary byte
// rather than a panic.
func roundQ8(v float32) int8 {
	return int8(int32(math.RoundToEven(float64(v))))
}

func quantizeQ8_0(x []float32, dst []byte) {
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := (*[qk]float32)(x[ib*qk:])
		yb := (*[q8_0Bytes]byte)(dst[ib*q8_0Bytes:])
		d, id := scale8(absMax32(xb))
		binary.LittleEndian.PutUint16(yb[0:], tensor.Float32ToFP16(d))
		for j, v := range xb {
			yb[2+j] = byte(roundQ8(v * id))
		}
	}
}

func quantizeQ8_1(x []float32, dst []byte) {
	for ib := 0; ib < len(x)/qk; ib++ {
		xb := (*[qk]float32)(x[ib*qk:])
		yb := (*[q8_1Bytes]byte)(dst[ib*q8_1Bytes:])
		d, id := scale8(absMax32(xb))
		binary.LittleEndian.PutUint16(yb[0:], tensor.Float32ToFP16(d))
		var sum int32
		for j, v := range xb {
			q := roundQ8(v * id)
			yb[4+j] = byte(q)
			sum += int32(q)
		}
		// s is computed from the unrounded float32 d, not from its fp16.
		binary.LittleEndian.PutUint16(yb[2:], tensor.Float32ToFP16(float32(sum)*d))
	}
}

// nearestInt is ggml's nearest_int: adding 1.5*2^23 in float32 leaves the
// value rounded to nearest-even in the low mantissa bits.
func nearestInt(v float32) int32 {
	f := v + 12582912
	return int32(math.Float32bits(f)&0x007fffff) - 0x00400000
}

func quantizeQ8_K(x []float32, dst []byte) {
	for ib := 0; ib < len(x)/qkK; ib++ {
		xb := (*[qkK]float32)(x[ib*qkK:])
		yb := (*[q8_KBytes]byte)(dst[ib*q8_KBytes:])
		// The signed value of largest magnitude (the first one on ties).
		var amax, max float32
		for _, v := range xb {
			if a := float32(math.Abs(float64(v))); a > amax {
				amax, max = a, v
			}
		}
		if amax == 0 {
			// ggml zeroes d and qs and leaves bsums as they were; they are
			// only ever multiplied by d = 0, so zero them too.
			clear(yb[:])
			continue
		}
		iscale := -127 / max
		var sums [qkK / 16]int32
		for j, v := range xb {
			q := min(127, nearestInt(iscale*v))
			yb[4+j] = byte(int8(q))
			sums[j/16] += int32(int8(q))
		}
		for j, s := range sums {
			binary.LittleEndian.PutUint16(yb[4+qkK+2*j:], uint16(int16(s)))
		}
		binary.LittleEndian.PutUint32(yb[0:], math.Float32bits(1/iscale))
	}
}

// quantizeF16 converts x[from:] to fp16 as ggml_cpu_fp32_to_fp16 of
// the zen4 build does: VCVTPS2PH with round-to-nearest-even on groups of
// 16, 8 and 4 values, then a scalar conversion of the last len(x)%4. The
// two differ only in NaNs: the vector one keeps the sign and the top 10
// payload bits (made quiet), the scalar one only the sign
// (TestFloatActivationsMatchGGMLZen4).
func quantizeF16(x []float32, dst []byte, from int) {
	vec := len(x) &^ 3
	for i := from; i < len(x); i++ {
		v, h := x[i], tensor.Float32ToFP16(x[i])
		if v != v {
			b := math.Float32bits(v)
			h = uint16(b>>16)&0x8000 | 0x7e00
			if i < vec {
				h |= uint16(b>>13) & 0x3ff
			}
		}
		binary.LittleEndian.PutUint16(dst[2*i:], h)
	}
}
