// Package cpu is llamago's CPU backend: float32 activations, weights used
// in place in their file format, products computed on the quantized blocks
// with activations quantized on the fly as ggml does (package kernels), and
// the work of each operation split across a persistent worker pool.
// Attention's and SwiGLU's inner loops run in AVX2 assembly where the CPU
// has it (vec_amd64.s), checked against the portable loops.
package cpu

import (
	"fmt"
	"math"
	"unsafe"

	"llamago/backend"
	"llamago/internal/parallel"
	"llamago/kernels"
	"llamago/tensor"
)

// Options configure a CPU backend.
type Options struct {
	// Threads is the number of workers; < 1 means 1.
	Threads int
}

// Backend is the CPU backend. It is not safe for concurrent use: one
// forward pass at a time.
type Backend struct {
	pool *parallel.Pool

	// Reused per-operation state, so that operations allocate nothing.
	mm     matmulTask
	shared sharedMatMulTask
	attn   attnTask
	rows   rowsTask
	loops  vecLoops // the inner loops of attention and SwiGLU
	xq     []byte   // activations quantized for the current MatMul
	runs   []int    // SetSequenceRuns
	rope   ropeTask
}

// New returns a CPU backend.
func New(opts Options) *Backend {
	return &Backend{pool: parallel.New(opts.Threads), loops: bestLoops()}
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return "cpu" }

// Threads is the number of workers.
func (b *Backend) Threads() int { return b.pool.Threads() }

// Close stops the worker pool.
func (b *Backend) Close() error {
	b.pool.Close()
	return nil
}

// mat is a row-major float32 matrix.
type mat struct {
	rows, cols int
	data       []float32
}

func (m *mat) Rows() int { return m.rows }
func (m *mat) Cols() int { return m.cols }
func (m *mat) row(r int) []float32 {
	return m.data[r*m.cols : (r+1)*m.cols]
}

func asMat(m backend.Mat) *mat { return m.(*mat) }

// NewMat implements backend.Backend.
func (b *Backend) NewMat(rows, cols int) backend.Mat {
	return &mat{rows: rows, cols: cols, data: make([]float32, rows*cols)}
}

// View implements backend.Backend.
func (b *Backend) View(m backend.Mat, rows int) backend.Mat {
	src := asMat(m)
	if !(rows >= 0 && rows <= src.rows) {
		backend.ShapeFail("View", "%d rows of %s", rows, backend.Shape(m))
	}
	return &mat{rows: rows, cols: src.cols, data: src.data[:rows*src.cols]}
}

// Read implements backend.Backend.
func (b *Backend) Read(m backend.Mat, dst []float32) {
	src := asMat(m)
	if !(len(dst) == src.rows*src.cols) {
		backend.ShapeFail("Read", "%d values into %s", len(dst), backend.Shape(m))
	}
	copy(dst, src.data[:len(dst)])
}

// Write implements backend.Backend.
func (b *Backend) Write(m backend.Mat, src []float32) {
	dst := asMat(m)
	if !(len(src) == dst.rows*dst.cols) {
		backend.ShapeFail("Write", "%d values into %s", len(src), backend.Shape(m))
	}
	copy(dst.data, src)
}

// weight is a tensor in its file format.
type weight struct {
	spec     backend.WeightSpec
	rowBytes int
	vecType  tensor.Type
	f32      []float32 // the data as float32 when the type is F32
}

func (w *weight) Name() string      { return w.spec.Name }
func (w *weight) Type() tensor.Type { return w.spec.Type }
func (w *weight) Rows() int         { return w.spec.Rows }
func (w *weight) Cols() int         { return w.spec.Cols }
func (w *weight) row(r int) []byte  { return w.spec.Data[r*w.rowBytes : (r+1)*w.rowBytes] }

func asWeight(w backend.Weight) *weight { return w.(*weight) }

