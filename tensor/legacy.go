package tensor

import (
	"encoding/binary"
	"math"
)

// The "legacy" formats: blocks of 32 values with one fp16 scale d (and,
// for the _1 types, an fp16 minimum m). Byte layouts, little-endian:
//
//	Q4_0 (18 bytes)  d fp16 @0 | qs[16] @2
//	    value j = d * (q_j - 8); q_j is the low nibble of qs[j] for j < 16
//	    and the high nibble of qs[j-16] for j >= 16.
//	Q4_1 (20 bytes)  d fp16 @0 | m fp16 @2 | qs[16] @4
//	    value j = d * q_j + m; nibbles as in Q4_0.
//	Q5_0 (22 bytes)  d fp16 @0 | qh uint32 @2 | qs[16] @6
//	    value j = d * (q_j - 16); q_j's fifth bit is bit j of qh.
//	Q5_1 (24 bytes)  d fp16 @0 | m fp16 @2 | qh uint32 @4 | qs[16] @8
//	    value j = d * q_j + m; bits as in Q5_0.
//	Q8_0 (34 bytes)  d fp16 @0 | qs[32] int8 @2
//	    value j = d * qs[j].
//
// Quantizers follow quantize_row_*_ref; products are wrapped in float32()
// where C rounds them before an add, so Go can never fuse them into FMAs.

const qkLegacy = 32

// DequantizeQ4_0 decodes Q4_0 blocks into dst (len(dst) values).
func DequantizeQ4_0(src []byte, dst []float32) error {
	return dequantizeChecked(Q4_0, dequantizeQ4_0, src, dst)
}

// QuantizeQ4_0 encodes src as Q4_0 blocks into dst.
func QuantizeQ4_0(src []float32, dst []byte) error {
	return quantizeChecked(Q4_0, quantizeQ4_0, src, dst)
}

// DequantizeQ4_1 decodes Q4_1 blocks into dst (len(dst) values).
func DequantizeQ4_1(src []byte, dst []float32) error {
	return dequantizeChecked(Q4_1, dequantizeQ4_1, src, dst)
}

// QuantizeQ4_1 encodes src as Q4_1 blocks into dst.
func QuantizeQ4_1(src []float32, dst []byte) error {
	return quantizeChecked(Q4_1, quantizeQ4_1, src, dst)
}

// DequantizeQ5_0 decodes Q5_0 blocks into dst (len(dst) values).
func DequantizeQ5_0(src []byte, dst []float32) error {
	return dequantizeChecked(Q5_0, dequantizeQ5_0, src, dst)
}

// QuantizeQ5_0 encodes src as Q5_0 blocks into dst.
func QuantizeQ5_0(src []float32, dst []byte) error {
	return quantizeChecked(Q5_0, quantizeQ5_0, src, dst)
}

// DequantizeQ5_1 decodes Q5_1 blocks into dst (len(dst) values).
func DequantizeQ5_1(src []byte, dst []float32) error {
	return dequantizeChecked(Q5_1, dequantizeQ5_1, src, dst)
}

// QuantizeQ5_1 encodes src as Q5_1 blocks into dst.
func QuantizeQ5_1(src []float32, dst []byte) error {
	return quantizeChecked(Q5_1, quantizeQ5_1, src, dst)
}

// DequantizeQ8_0 decodes Q8_0 blocks into dst (len(dst) values).
func DequantizeQ8_0(src []byte, dst []float32) error {
	return dequantizeChecked(Q8_0, dequantizeQ8_0, src, dst)
}

// QuantizeQ8_0 encodes src as Q8_0 blocks into dst.
func QuantizeQ8_0(src []float32, dst []byte) error {
	return quantizeChecked(Q8_0, quantizeQ8_0, src, dst)
}

// ---- Q4_0

func dequantizeQ4_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkLegacy; i++ {
		b := src[i*18 : i*18+18 : i*18+18]
		y := dst[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		d := fp16At(b)
		qs := b[2:18]
		for j, q := range qs {
			y[j] = float32(int(q&0x0f)-8) * d
			y[j+16] = float32(int(q>>4)-8) * d
		}
	}
}

func quantizeQ4_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/qkLegacy; i++ {
		x := src[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		b := dst[i*18 : i*18+18 : i*18+18]

		// The value of largest magnitude, with its sign, maps to -8.
		var amax, max float32
		for _, v := range x {
			if amax < abs32(v) {
				amax = abs32(v)
				max = v
			}
		}
		d := max / -8
		var id float32
		if d != 0 { // true for NaN, as in C
			id = 1 / d
		}
		putFP16(b, d)
		for j := 0; j < 16; j++ {
			x0 := float32(x[j] * id)
			x1 := float32(x[j+16] * id)
			xi0 := uint8(min(15, int8(truncInt32(x0+8.5))))
			xi1 := uint8(min(15, int8(truncInt32(x1+8.5))))
			b[2+j] = xi0 | xi1<<4
		}
	}
}

// ---- Q4_1

