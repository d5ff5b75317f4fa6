package cpu

import (
	"llamago/backend"
)

// kvCache stores keys and values, layout [slot][layer][position][kvDim],
// in float32 with cfg.F32 and otherwise as F16, as llama.cpp's default
// cache does: half the memory, and half the bytes attention reads.
type kvCache struct {
	cfg      backend.KVConfig
	k, v     []float32 // cfg.F32
	k16, v16 []uint16  // !cfg.F32
}

func (c *kvCache) Config() backend.KVConfig { return c.cfg }

func (c *kvCache) offset(slot, layer, pos int) int {
	return ((slot*c.cfg.Layers+layer)*c.cfg.Ctx + pos) * c.cfg.KVDim
}

// NewKVCache implements backend.Backend.
func (b *Backend) NewKVCache(cfg backend.KVConfig) backend.KVCache {
	n := cfg.Slots * cfg.Layers * cfg.Ctx * cfg.KVDim
	if cfg.F32 {
		return &kvCache{cfg: cfg, k: make([]float32, n), v: make([]float32, n)}
	}
	return &kvCache{cfg: cfg, k16: make([]uint16, n), v16: make([]uint16, n)}
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
		if cfg.F32 {
			copy(c.k[off:off+cfg.KVDim], k.row(r))
			copy(c.v[off:off+cfg.KVDim], v.row(r))
		} else {
			b.loops.toF16(c.k16[off:off+cfg.KVDim], k.row(r))
			b.loops.toF16(c.v16[off:off+cfg.KVDim], v.row(r))
		}
	}
}

// attnTask computes attention for ranges of (row, query head) items. The
// items of one range that share a KV head are computed one after another,
// while that head's keys and values are still in the CPU's caches.
//
// The products follow ggml's: llama.cpp multiplies the values by the
// probabilities (and an F16 cache's keys by the query) in tinyBLAS's order
// for a batch of two or more tokens, in ggml_vec_dot's for one token.
// llamago takes the tiled order for the rows of a sequence (slot) that has
// two or more rows in the batch, the one-token order for a sequence's
// single row: for one sequence that is llama.cpp's choice, and a row's
// result never depends on other sequences' rows, so the server's batched
// decode steps equal each sequence's steps alone, bit for bit. (llama.cpp
// would use the tiled order for every row of a multi-sequence batch.)
type attnTask struct {
	dst, q        *mat
	c             *kvCache
	layer         int
	bt            backend.Batch
	p             backend.AttnParams
	scores, probs *mat
	scratch       []attnScratch // per worker
	loops         *vecLoops
	// slotRows counts the batch's rows per slot: a row takes the tiled
	// order when its slot has two or more.
	slotRows []int32
}

// attnScratch is one worker's space for a group of query heads.
type attnScratch struct {
	s []float32 // scores, then probabilities: group × positions
	q []float32 // the query heads, rounded to F16 for an F16 cache
	// acc holds the lane accumulators of a weighted sum of values.
	acc []float32
}

// Run computes the items [lo, hi) counted from the end: the pool hands
// out its first ranges first, and the last rows of a prompt, which attend
// over the most positions, are best started early so that the cheap ones
// fill the gaps at the end.
func (t *attnTask) Run(worker, lo, hi int) {
	p := t.p
	total := t.q.rows * p.Heads
	lo, hi = total-hi, total-lo
	group := p.Heads / p.KVHeads
	for item := lo; item < hi; {
		r, h := item/p.Heads, item%p.Heads
		kvh := h / group
		end := min((kvh+1)*group, h+hi-item)
		t.heads(worker, r, kvh, h, end)
		item += end - h
	}
}

