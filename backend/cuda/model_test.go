package cuda_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"llamago/backend"
	"llamago/backend/cpu"
	"llamago/backend/cuda"
	"llamago/engine"
	"llamago/gguf"
	"llamago/internal/synth"
	"llamago/internal/testenv"
	"llamago/model"
	"llamago/probe"
	"llamago/quantize"
	"llamago/tokenizer"
	"llamago/trace"
)

const storyPrompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends."

// outDir is where the device script collects dumps and reports
// ($LLAMAGO_CUDA_OUT), or a temporary folder.
func outDir(t *testing.T) string {
	if d := os.Getenv("LLAMAGO_CUDA_OUT"); d != "" {
		return d
	}
	return t.TempDir()
}

// run is one model on one backend with a session.
type run struct {
	m    *model.Model
	sess *engine.Session
}

func loadRun(t *testing.T, f *gguf.File, be backend.Backend, ctx int, kvF32 bool) run {
	t.Helper()
	m, err := model.Load(f, be)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.NewState(model.StateOptions{MaxBatch: 32, Ctx: ctx, KVF32: kvF32})
	if err != nil {
		t.Fatal(err)
	}
	return run{m: m, sess: engine.NewSession(m, st, 0)}
}

// greedyResult is one backend's greedy continuation.
type greedyResult struct {
	ids     []int32
	logits  [][]float32
	elapsed time.Duration // the decode steps only
}

func greedy(t *testing.T, r run, prompt []int32, steps int) greedyResult {
	t.Helper()
	ctx := context.Background()
	logits, err := r.sess.Eval(ctx, prompt)
	if err != nil {
		t.Fatal(err)
	}
	var res greedyResult
	start := time.Now()
	for range steps {
		res.logits = append(res.logits, slices.Clone(logits))
		id := testenv.Argmax(logits)
		res.ids = append(res.ids, id)
		if logits, err = r.sess.Eval(ctx, []int32{id}); err != nil {
			t.Fatal(err)
		}
	}
	res.elapsed = time.Since(start)
	return res
}

// compareGreedy runs both backends greedily from the same prompt and
// checks equal ids and close logits at every step.
func compareGreedy(t *testing.T, path string, prompt string, steps int, kvF32 bool, logitTol float64) {
	gpu := needGPU(t)
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
	cb := cpu.New(cpu.Options{Threads: engine.DefaultThreads()})
	defer cb.Close()
	ctx := len(ids) + steps + 1
	want := greedy(t, loadRun(t, f, cb, ctx, kvF32), ids, steps)
	got := greedy(t, loadRun(t, f, gpu, ctx, kvF32), ids, steps)
	checkSameAsEager(t, f, gpu, got, ids, steps, ctx, kvF32)
	worst, worstStep := 0.0, 0
	for i := range want.logits {
		if rel := testenv.RelErr(got.logits[i], want.logits[i]); !(rel <= worst) {
			worst, worstStep = rel, i
		}
	}
	same := 0
	for same < len(want.ids) && got.ids[same] == want.ids[same] {
		same++
	}
	t.Logf("%s, F32 KV %v: %d prompt tokens, %d greedy steps: ids equal for %d steps; largest logits relative error %.3g (step %d); decode %.1f tokens/s on %s, %.1f on the CPU",
		filepath.Base(path), kvF32, len(ids), steps, same, worst, worstStep,
		float64(steps)/got.elapsed.Seconds(), gpu.Info().Name, float64(steps)/want.elapsed.Seconds())
	if same != len(want.ids) {
		t.Errorf("greedy ids part at step %d: cuda %v, cpu %v", same, got.ids[same:min(same+8, len(got.ids))], want.ids[same:min(same+8, len(want.ids))])
	}
	if !(worst <= logitTol) {
		t.Errorf("logits relative error %.3g at step %d, tolerance %g", worst, worstStep, logitTol)
	}
}

