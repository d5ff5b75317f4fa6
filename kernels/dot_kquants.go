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
// The kernels compute exactly the float32 results of the x86 code that
// llama.cpp's AVX-512 ("zen4") build runs, not those of ggml's generic
// scalar code: for Q3_K, Q5_K and Q6_K that is ggml_vec_dot_*_q8_K's
// AVX2 branch (arch/x86/quants.c; the zen4 build has no AVX-512 branch
// for them), which keeps eight int32 lanes per super-block (lane k takes
// bytes 4k..4k+3 of every 32 values, see simdLanes), converts each lane
// to float32 and adds it, times d·x.d, into a float32 lane with one fused
// multiply-add, and adds the eight lanes at the very end as
// hsum_float_8 does. Q4_K and Q2_K weights are repacked by llama.cpp on
// AVX2/AVX-512 CPUs and multiplied by the gemv (one token) and gemm
// (groups of four tokens) kernels of arch/x86/repack.cpp, which round in
// yet other places: see dotQ4_K and dotQ4_KBatch. Integer sums are exact
// everywhere, so only where the float32 roundings happen has to match;
// fma32 gives the single rounding of VFMADD.
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

// simdLanes returns the eight int32 lanes ggml's AVX2 k-quant kernels
// keep for one super-block: VPMADDUBSW and VPMADDWD turn each 32 values
// (chunk c) into eight lanes, lane k taking the products of bytes
// 4k..4k+3 times the scale of their group of 16 (sc[c][0] for k < 4,
// sc[c][1] for k >= 4), and the chunks' lanes are added. a holds the
// weight quants as int8 values, q8 the activation's.
func simdLanes(a, q8 *[qkK]byte, sc *[8][2]int32) (lanes [8]int32) {
	for c := 0; c < 8; c++ {
		x := (*[32]byte)(a[32*c:])
		y := (*[32]byte)(q8[32*c:])
		for k := 0; k < 8; k++ {
			i := 4 * k
			s := int32(int8(x[i]))*int32(int8(y[i])) + int32(int8(x[i+1]))*int32(int8(y[i+1])) +
				int32(int8(x[i+2]))*int32(int8(y[i+2])) + int32(int8(x[i+3]))*int32(int8(y[i+3]))
			lanes[k] += sc[c][k>>2] * s
		}
	}
	return lanes
}

// chunkDot is Σ a_i·q8_i over the 32 values of chunk c (int8 values).
func chunkDot(a, q8 *[qkK]byte, c int) int32 {
	x := (*[32]byte)(a[32*c:])
	y := (*[32]byte)(q8[32*c:])
	var s int32
	for i := 0; i < 32; i += 4 {
		s += int32(int8(x[i]))*int32(int8(y[i])) + int32(int8(x[i+1]))*int32(int8(y[i+1])) +
			int32(int8(x[i+2]))*int32(int8(y[i+2])) + int32(int8(x[i+3]))*int32(int8(y[i+3]))
	}
	return s
}

// fmaLanes does acc[k] = d·lanes[k] + acc[k] with one rounding, as
// _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(lanes), acc) does.
func fmaLanes(acc *[8]float32, d float32, lanes *[8]int32) {
	for k := range acc {
		acc[k] = fma32(d, float32(lanes[k]), acc[k])
	}
}

// unpackQ2_K writes the 2-bit quants of a Q2_K block (0..3) into a.
// Value 128c + 32j + l is bits 2j..2j+1 of qs byte 32c + l.
func unpackQ2_K(x *[q2_KBytes]byte, a *[qkK]byte) {
	q2 := (*[64]byte)(x[16:])
	for c := 0; c < 2; c++ {
		for j := 0; j < 4; j++ {
			for k := 0; k < 32; k += 8 {
				put64(a[128*c+32*j+k:], le64(q2[32*c+k:])>>(2*j)&bytes03)
			}
		}
	}
}

