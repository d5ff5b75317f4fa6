package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"llamago/internal/testenv"
	"llamago/model"
	"llamago/sample"
)

// TestBatchedLogitsEqualSingle runs 8 sequences at different positions in
// one forward pass and each alone in a state of its own: the logits must
// be bit-identical, which is what makes batched greedy answers equal.
func TestBatchedLogitsEqualSingle(t *testing.T) {
	l := loadModel(t)
	const seqs = 8
	nv := l.Model.Config.NVocab
	prompts := make([][]int32, seqs)
	for i := range prompts {
		ids, err := l.TextPrompt(testPrompts[i])
		if err != nil {
			t.Fatal(err)
		}
		prompts[i] = ids
	}
	// Batched: prefill every prompt in one pass, then 4 decode steps of
	// one row each, all sequences together.
	st, err := l.Model.NewState(model.StateOptions{MaxBatch: 256, Ctx: 64, Slots: seqs})
	if err != nil {
		t.Fatal(err)
	}
	var in model.Input
	for s, p := range prompts {
		for i, id := range p {
			in.Tokens = append(in.Tokens, id)
			in.Batch.Slot = append(in.Batch.Slot, int32(s))
			in.Batch.Pos = append(in.Batch.Pos, int32(i))
		}
		in.Outputs = append(in.Outputs, int32(len(in.Tokens)-1))
	}
	batched := make([][]float32, seqs)
	out, err := l.Model.Forward(st, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int32, seqs)
	for s := range seqs {
		batched[s] = append(batched[s], out[s*nv:(s+1)*nv]...)
		next[s] = testenv.Argmax(out[s*nv : (s+1)*nv])
	}
	for step := range 4 {
		in = model.Input{}
		for s := range seqs {
			in.Tokens = append(in.Tokens, next[s])
			in.Batch.Slot = append(in.Batch.Slot, int32(s))
			in.Batch.Pos = append(in.Batch.Pos, int32(len(prompts[s])+step))
			in.Outputs = append(in.Outputs, int32(s))
		}
		if out, err = l.Model.Forward(st, in, nil); err != nil {
			t.Fatal(err)
		}
		for s := range seqs {
			batched[s] = append(batched[s], out[s*nv:(s+1)*nv]...)
			next[s] = testenv.Argmax(out[s*nv : (s+1)*nv])
		}
	}
	// Alone.
	for s, p := range prompts {
		st1, err := l.Model.NewState(model.StateOptions{MaxBatch: 64, Ctx: 64})
		if err != nil {
			t.Fatal(err)
		}
		var single []float32
		tok := p
		pos := 0
		for range 5 {
			in := model.Input{Tokens: tok, Outputs: []int32{int32(len(tok) - 1)}}
			for i := range tok {
				in.Batch.Slot = append(in.Batch.Slot, 0)
				in.Batch.Pos = append(in.Batch.Pos, int32(pos+i))
			}
			out, err := l.Model.Forward(st1, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			single = append(single, out...)
			pos += len(tok)
			tok = []int32{testenv.Argmax(out)}
		}
		for i := range single {
			if single[i] != batched[s][i] {
				t.Fatalf("sequence %d: logit %d of step %d is %v batched, %v alone", s, i%nv, i/nv, batched[s][i], single[i])
			}
		}
	}
}

// BenchmarkScheduler measures generated tokens per second of the
// scheduler alone (no HTTP), 32 requests of 64 greedy tokens.
func BenchmarkScheduler(b *testing.B) {
	l := loadModel(b)
	for _, parallel := range []int{1, 8} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			s, err := New(Config{Loaded: l, Parallel: parallel, Ctx: 512})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Shutdown(context.Background())
			tokens := 0
			start := time.Now()
			for b.Loop() {
				jobs := make([]*job, 32)
				for i := range jobs {
					ids, _ := l.TextPrompt(testPrompts[i%len(testPrompts)])
					p := sample.DefaultParams()
					p.Temperature = 0
					smp, _ := sample.New(p, l.Model.Config.NVocab)
					jobs[i] = newJob(context.Background(), ids, smp, 64, nil, l.Tokenizer)
					if !s.sched.submit(jobs[i]) {
						b.Fatal("queue full")
					}
				}
				for _, j := range jobs {
					for {
						<-j.notify
						if _, done, _, _ := j.take(); done {
							break
						}
					}
					tokens += len(j.generated)
				}
			}
			b.ReportMetric(float64(tokens)/time.Since(start).Seconds(), "tokens/s")
		})
	}
}
