package cuda

import (
	"errors"
	"slices"
	"unsafe"
)

// Launches are not sent to the driver one by one: they queue in the
// Backend (pending) until something needs their results or their inputs
// change (Read, Write, a changed index array, freeing memory). A queue
// that repeats one seen before, launch for launch with the same arguments,
// is run as a CUDA graph: a decode step is the same launches every time
// (the token id and the positions live in device buffers whose contents
// change, not in the arguments), so from the second step on a token costs
// a few cuGraphLaunch calls (one per chunk, see chunkLaunches) instead of
// ~160 cuLaunchKernel calls. Queuing also lets an operation merge into the
// launch before it (see fuse*), which a graph could not do afterwards.
// On sm_90 and newer every launch after the first of a queue (or graph)
// carries programmatic stream serialization: the kernel may launch before
// the previous one has finished and waits for it itself (pdl_begin in
// kernels/llamago.cu), which hides its launch latency.
//
// A graph is a pure function of its launches: the cache is keyed by the
// launches themselves, so a graph is replayed only where launching the
// queue one by one would do exactly the same.

const (
	// maxArgs is the most kernel arguments one launch takes.
	maxArgs = 28
	// minGraphLaunches is the shortest queue worth a graph: short queues
	// (a probe reading after every operation, whose operations are up to
	// three launches) run as plain launches.
	minGraphLaunches = 4
	// maxGraphs bounds the cache (decode's chunks, and a few batch sizes).
	maxGraphs = 32
	// maxRecent is how many queues sent one by one are kept to recognize
	// a repeat. A decode step is several chunks (see chunkLaunches), and a
	// chunk repeats only a whole step later: every chunk of a step must
	// still be in the list then, or none is ever captured. A TinyLlama
	// decode step in CPU-order mode (more launches a layer) was 12 to 16
	// chunks of 32 (1548 and 2064 queues over 129 steps of the F16 and
	// Q8_0 files), which a list of 8 never caught.
	maxRecent = 32
	// chunkLaunches is the default length of the queue at which the next
	// residual add sends it to the GPU before queuing itself
	// ($LLAMAGO_CUDA_CHUNK overrides it; 0 sends whole forward passes).
	// The GPU then runs the first layers of a decode step while the host
	// queues the next ones instead of waiting for the whole step; the
	// chunks repeat from step to step, so each becomes a graph. The add
	// never merges into the launch before it, so no fusion is lost. The
	// first chunk after the host waited for the GPU (Read) is shorter,
	// firstChunkLaunches (and still a graph), so that the idle GPU starts
	// sooner: a decode step's first residual add sends it, after
	// attention. With 16 (until session ten) the host took 27 µs from the
	// end of its wait to the first graph launch of a TinyLlama Q4_0 step,
	// with 4 15 µs (TestTinyLlamaDecodeGPUTime, H100); tg128 1417–1440 →
	// 1429–1456 tokens/s, Q4_K_M 1246–1263 → 1251–1264, F16 919–930 →
	// 922–939 (three alternating runs each, within their noise).
	//
	// After the second chunk each one is chunkGrowth times as long as the
	// one before ($LLAMAGO_CUDA_CHUNK_GROWTH overrides it): a TinyLlama
	// decode step of about 160 launches is then 3 graphs rather than 6
	// (TestTinyLlamaDecodeGPUTime). The host queues a launch in about
	// 0.3 µs and the GPU runs one in about 6, so each chunk is sent long
	// before the GPU needs it, and every graph boundary less saves the
	// PDL overlap it breaks: the F16 step's graphs replayed back to back
	// 984 → 975 µs of GPU time, the step with the host 1012.6 → 994.3 µs;
	// tg128 F16 958–981 → 964–986, Q4_0 1541–1563 → 1556–1577 (H100,
	// session fourteen, two ABBA rounds; 32 growing by 2 or 4 was
	// between).
	chunkLaunches      = 16
	chunkGrowth        = 4
	firstChunkLaunches = minGraphLaunches
)

// sentQueue is a queue of launches sent one by one, kept to recognize a
// repeat.
type sentQueue struct {
	hash uint64
	recs []launchRec
}

// launchRec is one queued kernel launch.
type launchRec struct {
	fn          uintptr
	grid, block dim3
	n           int
	vals        [maxArgs]uint64
}

// cachedGraph is an instantiated graph and the launches it replays.
type cachedGraph struct {
	recs        []launchRec
	hash        uint64
	graph, exec uintptr
}

// graphStats counts how queues ran, for tests and reports.
type graphStats struct {
	Captured, Replayed, Direct int // queues: captured as graphs, replayed, launched one by one
}