// heads computes query heads [h0, h1) of row r, which share KV head kvh.
func (t *attnTask) heads(worker, r, kvh, h0, h1 int) {
	p, c := t.p, t.c
	hd, kvDim := p.HeadDim, c.cfg.KVDim
	nh := h1 - h0
	slot, pos := int(t.bt.Slot[r]), int(t.bt.Pos[r])
	n := pos + 1
	sc := &t.scratch[worker]
	base := c.offset(slot, t.layer, 0) + kvh*hd
	end := base + span(n, kvDim, hd)

	q := sc.q[:nh*hd]
	copy(q, t.q.row(r)[h0*hd:h1*hd])
	if !c.cfg.F32 {
		// ggml multiplies an F16 cache by the query rounded to F16.
		t.loops.roundF16(q)
	}
	s := sc.s[:nh*n]
	tiled := t.slotRows[slot] >= 2 // llama.cpp's tinyBLAS path, else vec_dot
	for g := 0; g < nh; g++ {
		if c.cfg.F32 {
			t.loops.scores(s[g*n:(g+1)*n], q[g*hd:(g+1)*hd], c.k[base:end], kvDim, p.Scale)
		} else {
			t.loops.scoresF16(s[g*n:(g+1)*n], q[g*hd:(g+1)*hd], c.k16[base:end], kvDim, p.Scale, tiled)
		}
	}
	lanes := vecLanes
	if tiled {
		lanes = tiledLanes
	}
	for g := 0; g < nh; g++ {
		sg := s[g*n : (g+1)*n]
		h := h0 + g
		if t.scores != nil {
			copy(t.scores.row(r)[h*(t.scores.cols/p.Heads):][:n], sg)
		}
		t.loops.softmax(sg)
		if t.probs != nil {
			copy(t.probs.row(r)[h*(t.probs.cols/p.Heads):][:n], sg)
		}
		if !c.cfg.F32 {
			// ggml multiplies F16 values by probabilities rounded to F16.
			t.loops.roundF16(sg)
		}
		out := t.dst.row(r)[h*hd : (h+1)*hd]
		if c.cfg.F32 {
			t.loops.weightedSum(out, sg, c.v[base:end], nil, kvDim, lanes, sc.acc)
		} else {
			t.loops.weightedSum(out, sg, nil, c.v16[base:end], kvDim, lanes, sc.acc)
		}
	}
}

// parallelAttention is the number of multiply-adds (of query and key
// values) from which attention is worth splitting across the workers: a
// short sequence's token costs less than handing it out.
const parallelAttention = 1 << 15

// Attention implements backend.Backend.
func (b *Backend) Attention(dstM, qM backend.Mat, cM backend.KVCache, layer int, bt backend.Batch, p backend.AttnParams, scoresM, probsM backend.Mat) {
	dst, q, c := asMat(dstM), asMat(qM), cM.(*kvCache)
	if !(q.cols == p.Heads*p.HeadDim && dst.cols == q.cols && dst.rows == q.rows && q.rows == bt.Len() && len(bt.Slot) == bt.Len() &&
		p.KVHeads > 0 && p.Heads%p.KVHeads == 0 && p.KVHeads*p.HeadDim == c.cfg.KVDim && layer >= 0 && layer < c.cfg.Layers) {
		backend.ShapeFail("Attention", "q %s into %s, %d heads over %d KV heads of %d, cache of %d", backend.Shape(qM), backend.Shape(dstM), p.Heads, p.KVHeads, p.HeadDim, c.cfg.KVDim)
	}
	positions := 0 // keys each query head attends to, over the batch
	for r := range bt.Len() {
		if slot, pos := int(bt.Slot[r]), int(bt.Pos[r]); !(slot >= 0 && slot < c.cfg.Slots && pos >= 0 && pos < c.cfg.Ctx) {
			backend.ShapeFail("Attention", "slot %d position %d outside %d slots of %d", slot, pos, c.cfg.Slots, c.cfg.Ctx)
		}
		positions += int(bt.Pos[r]) + 1
	}
	group := p.Heads / p.KVHeads
	t := &b.attn
	*t = attnTask{dst: dst, q: q, c: c, layer: layer, bt: bt, p: p, scratch: t.scratch, loops: &b.loops, slotRows: t.slotRows}
	if cap(t.slotRows) < c.cfg.Slots {
		t.slotRows = make([]int32, c.cfg.Slots)
	}
	t.slotRows = t.slotRows[:c.cfg.Slots]
	clear(t.slotRows)
	for _, s := range bt.Slot {
		t.slotRows[s]++
	}
	if scoresM != nil {
		t.scores = asMat(scoresM)
	}
	if probsM != nil {
		t.probs = asMat(probsM)
	}
	threads := b.pool.Threads()
	for len(t.scratch) < threads {
		t.scratch = append(t.scratch, attnScratch{})
	}
	for w := range t.scratch {
		sc := &t.scratch[w]
		if len(sc.s) < group*c.cfg.Ctx {
			sc.s = make([]float32, group*c.cfg.Ctx)
		}
		if len(sc.q) < group*p.HeadDim {
			sc.q = make([]float32, group*p.HeadDim)
		}
		if len(sc.acc) < vecLanes*p.HeadDim {
			sc.acc = make([]float32, vecLanes*p.HeadDim)
		}
	}
	items := q.rows * p.Heads
	if positions*p.Heads*p.HeadDim < parallelAttention {
		t.Run(0, 0, items)
		return
	}
	// Ranges of whole KV-head groups keep a group's keys in one worker's
	// cache; with fewer groups than threads (one token of a model with few
	// KV heads) single heads keep every thread busy.
	align := group
	if q.rows*p.KVHeads < 2*threads {
		align = 1
	}
	b.pool.For(items, align, t)
}
