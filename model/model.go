package model

import (
	"errors"
	"fmt"
	"math"

	"llamago/backend"
	"llamago/gguf"
	"llamago/probe"
)

// Model is a llama-family model bound to a backend. It is read-only after
// Load and may be shared by several States.
type Model struct {
	Config  Config
	Weights *Weights
	be      backend.Backend
	names   []probe.LayerNames
	shapes  probeShapes
}

// probeShapes are the shapes probes are emitted with, made once so that a
// forward pass allocates none.
type probeShapes struct{ head, kv, embd, ff, attnOut []int }

func newProbeShapes(c Config) probeShapes {
	return probeShapes{
		head:    []int{c.NHead, c.HeadDim},
		kv:      []int{c.NKVHead, c.HeadDim},
		embd:    []int{c.NEmbd},
		ff:      []int{c.NFF},
		attnOut: []int{c.NHead * c.HeadDim},
	}
}

// Load reads the model's configuration from f and binds its tensors to be.
// The tensors' bytes stay in f, which must stay open while the model is used.
func Load(f *gguf.File, be backend.Backend) (*Model, error) {
	cfg, err := ConfigFromGGUF(f)
	if err != nil {
		return nil, err
	}
	w, err := bindWeights(f, be, &cfg)
	if err != nil {
		return nil, err
	}
	return &Model{Config: cfg, Weights: w, be: be, names: probe.NewLayerNames(cfg.NLayer), shapes: newProbeShapes(cfg)}, nil
}

// Backend is the backend the model computes on.
func (m *Model) Backend() backend.Backend { return m.be }

// State is the run state of a forward pass: every activation buffer,
// allocated once for the largest batch, and the KV cache. Forward allocates
// nothing (unless probes are attached).
type State struct {
	maxBatch int
	Cache    backend.KVCache

	x      backend.Mat // (batch, NEmbd) the residual stream
	xb     backend.Mat // (batch, NEmbd) normalised input of a block
	xb2    backend.Mat // (batch, NEmbd) output of a projection
	q      backend.Mat // (batch, NHead·HeadDim)
	k, v   backend.Mat // (batch, KVDim)
	att    backend.Mat // (batch, NHead·HeadDim) attention output
	hb     backend.Mat // (batch, NFF) gate, then SwiGLU
	hb2    backend.Mat // (batch, NFF) up
	outX   backend.Mat // (batch, NEmbd) rows that need logits
	logits backend.Mat // (batch, NVocab)

	// Views of the buffers for the batch of the last pass, remade only
	// when its size changes: a backend's view is a small heap object, and
	// decoding one token after another must allocate nothing.
	views batchViews
	outs  outputViews

	// The operands of the last matMuls, kept here so that passing them
	// to the backend as slices allocates nothing.
	mmDst [maxShared]backend.Mat
	mmW   [maxShared]backend.Weight

	host     []float32 // probe copies
	compact  []float32 // one probe position's attention scores
	outRows  []int32
	logitBuf []float32
	runs     []int   // sequenceRuns' result
	outSlots []int32 // the slots of the output rows
}

// sharedMatMuler is a backend that multiplies one activation matrix by
// several weights in one operation, with the bits of one MatMul each
// (backend/cpu: its workers meet once instead of once per weight).
type sharedMatMuler interface {
	MatMulShared(dsts []backend.Mat, x backend.Mat, ws []backend.Weight)
}

// sequenceRunner is a backend whose products round differently with the
// number of tokens multiplied at once, as llama.cpp's CPU code does
// (backend/cpu, which follows it bit for bit). Before the products of a
// forward pass the model tells it which consecutive rows belong to one
// sequence (runs[i] rows each, in order), and it multiplies each run as
// if it were alone: a sequence's results then do not depend on the other
// sequences that share its batch (the server batches many).
type sequenceRunner interface {
	SetSequenceRuns(runs []int)
}

// setSequenceRuns tells a sequenceRunner backend the runs of slots, the
// sequence of each row of the products that follow; nil slots clear them.
func (s *State) setSequenceRuns(be backend.Backend, slots []int32) {
	sr, ok := be.(sequenceRunner)
	if !ok {
		return
	}
	runs := s.runs[:0]
	for i := range slots {
		if i == 0 || slots[i] != slots[i-1] {
			runs = append(runs, 0)
		}
		runs[len(runs)-1]++
	}
	if slots == nil {
		runs = nil
	}
	sr.SetSequenceRuns(runs)
}

// maxShared is the most weights forward multiplies by one input: q, k, v.
const maxShared = 3

