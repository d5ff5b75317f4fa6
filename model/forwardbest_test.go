package model_test

import (
	"math"
	"testing"

	"llamago/backend"
	"llamago/backend/cpu"
	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/model"
	"llamago/probe"
)

// argMaxer is the CPU backend with a backend.ArgMaxer whose rows it finds
// with a plain loop of its own (not backend.FindPick), counting its calls.
type argMaxer struct {
	*cpu.Backend
	calls int
}

func (a *argMaxer) ArgMax(m backend.Mat, dst []backend.Pick) {
	a.calls++
	all := make([]float32, m.Rows()*m.Cols())
	a.Read(m, all)
	for r := range dst {
		row := all[r*m.Cols() : (r+1)*m.Cols()]
		b := backend.Pick{ID: -1, Bad: -1}
		for i, v := range row {
			switch {
			case math.IsNaN(float64(v)) || math.IsInf(float64(v), 1):
				if b.Bad < 0 {
					b.Bad, b.BadLogit = int32(i), v
				}
			case math.IsInf(float64(v), -1):
			case b.ID < 0 || v > row[b.ID]:
				b.ID = int32(i)
			}
		}
		dst[r] = b
	}
}

type nullSink struct{}

func (nullSink) Emit(string, int, []int, []float32) error { return nil }
func (nullSink) Close() error                             { return nil }

// TestForwardBest checks ForwardBest against backend.FindPick of Forward's
// logits for several output rows, on the CPU backend (which reads the
// logits) and on an ArgMaxer (asked only without probes), and its refusal
// of a result slice of the wrong length.
func TestForwardBest(t *testing.T) {
	f, err := gguf.Open(testenv.Path(t, testenv.Stories260KGGUF))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	plain := cpu.New(cpu.Options{Threads: 1})
	defer plain.Close()
	am := &argMaxer{Backend: cpu.New(cpu.Options{Threads: 1})}
	defer am.Close()
	tokens := []int32{1, 400, 317, 290, 271, 385, 402}
	in := func() model.Input {
		pos := make([]int32, len(tokens))
		for i := range pos {
			pos[i] = int32(i)
		}
		return model.Input{Tokens: tokens, Batch: backend.Batch{Slot: make([]int32, len(tokens)), Pos: pos}, Outputs: []int32{0, 3, 6, 2}}
	}
	ref, err := model.Load(f, plain)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ref.NewState(model.StateOptions{MaxBatch: 8, Ctx: 16})
	if err != nil {
		t.Fatal(err)
	}
	logits, err := ref.Forward(st, in(), nil)
	if err != nil {
		t.Fatal(err)
	}
	nv := ref.Config.NVocab
	var want []backend.Pick
	for i := range in().Outputs {
		want = append(want, backend.FindPick(logits[i*nv:(i+1)*nv]))
	}
	distinct := map[int32]bool{}
	for _, w := range want {
		distinct[w.ID] = true
	}
	if len(distinct) < 2 {
		t.Fatalf("the output rows all pick %v: a weak test of row order", want)
	}

	filter, err := probe.ParseFilter("logits", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		be        backend.Backend
		probes    *probe.Set
		wantCalls int
	}{
		{"cpu", plain, nil, 0},
		{"argmaxer", am, nil, 1},
		{"argmaxer with probes", am, probe.NewSet(filter, nullSink{}), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := model.Load(f, tc.be)
			if err != nil {
				t.Fatal(err)
			}
			st, err := m.NewState(model.StateOptions{MaxBatch: 8, Ctx: 16})
			if err != nil {
				t.Fatal(err)
			}
			am.calls = 0
			got := make([]backend.Pick, len(want))
			if err := m.ForwardBest(st, in(), tc.probes, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("output %d: %+v, want %+v", i, got[i], want[i])
				}
			}
			if am.calls != tc.wantCalls {
				t.Errorf("%d ArgMax calls, want %d", am.calls, tc.wantCalls)
			}
			if err := m.ForwardBest(st, in(), nil, got[:1]); err == nil {
				t.Error("1 result for 4 output rows: no error")
			}
		})
	}
}
