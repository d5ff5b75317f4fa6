package engine_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"testing"

	"llamago/chat"
	"llamago/engine"
	"llamago/internal/synth"
	"llamago/internal/testenv"
	"llamago/llamacpp"
	"llamago/model"
	"llamago/probe"
	"llamago/quantize"
)

type allSink struct{ m map[string][]float32 }

func (s *allSink) Emit(name string, pos int, _ []int, data []float32) error {
	s.m[probe.DumpKey(name, pos)] = slices.Clone(data)
	return nil
}
func (s *allSink) Close() error { return nil }

func rel(a, b []float32) float64 {
	if a == nil || b == nil {
		return math.NaN()
	}
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(num / den)
}

func TestZZDebug(t *testing.T) {
	tname := os.Getenv("ZZ_TYPE")
	if tname == "" {
		t.Skip()
	}
	shape := synth.Small()
	if os.Getenv("ZZ_BIG") != "" {
		shape = synth.TinyLlama()
	}
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	lib, _ := llamacpp.Open(testenv.RequireLlamaCpp(t))
	target, _ := quantize.ParseTarget(tname)
	path, err := synth.Cached("", shape, target, 1, synth.Options{VocabPath: vocab})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := engine.Load(path, engine.LoadOptions{Threads: 2})
	ids, _, _ := l.ChatPrompt([]chat.Message{{Role: "user", Content: synthPrompt}}, "")
	n := 8
	fmt.Sscan(os.Getenv("ZZ_N"), &n)
	ids = ids[:n]
	kvf32 := os.Getenv("ZZ_KV16") == ""
	ref, _ := lib.LoadModel(path, llamacpp.ModelOptions{})
	refSink := &allSink{m: map[string][]float32{}}
	rctx, err := ref.NewContext(llamacpp.ContextOptions{NCtx: 256, NBatch: 256, NThreads: 2, KVCacheF32: kvf32, Eval: func(et *llamacpp.EvalTensor) {
		p, ok := probe.FromLlamaCpp(et.Name, et.Op)
		if !ok || et.Data == nil {
			return
		}
		probe.SplitLlamaCpp(p, et.Ne, et.Data, probe.SplitOptions{KQScale: float32(1 / math.Sqrt(float64(shape.HeadDim())))}, func(pos int, shape []int, d []float32) error {
			return refSink.Emit(p, pos, shape, d)
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rctx.Decode(ids, 0, true); err != nil {
		t.Fatal(err)
	}
	st, _ := l.Model.NewState(model.StateOptions{MaxBatch: len(ids), Ctx: 256, KVF32: kvf32})
	sess := engine.NewSession(l.Model, st, 0)
	ours := &allSink{m: map[string][]float32{}}
	f, _ := probe.ParseFilter("", "")
	sess.Probes = probe.NewSet(f, ours)
	sess.Eval(context.Background(), ids)
	r := func(name string, pos int) float64 {
		return rel(ours.m[probe.DumpKey(name, pos)], refSink.m[probe.DumpKey(name, pos)])
	}
	for _, pos := range []int{0, n - 1} {
		t.Logf("pos %d embd %.3g", pos, r("embd", pos))
		for _, k := range []string{"attn_norm", "q", "k", "v", "q_rope", "k_rope", "attn_scores", "attn_probs", "attn_out", "attn_proj", "ffn_inp", "ffn_norm", "ffn_gate", "ffn_up", "ffn_act", "ffn_out", "out"} {
			t.Logf("pos %d blk.0.%s %.3g", pos, k, r("blk.0."+k, pos))
		}
		for l := 1; l < shape.NLayer; l++ {
			t.Logf("pos %d blk.%d: q %.3g attn_out %.3g ffn_norm %.3g ffn_gate %.3g ffn_out %.3g out %.3g", pos, l, r(fmt.Sprintf("blk.%d.q", l), pos), r(fmt.Sprintf("blk.%d.attn_out", l), pos),
				r(fmt.Sprintf("blk.%d.ffn_norm", l), pos), r(fmt.Sprintf("blk.%d.ffn_gate", l), pos), r(fmt.Sprintf("blk.%d.ffn_out", l), pos), r(fmt.Sprintf("blk.%d.out", l), pos))
		}
		t.Logf("pos %d output_norm %.3g logits %.3g", pos, r("output_norm", pos), r("logits", pos))
	}
}
