package kernels

import (
	"encoding/binary"
	"math"
)

// Weight block layouts of the k-quants, 256 values per super-block
// (little-endian; ggml-common.h):
//
//	Q2_K (84):  scales [16]byte | qs [64]byte | d fp16 | dmin fp16
//	            16 groups of 16; scale = low nibble, min = high nibble;
//	            value = d*scale*q - dmin*min, q 2 bits
//	Q3_K (110): hmask [32]byte | qs [64]byte | scales [12]byte | d fp16
//	            16 groups of 16, 6-bit scales stored minus 32;
//	            value = d*scale*(q - 4 if the hmask bit is clear), q 2 bits
//	Q4_K (144): d fp16 | dmin fp16 | scales [12]byte | qs [128]byte
//	            8 groups of 32, 6-bit scales and mins packed in 12 bytes;
//	            value = d*scale*q - dmin*min, q 4 bits
//	Q5_K (176): d fp16 | dmin fp16 | scales [12]byte | qh [32]byte | qs [128]byte
//	            as Q4_K with a fifth bit from qh
//	Q6_K (210): ql [128]byte | qh [64]byte | scales [16]int8 | d fp16
//	            16 groups of 16; value = d*scale*(q - 32), q 6 bits
//
// The activation side is Q8_K: d float32 | qs [256]int8 | bsums [16]int16,
// where bsums are the sums of qs over groups of 16, which turn the mins
// into one small integer dot product per super-block.
//
// ggml's generic kernels for Q3_K..Q6_K accumulate in eight integer lanes
// (lane l takes the values whose index is l mod 8), scale each lane to
// float32 separately and add the lanes at the very end; the float results
// depend on that, so the lanes are kept here too. Integer sums are exact,
// so only where the float roundings happen has to match.
const (
	q2_KBytes = 84
	q3_KBytes = 110
	q4_KBytes = 144
	q5_KBytes = 176
	q6_KBytes = 210
)

// q8K gives the parts of one Q8_K block.
func q8K(y *[q8_KBytes]byte) (d float32, qs *[qkK]byte, bsums *[32]byte) {
	return math.Float32frombits(binary.LittleEndian.Uint32(y[0:])),
		(*[qkK]byte)(y[4:]), (*[32]byte)(y[4+qkK:])
}

// bsum is the j-th group sum of a Q8_K block.
func bsum(bsums *[32]byte, j int) int32 {
	return int32(int16(binary.LittleEndian.Uint16(bsums[2*j:])))
}

// The kernels first unpack a super-block's quants into 256 int8 values
// (as ggml's generic code does), eight at a time with 64-bit masks and
// shifts; every mask keeps bits that came from the same byte, so no bit
// crosses into a neighbour.
const (
	bytes01 = 0x0101010101010101
	bytes03 = 0x0303030303030303
	bytes0F = 0x0f0f0f0f0f0f0f0f
	bytes20 = 0x2020202020202020
	bytes80 = 0x8080808080808080
	bytesFC = 0xfc
)

func le64(b []byte) uint64     { return binary.LittleEndian.Uint64(b) }
func put64(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }

// nibbles splits eight bytes into their low and high nibbles.
func nibbles(v uint64) (lo, hi uint64) { return v & bytes0F, v >> 4 & bytes0F }

// sub32Bytes subtracts 32 from each of eight bytes below 128, giving
// two's complement int8 results: setting the top bit first keeps a
// borrow from crossing into the next byte.
func sub32Bytes(u uint64) uint64 { return (u | bytes80 - bytes20) ^ bytes80 }

// groupDot is Σ a_i·b_i over 16 int8 pairs.
func groupDot(a, b *[16]byte) int32 {
	var s int32
	for i := 0; i < 16; i += 4 {
		s += int32(int8(a[i]))*int32(int8(b[i])) + int32(int8(a[i+1]))*int32(int8(b[i+1])) +
			int32(int8(a[i+2]))*int32(int8(b[i+2])) + int32(int8(a[i+3]))*int32(int8(b[i+3]))
	}
	return s
}

// laneSums returns, for each lane l, the sum over the 16 groups g of
// scales[g] * Σ a[i]*q8[i], i running over the two values 16g+l and
// 16g+8+l of the group that fall in lane l (a and q8 hold int8 values).
// The lanes are written out so that they stay in registers.
func laneSums(a, q8 *[qkK]byte, scales *[16]int32) (aux [8]int32) {
	var s0, s1, s2, s3, s4, s5, s6, s7 int32
	for g := 0; g < 16; g++ {
		sc := scales[g]
		x := (*[16]byte)(a[16*g:])
		y := (*[16]byte)(q8[16*g:])
		s0 += sc * (int32(int8(x[0]))*int32(int8(y[0])) + int32(int8(x[8]))*int32(int8(y[8])))
		s1 += sc * (int32(int8(x[1]))*int32(int8(y[1])) + int32(int8(x[9]))*int32(int8(y[9])))
		s2 += sc * (int32(int8(x[2]))*int32(int8(y[2])) + int32(int8(x[10]))*int32(int8(y[10])))
		s3 += sc * (int32(int8(x[3]))*int32(int8(y[3])) + int32(int8(x[11]))*int32(int8(y[11])))
		s4 += sc * (int32(int8(x[4]))*int32(int8(y[4])) + int32(int8(x[12]))*int32(int8(y[12])))
		s5 += sc * (int32(int8(x[5]))*int32(int8(y[5])) + int32(int8(x[13]))*int32(int8(y[13])))
		s6 += sc * (int32(int8(x[6]))*int32(int8(y[6])) + int32(int8(x[14]))*int32(int8(y[14])))
		s7 += sc * (int32(int8(x[7]))*int32(int8(y[7])) + int32(int8(x[15]))*int32(int8(y[15])))
	}
	return [8]int32{s0, s1, s2, s3, s4, s5, s6, s7}
}

