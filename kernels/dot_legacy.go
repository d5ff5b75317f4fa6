package kernels

import "encoding/binary"

// Weight block layouts of the legacy formats, 32 values per block
// (little-endian; ggml-common.h):
//
//	Q4_0 (18 bytes): d fp16 | qs [16]byte            value = d*(q-8)
//	Q4_1 (20 bytes): d fp16 | m fp16 | qs [16]byte   value = d*q + m
//	Q5_0 (22 bytes): d fp16 | qh [4]byte | qs [16]byte       value = d*(q-16)
//	Q5_1 (24 bytes): d fp16 | m fp16 | qh [4]byte | qs [16]byte  value = d*q + m
//	Q8_0 (34 bytes): d fp16 | qs [32]int8            value = d*q
//
// qs byte j holds value j in its low nibble and value j+16 in its high
// nibble; for the 5-bit formats bit j of the little-endian uint32 qh is the
// fifth bit of value j. The activation side is Q8_0 (d, qs) for the
// symmetric formats and Q8_1 (d, s = d*Σq, qs) for the ones with an offset
// m, whose contribution is then m*s for the whole block.
//
// The float arithmetic is written with explicit float32 conversions, so
// that no compiler may fuse a multiply and an add (the Go spec allows
// fusion unless a conversion forbids it), and with fma32 where ggml's
// code fuses them. They round as llama.cpp's x86 SIMD code does (see
// dotQ8_0, dotQ4_0 and dotQ4_1), not as ggml's generic code.
const (
	q4_0Bytes = 18
	q4_1Bytes = 20
	q5_0Bytes = 22
	q5_1Bytes = 24
)

// fp16 reads a little-endian fp16 value.
func fp16(b []byte) float32 { return fp16Table[binary.LittleEndian.Uint16(b)] }

// The block loops below consume w and xq a block at a time and leave the
// integer work to small unrolled helpers: Go keeps their accumulators in
// registers, which a plain 32-step loop does not get (about 1.5x faster).

// sumQ4 is Σ_j ((q_j & 15) - off)·a_j + ((q_j >> 4) - off)·b_j over the 16
// bytes of a 4-bit block, a and b the activation bytes (int8) that meet
// the low and high nibbles.
func sumQ4(q, a, b *[16]byte, off int32) int32 {
	var s int32
	for j := 0; j < 16; j += 4 {
		q0, q1, q2, q3 := int32(q[j]), int32(q[j+1]), int32(q[j+2]), int32(q[j+3])
		s += ((q0&15)-off)*int32(int8(a[j])) + ((q1&15)-off)*int32(int8(a[j+1])) +
			((q2&15)-off)*int32(int8(a[j+2])) + ((q3&15)-off)*int32(int8(a[j+3])) +
			((q0>>4)-off)*int32(int8(b[j])) + ((q1>>4)-off)*int32(int8(b[j+1])) +
			((q2>>4)-off)*int32(int8(b[j+2])) + ((q3>>4)-off)*int32(int8(b[j+3]))
	}
	return s
}

// dotQ4_0 follows what llama.cpp's x86 builds run for Q4_0 weights: they
// repack them into the q4_0_8x8 layout at load time, and the repacked
// gemv (one token) and gemm (several) of arch/x86/repack.cpp sum each
// block's 32 products exactly to one integer and add it, times dw·dx, to
// the output with one fused multiply-add, block after block:
// acc = fma(float(sumi), dw·dx, acc), no horizontal sum at the end.
// ggml's scalar reference (sumf += sumi*dx*dy) rounds differently. A
// matrix whose row count is not a multiple of 8 is not repacked, and
// llama.cpp then runs tinyBLAS_Q0_AVX and ggml_vec_dot_q4_0_q8_0 on it,
// which add as dotQ8_0 does: for such (rare) matrices these kernels are
// not llama.cpp's bits (MatMulRows does not know the matrix's height).
func dotQ4_0(w, xq []byte, n int) float32 {
	nb := n / qk
	w, xq = w[:nb*q4_0Bytes], xq[:nb*q8_0Bytes]
	var acc float32
	for len(w) >= q4_0Bytes && len(xq) >= q8_0Bytes {
		x := (*[q4_0Bytes]byte)(w)
		y := (*[q8_0Bytes]byte)(xq)
		sumi := sumQ4((*[16]byte)(x[2:]), (*[16]byte)(y[2:]), (*[16]byte)(y[18:]), 8)
		d := float32(fp16(x[0:]) * fp16(y[0:]))
		acc = fma32(float32(sumi), d, acc)
		w, xq = w[q4_0Bytes:], xq[q8_0Bytes:]
	}
	return acc
}

// The other legacy formats follow llama.cpp's x86 code too
// (ggml_vec_dot_q4_1_q8_1, _q5_0_q8_0 and _q5_1_q8_1 in
// arch/x86/quants.c, and tinyBLAS_Q0_AVX for Q5_0 with several tokens,
// which adds the same way): the eight-lane scheme of dotQ8_0 on the
// blocks' values (q-16 for Q5_0, the unsigned q for Q4_1 and Q5_1), and
// for the formats with an offset m a scalar sum of m·s, one fused
// multiply-add per block (compilers contract ggml's summs += m*s), added
// after the lanes.

