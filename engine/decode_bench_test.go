package engine_test

import (
	"context"
	"testing"

	"llamago/engine"
	"llamago/internal/testenv"
	"llamago/model"
)

// BenchmarkDecodeStories260K times one decode step (one token through the
// model, logits out) of the 260K-parameter story model.
func BenchmarkDecodeStories260K(b *testing.B) {
	l, err := engine.Load(testenv.Path(b, testenv.Stories260KGGUF), engine.LoadOptions{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	st, err := l.Model.NewState(model.StateOptions{MaxBatch: 1, Ctx: 512})
	if err != nil {
		b.Fatal(err)
	}
	sess := engine.NewSession(l.Model, st, 0)
	ctx := context.Background()
	for b.Loop() {
		if sess.Len() == sess.Ctx() {
			sess.Reset()
		}
		if _, err := sess.Eval(ctx, []int32{1}); err != nil {
			b.Fatal(err)
		}
	}
}
