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
//	avx2        AVX2, FMA and F16C (Haswell, Zen 1 and later): a kernel
//	            for every weight type (F32 and F16 in both of ggml's
//	            orders, dot_float.go), four-row F32, F16, Q4_0 and Q8_0
//	            kernels, 2×2 F32, F16 and Q8_0 tiles (tiles.go), one-row
//	            Q4_K and Q2_K kernels in ggml's gemm order (batch), and the
//	            Q8_0, Q8_K and F16 activation quantizers
//	avx512      AVX-512 F, BW, DQ and VL (Skylake-X, Zen 4): the
//	            tiles that need its 32 vector registers: F32 and F16
//	            (4×4, tinyBLAS's order), Q4_K, Q5_K and Q6_K (2×4); with
//	            AVX512_BF16 also BF16 (one-row and 4×4, VDPBF16PS, as
//	            ggml's zen4 build computes)
//	avx512vnni  AVX-512 VNNI (Ice Lake, Zen 4): Q8_0 and Q4_0 (one- and
//	            four-row, eight-row Q4_0, a Q8_0 8×4 tile in 512-bit registers
//	            and a Q4_0 8×8 tile) with
//	            VPDPBUSD, which multiplies and sums four byte pairs into a
//	            32-bit lane in one instruction; Q4_K 8×4 tiles and
//	            eight-row kernels with one lane per weight row
//	            (tiles_q4_k_vnni_amd64.s), a one-row Q4_K kernel and its
//	            one-token span over a worker's rows (two rows at a time), and
//	            Q5_K and Q6_K 2×4 tiles with VPDPWSSD (int16 pairs times
//	            scales, added in one instruction)
//
// A set keeps the kernels of the set below it (ultimately the portable
// ones) for the types it does not speed up. AVX-VNNI (the VEX form of
// VPDPBUSD on CPUs without AVX-512) has no set: the Go assembler only
// encodes the EVEX form, and no machine here has it to test on.
//
// Integer sums are exact in every kernel, as in the portable code, and
// every kernel rounds in the portable kernels' order (that of llama.cpp's
// x86 code) and gives their bits.
// Within a set, the one-row, four-row and tile kernels of a type give the
// same bits (tiles.go says why that matters).
// The quantizers write exactly the portable bytes. Two assumptions hold
// for every activation row QuantizeRow writes, but not for arbitrary
// bytes: Q8_0 quants lie in [-127, 127] (the Q8_0 kernels move the
// weight's sign onto the activation, and -(-128) overflows), and a Q8_K
// block's group sums match its quants (the k-quant kernels take mins and
// constant offsets through them, as ggml's and the portable ones do).
//
// The assembly functions take the rows as pointers and a count of blocks
// (or elements for the float types); the Go wrappers below slice the rows
// to the length they read first, so a short slice panics in Go rather than
// being read past its end. The fp16 scales are converted through the
// portable code's fp16Table, whose address the kernels get as tab.

