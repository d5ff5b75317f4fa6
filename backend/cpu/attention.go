package cpu

import (
	"math"

	"llamago/backend"
)

// kvCache stores keys and values, layout [slot][layer][position][kvDim].
// Without cfg.F32 the values are rounded to F16 when stored, as in
// llama.cpp's default F16 cache.
type kvCache struct {
	cfg  backend.KVConfig
	k, v []float32
}

func (c *kvCache) Config() backend.KVConfig { return c.cfg }

func (c *kvCache) offset(slot, layer, pos int) int {
	return ((slot*c.cfg.Layers+layer)*c.cfg.Ctx + pos) * c.cfg.KVDim
}

// NewKVCache implements backend.Backend.
func (b *Backend) NewKVCache(cfg backend.KVConfig) backend.KVCache {
	n := cfg.Slots * cfg.Layers * cfg.Ctx * cfg.KVDim
	return &kvCache{cfg: cfg, k: make([]float32, n), v: make([]float32, n)}
}

// StoreKV implements backend.Backend.
func (b *Backend) StoreKV(cM backend.KVCache, layer int, bt backend.Batch, kM, vM backend.Mat) {
	c, k, v := cM.(*kvCache), asMat(kM), asMat(vM)
	cfg := c.cfg
	if !(k.cols == cfg.KVDim && v.cols == cfg.KVDim && k.rows == bt.Len() && v.rows == bt.Len() && layer < cfg.Layers) {
		backend.ShapeFail("StoreKV", "k %s v %s for %d rows into cache of %d values per position", backend.Shape(kM), backend.Shape(vM), bt.Len(), cfg.KVDim)
	}
	for r := 0; r < bt.Len(); r++ {
		slot, pos := int(bt.Slot[r]), int(bt.Pos[r])
		if !(slot >= 0 && slot < cfg.Slots && pos >= 0 && pos < cfg.Ctx) {
			backend.ShapeFail("StoreKV", "slot %d position %d outside %d slots of %d", slot, pos, cfg.Slots, cfg.Ctx)
		}
		off := c.offset(slot, layer, pos)
		copy(c.k[off:off+cfg.KVDim], k.row(r))
		copy(c.v[off:off+cfg.KVDim], v.row(r))
		if !cfg.F32 {
			roundF16(c.k[off : off+cfg.KVDim])
			roundF16(c.v[off : off+cfg.KVDim])
		}
	}
}

// attnTask computes attention for a range of (row, head) pairs.
type attnTask struct {
	dst, q        *mat
	c             *kvCache
	layer         int
	bt            backend.Batch
	p             backend.AttnParams
	scores, probs *mat
	scratch       [][]float32 // per worker: scores of one head
	qh            [][]float32 // per worker: one query head rounded to F16
}

func (t *attnTask) Run(worker, lo, hi int) {
	p, c := t.p, t.c
	group := p.Heads / p.KVHeads
	for item := lo; item < hi; item++ {
		r, h := item/p.Heads, item%p.Heads
		slot, pos := int(t.bt.Slot[r]), int(t.bt.Pos[r])
		n := pos + 1
		kvh := h / group
		q := t.q.row(r)[h*p.HeadDim : (h+1)*p.HeadDim]
		// ggml multiplies an F16 cache by the query rounded to F16.
		qh := t.qh[worker][:p.HeadDim]
		copy(qh, q)
		if !c.cfg.F32 {
			roundF16(qh)
		}
		s := t.scratch[worker][:n]
		base := c.offset(slot, t.layer, 0) + kvh*p.HeadDim
		maxS := float32(math.Inf(-1))
		for j := 0; j < n; j++ {
			k := c.k[base+j*c.cfg.KVDim : base+j*c.cfg.KVDim+p.HeadDim]
			var dot float32
			for i, kv := range k {
				dot += qh[i] * kv
			}
			s[j] = dot * p.Scale
			if s[j] > maxS {
				maxS = s[j]
			}
		}
		if t.scores != nil {
			row := t.scores.row(r)[h*(t.scores.cols/p.Heads):]
			copy(row[:n], s)
		}
		var sum float64
		for j := range s {
			e := expf(s[j] - maxS)
			s[j] = e
			sum += float64(e)
		}
		inv := float32(1 / sum)
		for j := range s {
			s[j] *= inv
		}
		if t.probs != nil {
			row := t.probs.row(r)[h*(t.probs.cols/p.Heads):]
			copy(row[:n], s)
		}
		if !c.cfg.F32 {
			// ggml multiplies F16 values by probabilities rounded to F16.
			roundF16(s)
		}
		out := t.dst.row(r)[h*p.HeadDim : (h+1)*p.HeadDim]
		clear(out)
		for j := 0; j < n; j++ {
			v := c.v[base+j*c.cfg.KVDim : base+j*c.cfg.KVDim+p.HeadDim]
			w := s[j]
			for i, x := range v {
				out[i] += w * x
			}
		}
	}
}

// Attention implements backend.Backend.
func (b *Backend) Attention(dstM, qM backend.Mat, cM backend.KVCache, layer int, bt backend.Batch, p backend.AttnParams, scoresM, probsM backend.Mat) {
	dst, q, c := asMat(dstM), asMat(qM), cM.(*kvCache)
	if !(q.cols == p.Heads*p.HeadDim && dst.cols == q.cols && dst.rows == q.rows && q.rows == bt.Len() &&
		p.KVHeads > 0 && p.Heads%p.KVHeads == 0 && p.KVHeads*p.HeadDim == c.cfg.KVDim) {
		backend.ShapeFail("Attention", "q %s into %s, %d heads over %d KV heads of %d, cache of %d", backend.Shape(qM), backend.Shape(dstM), p.Heads, p.KVHeads, p.HeadDim, c.cfg.KVDim)
	}
	t := &b.attn
	*t = attnTask{dst: dst, q: q, c: c, layer: layer, bt: bt, p: p, scratch: t.scratch, qh: t.qh}
	if scoresM != nil {
		t.scores = asMat(scoresM)
	}
	if probsM != nil {
		t.probs = asMat(probsM)
	}
	for len(t.scratch) < b.pool.Threads() {
		t.scratch = append(t.scratch, nil)
		t.qh = append(t.qh, nil)
	}
	for w := range t.scratch {
		if len(t.scratch[w]) < c.cfg.Ctx {
			t.scratch[w] = make([]float32, c.cfg.Ctx)
		}
		if len(t.qh[w]) < p.HeadDim {
			t.qh[w] = make([]float32, p.HeadDim)
		}
	}
	b.pool.For(q.rows*p.Heads, 1, t)
}
