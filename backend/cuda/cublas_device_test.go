package cuda_test

// GPU tests of the cuBLAS path for F16 prefill products (cublas.go); they
// run only with LLAMAGO_CUDA=1. Where the machine must have cuBLAS,
// LLAMAGO_CUDA_REQUIRE_CUBLAS=1 turns "no cuBLAS loaded" from a skip into
// a failure.

import (
	"fmt"
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
	"llamago/model"
	"llamago/quantize"
	"llamago/tensor"
)

// needCUBLAS skips (or, with LLAMAGO_CUDA_REQUIRE_CUBLAS=1, fails) unless
// b computes F16 prefill products with cuBLAS.
func needCUBLAS(t *testing.T, b *cuda.Backend) {
	t.Helper()
	if b.CUBLAS() == "" {
		if os.Getenv("LLAMAGO_CUDA_REQUIRE_CUBLAS") == "1" {
			t.Fatalf("LLAMAGO_CUDA_REQUIRE_CUBLAS=1 but cuBLAS is %s", b.CUBLASStatus())
		}
		t.Skipf("cuBLAS is %s", b.CUBLASStatus())
	}
	t.Logf("cuBLAS: %s", b.CUBLASStatus())
}

// newNoCUBLAS is a GPU backend that keeps F16 products on mmh_f16.
func newNoCUBLAS(t *testing.T) *cuda.Backend {
	t.Helper()
	b, err := cuda.New(cuda.Options{NoCUBLAS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// TestCUBLASSwitches checks that the ways of turning cuBLAS off leave a
// backend without it, and say why.
func TestCUBLASSwitches(t *testing.T) {
	needGPU(t)
	for _, tc := range []struct {
		name string
		opts cuda.Options
		env  string
		want string // in CUBLASStatus
	}{
		{"Options.NoCUBLAS", cuda.Options{NoCUBLAS: true}, "", "NoCUBLAS"},
		{"LLAMAGO_CUDA_CUBLAS=0", cuda.Options{}, "0", "LLAMAGO_CUDA_CUBLAS=0"},
		{"CPU-order mode", cuda.Options{CPUOrder: true}, "", "CPU-order"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("LLAMAGO_CUDA_CUBLAS", tc.env)
			}
			b, err := cuda.New(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.CUBLAS() != "" || !strings.Contains(b.CUBLASStatus(), tc.want) {
				t.Errorf("CUBLAS() = %q, CUBLASStatus() = %q; want none, saying %q", b.CUBLAS(), b.CUBLASStatus(), tc.want)
			}
		})
	}
}

// TestCUBLASMatMulMatchesCPU runs F16 products at TinyLlama's shapes
// through cuBLAS and checks them against the CPU backend and against the
// same product on mmh_f16 (a backend with NoCUBLAS), with the F16 MatMul
// test's tolerance; below cublasMinTokens the product must stay on
// mmh_f16 and above it go to cuBLAS.
func TestCUBLASMatMulMatchesCPU(t *testing.T) {
	p := newPair(t)
	needCUBLAS(t, p.gpu)
	own := newNoCUBLAS(t)
	r := rand.New(rand.NewPCG(71, 72))
	const tol = 2e-5 // TestMatMulAndGetRowsMatchCPU's
	for _, shape := range []struct{ rows, cols int }{{2048, 2048}, {5632, 2048}} {
		spec := backend.WeightSpec{Name: "w.f16", Type: tensor.F16, Rows: shape.rows, Cols: shape.cols,
			Data: quantized(t, r, tensor.F16, shape.rows, shape.cols)}
		wg, wc := p.weights(t, spec)
		wo, err := own.LoadWeight(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, ntok := range []int{cuda.CUBLASMinTokens - 1, cuda.CUBLASMinTokens, 64, 512} {
			t.Run(fmt.Sprintf("%d×%d/%d", shape.rows, shape.cols, ntok), func(t *testing.T) {
				xv := randFloats(r, ntok*shape.cols, 1)
				xg, xc := p.mats(ntok, shape.cols, xv)
				yg, yc := p.poisoned(ntok, shape.rows)
				before := cuda.CUBLASGemms(p.gpu)
				p.gpu.MatMul(yg, xg, wg)
				p.cpu.MatMul(yc, xc, wc)
				rel := p.compare(t, "MatMul (cuBLAS) against the CPU", yg, yc, tol)

				xo := own.NewMat(ntok, shape.cols)
				own.Write(xo, xv)
				yo := own.NewMat(ntok, shape.rows)
				own.MatMul(yo, xo, wo)
				got, mine := make([]float32, ntok*shape.rows), make([]float32, ntok*shape.rows)
				p.gpu.Read(yg, got)
				own.Read(yo, mine)
				relOwn := testenv.RelErr(got, mine)
				if !(relOwn <= tol) {
					t.Errorf("against mmh_f16: relative error %.3g (tolerance %g)", relOwn, tol)
				}
				gemms := cuda.CUBLASGemms(p.gpu) - before
				wantGemms := 0
				if ntok >= cuda.CUBLASMinTokens {
					wantGemms = 1
				}
				if gemms != wantGemms {
					t.Errorf("%d tokens: %d cuBLAS GEMMs, want %d", ntok, gemms, wantGemms)
				}
				if cuda.CUBLASGemms(own) != 0 {
					t.Errorf("the NoCUBLAS backend sent %d GEMMs to cuBLAS", cuda.CUBLASGemms(own))
				}
				t.Logf("relative error against the CPU %.3g, against mmh_f16 %.3g", rel, relOwn)
			})
		}
	}
}

// TestCUBLASSharedInputAndQueue checks the queue around a cuBLAS product:
// an RMSNorm whose output rounding is fused into it (queued, then sent by
// the product's flush), three products of one input (q, k, v: the
// rounding done once and reused by the second and third), and an Add
// queued after that reads the GEMM's output, against the CPU.
func TestCUBLASSharedInputAndQueue(t *testing.T) {
	p := newPair(t)
	needCUBLAS(t, p.gpu)
	r := rand.New(rand.NewPCG(73, 74))
	const ntok, dim = 64, 512
	f16 := tensor.F16
	var ws [3][2]backend.Weight
	for i := range ws {
		spec := backend.WeightSpec{Name: fmt.Sprintf("w%d", i), Type: f16, Rows: dim, Cols: dim, Data: quantized(t, r, f16, dim, dim)}
		ws[i][0], ws[i][1] = p.weights(t, spec)
	}
	norm := backend.WeightSpec{Name: "norm", Type: tensor.F32, Rows: 1, Cols: dim, Data: quantized(t, r, tensor.F32, 1, dim)}
	ng, nc := p.weights(t, norm)
	xg, xc := p.mats(ntok, dim, randFloats(r, ntok*dim, 1))
	hg, hc := p.poisoned(ntok, dim)
	var outs [3][2]backend.Mat
	before := cuda.CUBLASGemms(p.gpu)
	p.gpu.RMSNorm(hg, xg, ng, 1e-5)
	p.cpu.RMSNorm(hc, xc, nc, 1e-5)
	for i := range outs {
		outs[i][0], outs[i][1] = p.poisoned(ntok, dim)
		p.gpu.MatMul(outs[i][0], hg, ws[i][0])
		p.cpu.MatMul(outs[i][1], hc, ws[i][1])
	}
	sg, sc := p.poisoned(ntok, dim)
	p.gpu.Add(sg, outs[0][0], outs[2][0])
	p.cpu.Add(sc, outs[0][1], outs[2][1])
	if n := cuda.CUBLASGemms(p.gpu) - before; n != 3 {
		t.Errorf("%d cuBLAS GEMMs, want 3", n)
	}
	for i := range outs {
		p.compare(t, fmt.Sprintf("product %d", i), outs[i][0], outs[i][1], 2e-5)
	}
	p.compare(t, "Add of products 0 and 2", sg, sc, 2e-5)
}

// TestCUBLASSyntheticF16MatchesCPU prefills the synthetic F16 model with a
// prompt of over 64 tokens in one batch (its products on cuBLAS) and
// checks the greedy continuation against the CPU as
// TestSyntheticQuantizedMatchesCPU does (ids equal, logits within
// tolRounded), against an eager backend bit for bit (both on cuBLAS), and
// against a backend on mmh_f16 (ids equal, logits within tolRounded).
func TestCUBLASSyntheticF16MatchesCPU(t *testing.T) {
	gpu := needGPU(t)
	needCUBLAS(t, gpu)
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	target, err := quantize.ParseTarget("f16")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "f16.gguf")
	if err := synth.Write(path, synth.Small(), target, 1, synth.Options{VocabPath: vocab}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	prompt := make([]int32, 80)
	for i := range prompt {
		prompt[i] = int32(1000 + 211*i%30000)
	}
	const steps = 16
	ctx := len(prompt) + steps + 1
	load := func(be backend.Backend) run { return loadRunBatch(t, f, be, ctx, len(prompt)) }

	before := cuda.CUBLASGemms(gpu)
	got := greedy(t, load(gpu), prompt, steps)
	if cuda.CUBLASGemms(gpu) == before {
		t.Fatal("the prefill sent no product to cuBLAS")
	}
	cb := cpu.New(cpu.Options{Threads: engine.DefaultThreads()})
	defer cb.Close()
	want := greedy(t, load(cb), prompt, steps)
	own := greedy(t, load(newNoCUBLAS(t)), prompt, steps)
	for _, ref := range []struct {
		name string
		res  greedyResult
	}{{"the CPU", want}, {"mmh_f16", own}} {
		if !slices.Equal(got.ids, ref.res.ids) {
			t.Errorf("greedy ids: cuBLAS %v, %s %v", got.ids, ref.name, ref.res.ids)
		}
		worst := 0.0
		for i := range ref.res.logits {
			worst = max(worst, testenv.RelErr(got.logits[i], ref.res.logits[i]))
		}
		if !(worst <= tolRounded) {
			t.Errorf("logits against %s: relative error %.3g, tolerance %g", ref.name, worst, tolRounded)
		}
		t.Logf("against %s: ids equal %v, largest logits relative error %.3g", ref.name, slices.Equal(got.ids, ref.res.ids), worst)
	}
	// Queuing, fusions and graphs change where launches go, not what they
	// compute: an eager backend (also on cuBLAS) gives the same logits bit
	// for bit when its batches are the same.
	eager := eagerBackend(t)
	plain := greedy(t, load(eager), prompt, steps)
	if cuda.CUBLASGemms(eager) == 0 {
		t.Error("the eager backend sent no product to cuBLAS")
	}
	for i := range plain.logits {
		if !slices.Equal(got.logits[i], plain.logits[i]) {
			t.Errorf("step %d: logits differ from the eager backend's (largest relative error %.3g)", i, testenv.RelErr(got.logits[i], plain.logits[i]))
			break
		}
	}
}

// loadRunBatch is loadRun with batches of up to maxBatch tokens and an
// F32 cache (as TestSyntheticQuantizedMatchesCPU's comparisons).
func loadRunBatch(t *testing.T, f *gguf.File, be backend.Backend, ctx, maxBatch int) run {
	t.Helper()
	m, err := model.Load(f, be)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.NewState(model.StateOptions{MaxBatch: maxBatch, Ctx: ctx, KVF32: true})
	if err != nil {
		t.Fatal(err)
	}
	return run{m: m, sess: engine.NewSession(m, st, 0)}
}