// checkSameAsEager runs the model again on a backend that launches every
// kernel as its operation runs (Options.Eager: no queue, no fused
// launches, no graphs) and checks that got, from gpu (queued, fused,
// replayed as graphs), has bit for bit the same logits: fusing and graphs
// change where launches go, not what they compute. It also checks that
// the decode steps did run as graphs.
func checkSameAsEager(t *testing.T, f *gguf.File, gpu *cuda.Backend, got greedyResult, prompt []int32, steps, ctx int, kvF32 bool) {
	t.Helper()
	eager := eagerBackend(t)
	plain := greedy(t, loadRun(t, f, eager, ctx, kvF32), prompt, steps)
	for i := range plain.logits {
		if !slices.Equal(got.logits[i], plain.logits[i]) {
			t.Errorf("step %d: logits differ from the eager backend's (largest relative error %.3g)", i, testenv.RelErr(got.logits[i], plain.logits[i]))
			break
		}
	}
	captured, replayed, direct := gpu.GraphStats()
	t.Logf("graphs: %d captured, %d replays, %d queues launched one by one; decode %.1f tokens/s (eager %.1f)",
		captured, replayed, direct, float64(steps)/got.elapsed.Seconds(), float64(steps)/plain.elapsed.Seconds())
	if steps >= 4 && replayed == 0 {
		t.Errorf("no decode step ran as a graph")
	}
}

// Tolerances on the logits. With F32 weights and an F32 cache both
// backends compute the same float operations in different orders: about
// 1e-6. Roundings to F16 (the default cache, F16 weights) or to Q8_0 and
// Q8_K (the activations of quantized products) are mirrored exactly, but
// an input that differs in its last bit can still land on the other side
// of a rounding step, which moves that value by a whole step (2^-11
// relative for F16, 1/127 of the block's largest value for Q8): such flips
// are rare but each shifts the logits by up to about 1e-3, more on small
// random models. The diff tool's threshold for "warn" is 1e-2.
const (
	tolExact   = 1e-4
	tolF16KV   = 2e-3
	tolRounded = 2e-2
)

func TestStories260KGreedyMatchesCPU(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	for _, kvF32 := range []bool{true, false} {
		t.Run(fmt.Sprintf("F32 KV %v", kvF32), func(t *testing.T) {
			tol := tolExact
			if !kvF32 {
				tol = tolF16KV
			}
			compareGreedy(t, path, storyPrompt, 128, kvF32, tol)
		})
	}
}

// TestSyntheticQuantizedMatchesCPU runs small synthetic llama models
// (package synth, LLaMA's 32,000-token vocabulary) quantized to each type
// the kernels take.
func TestSyntheticQuantizedMatchesCPU(t *testing.T) {
	needGPU(t)
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	dir := t.TempDir()
	// q4_k_m: layer 1 of synth.Small has Q6_K v and down matrices beside
	// Q4_K ones.
	for _, name := range []string{"f16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m"} {
		t.Run(name, func(t *testing.T) {
			target, err := quantize.ParseTarget(name)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name+".gguf")
			if err := synth.Write(path, synth.Small(), target, 1, synth.Options{VocabPath: vocab}); err != nil {
				t.Fatal(err)
			}
			compareGreedy(t, path, "The old lighthouse keeper climbed the spiral stairs every evening", 16, true, tolRounded)
		})
	}
}

