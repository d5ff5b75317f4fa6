package cuda_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"llamago/backend"
	"llamago/backend/cuda"
	"llamago/internal/testenv"
	"llamago/tensor"
)

// TestSplitAttentionMatchesCPU checks decode attention below and above
// the positions from which it splits (split-K: attention_split,
// attention_split_v, attention_combine) against the CPU backend, with the
// tolerances of TestAttentionMatchesCPU: both caches, GQA and not, heads
// of several sizes, a decode batch of two slots at different positions,
// cache layer 1. A split row queues three launches, a row that does not
// one; that is checked too, so that the test cannot pass on the old
// kernel alone.
func TestSplitAttentionMatchesCPU(t *testing.T) {
	for _, tc := range []struct {
		headDim, heads, kvHeads int
		f32                     bool
	}{{64, 32, 4, false}, {64, 8, 2, true}, {128, 8, 8, false}, {96, 8, 2, true}, {16, 4, 1, false}} {
		t.Run(fmt.Sprintf("%d heads over %d of %d F32 cache %v", tc.heads, tc.kvHeads, tc.headDim, tc.f32), func(t *testing.T) {
			p := newPair(t)
			r := rand.New(rand.NewPCG(11, uint64(tc.headDim)))
			const layers, ctx, layer = 2, 1300, 1
			heads, headDim := tc.heads, tc.headDim
			kvDim := tc.kvHeads * headDim
			cfg := backend.KVConfig{Slots: 2, Layers: layers, Ctx: ctx, KVDim: kvDim, F32: tc.f32}
			cg, cc := p.gpu.NewKVCache(cfg), p.cpu.NewKVCache(cfg)
			ap := backend.AttnParams{Heads: heads, KVHeads: tc.kvHeads, HeadDim: headDim, Scale: 0.2}
			// Every position of both slots and layers holds a random key
			// and value.
			for slot := range int32(2) {
				var bt backend.Batch
				for i := range ctx {
					bt.Slot, bt.Pos = append(bt.Slot, slot), append(bt.Pos, int32(i))
				}
				for l := range layers {
					kg, kc := p.mats(ctx, kvDim, randFloats(r, ctx*kvDim, 1))
					vg, vc := p.mats(ctx, kvDim, randFloats(r, ctx*kvDim, 1))
					p.gpu.StoreKV(cg, l, bt, kg, vg)
					p.cpu.StoreKV(cc, l, bt, kc, vc)
				}
			}
			outTol := 1e-5
			if !tc.f32 {
				outTol = 1e-4 // see TestAttentionMatchesCPU
			}
			for _, bt := range []backend.Batch{
				{Slot: []int32{0}, Pos: []int32{509}},  // below: one block per head
				{Slot: []int32{0}, Pos: []int32{510}},  // 511 positions: the last that does not split
				{Slot: []int32{1}, Pos: []int32{511}},  // 512: two chunks
				{Slot: []int32{0}, Pos: []int32{767}},  // three chunks (of four launched), the last full
				{Slot: []int32{1}, Pos: []int32{1000}}, // four chunks, the last partial
				{Slot: []int32{0}, Pos: []int32{1299}}, // the whole context: six chunks
				{Slot: []int32{0, 1}, Pos: []int32{1200, 300}},
				{Slot: []int32{1, 0}, Pos: []int32{700, 1250}},
			} {
				n := bt.Len()
				what := fmt.Sprintf("slots %v positions %v", bt.Slot, bt.Pos)
				qg, qc := p.mats(n, heads*headDim, randFloats(r, n*heads*headDim, 0.5))
				og, oc := p.poisoned(n, heads*headDim)
				// Reading sends the queue, so that what Attention queues
				// can be counted (its new positions would send it too).
				p.gpu.Read(qg, make([]float32, n*heads*headDim))
				p.gpu.Attention(og, qg, cg, layer, bt, ap, nil, nil)
				queued := cuda.PendingLaunches(p.gpu)
				p.cpu.Attention(oc, qc, cc, layer, bt, ap, nil, nil)
				split := slices.Max(bt.Pos)+1 >= 512 && (n == 1 || tc.f32) // two F16 rows go to the tensor cores
				if want := map[bool]int{true: 3, false: 1}[split]; queued != want {
					t.Errorf("%s: %d launches queued, want %d (split %v)", what, queued, want, split)
				}
				rel := p.compare(t, what+" output", og, oc, outTol)
				t.Logf("%s: split %v, relative error %.3g", what, split, rel)
				// With probes the one-block kernel runs, and must agree.
				span := ctx
				sg, sc := p.mats(n, heads*span, nil)
				pg, pc := p.mats(n, heads*span, nil)
				og2, oc2 := p.poisoned(n, heads*headDim)
				p.gpu.Attention(og2, qg, cg, layer, bt, ap, sg, pg)
				p.cpu.Attention(oc2, qc, cc, layer, bt, ap, sc, pc)
				p.compare(t, what+" output with probes", og2, oc2, outTol)
				p.compare(t, what+" probabilities", pg, pc, 1e-5)
			}
		})
	}
}

