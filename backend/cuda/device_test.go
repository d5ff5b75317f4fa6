package cuda_test

// Tests that need an NVIDIA GPU: they run only with LLAMAGO_CUDA=1 (see
// docs/CUDA.md and scripts/cuda-check.sh), never in CI. Each compares the
// CUDA backend with the CPU backend, operation by operation on random
// inputs, then on a whole model.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"llamago/backend"
	"llamago/backend/cpu"
	"llamago/backend/cuda"
	"llamago/internal/testenv"
	"llamago/tensor"
)

// needGPU skips unless LLAMAGO_CUDA=1, and then fails when no GPU works.
func needGPU(t testing.TB) *cuda.Backend {
	t.Helper()
	if os.Getenv("LLAMAGO_CUDA") != "1" {
		t.Skip("GPU test: set LLAMAGO_CUDA=1 on a machine with an NVIDIA GPU")
	}
	b, err := cuda.New(cuda.Options{})
	if err != nil {
		t.Fatalf("LLAMAGO_CUDA=1 but: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// pair is the same operation on both backends.
type pair struct {
	gpu *cuda.Backend
	cpu *cpu.Backend
}

func newPair(t *testing.T) pair {
	p := pair{gpu: needGPU(t), cpu: cpu.New(cpu.Options{Threads: 2})}
	t.Cleanup(func() { p.cpu.Close() })
	return p
}

// mats makes the same matrix on both backends with the given contents.
func (p pair) mats(rows, cols int, data []float32) (g, c backend.Mat) {
	g, c = p.gpu.NewMat(rows, cols), p.cpu.NewMat(rows, cols)
	if data != nil {
		p.gpu.Write(g, data)
		p.cpu.Write(c, data)
	}
	return g, c
}

// poisoned makes an output matrix whose GPU copy holds NaN everywhere, so
// that an element the kernel fails to write shows.
func (p pair) poisoned(rows, cols int) (g, c backend.Mat) {
	nan := make([]float32, rows*cols)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	g, c = p.mats(rows, cols, nil)
	p.gpu.Write(g, nan)
	return g, c
}

func (p pair) weights(t *testing.T, spec backend.WeightSpec) (g, c backend.Weight) {
	t.Helper()
	g, err := p.gpu.LoadWeight(spec)
	if err != nil {
		t.Fatal(err)
	}
	c, err = p.cpu.LoadWeight(spec)
	if err != nil {
		t.Fatal(err)
	}
	return g, c
}

// compare fails when ‖gpu − cpu‖/‖cpu‖ exceeds tol (NaN always fails).
func (p pair) compare(t *testing.T, what string, g, c backend.Mat, tol float64) float64 {
	t.Helper()
	n := g.Rows() * g.Cols()
	gv, cv := make([]float32, n), make([]float32, n)
	p.gpu.Read(g, gv)
	p.cpu.Read(c, cv)
	rel := testenv.RelErr(gv, cv)
	if !(rel <= tol) {
		t.Errorf("%s: relative error %.3g over %d values (tolerance %g); gpu %v… cpu %v…", what, rel, n, tol, head(gv), head(cv))
	}
	return rel
}

// eagerBackend returns a second backend that launches every operation
// by itself (Options.Eager: no queue, no fusion, no graph), the reference
// of the fusion tests; it is closed when the test ends.
func eagerBackend(t *testing.T) *cuda.Backend {
	t.Helper()
	b, err := cuda.New(cuda.Options{Eager: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func head(v []float32) []float32 { return v[:min(4, len(v))] }

func randFloats(r *rand.Rand, n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64() * scale)
	}
	return v
}

// quantized returns rows×cols random values in type typ's bytes.
func quantized(t *testing.T, r *rand.Rand, typ tensor.Type, rows, cols int) []byte {
	t.Helper()
	rowBytes, err := typ.RowSize(int64(cols))
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, int(rowBytes)*rows)
	for i := range rows {
		if err := tensor.Quantize(typ, randFloats(r, cols, 0.5), data[i*int(rowBytes):(i+1)*int(rowBytes)]); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

func TestMatMulAndGetRowsMatchCPU(t *testing.T) {
	p := newPair(t)
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range cuda.Types() {
		cols := 96
		switch {
		case typ.BlockSize() == 256:
			cols = 512
		case typ.BlockSize() == 1:
			cols = 172 // not a multiple of the warp size
		}
		const wrows = 133 // not a multiple of the warps per block
		w := backend.WeightSpec{Name: "w." + typ.String(), Type: typ, Rows: wrows, Cols: cols, Data: quantized(t, r, typ, wrows, cols)}
		wg, wc := p.weights(t, w)
		for _, ntok := range []int{1, 5, 19} {
			t.Run(fmt.Sprintf("%s/%d", typ, ntok), func(t *testing.T) {
				xg, xc := p.mats(ntok, cols, randFloats(r, ntok*cols, 1))
				yg, yc := p.poisoned(ntok, wrows)
				p.gpu.MatMul(yg, xg, wg)
				p.cpu.MatMul(yc, xc, wc)
				p.compare(t, "MatMul", yg, yc, 2e-5)

				ids := []int32{0, wrows - 1, 7, 7}[:min(4, ntok)]
				eg, ec := p.poisoned(len(ids), cols)
				p.gpu.GetRows(eg, wg, ids)
				p.cpu.GetRows(ec, wc, ids)
				p.compare(t, "GetRows", eg, ec, 1e-6)
			})
		}
	}
}

// TestKQuantProductsMatchCPU checks the k-quants' one-token products,
// which copy each warp's row into shared memory eight blocks at a time,
// against the CPU: rows of one block, of an odd count (Q6_K rows then
// start 2-byte aligned every other row, and the last reads past its end
// into the weight's padding), of more than a chunk (2816: 8 + 3 blocks),
// and TinyLlama's FFN width (5632: 22 blocks, three chunks).
func TestKQuantProductsMatchCPU(t *testing.T) {
	p := newPair(t)
	r := rand.New(rand.NewPCG(3, 4))
	for _, typ := range []tensor.Type{tensor.Q4_K, tensor.Q6_K} {
		for _, cols := range []int{256, 768, 2816, 5632} {
			const wrows = 37
			w := backend.WeightSpec{Name: "w", Type: typ, Rows: wrows, Cols: cols, Data: quantized(t, r, typ, wrows, cols)}
			t.Run(fmt.Sprintf("%s/%d", typ, cols), func(t *testing.T) {
				wg, wc := p.weights(t, w)
				xg, xc := p.mats(1, cols, randFloats(r, cols, 1))
				yg, yc := p.poisoned(1, wrows)
				p.gpu.MatMul(yg, xg, wg)
				p.cpu.MatMul(yc, xc, wc)
				p.compare(t, "MatMul", yg, yc, 2e-5)
			})
		}
	}
}

func TestElementwiseMatchCPU(t *testing.T) {
	p := newPair(t)
	r := rand.New(rand.NewPCG(3, 4))
	const rows, cols = 7, 300
	ag, ac := p.mats(rows, cols, randFloats(r, rows*cols, 2))
	bg, bc := p.mats(rows, cols, randFloats(r, rows*cols, 2))

	dg, dc := p.poisoned(rows, cols)
	p.gpu.Add(dg, ag, bg)
	p.cpu.Add(dc, ac, bc)
	p.compare(t, "Add", dg, dc, 0)

	sg, sc := p.poisoned(rows, cols)
	p.gpu.SwiGLU(sg, ag, bg)
	p.cpu.SwiGLU(sc, ac, bc)
	p.compare(t, "SwiGLU", sg, sc, 1e-6)

	norm := backend.WeightSpec{Name: "norm", Type: tensor.F32, Rows: 1, Cols: cols, Data: quantized(t, r, tensor.F32, 1, cols)}
	ng, nc := p.weights(t, norm)
	og, oc := p.poisoned(rows, cols)
	p.gpu.RMSNorm(og, ag, ng, 1e-5)
	p.cpu.RMSNorm(oc, ac, nc, 1e-5)
	p.compare(t, "RMSNorm", og, oc, 1e-6)

	cg, cc := p.poisoned(3, cols)
	p.gpu.CopyRows(cg, ag, []int32{6, 0, 6})
	p.cpu.CopyRows(cc, ac, []int32{6, 0, 6})
	p.compare(t, "CopyRows", cg, cc, 0)

	// In place, as the model calls them: Add(x, x, y), SwiGLU(g, g, u).
	p.gpu.Add(ag, ag, bg)
	p.cpu.Add(ac, ac, bc)
	p.gpu.SwiGLU(bg, bg, ag)
	p.cpu.SwiGLU(bc, bc, ac)
	p.compare(t, "in-place Add and SwiGLU", bg, bc, 1e-6)
}

func TestRoPEMatchesCPU(t *testing.T) {
	p := newPair(t)
	r := rand.New(rand.NewPCG(5, 6))
	tests := []backend.RoPEParams{
		{Heads: 8, HeadDim: 64, Dims: 64, FreqBase: 10000, FreqScale: 1},
		{Heads: 4, HeadDim: 16, Dims: 8, FreqBase: 10000, FreqScale: 1},
		{Heads: 4, HeadDim: 32, Dims: 32, FreqBase: 500000, FreqScale: 0.25, NeoX: true},
	}
	pos := []int32{0, 1, 2, 17, 511, 4095}
	for _, rp := range tests {
		t.Run(fmt.Sprintf("%+v", rp), func(t *testing.T) {
			cols := rp.Heads * rp.HeadDim
			xg, xc := p.mats(len(pos), cols, randFloats(r, len(pos)*cols, 1))
			p.gpu.RoPE(xg, pos, rp)
			p.cpu.RoPE(xc, pos, rp)
			p.compare(t, "RoPE", xg, xc, 1e-6)
		})
	}
}

// TestAttentionMatchesCPU covers both attention kernels: prefill batches
// with an F16 cache and no probes run on the tensor cores (attention_tc64
// for heads of 16 and 64, attention_tc128 for 128), everything else on the
// general kernel.
func TestAttentionMatchesCPU(t *testing.T) {
	for _, tc := range []struct {
		headDim int
		f32     bool
	}{{16, true}, {16, false}, {96, true}, {64, false}, {128, false}} {
		t.Run(fmt.Sprintf("head %d F32 cache %v", tc.headDim, tc.f32), func(t *testing.T) {
			p := newPair(t)
			r := rand.New(rand.NewPCG(7, uint64(tc.headDim)))
			const heads, kvHeads, layers, ctx = 8, 2, 2, 600
			headDim := tc.headDim
			kvDim := kvHeads * headDim
			cfg := backend.KVConfig{Slots: 2, Layers: layers, Ctx: ctx, KVDim: kvDim, F32: tc.f32}
			cg, cc := p.gpu.NewKVCache(cfg), p.cpu.NewKVCache(cfg)
			ap := backend.AttnParams{Heads: heads, KVHeads: kvHeads, HeadDim: headDim, Scale: 0.25}
			// A prefill of two sequences in one batch (slot 1 longer than a
			// chunk of the kernel's threads), then a decode step of each.
			var prefill backend.Batch
			for i := range 530 {
				prefill.Slot, prefill.Pos = append(prefill.Slot, 1), append(prefill.Pos, int32(i))
			}
			for i := range 9 {
				prefill.Slot, prefill.Pos = append(prefill.Slot, 0), append(prefill.Pos, int32(i))
			}
			decode := backend.Batch{Slot: []int32{0, 1}, Pos: []int32{9, 530}}
			for step, bt := range []backend.Batch{prefill, decode} {
				n := bt.Len()
				for layer := range layers {
					kg, kc := p.mats(n, kvDim, randFloats(r, n*kvDim, 1))
					vg, vc := p.mats(n, kvDim, randFloats(r, n*kvDim, 1))
					p.gpu.StoreKV(cg, layer, bt, kg, vg)
					p.cpu.StoreKV(cc, layer, bt, kc, vc)
					qg, qc := p.mats(n, heads*headDim, randFloats(r, n*heads*headDim, 0.5))
					og, oc := p.poisoned(n, heads*headDim)
					span := 540
					sg, sc := p.mats(n, heads*span, nil)
					pg, pc := p.mats(n, heads*span, nil)
					p.gpu.Attention(og, qg, cg, layer, bt, ap, sg, pg)
					p.cpu.Attention(oc, qc, cc, layer, bt, ap, sc, pc)
					what := fmt.Sprintf("step %d layer %d", step, layer)
					// With an F16 cache the probabilities are rounded to F16
					// before they weight the values, and a score that differs
					// in its last bit (the GPU sums the dot products in another
					// order) can round to the neighbouring F16 value.
					outTol := 1e-5
					if !tc.f32 {
						outTol = 1e-4
					}
					p.compare(t, what+" output", og, oc, outTol)
					p.compare(t, what+" scores", sg, sc, 1e-6)
					p.compare(t, what+" probabilities", pg, pc, 1e-5)
					// Without probes.
					og2, oc2 := p.poisoned(n, heads*headDim)
					p.gpu.Attention(og2, qg, cg, layer, bt, ap, nil, nil)
					p.cpu.Attention(oc2, qc, cc, layer, bt, ap, nil, nil)
					p.compare(t, what+" output without probes", og2, oc2, outTol)
				}
			}
		})
	}
}

func TestLoadWeightRefusesUnsupportedType(t *testing.T) {
	b := needGPU(t)
	_, err := b.LoadWeight(backend.WeightSpec{Name: "blk.0.attn_q.weight", Type: tensor.Q5_1, Rows: 1, Cols: 32, Data: make([]byte, 24)})
	if err == nil {
		t.Fatal("LoadWeight accepted Q5_1")
	}
	t.Log(err)
}

// TestFusedSwiGLUMatchesEager checks the one-token gate/up/SwiGLU fusion
// (mvq_glu) and its rounding of the down product's input against a backend
// that launches every operation by itself: gate, up, the SwiGLU output and
// the down product bit for bit equal, for each type with a fused kernel,
// SwiGLU in place (as the model calls it) and into a third matrix.
func TestFusedSwiGLUMatchesEager(t *testing.T) {
	gpu := needGPU(t)
	eager := eagerBackend(t)
	r := rand.New(rand.NewPCG(5, 6))
	// nff: whole Q8_K blocks (256) and Q8_0 blocks; TinyLlama's shape
	// too, whose 1408 blocks once showed a race the small one did not.
	cases := []struct {
		typ    tensor.Type
		n, nff int
	}{
		{tensor.Q4_0, 512, 768}, {tensor.Q8_0, 512, 768}, {tensor.Q4_K, 512, 768}, {tensor.Q6_K, 512, 768}, {tensor.F16, 512, 768},
		{tensor.Q4_0, 2048, 5632},
	}
	for _, tc := range cases {
		typ, n, nff := tc.typ, tc.n, tc.nff
		specs := []backend.WeightSpec{
			{Name: "gate", Type: typ, Rows: nff, Cols: n, Data: quantized(t, r, typ, nff, n)},
			{Name: "up", Type: typ, Rows: nff, Cols: n, Data: quantized(t, r, typ, nff, n)},
			{Name: "down", Type: typ, Rows: n, Cols: nff, Data: quantized(t, r, typ, n, nff)},
		}
		x := randFloats(r, n, 1)
		for _, inPlace := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s %d×%d in place %v", typ, nff, n, inPlace), func(t *testing.T) {
				type outs struct{ g, u, d, y []float32 }
				run := func(b *cuda.Backend, checkFused bool) outs {
					var w [3]backend.Weight
					for i, s := range specs {
						var err error
						if w[i], err = b.LoadWeight(s); err != nil {
							t.Fatal(err)
						}
					}
					xm, g, u, y := b.NewMat(1, n), b.NewMat(1, nff), b.NewMat(1, nff), b.NewMat(1, n)
					d := g
					if !inPlace {
						d = b.NewMat(1, nff)
					}
					// Three times: the first passes grow the activation
					// scratch buffers (freeing the old ones sends the
					// queue).
					for pass := range 3 {
						b.Write(xm, x)
						b.MatMul(g, xm, w[0])
						b.MatMul(u, xm, w[1])
						b.SwiGLU(d, g, u)
						b.MatMul(y, d, w[2])
						// Fused: rounding of x, gate/up/SwiGLU, down; the
						// Q8 blocks of the down product's input round in a
						// launch of their own (but with $LLAMAGO_CUDA_GLU_TAIL=1).
						want := 4
						if typ == tensor.F16 || os.Getenv("LLAMAGO_CUDA_GLU_TAIL") == "1" {
							want = 3
						}
						if checkFused && pass == 2 && cuda.PendingLaunches(b) != want {
							t.Errorf("%d launches queued, want %d", cuda.PendingLaunches(b), want)
						}
					}
					var o outs
					for _, m := range []struct {
						dst *[]float32
						m   backend.Mat
					}{{&o.g, g}, {&o.u, u}, {&o.d, d}, {&o.y, y}} {
						*m.dst = make([]float32, m.m.Cols())
						b.Read(m.m, *m.dst)
					}
					return o
				}
				got, want := run(gpu, true), run(eager, false)
				for _, c := range []struct {
					name      string
					got, want []float32
				}{{"gate", got.g, want.g}, {"up", got.u, want.u}, {"SwiGLU", got.d, want.d}, {"down", got.y, want.y}} {
					if inPlace && c.name == "gate" {
						continue // overwritten by SwiGLU
					}
					if !slices.Equal(c.got, c.want) {
						t.Errorf("%s differs from the eager backend's (relative error %.3g; %v… against %v…)", c.name, testenv.RelErr(c.got, c.want), head(c.got), head(c.want))
					}
				}
			})
		}
	}
}

// TestFusedNormRoundingMatchesEager checks RMSNorm (after a residual add
// or alone) followed by a product: the graph backend rounds the norm's
// output for the product inside the norm's launch (Q8_0 blocks and F16
// halves from its registers, Q8_K blocks, which span warps, from its
// output after a barrier), which must give the eager backend's bits (its
// own rounding launch), in the norm's output and in the product, for one
// row (decode) and several (prefill), rows within the norm's registers
// (2048 values a block) and one past them (4096).
func TestFusedNormRoundingMatchesEager(t *testing.T) {
	gpu := needGPU(t)
	eager := eagerBackend(t)
	r := rand.New(rand.NewPCG(15, 16))
	for _, tc := range []struct {
		typ        tensor.Type
		rows, cols int
		add        bool
	}{
		{tensor.Q4_K, 1, 2048, true}, {tensor.Q4_K, 1, 2048, false}, {tensor.Q6_K, 1, 768, true}, {tensor.Q4_K, 1, 256, false},
		{tensor.Q4_K, 1, 4096, true}, {tensor.Q4_K, 3, 2048, true}, {tensor.Q4_0, 1, 2048, true}, {tensor.F16, 1, 2048, true},
	} {
		const outRows = 64
		spec := backend.WeightSpec{Name: "w", Type: tc.typ, Rows: outRows, Cols: tc.cols, Data: quantized(t, r, tc.typ, outRows, tc.cols)}
		norm := backend.WeightSpec{Name: "norm", Type: tensor.F32, Rows: 1, Cols: tc.cols, Data: quantized(t, r, tensor.F32, 1, tc.cols)}
		x, y := randFloats(r, tc.rows*tc.cols, 1), randFloats(r, tc.rows*tc.cols, 1)
		// A row of zeros (no candidate for any block's scale) and one
		// whose largest magnitude appears twice, with both signs, in two
		// warps of a block (the pick is the first).
		if tc.rows > 1 {
			clear(x[tc.cols : 2*tc.cols])
			clear(y[tc.cols : 2*tc.cols])
			x[2*tc.cols+5], x[2*tc.cols+200] = 40, -40
			y[2*tc.cols+5], y[2*tc.cols+200] = 0, 0
			copy(norm.Data[200*4:201*4], norm.Data[5*4:6*4])
		}
		t.Run(fmt.Sprintf("%s %d×%d add %v", tc.typ, tc.rows, tc.cols, tc.add), func(t *testing.T) {
			run := func(b *cuda.Backend) (n, p []float32) {
				w, err := b.LoadWeight(spec)
				if err != nil {
					t.Fatal(err)
				}
				nw, err := b.LoadWeight(norm)
				if err != nil {
					t.Fatal(err)
				}
				xm, ym, nm, pm := b.NewMat(tc.rows, tc.cols), b.NewMat(tc.rows, tc.cols), b.NewMat(tc.rows, tc.cols), b.NewMat(tc.rows, outRows)
				// Twice: the first pass grows the activation scratch
				// buffers, which sends the queue.
				for range 2 {
					b.Write(xm, x)
					b.Write(ym, y)
					if tc.add {
						b.Add(xm, xm, ym)
					}
					b.RMSNorm(nm, xm, nw, 1e-5)
					b.MatMul(pm, nm, w)
				}
				n, p = make([]float32, tc.rows*tc.cols), make([]float32, tc.rows*outRows)
				b.Read(nm, n)
				b.Read(pm, p)
				return n, p
			}
			gotN, gotP := run(gpu)
			wantN, wantP := run(eager)
			if !slices.Equal(gotN, wantN) {
				t.Errorf("norm differs from the eager backend's (relative error %.3g)", testenv.RelErr(gotN, wantN))
			}
			if !slices.Equal(gotP, wantP) {
				t.Errorf("product differs from the eager backend's (relative error %.3g; %v… against %v…)", testenv.RelErr(gotP, wantP), head(gotP), head(wantP))
			}
		})
	}
}

// TestFusedRoPEAttentionMatchesEager checks the decode attention that
// rotates q and k and stores the new key and value itself (the rope launch
// fused into it) against a backend launching rope, store and attention by
// themselves: q, k and the output bit for bit equal, and the next step,
// which reads the stored position from the cache, too. GQA, both caches,
// plain and NeoX rotation, partial rotation.
func TestFusedRoPEAttentionMatchesEager(t *testing.T) {
	gpu := needGPU(t)
	eager := eagerBackend(t)
	// The TinyLlama cases have its heads (32 over 4 KV heads: 8 blocks
	// count themselves per KV head before its k is written back and
	// stored) and 127 positions before the two steps, so that every warp
	// of a block takes several keys (128 and 129 positions). Heads of 16
	// and 8 values leave lanes of the warps that score a position with no
	// value (stories260K has heads of 8).
	for _, tc := range []struct {
		f32, neox      bool
		headDim, dims  int
		heads, kvHeads int
		prefill        int
	}{
		{false, false, 64, 64, 8, 2, 5}, {true, false, 64, 64, 8, 2, 5}, {false, true, 64, 32, 8, 2, 5}, {true, true, 64, 64, 8, 2, 5},
		{false, false, 64, 64, 32, 4, 127}, {true, false, 64, 64, 32, 4, 127},
		{false, false, 16, 16, 8, 4, 40}, {true, true, 8, 8, 8, 4, 40},
	} {
		headDim, heads, kvHeads, prefillRows := tc.headDim, tc.heads, tc.kvHeads, tc.prefill
		kvDim := kvHeads * headDim
		ctx := prefillRows + 8
		t.Run(fmt.Sprintf("F32 cache %v NeoX %v dims %d of %d heads %d/%d after %d", tc.f32, tc.neox, tc.dims, headDim, heads, kvHeads, prefillRows), func(t *testing.T) {
			r := rand.New(rand.NewPCG(9, uint64(tc.dims)))
			prefill := randFloats(r, prefillRows*kvDim*2, 1)
			steps := [][]float32{randFloats(r, (heads+2*kvHeads)*headDim, 1), randFloats(r, (heads+2*kvHeads)*headDim, 1)}
			rp := backend.RoPEParams{HeadDim: headDim, Dims: tc.dims, FreqBase: 10000, FreqScale: 1, NeoX: tc.neox}
			qp, kp := rp, rp
			qp.Heads, kp.Heads = heads, kvHeads
			ap := backend.AttnParams{Heads: heads, KVHeads: kvHeads, HeadDim: headDim, Scale: 0.125}
			// run returns q, k and the output of both decode steps.
			run := func(b *cuda.Backend, checkFused bool) [][]float32 {
				c := b.NewKVCache(backend.KVConfig{Slots: 1, Layers: 1, Ctx: ctx, KVDim: kvDim, F32: tc.f32})
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
					b.Write(q, in[:heads*headDim])
					b.Write(k, in[heads*headDim:heads*headDim+kvDim])
					b.Write(v, in[heads*headDim+kvDim:])
					bt := backend.Batch{Slot: []int32{0}, Pos: []int32{int32(prefillRows + i)}}
					b.RoPE(q, bt.Pos, qp)
					b.RoPE(k, bt.Pos, kp)
					b.StoreKV(c, 0, bt, k, v)
					b.Attention(o, q, c, 0, bt, ap, nil, nil)
					if checkFused && cuda.PendingLaunches(b) != 1 {
						t.Errorf("step %d: %d launches queued, want 1 (rotation and store fused into the attention)", i, cuda.PendingLaunches(b))
					}
					// Heads of 64 with an F16 cache take the kernel compiled
					// for them, which must give the eager backend's bits.
					if want := !tc.f32 && headDim == 64; checkFused && cuda.PendingIsAttentionDec64(b) != want {
						t.Errorf("step %d: attention_dec64 queued %v, want %v", i, !want, want)
					}
					for _, m := range []backend.Mat{q, k, o} {
						vals := make([]float32, m.Cols())
						b.Read(m, vals)
						out = append(out, vals)
					}
				}
				return out
			}
			got, want := run(gpu, true), run(eager, false)
			names := []string{"q", "k", "output", "next step's q", "next step's k", "next step's output"}
			for i := range want {
				if !slices.Equal(got[i], want[i]) {
					t.Errorf("%s differs from the eager backend's (relative error %.3g)", names[i], testenv.RelErr(got[i], want[i]))
				}
			}
		})
	}
}
