// Package oracle is the ground-truth backend: every value in float64,
// weights through the reference dequantizers of package tensor only, plain
// loops in the order the math is written. It is slow on purpose and shares
// no code with the fast kernels, so that when another backend parts from
// it, the other backend is wrong.
package oracle

import (
	"fmt"
	"math"

	"llamago/backend"
	"llamago/tensor"
)

// Backend is the float64 reference backend.
type Backend struct{}

// New returns an oracle backend.
func New() *Backend { return &Backend{} }

// Name implements backend.Backend.
func (*Backend) Name() string { return "oracle" }

// Close implements backend.Backend.
func (*Backend) Close() error { return nil }

type mat struct {
	rows, cols int
	data       []float64
}

func (m *mat) Rows() int            { return m.rows }
func (m *mat) Cols() int            { return m.cols }
func (m *mat) at(r, c int) *float64 { return &m.data[r*m.cols+c] }
func (m *mat) row(r int) []float64  { return m.data[r*m.cols : (r+1)*m.cols] }
func asMat(m backend.Mat) *mat      { return m.(*mat) }
func (*Backend) NewMat(rows, cols int) backend.Mat {
	return &mat{rows: rows, cols: cols, data: make([]float64, rows*cols)}
}

// View implements backend.Backend.
func (*Backend) View(m backend.Mat, rows int) backend.Mat {
	s := asMat(m)
	if !(rows >= 0 && rows <= s.rows) {
		backend.ShapeFail("View", "%d rows of %s", rows, backend.Shape(m))
	}
	return &mat{rows: rows, cols: s.cols, data: s.data[:rows*s.cols]}
}

// Read implements backend.Backend.
func (*Backend) Read(m backend.Mat, dst []float32) {
	s := asMat(m)
	if !(len(dst) == s.rows*s.cols) {
		backend.ShapeFail("Read", "%d values from %s", len(dst), backend.Shape(m))
	}
	for i := range dst {
		dst[i] = float32(s.data[i])
	}
}

// Write implements backend.Backend.
func (*Backend) Write(m backend.Mat, src []float32) {
	d := asMat(m)
	if !(len(src) == d.rows*d.cols) {
		backend.ShapeFail("Write", "%d values into %s", len(src), backend.Shape(m))
	}
	for i, v := range src {
		d.data[i] = float64(v)
	}
}

// weight holds a tensor dequantized once to float64, row-major (out, in).
type weight struct {
	name       string
	typ        tensor.Type
	rows, cols int
	data       []float64
}

func (w *weight) Name() string      { return w.name }
func (w *weight) Type() tensor.Type { return w.typ }
func (w *weight) Rows() int         { return w.rows }
func (w *weight) Cols() int         { return w.cols }

// LoadWeight implements backend.Backend: the tensor goes through
// tensor.Dequantize, the reference dequantizer, once.
func (*Backend) LoadWeight(spec backend.WeightSpec) (backend.Weight, error) {
	n := spec.Rows * spec.Cols
	f := make([]float32, n)
	if err := tensor.Dequantize(spec.Type, spec.Data, f); err != nil {
		return nil, fmt.Errorf("oracle: tensor %s: %w", spec.Name, err)
	}
	w := &weight{name: spec.Name, typ: spec.Type, rows: spec.Rows, cols: spec.Cols, data: make([]float64, n)}
	for i, v := range f {
		w.data[i] = float64(v)
	}
	return w, nil
}

// kvCache keeps keys and values in float64: [slot][layer][pos][kvDim].
type kvCache struct {
	cfg  backend.KVConfig
	k, v []float64
}

func (c *kvCache) Config() backend.KVConfig { return c.cfg }
func (c *kvCache) at(slot, layer, pos int) int {
	return ((slot*c.cfg.Layers+layer)*c.cfg.Ctx + pos) * c.cfg.KVDim
}

// NewKVCache implements backend.Backend. The oracle keeps float64 whatever
// the configuration asks.
func (*Backend) NewKVCache(cfg backend.KVConfig) backend.KVCache {
	n := cfg.Slots * cfg.Layers * cfg.Ctx * cfg.KVDim
	return &kvCache{cfg: cfg, k: make([]float64, n), v: make([]float64, n)}
}

