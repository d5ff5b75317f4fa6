package bench

import (
	"context"
	"fmt"

	"llamago/llamacpp"
)

// LlamaCpp runs llama.cpp, through the libllama harness, as a benchmark
// Engine.
type LlamaCpp struct {
	name  string
	ctx   *llamacpp.Context
	batch int
	pos   int32
}

// NewLlamaCpp makes a llama.cpp context on m with the given batch size,
// context length and threads. Flash attention is left to llama.cpp's
// default ("auto"), as llama-bench leaves it.
func NewLlamaCpp(m *llamacpp.Model, name string, batch, nCtx, threads int) (*LlamaCpp, error) {
	c, err := m.NewContext(llamacpp.ContextOptions{NCtx: nCtx, NBatch: batch, NUBatch: batch, NThreads: threads})
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	if name == "" {
		name = "llama.cpp"
	}
	return &LlamaCpp{name: name, ctx: c, batch: batch}, nil
}

// Name implements Engine.
func (e *LlamaCpp) Name() string { return e.name }

// Reset implements Engine.
func (e *LlamaCpp) Reset() error {
	e.ctx.ClearMemory()
	e.pos = 0
	return nil
}

// Eval implements Engine.
func (e *LlamaCpp) Eval(ctx context.Context, ids []int32) error {
	for start := 0; start < len(ids); start += e.batch {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk := ids[start:min(start+e.batch, len(ids))]
		if err := e.ctx.Decode(chunk, e.pos, false); err != nil {
			return err
		}
		e.pos += int32(len(chunk))
	}
	return nil
}

// Close frees the context.
func (e *LlamaCpp) Close() { e.ctx.Close() }