// TestSplitAttentionFusedMatchesEager runs decode steps at long positions
// (split-K) through the queued backend, whose o product's Q8_0 rounding
// fuses into attention_combine, and through the eager backend (every
// operation its own launches): q, k, the attention output and the o
// product bit for bit equal, and the next step, which reads the previous
// step's stored key and value from the cache, too. TinyLlama's heads, both
// caches; also a backend with split-K off, to compare against the
// one-block kernel (reported, not required to be equal).
func TestSplitAttentionFusedMatchesEager(t *testing.T) {
	gpu := needGPU(t)
	eager := eagerBackend(t)
	unsplit, err := cuda.New(cuda.Options{NoSplitK: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unsplit.Close()
	const heads, kvHeads, headDim, prefillRows, ctx, oRows = 32, 4, 64, 1100, 1200, 256
	const kvDim = kvHeads * headDim
	for _, f32 := range []bool{false, true} {
		t.Run(fmt.Sprintf("F32 cache %v", f32), func(t *testing.T) {
			r := rand.New(rand.NewPCG(12, 13))
			prefill := randFloats(r, prefillRows*kvDim*2, 1)
			var steps [][]float32
			for range 3 {
				steps = append(steps, randFloats(r, (heads+2*kvHeads)*headDim, 1))
			}
			wo := backend.WeightSpec{Name: "o", Type: tensor.Q8_0, Rows: oRows, Cols: heads * headDim, Data: quantized(t, r, tensor.Q8_0, oRows, heads*headDim)}
			rp := backend.RoPEParams{HeadDim: headDim, Dims: headDim, FreqBase: 10000, FreqScale: 1}
			qp, kp := rp, rp
			qp.Heads, kp.Heads = heads, kvHeads
			ap := backend.AttnParams{Heads: heads, KVHeads: kvHeads, HeadDim: headDim, Scale: 0.125}
			run := func(b *cuda.Backend, checkFused bool) [][]float32 {
				w, err := b.LoadWeight(wo)
				if err != nil {
					t.Fatal(err)
				}
				c := b.NewKVCache(backend.KVConfig{Slots: 1, Layers: 1, Ctx: ctx, KVDim: kvDim, F32: f32})
				pk, pv := b.NewMat(prefillRows, kvDim), b.NewMat(prefillRows, kvDim)
				b.Write(pk, prefill[:prefillRows*kvDim])
				b.Write(pv, prefill[prefillRows*kvDim:])
				pb := backend.Batch{Slot: make([]int32, prefillRows), Pos: make([]int32, prefillRows)}
				for i := range pb.Pos {
					pb.Pos[i] = int32(i)
				}
				b.StoreKV(c, 0, pb, pk, pv)
				var out [][]float32
				for i, in := range steps {
					q, k, v, o := b.NewMat(1, heads*headDim), b.NewMat(1, kvDim), b.NewMat(1, kvDim), b.NewMat(1, heads*headDim)
					y := b.NewMat(1, oRows)
					b.Write(q, in[:heads*headDim])
					b.Write(k, in[heads*headDim:heads*headDim+kvDim])
					b.Write(v, in[heads*headDim+kvDim:])
					bt := backend.Batch{Slot: []int32{0}, Pos: []int32{int32(prefillRows + i)}}
					b.RoPE(q, bt.Pos, qp)
					b.RoPE(k, bt.Pos, kp)
					b.StoreKV(c, 0, bt, k, v)
					before := cuda.PendingLaunches(b)
					b.Attention(o, q, c, 0, bt, ap, nil, nil)
					mid := cuda.PendingLaunches(b)
					b.MatMul(y, o, w)
					// From the second step on: the first grows the
					// activation scratch, and freeing the old one sends the
					// queue.
					if checkFused && i > 0 {
						if mid-before != 3 {
							t.Errorf("step %d: attention queued %d launches, want 3 (split-K)", i, mid-before)
						}
						if got := cuda.PendingLaunches(b) - mid; got != 1 {
							t.Errorf("step %d: the o product queued %d launches, want 1 (its rounding fused into attention_combine)", i, got)
						}
					}
					for _, m := range []backend.Mat{q, k, o, y} {
						vals := make([]float32, m.Cols())
						b.Read(m, vals)
						out = append(out, vals)
					}
				}
				return out
			}
			got, want, old := run(gpu, true), run(eager, false), run(unsplit, false)
			names := []string{"q", "k", "output", "o product"}
			for i := range want {
				name := fmt.Sprintf("step %d's %s", i/4, names[i%4])
				if !slices.Equal(got[i], want[i]) {
					t.Errorf("%s differs from the eager backend's (relative error %.3g)", name, testenv.RelErr(got[i], want[i]))
				}
				t.Logf("%s: relative difference to the one-block kernel %.3g", name, testenv.RelErr(got[i], old[i]))
				if rel := testenv.RelErr(got[i], old[i]); !(rel <= 1e-3) {
					t.Errorf("%s: relative difference to the one-block kernel %.3g", name, rel)
				}
			}
		})
	}
}
