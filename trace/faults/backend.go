// Package faults plants, one at a time, the bugs a debugging session
// suspected in an inference engine, so that tests can prove that a trace
// diff against a clean run names the probe and the layer where each bug
// is. A fault lives either in a copy of the computation (Backend, a
// decorator around a real backend that alters one operation in one layer)
// or in a copy of the model file (RewriteGGUF with an Edit); the real
// model code and backends are never touched.
package faults

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"llamago/backend"
	"llamago/tensor"
)

// Kind is a fault planted in the computation.
type Kind int

// The faults Backend can plant.
const (
	// ScaleQ multiplies the output of the Q projection by Factor.
	ScaleQ Kind = iota + 1
	// ScaleAttnNorm multiplies the output of the attention RMSNorm by Factor.
	ScaleAttnNorm
	// RoPEPositionOffByOne rotates queries and keys by position+1.
	RoPEPositionOffByOne
	// RoPEWrongPairs rotates the half-split pairs (i, i+d/2) where the
	// model wants adjacent ones (2i, 2i+1), or the reverse.
	RoPEWrongPairs
	// MaskOffByOne lets position p attend to position p+1 as well.
	MaskOffByOne
	// SoftmaxNoMaxShift exponentiates the raw scores instead of their
	// difference to the row's largest, which overflows float32 (exp of
	// more than 88.7) on large scores.
	SoftmaxNoMaxShift
)

