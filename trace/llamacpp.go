package trace

import (
	"context"
	"errors"
	"fmt"
	"math"

	"llamago/engine"
	"llamago/llamacpp"
	"llamago/probe"
)

// runLlamaCpp evaluates ids with llama.cpp's own libraries, turning the
// graph nodes its eval callback shows into our probes, then generates
// greedily from llama.cpp's logits. The token ids are llamago's, so that a
// diff against a llamago trace compares forward passes over one input.
func runLlamaCpp(ctx context.Context, opts Options, l *engine.Loaded, ids []int32, ctxLen int, set *probe.Set) ([]int32, error) {
	dir := opts.LlamaCppLibDir
	if dir == "" {
		dir = llamacpp.DefaultLibDir()
	}
	if dir == "" {
		return nil, errors.New("trace: backend llamacpp: llama.cpp's libraries were not found (install them with: npm ci --omit=optional --ignore-scripts; or set LLAMAGO_LLAMACPP_LIB)")
	}
	lib, err := llamacpp.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	m, err := lib.LoadModel(opts.ModelPath, llamacpp.ModelOptions{})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer m.Close()
	cfg := l.Model.Config
	if m.NVocab() != cfg.NVocab || m.NLayer() != cfg.NLayer || m.NEmbd() != cfg.NEmbd || m.NHead() != cfg.NHead || m.NHeadKV() != cfg.NKVHead {
		return nil, fmt.Errorf("trace: llama.cpp reads %s as vocabulary %d, %d layers, width %d, %d heads over %d KV heads; llamago as %d, %d, %d, %d over %d",
			opts.ModelPath, m.NVocab(), m.NLayer(), m.NEmbd(), m.NHead(), m.NHeadKV(), cfg.NVocab, cfg.NLayer, cfg.NEmbd, cfg.NHead, cfg.NKVHead)
	}
	threads := opts.Threads
	if threads < 1 {
		threads = engine.DefaultThreads()
	}
	conv := &nodeConverter{set: set, kqScale: float32(1 / math.Sqrt(float64(cfg.HeadDim)))}
	c, err := m.NewContext(llamacpp.ContextOptions{
		NCtx: ctxLen,
		// One micro-batch for the whole prompt: the callback's rows are
		// then the prompt's positions in order.
		NBatch: len(ids), NUBatch: len(ids),
		NThreads: threads,
		// Without flash attention the graph has kq and kq_soft_max nodes.
		FlashAttn:  llamacpp.FlashAttnDisabled,
		KVCacheF32: opts.KVF32,
		Eval:       conv.eval,
		EvalFilter: conv.wants,
	})
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	defer c.Close()

	decode := func(tokens []int32, pos0 int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		conv.positions = conv.positions[:0]
		for i := range tokens {
			conv.positions = append(conv.positions, pos0+i)
		}
		// Logits for every token, or llama.cpp drops all rows but the
		// last before the last layer's FFN and there is no logits probe
		// for the others.
		if err := c.Decode(tokens, int32(pos0), true); err != nil {
			return fmt.Errorf("trace: llama.cpp at position %d: %w", pos0, err)
		}
		if conv.err != nil {
			return fmt.Errorf("trace: llama.cpp at position %d: %w", pos0, conv.err)
		}
		return nil
	}
	if err := decode(ids, 0); err != nil {
		return nil, err
	}
	var generated []int32
	for i := range opts.Generate {
		logits := c.Logits(-1)
		if logits == nil {
			return generated, errors.New("trace: llama.cpp returned no logits")
		}
		id := argmax(logits)
		generated = append(generated, id)
		if err := decode([]int32{id}, len(ids)+i); err != nil {
			return generated, err
		}
	}
	return generated, nil
}

// nodeConverter receives llama.cpp's graph nodes and emits the ones that
// are probes, cut per position and laid out as ours.
type nodeConverter struct {
	set       *probe.Set
	kqScale   float32
	positions []int // of the rows of the batch being decoded
	err       error // the first failure; later nodes are ignored
}

// lookupOps are the ops that tell apart nodes sharing one name (see
// probe.FromLlamaCpp); at the ask stage the op is not known yet, so a name
// is wanted when some op makes it a wanted probe.
var lookupOps = [...]string{"RESHAPE", "ROPE", "MUL_MAT", ""}

// wants is the eval filter: only nodes that map to a selected probe are
// copied back, which saves the scheduler a stop after every node.
func (nc *nodeConverter) wants(node string) bool {
	for _, op := range lookupOps {
		if name, ok := probe.FromLlamaCpp(node, op); ok && nc.set.Wants(name) {
			return true
		}
	}
	return false
}

func (nc *nodeConverter) eval(t *llamacpp.EvalTensor) {
	if nc.err != nil {
		return
	}
	name, ok := probe.FromLlamaCpp(t.Name, t.Op)
	if !ok || !nc.set.Wants(name) {
		return
	}
	if t.Data == nil {
		nc.err = fmt.Errorf("node %s (%s) could not be read: %s", t.Name, t.Op, t.Raw)
		return
	}
	opts := probe.SplitOptions{Positions: nc.positions, KQScale: nc.kqScale}
	err := probe.SplitLlamaCpp(name, t.Ne, t.Data, opts, func(pos int, shape []int, data []float32) error {
		return nc.set.Emit(name, pos, shape, data)
	})
	if err != nil {
		nc.err = fmt.Errorf("node %s (%s, ne %v) as %s: %w", t.Name, t.Op, t.Ne, name, err)
	}
}
