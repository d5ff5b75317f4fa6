package tensor

import "math"

// Q4_K and Q5_K: super-blocks of 256 values in 8 sub-blocks of 32, each
// value x = d*sc*q - dmin*m with 6-bit sc and m per sub-block. Layouts:
//
//	Q4_K (144 bytes)
//	  d    fp16    @0   super-block scale of the scales
//	  dmin fp16    @2   super-block scale of the mins
//	  scales[12]   @4   8 6-bit (sc, m) pairs, see scaleMinK4
//	  qs[128]      @16  4-bit q: for chunk c (64 values) and l < 32,
//	                    qs[32c+l] holds value 64c+l in its low nibble and
//	                    64c+32+l in its high nibble
//	Q5_K (176 bytes)
//	  d, dmin, scales as Q4_K                  @0..15
//	  qh[32]       @16  fifth bit: bit 2c of qh[l] for value 64c+l,
//	                    bit 2c+1 for value 64c+32+l
//	  qs[128]      @48  low 4 bits, packed as Q4_K's qs

const (
	q4KSize = 144
	q5KSize = 176
)

// DequantizeQ4_K decodes Q4_K super-blocks into dst (len(dst) values).
func DequantizeQ4_K(src []byte, dst []float32) error {
	return dequantizeChecked(Q4_K, dequantizeQ4_K, src, dst)
}

// QuantizeQ4_K encodes src as Q4_K super-blocks into dst.
func QuantizeQ4_K(src []float32, dst []byte) error {
	return quantizeChecked(Q4_K, quantizeQ4_K, src, dst)
}

// DequantizeQ5_K decodes Q5_K super-blocks into dst (len(dst) values).
func DequantizeQ5_K(src []byte, dst []float32) error {
	return dequantizeChecked(Q5_K, dequantizeQ5_K, src, dst)
}

// QuantizeQ5_K encodes src as Q5_K super-blocks into dst.
func QuantizeQ5_K(src []float32, dst []byte) error {
	return quantizeChecked(Q5_K, quantizeQ5_K, src, dst)
}

func dequantizeQ4_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*q4KSize : (i+1)*q4KSize : (i+1)*q4KSize]
		y := dst[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		d, dmin := fp16At(b), fp16At(b[2:])
		scales, qs := b[4:16], b[16:144]
		for c := 0; c < 4; c++ {
			sc1, m1 := scaleMinK4(2*c, scales)
			sc2, m2 := scaleMinK4(2*c+1, scales)
			d1, min1 := d*float32(sc1), dmin*float32(m1)
			d2, min2 := d*float32(sc2), dmin*float32(m2)
			q := qs[32*c : 32*c+32]
			lo, hi := y[64*c:64*c+32], y[64*c+32:64*c+64]
			for l, v := range q {
				lo[l] = float32(d1*float32(v&0x0f)) - min1
				hi[l] = float32(d2*float32(v>>4)) - min2
			}
		}
	}
}

func dequantizeQ5_K(src []byte, dst []float32) {
	for i := 0; i < len(dst)/QK_K; i++ {
		b := src[i*q5KSize : (i+1)*q5KSize : (i+1)*q5KSize]
		y := dst[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		d, dmin := fp16At(b), fp16At(b[2:])
		scales, qh, qs := b[4:16], b[16:48], b[48:176]
		for c := 0; c < 4; c++ {
			sc1, m1 := scaleMinK4(2*c, scales)
			sc2, m2 := scaleMinK4(2*c+1, scales)
			d1, min1 := d*float32(sc1), dmin*float32(m1)
			d2, min2 := d*float32(sc2), dmin*float32(m2)
			shift := uint(2 * c) // qh bits 2c and 2c+1 are the fifth bits
			q := qs[32*c : 32*c+32]
			h := qh[:32]
			lo, hi := y[64*c:64*c+32], y[64*c+32:64*c+64]
			for l, v := range q {
				q1 := v&0x0f | (h[l]>>shift&1)<<4
				q2 := v>>4 | (h[l]>>(shift+1)&1)<<4
				lo[l] = float32(d1*float32(q1)) - min1
				hi[l] = float32(d2*float32(q2)) - min2
			}
		}
	}
}

// quantizeScaleMinK is the part Q4_K and Q5_K share: per 32-value
// sub-block fit a scale and min with make_qkx2_quants (weights: the
// sub-block RMS plus |x|), store them as 6-bit values with fp16 d and dmin
// in b[0:16], then requantize every value to [0, nmax] in L against the
// stored scales.
func quantizeScaleMinK(x []float32, b []byte, L *[QK_K]uint8, nmax int, rmin, rdelta float32, nstep int) {
	var (
		laux    [32]uint8
		weights [32]float32
		mins    [QK_K / 32]float32
		scales  [QK_K / 32]float32
	)
	var maxScale, maxMin float32
	for j := 0; j < QK_K/32; j++ {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		avX := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = avX + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, xs, weights[:], L[32*j:32*j+32], laux[:], rmin, rdelta, nstep, false)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}

	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	packed := b[4:16]
	for j := 0; j < QK_K/32; j++ {
		ls := min(63, uint8(nearestInt(invScale*scales[j])))
		lm := min(63, uint8(nearestInt(invMin*mins[j])))
		if j < 4 {
			packed[j] = ls
			packed[j+4] = lm
		} else {
			packed[j+4] = ls&0x0f | (lm&0x0f)<<4
			packed[j-4] |= (ls >> 4) << 6
			packed[j] |= (lm >> 4) << 6
		}
	}
	putFP16(b, maxScale/63)
	putFP16(b[2:], maxMin/63)

	dAll, mAll := fp16At(b), fp16At(b[2:])
	for j := 0; j < QK_K/32; j++ {
		sc, m := scaleMinK4(j, packed)
		d := dAll * float32(sc)
		if d == 0 {
			continue
		}
		dm := mAll * float32(m)
		for ii := 0; ii < 32; ii++ {
			L[32*j+ii] = uint8(clampInt(nearestInt((x[32*j+ii]+dm)/d), 0, nmax))
		}
	}
}

func quantizeQ4_K(src []float32, dst []byte) {
	var L [QK_K]uint8
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		b := dst[i*q4KSize : (i+1)*q4KSize : (i+1)*q4KSize]
		quantizeScaleMinK(x, b, &L, 15, -1, 0.1, 20)
		qs := b[16:144]
		for c := 0; c < 4; c++ {
			for l := 0; l < 32; l++ {
				qs[32*c+l] = L[64*c+l] | L[64*c+32+l]<<4
			}
		}
	}
}

func quantizeQ5_K(src []float32, dst []byte) {
	var L [QK_K]uint8
	for i := 0; i < len(src)/QK_K; i++ {
		x := src[i*QK_K : (i+1)*QK_K : (i+1)*QK_K]
		b := dst[i*q5KSize : (i+1)*q5KSize : (i+1)*q5KSize]
		quantizeScaleMinK(x, b, &L, 31, -0.5, 0.1, 15)
		qh, qs := b[16:48], b[48:176]
		clear(qh)
		for c := 0; c < 4; c++ {
			m1, m2 := uint8(1)<<(2*c), uint8(2)<<(2*c)
			for l := 0; l < 32; l++ {
				l1, l2 := L[64*c+l], L[64*c+32+l]
				if l1 > 15 {
					l1 -= 16
					qh[l] |= m1
				}
				if l2 > 15 {
					l2 -= 16
					qh[l] |= m2
				}
				qs[32*c+l] = l1 | l2<<4
			}
		}
	}
}
