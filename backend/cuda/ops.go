package cuda

import (
	"math"
	"slices"

	"llamago/backend"
	"llamago/tensor"
)

// Launch geometry; the constants match the #defines of kernels/llamago.cu.
const (
	mmTokens        = 8                    // MM_TOKENS: activation rows per product block
	mmWarps         = 4                    // MM_WARPS: warps sharing one weight row in a block
	normThreads     = 512                  // NORM_THREADS
	swigluThreads   = 256                  // SWIGLU_THREADS
	mvRows          = 4                    // MV_ROWS: warps per one-token block
	mvqSplitF16     = 2                    // MVQ_SPLIT_F16: warps per weight row of F16's one-token products
	mvqnPairs       = normThreads / 32 / 2 // MVQN_PAIRS: rows a norm-folded block computes at once
	mvqnMaxCols     = 8192                 // MVQN_MAX_COLS: the longest row a norm folds into a product
	mmqTile         = 64                   // MMQ_BM = MMQ_BN: weight rows and tokens per tensor-core tile
	mmqThreads      = 128                  // MMQ_THREADS
	faRows          = 64                   // FA_ROWS: query rows per attention_tc block
	faThreads       = 128                  // FA_THREADS
	faMaxHeadDim    = 128                  // the largest MAXD of attention_tc
	ropeMaxPairs    = 256                  // ROPE_MAX_PAIRS
	actWarps        = 4                    // ACT_WARPS: rounding blocks per act_q8_0/act_q8_k block
	attnThreads     = 512                  // ATTN_THREADS
	attnMaxHeadDim  = 256                  // ATTN_MAX_HEAD_DIM
	elemThreads     = 256
	rowThreads      = 256
	qk, qkK         = 32, 256
	maxGridY        = 65535
	maxBatchForGrid = maxGridY * mmTokens
)

// GetRows implements backend.Backend.
func (b *Backend) GetRows(dstM backend.Mat, tableW backend.Weight, ids []int32) {
	dst, table := asMat(dstM), asWeight(tableW)
	if !(dst.rows >= len(ids) && dst.cols == table.cols) {
		backend.ShapeFail("GetRows", "%d ids of %s into %s", len(ids), weightShape(table), backend.Shape(dstM))
	}
	for _, id := range ids {
		if !(id >= 0 && int(id) < table.rows) {
			backend.ShapeFail("GetRows", "token id %d outside the table's %d rows", id, table.rows)
		}
	}
	if len(ids) == 0 {
		return
	}
	defer b.enter("GetRows")()
	dev := b.upload("GetRows", &b.ids, ids)
	b.args.reset().ptr(table.ptr).i64(table.rowBytes).i32(table.cols).i32(table.gpu).ptr(dev).ptr(dst.ptr)
	b.launch("GetRows", b.k.getRows, dim3{uint32(len(ids)), 1, 1}, dim3{rowThreads, 1, 1})
}

// CopyRows implements backend.Backend.
func (b *Backend) CopyRows(dstM, srcM backend.Mat, rows []int32) {
	dst, src := asMat(dstM), asMat(srcM)
	if !(dst.cols == src.cols && dst.rows >= len(rows)) {
		backend.ShapeFail("CopyRows", "%d rows of %s into %s", len(rows), backend.Shape(srcM), backend.Shape(dstM))
	}
	for _, r := range rows {
		if !(r >= 0 && int(r) < src.rows) {
			backend.ShapeFail("CopyRows", "row %d of %s", r, backend.Shape(srcM))
		}
	}
	if overlaps(dst, src) && len(rows) > 0 {
		// copy_rows's pointers are restrict.
		backend.ShapeFail("CopyRows", "source and destination share storage")
	}
	if len(rows) == 0 {
		return
	}
	defer b.enter("CopyRows")()
	dev := b.upload("CopyRows", &b.rows, rows)
	b.args.reset().ptr(src.ptr).ptr(dst.ptr).i32(src.cols).ptr(dev)
	b.launch("CopyRows", b.k.copyRows, dim3{uint32(len(rows)), 1, 1}, dim3{rowThreads, 1, 1})
}

// RMSNorm implements backend.Backend.
func (b *Backend) RMSNorm(dstM, xM backend.Mat, wW backend.Weight, eps float32) {
	dst, x, w := asMat(dstM), asMat(xM), asWeight(wW)
	if !(dst.rows == x.rows && dst.cols == x.cols && w.cols == x.cols && w.typ == tensor.F32) {
		backend.ShapeFail("RMSNorm", "x %s dst %s weight %s %s", backend.Shape(xM), backend.Shape(dstM), weightShape(wW), w.typ)
	}
	if x.rows == 0 {
		return
	}
	if b.exact != nil {
		b.cpuOrderRMSNorm(dst, x, w, eps)
		return
	}
	defer b.enter("RMSNorm")()
	// The residual add just queued (x = x + y) merges into the norm: one
	// pass over the row instead of two, and a launch less.
	if add := b.lastPending(b.k.add); add != nil && add.vals[2] == x.ptr && add.vals[3] == uint64(x.rows*x.cols) {
		a, y := add.vals[0], add.vals[1]
		b.args.reset().ptr(a).ptr(y).ptr(x.ptr).ptr(w.ptr).ptr(dst.ptr).i32(x.cols).f32(eps).ptr(0).i32(actNone)
		b.pending = b.pending[:len(b.pending)-1]
	} else {
		b.args.reset().ptr(x.ptr).ptr(0).ptr(0).ptr(w.ptr).ptr(dst.ptr).i32(x.cols).f32(eps).ptr(0).i32(actNone)
	}
	b.launch("RMSNorm", b.k.rmsNorm, dim3{uint32(x.rows), 1, 1}, dim3{normThreads, 1, 1})
}

