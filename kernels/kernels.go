// Package kernels computes dot products straight on ggml's quantized
// blocks, the way ggml's CPU backend does: the activation row is quantized
// once to the weight type's "vec-dot type" (Q8_0, Q8_1, Q8_K, F16, BF16 or
// F32), then each weight row is multiplied with it block by block in
// integer arithmetic and scaled in float32.
//
// The portable Go kernels follow ggml's scalar reference code
// (ggml_vec_dot_*_generic in ggml-cpu/quants.c) operation for operation,
// including the order of the float32 roundings, so they produce the same
// bits as that code, except where llama.cpp's x86 build runs other code
// (all the types llamago's models use): the legacy formats (Q8_0, Q4_0,
// Q4_1, Q5_0, Q5_1, dot_legacy.go), the k-quants (Q2_K..Q6_K, repacked
// gemv and gemm included, dot_kquants.go) and the float types (F32, F16,
// BF16, for one token and for several, dot_float.go) follow instead what
// llama.cpp's AVX-512 ("zen4") build computes, bit for bit. They are
// also the reference that faster, CPU-specific kernels are tested against:
// every implementation of a type's dot product lives in a Set, Portable()
// is the pure-Go set, and Selected() is the set chosen once at start-up for
// the running CPU: on amd64 the AVX2, AVX-512 or AVX-512 VNNI kernels
// written in Go assembly (see simd_amd64.go), unless the environment
// variable LLAMAGO_KERNELS names another set ("portable" forces the Go
// code). Available() lists every set the CPU can run.
//
// Slices passed to the kernels must have the sizes the documentation
// states; the sizes are fixed when a model is bound, so a mismatch is a bug
// in the caller and the kernels panic on it. The contents of the slices
// (weights from a file, activations) are never a reason to panic: NaN,
// infinities and arbitrary bytes give some float result.
package kernels

import (
	"fmt"
	"os"

	"llamago/tensor"
)

// RowDot computes the dot product of one weight row of n elements, stored
// in the weight type's blocks in w, with one activation row quantized to
// VecDotType of the weight type in xq. n must be a whole number of blocks
// of both types, and w and xq at least RowBytes long. A RowDot itself
// does not check n (Dot and MatMulRows do, once per call).
type RowDot func(w, xq []byte, n int) float32

// maxType bounds the ggml type ids a Set can hold.
const maxType = 64

// rowDot4 computes the dot products of four weight rows, starting at
// w[0], w[rowBytes], w[2*rowBytes] and w[3*rowBytes], with one activation
// row, into out[0..3]. It must give exactly the bits the set's RowDot
// gives for each row, so that a result does not depend on how rows are
// grouped.
type rowDot4 func(w []byte, rowBytes int, xq []byte, n int, out []float32)

// rowDot8Span is rowDot8 over groups consecutive groups of eight rows,
// out[0..8·groups): for one token MatMulRows hands a worker's whole range
// to it in one call, so that what depends on the token alone (its blocks'
// sums and scales) is prepared once, not once per group. Same bits as
// rowDot8.
type rowDot8Span func(w []byte, rowBytes int, groups int, xq []byte, n int, out []float32)

// rowSpan computes, for one token, the len(out) weight rows starting at
// w[0] (row r at w[r*rowBytes]) into out, each with the set's RowDot bits:
// for one token MatMulRows hands a worker's whole range of rows to it in
// one call, so that the kernel can work on several rows side by side and
// prefetch ahead across the row boundaries.
type rowSpan func(w []byte, rowBytes int, xq []byte, n int, out []float32)

// A Set is one complete choice of dot-product kernels, one per supported
// weight type, and optionally four-row and tile kernels that MatMulRows
// uses for the types that have one. Sets are built once and never change.
type Set struct {
	name  string
	dot   [maxType]RowDot
	dot4  [maxType]rowDot4
	dot8  [maxType]rowDot8                       // eight rows at a time; MatMulRows prefers it to dot4
	span8 [maxType]rowDot8Span                   // for one token; only where dot8 is set
	span  [maxType]rowSpan                       // for one token, before dot8 and dot4
	tile  [maxType]tileKernel                    // for two tokens or more
	quant [maxType]func(x []float32, dst []byte) // by activation type; nil: portable
	// batch[wt], where set, is the one-row kernel in the order of ggml's
	// several-token path (the repacked gemm), which llama.cpp runs for
	// the tokens of a batch that fill groups of four: see MatMulRows.
	// dot[wt] is then ggml's one-token order (gemv); a type with a batch
	// kernel has no four-row kernel, and its tile kernel (if any) takes
	// four tokens and gives batch's bits.
	batch [maxType]RowDot
	// rows8[wt], where set, multiplies eight weight rows with one token
	// and must give Dot's bits for each; MatMulRows uses it for the
	// tokens of a batch of four or more that take Dot's order.
	rows8 [maxType]rowDot8
}

