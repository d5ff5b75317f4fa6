package engine_test

import (
	"context"
	"testing"

	"llamago/engine"
	"llamago/internal/testenv"
	"llamago/model"
	"llamago/probe"
)

// BenchmarkDecodeStories260K times one decode step (one token through the
// model, logits out) of the 260K-parameter story model: with no probe set,
// and with a probe set whose filter selects nothing, which shows what the
// probe points cost when nothing is recorded.
func BenchmarkDecodeStories260K(b *testing.B) {
	l, err := engine.Load(testenv.Path(b, testenv.Stories260KGGUF), engine.LoadOptions{Threads: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	none, err := probe.ParseFilter("no.such.probe", "")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		probes *probe.Set
	}{
		{"probes=nil", nil},
		{"probes=unselected", probe.NewSet(none)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			st, err := l.Model.NewState(model.StateOptions{MaxBatch: 1, Ctx: 256})
			if err != nil {
				b.Fatal(err)
			}
			sess := engine.NewSession(l.Model, st, 0)
			sess.Probes = bc.probes
			ctx := context.Background()
			for b.Loop() {
				if sess.Len() == sess.Ctx() {
					sess.Reset()
				}
				if _, err := sess.Eval(ctx, []int32{1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