// GraphStats reports how many queues of launches were captured as CUDA
// graphs, replayed from one, or launched one by one.
func (b *Backend) GraphStats() (captured, replayed, direct int) {
	return b.stats.Captured, b.stats.Replayed, b.stats.Direct
}

// enqueue records the launch held in b.args, or sends it at once when the
// backend is eager.
func (b *Backend) enqueue(op string, fn uintptr, grid, block dim3) {
	if b.eager {
		b.launchNow(op, fn, grid, block, &b.args.ptrs[0], false)
		return
	}
	r := launchRec{fn: fn, grid: grid, block: block, n: b.args.n}
	copy(r.vals[:], b.args.vals[:b.args.n])
	b.pending = append(b.pending, r)
}

// lastPending returns the last queued launch if it runs fn, for fusions.
func (b *Backend) lastPending(fn uintptr) *launchRec {
	if len(b.pending) == 0 || b.pending[len(b.pending)-1].fn != fn {
		return nil
	}
	return &b.pending[len(b.pending)-1]
}

// launchNow sends one launch to the stream.
func (b *Backend) launchNow(op string, fn uintptr, grid, block dim3, params *unsafe.Pointer, dependent bool) {
	b.current(op)
	d := b.drv
	b.must(op, d.check("cuLaunchKernel", b.launchOn(fn, grid, block, params, dependent)))
	if b.sync {
		b.must(op, d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)))
	}
}

// launchOn sends one launch to the stream (or the graph being captured).
// A dependent launch, when the backend uses programmatic dependent
// launch, may start before the kernel launched before it has finished:
// its kernel waits for that one itself (pdl_begin). Only a launch that
// follows another launch of the same queue is dependent, never one after
// a copy.
func (b *Backend) launchOn(fn uintptr, grid, block dim3, params *unsafe.Pointer, dependent bool) result {
	d := b.drv
	if !dependent || !b.pdl {
		return d.cuLaunchKernel(fn, grid.x, grid.y, grid.z, block.x, max(block.y, 1), max(block.z, 1), 0, b.stream, params, 0)
	}
	b.launchCfg = launchConfig{
		gridX: grid.x, gridY: grid.y, gridZ: grid.z,
		blockX: block.x, blockY: max(block.y, 1), blockZ: max(block.z, 1),
		sharedMem: 0, stream: b.stream, attrs: &b.launchAttr, numAttrs: 1,
	}
	return d.cuLaunchKernelEx(&b.launchCfg, fn, params, 0)
}

// sendRecs launches recs one by one.
func (b *Backend) sendRecs(op string, recs []launchRec) {
	var ptrs [maxArgs]unsafe.Pointer
	for i := range recs {
		r := &recs[i]
		for j := range r.n {
			ptrs[j] = unsafe.Pointer(&r.vals[j])
		}
		b.launchNow(op, r.fn, r.grid, r.block, &ptrs[0], i > 0)
	}
}

// flush sends the queued launches: as a cached graph, as a new graph when
// the same queue ran recently, else one by one.
func (b *Backend) flush(op string) {
	if len(b.pending) == 0 {
		return
	}
	b.current(op)
	b.idle = false
	b.ids.queued, b.rows.queued, b.pos.queued, b.slots.queued = false, false, false, false
	recs := b.pending
	eligible := b.graphs && len(recs) >= minGraphLaunches
	var h uint64
	if eligible {
		h = hashRecs(recs)
		if g := b.findGraph(h, recs); g != nil {
			b.pending = recs[:0]
			b.launchGraph(op, g)
			b.stats.Replayed++
			return
		}
		if b.sentRecently(h, recs) {
			g, err := b.capture(recs, h)
			if err != nil && b.pdl {
				// The driver refused the capture: try again without
				// programmatic dependent launch.
				b.pdl = false
				g, err = b.capture(recs, h)
			}
			if err == nil {
				b.pending = recs[:0]
				b.launchGraph(op, g)
				b.stats.Captured++
				return
			}
			// The driver refused the capture: plain launches from now on.
			b.graphs = false
			eligible = false
		}
	}
	b.sendRecs(op, recs)
	b.stats.Direct++
	if !eligible {
		b.pending = recs[:0]
		return
	}
	// Keep this queue to recognize a repeat; reuse the memory of the
	// oldest one kept.
	var free []launchRec
	if len(b.recent) == maxRecent {
		free = b.recent[0].recs[:0]
		b.recent = append(b.recent[:0], b.recent[1:]...)
	}
	b.recent = append(b.recent, sentQueue{hash: h, recs: recs})
	b.pending = free
}

