package cuda_test

// Tests of the CPU-order mode (cuda.Options.CPUOrder): every result must
// equal the CPU backend's bit for bit. They need a GPU (LLAMAGO_CUDA=1);
// the TinyLlama-shaped model needs LLAMAGO_CUDA_BIG=1 too.

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"llamago/backend"
	"llamago/backend/cpu"
	"llamago/backend/cuda"
	"llamago/engine"
	"llamago/gguf"
	"llamago/internal/synth"
	"llamago/internal/testenv"
	"llamago/probe"
	"llamago/quantize"
	"llamago/tensor"
	"llamago/tokenizer"
	"llamago/trace"
)

// needCPUOrder is needGPU for a backend in CPU-order mode.
func needCPUOrder(t testing.TB) *cuda.Backend {
	t.Helper()
	if os.Getenv("LLAMAGO_CUDA") != "1" {
		t.Skip("GPU test: set LLAMAGO_CUDA=1 on a machine with an NVIDIA GPU")
	}
	b, err := cuda.New(cuda.Options{CPUOrder: true})
	if err != nil {
		t.Fatalf("LLAMAGO_CUDA=1 but: %v", err)
	}
	if !b.CPUOrder() {
		t.Fatal("Options.CPUOrder set but the backend is not in CPU-order mode")
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func newExactPair(t *testing.T) pair {
	p := pair{gpu: needCPUOrder(t), cpu: cpu.New(cpu.Options{Threads: 2})}
	t.Cleanup(func() { p.cpu.Close() })
	return p
}

// sameBits fails unless gv and cv are equal bit for bit (NaN included).
func sameBits(t *testing.T, what string, gv, cv []float32) {
	t.Helper()
	diff, first := 0, -1
	for i := range cv {
		if math.Float32bits(gv[i]) != math.Float32bits(cv[i]) {
			if first < 0 {
				first = i
			}
			diff++
		}
	}
	if diff > 0 {
		t.Errorf("%s: %d of %d values differ from the CPU's bits (first at %d: gpu %g cpu %g; relative error %.3g)",
			what, diff, len(cv), first, gv[first], cv[first], testenv.RelErr(gv, cv))
	}
}

// exact reads the matrix from both backends and checks equal bits.
func (p pair) exact(t *testing.T, what string, g, c backend.Mat) {
	t.Helper()
	n := g.Rows() * g.Cols()
	gv, cv := make([]float32, n), make([]float32, n)
	p.gpu.Read(g, gv)
	p.cpu.Read(c, cv)
	sameBits(t, what, gv, cv)
}

// TestCPUOrderMatMul: products of F32, F16, Q4_0, Q8_0, Q4_K and Q6_K
// weights at 1, 5 and 19 tokens, with row lengths that are and are not
// multiples of 16 (for the float types tinyBLAS's order or not for several
// tokens) and of 64 (ggml_vec_dot's leftovers), and with sequence runs
// that put single tokens (ggml_vec_dot's order; Q4_K's gemv) among runs of
// several (Q4_K: 4 and 16 tokens in the gemm order, the rest in the
// gemv's); GetRows too.
func TestCPUOrderMatMul(t *testing.T) {
	p := newExactPair(t)
	r := rand.New(rand.NewPCG(11, 12))
	runsFor := map[int][][]int{1: {nil}, 5: {nil, {1, 4}, {2, 3}}, 19: {nil, {1, 17, 1}, {19}}}
	for _, typ := range cuda.CPUOrderTypes() {
		colsList := []int{172, 208, 256}
		switch typ.BlockSize() {
		case 32:
			colsList = []int{96, 256, 1088} // 1088: more than 32 blocks
		case 256:
			colsList = []int{256, 768, 2304}
		}
		for _, cols := range colsList {
			const wrows = 133
			w := backend.WeightSpec{Name: "w." + typ.String(), Type: typ, Rows: wrows, Cols: cols, Data: quantized(t, r, typ, wrows, cols)}
			wg, wc := p.weights(t, w)
			for _, ntok := range []int{1, 5, 19} {
				for _, runs := range runsFor[ntok] {
					t.Run(fmt.Sprintf("%s/%d cols/%d tokens/runs %v", typ, cols, ntok, runs), func(t *testing.T) {
						p.gpu.SetSequenceRuns(runs)
						p.cpu.SetSequenceRuns(runs)
						defer p.gpu.SetSequenceRuns(nil)
						defer p.cpu.SetSequenceRuns(nil)
						xg, xc := p.mats(ntok, cols, randFloats(r, ntok*cols, 1))
						yg, yc := p.poisoned(ntok, wrows)
						p.gpu.MatMul(yg, xg, wg)
						p.cpu.MatMul(yc, xc, wc)
						p.exact(t, "MatMul", yg, yc)

						ids := []int32{0, wrows - 1, 7, 7}[:min(4, ntok)]
						eg, ec := p.poisoned(len(ids), cols)
						p.gpu.GetRows(eg, wg, ids)
						p.cpu.GetRows(ec, wc, ids)
						p.exact(t, "GetRows", eg, ec)
					})
				}
			}
		}
	}
}

// TestCPUOrderRowwise: RMSNorm, SwiGLU (rows whose length is not a
// multiple of 16, so the scalar exponential runs too, and gates far out in
// the exponential's tails), Add, CopyRows and RoPE.
func TestCPUOrderRowwise(t *testing.T) {
	p := newExactPair(t)
	r := rand.New(rand.NewPCG(13, 14))
	for _, cols := range []int{300, 2048} {
		t.Run(fmt.Sprintf("%d cols", cols), func(t *testing.T) {
			const rows = 7
			a := randFloats(r, rows*cols, 2)
			// Gates far out in the exponential's tails, in a row's groups
			// of 16 (row 0) and in its rest past them (row 1).
			for i, v := range []float32{-120, -88, -30, 0, float32(math.Copysign(0, -1)), 1e-30, 30, 87, 95, 200} {
				a[i] = v
				a[cols+(cols&^15)+i%(cols-cols&^15+1)] = v
			}
			ag, ac := p.mats(rows, cols, a)
			bg, bc := p.mats(rows, cols, randFloats(r, rows*cols, 2))

			dg, dc := p.poisoned(rows, cols)
			p.gpu.Add(dg, ag, bg)
			p.cpu.Add(dc, ac, bc)
			p.exact(t, "Add", dg, dc)

			sg, sc := p.poisoned(rows, cols)
			p.gpu.SwiGLU(sg, ag, bg)
			p.cpu.SwiGLU(sc, ac, bc)
			p.exact(t, "SwiGLU", sg, sc)

			norm := backend.WeightSpec{Name: "norm", Type: tensor.F32, Rows: 1, Cols: cols, Data: quantized(t, r, tensor.F32, 1, cols)}
			ng, nc := p.weights(t, norm)
			og, oc := p.poisoned(rows, cols)
			p.gpu.RMSNorm(og, ag, ng, 1e-5)
			p.cpu.RMSNorm(oc, ac, nc, 1e-5)
			p.exact(t, "RMSNorm", og, oc)

			p.gpu.Add(ag, ag, bg)
			p.cpu.Add(ac, ac, bc)
			p.gpu.SwiGLU(bg, bg, ag)
			p.cpu.SwiGLU(bc, bc, ac)
			p.exact(t, "in-place Add and SwiGLU", bg, bc)
		})
	}
	tests := []backend.RoPEParams{
		{Heads: 8, HeadDim: 64, Dims: 64, FreqBase: 10000, FreqScale: 1},
		{Heads: 4, HeadDim: 16, Dims: 8, FreqBase: 10000, FreqScale: 1},
		{Heads: 4, HeadDim: 32, Dims: 32, FreqBase: 500000, FreqScale: 0.25, NeoX: true},
	}
	pos := []int32{0, 1, 2, 17, 511, 4095, 100000}
	for _, rp := range tests {
		t.Run(fmt.Sprintf("RoPE %+v", rp), func(t *testing.T) {
			cols := rp.Heads * rp.HeadDim
			xg, xc := p.mats(len(pos), cols, randFloats(r, len(pos)*cols, 1))
			p.gpu.RoPE(xg, pos, rp)
			p.cpu.RoPE(xc, pos, rp)
			p.exact(t, "RoPE", xg, xc)
		})
	}
}

// TestCPUOrderAttention: StoreKV and Attention with F32 and F16 caches,
// GQA, heads of several sizes, probes on and off, over a prefill of two
// sequences (tinyBLAS's orders), a decode step of each (ggml_vec_dot's)
// and a batch with one sequence of one row and one of three.
func TestCPUOrderAttention(t *testing.T) {
	for _, tc := range []struct {
		headDim int
		f32     bool
	}{{16, true}, {16, false}, {96, true}, {96, false}, {64, true}, {64, false}, {128, false}, {72, false}} {
		t.Run(fmt.Sprintf("head %d F32 cache %v", tc.headDim, tc.f32), func(t *testing.T) {
			p := newExactPair(t)
			r := rand.New(rand.NewPCG(17, uint64(tc.headDim)))
			const heads, kvHeads, layers, ctx = 8, 2, 2, 600
			headDim := tc.headDim
			kvDim := kvHeads * headDim
			cfg := backend.KVConfig{Slots: 2, Layers: layers, Ctx: ctx, KVDim: kvDim, F32: tc.f32}
			cg, cc := p.gpu.NewKVCache(cfg), p.cpu.NewKVCache(cfg)
			ap := backend.AttnParams{Heads: heads, KVHeads: kvHeads, HeadDim: headDim, Scale: 0.25}
			var prefill backend.Batch
			for i := range 530 {
				prefill.Slot, prefill.Pos = append(prefill.Slot, 1), append(prefill.Pos, int32(i))
			}
			for i := range 9 {
				prefill.Slot, prefill.Pos = append(prefill.Slot, 0), append(prefill.Pos, int32(i))
			}
			decode := backend.Batch{Slot: []int32{0, 1}, Pos: []int32{9, 530}}
			mixed := backend.Batch{Slot: []int32{1, 0, 0, 0}, Pos: []int32{531, 10, 11, 12}}
			for step, bt := range []backend.Batch{prefill, decode, mixed} {
				n := bt.Len()
				for layer := range layers {
					kg, kc := p.mats(n, kvDim, randFloats(r, n*kvDim, 1))
					vg, vc := p.mats(n, kvDim, randFloats(r, n*kvDim, 1))
					p.gpu.StoreKV(cg, layer, bt, kg, vg)
					p.cpu.StoreKV(cc, layer, bt, kc, vc)
					qg, qc := p.mats(n, heads*headDim, randFloats(r, n*heads*headDim, 0.5))
					og, oc := p.poisoned(n, heads*headDim)
					const span = 540
					sg, sc := p.mats(n, heads*span, nil)
					pg, pc := p.mats(n, heads*span, nil)
					p.gpu.Attention(og, qg, cg, layer, bt, ap, sg, pg)
					p.cpu.Attention(oc, qc, cc, layer, bt, ap, sc, pc)
					what := fmt.Sprintf("step %d layer %d", step, layer)
					p.exact(t, what+" output", og, oc)
					p.exact(t, what+" scores", sg, sc)
					p.exact(t, what+" probabilities", pg, pc)
					og2, oc2 := p.poisoned(n, heads*headDim)
					p.gpu.Attention(og2, qg, cg, layer, bt, ap, nil, nil)
					p.cpu.Attention(oc2, qc, cc, layer, bt, ap, nil, nil)
					p.exact(t, what+" output without probes", og2, oc2)
				}
			}
		})
	}
}

// greedyExact runs the model greedily on the CPU and on a CPU-order GPU
// backend from the same prompt and checks equal ids and bit-identical
// logits at every step.
func greedyExact(t *testing.T, path string, prompt []int32, steps int, kvF32 bool) {
	t.Helper()
	gpu := needCPUOrder(t)
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cb := cpu.New(cpu.Options{Threads: engine.DefaultThreads()})
	defer cb.Close()
	ctx := len(prompt) + steps + 1
	want := greedy(t, loadRun(t, f, cb, ctx, kvF32), prompt, steps)
	got := greedy(t, loadRun(t, f, gpu, ctx, kvF32), prompt, steps)
	differ, first, worst := 0, -1, 0.0
	for i := range want.logits {
		if !slices.Equal(bitsOf(got.logits[i]), bitsOf(want.logits[i])) {
			differ++
			if first < 0 {
				first = i
			}
			worst = max(worst, testenv.RelErr(got.logits[i], want.logits[i]))
		}
	}
	same := 0
	for same < len(want.ids) && got.ids[same] == want.ids[same] {
		same++
	}
	captured, replayed, direct := gpu.GraphStats()
	t.Logf("%s, F32 KV %v: %d prompt tokens, %d greedy steps: ids equal for %d steps, logits bit-identical at %d of %d steps; decode %.1f tokens/s on %s (CPU %.1f); graphs %d captured, %d replays, %d direct",
		filepath.Base(path), kvF32, len(prompt), steps, same, steps-differ, steps,
		float64(steps)/got.elapsed.Seconds(), gpu.Info().Name, float64(steps)/want.elapsed.Seconds(), captured, replayed, direct)
	if same != len(want.ids) {
		t.Errorf("greedy ids part at step %d: cuda %v, cpu %v", same, got.ids[same:min(same+8, len(got.ids))], want.ids[same:min(same+8, len(want.ids))])
	}
	if differ > 0 {
		t.Errorf("logits differ from the CPU's bits at %d of %d steps (first step %d; largest relative error %.3g)", differ, steps, first, worst)
	}
	if steps >= 4 && replayed == 0 {
		t.Errorf("no decode step ran as a graph")
	}
}

func bitsOf(v []float32) []uint32 {
	b := make([]uint32, len(v))
	for i, x := range v {
		b[i] = math.Float32bits(x)
	}
	return b
}

// promptIDs tokenizes prompt with the model's tokenizer.
func promptIDs(t *testing.T, path, prompt string) []int32 {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode(prompt, tokenizer.EncodeOptions{AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestCPUOrderStories260KBitExact(t *testing.T) {
	needCPUOrder(t)
	path := testenv.Path(t, testenv.Stories260KGGUF)
	ids := promptIDs(t, path, storyPrompt)
	for _, kvF32 := range []bool{true, false} {
		t.Run(fmt.Sprintf("F32 KV %v", kvF32), func(t *testing.T) {
			greedyExact(t, path, ids, 128, kvF32)
		})
	}
}

// TestCPUOrderSyntheticBitExact: small synthetic models with F16, F32,
// Q8_0, Q4_0, Q4_K, Q6_K and Q4_K_M weights (package synth), both caches.
func TestCPUOrderSyntheticBitExact(t *testing.T) {
	needCPUOrder(t)
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	dir := t.TempDir()
	for _, name := range []string{"f16", "f32", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"} {
		target, err := quantize.ParseTarget(name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".gguf")
		if err := synth.Write(path, synth.Small(), target, 1, synth.Options{VocabPath: vocab}); err != nil {
			t.Fatal(err)
		}
		ids := promptIDs(t, path, "The old lighthouse keeper climbed the spiral stairs every evening")
		for _, kvF32 := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/F32 KV %v", name, kvF32), func(t *testing.T) {
				greedyExact(t, path, ids, 32, kvF32)
			})
		}
	}
}

// tinyLlama returns the TinyLlama-shaped synthetic file of type name
// (a quantize target: "f16", "q4_k_m"…): the one $LLAMAGO_CUDA_TINYLLAMA_<NAME> names, or one
// written (package synth's cache in $LLAMAGO_CUDA_SYNTH_DIR, else a
// temporary folder). It skips unless LLAMAGO_CUDA_BIG=1.
func tinyLlama(t *testing.T, name string) string {
	t.Helper()
	if os.Getenv("LLAMAGO_CUDA_BIG") != "1" {
		t.Skip("set LLAMAGO_CUDA_BIG=1 to write and run a TinyLlama-shaped model")
	}
	if path := os.Getenv("LLAMAGO_CUDA_TINYLLAMA_" + strings.ToUpper(name)); path != "" {
		return path
	}
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	target, err := quantize.ParseTarget(name)
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("LLAMAGO_CUDA_SYNTH_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	path, err := synth.Cached(dir, synth.TinyLlama(), target, 1, synth.Options{VocabPath: vocab})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

const tinyPrompt = "Once upon a time there was a little girl"

// tinyLlamaTypes are the TinyLlama-shaped files the CPU-order tests run:
// F16, Q8_0, Q4_0 (its output.weight is Q6_K) and Q4_K_M (Q4_K, with
// Q6_K for some attn_v and ffn_down and the output).
var tinyLlamaTypes = []string{"f16", "q8_0", "q4_0", "q4_k_m"}

// TestCPUOrderTinyLlamaBitExact: the TinyLlama-shaped synthetic model (22
// layers, GQA 32/4, 2048 wide) in each of tinyLlamaTypes, a short prompt
// and 128 greedy tokens with the F16 cache: logits bit-identical at every
// step.
func TestCPUOrderTinyLlamaBitExact(t *testing.T) {
	needCPUOrder(t)
	for _, name := range tinyLlamaTypes {
		t.Run(name, func(t *testing.T) {
			path := tinyLlama(t, name)
			greedyExact(t, path, promptIDs(t, path, tinyPrompt), 128, false)
		})
	}
	// A prompt of 512 tokens: prefill-sized products and attention.
	t.Run("f16 prompt 512", func(t *testing.T) {
		prompt := make([]int32, 512)
		for i := range prompt {
			prompt[i] = int32(1000 + 37*i)
		}
		greedyExact(t, tinyLlama(t, "f16"), prompt, 4, false)
	})
	// Q4_K_M with a prompt of 67 tokens: batches whose Q4_K products take
	// ggml's gemm order for groups of four tokens and the gemv order for
	// the 3 tokens left over.
	t.Run("q4_k_m prompt 67", func(t *testing.T) {
		prompt := make([]int32, 67)
		for i := range prompt {
			prompt[i] = int32(1000 + 37*i)
		}
		greedyExact(t, tinyLlama(t, "q4_k_m"), prompt, 4, false)
	})
}

// TestCPUOrderTinyLlamaTraceDiff traces the TinyLlama-shaped model (each
// of tinyLlamaTypes) on the CPU and on the CPU-order GPU backend (every probe, F32
// cache, the prompt and 8 greedy tokens) and requires every probe row to
// agree with relative error 0.
func TestCPUOrderTinyLlamaTraceDiff(t *testing.T) {
	gpu := needCPUOrder(t)
	for _, name := range tinyLlamaTypes {
		t.Run(name, func(t *testing.T) {
			traceDiffExact(t, gpu, tinyLlama(t, name), name)
		})
	}
}

func traceDiffExact(t *testing.T, gpu *cuda.Backend, path, name string) {
	dir := outDir(t)
	opts := trace.Options{ModelPath: path, Prompt: tinyPrompt, Chat: trace.ChatOff, KVF32: true, Generate: 8}
	cpuDump := filepath.Join(dir, "exact-trace-cpu-"+name+".safetensors")
	gpuDump := filepath.Join(dir, "exact-trace-cuda-"+name+".safetensors")
	o := opts
	o.DumpPath = cpuDump
	if _, err := trace.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	o = opts
	o.DumpPath = gpuDump
	o.WrapBackend = func(backend.Backend) backend.Backend { return gpu }
	if _, err := trace.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	rep := diffDumps(t, gpuDump, cpuDump)
	worst, worstRow, nonzero := 0.0, probe.Row{}, 0
	for _, row := range rep.Rows {
		if row.RelErr != 0 {
			nonzero++
		}
		if !(row.RelErr <= worst) {
			worst, worstRow = row.RelErr, row
		}
	}
	counts := rep.Counts()
	t.Logf("diff cuda (CPU order) vs cpu, TinyLlama-shaped %s, F32 KV: %d probe rows: %d agree, %d warn, %d diverge; %d rows with a nonzero error, largest %.3g (%s at %d); %s",
		name, len(rep.Rows), counts[probe.Agree], counts[probe.Warn], counts[probe.Diverge], nonzero, worst, worstRow.Probe, worstRow.Pos, rep.Verdict())
	if len(rep.Rows) == 0 || nonzero > 0 {
		t.Errorf("%d of %d probe rows differ (largest relative error %.3g at %s, position %d); want all exactly equal", nonzero, len(rep.Rows), worst, worstRow.Probe, worstRow.Pos)
	}
}
