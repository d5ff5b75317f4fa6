package engine_test

import (
	"context"
	"math"
	"slices"
	"testing"

	"llamago/backend"
	"llamago/backend/cpu"
	"llamago/engine"
	"llamago/internal/testenv"
	"llamago/model"
	"llamago/probe"
	"llamago/sample"
)

// argMaxCPU is the CPU backend with a backend.ArgMaxer of its own, as a
// GPU backend has: it finds the greedy pick with its own loop (not
// backend.FindPick) and counts its calls and the logits rows read whole,
// so that the tests see which path the engine took.
type argMaxCPU struct {
	*cpu.Backend
	nVocab      int
	argMaxCalls int
	logitReads  int
}

func (f *argMaxCPU) Read(m backend.Mat, dst []float32) {
	if m.Cols() == f.nVocab {
		f.logitReads++
	}
	f.Backend.Read(m, dst)
}

func (f *argMaxCPU) ArgMax(m backend.Mat, dst []backend.Pick) {
	f.argMaxCalls++
	row := make([]float32, m.Cols())
	all := make([]float32, m.Rows()*m.Cols())
	f.Backend.Read(m, all)
	for r := range dst {
		copy(row, all[r*m.Cols():])
		b := backend.Pick{ID: -1, Bad: -1}
		for i, v := range row {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 1) {
				if b.Bad < 0 {
					b.Bad, b.BadLogit = int32(i), v
				}
			} else if !math.IsInf(float64(v), -1) && (b.ID < 0 || v > row[b.ID]) {
				b.ID = int32(i)
			}
		}
		dst[r] = b
	}
}

// countSink counts emitted probes.
type countSink struct{ n int }

func (c *countSink) Emit(string, int, []int, []float32) error { c.n++; return nil }
func (c *countSink) Close() error                             { return nil }