// MatMul implements backend.Backend: dst = x·wᵀ on w's blocks. The
// activations are first rounded through w's dot-product format as the CPU
// quantizes them (F16 for F16, Q8_0 for Q4_0 and Q8_0, Q8_K for the
// k-quants), so both backends compute the same products: for the
// quantized types as int8 values and scales, whose integer block sums
// (dp4a for one token, tensor-core mma for several) equal the CPU's.
func (b *Backend) MatMul(dstM, xM backend.Mat, wW backend.Weight) {
	dst, x, w := asMat(dstM), asMat(xM), asWeight(wW)
	if !(x.cols == w.cols && dst.rows == x.rows && dst.cols == w.rows) {
		backend.ShapeFail("MatMul", "x %s · %sᵀ into %s", backend.Shape(xM), weightShape(wW), backend.Shape(dstM))
	}
	if dst.ptr == x.ptr && x.rows > 0 {
		backend.ShapeFail("MatMul", "x and dst share storage")
	}
	if x.rows > maxBatchForGrid {
		backend.ShapeFail("MatMul", "%d rows exceed the %d a launch takes", x.rows, maxBatchForGrid)
	}
	if x.rows == 0 || w.rows == 0 {
		return
	}
	if b.exact != nil && b.cpuOrderMatMul(dst, x, w) {
		return
	}
	defer b.enter("MatMul")()
	// Pick the kernel, and with it the format the activations are rounded
	// into: one token with int8 activations and dp4a (mvq_…, quantized
	// types) or float ones (mv_…), several tokens on the tensor cores
	// (mmq_… with int8 activations, mmh_f16 with F16 halves), or the
	// float tile kernel (mm_…, F32 weights).
	one := x.rows == 1 && w.cols%8 == 0
	kind := actKindOf(w.gpu)
	var fn uintptr
	var g, blk dim3
	switch {
	case one && b.k.mvq[w.gpu] != 0:
		kind = actIntKindOf(w.gpu)
		fn = b.k.mvq[w.gpu]
		g, blk = dim3{uint32((w.rows*mvqSplit(w.gpu) + mvRows - 1) / mvRows), 1, 1}, dim3{mvRows * 32, 1, 1}
	case one:
		fn = b.k.mv[w.gpu]
		g, blk = dim3{uint32((w.rows + mvRows - 1) / mvRows), 1, 1}, dim3{mvRows * 32, 1, 1}
	case b.k.mmq[w.gpu] != 0:
		kind = actIntKindOf(w.gpu)
		fn = b.k.mmq[w.gpu]
		g, blk = dim3{uint32((w.rows + mmqTile - 1) / mmqTile), uint32((x.rows + mmqTile - 1) / mmqTile), 1}, dim3{mmqThreads, 1, 1}
	case w.gpu == gpuF16:
		kind = actF16Bits
		fn = b.k.mmhF16
		g, blk = dim3{uint32((w.rows + mmqTile - 1) / mmqTile), uint32((x.rows + mmqTile - 1) / mmqTile), 1}, dim3{mmqThreads, 1, 1}
	default:
		fn = b.k.mm[w.gpu]
		g, blk = dim3{uint32(w.rows), uint32((x.rows + mmTokens - 1) / mmTokens), 1}, dim3{mmWarps * 32, 1, 1}
	}
	in := x.ptr
	if kind != actNone {
		n := x.rows * x.cols
		want := actState{src: x.ptr, n: n, kind: kind}
		if b.actValid && b.act == want {
			// q, k and v (gate and up) share their input: round it once.
			in = b.actBuf
		} else {
			in = b.scratchFloats("MatMul", 0, n)
			if r := b.lastGLU(); r != nil && r.vals[0] == in {
				// mvq_glu still reads its input from the first buffer
				// while its blocks round their output (other blocks may
				// not have finished): round into the second.
				in = b.scratchFloats("MatMul", 1, n)
			}
			if !b.fuseAct(x, in, kind) {
				b.launchAct(x, in, kind)
			}
		}
		b.act, b.actBuf, b.actValid = want, in, !b.eager
	}
	b.args.reset().ptr(w.ptr).i64(w.rowBytes).i32(w.rows).i32(w.cols).ptr(in).ptr(dst.ptr).i32(x.rows)
	if one && b.k.mvq[w.gpu] != 0 {
		if b.mergeProduct(fn, in, w, dst) {
			fn = 0 // queued with the product before
		}
		b.args.reset().ptr(in).i32(w.cols).ptr(w.ptr).i64(w.rowBytes).i32(w.rows).ptr(dst.ptr).
			ptr(0).i64(0).i32(0).ptr(0).ptr(0).i64(0).i32(0).ptr(0).ptr(0).ptr(0)
		if fn != 0 && b.foldNorm(in, w, dst) {
			fn = 0 // queued with the norm folded in
		}
	}
	if !one && fn != 0 && fn == b.k.mmq[w.gpu] {
		if b.mergeTiles(fn, in, w, dst, x.rows) {
			fn = 0 // queued with the product before
		}
		b.args.reset().ptr(in).i32(w.cols).i32(x.rows).ptr(w.ptr).i64(w.rowBytes).i32(w.rows).ptr(dst.ptr).
			ptr(0).i64(0).i32(0).ptr(0).ptr(0).i64(0).i32(0).ptr(0)
	}
	if fn != 0 && fn == b.k.mmhF16 && b.gemmF16(dst, in, w, x.rows) {
		fn = 0 // computed by cuBLAS (cublas.go)
	}
	if fn != 0 {
		b.launchKeep("MatMul", fn, g, blk)
	}
	if overlaps(dst, x) {
		b.actValid = false
	}
}

// mvqSets is how many weight matrices one mvq_… launch takes, mvqArgs
// where their arguments start: (xq, cols) then (W, rowBytes, rows, Y) per
// matrix.
const (
	mvqSets = 3
	mvqArgs = 2
)

// mergeProduct adds the one-token product dst = x·wᵀ to the mvq launch
// queued just before it when that launch reads the same rounded input
// (q, k and v; gate and up): one launch instead of up to three. It
// reports whether it did. The launch's outputs must not overlap, since
// its warps run in no particular order.
func (b *Backend) mergeProduct(fn uintptr, in uint64, w *weight, dst *mat) bool {
	r := b.lastPending(fn)
	folded := r == nil && w.gpu == gpuF16 && b.k.mvqnF16 != 0
	if folded {
		r = b.lastPending(b.k.mvqnF16)
	}
	if r == nil || r.vals[0] != in || r.vals[1] != uint64(w.cols) {
		return false
	}
	if folded && normOverlaps(r.vals[mvqnNorm:], w.cols, dst.ptr, uint64(w.rows)*4) {
		return false
	}
	free, total := freeSet(r.vals[mvqArgs:], dst.ptr, w.rows, 1)
	if free < 0 {
		return false
	}
	putSet(r.vals[mvqArgs:], free, w, dst)
	total += uint64(w.rows)
	r.grid.x = uint32((total*uint64(mvqSplit(w.gpu)) + mvRows - 1) / mvRows)
	if folded {
		r.grid.x = mvqnGrid(int(total), b.mvqnBlocks)
	}
	return true
}

// Arguments of mvq (the residual add's two at mvqAdd) and of the
// norm-folded product mvqn_f16: mvq's, then the norm's (x, w, dst, eps)
// at mvqnNorm (mvqn_glu_f16: after mvq_glu's).
const (
	mvqAdd   = mvqArgs + 4*mvqSets
	mvqnNorm = mvqAdd + 2
)

