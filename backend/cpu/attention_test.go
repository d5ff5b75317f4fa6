package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"llamago/backend"
	"llamago/tensor"
)

// attnCase is a cache filled with random keys and values and a batch of
// query rows at various positions of various slots.
type attnCase struct {
	heads, kvHeads, headDim, ctx, slots, layers int
	f32                                         bool
	slot, pos                                   []int32
}

func (tc attnCase) String() string {
	return fmt.Sprintf("heads %d/%d×%d f32 %v rows %d", tc.heads, tc.kvHeads, tc.headDim, tc.f32, len(tc.pos))
}

func (tc attnCase) params() backend.AttnParams {
	return backend.AttnParams{Heads: tc.heads, KVHeads: tc.kvHeads, HeadDim: tc.headDim, Scale: float32(1 / math.Sqrt(float64(tc.headDim)))}
}

// fill stores random keys and values for every position of every slot and
// layer through StoreKV, and returns random queries.
func (tc attnCase) fill(t *testing.T, b *Backend, r *rand.Rand) (backend.KVCache, []float32) {
	t.Helper()
	kvDim := tc.kvHeads * tc.headDim
	c := b.NewKVCache(backend.KVConfig{Slots: tc.slots, Layers: tc.layers, Ctx: tc.ctx, KVDim: kvDim, F32: tc.f32})
	k, v := b.NewMat(tc.ctx, kvDim), b.NewMat(tc.ctx, kvDim)
	kv := make([]float32, tc.ctx*kvDim)
	bt := backend.Batch{Slot: make([]int32, tc.ctx), Pos: make([]int32, tc.ctx)}
	for s := range tc.slots {
		for l := range tc.layers {
			for i := range kv {
				kv[i] = float32(r.NormFloat64() * 2)
			}
			b.Write(k, kv)
			for i := range kv {
				kv[i] = float32(r.NormFloat64())
			}
			b.Write(v, kv)
			for p := range tc.ctx {
				bt.Slot[p], bt.Pos[p] = int32(s), int32(p)
			}
			b.StoreKV(c, l, bt, k, v)
		}
	}
	q := make([]float32, len(tc.pos)*tc.heads*tc.headDim)
	for i := range q {
		q[i] = float32(r.NormFloat64() * 2)
	}
	return c, q
}

// referenceAttention is the plain loop: float64 dot products, exponentials
// and sums, with the F16 roundings of ggml's F16 path applied to the
// query and the probabilities.
//
// slack bounds, per output, how far a float32 computation may land from
// out in the F16 mode for a reason other than error: a probability that
// float32 puts on the other side of an F16 rounding boundary than float64
// does moves by one F16 ulp, at most 2⁻¹⁰ of it.
func referenceAttention(c *kvCache, layer int, tc attnCase, q []float32) (out, probs, slack []float64) {
	p := tc.params()
	hd, group := p.HeadDim, p.Heads/p.KVHeads
	out = make([]float64, len(q))
	slack = make([]float64, len(q))
	probs = make([]float64, len(tc.pos)*p.Heads*tc.ctx)
	for r := range tc.pos {
		slot, n := int(tc.slot[r]), int(tc.pos[r])+1
		for h := 0; h < p.Heads; h++ {
			qh := append([]float32(nil), q[(r*p.Heads+h)*hd:(r*p.Heads+h+1)*hd]...)
			if !tc.f32 {
				for i := range qh {
					qh[i] = tensor.FP16ToFloat32(tensor.Float32ToFP16(qh[i]))
				}
			}
			s := make([]float64, n)
			maxS := math.Inf(-1)
			for j := range n {
				off := c.offset(slot, layer, j) + (h/group)*hd
				var d float64
				for i := range hd {
					d += float64(qh[i]) * float64(c.key(off+i))
				}
				s[j] = d * float64(p.Scale)
				maxS = max(maxS, s[j])
			}
			var sum float64
			for j := range s {
				s[j] = math.Exp(s[j] - maxS)
				sum += s[j]
			}
			for j := range s {
				s[j] /= sum
				probs[(r*p.Heads+h)*tc.ctx+j] = s[j]
				if !tc.f32 {
					s[j] = float64(tensor.FP16ToFloat32(tensor.Float32ToFP16(float32(s[j]))))
				}
			}
			for j := range n {
				off := c.offset(slot, layer, j) + (h/group)*hd
				for i := range hd {
					out[(r*p.Heads+h)*hd+i] += s[j] * float64(c.value(off+i))
					if !tc.f32 {
						slack[(r*p.Heads+h)*hd+i] += s[j] * math.Abs(float64(c.value(off+i))) / 1024
					}
				}
			}
		}
	}
	return out, probs, slack
}

// key and value read the cache's value at index i as float32.
func (c *kvCache) key(i int) float32 {
	if c.cfg.F32 {
		return c.k[i]
	}
	return tensor.FP16ToFloat32(c.k16[i])
}

func (c *kvCache) value(i int) float32 {
	if c.cfg.F32 {
		return c.v[i]
	}
	return tensor.FP16ToFloat32(c.v16[i])
}