// LoadWeight implements backend.Backend.
func (b *Backend) LoadWeight(spec backend.WeightSpec) (backend.Weight, error) {
	if !spec.Type.Supported() {
		return nil, fmt.Errorf("cpu: tensor %s has type %s, which llamago does not support yet", spec.Name, spec.Type)
	}
	rowBytes, err := spec.Type.RowSize(int64(spec.Cols))
	if err != nil {
		return nil, fmt.Errorf("cpu: tensor %s: %w", spec.Name, err)
	}
	if int64(len(spec.Data)) != rowBytes*int64(spec.Rows) {
		return nil, fmt.Errorf("cpu: tensor %s: %d bytes for %d×%d %s, want %d", spec.Name, len(spec.Data), spec.Rows, spec.Cols, spec.Type, rowBytes*int64(spec.Rows))
	}
	// Refuse here, naming the tensor, a type the kernels cannot multiply.
	if _, err := kernels.DotFunc(spec.Type); err != nil {
		return nil, fmt.Errorf("cpu: tensor %s: %w", spec.Name, err)
	}
	adviseWillNeed(spec.Data)
	w := &weight{spec: spec, rowBytes: int(rowBytes), vecType: kernels.VecDotType(spec.Type)}
	if spec.Type == tensor.F32 && len(spec.Data) > 0 {
		if uintptr(unsafe.Pointer(&spec.Data[0]))%4 != 0 {
			return nil, fmt.Errorf("cpu: tensor %s: F32 data is not 4-byte aligned", spec.Name)
		}
		w.f32 = unsafe.Slice((*float32)(unsafe.Pointer(&spec.Data[0])), len(spec.Data)/4)
	}
	return w, nil
}

// GetRows implements backend.Backend.
func (b *Backend) GetRows(dstM backend.Mat, tableW backend.Weight, ids []int32) {
	dst, table := asMat(dstM), asWeight(tableW)
	if !(dst.rows >= len(ids) && dst.cols == table.Cols()) {
		backend.ShapeFail("GetRows", "%d ids of %s into %s", len(ids), weightShape(table), backend.Shape(dstM))
	}
	for r, id := range ids {
		if !(id >= 0 && int(id) < table.Rows()) {
			backend.ShapeFail("GetRows", "token id %d outside the table's %d rows", id, table.Rows())
		}
		if err := tensor.Dequantize(table.Type(), table.row(int(id)), dst.row(r)); err != nil {
			panic(&backend.ShapeError{Op: "GetRows", Detail: err.Error()})
		}
	}
}

func weightShape(w backend.Weight) string {
	return fmt.Sprintf("%s (%d, %d)", w.Name(), w.Rows(), w.Cols())
}

// CopyRows implements backend.Backend.
func (b *Backend) CopyRows(dstM, srcM backend.Mat, rows []int32) {
	dst, src := asMat(dstM), asMat(srcM)
	if !(dst.cols == src.cols && dst.rows >= len(rows)) {
		backend.ShapeFail("CopyRows", "%d rows of %s into %s", len(rows), backend.Shape(srcM), backend.Shape(dstM))
	}
	for i, r := range rows {
		if !(r >= 0 && int(r) < src.rows) {
			backend.ShapeFail("CopyRows", "row %d of %s", r, backend.Shape(srcM))
		}
		copy(dst.row(i), src.row(int(r)))
	}
}

// RMSNorm implements backend.Backend.
func (b *Backend) RMSNorm(dstM, xM backend.Mat, wW backend.Weight, eps float32) {
	dst, x, w := asMat(dstM), asMat(xM), asWeight(wW)
	if !(dst.rows == x.rows && dst.cols == x.cols && w.Cols() == x.cols && w.Type() == tensor.F32) {
		backend.ShapeFail("RMSNorm", "x %s dst %s weight %s %s", backend.Shape(xM), backend.Shape(dstM), weightShape(wW), w.Type())
	}
	b.rowwise(rowsTask{op: opRMSNorm, dst: dst, a: x, w: w.f32, eps: eps})
}

// Add implements backend.Backend.
func (b *Backend) Add(dstM, aM, bM backend.Mat) {
	dst, a, c := asMat(dstM), asMat(aM), asMat(bM)
	if !(a.rows == c.rows && a.cols == c.cols && dst.rows == a.rows && dst.cols == a.cols) {
		backend.ShapeFail("Add", "%s + %s into %s", backend.Shape(aM), backend.Shape(bM), backend.Shape(dstM))
	}
	b.rowwise(rowsTask{op: opAdd, dst: dst, a: a, b: c})
}

// SwiGLU implements backend.Backend.
func (b *Backend) SwiGLU(dstM, gateM, upM backend.Mat) {
	dst, g, u := asMat(dstM), asMat(gateM), asMat(upM)
	if !(g.rows == u.rows && g.cols == u.cols && dst.rows == g.rows && dst.cols == g.cols) {
		backend.ShapeFail("SwiGLU", "gate %s up %s into %s", backend.Shape(gateM), backend.Shape(upM), backend.Shape(dstM))
	}
	b.rowwise(rowsTask{op: opSwiGLU, dst: dst, a: g, b: u})
}

// rowwiseOp names an operation computed row by row.
type rowwiseOp uint8

