package tensor

// Q2_K: super-blocks of 256 values in 16 sub-blocks of 16, each value
// x = d*sc*q - dmin*mn with a 2-bit q. Layout (84 bytes):
//
//	scales[16] @0   sub-block j: low nibble sc (scale), high nibble mn (min)
//	qs[64]     @16  2-bit quants; for half h (128 values) and l < 32, byte
//	                qs[32h+l] holds values 128h+l, +32, +64, +96 in bits
//	                0-1, 2-3, 4-5, 6-7
//	d    fp16  @80  super-block scale of the scales
//	dmin fp16  @82  super-block scale of the mins

const q2KSize = 84

// DequantizeQ2_K decodes Q2_K super-blocks into dst (len(dst) values).
func DequantizeQ2_K(src []byte, dst []float32) error {
	return dequantizeChecked(Q2_K, dequantizeQ2_K, src, dst)
}

// QuantizeQ2_K encodes src as Q2_K super-blocks into dst.
func QuantizeQ2_K(src []float32, dst []byte) error {
	return quantizeChecked(Q2_K, quantizeQ2_K, src, dst)
}

func dequantizeQ2_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*q2KSize : (i+1)*q2KSize : (i+1)*q2KSize]
		y := dst[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		scales, qs := b[0:16], b[16:80]
		d, dmin := fp16At(b[80:]), fp16At(b[82:])
		for half := 0; half < 2; half++ {
			q := qs[32*half : 32*half+32]
			for j := 0; j < 4; j++ {
				shift := uint(2 * j)
				for k := 0; k < 2; k++ { // two sub-blocks of 16 per shift
					sc := scales[8*half+2*j+k]
					dl := d * float32(sc&0x0f)
					ml := dmin * float32(sc>>4)
					out := y[128*half+32*j+16*k : 128*half+32*j+16*k+16]
					for l := range out {
						out[l] = float32(dl*float32((q[16*k+l]>>shift)&3)) - ml
					}
				}
			}
		}
	}
}

func quantizeQ2_K(src []float32, dst []byte) {
	const q4scale = 15
	var (
		L       [QK_K]uint8
		laux    [16]uint8
		weights [16]float32
		mins    [QK_K / 16]float32
		scales  [QK_K / 16]float32
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		b := dst[i*q2KSize : (i+1)*q2KSize : (i+1)*q2KSize]
		bscales := b[0:16]

		var maxScale, maxMin float32
		for j := 0; j < QK_K/16; j++ {
			xs := x[16*j : 16*j+16]
			for l, v := range xs {
				weights[l] = abs32(v)
			}
			scales[j], mins[j] = makeQKX2Quants(3, xs, weights[:], L[16*j:16*j+16], laux[:], -0.5, 0.1, 15, true)
			if scales[j] > maxScale {
				maxScale = scales[j]
			}
			if mins[j] > maxMin {
				maxMin = mins[j]
			}
		}

		// Quantize the sub-block scales and mins to 4 bits each.
		if maxScale > 0 {
			iscale := q4scale / maxScale
			for j := range scales {
				bscales[j] = uint8(nearestInt(iscale * scales[j]))
			}
			putFP16(b[80:], maxScale/q4scale)
		} else {
			clear(bscales)
			putFP16(b[80:], 0)
		}
		if maxMin > 0 {
			iscale := q4scale / maxMin
			for j := range mins {
				bscales[j] |= uint8(nearestInt(iscale*mins[j]) << 4)
			}
			putFP16(b[82:], maxMin/q4scale)
		} else {
			putFP16(b[82:], 0)
		}

		// Requantize against the scales as stored.
		dAll, mAll := fp16At(b[80:]), fp16At(b[82:])
		for j := 0; j < QK_K/16; j++ {
			d := dAll * float32(bscales[j]&0x0f)
			if d == 0 {
				continue
			}
			dm := mAll * float32(bscales[j]>>4)
			for ii := 0; ii < 16; ii++ {
				L[16*j+ii] = uint8(clampInt(nearestInt((x[16*j+ii]+dm)/d), 0, 3))
			}
		}

		packQ2(&L, b[16:80])
	}
}

// packQ2 stores 256 2-bit codes (values 0..3) in Q2_K/Q3_K order.
func packQ2(L *[QK_K]uint8, qs []byte) {
	for half := 0; half < 2; half++ {
		j := 128 * half
		for l := 0; l < 32; l++ {
			qs[32*half+l] = L[j+l] | L[j+l+32]<<2 | L[j+l+64]<<4 | L[j+l+96]<<6
		}
	}
}