func dequantizeQ4_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkLegacy; i++ {
		b := src[i*20 : i*20+20 : i*20+20]
		y := dst[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		d, m := fp16At(b), fp16At(b[2:])
		qs := b[4:20]
		for j, q := range qs {
			y[j] = float32(float32(q&0x0f)*d) + m
			y[j+16] = float32(float32(q>>4)*d) + m
		}
	}
}

// minMax returns the smallest and largest of x the way ggml's
// quantize_row_q4_1_ref and q5_1 scan for them.
func minMax(x []float32) (lo, hi float32) {
	lo, hi = math.MaxFloat32, -math.MaxFloat32
	for _, v := range x {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}

func quantizeQ4_1(src []float32, dst []byte) {
	for i := 0; i < len(src)/qkLegacy; i++ {
		x := src[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		b := dst[i*20 : i*20+20 : i*20+20]

		lo, hi := minMax(x)
		d := (hi - lo) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		putFP16(b[2:], lo)
		for j := 0; j < 16; j++ {
			x0 := float32((x[j] - lo) * id)
			x1 := float32((x[j+16] - lo) * id)
			xi0 := uint8(min(15, int8(truncInt32(x0+0.5))))
			xi1 := uint8(min(15, int8(truncInt32(x1+0.5))))
			b[4+j] = xi0 | xi1<<4
		}
	}
}

// ---- Q5_0

func dequantizeQ5_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkLegacy; i++ {
		b := src[i*22 : i*22+22 : i*22+22]
		y := dst[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		d := fp16At(b)
		qh := binary.LittleEndian.Uint32(b[2:])
		qs := b[6:22]
		for j, q := range qs {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[j] = float32(int(q&0x0f|h0)-16) * d
			y[j+16] = float32(int(q>>4|h1)-16) * d
		}
	}
}

// packQ5 stores 32 five-bit codes: low nibbles into qs, fifth bits into
// the returned qh word (bit j for code j).
func packQ5(codes *[32]uint8, qs []byte) (qh uint32) {
	for j := 0; j < 16; j++ {
		xi0, xi1 := codes[j], codes[j+16]
		qs[j] = xi0&0x0f | (xi1&0x0f)<<4
		qh |= uint32(xi0&0x10) >> 4 << j
		qh |= uint32(xi1&0x10) >> 4 << (j + 16)
	}
	return qh
}

func quantizeQ5_0(src []float32, dst []byte) {
	var codes [32]uint8
	for i := 0; i < len(src)/qkLegacy; i++ {
		x := src[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		b := dst[i*22 : i*22+22 : i*22+22]

		var amax, max float32
		for _, v := range x {
			if amax < abs32(v) {
				amax = abs32(v)
				max = v
			}
		}
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		for j, v := range x {
			codes[j] = uint8(min(31, int8(truncInt32(float32(v*id)+16.5))))
		}
		binary.LittleEndian.PutUint32(b[2:], packQ5(&codes, b[6:22]))
	}
}

// ---- Q5_1

func dequantizeQ5_1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkLegacy; i++ {
		b := src[i*24 : i*24+24 : i*24+24]
		y := dst[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		d, m := fp16At(b), fp16At(b[2:])
		qh := binary.LittleEndian.Uint32(b[4:])
		qs := b[8:24]
		for j, q := range qs {
			h0 := uint8(qh>>j<<4) & 0x10
			h1 := uint8(qh>>(j+12)) & 0x10
			y[j] = float32(float32(q&0x0f|h0)*d) + m
			y[j+16] = float32(float32(q>>4|h1)*d) + m
		}
	}
}

func quantizeQ5_1(src []float32, dst []byte) {
	var codes [32]uint8
	for i := 0; i < len(src)/qkLegacy; i++ {
		x := src[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		b := dst[i*24 : i*24+24 : i*24+24]

		lo, hi := minMax(x)
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		putFP16(b[2:], lo)
		for j, v := range x {
			// No clamp to 31 here, unlike Q5_0: ggml has none either.
			codes[j] = uint8(truncInt32(float32((v-lo)*id) + 0.5))
		}
		binary.LittleEndian.PutUint32(b[4:], packQ5(&codes, b[8:24]))
	}
}

// ---- Q8_0

func dequantizeQ8_0(src []byte, dst []float32) {
	for i := 0; i < len(dst)/qkLegacy; i++ {
		b := src[i*34 : i*34+34 : i*34+34]
		y := dst[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		d := fp16At(b)
		for j, q := range b[2:34] {
			y[j] = float32(int8(q)) * d
		}
	}
}

func quantizeQ8_0(src []float32, dst []byte) {
	for i := 0; i < len(src)/qkLegacy; i++ {
		x := src[i*qkLegacy : i*qkLegacy+qkLegacy : i*qkLegacy+qkLegacy]
		b := dst[i*34 : i*34+34 : i*34+34]

		var amax float32
		for _, v := range x {
			if a := abs32(v); !(amax > a) { // MAX(amax, a)
				amax = a
			}
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putFP16(b, d)
		for j, v := range x {
			b[2+j] = uint8(truncInt32(roundf(v * id)))
		}
	}
}