// GetRows implements backend.Backend.
func (*Backend) GetRows(dstM backend.Mat, tableW backend.Weight, ids []int32) {
	dst, table := asMat(dstM), tableW.(*weight)
	if !(dst.rows >= len(ids) && dst.cols == table.cols) {
		backend.ShapeFail("GetRows", "%d ids into %s", len(ids), backend.Shape(dstM))
	}
	for r, id := range ids {
		if !(id >= 0 && int(id) < table.rows) {
			backend.ShapeFail("GetRows", "token id %d outside %d rows", id, table.rows)
		}
		copy(dst.row(r), table.data[int(id)*table.cols:(int(id)+1)*table.cols])
	}
}

// CopyRows implements backend.Backend.
func (*Backend) CopyRows(dstM, srcM backend.Mat, rows []int32) {
	dst, src := asMat(dstM), asMat(srcM)
	if !(dst.cols == src.cols && dst.rows >= len(rows)) {
		backend.ShapeFail("CopyRows", "%d rows of %s into %s", len(rows), backend.Shape(srcM), backend.Shape(dstM))
	}
	for i, r := range rows {
		copy(dst.row(i), src.row(int(r)))
	}
}

// RMSNorm implements backend.Backend: y = x / sqrt(mean(x²) + eps) · w.
func (*Backend) RMSNorm(dstM, xM backend.Mat, wW backend.Weight, eps float32) {
	dst, x, w := asMat(dstM), asMat(xM), wW.(*weight)
	if !(dst.rows == x.rows && dst.cols == x.cols && w.cols == x.cols) {
		backend.ShapeFail("RMSNorm", "x %s weight %d", backend.Shape(xM), w.cols)
	}
	for r := 0; r < x.rows; r++ {
		var ss float64
		for _, v := range x.row(r) {
			ss += v * v
		}
		inv := 1 / math.Sqrt(ss/float64(x.cols)+float64(eps))
		for c, v := range x.row(r) {
			*dst.at(r, c) = v * inv * w.data[c]
		}
	}
}

// MatMul implements backend.Backend: dst[t][o] = Σᵢ x[t][i]·W[o][i], in
// float64, with each activation row first put through the format ggml's CPU
// code rounds it to for that weight type (see activationFormat), so that
// the oracle computes the function llama.cpp computes, exactly.
func (*Backend) MatMul(dstM, xM backend.Mat, wW backend.Weight) {
	dst, x, w := asMat(dstM), asMat(xM), wW.(*weight)
	if !(x.cols == w.cols && dst.rows == x.rows && dst.cols == w.rows) {
		backend.ShapeFail("MatMul", "x %s · %s (%d, %d)ᵀ into %s", backend.Shape(xM), w.name, w.rows, w.cols, backend.Shape(dstM))
	}
	xr := make([]float64, x.cols)
	for t := 0; t < x.rows; t++ {
		copy(xr, x.row(t))
		roundActivations(activationFormat(w.typ), xr)
		for o := 0; o < w.rows; o++ {
			wr := w.data[o*w.cols : (o+1)*w.cols]
			var sum float64
			for i := range xr {
				sum += xr[i] * wr[i]
			}
			*dst.at(t, o) = sum
		}
	}
}

// Add implements backend.Backend.
func (*Backend) Add(dstM, aM, bM backend.Mat) {
	dst, a, b := asMat(dstM), asMat(aM), asMat(bM)
	if !(a.rows == b.rows && a.cols == b.cols && dst.rows == a.rows && dst.cols == a.cols) {
		backend.ShapeFail("Add", "%s + %s", backend.Shape(aM), backend.Shape(bM))
	}
	for i := range dst.data {
		dst.data[i] = a.data[i] + b.data[i]
	}
}

// SwiGLU implements backend.Backend: silu(g)·u with silu(g) = g/(1+e^-g).
func (*Backend) SwiGLU(dstM, gM, uM backend.Mat) {
	dst, g, u := asMat(dstM), asMat(gM), asMat(uM)
	if !(g.rows == u.rows && g.cols == u.cols && dst.rows == g.rows && dst.cols == g.cols) {
		backend.ShapeFail("SwiGLU", "%s ⊙ %s", backend.Shape(gM), backend.Shape(uM))
	}
	for i := range dst.data {
		dst.data[i] = g.data[i] / (1 + math.Exp(-g.data[i])) * u.data[i]
	}
}

