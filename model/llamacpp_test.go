package model_test

import (
	"context"
	"os"
	"testing"

	"llamago/backend/cpu"
	"llamago/engine"
	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/llamacpp"
	"llamago/model"
)

// TestStories260KMatchesLlamaCpp generates greedily from BOS for 200
// tokens with llamago and llama.cpp on the same file and requires the same
// ids and, at every position, logits within relative error 1e-4.
func TestStories260KMatchesLlamaCpp(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	lib, err := llamacpp.Open(testenv.RequireLlamaCpp(t))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := lib.LoadModel(path, llamacpp.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	rctx, err := ref.NewContext(llamacpp.ContextOptions{NCtx: 256, NBatch: 256, NThreads: 2, KVCacheF32: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rctx.Close()

	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be := cpu.New(cpu.Options{Threads: 2})
	defer be.Close()
	m, err := model.Load(f, be)
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.NewState(model.StateOptions{MaxBatch: 64, Ctx: 256, KVF32: true})
	if err != nil {
		t.Fatal(err)
	}
	sess := engine.NewSession(m, st, 0)

	const steps = 200
	tok := int32(ref.BOS())
	var worst float64
	for i := 0; i < steps; i++ {
		if err := rctx.Decode([]int32{tok}, int32(i), false); err != nil {
			t.Fatal(err)
		}
		want := rctx.Logits(-1)
		got, err := sess.Eval(context.Background(), []int32{tok})
		if err != nil {
			t.Fatal(err)
		}
		re := testenv.RelErr(got, want)
		worst = max(worst, re)
		if os.Getenv("LLAMAGO_LOGERR") != "" {
			t.Logf("pos %d rel %.3g", i, re)
		}
		if re > 1e-4 {
			t.Fatalf("position %d: logits relative error %.3g > 1e-4", i, re)
		}
		g, w := testenv.Argmax(got), testenv.Argmax(want)
		if g != w {
			t.Fatalf("position %d: greedy token %d, llama.cpp %d", i, g, w)
		}
		tok = w
	}
	t.Logf("%d positions: same greedy ids, worst logits relative error %.3g", steps, worst)
}
