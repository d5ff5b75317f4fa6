package engine_test

import (
	"context"
	"testing"

	"llamago/engine"
	"llamago/internal/synth"
	"llamago/internal/testenv"
	"llamago/model"
	"llamago/quantize"
	"llamago/sample"
)

// TestDecodeStepAllocatesNothing checks that generating a token (sample
// from the logits, accept the token, evaluate it) allocates nothing once
// the buffers exist: a decode loop that allocates per token feeds the
// garbage collector at every step.
func TestDecodeStepAllocatesNothing(t *testing.T) {
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	greedy := sample.Params{Temperature: 0, TopP: 1}
	chain := sample.DefaultParams() // penalties, top-k, top-p, min-p, temperature
	chain.RepeatPenalty = 1.1
	chain.Seed = 7
	for _, tc := range []struct {
		target  string
		kvF32   bool
		sampler sample.Params
	}{
		{"f32", true, greedy},
		{"f16", false, chain},
		{"q8_0", false, chain},
		{"q4_k_m", false, greedy},
		{"q6_k", false, chain},
	} {
		t.Run(tc.target, func(t *testing.T) {
			target, err := quantize.ParseTarget(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			path, err := synth.Cached("", synth.Small(), target, synthSeed, synth.Options{VocabPath: vocab})
			if err != nil {
				t.Fatal(err)
			}
			l, err := engine.Load(path, engine.LoadOptions{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			st, err := l.Model.NewState(model.StateOptions{MaxBatch: 16, Ctx: 128, KVF32: tc.kvF32})
			if err != nil {
				t.Fatal(err)
			}
			sess := engine.NewSession(l.Model, st, 0)
			sampler, err := sample.New(tc.sampler, l.Model.Config.NVocab)
			if err != nil {
				t.Fatal(err)
			}
			prompt, err := l.TextPrompt("Once upon a time there was a lighthouse")
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			logits, err := sess.Eval(ctx, prompt)
			if err != nil {
				t.Fatal(err)
			}
			next := make([]int32, 1) // the one-token batch, reused
			var stepErr error
			step := func() {
				id, err := sampler.Sample(logits)
				if err != nil {
					stepErr = err
					return
				}
				sampler.Accept(id)
				next[0] = id
				if logits, err = sess.Eval(ctx, next); err != nil {
					stepErr = err
				}
			}
			// AllocsPerRun warms up with one call of its own, then averages.
			allocs := testing.AllocsPerRun(20, step)
			if stepErr != nil {
				t.Fatal(stepErr)
			}
			if allocs != 0 {
				t.Errorf("one decode step (Sample, Accept, Eval of one token) allocates %v times; want 0", allocs)
			}
			if !sampler.Greedy() {
				return
			}
			// Generate's greedy path: EvalBest and SampleBest.
			best, err := sess.EvalBest(ctx, next)
			if err != nil {
				t.Fatal(err)
			}
			greedyStep := func() {
				id, err := sampler.SampleBest(best)
				if err != nil {
					stepErr = err
					return
				}
				next[0] = id
				if best, err = sess.EvalBest(ctx, next); err != nil {
					stepErr = err
				}
			}
			allocs = testing.AllocsPerRun(20, greedyStep)
			if stepErr != nil {
				t.Fatal(stepErr)
			}
			if allocs != 0 {
				t.Errorf("one greedy decode step (SampleBest, EvalBest of one token) allocates %v times; want 0", allocs)
			}
		})
	}
}
