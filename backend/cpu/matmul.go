package cpu

import (
	"llamago/backend"
	"llamago/kernels"
)

// matmulTask computes dst = x·wᵀ for a range of weight rows, over every
// token: each weight row is read once and used for all tokens.
type matmulTask struct {
	w        *weight
	xq       []byte // quantized activations, xqStride bytes per token
	xqStride int
	nTok     int
	dst      *mat
}

func (t *matmulTask) Run(_, lo, hi int) {
	w := t.w
	kernels.MatMulRows(w.spec.Type, w.spec.Data, w.rowBytes, lo, hi, t.xq, t.xqStride, t.nTok, w.Cols(), t.dst.data, t.dst.cols)
}

// MatMul implements backend.Backend. Activations are quantized once to the
// weight type's dot-product type (Q8_0 for Q4_0, Q8_K for the k-quants, F16
// for F16, ...), as ggml does, then every weight row is dotted with them.
func (b *Backend) MatMul(dstM, xM backend.Mat, wW backend.Weight) {
	dst, x, w := asMat(dstM), asMat(xM), asWeight(wW)
	if !(x.cols == w.Cols() && dst.rows == x.rows && dst.cols == w.Rows()) {
		backend.ShapeFail("MatMul", "x %s · %sᵀ into %s", backend.Shape(xM), weightShape(wW), backend.Shape(dstM))
	}
	stride := kernels.RowBytes(w.vecType, x.cols)
	need := stride * x.rows
	if cap(b.xq) < need {
		b.xq = make([]byte, need)
	}
	xq := b.xq[:need]
	for r := 0; r < x.rows; r++ {
		kernels.QuantizeRow(w.vecType, x.row(r), xq[r*stride:(r+1)*stride])
	}
	b.mm = matmulTask{w: w, xq: xq, xqStride: stride, nTok: x.rows, dst: dst}
	b.pool.For(w.Rows(), 4, &b.mm)
}
