package tensor

import (
	"encoding/binary"
	"math"
)

// Q8_K: ggml's intermediate format for k-quant dot products, 256 values
// x = d*q. Layout (292 bytes):
//
//	d float32     @0    scale (a full float, not fp16)
//	qs[256] int8  @4    quants
//	bsums[16]     @260  int16 sums of each group of 16 quants
//
// ggml_quantize_chunk has no case for Q8_K and the base library's type
// traits give it no to_float, so the reference here is
// quantize_row_q8_K_ref and dequantize_row_q8_K.

const q8KSize = 292

// DequantizeQ8_K decodes Q8_K blocks into dst (len(dst) values).
func DequantizeQ8_K(src []byte, dst []float32) error {
	return dequantizeChecked(Q8_K, dequantizeQ8_K, src, dst)
}

// QuantizeQ8_K encodes src as Q8_K blocks into dst.
func QuantizeQ8_K(src []float32, dst []byte) error {
	return quantizeChecked(Q8_K, quantizeQ8_K, src, dst)
}

func dequantizeQ8_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*q8KSize : (i+1)*q8KSize : (i+1)*q8KSize]
		y := dst[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		d := math.Float32frombits(binary.LittleEndian.Uint32(b))
		for j, q := range b[4 : 4+QK_K] {
			y[j] = d * float32(int8(q))
		}
	}
}

func quantizeQ8_K(src []float32, dst []byte) {
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		b := dst[i*q8KSize : (i+1)*q8KSize : (i+1)*q8KSize]
		qs := b[4 : 4+QK_K]

		var max, amax float32
		for _, v := range x {
			if ax := abs32(v); ax > amax {
				amax = ax
				max = v
			}
		}
		if amax == 0 {
			// ggml zeroes d and qs but leaves bsums as they were; zero
			// them too so the output never depends on dst's old bytes.
			clear(b)
			continue
		}
		// -127, not -128, so that no quant is -128 (ggml needs that for
		// its IQ2_XXS dot product).
		iscale := -127 / max
		for j, v := range x {
			qs[j] = uint8(min(127, nearestInt(iscale*v)))
		}
		for g := 0; g < QK_K/16; g++ {
			sum := 0
			for _, q := range qs[16*g : 16*g+16] {
				sum += int(int8(q))
			}
			binary.LittleEndian.PutUint16(b[4+QK_K+2*g:], uint16(int16(sum)))
		}
		binary.LittleEndian.PutUint32(b, math.Float32bits(1/iscale))
	}
}