// rowDot8 computes the dot products of the eight weight rows starting at
// w[0], w[rowBytes], ..., w[7*rowBytes] with one activation row, into
// out[0..7], with the bits of the set's RowDot for each (the same
// contract as rowDot4).
type rowDot8 func(w []byte, rowBytes int, xq []byte, n int, out []float32)

// Name says which implementation the set is: "portable", "avx2",
// "avx512" or "avx512vnni", the values LLAMAGO_KERNELS accepts.
func (s *Set) Name() string { return s.name }

// portable is the pure-Go set: ggml's generic scalar code.
var portable = &Set{
	name: "portable",
	dot: [maxType]RowDot{
		tensor.F32:  dotF32,
		tensor.F16:  dotF16,
		tensor.BF16: dotBF16,
		tensor.Q4_0: dotQ4_0,
		tensor.Q4_1: dotQ4_1,
		tensor.Q5_0: dotQ5_0,
		tensor.Q5_1: dotQ5_1,
		tensor.Q8_0: dotQ8_0,
		tensor.Q2_K: dotQ2_K,
		tensor.Q3_K: dotQ3_K,
		tensor.Q4_K: dotQ4_K,
		tensor.Q5_K: dotQ5_K,
		tensor.Q6_K: dotQ6_K,
	},
	batch: [maxType]RowDot{
		tensor.Q2_K: dotQ2_KBatch,
		tensor.Q4_K: dotQ4_KBatch,
	},
	tile: [maxType]tileKernel{
		tensor.F32:  {order: dotF32Tiled, orderStep: tiledStep},
		tensor.F16:  {order: dotF16Tiled, orderStep: tiledStep},
		tensor.BF16: {order: dotBF16Tiled, orderStep: bf16TiledStep},
	},
}

// selected is the set the package-level functions use. It is chosen once
// in init from the CPU's features and never changes afterwards.
var selected = chooseSet(os.Getenv("LLAMAGO_KERNELS"))

// available lists the sets this CPU can run, fastest first; the portable
// set is always the last. It is built once at start-up (archSets reads
// the CPU's features) and only read afterwards.
var available = append(archSets(), portable)

// chooseSet picks the kernels for this process from the sets the CPU can
// run. override is the value of LLAMAGO_KERNELS: the name
// of one of those sets ("portable", "avx2", ...) forces it; anything else,
// including the name of a set this CPU cannot run, picks the fastest.
func chooseSet(override string) *Set {
	for _, s := range available {
		if s.name == override {
			return s
		}
	}
	return available[0]
}

// Available returns the sets of kernels this CPU can run, fastest first,
// ending with Portable(). Tests and benchmarks use it to exercise every
// path; the slice is the caller's.
func Available() []*Set { return append([]*Set(nil), available...) }

// derive returns a new set named name that uses the given kernels and,
// for every other type, those of base: a SIMD set need only provide the
// types it speeds up. A type given a new RowDot but no four-row or tile
// kernel loses base's ones, which would not give the new kernel's bits.
func derive(name string, base *Set, dots map[tensor.Type]RowDot, dots4 map[tensor.Type]rowDot4, tiles map[tensor.Type]tileKernel) *Set {
	s := &Set{name: name, dot: base.dot, dot4: base.dot4, dot8: base.dot8, span8: base.span8, span: base.span, tile: base.tile, quant: base.quant, batch: base.batch, rows8: base.rows8}
	for t, f := range dots {
		s.dot[t] = f
		s.dot4[t] = nil
		s.dot8[t] = nil
		s.rows8[t] = nil
		s.span8[t] = nil
		s.span[t] = nil
		// The tile order (tileKernel.order) is ggml's, not the RowDot's.
		s.tile[t] = tileKernel{order: base.tile[t].order, orderStep: base.tile[t].orderStep}
	}
	for t, f := range dots4 {
		s.dot4[t] = f
	}
	for t, k := range tiles {
		s.tile[t] = k
	}
	return s
}

// Portable returns the pure-Go kernels, the reference every faster set is
// tested against.
func Portable() *Set { return portable }