// archSets returns the sets this CPU can run, fastest first.
func archSets() []*Set {
	x := cpu.X86
	hasAVX2 := x.HasAVX2 && x.HasFMA && x.HasF16C
	hasAVX512 := hasAVX2 && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL
	hasVNNI := hasAVX512 && x.HasAVX512VNNI
	if !hasAVX2 {
		return nil
	}
	avx2 := derive("avx2", portable, map[tensor.Type]RowDot{
		tensor.F32:  dotF32AVX2Row,
		tensor.F16:  dotF16AVX2Row,
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
		tensor.F32:  dot4F32AVX2Rows,
		tensor.F16:  dot4F16AVX2Rows,
		tensor.Q4_0: dot4Q4_0AVX2Rows,
		tensor.Q8_0: dot4Q8_0AVX2Rows,
	}, map[tensor.Type]tileKernel{
		tensor.F32:  {f: tileF32AVX2, rows: 2, toks: 2, order: dotF32TiledAVX2Row, orderStep: tiledStep},
		tensor.F16:  {f: tileF16AVX2, rows: 2, toks: 2, order: dotF16TiledAVX2Row, orderStep: tiledStep},
		tensor.Q8_0: quantTile(tile2x2Q8_0AVX2, blockTileShape{2, 2, qk, q8_0Bytes, q8_0Bytes}),
		tensor.Q4_0: quantTile(tile8x4Q4_0AVX2, blockTileShape{8, 4, qk, q4_0Bytes, q8_0Bytes}),
		tensor.Q4_K: quantTile(tile2x4Q4_KAVX2, blockTileShape{2, 4, qkK, q4_KBytes, q8_KBytes}),
	})
	avx2.batch[tensor.Q2_K] = dotQ2_KBatchAVX2Row
	avx2.batch[tensor.Q4_K] = dotQ4_KBatchAVX2Row
	avx2.quant[tensor.Q8_0] = quantizeQ8_0AVX2Row
	avx2.quant[tensor.Q8_K] = quantizeQ8_KAVX2Row
	avx2.quant[tensor.F16] = quantizeF16AVX2Row
	if !hasAVX512 {
		return []*Set{avx2}
	}
	avx512Dots, avx512Tiles := map[tensor.Type]RowDot{}, map[tensor.Type]tileKernel{
		tensor.F16:  {f: tileF16AVX512, rows: 4, toks: 4, order: dotF16TiledAVX2Row, orderStep: tiledStep},
		tensor.F32:  {f: tileF32AVX512, rows: 4, toks: 4, order: dotF32TiledAVX2Row, orderStep: tiledStep},
		tensor.Q4_K: quantTile(tile2x4Q4_KAVX512, blockTileShape{2, 4, qkK, q4_KBytes, q8_KBytes}),
		tensor.Q5_K: quantTile(tile2x4Q5_KAVX512, blockTileShape{2, 4, qkK, q5_KBytes, q8_KBytes}),
		tensor.Q6_K: quantTile(tile2x4Q6_KAVX512, blockTileShape{2, 4, qkK, q6_KBytes, q8_KBytes}),
	}
	if x.HasAVX512BF16 {
		// VDPBF16PS itself, as ggml's zen4 build uses it; without it
		// BF16 stays portable (which emulates it).
		avx512Dots[tensor.BF16] = dotBF16AVX512Row
		avx512Tiles[tensor.BF16] = tileKernel{f: tileBF16AVX512, rows: 4, toks: 4, order: dotBF16TiledAVX512Row, orderStep: bf16TiledStep}
	}
	avx512 := derive("avx512", avx2, avx512Dots, nil, avx512Tiles)
	if !hasVNNI {
		return []*Set{avx512, avx2}
	}
	vnni := derive("avx512vnni", avx512, map[tensor.Type]RowDot{
		tensor.Q4_K: dotQ4_KVNNIRow,
		tensor.Q8_0: dotQ8_0VNNIRow,
		tensor.Q4_0: dotQ4_0VNNIRow,
	}, map[tensor.Type]rowDot4{
		tensor.Q4_0: dot4Q4_0VNNIRows,
		tensor.Q8_0: dot4Q8_0VNNIRows,
	}, map[tensor.Type]tileKernel{
		tensor.Q4_0: quantTile(tile8x8Q4_0VNNI, blockTileShape{8, 8, qk, q4_0Bytes, q8_0Bytes}),
		tensor.Q4_K: quantTile(tile8x4Q4_KVNNI, blockTileShape{8, 4, qkK, q4_KBytes, q8_KBytes}),
		tensor.Q5_K: quantTile(tile2x4Q5_KVNNI, blockTileShape{2, 4, qkK, q5_KBytes, q8_KBytes}),
		tensor.Q6_K: quantTile(tile2x4Q6_KVNNI, blockTileShape{2, 4, qkK, q6_KBytes, q8_KBytes}),
		tensor.Q8_0: quantTile(tile8x4Q8_0VNNI, blockTileShape{8, 4, qk, q8_0Bytes, q8_0Bytes}),
	})
	vnni.dot8[tensor.Q4_0] = dot8Q4_0VNNIRows
	vnni.rows8[tensor.Q4_K] = rows8Q4_KVNNI
	vnni.span8[tensor.Q4_0] = dot8SpanQ4_0VNNIRows
	vnni.span[tensor.Q4_K] = spanQ4_KVNNIRows
	return []*Set{vnni, avx512, avx2}
}

// blockDotKernel is the signature of the one-row assembly dot products
// over quantized blocks, with the fp16 table for the block scales.
type blockDotKernel func(w, x *byte, nb int, tab *float32) float32

// blockDot runs k over the whole blocks of an n-value row, after bounding
// both slices to the bytes the kernel reads.
func blockDot(k blockDotKernel, blockSize, wBlockBytes, xBlockBytes int, w, xq []byte, n int) float32 {
	nb := n / blockSize
	if nb <= 0 {
		return 0
	}
	w, xq = w[:nb*wBlockBytes], xq[:nb*xBlockBytes]
	return k(&w[0], &xq[0], nb, &fp16Table[0])
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
	return blockDot(dotQ8_0AVX2, qk, q8_0Bytes, q8_0Bytes, w, xq, n)
}

func dotQ8_0VNNIRow(w, xq []byte, n int) float32 {
	return blockDot(dotQ8_0VNNI, qk, q8_0Bytes, q8_0Bytes, w, xq, n)
}

func dotQ4_0AVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ4_0AVX2, qk, q4_0Bytes, q8_0Bytes, w, xq, n)
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

//go:noescape
func dot4Q8_0AVX2(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)

//go:noescape
func dot4Q8_0VNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[4]float32)