func attnCases() []attnCase {
	var cases []attnCase
	for _, shape := range []struct{ heads, kvHeads, headDim int }{
		{8, 4, 8},  // stories260K: groups of 2, head_dim 8
		{4, 4, 16}, // no grouping
		{8, 1, 12}, // one KV head for all, head_dim not a multiple of 8
		{32, 4, 64},
		{6, 2, 128},
		{3, 3, 5},
	} {
		for _, f32 := range []bool{true, false} {
			tc := attnCase{heads: shape.heads, kvHeads: shape.kvHeads, headDim: shape.headDim, ctx: 70, slots: 3, layers: 2, f32: f32}
			// A prompt of 37 tokens in slot 1, then decode rows of three
			// slots at various positions, as the server batches them.
			for p := range 37 {
				tc.slot, tc.pos = append(tc.slot, 1), append(tc.pos, int32(p))
			}
			tc.slot = append(tc.slot, 0, 2, 1, 0)
			tc.pos = append(tc.pos, 0, 69, 55, 13)
			cases = append(cases, tc)
		}
	}
	return cases
}

func TestAttentionMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, threads := range []int{1, 3} {
		b := New(Options{Threads: threads})
		for _, loops := range loopSets(t) {
			b.loops = loops
			for _, tc := range attnCases() {
				c, qv := tc.fill(t, b, r)
				p := tc.params()
				rows := len(tc.pos)
				q, dst := b.NewMat(rows, p.Heads*p.HeadDim), b.NewMat(rows, p.Heads*p.HeadDim)
				probs := b.NewMat(rows, p.Heads*tc.ctx)
				b.Write(q, qv)
				const layer = 1
				b.Attention(dst, q, c, layer, backend.Batch{Slot: tc.slot, Pos: tc.pos}, p, nil, probs)
				got, gotProbs := make([]float32, rows*p.Heads*p.HeadDim), make([]float32, rows*p.Heads*tc.ctx)
				b.Read(dst, got)
				b.Read(probs, gotProbs)
				want, wantProbs, slack := referenceAttention(c.(*kvCache), layer, tc, qv)
				// Float32 sums of up to 128 products and 70 weighted values
				// against float64: relative to the values' scale (about 1).
				for i := range want {
					if d := math.Abs(float64(got[i]) - want[i]); d > 2e-5*max(1, math.Abs(want[i]))+slack[i] {
						t.Fatalf("threads %d %s %v: output %d = %g, want %g", threads, loops.name, tc, i, got[i], want[i])
					}
				}
				for i := range wantProbs {
					if d := math.Abs(float64(gotProbs[i]) - wantProbs[i]); d > 1e-5*max(1e-2, wantProbs[i]) {
						t.Fatalf("threads %d %v: probability %d = %g, want %g", threads, tc, i, gotProbs[i], wantProbs[i])
					}
				}
			}
		}
		b.Close()
	}
}

// TestAttentionRowsIndependent checks that a row's result in a batch
// depends only on whether its sequence (slot) has other rows in the batch,
// which picks llama.cpp's tiled or one-token order: each row is computed
// again with one other row of its own slot when its slot has several in
// the batch, else with a row of another slot (the server's decode steps)
// or alone, and must equal the whole batch's row bit for bit, on one
// thread or two.
func TestAttentionRowsIndependent(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	single := New(Options{Threads: 1})
	defer single.Close()
	multi := New(Options{Threads: 2})
	defer multi.Close()
	for _, tc := range attnCases() {
		c, qv := tc.fill(t, single, r)
		p := tc.params()
		rows, width := len(tc.pos), p.Heads*p.HeadDim
		q, dst := multi.NewMat(rows, width), multi.NewMat(rows, width)
		multi.Write(q, qv)
		bt := backend.Batch{Slot: tc.slot, Pos: tc.pos}
		multi.Attention(dst, q, c, 0, bt, p, nil, nil)
		batched := make([]float32, rows*width)
		multi.Read(dst, batched)
		for row := range rows {
			sameSlot, otherSlot := -1, -1
			for o := range rows {
				switch {
				case o == row:
				case tc.slot[o] == tc.slot[row] && sameSlot < 0:
					sameSlot = o
				case tc.slot[o] != tc.slot[row] && otherSlot < 0:
					otherSlot = o
				}
			}
			picks := [][]int{{row, sameSlot}}
			if sameSlot < 0 {
				picks = [][]int{{row}}
				if otherSlot >= 0 {
					picks = append(picks, []int{row, otherSlot})
				}
			}
			for _, pick := range picks {
				var qs []float32
				var sub backend.Batch
				for _, i := range pick {
					qs = append(qs, qv[i*width:(i+1)*width]...)
					sub.Slot, sub.Pos = append(sub.Slot, tc.slot[i]), append(sub.Pos, tc.pos[i])
				}
				qm, dm := single.NewMat(len(pick), width), single.NewMat(len(pick), width)
				single.Write(qm, qs)
				single.Attention(dm, qm, c, 0, sub, p, nil, nil)
				got := make([]float32, len(pick)*width)
				single.Read(dm, got)
				for i, v := range got[:width] {
					if math.Float32bits(v) != math.Float32bits(batched[row*width+i]) {
						t.Fatalf("%v: row %d value %d is %g among rows %v and %g in the batch", tc, row, i, v, pick, batched[row*width+i])
					}
				}
			}
		}
	}
}