// Selected returns the kernels chosen for this process's CPU, which the
// package-level functions use: the first of Available() unless
// LLAMAGO_KERNELS names another one.
func Selected() *Set { return selected }

// VecDotType is the type ggml quantizes activations to before multiplying
// them with weights of type t (type_traits_cpu[t].vec_dot_type). Types for
// which ggml's CPU backend has no dot product map to F32, ggml's zero
// value.
func VecDotType(t tensor.Type) tensor.Type {
	switch t {
	case tensor.F16:
		return tensor.F16
	case tensor.BF16:
		return tensor.BF16
	case tensor.Q4_0, tensor.Q5_0, tensor.Q8_0, tensor.IQ4_NL, tensor.MXFP4, tensor.NVFP4, tensor.Q1_0, tensor.Q2_0:
		return tensor.Q8_0
	case tensor.Q4_1, tensor.Q5_1, tensor.Q8_1:
		return tensor.Q8_1
	case tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
		tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ3_XXS, tensor.IQ3_S,
		tensor.IQ1_S, tensor.IQ1_M, tensor.IQ4_XS, tensor.TQ1_0, tensor.TQ2_0:
		return tensor.Q8_K
	}
	return tensor.F32
}

// RowBytes is the number of bytes n elements of type t take (n a whole
// number of t's blocks).
func RowBytes(t tensor.Type, n int) int {
	bs, ts := blockSizes(t)
	if bs == 0 {
		return 0
	}
	return n / bs * ts
}

// typeBlocks holds the block size and bytes of every type id below
// maxType: the tensor package looks them up in a map, which costs more
// than a small matrix product's kernels at every call. It is built once
// at start-up and only read afterwards.
var typeBlocks = func() (tb [maxType][2]int) {
	for t := range tb {
		tb[t] = [2]int{tensor.Type(t).BlockSize(), tensor.Type(t).TypeSize()}
	}
	return tb
}()

// blockSizes returns the values per block and bytes per block of t.
func blockSizes(t tensor.Type) (block, size int) {
	if uint32(t) < maxType {
		return typeBlocks[t][0], typeBlocks[t][1]
	}
	return t.BlockSize(), t.TypeSize()
}

// DotFunc returns the kernel of the set for weights of type wt, so that a
// matrix multiplication looks it up once rather than once per row.
func (s *Set) DotFunc(wt tensor.Type) (RowDot, error) {
	if uint32(wt) < maxType {
		if f := s.dot[wt]; f != nil {
			return f, nil
		}
	}
	return nil, fmt.Errorf("kernels: no %s dot product for weights of type %s", s.name, wt)
}

// mustDot is DotFunc for callers without an error path; it also checks
// that n is a whole number of wt's blocks, which the kernels assume.
func (s *Set) mustDot(wt tensor.Type, n int) RowDot {
	f, err := s.DotFunc(wt)
	if err != nil {
		panic(err)
	}
	wbs, _ := blockSizes(wt)
	xbs, _ := blockSizes(VecDotType(wt))
	if bs := max(wbs, xbs); n < 0 || n%bs != 0 {
		panic(fmt.Sprintf("kernels: %d %s values are not a whole number of %d-value blocks", n, wt, bs))
	}
	return f
}

// Dot multiplies one weight row (n elements of type wt in w) with one
// activation row quantized by QuantizeRow(VecDotType(wt), ...) in xq. It
// panics if wt has no kernel (use DotFunc to check first) or n is not a
// whole number of blocks.
func (s *Set) Dot(wt tensor.Type, w, xq []byte, n int) float32 {
	return s.mustDot(wt, n)(w, xq, n)
}