// TestTinyLlamaQ4_0Speed measures decode and prefill on a TinyLlama-shaped
// synthetic Q4_0 model (1.1B parameters; writing it takes about a minute
// and 5 GB of temporary disk), and checks the first greedy tokens against
// the CPU. It runs only with LLAMAGO_CUDA_BIG=1.
func TestTinyLlamaQ4_0Speed(t *testing.T) {
	gpu := needGPU(t)
	if os.Getenv("LLAMAGO_CUDA_BIG") != "1" {
		t.Skip("set LLAMAGO_CUDA_BIG=1 to write and run a TinyLlama-shaped model")
	}
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	target, err := quantize.ParseTarget("q4_0")
	if err != nil {
		t.Fatal(err)
	}
	// $LLAMAGO_CUDA_TINYLLAMA names a file made beforehand (the device
	// script makes it once for the benchmarks too).
	path := os.Getenv("LLAMAGO_CUDA_TINYLLAMA")
	start := time.Now()
	if path == "" {
		path = filepath.Join(t.TempDir(), "tinyllama-q4_0.gguf")
		if err := synth.Write(path, synth.TinyLlama(), target, 1, synth.Options{VocabPath: vocab}); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s in %v", filepath.Base(path), time.Since(start).Round(time.Second))
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prompt := make([]int32, 128)
	for i := range prompt {
		prompt[i] = int32(1000 + 37*i)
	}
	const steps = 128
	ctx := context.Background()
	g := loadRun(t, f, gpu, len(prompt)+steps+1, false)
	// Warm up (first launches, the JIT's caches), then measure.
	if _, err := g.sess.Eval(ctx, prompt[:8]); err != nil {
		t.Fatal(err)
	}
	g.sess.Reset()
	start = time.Now()
	if _, err := g.sess.Eval(ctx, prompt); err != nil {
		t.Fatal(err)
	}
	prefill := time.Since(start)
	g.sess.Reset()
	res := greedy(t, g, prompt, steps)
	t.Logf("TinyLlama-shaped Q4_0 (F16 KV) on %s: prefill %d tokens at %.0f tokens/s, decode %.1f tokens/s (%d steps)",
		gpu.Info().Name, len(prompt), float64(len(prompt))/prefill.Seconds(), float64(steps)/res.elapsed.Seconds(), steps)
	checkSameAsEager(t, f, gpu, res, prompt, steps, len(prompt)+steps+1, false)

	cb := cpu.New(cpu.Options{Threads: engine.DefaultThreads()})
	defer cb.Close()
	const checked = 8
	want := greedy(t, loadRun(t, f, cb, len(prompt)+checked+1, false), prompt, checked)
	if !slices.Equal(res.ids[:checked], want.ids) {
		t.Errorf("first greedy ids: cuda %v, cpu %v", res.ids[:checked], want.ids)
	}
	t.Logf("first %d greedy ids equal to the CPU's: %v; CPU decode %.1f tokens/s", checked, slices.Equal(res.ids[:checked], want.ids), float64(checked)/want.elapsed.Seconds())
}

// openTinyLlama opens $LLAMAGO_CUDA_TINYLLAMA for an opt-in test, which
// skips with skip unless $gate is 1 and the file is named; the file is
// closed when the test ends.
func openTinyLlama(t *testing.T, gate, skip string) *gguf.File {
	t.Helper()
	path := os.Getenv("LLAMAGO_CUDA_TINYLLAMA")
	if os.Getenv(gate) != "1" || path == "" {
		t.Skip(skip)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestTinyLlamaDecodeGPUTime splits a decode step of the TinyLlama-shaped
// Q4_0 model into GPU time (its graph replayed back to back, no host work)
// and the rest (queuing the launches, copying the logits back, sampling),
// for the performance notes. It runs only with LLAMAGO_CUDA_BIG=1 and
// $LLAMAGO_CUDA_TINYLLAMA (the file TestWriteBenchModels makes).
func TestTinyLlamaDecodeGPUTime(t *testing.T) {
	needGPU(t)
	f := openTinyLlama(t, "LLAMAGO_CUDA_BIG", "set LLAMAGO_CUDA_BIG=1 and LLAMAGO_CUDA_TINYLLAMA to a TinyLlama-shaped file")
	for _, pdl := range []bool{true, false} {
		// One graph a step (no chunks), so that the last graph is a
		// whole decode step.
		t.Setenv("LLAMAGO_CUDA_CHUNK", "0")
		gpu, err := cuda.New(cuda.Options{NoPDL: !pdl})
		if err != nil {
			t.Fatal(err)
		}
		prompt := []int32{1, 450, 2030, 17526, 13} // any ids
		const steps = 16
		res := greedy(t, loadRun(t, f, gpu, 64, false), prompt, steps)
		perStep := res.elapsed / steps
		gpuStep, err := cuda.TimeLastGraph(gpu, 200)
		if err != nil {
			t.Fatal(err)
		}
		captured, replayed, direct := gpu.GraphStats()
		t.Logf("decode step (PDL %v): %v in all, %v of it on the GPU (its graph replayed back to back), %v the rest; queues: %d captured, %d replayed, %d direct",
			gpu.PDL(), perStep.Round(time.Microsecond), gpuStep.Round(time.Microsecond), (perStep - gpuStep).Round(time.Microsecond), captured, replayed, direct)
		gpu.Close()
	}
	// The default chunks: the step as the graphs it launched, replayed in
	// order back to back, against the step with the host in the loop.
	t.Setenv("LLAMAGO_CUDA_CHUNK", "")
	gpu, err := cuda.New(cuda.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gpu.Close()
	const steps = 16
	r := loadRun(t, f, gpu, 128, false)
	res := greedy(t, r, []int32{1, 450, 2030, 17526, 13}, steps)
	perStep := res.elapsed / steps
	gpuStep, graphs, err := cuda.TimeLastStep(gpu, 200)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("decode step in chunks (PDL %v): %v in all, %v of it on the GPU (its %d graphs replayed back to back), %v the rest",
		gpu.PDL(), perStep.Round(time.Microsecond), gpuStep.Round(time.Microsecond), graphs, (perStep - gpuStep).Round(time.Microsecond))

	// The host's part of a step as llamago bench runs it (one token in,
	// the logits back): from the end of the last wait to the step's first
	// graph launch, from there to Read, and Read's wait.
	var marks []cuda.Mark
	cuda.RecordMarks(gpu, &marks)
	const timed = 32
	for range timed {
		if _, err := r.sess.Eval(context.Background(), []int32{450}); err != nil {
			t.Fatal(err)
		}
	}
	cuda.RecordMarks(gpu, nil)
	p := splitHostParts(t, marks)
	t.Logf("host's part of a step (%d steps, %d graphs): %v a step; wait's end to the first graph launch %v, to Read %v, Read's wait %v",
		p.steps, p.graphs, p.total, p.start, p.queue, p.wait)
}

// hostParts is the host's part of the decode steps recorded by
// cuda.RecordMarks, averaged over the steps: from the end of the wait
// before a step to its first graph launch (start), from there to Read
// (queue), Read's wait, and the whole step.
type hostParts struct {
	steps, graphs             int
	start, queue, wait, total time.Duration
}

// splitHostParts averages the marks' steps (a step: from one wait's end to
// the next, with a graph launch and a Read between).
func splitHostParts(t *testing.T, marks []cuda.Mark) hostParts {
	t.Helper()
	var p hostParts
	var prevWait, firstGraph, read time.Time
	for _, m := range marks {
		switch m.What {
		case cuda.MarkGraph:
			if firstGraph.IsZero() {
				firstGraph = m.At
			}
			p.graphs++
		case cuda.MarkRead:
			read = m.At
		case cuda.MarkWaited:
			if !prevWait.IsZero() && !firstGraph.IsZero() && !read.IsZero() {
				p.start += firstGraph.Sub(prevWait)
				p.queue += read.Sub(firstGraph)
				p.wait += m.At.Sub(read)
				p.total += m.At.Sub(prevWait)
				p.steps++
			}
			prevWait, firstGraph, read = m.At, time.Time{}, time.Time{}
		}
	}
	if p.steps == 0 {
		t.Fatalf("no step timed (%d marks)", len(marks))
	}
	for _, d := range []*time.Duration{&p.start, &p.queue, &p.wait, &p.total} {
		*d = (*d / time.Duration(p.steps)).Round(100 * time.Nanosecond)
	}
	return p
}

// TestTinyLlamaDecodePositions measures decode steps of a TinyLlama-shaped
// file at growing positions, 32 steps at a time: the loop's time a token,
// the host's part (splitHostParts) and the last step's graphs replayed
// back to back (its GPU time alone). Attention is the only part of a
// step whose work grows with the position. It runs only with
// LLAMAGO_CUDA_BIG=1 and $LLAMAGO_CUDA_TINYLLAMA, for the performance
// notes (session fifteen).
func TestTinyLlamaDecodePositions(t *testing.T) {
	needGPU(t)
	f := openTinyLlama(t, "LLAMAGO_CUDA_BIG", "set LLAMAGO_CUDA_BIG=1 and LLAMAGO_CUDA_TINYLLAMA to a TinyLlama-shaped file")
	gpu, err := cuda.New(cuda.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gpu.Close()
	const window, windows = 32, 10
	r := loadRun(t, f, gpu, window*windows+8, false)
	ctx := context.Background()
	if _, err := r.sess.Eval(ctx, []int32{1}); err != nil {
		t.Fatal(err)
	}
	for w := range windows {
		var marks []cuda.Mark
		cuda.RecordMarks(gpu, &marks)
		start := time.Now()
		for i := range window {
			// Varying token ids, as llamago bench feeds.
			id := int32(100 + ((w*window+i)*7919)%30000)
			if _, err := r.sess.Eval(ctx, []int32{id}); err != nil {
				t.Fatal(err)
			}
		}
		loop := time.Since(start) / window
		cuda.RecordMarks(gpu, nil)
		gpuStep, graphs, err := cuda.TimeLastStep(gpu, 100)
		if err != nil {
			t.Fatal(err)
		}
		p := splitHostParts(t, marks)
		t.Logf("positions %d–%d: %v a token (loop); its last step's %d graphs replayed back to back %v; the wait's end to the first graph launch %v",
			1+w*window, 1+(w+1)*window, loop.Round(100*time.Nanosecond), graphs, gpuStep.Round(100*time.Nanosecond), p.start)
	}
}

// TestTraceDiffStories260K traces the same tokens on both backends (F32 KV
// caches, 128 positions: the prompt in one batch, then greedy steps) and
// diffs every probe at every position, as "llamago trace" and "llamago
// diff" do. The dumps stay in $LLAMAGO_CUDA_OUT for the CLI.
func TestTraceDiffStories260K(t *testing.T) {
	gpu := needGPU(t)
	path := testenv.Path(t, testenv.Stories260KGGUF)
	dir := outDir(t)
	opts := trace.Options{ModelPath: path, Prompt: storyPrompt, Chat: trace.ChatOff, KVF32: true, Generate: 100}
	cpuDump, gpuDump := filepath.Join(dir, "trace-cpu.safetensors"), filepath.Join(dir, "trace-cuda.safetensors")
	o := opts
	o.DumpPath = cpuDump
	if _, err := trace.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	o = opts
	o.DumpPath = gpuDump
	// The wrapper hands the model the GPU backend instead of the CPU one
	// trace made (trace takes no "cuda" backend name yet).
	o.WrapBackend = func(backend.Backend) backend.Backend { return gpu }
	res, err := trace.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	rep := diffDumps(t, gpuDump, cpuDump)
	worst, worstRow := 0.0, probe.Row{}
	for _, row := range rep.Rows {
		if !(row.RelErr <= worst) {
			worst, worstRow = row.RelErr, row
		}
	}
	counts := rep.Counts()
	t.Logf("diff cuda vs cpu (F32 KV): %d probe rows over %d tokens: %d agree, %d warn, %d diverge, %d missing; largest relative error %.3g (%s at %d); %s",
		len(rep.Rows), res.PromptTokens+opts.Generate, counts[probe.Agree], counts[probe.Warn], counts[probe.Diverge],
		counts[probe.MissingInA]+counts[probe.MissingInB], worst, worstRow.Probe, worstRow.Pos, rep.Verdict())
	if counts[probe.Agree] != len(rep.Rows) || len(rep.Rows) == 0 {
		t.Errorf("not every probe agrees under %g: %v", probe.DefaultAgree, counts)
	}
}

// TestWriteBenchModels is a tool for the device script rather than a
// test: with $LLAMAGO_CUDA_SYNTH_DIR set it writes the TinyLlama-shaped
// synthetic files of $LLAMAGO_CUDA_SYNTH_TYPES (default
// q4_0,q8_0,q4_k_m,f16; seed 1, package synth's cache) and links them as
// tinyllama-TYPE.gguf in that folder, for "llamago bench" and llama.cpp's
// llama-bench on a machine without Go.
func TestWriteBenchModels(t *testing.T) {
	dir := os.Getenv("LLAMAGO_CUDA_SYNTH_DIR")
	if dir == "" {
		t.Skip("set LLAMAGO_CUDA_SYNTH_DIR to write the benchmark models")
	}
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	types := "q4_0,q8_0,q4_k_m,f16"
	if v := os.Getenv("LLAMAGO_CUDA_SYNTH_TYPES"); v != "" {
		types = v
	}
	for _, name := range strings.Split(types, ",") {
		target, err := quantize.ParseTarget(name)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		path, err := synth.Cached(dir, synth.TinyLlama(), target, 1, synth.Options{VocabPath: vocab})
		if err != nil {
			t.Fatal(err)
		}
		link := filepath.Join(dir, "tinyllama-"+name+".gguf")
		os.Remove(link)
		if err := os.Symlink(path, link); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s in %v", link, time.Since(start).Round(time.Second))
	}
}

// diffDumps reads two probe dumps and diffs the first against the second
// (the reference) with the default thresholds.
func diffDumps(t *testing.T, dump, ref string) *probe.Report {
	t.Helper()
	a, err := probe.ReadDump(dump)
	if err != nil {
		t.Fatal(err)
	}
	b, err := probe.ReadDump(ref)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := probe.Diff(a, b, probe.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
