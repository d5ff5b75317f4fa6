//go:build amd64

package kernels

// Go wrappers of the tile kernels (tiles.go, tiles_*_amd64.s). The
// assembly takes the first row of weights, of activations and of dst with
// their strides; the wrappers first check that the slices hold every row
// the kernel reads or writes, so that a short slice panics in Go rather
// than being accessed past its end.

// tileSpan checks that b holds rows rows of size bytes, stride bytes
// apart, and returns the address of the first.
func tileSpan[E any](b []E, rows, stride, size int) *E {
	if stride < 0 {
		panic("kernels: negative row stride")
	}
	return &b[:(rows-1)*stride+size][0]
}

// blockTileKernel is the signature of the assembly tiles over quantized
// blocks: rows weight rows × toks activation rows of nb blocks each, with
// the fp16 table for the block scales.
type blockTileKernel func(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

// blockTileShape is a tile kernel's geometry: weight rows and tokens per
// tile, values per block, and the bytes of a weight and an activation block.
type blockTileShape struct {
	rows, toks                          int
	blockSize, wBlockBytes, xBlockBytes int
}

// blockTile runs one tile: it checks that every row the kernel reads lies
// inside the slices, and writes zeros for rows of no whole block.
func blockTile(k blockTileKernel, g blockTileShape, w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int) {
	nb := n / g.blockSize
	d := tileSpan(dst, g.toks, dstStride, g.rows)
	if nb <= 0 {
		for j := 0; j < g.toks; j++ {
			clear(dst[j*dstStride : j*dstStride+g.rows])
		}
		return
	}
	k(tileSpan(w, g.rows, rowBytes, nb*g.wBlockBytes), rowBytes,
		tileSpan(xq, g.toks, xqRowBytes, nb*g.xBlockBytes), xqRowBytes, nb, &fp16Table[0], d, dstStride)
}

// quantTile is the tileKernel of the assembly tile k, whose geometry is g.
func quantTile(k blockTileKernel, g blockTileShape) tileKernel {
	return tileKernel{rows: g.rows, toks: g.toks, f: func(w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int) {
		blockTile(k, g, w, rowBytes, xq, xqRowBytes, n, dst, dstStride)
	}}
}

//go:noescape
func tile8x8Q4_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func dot8Q4_0VNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, out *[8]float32)

func dot8Q4_0VNNIRows(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	nb := n / qk
	if nb <= 0 {
		clear(out[:8])
		return
	}
	w, xq = w[:7*rowBytes+nb*q4_0Bytes], xq[:nb*q8_0Bytes]
	dot8Q4_0VNNI(&w[0], rowBytes, &xq[0], nb, &fp16Table[0], (*[8]float32)(out))
}

// tile4x4Q8_0VNNI is the 4×4 Q8_0 tile the avx512vnni set used before
// tile8x4Q8_0VNNI; it stays as BenchmarkQ8_0Tiles's baseline
// (TestQ8_0TilesMatchDot checks its bits).
//
//go:noescape
func tile4x4Q8_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile8x4Q8_0VNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile2x4Q4_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile8x4Q4_KVNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func gemv8Q4_KVNNI(w *byte, rowBytes int, x *byte, nb int, tab *float32, dst *float32)

// rows8Q4_KVNNI is the avx512vnni set's eight-row Q4_K kernel (rowDot8).
func rows8Q4_KVNNI(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	nb := n / qkK
	out = out[:8]
	if nb <= 0 {
		clear(out)
		return
	}
	gemv8Q4_KVNNI(tileSpan(w, 8, rowBytes, nb*q4_KBytes), rowBytes, &xq[:nb*q8_KBytes][0], nb, &fp16Table[0], &out[0])
}

//go:noescape
func tile2x4Q5_KVNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile2x4Q6_KVNNI(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile2x4Q6_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile2x4Q4_KAVX2(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile8x4Q4_0AVX2(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile2x2Q8_0AVX2(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func tile2x4Q5_KAVX512(w *byte, rowBytes int, x *byte, xStride int, nb int, tab *float32, dst *float32, dstStride int)

//go:noescape
func dot8SpanQ4_0VNNI(w *byte, rowBytes int, groups int, x *byte, nb int, tab *float32, off *int32, out *float32)

// spanMaxBlocks bounds the row length, in blocks, that the span kernel
// takes: its per-block table of the token lives on the Go stack (4 KiB).
const spanMaxBlocks = 512

// dot8SpanQ4_0VNNIRows computes the 8·groups rows starting at w[0] with
// one activation row into out[0:8·groups].
func dot8SpanQ4_0VNNIRows(w []byte, rowBytes int, groups int, xq []byte, n int, out []float32) {
	nb := n / qk
	if nb <= 0 || groups <= 0 {
		clear(out[:8*max(groups, 0)])
		return
	}
	if nb > spanMaxBlocks {
		for g := 0; g < groups; g++ {
			dot8Q4_0VNNIRows(w[8*g*rowBytes:], rowBytes, xq, n, out[8*g:8*g+8])
		}
		return
	}
	var off [2 * spanMaxBlocks]int32
	w, xq, out = w[:(8*groups-1)*rowBytes+nb*q4_0Bytes], xq[:nb*q8_0Bytes], out[:8*groups]
	dot8SpanQ4_0VNNI(&w[0], rowBytes, groups, &xq[0], nb, &fp16Table[0], &off[0], &out[0])
}
