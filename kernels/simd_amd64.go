//go:build amd64

package kernels

import (
	"golang.org/x/sys/cpu"

	"llamago/tensor"
)

// The x86-64 kernels are written in Go assembly (the *_amd64.s files), so
// that a plain go build gives them. There are three sets, each needing the
// CPU features of the one before it plus its own:
//
//	avx2        AVX2, FMA and F16C (Haswell, Zen 1 and later)
//	avx512      AVX-512 F, BW, DQ and VL (Skylake-X, Zen 4)
//	avx512vnni  AVX-512 VNNI: VPDPBUSD multiplies and sums four byte pairs
//	            into a 32-bit lane in one instruction (Ice Lake, Zen 4)
//
// A set keeps the kernels of the set below it (ultimately the portable
// ones) for the types it does not speed up. AVX-VNNI (the VEX form of
// VPDPBUSD on CPUs without AVX-512) has no set: the Go assembler only
// encodes the EVEX form.
//
// Integer sums are exact in every kernel, as in the portable code; only the
// order in which the float32 scale products are added differs, so results
// agree with Portable() to float32 rounding of Σ|w·x|, not bit for bit.
//
// The assembly functions take the rows as pointers and a count of blocks
// (or elements for the float types); the Go wrappers below slice the rows
// to the length they read first, so a short slice panics in Go rather than
// being read past its end.

func archSets() []*Set {
	x := cpu.X86
	hasAVX2 := x.HasAVX2 && x.HasFMA && x.HasF16C
	hasAVX512 := hasAVX2 && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL
	hasVNNI := hasAVX512 && x.HasAVX512VNNI
	var sets []*Set
	if !hasAVX2 {
		return nil
	}
	avx2 := derive("avx2", portable, map[tensor.Type]RowDot{
		tensor.F32:  dotF32AVX2Row,
		tensor.F16:  dotF16AVX2Row,
		tensor.BF16: dotBF16AVX2Row,
		tensor.Q8_0: dotQ8_0AVX2Row,
		tensor.Q4_0: dotQ4_0AVX2Row,
		tensor.Q4_1: dotQ4_1AVX2Row,
		tensor.Q5_0: dotQ5_0AVX2Row,
		tensor.Q5_1: dotQ5_1AVX2Row,
		tensor.Q2_K: dotQ2_KAVX2Row,
		tensor.Q3_K: dotQ3_KAVX2Row,
		tensor.Q4_K: dotQ4_KAVX2Row,
		tensor.Q5_K: dotQ5_KAVX2Row,
		tensor.Q6_K: dotQ6_KAVX2Row,
	}, map[tensor.Type]rowDot4{
		tensor.Q4_0: dot4Q4_0AVX2Rows,
	})
	sets = append(sets, avx2)
	if hasAVX512 {
		avx512 := derive("avx512", avx2, map[tensor.Type]RowDot{
			tensor.F32:  dotF32AVX512Row,
			tensor.BF16: dotBF16AVX512Row,
		}, nil)
		sets = append([]*Set{avx512}, sets...)
		if hasVNNI {
			vnni := derive("avx512vnni", avx512, map[tensor.Type]RowDot{
				tensor.Q8_0: dotQ8_0VNNIRow,
				tensor.Q4_0: dotQ4_0VNNIRow,
			}, map[tensor.Type]rowDot4{
				tensor.Q4_0: dot4Q4_0VNNIRows,
			})
			sets = append([]*Set{vnni}, sets...)
		}
	}
	return sets
}

// Float kernels: n elements of 4 (F32) or 2 (F16, BF16) bytes.

//go:noescape
func dotF32AVX2(w, x *byte, n int) float32

//go:noescape
func dotF16AVX2(w, x *byte, n int) float32

//go:noescape
func dotBF16AVX2(w, x *byte, n int) float32

//go:noescape
func dotF32AVX512(w, x *byte, n int) float32

//go:noescape
func dotF16AVX512(w, x *byte, n int) float32

//go:noescape
func dotBF16AVX512(w, x *byte, n int) float32

func dotF32AVX2Row(w, xq []byte, n int) float32 {
	if n <= 0 {
		return 0
	}
	w, xq = w[:4*n], xq[:4*n]
	return dotF32AVX2(&w[0], &xq[0], n)
}

func dotF16AVX2Row(w, xq []byte, n int) float32 {
	if n <= 0 {
		return 0
	}
	w, xq = w[:2*n], xq[:2*n]
	return dotF16AVX2(&w[0], &xq[0], n)
}

func dotBF16AVX2Row(w, xq []byte, n int) float32 {
	if n <= 0 {
		return 0
	}
	w, xq = w[:2*n], xq[:2*n]
	return dotBF16AVX2(&w[0], &xq[0], n)
}

func dotF32AVX512Row(w, xq []byte, n int) float32 {
	if n <= 0 {
		return 0
	}
	w, xq = w[:4*n], xq[:4*n]
	return dotF32AVX512(&w[0], &xq[0], n)
}

func dotF16AVX512Row(w, xq []byte, n int) float32 {
	if n <= 0 {
		return 0
	}
	w, xq = w[:2*n], xq[:2*n]
	return dotF16AVX512(&w[0], &xq[0], n)
}