// RoPE implements backend.Backend: pair i of each head is rotated by
// pos·scale·base^(-2i/dims).
func (*Backend) RoPE(xM backend.Mat, pos []int32, p backend.RoPEParams) {
	x := asMat(xM)
	if !(len(pos) == x.rows && x.cols == p.Heads*p.HeadDim && p.Dims <= p.HeadDim) {
		backend.ShapeFail("RoPE", "%s with %d positions", backend.Shape(xM), len(pos))
	}
	half := p.Dims / 2
	for r := 0; r < x.rows; r++ {
		for h := 0; h < p.Heads; h++ {
			head := x.row(r)[h*p.HeadDim : (h+1)*p.HeadDim]
			for i := 0; i < half; i++ {
				theta := float64(pos[r]) * float64(p.FreqScale) * math.Pow(float64(p.FreqBase), -2*float64(i)/float64(p.Dims))
				c, s := math.Cos(theta), math.Sin(theta)
				a, b := 2*i, 2*i+1
				if p.NeoX {
					a, b = i, i+half
				}
				x0, x1 := head[a], head[b]
				head[a] = x0*c - x1*s
				head[b] = x0*s + x1*c
			}
		}
	}
}

// StoreKV implements backend.Backend.
func (*Backend) StoreKV(cM backend.KVCache, layer int, b backend.Batch, kM, vM backend.Mat) {
	c, k, v := cM.(*kvCache), asMat(kM), asMat(vM)
	if !(k.cols == c.cfg.KVDim && v.cols == c.cfg.KVDim && k.rows == b.Len()) {
		backend.ShapeFail("StoreKV", "k %s v %s", backend.Shape(kM), backend.Shape(vM))
	}
	for r := 0; r < b.Len(); r++ {
		off := c.at(int(b.Slot[r]), layer, int(b.Pos[r]))
		copy(c.k[off:off+c.cfg.KVDim], k.row(r))
		copy(c.v[off:off+c.cfg.KVDim], v.row(r))
	}
}

// Attention implements backend.Backend: for each head h of row r, with
// its KV head h/(Heads/KVHeads): s_j = q·k_j·scale for j ≤ pos,
// p = softmax(s), out = Σ_j p_j·v_j.
func (*Backend) Attention(dstM, qM backend.Mat, cM backend.KVCache, layer int, b backend.Batch, p backend.AttnParams, scoresM, probsM backend.Mat) {
	dst, q, c := asMat(dstM), asMat(qM), cM.(*kvCache)
	if !(q.cols == p.Heads*p.HeadDim && dst.cols == q.cols && q.rows == b.Len() && p.KVHeads*p.HeadDim == c.cfg.KVDim && p.Heads%p.KVHeads == 0) {
		backend.ShapeFail("Attention", "q %s, %d heads over %d KV heads of %d", backend.Shape(qM), p.Heads, p.KVHeads, p.HeadDim)
	}
	group := p.Heads / p.KVHeads
	for r := 0; r < q.rows; r++ {
		n := int(b.Pos[r]) + 1
		base := c.at(int(b.Slot[r]), layer, 0)
		for h := 0; h < p.Heads; h++ {
			qh := q.row(r)[h*p.HeadDim : (h+1)*p.HeadDim]
			kvOff := (h / group) * p.HeadDim
			s := make([]float64, n)
			maxS := math.Inf(-1)
			for j := 0; j < n; j++ {
				k := c.k[base+j*c.cfg.KVDim+kvOff:][:p.HeadDim]
				var dot float64
				for i := range qh {
					dot += qh[i] * k[i]
				}
				s[j] = dot * float64(p.Scale)
				maxS = math.Max(maxS, s[j])
			}
			if scoresM != nil {
				sc := asMat(scoresM)
				copy(sc.row(r)[h*(sc.cols/p.Heads):][:n], s)
			}
			var sum float64
			for j := range s {
				s[j] = math.Exp(s[j] - maxS)
				sum += s[j]
			}
			for j := range s {
				s[j] /= sum
			}
			if probsM != nil {
				pr := asMat(probsM)
				copy(pr.row(r)[h*(pr.cols/p.Heads):][:n], s)
			}
			out := dst.row(r)[h*p.HeadDim : (h+1)*p.HeadDim]
			for i := range out {
				out[i] = 0
			}
			for j := 0; j < n; j++ {
				v := c.v[base+j*c.cfg.KVDim+kvOff:][:p.HeadDim]
				for i := range out {
					out[i] += s[j] * v[i]
				}
			}
		}
	}
}