// matMuls sets dsts[i] = x·ws[i]ᵀ for i < n: in one operation where the
// backend can, else one MatMul each.
func (s *State) matMuls(be backend.Backend, x backend.Mat, dsts [maxShared]backend.Mat, ws [maxShared]backend.Weight, n int) {
	if sm, ok := be.(sharedMatMuler); ok {
		s.mmDst, s.mmW = dsts, ws
		sm.MatMulShared(s.mmDst[:n], x, s.mmW[:n])
		s.mmDst, s.mmW = [maxShared]backend.Mat{}, [maxShared]backend.Weight{}
		return
	}
	for i := range n {
		be.MatMul(dsts[i], x, ws[i])
	}
}

// batchViews are the first n rows of the activation buffers.
type batchViews struct {
	n                                 int
	x, xb, xb2, q, k, v, att, hb, hb2 backend.Mat
}

// outputViews are the first n rows of the output buffers.
type outputViews struct {
	n            int
	outX, logits backend.Mat
}

func (s *State) batchViews(be backend.Backend, n int) *batchViews {
	if v := &s.views; v.x == nil || v.n != n {
		*v = batchViews{n: n,
			x: be.View(s.x, n), xb: be.View(s.xb, n), xb2: be.View(s.xb2, n),
			q: be.View(s.q, n), k: be.View(s.k, n), v: be.View(s.v, n), att: be.View(s.att, n),
			hb: be.View(s.hb, n), hb2: be.View(s.hb2, n)}
	}
	return &s.views
}

func (s *State) outputViews(be backend.Backend, n int) *outputViews {
	if o := &s.outs; o.outX == nil || o.n != n {
		*o = outputViews{n: n, outX: be.View(s.outX, n), logits: be.View(s.logits, n)}
	}
	return &s.outs
}

// StateOptions size a State.
type StateOptions struct {
	MaxBatch int  // most tokens in one forward pass
	Ctx      int  // positions per sequence
	Slots    int  // sequences sharing the cache; 0 means 1
	KVF32    bool // keep the KV cache in float32 instead of F16
}

// NewState allocates the run state for batches of up to MaxBatch tokens
// and a KV cache of Slots sequences of Ctx positions each.
func (m *Model) NewState(o StateOptions) (s *State, err error) {
	c := m.Config
	maxBatch, ctx, slots := o.MaxBatch, o.Ctx, max(o.Slots, 1)
	if maxBatch < 1 || ctx < 1 {
		return nil, fmt.Errorf("model: batch %d and context %d must be positive", maxBatch, ctx)
	}
	// Refuse sizes whose KV cache could not be allocated at all, before a
	// make() aborts the process.
	const maxCacheBytes = 1 << 38
	perPos := int64(slots) * int64(c.NLayer) * int64(c.KVDim()) * 2 * 4
	if int64(ctx) > maxCacheBytes/perPos {
		return nil, fmt.Errorf("model: a context of %d positions for %d sequences needs a %d GiB KV cache: too large", ctx, slots, int64(ctx)*perPos>>30)
	}
	// A backend that cannot allocate (a GPU out of memory) panics with a
	// *backend.ShapeError, as operations do; report it as an error.
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*backend.ShapeError)
			if !ok {
				panic(r)
			}
			s, err = nil, fmt.Errorf("model: allocating the run state for %d tokens and %d positions: %w", maxBatch, ctx, se)
		}
	}()
	be := m.be
	s = &State{
		maxBatch: maxBatch,
		Cache:    be.NewKVCache(backend.KVConfig{Slots: slots, Layers: c.NLayer, Ctx: ctx, KVDim: c.KVDim(), F32: o.KVF32}),
		x:        be.NewMat(maxBatch, c.NEmbd),
		xb:       be.NewMat(maxBatch, c.NEmbd),
		xb2:      be.NewMat(maxBatch, c.NEmbd),
		q:        be.NewMat(maxBatch, c.NHead*c.HeadDim),
		k:        be.NewMat(maxBatch, c.KVDim()),
		v:        be.NewMat(maxBatch, c.KVDim()),
		att:      be.NewMat(maxBatch, c.NHead*c.HeadDim),
		hb:       be.NewMat(maxBatch, c.NFF),
		hb2:      be.NewMat(maxBatch, c.NFF),
		outX:     be.NewMat(maxBatch, c.NEmbd),
		logits:   be.NewMat(maxBatch, c.NVocab),
		outRows:  make([]int32, 0, maxBatch),
		runs:     make([]int, 0, maxBatch),
		outSlots: make([]int32, 0, maxBatch),
	}
	s.logitBuf = hostFloats(be, maxBatch*c.NVocab)
	return s, nil
}

