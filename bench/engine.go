package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"llamago/engine"
	"llamago/model"
)

// Engine is what a benchmark drives: one sequence in a KV cache.
type Engine interface {
	// Name says which engine it is in tables ("llamago cpu", "llama.cpp").
	Name() string
	// Reset empties the KV cache, so that the next Eval starts at
	// position 0.
	Reset() error
	// Eval appends ids to the sequence, in batches of the engine's batch
	// size, and computes the logits of the last one.
	Eval(ctx context.Context, ids []int32) error
}

// Test is one kind of measurement, as in llama-bench: a prompt of Prompt
// tokens from an empty cache (pp), or Gen single-token decode steps from an
// empty cache (tg). Exactly one of them is positive.
type Test struct {
	Prompt int
	Gen    int
}

// Name is llama-bench's name of the test: "pp512" or "tg128".
func (t Test) Name() string {
	if t.Prompt > 0 {
		return fmt.Sprintf("pp%d", t.Prompt)
	}
	return fmt.Sprintf("tg%d", t.Gen)
}

// Tokens is the number of tokens a run of the test evaluates.
func (t Test) Tokens() int { return t.Prompt + t.Gen }

func (t Test) check() error {
	if (t.Prompt > 0) == (t.Gen > 0) || t.Prompt < 0 || t.Gen < 0 {
		return fmt.Errorf("bench: a test has either prompt tokens or generated tokens, not %d and %d", t.Prompt, t.Gen)
	}
	return nil
}

// tokens draws the token ids of one run the way llama-bench does: BOS
// first when the vocabulary adds it, then uniformly random ids. Both
// engines of a comparison get the same ids from the same seed.
func tokens(info ModelInfo, n int, rng *rand.Rand) []int32 {
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(rng.IntN(info.NVocab))
	}
	if n > 0 && info.AddBOS {
		ids[0] = info.BOS
	}
	return ids
}

// RunOnce times one run of t on e from an empty cache and returns its
// speed in tokens per second. The ids are drawn before the clock starts.
func RunOnce(ctx context.Context, e Engine, info ModelInfo, t Test, rng *rand.Rand) (float64, error) {
	if err := t.check(); err != nil {
		return 0, err
	}
	if info.NVocab < 1 {
		return 0, fmt.Errorf("bench: model %s has an empty vocabulary", info.Name)
	}
	ids := tokens(info, t.Tokens(), rng)
	if err := e.Reset(); err != nil {
		return 0, fmt.Errorf("bench: %s: reset: %w", e.Name(), err)
	}
	start := time.Now()
	if t.Prompt > 0 {
		if err := e.Eval(ctx, ids); err != nil {
			return 0, fmt.Errorf("bench: %s: %s: %w", e.Name(), t.Name(), err)
		}
	} else {
		for i := range ids {
			if err := e.Eval(ctx, ids[i:i+1]); err != nil {
				return 0, fmt.Errorf("bench: %s: %s step %d: %w", e.Name(), t.Name(), i, err)
			}
		}
	}
	d := time.Since(start)
	if d <= 0 {
		d = time.Nanosecond
	}
	return float64(t.Tokens()) / d.Seconds(), nil
}

// Warmup runs what llama-bench runs before measuring: the whole prompt for
// a pp test, one decode step for a tg test. It pages the weights in and
// lets each engine size its buffers.
func Warmup(ctx context.Context, e Engine, info ModelInfo, t Test, rng *rand.Rand) error {
	if t.Gen > 0 {
		t.Gen = 1
	}
	_, err := RunOnce(ctx, e, info, t, rng)
	return err
}

// Llamago runs a model loaded by package engine as a benchmark Engine.
type Llamago struct {
	name    string
	session *engine.Session
}

// NewLlamago prepares a state for batches of up to batch tokens and a
// context of ctx positions.
func NewLlamago(l *engine.Loaded, backendName string, batch, ctx int) (*Llamago, error) {
	st, err := l.Model.NewState(model.StateOptions{MaxBatch: batch, Ctx: ctx})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if backendName == "" {
		backendName = "cpu"
	}
	return &Llamago{name: "llamago " + backendName, session: engine.NewSession(l.Model, st, 0)}, nil
}

// Name implements Engine.
func (g *Llamago) Name() string { return g.name }

// Reset implements Engine.
func (g *Llamago) Reset() error { g.session.Reset(); return nil }

// Eval implements Engine.
func (g *Llamago) Eval(ctx context.Context, ids []int32) error {
	_, err := g.session.Eval(ctx, ids)
	return err
}