// foldNorm turns the one-row RMSNorm queued just before the F16
// one-token product dst = x·wᵀ, whose output the norm rounds into in (the
// product's input), into one mvqn_f16 launch: every block computes the
// norm itself, exactly as rms_norm does, and then its rows of the
// product (see mvqn_f16 in kernels/llamago.cu), which saves a launch and
// a kernel boundary a norm. It reports whether it did. The norm must add
// no residual (with the fold on, the residual add merges into the
// product before the norm instead: mergeAdd), and neither its output nor
// the product's may overlap its input, which every block reads while
// block 0 writes the norm's output and others write their rows.
func (b *Backend) foldNorm(in uint64, w *weight, dst *mat) bool {
	if !b.normFold || w.gpu != gpuF16 || w.cols > mvqnMaxCols || b.mvqnBlocks == 0 {
		return false
	}
	// rms_norm's arguments: x, addend, sum, w, dst, cols, eps, act, actKind.
	r := b.lastPending(b.k.rmsNorm)
	if r == nil || r.grid.x != 1 || r.vals[1] != 0 || r.vals[5] != uint64(w.cols) || r.vals[7] != in || r.vals[8] != actF16Bits {
		return false
	}
	norm := []uint64{r.vals[0], r.vals[3], r.vals[4], r.vals[6]}
	n := uint64(w.cols) * 4
	if spansOverlap(norm[0], n, norm[2], n) || normOverlaps(norm, w.cols, dst.ptr, uint64(w.rows)*4) {
		return false
	}
	b.pending = b.pending[:len(b.pending)-1]
	b.args.reset().ptr(in).i32(w.cols).ptr(w.ptr).i64(w.rowBytes).i32(w.rows).ptr(dst.ptr).
		ptr(0).i64(0).i32(0).ptr(0).ptr(0).i64(0).i32(0).ptr(0).ptr(0).ptr(0).
		ptr(norm[0]).ptr(norm[1]).ptr(norm[2]).put(norm[3])
	b.launchKeep("MatMul", b.k.mvqnF16, dim3{mvqnGrid(w.rows, b.mvqnBlocks), 1, 1}, dim3{normThreads, 1, 1})
	return true
}

// normOverlaps reports whether the n bytes at p overlap the input or the
// output of the folded norm of rows of cols values whose arguments (x, w,
// dst, eps) norm holds.
func normOverlaps(norm []uint64, cols int, p, n uint64) bool {
	rowBytes := uint64(cols) * 4
	return spansOverlap(norm[0], rowBytes, p, n) || spansOverlap(norm[2], rowBytes, p, n)
}

// mvqnGrid is the blocks of a norm-folded launch of rows rows (pairs of
// warps a row, mvqnPairs rows a block at once): no more than the GPU
// holds at once (limit), since each block computes the norm once and
// then loops over its rows.
func mvqnGrid(rows, limit int) uint32 {
	return uint32(max(1, min((rows+mvqnPairs-1)/mvqnPairs, limit)))
}

// spansOverlap reports whether the an bytes at a and the bn bytes at b
// overlap.
func spansOverlap(a, an, b, bn uint64) bool { return a < b+bn && b < a+an }

// freeSet finds the first unused (W, rowBytes, rows, Y) set among a
// launch's mvqSets sets and checks that a product writing ntok rows of rows
// floats from dst overlaps none of the used sets' outputs (the launch's
// warps and blocks run in no particular order). It returns the free set's
// index, -1 when there is none or the outputs overlap, and the rows of the
// sets in use.
func freeSet(sets []uint64, dst uint64, rows, ntok int) (int, uint64) {
	end := dst + uint64(rows*ntok)*4
	total, free := uint64(0), -1
	for k := range mvqSets {
		a := sets[4*k:]
		n, y := a[2], a[3]
		if n == 0 {
			if free < 0 {
				free = k
			}
			continue
		}
		if dst < y+n*uint64(ntok)*4 && y < end {
			return -1, 0
		}
		total += n
	}
	return free, total
}

// putSet writes product dst = x·wᵀ into set k of a launch's sets.
func putSet(sets []uint64, k int, w *weight, dst *mat) {
	a := sets[4*k:]
	a[0], a[1], a[2], a[3] = w.ptr, uint64(int64(w.rowBytes)), uint64(w.rows), dst.ptr
}

// mmqArgs is where the mmq_… kernels' weight sets start: (X, cols, ntok)
// then (W, rowBytes, rows, Y) per matrix, mvqSets of them.
const mmqArgs = 3

// mergeTiles adds the several-token product dst = x·wᵀ (ntok rows) to
// the mmq launch queued just before it when that launch reads the same
// rounded input (q, k and v; gate and up): the small matrices' row tiles
// then fill multiprocessors the large one leaves idle instead of running
// as launches of their own. It reports whether it did. Every tile
// computes what it computed alone, so the results are the same.
func (b *Backend) mergeTiles(fn uintptr, in uint64, w *weight, dst *mat, ntok int) bool {
	r := b.lastPending(fn)
	if r == nil || r.vals[0] != in || r.vals[1] != uint64(w.cols) || r.vals[2] != uint64(ntok) {
		return false
	}
	free, _ := freeSet(r.vals[mmqArgs:], dst.ptr, w.rows, ntok)
	if free < 0 {
		return false
	}
	putSet(r.vals[mmqArgs:], free, w, dst)
	r.grid.x += uint32((w.rows + mmqTile - 1) / mmqTile)
	return true
}

// Activation rounding kinds (ACT_… in kernels/llamago.cu).
const (
	actNone = iota
	actF16
	actQ8_0
	actQ8_K
	actQ8_0Int // Q8_0 kept as int8 values and float scales
	actQ8_KInt // Q8_K kept as int8 values, float scales and chunk sums
	actF16Bits // F16 halves
)

// actIntKindOf is the activation format of the products that take the
// activations in their weights' own number format (mvq_…, mmq_…): int8
// values and scales for the quantized types, F16 halves for F16.
func actIntKindOf(gpu int) int {
	switch gpu {
	case gpuF16:
		return actF16Bits
	case gpuQ4_0, gpuQ8_0:
		return actQ8_0Int
	case gpuQ4_K, gpuQ6_K:
		return actQ8_KInt
	}
	return actNone
}

// actKindOf is the format activations are rounded through before a
// product with weights of kernel type code gpu.
func actKindOf(gpu int) int {
	switch gpu {
	case gpuF16:
		return actF16
	case gpuQ4_0, gpuQ8_0:
		return actQ8_0
	case gpuQ4_K, gpuQ6_K:
		return actQ8_K
	}
	return actNone
}