// hostFloats returns n float32s for the logits: the backend's own host
// memory when it has some (backend.HostAllocator: a GPU's Read then
// copies into it without staging), else Go memory.
func hostFloats(be backend.Backend, n int) []float32 {
	if ha, ok := be.(backend.HostAllocator); ok {
		if f := ha.HostFloats(n); len(f) == n {
			return f
		}
	}
	return make([]float32, n)
}

// MaxBatch is the largest batch the state takes.
func (s *State) MaxBatch() int { return s.maxBatch }

// Ctx is the number of positions per slot.
func (s *State) Ctx() int { return s.Cache.Config().Ctx }

// Input is one forward pass's tokens: token r is at position Pos[r] of
// sequence Slot[r]. Logits are computed for the rows listed in Outputs.
type Input struct {
	Tokens  []int32
	Batch   backend.Batch
	Outputs []int32
}

// Forward runs the tokens of in through the model, filling the KV cache,
// and returns the logits of the output rows, NVocab values each, in a
// buffer owned by s that the next Forward overwrites. probes may be nil.
func (m *Model) Forward(s *State, in Input, probes *probe.Set) (logits []float32, err error) {
	var out []float32
	err = m.run(s, in, probes, func() {
		out = s.logitBuf[:len(in.Outputs)*m.Config.NVocab]
		if len(in.Outputs) > 0 {
			m.be.Read(s.outputViews(m.be, len(in.Outputs)).logits, out)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ForwardBest is Forward followed by backend.FindPick of each output row's
// logits, into dst (one per output row): what greedy sampling without
// penalties needs. On a backend.ArgMaxer without probes the logits stay in
// the backend, which finds the picks there and copies back only them;
// otherwise (probes read the logits anyway) the logits are read as
// Forward does and searched here. The results are the same either way.
func (m *Model) ForwardBest(s *State, in Input, probes *probe.Set, dst []backend.Pick) error {
	if len(dst) != len(in.Outputs) {
		return fmt.Errorf("model: %d results for %d output rows", len(dst), len(in.Outputs))
	}
	am, ok := m.be.(backend.ArgMaxer)
	if !ok || probes != nil {
		logits, err := m.Forward(s, in, probes)
		if err != nil {
			return err
		}
		nv := m.Config.NVocab
		for i := range dst {
			dst[i] = backend.FindPick(logits[i*nv : (i+1)*nv])
		}
		return nil
	}
	return m.run(s, in, nil, func() {
		if len(in.Outputs) > 0 {
			am.ArgMax(s.outputViews(m.be, len(in.Outputs)).logits, dst)
		}
	})
}

// run checks in, runs the forward pass and then finish, which takes the
// results from the backend; an operation's *backend.ShapeError in either
// becomes the error.
func (m *Model) run(s *State, in Input, probes *probe.Set, finish func()) (err error) {
	c := m.Config
	n := len(in.Tokens)
	if n == 0 {
		return errors.New("model: empty batch")
	}
	if n > s.maxBatch || in.Batch.Len() != n || len(in.Batch.Slot) != n || len(in.Outputs) > n {
		return fmt.Errorf("model: batch of %d tokens with %d positions, %d slots and %d outputs (state takes %d)", n, in.Batch.Len(), len(in.Batch.Slot), len(in.Outputs), s.maxBatch)
	}
	kv := s.Cache.Config()
	for r, id := range in.Tokens {
		if id < 0 || int(id) >= c.NVocab {
			return fmt.Errorf("model: token id %d at batch row %d is outside the vocabulary of %d", id, r, c.NVocab)
		}
		if p, sl := in.Batch.Pos[r], in.Batch.Slot[r]; p < 0 || int(p) >= kv.Ctx || sl < 0 || int(sl) >= kv.Slots {
			return fmt.Errorf("model: batch row %d: position %d of slot %d is outside the context of %d positions and %d slots", r, p, sl, kv.Ctx, kv.Slots)
		}
	}
	for _, o := range in.Outputs {
		if o < 0 || int(o) >= n {
			return fmt.Errorf("model: output row %d outside the batch of %d", o, n)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*backend.ShapeError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("model: forward pass: %w", se)
		}
	}()
	m.forward(s, in, probes)
	if err := probes.Err(); err != nil {
		return err
	}
	finish()
	return nil
}

func (m *Model) forward(s *State, in Input, ps *probe.Set) {
	be, c, w := m.be, m.Config, m.Weights
	n := len(in.Tokens)
	b := in.Batch
	views := s.batchViews(be, n)
	x, xb, xb2 := views.x, views.xb, views.xb2
	q, k, v, att := views.q, views.k, views.v, views.att
	hb, hb2 := views.hb, views.hb2
	rope := backend.RoPEParams{HeadDim: c.HeadDim, Dims: c.RopeDims, FreqBase: c.RopeBase, FreqScale: c.RopeScale}
	qRope, kRope := rope, rope
	qRope.Heads, kRope.Heads = c.NHead, c.NKVHead
	attn := backend.AttnParams{Heads: c.NHead, KVHeads: c.NKVHead, HeadDim: c.HeadDim, Scale: 1 / float32(math.Sqrt(float64(c.HeadDim)))} // 1.0f/sqrtf(n_embd_head), as llama.cpp
	headShape, kvShape, embdShape, ffShape := m.shapes.head, m.shapes.kv, m.shapes.embd, m.shapes.ff

	s.setSequenceRuns(be, b.Slot)
	defer s.setSequenceRuns(be, nil)

	// x = token_embd[tokens]
	be.GetRows(x, w.TokenEmbd, in.Tokens)
	s.emit(m, ps, probe.Embd, x, b, embdShape)

	for l := range w.Layers {
		lw, names := &w.Layers[l], &m.names[l]
		// Attention: xb = rmsnorm(x)·w; q, k, v = xb·Wqᵀ, xb·Wkᵀ, xb·Wvᵀ
		be.RMSNorm(xb, x, lw.AttnNorm, c.RMSEps)
		s.emit(m, ps, names.AttnNorm, xb, b, embdShape)
		s.matMuls(be, xb, [maxShared]backend.Mat{q, k, v}, [maxShared]backend.Weight{lw.Q, lw.K, lw.V}, 3)
		s.emit(m, ps, names.Q, q, b, headShape)
		s.emit(m, ps, names.K, k, b, kvShape)
		s.emit(m, ps, names.V, v, b, kvShape)
		// Rotate q and k by their positions, then cache k and v.
		be.RoPE(q, b.Pos, qRope)
		s.emit(m, ps, names.QRope, q, b, headShape)
		be.RoPE(k, b.Pos, kRope)
		s.emit(m, ps, names.KRope, k, b, kvShape)
		be.StoreKV(s.Cache, l, b, k, v)
		// att = softmax(q·kᵀ/sqrt(head_dim), causal)·v, per head, over the cache.
		scores, probs := s.attnProbeMats(m, ps, names, n, b)
		be.Attention(att, q, s.Cache, l, b, attn, scores, probs)
		s.emitAttn(m, ps, names.AttnScores, scores, b)
		s.emitAttn(m, ps, names.AttnProbs, probs, b)
		s.emit(m, ps, names.AttnOut, att, b, m.shapes.attnOut)
		// x = x + att·Woᵀ
		be.MatMul(xb2, att, lw.O)
		s.emit(m, ps, names.AttnProj, xb2, b, embdShape)
		be.Add(x, x, xb2)
		s.emit(m, ps, names.FFNInp, x, b, embdShape)
		// FFN: x = x + (silu(xb·Wgateᵀ) ⊙ xb·Wupᵀ)·Wdownᵀ with xb = rmsnorm(x)·w
		be.RMSNorm(xb, x, lw.FFNNorm, c.RMSEps)
		s.emit(m, ps, names.FFNNorm, xb, b, embdShape)
		s.matMuls(be, xb, [maxShared]backend.Mat{hb, hb2}, [maxShared]backend.Weight{lw.Gate, lw.Up}, 2)
		s.emit(m, ps, names.FFNGate, hb, b, ffShape)
		s.emit(m, ps, names.FFNUp, hb2, b, ffShape)
		be.SwiGLU(hb, hb, hb2)
		s.emit(m, ps, names.FFNAct, hb, b, ffShape)
		be.MatMul(xb2, hb, lw.Down)
		s.emit(m, ps, names.FFNOut, xb2, b, embdShape)
		be.Add(x, x, xb2)
		s.emit(m, ps, names.Out, x, b, embdShape)
	}

	// Logits of the output rows: rmsnorm(x)·w, then ·Woutputᵀ. With the
	// logits probe attached every row gets logits.
	outputs := in.Outputs
	if ps.Wants(probe.Logits) || ps.Wants(probe.OutputNorm) {
		outputs = s.allRows(n)
	}
	if len(outputs) == 0 {
		return
	}
	be.RMSNorm(xb, x, w.OutputNorm, c.RMSEps)
	s.emit(m, ps, probe.OutputNorm, xb, b, embdShape)
	outs := s.outputViews(be, len(outputs))
	outX, logits := outs.outX, outs.logits
	if inOrder(outputs, n) {
		// Every row in order (a decode step's one row): the norm's rows
		// are the product's input as they are, without a copy (which on
		// the GPU also lets the norm fold into the product).
		outX = xb
	} else {
		be.CopyRows(outX, xb, outputs)
	}
	s.setSequenceRuns(be, s.slotsOf(b, outputs))
	be.MatMul(logits, outX, w.Output)
	if ps.Wants(probe.Logits) {
		s.emit(m, ps, probe.Logits, logits, b, []int{c.NVocab})
	}
	if len(outputs) != len(in.Outputs) {
		// Probing widened the outputs to every row: keep the asked ones first.
		be.CopyRows(outs.outX, xb, in.Outputs)
		s.setSequenceRuns(be, s.slotsOf(b, in.Outputs))
		be.MatMul(be.View(s.logits, len(in.Outputs)), be.View(outs.outX, len(in.Outputs)), w.Output)
	}
}

// inOrder reports whether rows lists every row of an n-row batch in
// order, 0 to n-1.
func inOrder(rows []int32, n int) bool {
	if len(rows) != n {
		return false
	}
	for i, r := range rows {
		if int(r) != i {
			return false
		}
	}
	return true
}

// slotsOf returns the slots of the batch rows listed in rows.
func (s *State) slotsOf(b backend.Batch, rows []int32) []int32 {
	slots := s.outSlots[:0]
	for _, r := range rows {
		slots = append(slots, b.Slot[r])
	}
	return slots
}

func (s *State) allRows(n int) []int32 {
	rows := s.outRows[:0]
	for r := 0; r < n; r++ {
		rows = append(rows, int32(r))
	}
	return rows
}

// emit hands each wanted row of mat to the probes, one position at a time.
func (s *State) emit(m *Model, ps *probe.Set, name string, mat backend.Mat, b backend.Batch, shape []int) {
	if !ps.Wants(name) {
		return
	}
	cols := mat.Cols()
	all := s.hostBuf(mat.Rows() * cols)
	m.be.Read(mat, all)
	for r := 0; r < mat.Rows(); r++ {
		if ps.WantsPos(int(b.Pos[r])) {
			// A sink error (stop on NaN) surfaces through ps.Err after the pass.
			_ = ps.Emit(name, int(b.Pos[r]), shape, all[r*cols:(r+1)*cols])
		}
	}
}

// attnProbeMats allocates score and probability matrices when a probe
// wants them; attention is otherwise computed without materialising them.
func (s *State) attnProbeMats(m *Model, ps *probe.Set, names *probe.LayerNames, n int, b backend.Batch) (scores, probs backend.Mat) {
	if !ps.Wants(names.AttnScores) && !ps.Wants(names.AttnProbs) {
		return nil, nil
	}
	maxPos := int32(0)
	for _, p := range b.Pos {
		maxPos = max(maxPos, p)
	}
	cols := m.Config.NHead * int(maxPos+1)
	if ps.Wants(names.AttnScores) {
		scores = m.be.NewMat(n, cols)
	}
	if ps.Wants(names.AttnProbs) {
		probs = m.be.NewMat(n, cols)
	}
	return scores, probs
}

// emitAttn emits per-position attention rows with shape (heads, pos+1),
// dropping the unused tail of each head's span.
func (s *State) emitAttn(m *Model, ps *probe.Set, name string, mat backend.Mat, b backend.Batch) {
	if mat == nil || !ps.Wants(name) {
		return
	}
	heads := m.Config.NHead
	cols := mat.Cols()
	span := cols / heads
	all := s.hostBuf(mat.Rows() * cols)
	m.be.Read(mat, all)
	for r := 0; r < mat.Rows(); r++ {
		pos := int(b.Pos[r])
		if !ps.WantsPos(pos) {
			continue
		}
		nKV := pos + 1
		if cap(s.compact) < heads*nKV {
			s.compact = make([]float32, heads*nKV)
		}
		out := s.compact[:heads*nKV]
		for h := 0; h < heads; h++ {
			copy(out[h*nKV:(h+1)*nKV], all[r*cols+h*span:r*cols+h*span+nKV])
		}
		_ = ps.Emit(name, pos, []int{heads, nKV}, out)
	}
}

func (s *State) hostBuf(n int) []float32 {
	if cap(s.host) < n {
		s.host = make([]float32, n)
	}
	return s.host[:n]
}