// q2KSums returns, for the values [lo, hi) of a Q2_K super-block (whole
// groups of 16), the exact integer sums of the scaled quants and of the
// mins times the groups' activation sums.
func q2KSums(x *[q2_KBytes]byte, a, q8 *[qkK]byte, bsums *[32]byte, lo, hi int) (isum, imin int32) {
	for g := lo / 16; g < hi/16; g++ {
		isum += int32(x[g]&0x0f) * groupDot((*[16]byte)(a[16*g:]), (*[16]byte)(q8[16*g:]))
		imin += int32(x[g]>>4) * bsum(bsums, g)
	}
	return isum, imin
}

// groupDot is Σ a_i·b_i over 16 int8 pairs.
func groupDot(a, b *[16]byte) int32 {
	var s int32
	for i := 0; i < 16; i++ {
		s += int32(int8(a[i])) * int32(int8(b[i]))
	}
	return s
}

// dotQ2_K follows ggml_gemv_q2_K_8x8_q8_K (arch/x86/repack.cpp), which
// llama.cpp's AVX-512 builds run for one token on Q2_K weights (repacked
// eight rows at a time), in the way dotQ4_K follows the Q4_K gemv: per
// super-block, the exact integer sums of the scaled quants and of the
// mins times the groups' activation sums are each fused, times d·x.d and
// dmin·x.d, into one accumulator; the result is the first minus the
// second. (AVX2-only CPUs run ggml_vec_dot_q2_K_q8_K instead, which
// rounds in eight lanes.)
func dotQ2_K(w, xq []byte, n int) float32 {
	return dotQ2_KSteps(w, xq, n, qkK)
}

// dotQ2_KBatch follows ggml_gemm_q2_K_8x8_q8_K, which llama.cpp's
// AVX-512 builds run on Q2_K weights for the tokens of a batch that fill
// groups of four: as dotQ2_K, with one fused multiply-add per 128 values.
func dotQ2_KBatch(w, xq []byte, n int) float32 {
	return dotQ2_KSteps(w, xq, n, qkK/2)
}

// dotQ2_KSteps is dotQ2_K with one fused multiply-add per step values.
func dotQ2_KSteps(w, xq []byte, n, step int) float32 {
	nb := n / qkK
	w, xq = w[:nb*q2_KBytes], xq[:nb*q8_KBytes]
	var acc, accMin float32
	var a [qkK]byte
	for len(w) >= q2_KBytes && len(xq) >= q8_KBytes {
		x := (*[q2_KBytes]byte)(w)
		yd, q8, bsums := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[q2_KBytes:], xq[q8_KBytes:]
		unpackQ2_K(x, &a)
		d := float32(fp16(x[80:]) * yd)
		dmin := float32(fp16(x[82:]) * yd)
		for lo := 0; lo < qkK; lo += step {
			isum, imin := q2KSums(x, &a, q8, bsums, lo, lo+step)
			acc = fma32(float32(isum), d, acc)
			accMin = fma32(float32(imin), dmin, accMin)
		}
	}
	return acc - accMin
}

// q3KScales unpacks the sixteen 6-bit scales of a Q3_K block (stored
// plus 32): low 4 bits in bytes 0..7 (two per byte), high 2 bits in
// bytes 8..11 (four per byte).
func q3KScales(b []byte) (scales [16]int32) {
	const kmask1, kmask2 = 0x03030303, 0x0f0f0f0f
	a0 := binary.LittleEndian.Uint32(b[0:])
	a1 := binary.LittleEndian.Uint32(b[4:])
	tmp := binary.LittleEndian.Uint32(b[8:])
	packed := [4]uint32{
		a0&kmask2 | (tmp>>0&kmask1)<<4,
		a1&kmask2 | (tmp>>2&kmask1)<<4,
		a0>>4&kmask2 | (tmp>>4&kmask1)<<4,
		a1>>4&kmask2 | (tmp>>6&kmask1)<<4,
	}
	for j := range scales {
		scales[j] = int32(int8(packed[j/4]>>(8*(j%4)))) - 32
	}
	return scales
}

