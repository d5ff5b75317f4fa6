package llamacpp

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"llamago/tensor"
)

// Flash attention modes (enum llama_flash_attn_type).
const (
	FlashAttnAuto     = -1
	FlashAttnDisabled = 0
	FlashAttnEnabled  = 1
)

// ContextOptions tunes NewContext. Zero values take llama.cpp's defaults,
// except FlashAttn whose zero value means disabled (the graph then has the
// explicit kq / kq_soft_max nodes).
type ContextOptions struct {
	NCtx     int // context length; 0: the model's training length
	NBatch   int // most tokens one Decode may take; 0: llama.cpp's default (2048)
	NUBatch  int // physical batch; 0: llama.cpp's default (512)
	NThreads int // threads for generation and batches; 0: llama.cpp's default

	FlashAttn int // FlashAttnAuto, FlashAttnDisabled or FlashAttnEnabled
	// KVCacheF32 stores keys and values as F32 instead of llama.cpp's
	// default F16, so that comparisons of F32 models see no F16 rounding.
	KVCacheF32 bool

	// Eval, when set, receives the intermediate tensors (graph nodes) the
	// EvalFilter accepts, as they are computed during Decode. The tensor
	// and its Data are only valid during the call.
	Eval func(t *EvalTensor)
	// EvalFilter picks the nodes by name; nil takes all of them.
	EvalFilter func(name string) bool
}

// EvalTensor is one graph node seen by the eval callback.
type EvalTensor struct {
	Name string      // llama.cpp's node name, e.g. "attn_norm-0"
	Op   string      // ggml_op_desc: op or unary op name ("MUL_MAT", "SILU")
	Type tensor.Type // element type of the node
	NDim int         // ggml_n_dims
	Ne   [4]int64    // shape, ne[0] fastest
	// Data holds the node's values as float32, contiguous with ne[0]
	// fastest, whatever the node's strides; nil when the type cannot be
	// converted (then Raw tells why).
	Data []float32
	Raw  string // why Data is nil, else ""
}

// Context is a llama.cpp inference context (a KV cache and its compute
// graph). A Context is not safe for concurrent use; after Close its
// methods do nothing (Decode fails, Logits returns nil).
type Context struct {
	model  *Model
	ptr    uintptr // struct llama_context *
	nBatch int
	nVocab int
	batch  batch // C arrays from llama_batch_init, reused by every Decode

	handle        uintptr // key of this context for the eval callback
	eval          func(*EvalTensor)
	evalFilter    func(string) bool
	evalErr       error
	layoutChecked bool // the eval callback verified the ggml_tensor mirror
	scratch       []byte

	closeOnce sync.Once
}

// defaultNBatch is llama.cpp's default n_batch, used to size the batch
// arrays when NBatch is 0.
const defaultNBatch = 2048

// NewContext creates a context on the model.
func (m *Model) NewContext(opts ContextOptions) (*Context, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ptr == 0 {
		return nil, errClosed
	}
	if opts.NCtx < 0 || opts.NBatch < 0 || opts.NUBatch < 0 || opts.NThreads < 0 {
		return nil, fmt.Errorf("llamacpp: new context: negative option in %+v", opts)
	}
	if opts.FlashAttn < FlashAttnAuto || opts.FlashAttn > FlashAttnEnabled {
		return nil, fmt.Errorf("llamacpp: new context: flash attention mode %d is not -1, 0 or 1", opts.FlashAttn)
	}
	l := m.lib
	p := l.c.llamaContextDefaultParams()
	p.NCtx = uint32(opts.NCtx)
	if opts.NBatch > 0 {
		p.NBatch = uint32(opts.NBatch)
	}
	if opts.NUBatch > 0 {
		p.NUBatch = uint32(opts.NUBatch)
	}
	if opts.NThreads > 0 {
		p.NThreads = int32(opts.NThreads)
		p.NThreadsBatch = int32(opts.NThreads)
	}
	p.FlashAttnType = int32(opts.FlashAttn)
	if opts.KVCacheF32 {
		p.TypeK, p.TypeV = int32(tensor.F32), int32(tensor.F32)
	}
	p.NoPerf = false // keep llama.cpp's timings for Perf

	c := &Context{model: m, eval: opts.Eval, evalFilter: opts.EvalFilter, nVocab: m.NVocab()}
	if opts.Eval != nil {
		c.handle = l.registerEval(c)
		p.CbEval = l.evalCB
		p.CbEvalUserData = c.handle
	}
	c.ptr = l.c.llamaInitFromModel(m.ptr, p)
	if c.ptr == 0 {
		l.unregisterEval(c.handle)
		return nil, fmt.Errorf("llamacpp: llama.cpp could not create a context: %s", l.log.tail(6))
	}
	c.nBatch = int(p.NBatch)
	if c.nBatch == 0 {
		c.nBatch = defaultNBatch
	}
	c.batch = l.c.llamaBatchInit(int32(c.nBatch), 0, 1)
	m.contexts[c] = true
	return c, nil
}