// addLanes does sums[l] += d*aux[l], rounding each product to float32.
func addLanes(sums *[8]float32, d float32, aux *[8]int32) {
	for l := range sums {
		sums[l] += float32(d * float32(aux[l]))
	}
}

func dotQ2_K(w, xq []byte, n int) float32 {
	nb := n / qkK
	w, xq = w[:nb*q2_KBytes], xq[:nb*q8_KBytes]
	var sumf float32
	var a [qkK]byte
	for len(w) >= q2_KBytes && len(xq) >= q8_KBytes {
		x := (*[q2_KBytes]byte)(w)
		yd, q8, bsums := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[q2_KBytes:], xq[q8_KBytes:]
		sc := (*[16]byte)(x[0:])
		q2 := (*[64]byte)(x[16:])

		var summs int32
		for j := 0; j < 16; j++ {
			summs += bsum(bsums, j) * int32(sc[j]>>4)
		}
		dall := float32(yd * fp16(x[80:]))
		dmin := float32(yd * fp16(x[82:]))

		// Value 128c + 32j + l is bits 2j..2j+1 of qs byte 32c + l.
		for c := 0; c < 2; c++ {
			for j := 0; j < 4; j++ {
				for k := 0; k < 32; k += 8 {
					put64(a[128*c+32*j+k:], le64(q2[32*c+k:])>>(2*j)&bytes03)
				}
			}
		}
		// Group g (values 16g..16g+15) has scale sc[g] & 15.
		var isum int32
		for g := 0; g < 16; g++ {
			isum += int32(sc[g]&0x0f) * groupDot((*[16]byte)(a[16*g:]), (*[16]byte)(q8[16*g:]))
		}
		sumf += float32(dall*float32(isum)) - float32(dmin*float32(summs))
	}
	return sumf
}

func dotQ3_K(w, xq []byte, n int) float32 {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	nb := n / qkK
	w, xq = w[:nb*q3_KBytes], xq[:nb*q8_KBytes]
	var sums [8]float32
	var a [qkK]byte
	for len(w) >= q3_KBytes && len(xq) >= q8_KBytes {
		x := (*[q3_KBytes]byte)(w)
		yd, q8, _ := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[q3_KBytes:], xq[q8_KBytes:]
		hm := (*[32]byte)(x[0:])
		q3 := (*[64]byte)(x[32:])

		// Value 128c + 32s + l is bits 2s..2s+1 of qs byte 32c + l, minus
		// 4 unless bit 4c+s of hmask byte l is set: that is the 2 bits
		// with 0xFC or'ed in when the bit is clear.
		for c := 0; c < 2; c++ {
			for s := 0; s < 4; s++ {
				for k := 0; k < 32; k += 8 {
					q := le64(q3[32*c+k:]) >> (2 * s) & bytes03
					h := le64(hm[k:]) >> (4*c + s) & bytes01
					put64(a[128*c+32*s+k:], q|(h^bytes01)*bytesFC)
				}
			}
		}

		// Sixteen 6-bit scales: low 4 bits in bytes 0..7 (two per byte),
		// high 2 bits in bytes 8..11 (four per byte).
		a0 := binary.LittleEndian.Uint32(x[96:])
		a1 := binary.LittleEndian.Uint32(x[100:])
		tmp := binary.LittleEndian.Uint32(x[104:])
		packed := [4]uint32{
			a0&kmask2 | (tmp>>0&kmask1)<<4,
			a1&kmask2 | (tmp>>2&kmask1)<<4,
			a0>>4&kmask2 | (tmp>>4&kmask1)<<4,
			a1>>4&kmask2 | (tmp>>6&kmask1)<<4,
		}
		var scales [16]int32
		for j := range scales {
			scales[j] = int32(int8(packed[j/4]>>(8*(j%4)))) - 32
		}

		aux := laneSums(&a, q8, &scales)
		d := float32(fp16(x[108:]) * yd)
		addLanes(&sums, d, &aux)
	}
	var sumf float32
	for _, s := range sums {
		sumf += s
	}
	return sumf
}