// dotQ3_K follows ggml_vec_dot_q3_K_q8_K's AVX2 branch: the quants are
// taken as signed values (-4..3), so the lanes need no correction.
func dotQ3_K(w, xq []byte, n int) float32 {
	nb := n / qkK
	w, xq = w[:nb*q3_KBytes], xq[:nb*q8_KBytes]
	var acc [8]float32
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
		scales := q3KScales(x[96:108])
		var sc [8][2]int32
		for c := range sc {
			sc[c] = [2]int32{scales[2*c], scales[2*c+1]}
		}
		lanes := simdLanes(&a, q8, &sc)
		fmaLanes(&acc, float32(yd*fp16(x[108:])), &lanes)
	}
	return hsum8(&acc)
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

// unpackQ4Q5_K writes the quants of a Q4_K (qhOff < 0) or Q5_K block
// into a. Value 64j + l (l < 32) is the low nibble of qs byte 32j + l,
// value 64j + 32 + l its high nibble; Q5_K adds 16 when bit 2j (resp.
// 2j+1) of qh byte l is set.
func unpackQ4Q5_K(x []byte, qsOff, qhOff int, a *[qkK]byte) {
	q4 := (*[128]byte)(x[qsOff:])
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
}

// groupPairSum is bsum_2j + bsum_2j+1, the sum of the 32 activations of
// sub-block j (what _mm_hadd_epi16 makes of the group sums).
func groupPairSum(bsums *[32]byte, j int) int32 { return bsum(bsums, 2*j) + bsum(bsums, 2*j+1) }

// dotQ4_K follows ggml_gemv_q4_K_8x8_q8_K (arch/x86/repack.cpp, AVX2
// branch), which llama.cpp's x86 builds run for one token on Q4_K
// weights (repacked eight rows at a time): per super-block, the exact
// integer sums of the scaled quants and of the mins times the
// sub-blocks' activation sums are each fused, times d·x.d and
// dmin·x.d, into one float32 accumulator; the result is the first
// accumulator minus the second.
func dotQ4_K(w, xq []byte, n int) float32 {
	nb := n / qkK
	w, xq = w[:nb*q4_KBytes], xq[:nb*q8_KBytes]
	var acc, accMin float32
	var a [qkK]byte
	for len(w) >= q4_KBytes && len(xq) >= q8_KBytes {
		x := w[:q4_KBytes]
		yd, q8, bsums := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[q4_KBytes:], xq[q8_KBytes:]
		unpackQ4Q5_K(x, 16, -1, &a)
		scales, mins := kScalesMins(x[4:16])
		var isum, imin int32
		for c := 0; c < 8; c++ {
			isum += scales[c] * chunkDot(&a, q8, c)
			imin += mins[c] * groupPairSum(bsums, c)
		}
		acc = fma32(float32(isum), float32(fp16(x[0:])*yd), acc)
		accMin = fma32(float32(imin), float32(fp16(x[2:])*yd), accMin)
	}
	return acc - accMin
}

// dotQ4_KBatch follows ggml_gemm_q4_K_8x8_q8_K (AVX-512 and AVX2
// branches alike), which llama.cpp runs on Q4_K weights for the tokens
// of a batch that fill groups of four: as dotQ4_K, but the two
// accumulators take one fused multiply-add per 64 values (two
// sub-blocks) rather than per super-block.
func dotQ4_KBatch(w, xq []byte, n int) float32 {
	nb := n / qkK
	w, xq = w[:nb*q4_KBytes], xq[:nb*q8_KBytes]
	var acc, accMin float32
	var a [qkK]byte
	for len(w) >= q4_KBytes && len(xq) >= q8_KBytes {
		x := w[:q4_KBytes]
		yd, q8, bsums := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[q4_KBytes:], xq[q8_KBytes:]
		unpackQ4Q5_K(x, 16, -1, &a)
		scales, mins := kScalesMins(x[4:16])
		d := float32(fp16(x[0:]) * yd)
		dmin := float32(fp16(x[2:]) * yd)
		for sb := 0; sb < 4; sb++ {
			isum := scales[2*sb]*chunkDot(&a, q8, 2*sb) + scales[2*sb+1]*chunkDot(&a, q8, 2*sb+1)
			imin := mins[2*sb]*groupPairSum(bsums, 2*sb) + mins[2*sb+1]*groupPairSum(bsums, 2*sb+1)
			acc = fma32(float32(isum), d, acc)
			accMin = fma32(float32(imin), dmin, accMin)
		}
	}
	return acc - accMin
}