// lanesQ4 adds into acc, lane l, d times the exact sum of the products
// of values 4l..4l+3 of a 4-bit block (quants q, fifth bits hb: bit j of
// hb is added as 16 to value j) with activations x (32 int8), the
// values offset by off.
func lanesQ4(acc *[8]float32, d float32, q *[16]byte, hb uint32, x *[32]byte, off int32) {
	for l := range acc {
		var s int32
		for j := 4 * l; j < 4*l+4; j++ {
			v := int32(q[j%16])
			if j >= 16 {
				v >>= 4
			}
			v = v&15 | int32(hb>>j&1)<<4
			s += (v - off) * int32(int8(x[j]))
		}
		acc[l] = fma32(d, float32(s), acc[l])
	}
}

func dotQ4_1(w, xq []byte, n int) float32 {
	nb := n / qk
	w, xq = w[:nb*q4_1Bytes], xq[:nb*q8_1Bytes]
	var acc [8]float32
	var summs float32
	for len(w) >= q4_1Bytes && len(xq) >= q8_1Bytes {
		x := (*[q4_1Bytes]byte)(w)
		y := (*[q8_1Bytes]byte)(xq)
		summs = fma32(fp16(x[2:]), fp16(y[2:]), summs)
		d := float32(fp16(x[0:]) * fp16(y[0:]))
		lanesQ4(&acc, d, (*[16]byte)(x[4:]), 0, (*[32]byte)(y[4:]), 0)
		w, xq = w[q4_1Bytes:], xq[q8_1Bytes:]
	}
	return hsum8(&acc) + summs
}

func dotQ5_0(w, xq []byte, n int) float32 {
	nb := n / qk
	w, xq = w[:nb*q5_0Bytes], xq[:nb*q8_0Bytes]
	var acc [8]float32
	for len(w) >= q5_0Bytes && len(xq) >= q8_0Bytes {
		x := (*[q5_0Bytes]byte)(w)
		y := (*[q8_0Bytes]byte)(xq)
		d := float32(fp16(x[0:]) * fp16(y[0:]))
		lanesQ4(&acc, d, (*[16]byte)(x[6:]), binary.LittleEndian.Uint32(x[2:]), (*[32]byte)(y[2:]), 16)
		w, xq = w[q5_0Bytes:], xq[q8_0Bytes:]
	}
	return hsum8(&acc)
}

func dotQ5_1(w, xq []byte, n int) float32 {
	nb := n / qk
	w, xq = w[:nb*q5_1Bytes], xq[:nb*q8_1Bytes]
	var acc [8]float32
	var summs float32
	for len(w) >= q5_1Bytes && len(xq) >= q8_1Bytes {
		x := (*[q5_1Bytes]byte)(w)
		y := (*[q8_1Bytes]byte)(xq)
		summs = fma32(fp16(x[2:]), fp16(y[2:]), summs)
		d := float32(fp16(x[0:]) * fp16(y[0:]))
		lanesQ4(&acc, d, (*[16]byte)(x[8:]), binary.LittleEndian.Uint32(x[4:]), (*[32]byte)(y[4:]), 0)
		w, xq = w[q5_1Bytes:], xq[q8_1Bytes:]
	}
	return hsum8(&acc) + summs
}

// dotQ8_0 follows llama.cpp's x86 code for Q8_0 weights, which is the
// same for one token (ggml_vec_dot_q8_0_q8_0 in arch/x86/quants.c) and
// several (tinyBLAS_Q0_AVX in llamafile/sgemm.cpp): eight float32 lanes,
// lane l adding, block after block, the exact integer sum of the four
// products of values 4l..4l+3 times dw·dx with one fused multiply-add;
// then the lanes are summed pairwise as hsum8 does.
func dotQ8_0(w, xq []byte, n int) float32 {
	nb := n / qk
	w, xq = w[:nb*q8_0Bytes], xq[:nb*q8_0Bytes]
	var acc [8]float32
	for len(w) >= q8_0Bytes && len(xq) >= q8_0Bytes {
		x := (*[q8_0Bytes]byte)(w)
		y := (*[q8_0Bytes]byte)(xq)
		d := float32(fp16(x[0:]) * fp16(y[0:]))
		for l := range acc {
			a, b := x[2+4*l:6+4*l], y[2+4*l:6+4*l]
			s := int32(int8(a[0]))*int32(int8(b[0])) + int32(int8(a[1]))*int32(int8(b[1])) +
				int32(int8(a[2]))*int32(int8(b[2])) + int32(int8(a[3]))*int32(int8(b[3]))
			acc[l] = fma32(d, float32(s), acc[l])
		}
		w, xq = w[q8_0Bytes:], xq[q8_0Bytes:]
	}
	return hsum8(&acc)
}

// hsum8 adds eight float32 lanes in the order of ggml's x86 hsum_float_8
// (and of our kernels' HSUM8): the upper four lanes onto the lower four,
// then the upper two of those onto the lower two, then the two.
func hsum8(l *[8]float32) float32 {
	return float32(float32(l[0]+l[4])+float32(l[2]+l[6])) + float32(float32(l[1]+l[5])+float32(l[3]+l[7]))
}