// fuseAct merges the rounding of x into out with the queued launch that
// produced x, when that is the launch just before (an RMSNorm or a
// SwiGLU writing exactly x): the values are rounded while still in the
// block that computed them. It reports whether it did.
func (b *Backend) fuseAct(x *mat, out uint64, kind int) bool {
	n := uint64(x.rows * x.cols)
	if r := b.lastPending(b.k.rmsNorm); r != nil && r.vals[4] == x.ptr && r.vals[5] == uint64(x.cols) && r.grid.x == uint32(x.rows) {
		r.vals[7], r.vals[8] = out, uint64(kind)
		return true
	}
	if r := b.lastPending(b.k.swiglu); r != nil && r.vals[2] == x.ptr && r.vals[3] == n && x.cols%qkK == 0 {
		r.vals[4], r.vals[5] = out, uint64(kind)
		return true
	}
	// The fused gate/up/SwiGLU launch rounds its output for the down
	// product: F16 halves value by value, Q8 blocks in the last block to
	// finish each (mvq_glu) only with gluTail.
	if r := b.lastGLU(); r != nil && x.rows == 1 && r.vals[gluD] == x.ptr && r.vals[gluRows] == uint64(x.cols) && r.vals[0] != out &&
		gluRounds(kind, x.cols) && (kind == actF16Bits || b.gluTail) {
		r.vals[gluAct], r.vals[gluAct+1] = out, uint64(kind)
		return true
	}
	// Decode attention's output (one row) rounds into ACT_Q8_0_INT (a
	// head's values being whole Q8_0 blocks) or F16 halves in the blocks
	// that computed it.
	if r := b.lastAttention(); r != nil && (kind == actF16Bits || kind == actQ8_0Int && r.vals[8]%qk == 0) &&
		x.rows == 1 && r.grid.y == 1 && r.vals[1] == x.ptr && uint64(x.cols) == r.vals[6]*r.vals[8] {
		r.vals[attnAct], r.vals[attnActKind] = out, uint64(kind)
		return true
	}
	// The same for split-K attention's merge (attention_combine).
	if r := b.lastPending(b.k.attentionCombine); r != nil && b.k.attentionCombine != 0 && kind == actQ8_0Int && x.rows == 1 && r.grid.y == 1 &&
		r.vals[0] == x.ptr && r.vals[3]%qk == 0 && uint64(x.cols) == r.vals[2]*r.vals[3] {
		r.vals[attnCombineAct] = out
		return true
	}
	return false
}

// lastAttention returns the last queued launch if it is a one-block-a-head
// attention launch (attention or attention_dec64, which take the same
// arguments).
func (b *Backend) lastAttention() *launchRec {
	if r := b.lastPending(b.k.attention); r != nil {
		return r
	}
	if b.k.attentionDec64 == 0 {
		return nil
	}
	return b.lastPending(b.k.attentionDec64)
}

// launchAct rounds x into out with an activation kernel of its own.
func (b *Backend) launchAct(x *mat, out uint64, kind int) {
	n := x.rows * x.cols
	switch kind {
	case actF16:
		b.args.reset().ptr(x.ptr).ptr(out).i32(n)
		b.launch("MatMul", b.k.actF16, grid1(n, elemThreads), dim3{elemThreads, 1, 1})
	case actQ8_0:
		b.args.reset().ptr(x.ptr).ptr(out).i32(n / qk)
		b.launch("MatMul", b.k.actQ8_0, grid1(n/qk, actWarps), dim3{actWarps * 32, 1, 1})
	case actQ8_0Int:
		b.args.reset().ptr(x.ptr).ptr(out).i32(n / qk)
		b.launch("MatMul", b.k.actQ8_0Int, grid1(n/qk, actWarps), dim3{actWarps * 32, 1, 1})
	case actQ8_K:
		b.args.reset().ptr(x.ptr).ptr(out).i32(n / qkK)
		b.launch("MatMul", b.k.actQ8_K, grid1(n/qkK, actWarps), dim3{actWarps * 32, 1, 1})
	case actQ8_KInt:
		b.args.reset().ptr(x.ptr).ptr(out).i32(n / qkK)
		b.launch("MatMul", b.k.actQ8_KInt, grid1(n/qkK, actWarps), dim3{actWarps * 32, 1, 1})
	case actF16Bits:
		b.args.reset().ptr(x.ptr).ptr(out).i32(n)
		b.launch("MatMul", b.k.actF16Bits, grid1(n, elemThreads), dim3{elemThreads, 1, 1})
	}
}

// attnAct and attnActKind are the indices of the attention kernel's act
// and actKind arguments.
const (
	attnAct     = 17
	attnActKind = 25
)

// overlaps reports whether two matrices share bytes.
func overlaps(a, b *mat) bool {
	aEnd := a.ptr + uint64(a.rows*a.cols)*4
	bEnd := b.ptr + uint64(b.rows*b.cols)*4
	return a.ptr < bEnd && b.ptr < aEnd
}

// Add implements backend.Backend.
func (b *Backend) Add(dstM, aM, bM backend.Mat) {
	dst, x, y := asMat(dstM), asMat(aM), asMat(bM)
	if !(x.rows == y.rows && x.cols == y.cols && dst.rows == x.rows && dst.cols == x.cols) {
		backend.ShapeFail("Add", "%s + %s into %s", backend.Shape(aM), backend.Shape(bM), backend.Shape(dstM))
	}
	n := x.rows * x.cols
	defer b.enter("Add")()
	if b.mergeAdd(dst, x, y) {
		b.actValid = false
		b.flushLong("Add")
		return
	}
	b.flushLong("Add")
	b.args.reset().ptr(x.ptr).ptr(y.ptr).ptr(dst.ptr).i32(n)
	b.launch("Add", b.k.add, grid1(n, elemThreads), dim3{elemThreads, 1, 1})
}

// mergeAdd merges the residual add dst = x + y into the F16 one-token
// product queued just before it when that product wrote one of x and y
// (mvq's addSum: the lane that writes a row's result adds the other
// operand to it), so that the RMSNorm after the add takes no addend and
// folds into the product after it (foldNorm). Only with the fold on, and
// only for a launch of one matrix. It reports whether it did.
func (b *Backend) mergeAdd(dst, x, y *mat) bool {
	if !b.normFold {
		return false
	}
	r := b.lastPending(b.k.mvq[gpuF16])
	n := x.rows * x.cols
	// One matrix (no second or third set), no add yet, its n outputs
	// exactly one operand.
	if r == nil || r.vals[mvqArgs+4+2] != 0 || r.vals[mvqArgs+8+2] != 0 || r.vals[mvqAdd+1] != 0 || r.vals[mvqArgs+2] != uint64(n) {
		return false
	}
	out := r.vals[mvqArgs+3]
	other := x
	switch {
	case x.ptr == out:
		other = y
	case y.ptr != out:
		return false
	}
	// The other operand is read after the product's wait, before any row
	// is written, by the lane that writes its row: it must not be an
	// output of the launch. dst may be either operand or lie apart.
	bytes := uint64(n) * 4
	if spansOverlap(other.ptr, bytes, out, bytes) ||
		!(dst.ptr == other.ptr || dst.ptr == out || !spansOverlap(dst.ptr, bytes, other.ptr, bytes) && !spansOverlap(dst.ptr, bytes, out, bytes)) {
		return false
	}
	r.vals[mvqAdd], r.vals[mvqAdd+1] = other.ptr, dst.ptr
	return true
}