// TestGreedyGenerateThroughArgMax checks that Generate takes the argmax
// path exactly when sampling is greedy without penalties and no probes are
// set, and that its ids equal those of sampling from the logits: on the
// CPU backend (ForwardBest's fallback), on a backend.ArgMaxer, and against
// a loop of Eval and Sample. A batch of 4 splits the prompt into chunks.
func TestGreedyGenerateThroughArgMax(t *testing.T) {
	l, err := engine.Load(testenv.Path(t, testenv.Stories260KGGUF), engine.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	nv := l.Model.Config.NVocab
	fake := &argMaxCPU{Backend: cpu.New(cpu.Options{Threads: 1}), nVocab: nv}
	defer fake.Close()
	fm, err := model.Load(l.File, fake)
	if err != nil {
		t.Fatal(err)
	}
	prompt, err := l.TextPrompt("Once upon a time, there was a little girl")
	if err != nil {
		t.Fatal(err)
	}
	const steps = 48
	ctx := context.Background()
	newSession := func(m *model.Model) *engine.Session {
		st, err := m.NewState(model.StateOptions{MaxBatch: 4, Ctx: 256})
		if err != nil {
			t.Fatal(err)
		}
		return engine.NewSession(m, st, 0)
	}
	newSampler := func(p sample.Params) *sample.Sampler {
		s, err := sample.New(p, nv)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	generate := func(m *model.Model, p sample.Params, probes *probe.Set) []int32 {
		s := newSession(m)
		s.Probes = probes
		res, err := s.Generate(ctx, prompt, engine.GenerateOptions{MaxTokens: steps, Sampler: newSampler(p), Tokenizer: l.Tokenizer})
		if err != nil {
			t.Fatal(err)
		}
		return res.GeneratedIDs
	}
	// The reference: Eval and Sample by hand, the logits read every step.
	reference := func(p sample.Params) []int32 {
		s, smp := newSession(l.Model), newSampler(p)
		for _, id := range prompt {
			smp.Accept(id)
		}
		logits, err := s.Eval(ctx, prompt)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int32
		for len(ids) < steps {
			id, err := smp.Sample(logits)
			if err != nil {
				t.Fatal(err)
			}
			smp.Accept(id)
			if l.Tokenizer.IsEOG(id) {
				break
			}
			ids = append(ids, id)
			if len(ids) == steps {
				break
			}
			if logits, err = s.Eval(ctx, []int32{id}); err != nil {
				t.Fatal(err)
			}
		}
		return ids
	}

	greedy := sample.Params{TopP: 1, RepeatPenalty: 1}
	penalized := sample.Params{TopP: 1, RepeatPenalty: 1.3, RepeatLastN: 16}
	for _, tc := range []struct {
		name      string
		p         sample.Params
		probes    bool
		wantFast  bool
		wantProbe bool
	}{
		{"greedy", greedy, false, true, false},
		{"greedy with probes", greedy, true, false, true},
		{"greedy with penalties", penalized, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := reference(tc.p)
			var sink countSink
			var probes *probe.Set
			if tc.probes {
				filter, err := probe.ParseFilter("logits", "")
				if err != nil {
					t.Fatal(err)
				}
				probes = probe.NewSet(filter, &sink)
			}
			onCPU := generate(l.Model, tc.p, probes)
			fake.argMaxCalls, fake.logitReads = 0, 0
			onFake := generate(fm, tc.p, probes)
			t.Logf("%d ids; reference %v", len(want), want[:min(8, len(want))])
			if len(want) < 8 {
				t.Fatalf("only %d tokens generated: too few to compare", len(want))
			}
			if !slices.Equal(onCPU, want) {
				t.Errorf("Generate on the CPU backend: ids %v, want %v", onCPU, want)
			}
			if !slices.Equal(onFake, want) {
				t.Errorf("Generate on the ArgMaxer backend: ids %v, want %v", onFake, want)
			}
			// One argmax per evaluation: the prompt, then every generated
			// token but the last.
			if tc.wantFast && (fake.argMaxCalls != len(onFake) || fake.logitReads != 0) {
				t.Errorf("argmax path: %d ArgMax calls and %d logits reads, want %d and 0", fake.argMaxCalls, fake.logitReads, len(onFake))
			}
			if !tc.wantFast && (fake.argMaxCalls != 0 || fake.logitReads == 0) {
				t.Errorf("logits path: %d ArgMax calls and %d logits reads, want 0 and some", fake.argMaxCalls, fake.logitReads)
			}
			if tc.wantProbe != (sink.n > 0) {
				t.Errorf("%d probes emitted", sink.n)
			}
		})
	}
}

// TestEvalBestMatchesEval checks EvalBest against FindPick of Eval's logits,
// on the CPU backend and on the ArgMaxer, for prompts of several chunks.
func TestEvalBestMatchesEval(t *testing.T) {
	l, err := engine.Load(testenv.Path(t, testenv.Stories260KGGUF), engine.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fake := &argMaxCPU{Backend: cpu.New(cpu.Options{Threads: 1}), nVocab: l.Model.Config.NVocab}
	defer fake.Close()
	fm, err := model.Load(l.File, fake)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, text := range []string{"Hi", "Once upon a time", "The little dog ran to the park and saw a big red ball"} {
		prompt, err := l.TextPrompt(text)
		if err != nil {
			t.Fatal(err)
		}
		var got []backend.Pick
		for _, m := range []*model.Model{l.Model, fm} {
			st, err := m.NewState(model.StateOptions{MaxBatch: 3, Ctx: 64})
			if err != nil {
				t.Fatal(err)
			}
			b, err := engine.NewSession(m, st, 0).EvalBest(ctx, prompt)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, b)
		}
		st, err := l.Model.NewState(model.StateOptions{MaxBatch: 3, Ctx: 64})
		if err != nil {
			t.Fatal(err)
		}
		logits, err := engine.NewSession(l.Model, st, 0).Eval(ctx, prompt)
		if err != nil {
			t.Fatal(err)
		}
		want := backend.FindPick(logits)
		if want.ID < 0 || got[0] != want || got[1] != want {
			t.Errorf("%q: EvalBest on the CPU %+v, on the ArgMaxer %+v; FindPick of Eval's logits %+v", text, got[0], got[1], want)
		}
	}
}
