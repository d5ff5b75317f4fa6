package synth

import (
	"math"
	"testing"

	"llamago/chat"
	"llamago/internal/testenv"
	"llamago/llamacpp"
)

// calibrationText is the user message the calibration evaluates.
const calibrationText = "The old lighthouse keeper climbed the spiral stairs every evening, carrying a small lamp and a notebook " +
	"in which he wrote down the colour of the sea, the direction of the wind and the names of the ships that passed."

// logSoftmax returns log(softmax(l)) in float64.
func logSoftmax(l []float32) []float64 {
	m := math.Inf(-1)
	for _, v := range l {
		m = math.Max(m, float64(v))
	}
	var sum float64
	for _, v := range l {
		sum += math.Exp(float64(v) - m)
	}
	lse := m + math.Log(sum)
	out := make([]float64, len(l))
	for i, v := range l {
		out[i] = float64(v) - lse
	}
	return out
}

// TestModelIsNeitherDegenerateNorChaotic loads synthetic files in llama.cpp
// and checks what the scales are for: llama.cpp reads the shape, vocabulary
// and template as written; the output distributions are far from uniform
// and from one-hot; and the F16 and Q8_0 files of the same weights give
// distributions a KL divergence of about 1e-3 apart (0.4 would mean that
// rounding alone decides the output, 1e-6 that the model ignores its
// weights' details).
func TestModelIsNeitherDegenerateNorChaotic(t *testing.T) {
	vocab := vocabPath(t)
	lib, err := llamacpp.Open(testenv.RequireLlamaCpp(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		shape  Shape
		dir    string
		minKLD float64
	}{
		{"small", Small(), t.TempDir(), 1e-4},
		{"tinyllama", TinyLlama(), "", 1e-3}, // the cache the engine's tests share
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "tinyllama" && testing.Short() {
				t.Skip("-short: the TinyLlama shape needs GBs of synthetic files")
			}
			var dists [][][]float64
			for _, target := range []string{"f16", "q8_0"} {
				path, err := Cached(c.dir, c.shape, mustTarget(t, target), 1, Options{VocabPath: vocab})
				if err != nil {
					t.Fatal(err)
				}
				dists = append(dists, llamaCppDistributions(t, lib, path, c.shape))
			}
			var entropy, top1, kld float64
			for i, lp := range dists[0] {
				best := math.Inf(-1)
				for j, v := range lp {
					p := math.Exp(v)
					entropy -= p * v
					best = max(best, v)
					kld += p * (v - dists[1][i][j])
				}
				top1 += math.Exp(best)
			}
			n := float64(len(dists[0]))
			entropy, top1, kld = entropy/n, top1/n, kld/n
			t.Logf("%s: mean entropy %.2f nats (uniform: %.2f), mean top-1 probability %.3f, KL(F16 ‖ Q8_0) %.3g per position",
				c.name, entropy, math.Log(32000), top1, kld)
			if entropy < 1 || entropy > 8 || top1 > 0.9 {
				t.Errorf("the output is degenerate: entropy %.2f nats, top-1 probability %.3f", entropy, top1)
			}
			if kld < c.minKLD || kld > 1e-2 {
				t.Errorf("KL(F16 ‖ Q8_0) = %.3g, want %.0e to 1e-2: the scales no longer give a model two engines can compare", kld, c.minKLD)
			}
		})
	}
}

// llamaCppDistributions checks how llama.cpp reads the file and returns its
// log-probabilities at every position of the calibration prompt.
func llamaCppDistributions(t *testing.T, lib *llamacpp.Lib, path string, shape Shape) [][]float64 {
	t.Helper()
	m, err := lib.LoadModel(path, llamacpp.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.NEmbd() != shape.NEmbd || m.NLayer() != shape.NLayer || m.NHead() != shape.NHead || m.NHeadKV() != shape.NKVHead ||
		m.NCtxTrain() != shape.NCtx || m.NVocab() != 32000 || m.NParams() != uint64(shape.Params(32000)) {
		t.Errorf("llama.cpp reads n_embd %d, n_layer %d, n_head %d, n_head_kv %d, n_ctx_train %d, n_vocab %d, %d parameters; want %+v with 32000 tokens, %d parameters",
			m.NEmbd(), m.NLayer(), m.NHead(), m.NHeadKV(), m.NCtxTrain(), m.NVocab(), m.NParams(), shape, shape.Params(32000))
	}
	if m.ChatTemplate() != chat.TinyLlamaTemplate {
		t.Errorf("llama.cpp reads the chat template %q", m.ChatTemplate())
	}
	text, err := chat.Render(chat.TinyLlamaTemplate, []chat.Message{{Role: "user", Content: calibrationText}},
		chat.Options{AddGenerationPrompt: true, BOSToken: "<s>", EOSToken: "</s>"})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := m.Tokenize(text, true, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := m.NewContext(llamacpp.ContextOptions{NCtx: len(ids), NBatch: len(ids), NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	if err := ctx.Decode(ids, 0, true); err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(ids))
	for i := range ids {
		out[i] = logSoftmax(ctx.Logits(i))
	}
	return out
}
