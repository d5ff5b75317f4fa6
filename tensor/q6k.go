package tensor

// Q6_K: super-blocks of 256 values in 16 sub-blocks of 16, each value
// x = d*sc*(q-32) with a 6-bit q and a signed 8-bit sc. Layout (210 bytes):
//
//	ql[128]     @0    low 4 bits of q: for half h (128 values) and l < 32,
//	                  ql[64h+l] holds values 128h+l (low nibble) and
//	                  128h+64+l (high nibble), ql[64h+32+l] values
//	                  128h+32+l and 128h+96+l
//	qh[64]      @128  high 2 bits: qh[32h+l] holds values 128h+l, +32, +64,
//	                  +96 in bits 0-1, 2-3, 4-5, 6-7
//	scales[16]  @192  int8 sub-block scales
//	d fp16      @208  super-block scale

const q6KSize = 210

// DequantizeQ6_K decodes Q6_K super-blocks into dst (len(dst) values).
func DequantizeQ6_K(src []byte, dst []float32) error {
	return dequantizeChecked(Q6_K, dequantizeQ6_K, src, dst)
}

// QuantizeQ6_K encodes src as Q6_K super-blocks into dst.
func QuantizeQ6_K(src []float32, dst []byte) error {
	return quantizeChecked(Q6_K, quantizeQ6_K, src, dst)
}

func dequantizeQ6_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*q6KSize : (i+1)*q6KSize : (i+1)*q6KSize]
		y := dst[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		d := fp16At(b[208:])
		for half := 0; half < 2; half++ {
			ql := b[64*half : 64*half+64]
			qh := b[128+32*half : 128+32*half+32]
			sc := b[192+8*half : 192+8*half+8]
			out := y[128*half : 128*half+128]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int8(ql[l]&0x0f|(qh[l]>>0&3)<<4) - 32
				q2 := int8(ql[l+32]&0x0f|(qh[l]>>2&3)<<4) - 32
				q3 := int8(ql[l]>>4|(qh[l]>>4&3)<<4) - 32
				q4 := int8(ql[l+32]>>4|(qh[l]>>6&3)<<4) - 32
				out[l] = float32(d*float32(int8(sc[is]))) * float32(q1)
				out[l+32] = float32(d*float32(int8(sc[is+2]))) * float32(q2)
				out[l+64] = float32(d*float32(int8(sc[is+4]))) * float32(q3)
				out[l+96] = float32(d*float32(int8(sc[is+6]))) * float32(q4)
			}
		}
	}
}

func quantizeQ6_K(src []float32, dst []byte) {
	var (
		L      [QK_K]int8
		scales [QK_K / 16]float32
	)
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		b := dst[i*q6KSize : (i+1)*q6KSize : (i+1)*q6KSize]

		var maxScale, maxAbsScale float32
		for ib := 0; ib < QK_K/16; ib++ {
			scales[ib] = makeQXQuants(32, x[16*ib:16*ib+16], L[16*ib:16*ib+16])
			if a := abs32(scales[ib]); a > maxAbsScale {
				maxAbsScale = a
				maxScale = scales[ib]
			}
		}
		if maxAbsScale < groupMaxEps {
			clear(b) // an all-zero block, d = +0
			continue
		}

		iscale := -128 / maxScale
		putFP16(b[208:], 1/iscale)
		bscales := b[192:208]
		for ib := range scales {
			bscales[ib] = uint8(min(127, nearestInt(iscale*scales[ib])))
		}

		// Requantize against the scales as stored.
		dAll := fp16At(b[208:])
		for j := 0; j < QK_K/16; j++ {
			d := dAll * float32(int8(bscales[j]))
			if d == 0 {
				continue
			}
			for ii := 0; ii < 16; ii++ {
				l := clampInt(nearestInt(x[16*j+ii]/d), -32, 31)
				L[16*j+ii] = int8(l + 32)
			}
		}

		for half := 0; half < 2; half++ {
			ql := b[64*half : 64*half+64]
			qh := b[128+32*half : 128+32*half+32]
			Lh := L[128*half : 128*half+128]
			for l := 0; l < 32; l++ {
				c1, c2, c3, c4 := uint8(Lh[l]), uint8(Lh[l+32]), uint8(Lh[l+64]), uint8(Lh[l+96])
				ql[l] = c1&0x0f | (c3&0x0f)<<4
				ql[l+32] = c2&0x0f | (c4&0x0f)<<4
				qh[l] = c1>>4 | (c2>>4)<<2 | (c3>>4)<<4 | (c4>>4)<<6
			}
		}
	}
}