func TestAttentionScoresProbe(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	b := New(Options{Threads: 2})
	defer b.Close()
	tc := attnCases()[0]
	c, qv := tc.fill(t, b, r)
	p := tc.params()
	rows, n := len(tc.pos), tc.ctx
	q, dst := b.NewMat(rows, p.Heads*p.HeadDim), b.NewMat(rows, p.Heads*p.HeadDim)
	scores, probs := b.NewMat(rows, p.Heads*n), b.NewMat(rows, p.Heads*n)
	b.Write(q, qv)
	b.Attention(dst, q, c, 0, backend.Batch{Slot: tc.slot, Pos: tc.pos}, p, scores, probs)
	s, pr := make([]float32, rows*p.Heads*n), make([]float32, rows*p.Heads*n)
	b.Read(scores, s)
	b.Read(probs, pr)
	for row := range rows {
		for h := range p.Heads {
			seg := pr[(row*p.Heads+h)*n : (row*p.Heads+h+1)*n]
			var sum float64
			for j, v := range seg {
				if j > int(tc.pos[row]) && (v != 0 || s[(row*p.Heads+h)*n+j] != 0) {
					t.Fatalf("row %d head %d: position %d past %d is set", row, h, j, tc.pos[row])
				}
				sum += float64(v)
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Fatalf("row %d head %d: probabilities sum to %g", row, h, sum)
			}
		}
	}
}

func TestAttentionBadShapes(t *testing.T) {
	b := New(Options{Threads: 1})
	defer b.Close()
	c := b.NewKVCache(backend.KVConfig{Slots: 1, Layers: 1, Ctx: 4, KVDim: 8})
	p := backend.AttnParams{Heads: 2, KVHeads: 1, HeadDim: 8, Scale: 1}
	q, dst := b.NewMat(1, 16), b.NewMat(1, 16)
	for _, tc := range []struct {
		name  string
		layer int
		bt    backend.Batch
		p     backend.AttnParams
	}{
		{"position past the context", 0, backend.Batch{Slot: []int32{0}, Pos: []int32{4}}, p},
		{"slot past the cache", 0, backend.Batch{Slot: []int32{1}, Pos: []int32{0}}, p},
		{"layer past the cache", 1, backend.Batch{Slot: []int32{0}, Pos: []int32{0}}, p},
		{"heads not a multiple", 0, backend.Batch{Slot: []int32{0}, Pos: []int32{0}}, backend.AttnParams{Heads: 2, KVHeads: 3, HeadDim: 8}},
	} {
		func() {
			defer func() {
				if _, ok := recover().(*backend.ShapeError); !ok {
					t.Errorf("%s: no ShapeError", tc.name)
				}
			}()
			b.Attention(dst, q, c, tc.layer, tc.bt, tc.p, nil, nil)
		}()
	}
}

func BenchmarkAttention(b *testing.B) {
	for _, bc := range []struct {
		name                    string
		heads, kvHeads, headDim int
		rows, ctx               int
		f32                     bool
	}{
		{"stories260K/decode8x256", 8, 4, 8, 8, 256, false},
		{"tinyllama/decode1x1024", 32, 4, 64, 1, 1024, false},
		{"tinyllama/decode1x1024/kv-f32", 32, 4, 64, 1, 1024, true},
		{"tinyllama/prefill512", 32, 4, 64, 512, 512, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			be := New(Options{Threads: 2})
			defer be.Close()
			kvDim := bc.kvHeads * bc.headDim
			c := be.NewKVCache(backend.KVConfig{Slots: bc.rows, Layers: 1, Ctx: bc.ctx, KVDim: kvDim, F32: bc.f32})
			ck := c.(*kvCache)
			r := rand.New(rand.NewPCG(1, 1))
			for i := range ck.k16 {
				ck.k16[i], ck.v16[i] = tensor.Float32ToFP16(float32(r.NormFloat64())), tensor.Float32ToFP16(float32(r.NormFloat64()))
			}
			for i := range ck.k {
				ck.k[i], ck.v[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
			}
			bt := backend.Batch{Slot: make([]int32, bc.rows), Pos: make([]int32, bc.rows)}
			for i := range bc.rows {
				if bc.rows == bc.ctx { // a prompt
					bt.Pos[i] = int32(i)
				} else { // decode rows of separate slots
					bt.Slot[i], bt.Pos[i] = int32(i), int32(bc.ctx-1)
				}
			}
			width := bc.heads * bc.headDim
			q, dst := be.NewMat(bc.rows, width), be.NewMat(bc.rows, width)
			qd := asMat(q).data
			for i := range qd {
				qd[i] = float32(r.NormFloat64())
			}
			p := backend.AttnParams{Heads: bc.heads, KVHeads: bc.kvHeads, HeadDim: bc.headDim, Scale: 0.125}
			for b.Loop() {
				be.Attention(dst, q, c, 0, bt, p, nil, nil)
			}
		})
	}
}