// launchGraph launches g on the stream and notes it as one of the
// current step's graphs.
func (b *Backend) launchGraph(op string, g *cachedGraph) {
	b.must(op, b.drv.check("cuGraphLaunch", b.drv.cuGraphLaunch(g.exec, b.stream)))
	b.stepGraphs = append(b.stepGraphs, g.exec)
	b.mark(markGraph)
}

// sentRecently reports whether recs (of hash h) equals a queue kept in
// b.recent.
func (b *Backend) sentRecently(h uint64, recs []launchRec) bool {
	for _, q := range b.recent {
		if q.hash == h && slices.Equal(q.recs, recs) {
			return true
		}
	}
	return false
}

// flushLong sends a queue of at least chunkLimit launches (see
// chunkLaunches).
func (b *Backend) flushLong(op string) {
	limit := b.chunkLimit()
	if b.chunk > 0 && len(b.pending) >= limit {
		idle := b.idle
		b.flush(op)
		b.chunkSent(idle, limit)
	}
}

// chunkLimit is the queue length at which flushLong sends the queue:
// firstChunkLaunches when the GPU has nothing to do, else b.chunk for
// the second chunk since the host waited and chunkGrowth times the last
// chunk's limit after that.
func (b *Backend) chunkLimit() int {
	limit := max(b.chunk, b.nextChunk)
	if b.idle {
		limit = min(limit, firstChunkLaunches)
	}
	return limit
}

// chunkSent notes that a chunk of the limit limit was sent, the GPU
// having been idle or not.
func (b *Backend) chunkSent(idle bool, limit int) {
	if !idle {
		b.nextChunk = limit * b.chunkGrowth
	}
}

func (b *Backend) findGraph(h uint64, recs []launchRec) *cachedGraph {
	for _, g := range b.graphCache {
		if g.hash == h && slices.Equal(g.recs, recs) {
			return g
		}
	}
	return nil
}

// capture records recs into a graph on the stream and instantiates it.
func (b *Backend) capture(recs []launchRec, h uint64) (*cachedGraph, error) {
	d := b.drv
	if err := d.check("cuStreamBeginCapture", d.cuStreamBeginCapture(b.stream, captureModeThreadLocal)); err != nil {
		return nil, err
	}
	var launchErr error
	var ptrs [maxArgs]unsafe.Pointer
	for i := range recs {
		r := &recs[i]
		for j := range r.n {
			ptrs[j] = unsafe.Pointer(&r.vals[j])
		}
		if res := b.launchOn(r.fn, r.grid, r.block, &ptrs[0], i > 0); res != 0 {
			launchErr = d.check("cuLaunchKernel (capturing)", res)
			break
		}
	}
	var graph uintptr
	endErr := d.check("cuStreamEndCapture", d.cuStreamEndCapture(b.stream, &graph))
	if err := errors.Join(launchErr, endErr); err != nil {
		if graph != 0 {
			d.cuGraphDestroy(graph)
		}
		return nil, err
	}
	var exec uintptr
	if err := d.check("cuGraphInstantiate", d.cuGraphInstantiate(&exec, graph, 0)); err != nil {
		d.cuGraphDestroy(graph)
		return nil, err
	}
	if len(b.graphCache) == maxGraphs {
		old := b.graphCache[0]
		b.graphCache = b.graphCache[1:]
		d.cuGraphExecDestroy(old.exec)
		d.cuGraphDestroy(old.graph)
	}
	g := &cachedGraph{recs: slices.Clone(recs), hash: h, graph: graph, exec: exec}
	b.graphCache = append(b.graphCache, g)
	return g, nil
}

// destroyGraphs frees the cached graphs (Close).
func (b *Backend) destroyGraphs() {
	for _, g := range b.graphCache {
		b.drv.cuGraphExecDestroy(g.exec)
		b.drv.cuGraphDestroy(g.graph)
	}
	b.graphCache = nil
}

// hashRecs is FNV-1a over the launches' fields, a quick filter before the
// exact comparison.
func hashRecs(recs []launchRec) uint64 {
	h := uint64(14695981039346656037)
	mix := func(v uint64) { h = (h ^ v) * 1099511628211 }
	for i := range recs {
		r := &recs[i]
		mix(uint64(r.fn))
		mix(uint64(r.grid.x) | uint64(r.grid.y)<<32)
		mix(uint64(r.grid.z) | uint64(r.block.x)<<32)
		mix(uint64(r.block.y) | uint64(r.block.z)<<32)
		mix(uint64(r.n))
		for _, v := range r.vals[:r.n] {
			mix(v)
		}
	}
	return h
}