// dotQ5_K follows ggml_vec_dot_q5_K_q8_K's AVX2 branch: the quants
// (0..31) in eight lanes as simdLanes, each 32 values with their one
// scale; the mins' exact integer sum, times -dmin·x.d, is fused into a
// scalar float32 sum, added to the lanes' sum at the very end.
func dotQ5_K(w, xq []byte, n int) float32 {
	nb := n / qkK
	w, xq = w[:nb*q5_KBytes], xq[:nb*q8_KBytes]
	var acc [8]float32
	var summs float32
	var a [qkK]byte
	for len(w) >= q5_KBytes && len(xq) >= q8_KBytes {
		x := w[:q5_KBytes]
		yd, q8, bsums := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[q5_KBytes:], xq[q8_KBytes:]
		scales, mins := kScalesMins(x[4:16])
		var imin int32
		for c := 0; c < 8; c++ {
			imin += mins[c] * groupPairSum(bsums, c)
		}
		summs = q5KMins(float32(-yd*fp16(x[2:])), imin, summs)
		unpackQ4Q5_K(x, 48, 16, &a)
		var sc [8][2]int32
		for c := range sc {
			sc[c] = [2]int32{scales[c], scales[c]}
		}
		lanes := simdLanes(&a, q8, &sc)
		fmaLanes(&acc, float32(yd*fp16(x[0:])), &lanes)
	}
	return hsum8(&acc) + summs
}

// q5KMins is ggml's summs += dmin * (float)imin, which the compiler of
// llama.cpp's x86 builds contracts into one fused multiply-add (the
// unfused sum differs from the library's results; the cross-check shows
// it).
func q5KMins(dmin float32, imin int32, summs float32) float32 {
	return fma32(dmin, float32(imin), summs)
}

// dotQ6_K follows ggml_vec_dot_q6_K_q8_K's AVX2 branch: the quants are
// taken unsigned (0..63) into the lanes, and lane k then loses
// 32·(scale_2k·bsum_2k + scale_2k+1·bsum_2k+1), the stored offset of 32
// taken off through the activation's group sums.
func dotQ6_K(w, xq []byte, n int) float32 {
	nb := n / qkK
	w, xq = w[:nb*q6_KBytes], xq[:nb*q8_KBytes]
	var acc [8]float32
	var a [qkK]byte
	for len(w) >= q6_KBytes && len(xq) >= q8_KBytes {
		x := (*[q6_KBytes]byte)(w)
		yd, q8, bsums := q8K((*[q8_KBytes]byte)(xq))
		w, xq = w[q6_KBytes:], xq[q8_KBytes:]

		// In each half c of the block (128 values), value 128c + 32k + l
		// takes 4 low bits from ql byte 64c + l (k = 0, 2) or 64c + 32 + l
		// (k = 1, 3), the low nibble for k < 2, and 2 high bits from bits
		// 2k..2k+1 of qh byte 32c + l.
		for c := 0; c < 2; c++ {
			for l := 0; l < 32; l += 8 {
				lo0, hi0 := nibbles(le64(x[64*c+l:]))
				lo1, hi1 := nibbles(le64(x[64*c+32+l:]))
				h := le64(x[128+32*c+l:])
				o := a[128*c+l:]
				put64(o[0:], lo0|h&bytes03<<4)
				put64(o[32:], lo1|h>>2&bytes03<<4)
				put64(o[64:], hi0|h>>4&bytes03<<4)
				put64(o[96:], hi1|h>>6&bytes03<<4)
			}
		}

		var scales [16]int32
		for g := range scales {
			scales[g] = int32(int8(x[192+g]))
		}
		var sc [8][2]int32
		for c := range sc {
			sc[c] = [2]int32{scales[2*c], scales[2*c+1]}
		}
		lanes := simdLanes(&a, q8, &sc)
		for k := range lanes {
			lanes[k] -= 32 * (scales[2*k]*bsum(bsums, 2*k) + scales[2*k+1]*bsum(bsums, 2*k+1))
		}
		fmaLanes(&acc, float32(yd*fp16(x[208:])), &lanes)
	}
	return hsum8(&acc)
}