// SwiGLU implements backend.Backend.
func (b *Backend) SwiGLU(dstM, gateM, upM backend.Mat) {
	dst, g, u := asMat(dstM), asMat(gateM), asMat(upM)
	if !(g.rows == u.rows && g.cols == u.cols && dst.rows == g.rows && dst.cols == g.cols) {
		backend.ShapeFail("SwiGLU", "gate %s up %s into %s", backend.Shape(gateM), backend.Shape(upM), backend.Shape(dstM))
	}
	if b.exact != nil {
		b.cpuOrderSwiGLU(dst, g, u)
		return
	}
	n := g.rows * g.cols
	defer b.enter("SwiGLU")()
	if b.fuseSwiGLU(dst, g, u) {
		b.actValid = false
		return
	}
	b.args.reset().ptr(g.ptr).ptr(u.ptr).ptr(dst.ptr).i32(n).ptr(0).i32(actNone)
	b.launch("SwiGLU", b.k.swiglu, grid1(n, swigluThreads), dim3{swigluThreads, 1, 1})
}

// Arguments of mvq_glu: (xq, cols, Wg, rbg, Wu, rbu, rows, G, U, D, act,
// actKind, counters).
const (
	gluRows = 6
	gluD    = 9
	gluAct  = 10
	// gluCounters is how many Q8 groups mvq_glu's counters cover,
	// attnCounters how many KV heads the attention kernel's.
	gluCounters  = 4096
	attnCounters = 1024
)

// fuseSwiGLU turns the one-token gate/up product queued just before (one
// mvq launch of exactly the two matrices, writing gate and up) into
// mvq_glu, which also computes dst = silu(gate)·up in the warps that
// computed gate and up: a launch less a decode layer. It reports whether
// it did.
func (b *Backend) fuseSwiGLU(dst, g, u *mat) bool {
	if len(b.pending) == 0 || g.rows != 1 {
		return false
	}
	r := &b.pending[len(b.pending)-1]
	typ := -1
	for t := range numGPUTypes {
		if b.k.mvq[t] != 0 && r.fn == b.k.mvq[t] && b.k.mvqGLU[t] != 0 {
			typ = t
		}
	}
	folded := r.fn == b.k.mvqnF16 && b.k.mvqnF16 != 0 && b.k.mvqnGLUF16 != 0 && b.mvqnGLUBlocks > 0
	if folded {
		typ = gpuF16
	}
	if typ < 0 {
		return false
	}
	// The sets of the product: (W, rowBytes, rows, Y) for gate, up, none.
	a := r.vals[mvqArgs:]
	n := uint64(g.cols)
	if !(a[2] == n && a[3] == g.ptr && a[6] == n && a[7] == u.ptr && a[10] == 0) {
		return false
	}
	// Each warp reads and writes its own row of gate, up and dst.
	if !(dst.ptr == g.ptr || dst.ptr == u.ptr || (!overlaps(dst, g) && !overlaps(dst, u))) {
		return false
	}
	if folded && normOverlaps(r.vals[mvqnNorm:], int(r.vals[1]), dst.ptr, uint64(dst.rows*dst.cols)*4) {
		return false
	}
	counters := b.counterBuf("SwiGLU")
	b.args.reset().ptr(r.vals[0]).put(r.vals[1]).ptr(a[0]).put(a[1]).ptr(a[4]).put(a[5]).i32(g.cols).
		ptr(g.ptr).ptr(u.ptr).ptr(dst.ptr).ptr(0).i32(actNone).ptr(counters)
	if folded {
		// The norm's arguments follow mvq_glu's.
		b.args.put(r.vals[mvqnNorm]).put(r.vals[mvqnNorm+1]).put(r.vals[mvqnNorm+2]).put(r.vals[mvqnNorm+3])
		r.fn = b.k.mvqnGLUF16
		r.grid = dim3{mvqnGrid(g.cols, b.mvqnGLUBlocks), 1, 1}
	} else {
		r.fn = b.k.mvqGLU[typ]
		r.grid = grid1(g.cols*mvqSplit(typ), mvRows)
	}
	r.n = b.args.n
	copy(r.vals[:], b.args.vals[:b.args.n])
	return true
}

// lastGLU returns the last queued launch if it is an mvq_glu launch.
func (b *Backend) lastGLU() *launchRec {
	if r := b.lastPending(b.k.mvqnGLUF16); r != nil && b.k.mvqnGLUF16 != 0 {
		return r
	}
	for t := range numGPUTypes {
		if fn := b.k.mvqGLU[t]; fn != 0 {
			if r := b.lastPending(fn); r != nil {
				return r
			}
		}
	}
	return nil
}

// gluRounds reports whether mvq_glu can round its n outputs into kind:
// F16 halves always, Q8 formats in whole blocks its counters cover.
func gluRounds(kind, n int) bool {
	switch kind {
	case actF16Bits:
		return true
	case actQ8_0Int:
		return n%qk == 0 && n/qk <= gluCounters
	case actQ8_KInt:
		return n%qkK == 0 && n/qkK <= gluCounters
	}
	return false
}

// RoPE implements backend.Backend.
func (b *Backend) RoPE(xM backend.Mat, pos []int32, p backend.RoPEParams) {
	x := asMat(xM)
	if !(len(pos) == x.rows && x.cols == p.Heads*p.HeadDim && p.Dims <= p.HeadDim && p.Dims%2 == 0 && p.Dims > 0 && p.Dims <= 2*ropeMaxPairs) {
		backend.ShapeFail("RoPE", "%s with %d positions, %d heads of %d (%d rotated)", backend.Shape(xM), len(pos), p.Heads, p.HeadDim, p.Dims)
	}
	if x.rows == 0 {
		return
	}
	if b.exact != nil {
		b.cpuOrderRoPE(x, pos, p)
		return
	}
	defer b.enter("RoPE")()
	dev := b.upload("RoPE", &b.pos, pos)
	thetaScale := float32(math.Pow(float64(p.FreqBase), -2.0/float64(p.Dims)))
	b.args.reset().ptr(x.ptr).ptr(dev).i32(p.Heads).i32(p.HeadDim).i32(p.Dims).f32(thetaScale).f32(p.FreqScale).flag(p.NeoX).
		ptr(0).i32(0).ptr(0).ptr(0).ptr(0).ptr(0).ptr(0).i32(0).i32(0).i32(0).i32(0).i32(0)
	if b.mergeRoPE(x, p) {
		b.actValid = false
		return
	}
	b.launch("RoPE", b.k.rope, dim3{uint32(x.rows), 1, 1}, dim3{ropeThreads(p.Heads, p.Dims), 1, 1})
}