const (
	opRMSNorm rowwiseOp = iota
	opAdd
	opSwiGLU
)

// rowsTask is an element-wise or per-row operation: cheap per value, so
// it is split across the workers only when a batch makes it large (a
// prompt), and otherwise run on the calling goroutine.
type rowsTask struct {
	op    rowwiseOp
	dst   *mat
	a, b  *mat
	w     []float32
	eps   float32
	loops *vecLoops
}

// parallelValues is the size from which a row-wise operation is worth
// handing to the workers: below it the barrier costs as much as the work.
const parallelValues = 1 << 15

func (b *Backend) rowwise(t rowsTask) {
	t.loops = &b.loops
	b.rows = t
	if t.dst.rows*t.dst.cols < parallelValues {
		b.rows.Run(0, 0, t.dst.rows)
		return
	}
	b.pool.For(t.dst.rows, 1, &b.rows)
}

func (t *rowsTask) Run(_, lo, hi int) {
	cols := t.dst.cols
	switch t.op {
	case opRMSNorm:
		for r := lo; r < hi; r++ {
			rmsNormRow(t.dst.row(r), t.a.row(r), t.w, t.eps)
		}
	case opAdd:
		a, c, d := t.a.data[lo*cols:hi*cols], t.b.data[lo*cols:hi*cols], t.dst.data[lo*cols:hi*cols]
		for i := range d {
			d[i] = a[i] + c[i]
		}
	case opSwiGLU:
		// Row by row, as ggml: its groups of 16 start at each row, and
		// a row's leftover values take the scalar SiLU.
		for r := lo; r < hi; r++ {
			t.loops.swiglu(t.dst.row(r), t.a.row(r), t.b.row(r))
		}
	}
}

// rmsNormRow sets dst = x/rms(x)·w.
func rmsNormRow(dst, x, w []float32, eps float32) {
	// Sum in float64 like ggml (ggml_float), then scale in float32.
	var sum float64
	for _, v := range x {
		sum += float64(v * v)
	}
	mean := float32(sum / float64(len(x)))
	scale := 1 / float32(math.Sqrt(float64(mean+eps)))
	dst, w = dst[:len(x)], w[:len(x)]
	for i, v := range x {
		dst[i] = v * scale * w[i]
	}
}

// RoPE implements backend.Backend, as ggml's rope does: the angle of pair
// i is freqScale·θ_i with θ_0 = pos and θ_{i+1} = θ_i·base^(-2/dims) in
// float32, its cosine and sine are glibc's cosf and sinf (sincosf.go), and
// each rotated value is one fused multiply-add of the two products, as GCC
// compiles ggml's x0·cos - x1·sin and x0·sin + x1·cos.
func (b *Backend) RoPE(xM backend.Mat, pos []int32, p backend.RoPEParams) {
	x := asMat(xM)
	if !(len(pos) == x.rows && x.cols == p.Heads*p.HeadDim && p.Dims <= p.HeadDim && p.Dims%2 == 0) {
		backend.ShapeFail("RoPE", "%s with %d positions, %d heads of %d (%d rotated)", backend.Shape(xM), len(pos), p.Heads, p.HeadDim, p.Dims)
	}
	t := &b.rope
	*t = ropeTask{x: x, pos: pos, p: p, cache: t.cache, loops: &b.loops,
		thetaScale: ropeThetaScale(p.FreqBase, p.Dims)}
	threads := b.pool.Threads()
	for len(t.cache) < threads {
		t.cache = append(t.cache, nil)
	}
	for w := range t.cache {
		if len(t.cache[w]) < p.Dims {
			t.cache[w] = make([]float32, p.Dims)
		}
	}
	// Each row computes its own angles (a sine and a cosine per pair): a
	// prompt's rows are worth spreading over the workers.
	if x.rows*x.cols < parallelValues {
		t.Run(0, 0, x.rows)
		return
	}
	b.pool.For(x.rows, 1, t)
}

// ropeTask rotates a range of rows.
type ropeTask struct {
	x          *mat
	pos        []int32
	p          backend.RoPEParams
	thetaScale float32
	cache      [][]float32 // per worker: cos, sin per rotated pair
	loops      *vecLoops
}

func (t *ropeTask) Run(worker, lo, hi int) {
	p := t.p
	cache := t.cache[worker][:p.Dims]
	for r := lo; r < hi; r++ {
		ropeRowAngles(cache, t.pos[r], p.FreqScale, t.thetaScale)
		t.loops.rope(t.x.row(r), cache, p.Heads, p.HeadDim, p.Dims, p.NeoX)
	}
}
