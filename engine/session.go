// Package engine runs generation on top of a model: sessions with their
// slot of the KV cache, prefill in batches, one-token decode steps, stop
// conditions, and the batching of many sequences in one forward pass.
package engine

import (
	"context"
	"errors"
	"fmt"

	"llamago/backend"
	"llamago/model"
	"llamago/probe"
)

// ErrContextFull is wrapped by errors about sequences that would run past
// the context.
var ErrContextFull = errors.New("context is full")

// Session is one sequence: its tokens so far and its slot of a State's KV
// cache. It is not safe for concurrent use.
type Session struct {
	m      *model.Model
	st     *model.State
	slot   int32
	tokens []int32 // every token in the cache, in order

	// Reused batch buffers, so that decoding allocates nothing.
	ids, pos, slots, outputs []int32
	best                     [1]backend.Pick // EvalBest's result
	// Probes, when set, observe every forward pass of the session.
	Probes *probe.Set
}

// NewSession returns an empty session using slot of st's cache.
func NewSession(m *model.Model, st *model.State, slot int) *Session {
	n := st.MaxBatch()
	return &Session{
		m: m, st: st, slot: int32(slot),
		tokens:  make([]int32, 0, st.Ctx()),
		ids:     make([]int32, 0, n),
		pos:     make([]int32, 0, n),
		slots:   make([]int32, 0, n),
		outputs: make([]int32, 0, 1),
	}
}

// Model is the session's model.
func (s *Session) Model() *model.Model { return s.m }

// Tokens are the tokens in the session's cache.
func (s *Session) Tokens() []int32 { return s.tokens }

// Len is the number of positions used.
func (s *Session) Len() int { return len(s.tokens) }

// Ctx is the number of positions the session may hold.
func (s *Session) Ctx() int { return s.st.Ctx() }

// Reset empties the session. The cache needs no clearing: attention only
// reads positions the session has written.
func (s *Session) Reset() { s.tokens = s.tokens[:0] }

// Truncate drops the positions from n on.
func (s *Session) Truncate(n int) {
	if n < len(s.tokens) {
		s.tokens = s.tokens[:n]
	}
}

// Eval appends ids to the session, running them through the model in
// batches of at most the state's batch size, and returns the logits after
// the last one (owned by the state, overwritten by the next call).
func (s *Session) Eval(ctx context.Context, ids []int32) ([]float32, error) {
	var logits []float32
	err := s.eval(ctx, ids, func(in model.Input) error {
		out, err := s.m.Forward(s.st, in, s.Probes)
		logits = out
		return err
	})
	if err != nil {
		return nil, err
	}
	return logits, nil
}

// EvalBest is Eval returning, instead of the last token's logits,
// backend.FindPick of them: all that greedy sampling without penalties
// needs. On a backend that finds it where the logits are
// (backend.ArgMaxer) only that crosses to the host, unless probes are set.
func (s *Session) EvalBest(ctx context.Context, ids []int32) (backend.Pick, error) {
	err := s.eval(ctx, ids, func(in model.Input) error {
		return s.m.ForwardBest(s.st, in, s.Probes, s.best[:])
	})
	if err != nil {
		return backend.Pick{}, err
	}
	return s.best[0], nil
}

// eval appends ids to the session in batches of at most the state's batch
// size, running all but the last through Forward (no outputs) and the
// last, whose last row is the one output, through last.
func (s *Session) eval(ctx context.Context, ids []int32, last func(model.Input) error) error {
	if len(ids) == 0 {
		return errors.New("engine: no tokens to evaluate")
	}
	if len(s.tokens)+len(ids) > s.st.Ctx() {
		return fmt.Errorf("engine: %d tokens after %d would exceed the context of %d: %w", len(ids), len(s.tokens), s.st.Ctx(), ErrContextFull)
	}
	for start := 0; start < len(ids); start += s.st.MaxBatch() {
		if err := ctx.Err(); err != nil {
			return err
		}
		end := min(start+s.st.MaxBatch(), len(ids))
		chunk := ids[start:end]
		s.ids, s.pos, s.slots, s.outputs = s.ids[:0], s.pos[:0], s.slots[:0], s.outputs[:0]
		for i, id := range chunk {
			s.ids = append(s.ids, id)
			s.pos = append(s.pos, int32(len(s.tokens)+i))
			s.slots = append(s.slots, s.slot)
		}
		in := model.Input{
			Tokens:  s.ids,
			Batch:   backend.Batch{Slot: s.slots, Pos: s.pos},
			Outputs: s.outputs,
		}
		var err error
		if end == len(ids) {
			s.outputs = append(s.outputs, int32(len(chunk)-1))
			in.Outputs = s.outputs
			err = last(in)
		} else {
			_, err = s.m.Forward(s.st, in, s.Probes)
		}
		if err != nil {
			return fmt.Errorf("engine: at position %d: %w", len(s.tokens), err)
		}
		s.tokens = append(s.tokens, chunk...)
	}
	return nil
}
