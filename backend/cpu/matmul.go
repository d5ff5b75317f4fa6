package cpu

import (
	"llamago/backend"
	"llamago/kernels"
	"llamago/tensor"
)

// matmulTask computes dst = x·wᵀ for a range of weight rows, over every
// token: each weight row is read once and used for all tokens.
type matmulTask struct {
	w        *weight
	xq       []byte // quantized activations, xqStride bytes per token
	xqStride int
	nTok     int
	dst      *mat
	// runs, when it has more than one entry, splits the tokens into
	// consecutive runs (one per sequence) that are multiplied separately.
	runs []int
}

// runChunkBytes bounds the weight bytes a worker multiplies with one run
// before the next: small enough to stay in the core's L2 cache while
// every run reads them.
const runChunkBytes = 256 << 10

func (t *matmulTask) Run(_, lo, hi int) {
	w := t.w
	if len(t.runs) <= 1 {
		kernels.MatMulRows(w.spec.Type, w.spec.Data, w.rowBytes, lo, hi, t.xq, t.xqStride, t.nTok, w.Cols(), t.dst.data, t.dst.cols)
		return
	}
	chunk := max(8, runChunkBytes/max(w.rowBytes, 1)&^7)
	for r0 := lo; r0 < hi; r0 += chunk {
		r1 := min(hi, r0+chunk)
		tok := 0
		for _, n := range t.runs {
			kernels.MatMulRows(w.spec.Type, w.spec.Data, w.rowBytes, r0, r1, t.xq[tok*t.xqStride:], t.xqStride, n, w.Cols(), t.dst.data[tok*t.dst.cols:], t.dst.cols)
			tok += n
		}
	}
}

// SetSequenceRuns tells the backend which consecutive rows of the
// products that follow belong to one sequence (runs[i] rows each; nil:
// all one). The products of some weight types round differently with the
// number of tokens multiplied at once, exactly as llama.cpp's CPU code
// does (kernels.TokenCountMatters); for those, each run is multiplied as
// if it were alone, so that a sequence's results do not depend on the
// other sequences in its batch. The model sets the runs for each forward
// pass.
func (b *Backend) SetSequenceRuns(runs []int) { b.runs = runs }

// runsFor returns the runs a product of nTok rows of weight type wt
// splits into: nil where one call does the same (one run, or a type whose
// bits do not depend on the token count).
func (b *Backend) runsFor(wt tensor.Type, nTok int) []int {
	if len(b.runs) <= 1 || !kernels.TokenCountMatters(wt) {
		return nil
	}
	total := 0
	for _, n := range b.runs {
		total += n
	}
	if total != nTok {
		backend.ShapeFail("MatMul", "sequence runs of %d rows for a product of %d rows", total, nTok)
	}
	return b.runs
}

// MatMul implements backend.Backend. Activations are quantized once to the
// weight type's dot-product type (Q8_0 for Q4_0, Q8_K for the k-quants, F16
// for F16, ...), as ggml does, then every weight row is dotted with them.
func (b *Backend) MatMul(dstM, xM backend.Mat, wW backend.Weight) {
	dst, x, w := asMat(dstM), asMat(xM), asWeight(wW)
	if !(x.cols == w.Cols() && dst.rows == x.rows && dst.cols == w.Rows()) {
		backend.ShapeFail("MatMul", "x %s · %sᵀ into %s", backend.Shape(xM), weightShape(wW), backend.Shape(dstM))
	}
	xq, stride := b.quantize(x, w.vecType)
	b.mm = matmulTask{w: w, xq: xq, xqStride: stride, nTok: x.rows, dst: dst, runs: b.runsFor(w.spec.Type, x.rows)}
	b.pool.For(w.Rows(), 4, &b.mm)
}

// quantize quantizes x's rows to vecType into the backend's buffer and
// returns them with the bytes per row.
func (b *Backend) quantize(x *mat, vecType tensor.Type) ([]byte, int) {
	stride := kernels.RowBytes(vecType, x.cols)
	need := stride * x.rows
	if cap(b.xq) < need {
		b.xq = make([]byte, need)
	}
	xq := b.xq[:need]
	for r := 0; r < x.rows; r++ {
		kernels.QuantizeRow(vecType, x.row(r), xq[r*stride:(r+1)*stride])
	}
	return xq, stride
}

// maxShared is how many weights MatMulShared takes in one operation: the
// three attention projections (q, k, v) or the FFN's gate and up.
const maxShared = 3

// sharedMatMulTask is several matmulTasks over the same activations, their
// weight rows numbered one after the other: part i owns the rows
// [first[i], first[i+1]).
type sharedMatMulTask struct {
	parts [maxShared]matmulTask
	first [maxShared + 1]int
	n     int // parts in use
}

func (t *sharedMatMulTask) Run(worker, lo, hi int) {
	for i := 0; i < t.n && lo < hi; i++ {
		start, end := t.first[i], t.first[i+1]
		if lo >= end {
			continue
		}
		stop := min(hi, end)
		t.parts[i].Run(worker, lo-start, stop-start)
		lo = stop
	}
}

// MatMulShared sets dsts[i] = x·ws[i]ᵀ for every i, the same bits as one
// MatMul per weight, in one operation of the workers: x is quantized once
// and the workers meet once, where separate MatMuls would quantize x and
// wait for each other once per weight. A decode step multiplies the same
// normalised row by q, k and v, and by the FFN's gate and up: this saves
// 66 of the 176 barriers a TinyLlama-sized token takes. Weights whose
// activation types differ, or more than maxShared of them, fall back to
// one MatMul each.
func (b *Backend) MatMulShared(dsts []backend.Mat, xM backend.Mat, ws []backend.Weight) {
	if len(dsts) != len(ws) {
		backend.ShapeFail("MatMulShared", "%d outputs for %d weights", len(dsts), len(ws))
	}
	if len(ws) == 0 {
		return
	}
	x := asMat(xM)
	first := asWeight(ws[0])
	shared := len(ws) <= maxShared
	for i, wW := range ws {
		w, dst := asWeight(wW), asMat(dsts[i])
		if !(x.cols == w.Cols() && dst.rows == x.rows && dst.cols == w.Rows()) {
			backend.ShapeFail("MatMulShared", "x %s · %sᵀ into %s", backend.Shape(xM), weightShape(wW), backend.Shape(dsts[i]))
		}
		shared = shared && w.vecType == first.vecType
	}
	if !shared {
		for i, w := range ws {
			b.MatMul(dsts[i], xM, w)
		}
		return
	}
	xq, stride := b.quantize(x, first.vecType)
	t := &b.shared
	t.n = len(ws)
	for i, wW := range ws {
		w := asWeight(wW)
		t.parts[i] = matmulTask{w: w, xq: xq, xqStride: stride, nTok: x.rows, dst: asMat(dsts[i]), runs: b.runsFor(w.spec.Type, x.rows)}
		t.first[i+1] = t.first[i] + w.Rows()
	}
	b.pool.For(t.first[t.n], 4, t)
	for i := range t.parts[:t.n] {
		t.parts[i] = matmulTask{}
	}
}