// mergeRoPE adds the rotation whose arguments b.args holds (x, p) to the
// rope launch queued just before it when that launch rotates other rows'
// worth of heads with the same positions and rotation (k's heads after
// q's): one launch for both. It reports whether it did.
func (b *Backend) mergeRoPE(x *mat, p backend.RoPEParams) bool {
	r := b.lastPending(b.k.rope)
	if r == nil || r.grid.x != uint32(x.rows) || r.vals[ropeX2] != 0 || r.vals[ropeKC] != 0 ||
		r.vals[1] != b.args.vals[1] || !slices.Equal(r.vals[3:ropeX2], b.args.vals[3:ropeX2]) || // all but x and heads
		overlapsRows(r.vals[0], int(r.vals[2])*p.HeadDim, x) {
		return false
	}
	r.vals[ropeX2], r.vals[ropeX2+1] = x.ptr, uint64(p.Heads)
	r.block.x = ropeThreads(int(r.vals[2])+p.Heads, p.Dims)
	return true
}

// Arguments of the rope kernel: the second matrix (x2, heads2) and the
// fused cache store (v, kst, kc, vc, slot, kvDim, layers, ctx, layer, f16)
// start at these indices.
const (
	ropeX2 = 8
	ropeV  = 10
	ropeKC = 12
)

// ropeThreads is the rope kernel's block size for heads heads: a thread
// per rotated pair (up to a block's 1024), since each pair's angle is a
// serial product and a double sincos.
func ropeThreads(heads, dims int) uint32 {
	return uint32(min(1024, (heads*dims/2+31)/32*32))
}

// overlapsRows reports whether m shares bytes with the matrix at ptr of
// m.rows rows of cols floats.
func overlapsRows(ptr uint64, cols int, m *mat) bool {
	return overlaps(&mat{rows: m.rows, cols: cols, ptr: ptr}, m)
}

// kvCache is the KV cache in device memory, layout
// [slot][layer][position][kvDim], float32 or F16 bits.
type kvCache struct {
	cfg  backend.KVConfig
	k, v uint64
}

func (c *kvCache) Config() backend.KVConfig { return c.cfg }

// NewKVCache implements backend.Backend. It panics with a
// *backend.ShapeError when the GPU is out of memory.
func (b *Backend) NewKVCache(cfg backend.KVConfig) backend.KVCache {
	if cfg.Slots < 0 || cfg.Layers < 0 || cfg.Ctx < 0 || cfg.KVDim < 0 {
		backend.ShapeFail("NewKVCache", "%+v", cfg)
	}
	elem := uintptr(2)
	if cfg.F32 {
		elem = 4
	}
	n := uintptr(cfg.Slots) * uintptr(cfg.Layers) * uintptr(cfg.Ctx) * uintptr(cfg.KVDim) * elem
	defer b.enter("NewKVCache")()
	k, err := b.alloc(n)
	b.must("NewKVCache", err)
	v, err := b.alloc(n)
	b.must("NewKVCache", err)
	return &kvCache{cfg: cfg, k: k, v: v}
}

// StoreKV implements backend.Backend.
func (b *Backend) StoreKV(cM backend.KVCache, layer int, bt backend.Batch, kM, vM backend.Mat) {
	c, k, v := cM.(*kvCache), asMat(kM), asMat(vM)
	cfg := c.cfg
	if !(k.cols == cfg.KVDim && v.cols == cfg.KVDim && k.rows == bt.Len() && v.rows == bt.Len() && len(bt.Slot) == bt.Len() && layer >= 0 && layer < cfg.Layers) {
		backend.ShapeFail("StoreKV", "k %s v %s for %d rows into layer %d of a cache of %d values per position", backend.Shape(kM), backend.Shape(vM), bt.Len(), layer, cfg.KVDim)
	}
	checkBatch("StoreKV", bt, cfg)
	if bt.Len() == 0 {
		return
	}
	defer b.enter("StoreKV")()
	slots, pos := b.upload("StoreKV", &b.slots, bt.Slot), b.upload("StoreKV", &b.pos, bt.Pos)
	if b.mergeStoreKV(c, layer, k, v, slots, pos) {
		b.actValid = false
		return
	}
	b.args.reset().ptr(k.ptr).ptr(v.ptr).ptr(c.k).ptr(c.v).ptr(slots).ptr(pos).
		i32(cfg.KVDim).i32(cfg.Layers).i32(cfg.Ctx).i32(layer).flag(!cfg.F32)
	b.launch("StoreKV", b.k.storeKV, dim3{uint32(bt.Len()), 1, 1}, dim3{rowThreads, 1, 1})
}

// mergeStoreKV adds the cache store of k and v (rows at the device
// slots and positions given) to the rope launch queued just before it when
// that launch rotates k with the same positions: each block stores its row
// after rotating it. It reports whether it did.
func (b *Backend) mergeStoreKV(c *kvCache, layer int, k, v *mat, slots, pos uint64) bool {
	r := b.lastPending(b.k.rope)
	if r == nil || r.grid.x != uint32(k.rows) || r.vals[1] != pos || r.vals[ropeKC] != 0 ||
		!(r.vals[ropeX2] == k.ptr || (r.vals[ropeX2] == 0 && r.vals[0] == k.ptr)) {
		return false
	}
	cfg := c.cfg
	a := r.vals[ropeV:]
	a[0], a[1], a[2], a[3], a[4] = v.ptr, k.ptr, c.k, c.v, slots
	a[5], a[6], a[7], a[8] = uint64(cfg.KVDim), uint64(cfg.Layers), uint64(cfg.Ctx), uint64(layer)
	a[9] = 0
	if !cfg.F32 {
		a[9] = 1
	}
	return true
}

// checkBatch fails op for a slot or position outside the cache.
func checkBatch(op string, bt backend.Batch, cfg backend.KVConfig) {
	for r := range bt.Len() {
		slot, pos := bt.Slot[r], bt.Pos[r]
		if !(slot >= 0 && int(slot) < cfg.Slots && pos >= 0 && int(pos) < cfg.Ctx) {
			backend.ShapeFail(op, "slot %d position %d outside %d slots of %d", slot, pos, cfg.Slots, cfg.Ctx)
		}
	}
}