func (k Kind) String() string {
	switch k {
	case ScaleQ:
		return "Q projection scaled"
	case ScaleAttnNorm:
		return "attention RMSNorm output scaled"
	case RoPEPositionOffByOne:
		return "RoPE position off by one"
	case RoPEWrongPairs:
		return "RoPE pairs in the wrong layout"
	case MaskOffByOne:
		return "causal mask off by one"
	case SoftmaxNoMaxShift:
		return "softmax without the max shift"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Fault is one planted bug: what, in which layer, and for the scaling
// kinds by how much.
type Fault struct {
	Kind   Kind
	Layer  int
	Factor float32
}

func (f Fault) String() string {
	s := fmt.Sprintf("%s in layer %d", f.Kind, f.Layer)
	if f.Kind == ScaleQ || f.Kind == ScaleAttnNorm {
		s += fmt.Sprintf(" (×%g)", f.Factor)
	}
	return s
}

// Backend computes as the backend it wraps except for its faults. It tells
// the layers apart by the weights the model passes (their names carry
// "blk.N."): RoPE and attention, which take no weight, belong to the layer
// of the last weight seen, as the model computes a layer's steps in order.
//
// Attention faults replace the wrapped backend's attention in their layer
// by a float32 rewrite over a copy of the KV cache, kept beside the real
// one. That copy holds what StoreKV stored (rounded to F16 when the cache
// is F16) but the rewrite does not round queries or probabilities as an
// F16 cache makes the CPU backend do: compare it with F32-cache runs.
type Backend struct {
	backend.Backend
	faults []Fault
	layer  int // of the last weight seen; -1 outside the layers
	host   []float32
}

// Wrap returns inner with faults planted.
func Wrap(inner backend.Backend, faults ...Fault) *Backend {
	return &Backend{Backend: inner, faults: faults, layer: -1}
}

// Wrapper returns a function that wraps a backend with faults, the shape
// trace.Options.WrapBackend takes.
func Wrapper(faults ...Fault) func(backend.Backend) backend.Backend {
	return func(inner backend.Backend) backend.Backend { return Wrap(inner, faults...) }
}

// fault returns the fault of kind k planted in layer, if any.
func (b *Backend) fault(k Kind, layer int) (Fault, bool) {
	for _, f := range b.faults {
		if f.Kind == k && f.Layer == layer {
			return f, true
		}
	}
	return Fault{}, false
}

// see records the layer a weight belongs to.
func (b *Backend) see(w backend.Weight) {
	b.layer = -1
	rest, ok := strings.CutPrefix(w.Name(), "blk.")
	if !ok {
		return
	}
	num, _, ok := strings.Cut(rest, ".")
	if !ok {
		return
	}
	if n, err := strconv.Atoi(num); err == nil {
		b.layer = n
	}
}

// scale multiplies every value of m by f, through the host.
func (b *Backend) scale(m backend.Mat, f float32) {
	buf := b.hostBuf(m.Rows() * m.Cols())
	b.Backend.Read(m, buf)
	for i := range buf {
		buf[i] *= f
	}
	b.Backend.Write(m, buf)
}

func (b *Backend) hostBuf(n int) []float32 {
	if cap(b.host) < n {
		b.host = make([]float32, n)
	}
	return b.host[:n]
}

// RMSNorm implements backend.Backend.
func (b *Backend) RMSNorm(dst, x backend.Mat, w backend.Weight, eps float32) {
	b.see(w)
	b.Backend.RMSNorm(dst, x, w, eps)
	if f, ok := b.fault(ScaleAttnNorm, b.layer); ok && strings.HasSuffix(w.Name(), ".attn_norm.weight") {
		b.scale(dst, f.Factor)
	}
}

// MatMul implements backend.Backend.
func (b *Backend) MatMul(dst, x backend.Mat, w backend.Weight) {
	b.see(w)
	b.Backend.MatMul(dst, x, w)
	if f, ok := b.fault(ScaleQ, b.layer); ok && strings.HasSuffix(w.Name(), ".attn_q.weight") {
		b.scale(dst, f.Factor)
	}
}

// RoPE implements backend.Backend.
func (b *Backend) RoPE(x backend.Mat, pos []int32, p backend.RoPEParams) {
	if _, ok := b.fault(RoPEPositionOffByOne, b.layer); ok {
		shifted := make([]int32, len(pos))
		for i, v := range pos {
			shifted[i] = v + 1
		}
		pos = shifted
	}
	if _, ok := b.fault(RoPEWrongPairs, b.layer); ok {
		p.NeoX = !p.NeoX
	}
	b.Backend.RoPE(x, pos, p)
}

// cache is the wrapped backend's cache with a float32 copy beside it.
type cache struct {
	inner backend.KVCache
	cfg   backend.KVConfig
	k, v  []float32 // [slot][layer][pos][kvDim]
}

func (c *cache) Config() backend.KVConfig { return c.cfg }

func (c *cache) offset(slot, layer, pos int) int {
	return ((slot*c.cfg.Layers+layer)*c.cfg.Ctx + pos) * c.cfg.KVDim
}

func unwrap(c backend.KVCache) backend.KVCache {
	if fc, ok := c.(*cache); ok {
		return fc.inner
	}
	return c
}

// NewKVCache implements backend.Backend.
func (b *Backend) NewKVCache(cfg backend.KVConfig) backend.KVCache {
	n := cfg.Slots * cfg.Layers * cfg.Ctx * cfg.KVDim
	return &cache{inner: b.Backend.NewKVCache(cfg), cfg: cfg, k: make([]float32, n), v: make([]float32, n)}
}

// StoreKV implements backend.Backend.
func (b *Backend) StoreKV(c backend.KVCache, layer int, bt backend.Batch, k, v backend.Mat) {
	b.Backend.StoreKV(unwrap(c), layer, bt, k, v)
	fc, ok := c.(*cache)
	if !ok {
		return
	}
	kvDim := fc.cfg.KVDim
	kb := make([]float32, k.Rows()*k.Cols())
	vb := make([]float32, v.Rows()*v.Cols())
	b.Backend.Read(k, kb)
	b.Backend.Read(v, vb)
	for r := 0; r < bt.Len(); r++ {
		off := fc.offset(int(bt.Slot[r]), layer, int(bt.Pos[r]))
		copy(fc.k[off:off+kvDim], kb[r*kvDim:(r+1)*kvDim])
		copy(fc.v[off:off+kvDim], vb[r*kvDim:(r+1)*kvDim])
		if !fc.cfg.F32 {
			roundF16(fc.k[off : off+kvDim])
			roundF16(fc.v[off : off+kvDim])
		}
	}
}

func roundF16(x []float32) {
	for i, v := range x {
		x[i] = tensor.FP16ToFloat32(tensor.Float32ToFP16(v))
	}
}

// Attention implements backend.Backend.
func (b *Backend) Attention(dst, q backend.Mat, c backend.KVCache, layer int, bt backend.Batch, p backend.AttnParams, scores, probs backend.Mat) {
	_, mask := b.fault(MaskOffByOne, layer)
	_, noShift := b.fault(SoftmaxNoMaxShift, layer)
	fc, ok := c.(*cache)
	if !ok || (!mask && !noShift) {
		b.Backend.Attention(dst, q, unwrap(c), layer, bt, p, scores, probs)
		return
	}
	b.attention(dst, q, fc, layer, bt, p, scores, probs, mask, noShift)
}

// attention is causal softmax attention over the cache copy, written out
// so that one step of it can be broken: the span of keys (mask) or the
// softmax (noShift).
func (b *Backend) attention(dst, q backend.Mat, c *cache, layer int, bt backend.Batch, p backend.AttnParams, scoresM, probsM backend.Mat, mask, noShift bool) {
	rows, width := q.Rows(), q.Cols()
	qb := make([]float32, rows*width)
	b.Backend.Read(q, qb)
	out := make([]float32, rows*width)
	var sc, pr []float32
	if scoresM != nil {
		sc = make([]float32, scoresM.Rows()*scoresM.Cols())
	}
	if probsM != nil {
		pr = make([]float32, probsM.Rows()*probsM.Cols())
	}
	group := p.Heads / p.KVHeads
	kvDim := c.cfg.KVDim
	for r := 0; r < rows; r++ {
		pos := int(bt.Pos[r])
		n := pos + 1
		if mask {
			n = min(pos+2, c.cfg.Ctx) // one key past the causal limit
		}
		base := c.offset(int(bt.Slot[r]), layer, 0)
		for h := 0; h < p.Heads; h++ {
			qh := qb[r*width+h*p.HeadDim:][:p.HeadDim]
			kvOff := (h / group) * p.HeadDim
			s := make([]float32, n)
			maxS := float32(math.Inf(-1))
			for j := range s {
				k := c.k[base+j*kvDim+kvOff:][:p.HeadDim]
				var dot float32
				for i, x := range qh {
					dot += x * k[i]
				}
				s[j] = dot * p.Scale
				maxS = max(maxS, s[j])
			}
			if sc != nil {
				span := scoresM.Cols() / p.Heads
				copy(sc[r*scoresM.Cols()+h*span:][:min(n, span)], s)
			}
			if noShift {
				maxS = 0
			}
			var sum float64
			for j := range s {
				// Exponentials are float32, as a float32 kernel's are: an
				// unshifted score above 88.7 overflows to +Inf here.
				s[j] = float32(math.Exp(float64(s[j] - maxS)))
				sum += float64(s[j])
			}
			inv := float32(1 / sum)
			for j := range s {
				s[j] *= inv
			}
			if pr != nil {
				span := probsM.Cols() / p.Heads
				copy(pr[r*probsM.Cols()+h*span:][:min(n, span)], s)
			}
			o := out[r*width+h*p.HeadDim:][:p.HeadDim]
			for j, w := range s {
				v := c.v[base+j*kvDim+kvOff:][:p.HeadDim]
				for i, x := range v {
					o[i] += w * x
				}
			}
		}
	}
	b.Backend.Write(dst, out)
	if scoresM != nil {
		b.Backend.Write(scoresM, sc)
	}
	if probsM != nil {
		b.Backend.Write(probsM, pr)
	}
}
