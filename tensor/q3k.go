package tensor

// Q3_K: super-blocks of 256 values in 16 sub-blocks of 16, each value
// x = d*(sc-32)*(q-4) with a 3-bit q. Layout (110 bytes):
//
//	hmask[32]  @0    high bit of q: bit k of hmask[m] is value 32k+m
//	qs[64]     @32   low 2 bits of q, packed as Q2_K's qs
//	scales[12] @96   16 6-bit scales: low nibbles of sub-blocks 0-7 in the
//	                 low nibbles of bytes 0-7, of 8-15 in their high
//	                 nibbles; the top 2 bits of sub-block j in bits
//	                 2*(j/4).. of byte 8 + j%4
//	d fp16     @108  super-block scale

const q3KSize = 110

// DequantizeQ3_K decodes Q3_K super-blocks into dst (len(dst) values).
func DequantizeQ3_K(src []byte, dst []float32) error {
	return dequantizeChecked(Q3_K, dequantizeQ3_K, src, dst)
}

// QuantizeQ3_K encodes src as Q3_K super-blocks into dst.
func QuantizeQ3_K(src []float32, dst []byte) error {
	return quantizeChecked(Q3_K, quantizeQ3_K, src, dst)
}

// q3KScale unpacks the signed 6-bit scale (already minus 32) of
// sub-block j from the 12 scale bytes.
func q3KScale(scales []byte, j int) int8 {
	var low uint8
	if j < 8 {
		low = scales[j] & 0x0f
	} else {
		low = scales[j-8] >> 4
	}
	high := (scales[8+j%4] >> (2 * (j / 4))) & 3
	return int8(low|high<<4) - 32
}

func dequantizeQ3_K(src []byte, dst []float32) {
	var sc [16]int8
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*q3KSize : (i+1)*q3KSize : (i+1)*q3KSize]
		y := dst[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		hmask, qs, scales := b[0:32], b[32:96], b[96:108]
		dAll := fp16At(b[108:])
		for j := range sc {
			sc[j] = q3KScale(scales, j)
		}
		for half := 0; half < 2; half++ {
			q := qs[32*half : 32*half+32]
			for j := 0; j < 4; j++ {
				shift := uint(2 * j)
				hbit := uint(4*half + j) // which hmask bit holds this group
				for k := 0; k < 2; k++ {
					dl := dAll * float32(sc[8*half+2*j+k])
					out := y[128*half+32*j+16*k : 128*half+32*j+16*k+16]
					hm := hmask[16*k : 16*k+16]
					qq := q[16*k : 16*k+16]
					for l := range out {
						// q - 4 when the high bit is clear, q when set.
						v := int8((qq[l]>>shift)&3|(hm[l]>>hbit&1)<<2) - 4
						out[l] = dl * float32(v)
					}
				}
			}
		}
	}
}

func quantizeQ3_K(src []float32, dst []byte) {
	var (
		L      [QK_K]int8
		scales [QK_K / 16]float32
		codes  [QK_K]uint8
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		b := dst[i*q3KSize : (i+1)*q3KSize : (i+1)*q3KSize]
		hmask, bscales := b[0:32], b[96:108]

		// Largest sub-block scale by magnitude, with its sign.
		var maxScale, amax float32
		for j := 0; j < QK_K/16; j++ {
			scales[j] = makeQ3Quants(4, x[16*j:16*j+16], L[16*j:16*j+16])
			if s := abs32(scales[j]); s > amax {
				amax = s
				maxScale = scales[j]
			}
		}

		// Quantize the scales to 6 bits (stored +32).
		clear(bscales)
		if maxScale != 0 {
			iscale := -32 / maxScale
			for j := 0; j < QK_K/16; j++ {
				l := int8(nearestInt(iscale * scales[j]))
				l = int8(clampInt(int(l), -32, 31) + 32)
				if j < 8 {
					bscales[j] = uint8(l) & 0x0f
				} else {
					bscales[j-8] |= (uint8(l) & 0x0f) << 4
				}
				l >>= 4
				bscales[j%4+8] |= uint8(l) << (2 * (j / 4))
			}
			putFP16(b[108:], 1/iscale)
		} else {
			putFP16(b[108:], 0)
		}

		// Requantize against the scales as stored.
		dAll := fp16At(b[108:])
		for j := 0; j < QK_K/16; j++ {
			d := dAll * float32(q3KScale(bscales, j))
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := clampInt(nearestInt(x[16*j+ii]/d), -4, 3)
				L[16*j+ii] = int8(l + 4)
			}
		}

		// The high bit goes to hmask; the low two bits are packed like Q2_K.
		clear(hmask)
		for j := range L {
			c := uint8(L[j])
			if L[j] > 3 {
				hmask[j%32] |= 1 << (j / 32)
				c -= 4
			}
			codes[j] = c
		}
		packQ2(&codes, b[32:96])
	}
}