// kScalesMins unpacks the 12 bytes of 6-bit scales and mins of Q4_K and
// Q5_K: entries 0..3 keep their 6 bits in bytes 0..3 (scales) and 4..7
// (mins); entries 4..7 take their low 4 bits from bytes 8..11 and their
// high 2 bits from the top of bytes 0..7.
func kScalesMins(b []byte) (scales, mins [8]int32) {
	const kmask1, kmask2, kmask3 = 0x3f3f3f3f, 0x0f0f0f0f, 0x03030303
	u0 := binary.LittleEndian.Uint32(b[0:])
	u1 := binary.LittleEndian.Uint32(b[4:])
	u2 := binary.LittleEndian.Uint32(b[8:])
	sc := [2]uint32{u0 & kmask1, u2&kmask2 | (u0>>6&kmask3)<<4}
	mn := [2]uint32{u1 & kmask1, u2>>4&kmask2 | (u1>>6&kmask3)<<4}
	for j := 0; j < 8; j++ {
		scales[j] = int32(byte(sc[j/4] >> (8 * (j % 4))))
		mins[j] = int32(byte(mn[j/4] >> (8 * (j % 4))))
	}
	return scales, mins
}

// dotQ4Q5_K is the shared body of Q4_K (qhOff < 0) and Q5_K.
func dotQ4Q5_K(w, xq []byte, n int, blockBytes int, qsOff int, qhOff int) float32 {
	nb := n / qkK
	w, xq = w[:nb*blockBytes], xq[:nb*q8_KBytes]
	var sums [8]float32
	var sumf float32
	var a [qkK]byte
	for len(w) >= blockBytes && len(xq) >= q8_KBytes {
		x := w[:blockBytes]
		yd, q8, bsums := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[blockBytes:], xq[q8_KBytes:]
		q4 := (*[128]byte)(x[qsOff:])

		// Value 64j + l (l < 32) is the low nibble of qs byte 32j + l,
		// value 64j + 32 + l its high nibble; Q5_K adds 16 when bit 2j
		// (resp. 2j+1) of qh byte l is set.
		for j := 0; j < 4; j++ {
			for k := 0; k < 32; k += 8 {
				lo, hi := nibbles(le64(q4[32*j+k:]))
				if qhOff >= 0 {
					h := le64(x[qhOff+k:])
					lo |= h >> (2 * j) & bytes01 << 4
					hi |= h >> (2*j + 1) & bytes01 << 4
				}
				put64(a[64*j+k:], lo)
				put64(a[64*j+32+k:], hi)
			}
		}

		scales8, mins := kScalesMins(x[4:16])
		var sumi int32
		for j := 0; j < 16; j++ {
			sumi += bsum(bsums, j) * mins[j/2]
		}
		var scales [16]int32
		for g := range scales {
			scales[g] = scales8[g/2]
		}

		aux := laneSums(&a, q8, &scales)
		d := float32(fp16(x[0:]) * yd)
		addLanes(&sums, d, &aux)
		dmin := float32(fp16(x[2:]) * yd)
		sumf -= float32(dmin * float32(sumi))
	}
	for _, s := range sums {
		sumf += s
	}
	return sumf
}

func dotQ4_K(w, xq []byte, n int) float32 { return dotQ4Q5_K(w, xq, n, q4_KBytes, 16, -1) }

func dotQ5_K(w, xq []byte, n int) float32 { return dotQ4Q5_K(w, xq, n, q5_KBytes, 48, 16) }

func dotQ6_K(w, xq []byte, n int) float32 {
	nb := n / qkK
	w, xq = w[:nb*q6_KBytes], xq[:nb*q8_KBytes]
	var sums [8]float32
	var a [qkK]byte
	for len(w) >= q6_KBytes && len(xq) >= q8_KBytes {
		x := (*[q6_KBytes]byte)(w)
		yd, q8, _ := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[q6_KBytes:], xq[q8_KBytes:]

		// In each half c of the block (128 values), value 128c + 32k + l
		// takes 4 low bits from ql byte 64c + l (k = 0, 2) or 64c + 32 + l
		// (k = 1, 3), the low nibble for k < 2, and 2 high bits from bits
		// 2k..2k+1 of qh byte 32c + l; the 6-bit value is stored plus 32.
		for c := 0; c < 2; c++ {
			for l := 0; l < 32; l += 8 {
				lo0, hi0 := nibbles(le64(x[64*c+l:]))
				lo1, hi1 := nibbles(le64(x[64*c+32+l:]))
				h := le64(x[128+32*c+l:])
				o := a[128*c+l:]
				put64(o[0:], sub32Bytes(lo0|h&bytes03<<4))
				put64(o[32:], sub32Bytes(lo1|h>>2&bytes03<<4))
				put64(o[64:], sub32Bytes(hi0|h>>4&bytes03<<4))
				put64(o[96:], sub32Bytes(hi1|h>>6&bytes03<<4))
			}
		}

		var scales [16]int32
		for g := range scales {
			scales[g] = int32(int8(x[192+g]))
		}

		aux := laneSums(&a, q8, &scales)
		d := float32(fp16(x[208:]) * yd)
		addLanes(&sums, d, &aux)
	}
	var sumf float32
	for _, s := range sums {
		sumf += s
	}
	return sumf
}