// Attention implements backend.Backend.
func (b *Backend) Attention(dstM, qM backend.Mat, cM backend.KVCache, layer int, bt backend.Batch, p backend.AttnParams, scoresM, probsM backend.Mat) {
	dst, q, c := asMat(dstM), asMat(qM), cM.(*kvCache)
	cfg := c.cfg
	if !(q.cols == p.Heads*p.HeadDim && dst.cols == q.cols && dst.rows == q.rows && q.rows == bt.Len() && len(bt.Slot) == bt.Len() &&
		p.KVHeads > 0 && p.Heads%p.KVHeads == 0 && p.KVHeads*p.HeadDim == cfg.KVDim && layer >= 0 && layer < cfg.Layers) {
		backend.ShapeFail("Attention", "q %s into %s, %d heads over %d KV heads of %d, cache of %d", backend.Shape(qM), backend.Shape(dstM), p.Heads, p.KVHeads, p.HeadDim, cfg.KVDim)
	}
	if q.rows > maxGridY {
		backend.ShapeFail("Attention", "%d rows exceed the %d a launch takes", q.rows, maxGridY)
	}
	if p.HeadDim > attnMaxHeadDim {
		backend.ShapeFail("Attention", "head size %d is over the %d the kernel takes", p.HeadDim, attnMaxHeadDim)
	}
	if dst.ptr == q.ptr && q.rows > 0 {
		backend.ShapeFail("Attention", "q and dst share storage")
	}
	checkBatch("Attention", bt, cfg)
	var scores, probs *mat
	probeCols := 0
	maxPos := int32(0)
	for _, ps := range bt.Pos {
		maxPos = max(maxPos, ps)
	}
	for _, pm := range []backend.Mat{scoresM, probsM} {
		if pm == nil {
			continue
		}
		m := asMat(pm)
		if !(m.rows == q.rows && m.cols%p.Heads == 0 && m.cols/p.Heads >= int(maxPos)+1 && (probeCols == 0 || probeCols == m.cols)) {
			backend.ShapeFail("Attention", "scores or probabilities %s for %d rows of %d heads up to position %d", backend.Shape(pm), q.rows, p.Heads, maxPos)
		}
		probeCols = m.cols
	}
	if scoresM != nil {
		scores = asMat(scoresM)
	}
	if probsM != nil {
		probs = asMat(probsM)
	}
	if q.rows == 0 {
		return
	}
	if b.exact != nil {
		b.cpuOrderAttention(dst, q, c, layer, bt, p, scores, probs, probeCols, maxPos)
		return
	}
	defer b.enter("Attention")()
	slots, pos := b.upload("Attention", &b.slots, bt.Slot), b.upload("Attention", &b.pos, bt.Pos)
	if q.rows > 1 && !cfg.F32 && scores == nil && probs == nil && p.HeadDim%16 == 0 && p.HeadDim <= faMaxHeadDim {
		// Prefill with an F16 cache: the tensor-core kernel, over tiles of
		// query rows that share a slot.
		b.tileHost = attentionTiles(b.tileHost[:0], bt.Slot)
		tiles := b.upload("Attention", &b.tiles, b.tileHost)
		b.args.reset().ptr(q.ptr).ptr(dst.ptr).ptr(c.k).ptr(c.v).ptr(slots).ptr(pos).ptr(tiles).
			i32(p.Heads).i32(p.KVHeads).i32(p.HeadDim).i32(cfg.Layers).i32(cfg.Ctx).i32(layer).f32(p.Scale)
		fn := b.k.attentionTC128
		if p.HeadDim <= 64 {
			fn = b.k.attentionTC64
		}
		b.launch("Attention", fn, dim3{uint32(p.Heads), uint32(len(b.tileHost) / 2), 1}, dim3{faThreads, 1, 1})
		return
	}
	if chunks := splitChunks(int(maxPos), cfg.Ctx); b.splitK && chunks > 0 && scores == nil && probs == nil && q.rows <= splitMaxRows {
		b.splitAttention(dst, q, c, layer, p, slots, pos, chunks)
		return
	}
	b.args.reset().ptr(q.ptr).ptr(dst.ptr).ptr(c.k).ptr(c.v).ptr(slots).ptr(pos).
		i32(p.Heads).i32(p.KVHeads).i32(p.HeadDim).i32(cfg.Layers).i32(cfg.Ctx).i32(layer).f32(p.Scale).flag(!cfg.F32).
		optMat(scores).optMat(probs).i32(probeCols).ptr(0)
	fn := b.k.attention
	if !(scores == nil && probs == nil && b.fuseRoPE(c, layer, q, p, slots, pos)) {
		b.args.ptr(0).ptr(0).i32(0).f32(0).f32(0).i32(0).ptr(0) // no rotation
	} else if !cfg.F32 && p.HeadDim == 64 {
		// The common decode launch, compiled for it (same arithmetic).
		fn = b.k.attentionDec64
	}
	b.args.i32(actNone)
	b.launch("Attention", fn, dim3{uint32(p.Heads), uint32(q.rows), 1}, dim3{attnThreads, 1, 1})
}

// Split-K decode attention ("flash decoding"). One block per (row, head)
// is 32 blocks for TinyLlama on a GPU of 132 multiprocessors, each walking
// every position: at long contexts attention then takes tens of µs and
// grows with the position. From splitMinPositions positions on, the rows'
// positions are cut into chunks of splitChunk: attention_split computes
// each (row, head, chunk)'s scores, their maximum and sum of
// exponentials into a scratch buffer, attention_split_v each chunk's
// probabilities (normalized by every chunk's maxima and sums, as the
// one-block kernel computes them) and weighted values, attention_combine
// adds a head's chunks (see the kernels' comment). With a 512-thread block a chunk of 256 positions gives
// each warp 16 keys (enough loads in flight to hide their latency) and, at
// position 1000, 4 chunks × 32 heads = 128 blocks, about one per
// multiprocessor of an H100; at 4000, 512 blocks (4 fit on a
// multiprocessor). Below splitMinPositions a single chunk would do the
// whole row and the merge would be a launch for nothing.
const (
	splitChunk        = 256 // positions per attention_split block (≤ SPLIT_MAX_CHUNK)
	splitMinPositions = 512 // the fewest positions (largest position + 1) that split
	splitMaxChunks    = 1024
	splitMaxRows      = 64 // rows of one launch that split (bounds the scratch)
)

// attnCombineAct is the index of attention_combine's act argument.
const attnCombineAct = 7

// splitChunks returns how many chunks per (row, head) split-K attention
// launches for rows whose largest position is maxPos in a cache of ctx
// positions, or 0 when the rows should not split. The count is the chunks
// that maxPos needs rounded up to a power of two (and capped by the
// chunks of the whole context): chunks past a row's position return at
// once, and the launch stays the same over many positions, so that a
// decode step repeats as the same CUDA graph from token to token (a new
// graph each time the count doubles).
func splitChunks(maxPos, ctx int) int {
	n := maxPos + 1
	if n < splitMinPositions || n > ctx {
		return 0
	}
	need := (n + splitChunk - 1) / splitChunk
	all := (ctx + splitChunk - 1) / splitChunk
	chunks := 1
	for chunks < need {
		chunks *= 2
	}
	chunks = min(chunks, all)
	if chunks > splitMaxChunks {
		return 0
	}
	return chunks
}