// MatMulRows computes, for the weight rows r in [rowLo, rowHi) and the
// nTok activation rows t, dst[t*dstStride+r] = Dot(weight row r, xq row t).
// Weight row r starts at w[r*rowBytes], activation row t at
// xq[t*xqRowBytes]; every row holds n elements. It is the unit of work a
// backend hands each worker, and the fastest way to multiply a matrix.
//
// With several tokens and a tile kernel for wt, it works in tiles of a
// few rows × a few tokens (see tiles.go): each weight block and each
// activation block is loaded and prepared once per tile rather than once
// per (row, token) pair. With one token and a span kernel for wt, it
// hands the whole row range to one call of it (decode: the kernel streams
// the rows with its own prefetching). Otherwise, where the set has an
// eight- or four-row kernel for wt, it takes the rows eight or four at a
// time, so that each activation block is prepared once for several rows. Every
// path performs, for each (row, token), the float operations of one
// one-row kernel in the same order, so the results do not depend on how
// a backend splits the rows among workers.
//
// Which order that is follows llama.cpp's CPU build, which for some types
// adds the products of a batch in another order than those of one token:
//   - most types: Dot's order, whatever nTok;
//   - the float types (F32, F16, BF16): with two tokens or more and n a
//     multiple of the tile's orderStep, tinyBLAS's order (tileKernel.order),
//     else ggml_vec_dot's (Dot). ggml also needs the whole matrix's row
//     count to be a multiple of 4 for tinyBLAS, which MatMulRows cannot
//     see: every weight matrix of the models llamago runs is;
//   - types with a batch kernel (Q4_K, Q2_K: ggml's repacked gemm): with
//     nTok >= 4 the first nTok - nTok%4 tokens get the batch kernel's bits
//     and the others Dot's (the repacked gemv).
//
// So, like llama.cpp's, a product of those types depends on the number of
// tokens it is computed with. Each group of rows is applied to all tokens
// before moving on, so rows read once from memory are reused from cache
// for every token. It does not allocate.
func (s *Set) MatMulRows(wt tensor.Type, w []byte, rowBytes int, rowLo, rowHi int,
	xq []byte, xqRowBytes int, nTok int, n int, dst []float32, dstStride int) {
	s.mustDot(wt, n)
	dot, tiled := s.productDot(wt, n, nTok)
	// The eight- and four-row kernels add in Dot's order, which the float
	// types leave for a batch.
	multiRow := !(s.tile[wt].order != nil && nTok >= 2 && tiled)
	batch, batchTok := s.batch[wt], 0 // tokens [0, batchTok) take batch's order
	if batch != nil && nTok >= 4 {
		batchTok = nTok &^ 3
	}
	p := rowProduct{s: s, wt: wt, dot: dot, multiRow: multiRow, batch: batch, batchTok: batchTok,
		w: w, rowBytes: rowBytes, wLen: RowBytes(wt, n), xq: xq, xqRowBytes: xqRowBytes,
		xLen: RowBytes(VecDotType(wt), n), n: n, dst: dst, dstStride: dstStride}
	if tk := s.tile[wt]; tk.f != nil && tiled && nTok >= 2 && rowBytes >= 0 {
		// The tiles cover whole groups of tk.rows rows and tk.toks tokens
		// (of a batch type, only tokens in the batch kernel's order: its
		// tiles give the batch kernel's bits); the rows and tokens left
		// over go the row-at-a-time way below.
		tileTok := nTok
		if batch != nil {
			tileTok = batchTok
		}
		tileHi := rowLo + (rowHi-rowLo)/tk.rows*tk.rows
		if tokHi := tileTok / tk.toks * tk.toks; tileHi > rowLo && tokHi > 0 {
			tk.matMul(w, rowBytes, rowLo, tileHi, xq, xqRowBytes, tokHi, n, dst, dstStride)
			p.rows(rowLo, tileHi, tokHi, nTok)
			rowLo = tileHi
		}
	}
	p.rows(rowLo, rowHi, 0, nTok)
}

// rowProduct is MatMulRows's row-at-a-time part: its arguments and the
// kernels it chose.
type rowProduct struct {
	s        *Set
	wt       tensor.Type
	dot      RowDot // the order of every token at or above batchTok
	multiRow bool   // the set's eight- and four-row kernels give dot's bits
	batch    RowDot // the order of tokens below batchTok
	batchTok int

	w                   []byte
	rowBytes, wLen      int
	xq                  []byte
	xqRowBytes, xLen, n int
	dst                 []float32
	dstStride           int
}

// rows computes the rows [rowLo, rowHi) for the tokens [tokLo, tokHi):
// those below batchTok with the batch kernel, the others with dot.
func (p *rowProduct) rows(rowLo, rowHi, tokLo, tokHi int) {
	if tokLo < p.batchTok {
		p.rowwise(p.batch, nil, nil, nil, rowLo, rowHi, tokLo, p.batchTok)
		tokLo = p.batchTok
	}
	if tokLo >= tokHi {
		return
	}
	var dot4 rowDot4
	var dot8 rowDot8
	var span8 rowDot8Span
	if p.multiRow {
		if span := p.s.span[p.wt]; span != nil && tokHi-tokLo == 1 && p.rowBytes >= 0 && rowLo < rowHi {
			w := p.w[rowLo*p.rowBytes : (rowHi-1)*p.rowBytes+p.wLen]
			x := p.xq[tokLo*p.xqRowBytes : tokLo*p.xqRowBytes+p.xLen]
			span(w, p.rowBytes, x, p.n, p.dst[tokLo*p.dstStride+rowLo:tokLo*p.dstStride+rowHi])
			return
		}
		dot4, dot8, span8 = p.s.dot4[p.wt], p.s.dot8[p.wt], p.s.span8[p.wt]
		// rows8 only beside a batch's tiles: eight rows read side by side
		// stream from memory more slowly than one row after the other,
		// which is what decoding a model larger than the cache does; the
		// rows of a batch have just been read by the tiles.
		if r8 := p.s.rows8[p.wt]; r8 != nil && dot8 == nil && tokHi >= 4 {
			dot8 = r8
		}
	}
	p.rowwise(p.dot, dot4, dot8, span8, rowLo, rowHi, tokLo, tokHi)
}

