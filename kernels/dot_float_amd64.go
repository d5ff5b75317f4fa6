//go:build amd64

package kernels

// Go wrappers of the float kernels (dot_float_amd64.s, tiles_f32_amd64.s):
// they bound the slices to what the assembly reads, so that a short slice
// panics in Go, and add what the assembly leaves to the portable code (the
// leftover elements of ggml_vec_dot).

//go:noescape
func dotF32Vec(w, x *byte, n int) float32

//go:noescape
func dotF16Vec(w, x *byte, n int) float32

//go:noescape
func dotF32Vec4(w *byte, rowBytes int, x *byte, n int, out *[4]float32)

//go:noescape
func dotF16Vec4(w *byte, rowBytes int, x *byte, n int, out *[4]float32)

//go:noescape
func dotF32Tiled1(w, x *byte, n int) float32

//go:noescape
func dotF16Tiled1(w, x *byte, n int) float32

//go:noescape
func dotF32Tile4x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)

//go:noescape
func dotF16Tile4x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)

// dotF32AVX2Row is dotF32: the assembly takes the whole groups of 64.
func dotF32AVX2Row(w, xq []byte, n int) float32 {
	w, xq = w[:4*n], xq[:4*n]
	var sum float32
	np := n &^ (vecDotStep - 1)
	if np > 0 {
		sum = dotF32Vec(&w[0], &xq[0], np)
	}
	return dotF32Leftover(w, xq, sum, np, n)
}

// dotF16AVX2Row is dotF16: the assembly takes the whole groups of 64.
func dotF16AVX2Row(w, xq []byte, n int) float32 {
	w, xq = w[:2*n], xq[:2*n]
	var sum float32
	np := n &^ (vecDotStep - 1)
	if np > 0 {
		sum = dotF16Vec(&w[0], &xq[0], np)
	}
	return dotF16Leftover(w, xq, sum, np, n)
}

// dot4F32AVX2Rows is dotF32AVX2Row for four rows: one call instead of
// four (decode calls the kernel once per row, 4 KB of weights, which the
// calls' overhead shows in).
func dot4F32AVX2Rows(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	w, xq = rows4(w, rowBytes, 4*n, xq, 4*n)
	o := (*[4]float32)(out)
	np := n &^ (vecDotStep - 1)
	if np > 0 {
		dotF32Vec4(&w[0], rowBytes, &xq[0], np, o)
	} else {
		*o = [4]float32{}
	}
	if np < n {
		for i := range o {
			o[i] = dotF32Leftover(w[i*rowBytes:i*rowBytes+4*n], xq, o[i], np, n)
		}
	}
}

// dot4F16AVX2Rows is dotF16AVX2Row for four rows.
func dot4F16AVX2Rows(w []byte, rowBytes int, xq []byte, n int, out []float32) {
	w, xq = rows4(w, rowBytes, 2*n, xq, 2*n)
	o := (*[4]float32)(out)
	np := n &^ (vecDotStep - 1)
	if np > 0 {
		dotF16Vec4(&w[0], rowBytes, &xq[0], np, o)
	} else {
		*o = [4]float32{}
	}
	if np < n {
		for i := range o {
			o[i] = dotF16Leftover(w[i*rowBytes:i*rowBytes+2*n], xq, o[i], np, n)
		}
	}
}

// dotF32TiledAVX2Row is dotF32Tiled (n a multiple of 16).
func dotF32TiledAVX2Row(w, xq []byte, n int) float32 {
	n &^= tiledStep - 1
	if n <= 0 {
		return 0
	}
	w, xq = w[:4*n], xq[:4*n]
	return dotF32Tiled1(&w[0], &xq[0], n)
}

// dotF16TiledAVX2Row is dotF16Tiled (n a multiple of 16).
func dotF16TiledAVX2Row(w, xq []byte, n int) float32 {
	n &^= tiledStep - 1
	if n <= 0 {
		return 0
	}
	w, xq = w[:2*n], xq[:2*n]
	return dotF16Tiled1(&w[0], &xq[0], n)
}

//go:noescape
func dotF32Tile2x2(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)

//go:noescape
func dotF16Tile2x2(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)

func tileF32AVX2(w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int) {
	floatTile(dotF32Tile2x2, 2, 4, w, rowBytes, xq, xqRowBytes, n, dst, dstStride)
}

func tileF16AVX2(w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int) {
	floatTile(dotF16Tile2x2, 2, 2, w, rowBytes, xq, xqRowBytes, n, dst, dstStride)
}

// floatTile checks the slices of a size×size float tile of n elements (a
// multiple of 16) per row, elemBytes each, and runs kernel on them.
func floatTile(kernel func(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int),
	size, elemBytes int, w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int) {
	d := tileSpan(dst, size, dstStride, size)
	n &^= tiledStep - 1
	if n <= 0 {
		for j := 0; j < size; j++ {
			clear(dst[j*dstStride : j*dstStride+size])
		}
		return
	}
	kernel(tileSpan(w, size, rowBytes, elemBytes*n), rowBytes, tileSpan(xq, size, xqRowBytes, elemBytes*n), xqRowBytes, n, d, dstStride)
}

func tileF32AVX512(w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int) {
	floatTile(dotF32Tile4x4, 4, 4, w, rowBytes, xq, xqRowBytes, n, dst, dstStride)
}

func tileF16AVX512(w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int) {
	floatTile(dotF16Tile4x4, 4, 2, w, rowBytes, xq, xqRowBytes, n, dst, dstStride)
}

//go:noescape
func dotBF16Vec(w, x *byte, n int) (c1, c2 float32)

//go:noescape
func dotBF16Tiled1(w, x *byte, n int) float32

//go:noescape
func dotBF16Tile4x4(w *byte, rowBytes int, x *byte, xStride int, n int, dst *float32, dstStride int)

// dotBF16AVX512Row is dotBF16 (AVX512_BF16): the assembly takes the
// whole groups of 64.
func dotBF16AVX512Row(w, xq []byte, n int) float32 {
	w, xq = w[:2*n], xq[:2*n]
	var c1, c2 float32
	np := n &^ (vecDotStep - 1)
	if np > 0 {
		c1, c2 = dotBF16Vec(&w[0], &xq[0], np)
	}
	return dotBF16Leftover(w, xq, float64(c1)+float64(c2), np, n)
}

// dotBF16TiledAVX512Row is dotBF16Tiled (n a multiple of 32).
func dotBF16TiledAVX512Row(w, xq []byte, n int) float32 {
	n &^= bf16TiledStep - 1
	if n <= 0 {
		return 0
	}
	w, xq = w[:2*n], xq[:2*n]
	return dotBF16Tiled1(&w[0], &xq[0], n)
}

func tileBF16AVX512(w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int) {
	d := tileSpan(dst, 4, dstStride, 4)
	n &^= bf16TiledStep - 1
	if n <= 0 {
		for j := 0; j < 4; j++ {
			clear(dst[j*dstStride : j*dstStride+4])
		}
		return
	}
	dotBF16Tile4x4(tileSpan(w, 4, rowBytes, 2*n), rowBytes, tileSpan(xq, 4, xqRowBytes, 2*n), xqRowBytes, n, d, dstStride)
}