// splitAttention queues split-K attention of q's rows (see splitChunks):
// attention_split and attention_split_v over (heads, rows, chunks)
// blocks, then attention_combine over (heads, rows). The rope launch queued before, if
// any, is not fused into it: it rotates and stores the new key and value
// in the cache before attention_split starts (launches on one stream run
// in order, and with programmatic dependent launch every kernel waits in
// pdl_begin for the one before it to finish), so every chunk reads the
// new position from the cache like any other. A fused rotation would need
// every chunk block of a KV head to have read k's raw row before one of
// them writes it back, and the chunks of a head are many blocks: not
// worth its counters at contexts where a launch costs little next to the
// attention.
func (b *Backend) splitAttention(dst, q *mat, c *kvCache, layer int, p backend.AttnParams, slots, pos uint64, chunks int) {
	cfg := c.cfg
	lay := newSplitLayout(q.rows*p.Heads*chunks, p.HeadDim)
	if lay.size > b.splitSize {
		b.must("Attention", b.free(b.split))
		b.split, b.splitSize = 0, 0
		ptr, err := b.alloc(lay.size)
		b.must("Attention", err)
		b.split, b.splitSize = ptr, lay.size
	}
	sc, pv, pm, ps := b.split+uint64(lay.scores), b.split+uint64(lay.vals), b.split+uint64(lay.maxima), b.split+uint64(lay.sums)
	grid := dim3{uint32(p.Heads), uint32(q.rows), uint32(chunks)}
	b.args.reset().ptr(q.ptr).ptr(c.k).ptr(slots).ptr(pos).
		i32(p.Heads).i32(p.KVHeads).i32(p.HeadDim).i32(cfg.Layers).i32(cfg.Ctx).i32(layer).f32(p.Scale).flag(!cfg.F32).
		i32(splitChunk).ptr(sc).ptr(pm).ptr(ps)
	b.launch("Attention", b.k.attentionSplit, grid, dim3{attnThreads, 1, 1})
	b.args.reset().ptr(c.v).ptr(slots).ptr(pos).
		i32(p.Heads).i32(p.KVHeads).i32(p.HeadDim).i32(cfg.Layers).i32(cfg.Ctx).i32(layer).flag(!cfg.F32).
		i32(splitChunk).ptr(sc).ptr(pm).ptr(ps).ptr(pv)
	b.launch("Attention", b.k.attentionSplitV, grid, dim3{attnThreads, 1, 1})
	b.args.reset().ptr(dst.ptr).ptr(pos).i32(p.Heads).i32(p.HeadDim).i32(chunks).i32(splitChunk).ptr(pv).ptr(0)
	b.launch("Attention", b.k.attentionCombine, dim3{uint32(p.Heads), uint32(q.rows), 1}, dim3{splitCombineThreads, 1, 1})
}

// splitLayout places split-K attention's scratch for parts (row, head,
// chunk) triples: byte offsets of the chunks' scores (splitChunk floats
// each), their shares of the output (headDim floats), their maxima
// (floats) and their sums of exponentials (doubles, 8-byte aligned), and
// the bytes in all.
type splitLayout struct {
	scores, vals, maxima, sums, size uintptr
}

func newSplitLayout(parts, headDim int) splitLayout {
	var l splitLayout
	l.vals = l.scores + uintptr(parts*splitChunk)*4
	l.maxima = l.vals + uintptr(parts*headDim)*4
	l.sums = (l.maxima + uintptr(parts)*4 + 7) &^ 7
	l.size = l.sums + uintptr(parts)*8
	return l
}

// splitCombineThreads is attention_combine's block: a thread per value of
// a head of up to 256 (ATTN_MAX_HEAD_DIM), 8 warps for the Q8_0 rounding.
const splitCombineThreads = 256

// fuseRoPE moves the rope launch queued just before a one-row decode
// attention into it when that launch rotates exactly q's heads and then k's
// and stores k and v into this cache layer at the same slot and position:
// the attention kernel then rotates q and k itself and stores them (see
// its comment), a launch less a decode layer. It appends the rotation's
// arguments to b.args (the attention's so far) and reports whether it
// did.
func (b *Backend) fuseRoPE(c *kvCache, layer int, q *mat, p backend.AttnParams, slots, pos uint64) bool {
	r := b.lastPending(b.k.rope)
	if r == nil || q.rows != 1 || r.grid.x != 1 || p.HeadDim > attnThreads || p.KVHeads > attnCounters {
		return false
	}
	v := r.vals[:]
	cfg := c.cfg
	f16 := uint64(1)
	if cfg.F32 {
		f16 = 0
	}
	if !(v[0] == q.ptr && v[1] == pos && v[2] == uint64(p.Heads) && v[3] == uint64(p.HeadDim) &&
		v[ropeX2] != 0 && v[ropeX2] == v[ropeV+1] && v[ropeX2+1] == uint64(p.KVHeads) &&
		v[ropeKC] == c.k && v[ropeKC+1] == c.v && v[ropeKC+2] == slots && v[ropeKC+3] == uint64(cfg.KVDim) &&
		v[ropeKC+4] == uint64(cfg.Layers) && v[ropeKC+5] == uint64(cfg.Ctx) && v[ropeKC+6] == uint64(layer) && v[ropeKC+7] == f16) {
		return false
	}
	k, vRow, dims, thetaScale, freqScale, neox := v[ropeX2], v[ropeV], v[4], v[5], v[6], v[7]
	b.args.ptr(k).ptr(vRow).put(dims).put(thetaScale).put(freqScale).put(neox).ptr(b.counterBuf("Attention") + gluCounters*4)
	b.pending = b.pending[:len(b.pending)-1]
	return true
}

// counterBuf returns the counters of the kernels whose blocks count
// themselves done (gluCounters for mvq_glu, then attnCounters for
// attention's fused rotation), zero between launches; allocated once.
func (b *Backend) counterBuf(op string) uint64 {
	if b.counters == 0 {
		p, err := b.alloc((gluCounters + attnCounters) * 4)
		b.must(op, err)
		b.counters = p
	}
	return b.counters
}

// attentionTiles appends to tiles the (first row, row count) pairs of
// attention_tc's blocks: runs of rows with the same slot, cut every
// faRows rows.
func attentionTiles(tiles []int32, slots []int32) []int32 {
	for start := 0; start < len(slots); {
		end := start + 1
		for end < len(slots) && end-start < faRows && slots[end] == slots[start] {
			end++
		}
		tiles = append(tiles, int32(start), int32(end-start))
		start = end
	}
	return tiles
}

// mvqSplit is how many warps share a weight row in the one-token products
// (mvq_…, mvq_glu_…) of weights of kernel type code gpu: mvqSplitF16 for
// F16, 1 for the other types (mvq_split in kernels/llamago.cu).
func mvqSplit(gpu int) int {
	if gpu == gpuF16 {
		return mvqSplitF16
	}
	return 1
}