func dot4Q8_0AVX2Rows(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	nb := n / qk
	if nb <= 0 {
		clear(out[:4])
		return
	}
	w, xq = rows4(w, rowBytes, nb*q8_0Bytes, xq, nb*q8_0Bytes)
	dot4Q8_0AVX2(&w[0], rowBytes, &xq[0], nb, &fp16Table[0], (*[4]float32)(out))
}

func dot4Q8_0VNNIRows(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	nb := n / qk
	if nb <= 0 {
		clear(out[:4])
		return
	}
	w, xq = rows4(w, rowBytes, nb*q8_0Bytes, xq, nb*q8_0Bytes)
	dot4Q8_0VNNI(&w[0], rowBytes, &xq[0], nb, &fp16Table[0], (*[4]float32)(out))
}

func dotQ4_0VNNIRow(w, xq []byte, n int) float32 {
	return blockDot(dotQ4_0VNNI, qk, q4_0Bytes, q8_0Bytes, w, xq, n)
}

// k-quants: nb super-blocks of 256 values.

//go:noescape
func dotQ4_KAVX2(w, x *byte, nb int, tab *float32) float32

//go:noescape
func dotQ6_KAVX2(w, x *byte, nb int, tab *float32) float32

//go:noescape
func dotQ4_KVNNI(w, x *byte, nb int, tab *float32) float32

func dotQ4_KVNNIRow(w, xq []byte, n int) float32 {
	return blockDot(dotQ4_KVNNI, qkK, q4_KBytes, q8_KBytes, w, xq, n)
}

//go:noescape
func dotQ2_KBatchAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ2_KBatchAVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ2_KBatchAVX2, qkK, q2_KBytes, q8_KBytes, w, xq, n)
}

func dotQ4_KAVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ4_KAVX2, qkK, q4_KBytes, q8_KBytes, w, xq, n)
}

//go:noescape
func dotQ4_KBatchAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ4_KBatchAVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ4_KBatchAVX2, qkK, q4_KBytes, q8_KBytes, w, xq, n)
}

func dotQ6_KAVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ6_KAVX2, qkK, q6_KBytes, q8_KBytes, w, xq, n)
}

//go:noescape
func dotQ5_KAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ5_KAVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ5_KAVX2, qkK, q5_KBytes, q8_KBytes, w, xq, n)
}

//go:noescape
func dotQ2_KAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ2_KAVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ2_KAVX2, qkK, q2_KBytes, q8_KBytes, w, xq, n)
}

//go:noescape
func dotQ3_KAVX2(w, x *byte, nb int, tab *float32) float32

func dotQ3_KAVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ3_KAVX2, qkK, q3_KBytes, q8_KBytes, w, xq, n)
}

//go:noescape
func dotQ4_1AVX2(w, x *byte, nb int, tab *float32) float32

func dotQ4_1AVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ4_1AVX2, qk, q4_1Bytes, q8_1Bytes, w, xq, n)
}

//go:noescape
func dotQ5_0AVX2(w, x *byte, nb int, tab *float32) float32

func dotQ5_0AVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ5_0AVX2, qk, q5_0Bytes, q8_0Bytes, w, xq, n)
}

//go:noescape
func dotQ5_1AVX2(w, x *byte, nb int, tab *float32) float32

func dotQ5_1AVX2Row(w, xq []byte, n int) float32 {
	return blockDot(dotQ5_1AVX2, qk, q5_1Bytes, q8_1Bytes, w, xq, n)
}

// Activation quantizers: the assembly stops at a block it leaves to the
// portable code (non-finite values, or a scale whose inverse overflows).

//go:noescape
func quantizeQ8_0AVX2(x *float32, dst *byte, nb int) int

//go:noescape
func quantizeQ8_KAVX2(x *float32, dst *byte, nb int) int

//go:noescape
func quantizeF16AVX2(x *float32, dst *byte, n int) int

func quantizeF16AVX2Row(x []float32, dst []byte) {
	if len(x) == 0 {
		return
	}
	quantizeF16(x, dst, quantizeF16AVX2(&x[0], &dst[0], len(x)))
}

// quantizeQ8_0AVX2Row is called by Set.QuantizeRow with checked sizes.
func quantizeQ8_0AVX2Row(x []float32, dst []byte) {
	for len(x) >= qk {
		done := quantizeQ8_0AVX2(&x[0], &dst[0], len(x)/qk)
		x, dst = x[done*qk:], dst[done*q8_0Bytes:]
		if len(x) >= qk {
			quantizeQ8_0(x[:qk], dst[:q8_0Bytes])
			x, dst = x[qk:], dst[q8_0Bytes:]
		}
	}
}

func quantizeQ8_KAVX2Row(x []float32, dst []byte) {
	for len(x) >= qkK {
		done := quantizeQ8_KAVX2(&x[0], &dst[0], len(x)/qkK)
		x, dst = x[done*qkK:], dst[done*q8_KBytes:]
		if len(x) >= qkK {
			quantizeQ8_K(x[:qkK], dst[:q8_KBytes])
			x, dst = x[qkK:], dst[q8_KBytes:]
		}
	}
}
