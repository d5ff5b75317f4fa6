package kernels

import "llamago/tensor"

// Tiles: MatMulRows with several tokens works on blocks of a few weight
// rows × a few tokens at a time. A tile kernel keeps one accumulator per
// (row, token) pair of the tile in vector registers and walks the rows'
// blocks once: each weight block is loaded and unpacked once for all the
// tile's tokens, each activation block once for all its rows. Prompt
// processing (and batched decoding) multiplies the same weights with many
// tokens, so this turns the row-by-row loop, which spends most of its time
// preparing blocks, into one that spends it multiplying.
//
// A tile kernel performs, for each (row, token) pair, exactly the float
// operations of its set's RowDot for the type (for the float types, of
// tileKernel.order, ggml's several-token order), in the same order, so a
// product has the same bits whether a tile, a four-row kernel or the
// one-row kernel computes it. MatMulRows relies on that: the rows and
// tokens that do not fill a whole tile go the row-at-a-time way.

// tileFunc computes the products of the weight rows i < rows starting at
// w[i*rowBytes] with the activation rows j < toks starting at
// xq[j*xqRowBytes] (rows and toks those of its tileKernel), each row n
// elements long, into dst[j*dstStride+i]. It panics if a slice is too
// short for that.
type tileFunc func(w []byte, rowBytes int, xq []byte, xqRowBytes int, n int, dst []float32, dstStride int)

// A tileKernel is a set's tile kernel for one weight type.
type tileKernel struct {
	f          tileFunc
	rows, toks int // the tile's size
	// order, where set, is a one-row kernel that adds each product the
	// way ggml does for two tokens or more when that differs from its
	// one-token order (the set's RowDot): the float types, which ggml
	// multiplies with llamafile's tinyBLAS for several tokens and
	// ggml_vec_dot for one (dot_float.go). With nTok >= 2 and n a
	// multiple of orderStep every product of MatMulRows has order's bits
	// (f, if set, too); otherwise RowDot's, as ggml falls back to
	// ggml_vec_dot then.
	order     RowDot
	orderStep int
}

// productDot returns the one-row kernel whose bits every product of
// MatMulRows(wt, ..., nTok, n, ...) has, and whether the set's tile and
// four-row kernels compute them too.
func (s *Set) productDot(wt tensor.Type, n, nTok int) (dot RowDot, tiled bool) {
	tk := s.tile[wt]
	if nTok < 2 || tk.order == nil {
		return s.dot[wt], true
	}
	if n%tk.orderStep == 0 {
		return tk.order, true
	}
	return s.dot[wt], false
}

// matMul is MatMulRows for the rows [rowLo, rowHi) and tokens [0, nTok),
// whole multiples of k.rows and k.toks. Row tiles are the outer loop, so
// that a tile's weight rows stay in the L1 cache while every token passes.
func (k tileKernel) matMul(w []byte, rowBytes, rowLo, rowHi int,
	xq []byte, xqRowBytes, nTok, n int, dst []float32, dstStride int) {
	for r := rowLo; r+k.rows <= rowHi; r += k.rows {
		wTile := w[r*rowBytes:]
		for t := 0; t+k.toks <= nTok; t += k.toks {
			k.f(wTile, rowBytes, xq[t*xqRowBytes:], xqRowBytes, n, dst[t*dstStride+r:], dstStride)
		}
	}
}