// Close frees the context. It is safe to call twice.
func (c *Context) Close() {
	c.closeOnce.Do(func() {
		l := c.model.lib
		l.c.llamaBatchFree(c.batch)
		l.c.llamaFree(c.ptr)
		l.unregisterEval(c.handle)
		c.ptr = 0
		c.model.mu.Lock()
		delete(c.model.contexts, c)
		c.model.mu.Unlock()
	})
}

// NCtx is the context length actually allocated.
func (c *Context) NCtx() int {
	if c.ptr == 0 {
		return 0
	}
	return int(c.model.lib.c.llamaNCtx(c.ptr))
}

// SetThreads sets the threads for generation and for batches.
func (c *Context) SetThreads(n, nBatch int) {
	if c.ptr == 0 {
		return
	}
	c.model.lib.c.llamaSetNThreads(c.ptr, int32(n), int32(nBatch))
}

// Decode runs the model on tokens at positions pos0, pos0+1, ... of
// sequence 0, after what the KV cache already holds. With allLogits every
// token's logits are kept (Logits(i) for i in order); otherwise only the
// last token's (Logits(-1) or Logits(len-1)).
func (c *Context) Decode(tokens []int32, pos0 int32, allLogits bool) error {
	if c.ptr == 0 {
		return errors.New("llamacpp: decode on a closed context")
	}
	if len(tokens) == 0 {
		return errors.New("llamacpp: decode: no tokens")
	}
	if len(tokens) > c.nBatch {
		return fmt.Errorf("llamacpp: decode: %d tokens exceed the batch size %d", len(tokens), c.nBatch)
	}
	nv := int32(c.nVocab)
	for _, t := range tokens {
		if t < 0 || t >= nv {
			// llama.cpp would reject it too, but only after logging.
			return fmt.Errorf("llamacpp: decode: token id %d outside the vocabulary of %d", t, nv)
		}
	}
	n := len(tokens)
	b := c.batch
	copy(unsafe.Slice(b.Token, n), tokens)
	pos := unsafe.Slice(b.Pos, n)
	nSeq := unsafe.Slice(b.NSeqID, n)
	seqIDs := unsafe.Slice(b.SeqID, n)
	logits := unsafe.Slice(b.Logits, n)
	for i := range n {
		pos[i] = pos0 + int32(i)
		nSeq[i] = 1
		*seqIDs[i] = 0
		logits[i] = 0
		if allLogits || i == n-1 {
			logits[i] = 1
		}
	}
	b.NTokens = int32(n)
	c.evalErr = nil
	rc := c.model.lib.c.llamaDecode(c.ptr, b)
	if c.evalErr != nil {
		return fmt.Errorf("llamacpp: decode: eval callback: %w", c.evalErr)
	}
	if rc != 0 {
		return fmt.Errorf("llamacpp: llama_decode returned %d: %s", rc, c.model.lib.log.tail(4))
	}
	return nil
}

// Logits returns a copy of the logits of output i of the last Decode (in
// the order of the tokens that asked for logits; negative counts from the
// end), or nil when there is no such output.
func (c *Context) Logits(i int) []float32 {
	if c.ptr == 0 {
		return nil
	}
	p := c.model.lib.c.llamaGetLogitsIth(c.ptr, int32(i))
	if p == nil {
		return nil
	}
	return append([]float32(nil), unsafe.Slice(p, c.nVocab)...)
}

// ClearMemory empties the KV cache, so the next Decode starts afresh.
func (c *Context) ClearMemory() {
	if c.ptr == 0 {
		return
	}
	c.model.lib.c.llamaMemoryClear(c.model.lib.c.llamaGetMemory(c.ptr), true)
}

// Perf holds llama.cpp's own timings of a context.
type Perf struct {
	LoadMs       float64 // model load time
	PromptEvalMs float64 // time in batches of more than one token
	EvalMs       float64 // time in single-token decodes
	PromptTokens int
	EvalTokens   int
	GraphsReused int
}

// Perf returns llama.cpp's timings since the context was made or reset.
func (c *Context) Perf() Perf {
	if c.ptr == 0 {
		return Perf{}
	}
	d := c.model.lib.c.llamaPerfContext(c.ptr)
	return Perf{LoadMs: d.TLoadMs, PromptEvalMs: d.TPEvalMs, EvalMs: d.TEvalMs,
		PromptTokens: int(d.NPEval), EvalTokens: int(d.NEval), GraphsReused: int(d.NReused)}
}

// ResetPerf zeroes the timings.
func (c *Context) ResetPerf() {
	if c.ptr != 0 {
		c.model.lib.c.llamaPerfContextReset(c.ptr)
	}
}