// rowwise computes the rows [rowLo, rowHi) for the tokens [tokLo, tokHi)
// one row at a time with dot, or eight or four with dot8 or dot4 (nil:
// none), which must give dot's bits; span8 (nil: none) takes one token's
// whole range of eight-row groups in one call with dot8's bits.
func (p *rowProduct) rowwise(dot RowDot, dot4 rowDot4, dot8 rowDot8, span8 rowDot8Span, rowLo, rowHi, tokLo, tokHi int) {
	if tokLo >= tokHi {
		return
	}
	w, rowBytes, wLen := p.w, p.rowBytes, p.wLen
	xq, xqRowBytes, xLen, n := p.xq, p.xqRowBytes, p.xLen, p.n
	dst, dstStride := p.dst, p.dstStride
	r := rowLo
	if dot8 != nil && rowBytes >= 0 {
		if span8 != nil && tokHi-tokLo == 1 && rowHi-r >= 8 {
			groups := (rowHi - r) / 8
			x := xq[tokLo*xqRowBytes : tokLo*xqRowBytes+xLen]
			d := dst[tokLo*dstStride+r : tokLo*dstStride+r+8*groups]
			span8(w[r*rowBytes:(r+8*groups-1)*rowBytes+wLen], rowBytes, groups, x, n, d)
			r += 8 * groups
		}
		for ; r+8 <= rowHi; r += 8 {
			wRows := w[r*rowBytes : (r+7)*rowBytes+wLen]
			for t := tokLo; t < tokHi; t++ {
				dot8(wRows, rowBytes, xq[t*xqRowBytes:t*xqRowBytes+xLen], n, dst[t*dstStride+r:t*dstStride+r+8])
			}
		}
	}
	if dot4 != nil && rowBytes >= 0 {
		for ; r+4 <= rowHi; r += 4 {
			wRows := w[r*rowBytes : (r+3)*rowBytes+wLen]
			for t := tokLo; t < tokHi; t++ {
				dot4(wRows, rowBytes, xq[t*xqRowBytes:t*xqRowBytes+xLen], n, dst[t*dstStride+r:t*dstStride+r+4])
			}
		}
	}
	for ; r < rowHi; r++ {
		wRow := w[r*rowBytes : r*rowBytes+wLen]
		for t := tokLo; t < tokHi; t++ {
			xRow := xq[t*xqRowBytes : t*xqRowBytes+xLen]
			dst[t*dstStride+r] = dot(wRow, xRow, n)
		}
	}
}

// TokenCountMatters reports whether the bits MatMulRows gives for weight
// type wt can depend on how many tokens it multiplies at once (the float
// types and the types with a batch kernel, as in llama.cpp: see
// MatMulRows).
func (s *Set) TokenCountMatters(wt tensor.Type) bool {
	return s.batch[wt] != nil || s.tile[wt].order != nil
}

// TokenCountMatters is Selected().TokenCountMatters.
func TokenCountMatters(wt tensor.Type) bool { return selected.TokenCountMatters(wt) }

// DotFunc is Selected().DotFunc.
func DotFunc(wt tensor.Type) (RowDot, error) { return selected.DotFunc(wt) }

// Dot is Selected().Dot.
func Dot(wt tensor.Type, w, xq []byte, n int) float32 { return selected.Dot(wt, w, xq, n) }

// MatMulRows is Selected().MatMulRows.
func MatMulRows(wt tensor.Type, w []byte, rowBytes int, rowLo, rowHi int,
	xq []byte, xqRowBytes int, nTok int, n int, dst []float32, dstStride int) {
	selected.MatMulRows(wt, w, rowBytes, rowLo, rowHi, xq, xqRowBytes, nTok, n, dst, dstStride)
}