func dotBF16AVX512Row(w, xq []byte, n int) float32 {
	if n <= 0 {
		return 0
	}
	w, xq = w[:2*n], xq[:2*n]
	return dotBF16AVX512(&w[0], &xq[0], n)
}

// Legacy block formats: nb blocks of 32 values.

//go:noescape
func dotQ8_0AVX2(w, x *byte, nb int, tab *float32) float32

//go:noescape
func dotQ8_0VNNI(w, x *byte, nb int, tab *float32) float32

//go:noescape
func dotQ4_0AVX2(w, x *byte, nb int, tab *float32) float32

//go:noescape
func dotQ4_0VNNI(w, x *byte, nb int, tab *float32) float32

func dotQ8_0AVX2Row(w, xq []byte, n int) float32 {
	nb := n / qk
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q8_0Bytes], xq[:nb*q8_0Bytes]
	return dotQ8_0AVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

func dotQ8_0VNNIRow(w, xq []byte, n int) float32 {
	nb := n / qk
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q8_0Bytes], xq[:nb*q8_0Bytes]
	return dotQ8_0VNNI(&w[0], &xq[0], nb, &fp16Table[0])
}

func dotQ4_0AVX2Row(w, xq []byte, n int) float32 {
	nb := n / qk
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q4_0Bytes], xq[:nb*q8_0Bytes]
	return dotQ4_0AVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

//go:noescape
func dot4Q4_0AVX2(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)

//go:noescape
func dot4Q4_0VNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)

// rows4 slices w to the four rows of wLen bytes a four-row kernel reads
// and xq to the activation row, so that a short slice panics here.
func rows4(w []byte, rowBytes, wLen int, xq []byte, xLen int) ([]byte, []byte) {
	return w[:3*rowBytes+wLen], xq[:xLen]
}

func dot4Q4_0AVX2Rows(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	nb := n / qk
	if nb <= 0 {
		clear(out[:4])
		return
	}
	w, xq = rows4(w, rowBytes, nb*q4_0Bytes, xq, nb*q8_0Bytes)
	dot4Q4_0AVX2(&w[0], rowBytes, &xq[0], nb, &fp16Table[0], (*[4]float32)(out))
}

func dot4Q4_0VNNIRows(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	nb := n / qk
	if nb <= 0 {
		clear(out[:4])
		return
	}
	w, xq = rows4(w, rowBytes, nb*q4_0Bytes, xq, nb*q8_0Bytes)
	dot4Q4_0VNNI(&w[0], rowBytes, &xq[0], nb, &fp16Table[0], (*[4]float32)(out))
}

func dotQ4_0VNNIRow(w, xq []byte, n int) float32 {
	nb := n / qk
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q4_0Bytes], xq[:nb*q8_0Bytes]
	return dotQ4_0VNNI(&w[0], &xq[0], nb, &fp16Table[0])
}

// k-quants: nb super-blocks of 256 values.

//go:noescape
func dotQ4_KAVX2(w, x *byte, nb int, tab *float32) float32

//go:noescape
func dotQ6_KAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ4_KAVX2Row(w, xq []byte, n int) float32 {
	nb := n / qkK
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q4_KBytes], xq[:nb*q8_KBytes]
	return dotQ4_KAVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

func dotQ6_KAVX2Row(w, xq []byte, n int) float32 {
	nb := n / qkK
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q6_KBytes], xq[:nb*q8_KBytes]
	return dotQ6_KAVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

//go:noescape
func dotQ5_KAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ5_KAVX2Row(w, xq []byte, n int) float32 {
	nb := n / qkK
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q5_KBytes], xq[:nb*q8_KBytes]
	return dotQ5_KAVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

//go:noescape
func dotQ2_KAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ2_KAVX2Row(w, xq []byte, n int) float32 {
	nb := n / qkK
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q2_KBytes], xq[:nb*q8_KBytes]
	return dotQ2_KAVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

//go:noescape
func dotQ3_KAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ3_KAVX2Row(w, xq []byte, n int) float32 {
	nb := n / qkK
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q3_KBytes], xq[:nb*q8_KBytes]
	return dotQ3_KAVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

//go:noescape
func dotQ4_1AVX2(w, x *byte, nb int, tab *float32) float32

func dotQ4_1AVX2Row(w, xq []byte, n int) float32 {
	nb := n / qk
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q4_1Bytes], xq[:nb*q8_1Bytes]
	return dotQ4_1AVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

//go:noescape
func dotQ5_0AVX2(w, x *byte, nb int, tab *float32) float32

func dotQ5_0AVX2Row(w, xq []byte, n int) float32 {
	nb := n / qk
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q5_0Bytes], xq[:nb*q8_0Bytes]
	return dotQ5_0AVX2(&w[0], &xq[0], nb, &fp16Table[0])
}

//go:noescape
func dotQ5_1AVX2(w, x *byte, nb int, tab *float32) float32

func dotQ5_1AVX2Row(w, xq []byte, n int) float32 {
	nb := n / qk
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*q5_1Bytes], xq[:nb*q8_1Bytes]
	return dotQ5_1AVX2(&w[0], &xq[0], nb, &fp16Table[0])
}
