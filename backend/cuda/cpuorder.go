package cuda

import (
	_ "embed"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"unsafe"

	"llamago/backend"
	"llamago/backend/cpu"
	"llamago/tensor"
)

// CPU-order mode (Options.CPUOrder, $LLAMAGO_CUDA_CPU_ORDER=1): the
// operations whose float results depend on the order of their arithmetic
// (MatMul with F32, F16, Q4_0 and Q8_0 weights, RMSNorm, SwiGLU, RoPE,
// Attention) run kernels of their own, kernels/cpuorder/cpuorder.cu, that
// compute exactly the CPU backend's float operations in the CPU backend's
// order, so that every result equals the CPU's bit for bit. The other operations (GetRows,
// CopyRows, Add, StoreKV) are exact on both backends already and keep the
// normal kernels. The k-quants Q4_K and Q6_K take the CPU's orders too
// (Q8_K activations; Q4_K in ggml's repacked gemv or gemm order by token,
// Q6_K in ggml_vec_dot_q6_K_q8_K's AVX2 order); other types are refused
// by LoadWeight in any mode.
//
// Why: F16 activations are rounded to F16 before each F16 product, so any
// last-bit difference flips some F16 roundings, and the relative error
// between two orders of summation settles, within a few layers, at about
// F16's step (≈1e-3), whatever either backend does; only bit-identical
// arithmetic takes it to zero (docs/CUDA.md, "CPU-order mode").

// cpuOrderEnv turns the mode on; cpuOrderPTXEnv replaces its embedded PTX.
const (
	cpuOrderEnv    = "LLAMAGO_CUDA_CPU_ORDER"
	cpuOrderPTXEnv = "LLAMAGO_CUDA_CPU_ORDER_PTX"
)

// cpuOrderPTX is kernels/cpuorder/cpuorder.cu compiled by
// scripts/build-cpuorder-ptx.sh; its first line records the sources'
// SHA-256 (TestCPUOrderPTXMatchesSources).
//
//go:embed kernels/cpuorder/cpuorder.ptx
var cpuOrderPTX []byte

// Launch geometry; the constants match the #defines of cpuorder.cu.
const (
	coVecRows        = 4   // VEC_ROWS
	coTile           = 16  // TILE
	coTileThreads    = 256 // TILE_THREADS
	coRowThreads     = 256 // ROW_THREADS
	coAttnThreads    = 256 // ATTN_THREADS
	coAttnMaxHeadDim = 256 // ATTN_MAX_HEAD_DIM
	coTiledStep      = 16  // tinyBLAS's KN: the several-token order needs cols % 16 == 0
	// coAttnScratchMax bounds the attention scratch sized by the cache's
	// context rather than the batch's positions.
	coAttnScratchMax = 256 << 20
)

// cpuOrder is the state of CPU-order mode: its module, kernels and buffers.
type cpuOrder struct {
	mod                    uintptr
	mmVec, mmTiled         [2]uintptr // by gpuF32, gpuF16
	mmQ4_0, mmQ8_0, actQ8  uintptr
	mmQ4_K, mmQ6_K, actQ8K uintptr
	rmsNorm, swiglu, rope  uintptr
	attention              uintptr
	runs                   []int // SetSequenceRuns
	vecToks, angles, tiled intBuf
	gemmToks               intBuf  // Q4_K: 1 for the tokens in the gemm order
	host                   []int32 // staging for the uploads
	scratch                uint64  // attention's scores and group sums
	scratchSize            uintptr
	act                    uint64 // activations quantized to Q8_0 or Q8_K: values, scales, (Q8_K) group sums
	actSize                uintptr
}

// cpuOrderWanted reports whether opts or the environment ask for the mode.
func cpuOrderWanted(opts Options) bool {
	return opts.CPUOrder || os.Getenv(cpuOrderEnv) == "1"
}

// loadCPUOrder loads the CPU-order module when the mode is asked for. The
// caller holds the OS thread with the context current.
func (b *Backend) loadCPUOrder(opts Options) error {
	if !cpuOrderWanted(opts) {
		return nil
	}
	ptx := cpuOrderPTX
	if path := os.Getenv(cpuOrderPTXEnv); path != "" {
		p, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("cuda: $%s: %w", cpuOrderPTXEnv, err)
		}
		ptx = p
	}
	if _, ok := ptxSourcesDigest(ptx); !ok {
		return fmt.Errorf("cuda: CPU-order mode: the embedded kernels/cpuorder/cpuorder.ptx is a placeholder; build it with scripts/build-cpuorder-ptx.sh or name one in $%s", cpuOrderPTXEnv)
	}
	e := &cpuOrder{}
	d := b.drv
	image := append(slices.Clip(ptx), 0)
	logBuf := make([]byte, jitErrorLogCap)
	jopts := []int32{jitErrorLogBuffer, jitErrorLogBufferSize}
	vals := []uintptr{uintptr(unsafe.Pointer(&logBuf[0])), uintptr(len(logBuf))}
	if r := d.cuModuleLoadDataEx(&e.mod, unsafe.Pointer(&image[0]), uint32(len(jopts)), &jopts[0], &vals[0]); r != 0 {
		err := d.check("cuModuleLoadDataEx(cpuorder)", r)
		if log := goString(&logBuf[0]); log != "" {
			return fmt.Errorf("%w: the JIT compiler said: %s", err, log)
		}
		return err
	}
	runtime.KeepAlive(image)
	runtime.KeepAlive(logBuf)
	fns := []struct {
		dst  *uintptr
		name string
	}{
		{&e.mmVec[gpuF32], "co_mm_vec_f32"},
		{&e.mmVec[gpuF16], "co_mm_vec_f16"},
		{&e.mmTiled[gpuF32], "co_mm_tiled_f32"},
		{&e.mmTiled[gpuF16], "co_mm_tiled_f16"},
		{&e.mmQ4_0, "co_mm_q4_0"},
		{&e.mmQ8_0, "co_mm_q8_0"},
		{&e.actQ8, "co_act_q8_0"},
		{&e.mmQ4_K, "co_mm_q4_k"},
		{&e.mmQ6_K, "co_mm_q6_k"},
		{&e.actQ8K, "co_act_q8_k"},
		{&e.rmsNorm, "co_rms_norm"},
		{&e.swiglu, "co_swiglu"},
		{&e.rope, "co_rope"},
		{&e.attention, "co_attention"},
	}
	for _, f := range fns {
		name := append([]byte(f.name), 0)
		if err := d.check("cuModuleGetFunction("+f.name+")", d.cuModuleGetFunction(f.dst, e.mod, &name[0])); err != nil {
			d.cuModuleUnload(e.mod)
			return fmt.Errorf("%w (is cpuorder.ptx older than the Go code? run scripts/build-cpuorder-ptx.sh)", err)
		}
	}
	b.exact = e
	// No programmatic dependent launch in this mode: a dependent launch may
	// start before the kernel before it has finished, and only the default
	// module's kernels wait for it themselves (pdl_begin in llamago.cu); the
	// CPU-order kernels do not, so they could read inputs not yet written.
	b.pdl = false
	return nil
}

// unloadCPUOrder unloads the module (its buffers are b.allocs, which
// Close frees).
func (b *Backend) unloadCPUOrder() {
	if b.exact != nil && b.exact.mod != 0 {
		b.drv.cuModuleUnload(b.exact.mod)
		b.exact.mod = 0
	}
}

// CPUOrder reports whether the backend runs in CPU-order mode.
func (b *Backend) CPUOrder() bool { return b.exact != nil }

// SetSequenceRuns implements the model's sequenceRunner, as the CPU
// backend does: runs[i] consecutive rows of the products that follow
// belong to one sequence. In CPU-order mode a product takes, for each
// row, the order the CPU takes for it (see cpuOrderMatMul); otherwise the
// runs change nothing.
func (b *Backend) SetSequenceRuns(runs []int) {
	if b.exact != nil {
		b.exact.runs = append(b.exact.runs[:0], runs...)
		if runs == nil {
			b.exact.runs = nil
		}
	}
}

// uploadOwn is upload for the mode's own index buffers, whose queued
// flag flush does not clear (flush knows only the backend's buffers): a
// buffer that no queued launch reads takes its new contents without
// sending the queue first, so that a decode step stays one queue and
// repeats as a graph. (The copy goes to the stream after every launch
// already sent, which is all that may still read the old contents.)
func (b *Backend) uploadOwn(op string, buf *intBuf, v []int32) uint64 {
	if buf.queued && !b.pendingReads(buf.dev) {
		buf.queued = false
	}
	return b.upload(op, buf, v)
}

// pendingReads reports whether a queued launch takes the device address
// p as an argument.
func (b *Backend) pendingReads(p uint64) bool {
	for i := range b.pending {
		r := &b.pending[i]
		if slices.Contains(r.vals[:r.n], p) {
			return true
		}
	}
	return false
}

// cpuOrderMatMul computes dst = x·wᵀ in the CPU's order, for F32, F16,
// Q4_0, Q8_0, Q4_K and Q6_K weights (it reports false, computing nothing,
// for other types, which take the normal kernels). For the float types the CPU
// (kernels.MatMulRows) takes, per token, ggml_vec_dot's order when the
// token is multiplied alone (a product of one row, or a sequence run of
// one row) or cols is not a multiple of 16, else tinyBLAS's: co_mm_tiled
// computes every token in the latter, then co_mm_vec (over the list of
// tokens that need it) overwrites the others. Q4_0 and Q8_0 have one
// order whatever the token count (cpuOrderMatMulQ).
func (b *Backend) cpuOrderMatMul(dst, x *mat, w *weight) bool {
	e := b.exact
	switch w.gpu {
	case gpuF32, gpuF16:
	case gpuQ4_0, gpuQ8_0:
		b.cpuOrderMatMulQ(dst, x, w)
		return true
	case gpuQ4_K, gpuQ6_K:
		b.cpuOrderMatMulK(dst, x, w)
		return true
	default:
		return false
	}
	if x.rows > maxGridY {
		backend.ShapeFail("MatMul", "%d rows exceed the %d a CPU-order launch takes", x.rows, maxGridY)
	}
	defer b.enter("MatMul")()
	ntok := x.rows
	vec := e.host[:0]
	tiledAny := false
	if ntok >= 2 && w.cols%coTiledStep == 0 {
		runs := e.runs
		if len(runs) > 1 {
			total := 0
			for _, n := range runs {
				total += n
			}
			if total != ntok {
				backend.ShapeFail("MatMul", "sequence runs of %d rows for a product of %d rows", total, ntok)
			}
		} else {
			runs = []int{ntok}
		}
		tok := 0
		for _, n := range runs {
			if n == 1 {
				vec = append(vec, int32(tok))
			} else {
				tiledAny = true
			}
			tok += n
		}
	} else {
		for t := range ntok {
			vec = append(vec, int32(t))
		}
	}
	e.host = vec
	if tiledAny {
		b.args.reset().ptr(w.ptr).i64(w.rowBytes).i32(w.rows).i32(w.cols).ptr(x.ptr).ptr(dst.ptr).i32(ntok)
		b.launchKeep("MatMul", e.mmTiled[w.gpu], dim3{uint32((w.rows + coTile - 1) / coTile), uint32((ntok + coTile - 1) / coTile), 1}, dim3{coTileThreads, 1, 1})
	}
	if len(vec) > 0 {
		var toks uint64
		if len(vec) != ntok {
			toks = b.uploadOwn("MatMul", &e.vecToks, vec)
		}
		b.args.reset().ptr(w.ptr).i64(w.rowBytes).i32(w.rows).i32(w.cols).ptr(x.ptr).ptr(dst.ptr).ptr(toks)
		b.launchKeep("MatMul", e.mmVec[w.gpu], dim3{uint32((w.rows + coVecRows - 1) / coVecRows), uint32(len(vec)), 1}, dim3{coVecRows * 32, 1, 1})
	}
	return true
}

// cpuOrderMatMulQ computes dst = x·wᵀ for Q4_0 and Q8_0 weights in the
// CPU's order: x quantized to Q8_0 as the CPU quantizes it (co_act_q8_0),
// then co_mm_q4_0/co_mm_q8_0.
func (b *Backend) cpuOrderMatMulQ(dst, x *mat, w *weight) {
	e := b.exact
	if x.rows > maxGridY {
		backend.ShapeFail("MatMul", "%d rows exceed the %d a CPU-order launch takes", x.rows, maxGridY)
	}
	defer b.enter("MatMul")()
	n := x.rows * x.cols
	blocks := n / qk
	scalesAt := (n + 15) &^ 15
	b.cpuOrderActScratch(uintptr(scalesAt + 4*blocks))
	q, d := e.act, e.act+uint64(scalesAt)
	b.args.reset().ptr(x.ptr).ptr(q).ptr(d).i32(blocks)
	b.launchKeep("MatMul", e.actQ8, grid1(blocks, coVecRows), dim3{coVecRows * 32, 1, 1})
	fn := e.mmQ4_0
	if w.gpu == gpuQ8_0 {
		fn = e.mmQ8_0
	}
	b.args.reset().ptr(w.ptr).i64(w.rowBytes).i32(w.rows).i32(w.cols).ptr(q).ptr(d).ptr(dst.ptr)
	b.launchKeep("MatMul", fn, dim3{uint32((w.rows + coVecRows - 1) / coVecRows), uint32(x.rows), 1}, dim3{coVecRows * 32, 1, 1})
}

// cpuOrderActScratch makes the quantized-activation scratch at least need
// bytes long (it only grows, keeping its address between products of the
// same size, so that decode steps repeat as graphs).
func (b *Backend) cpuOrderActScratch(need uintptr) {
	e := b.exact
	if need > e.actSize {
		b.must("MatMul", b.free(e.act))
		p, err := b.alloc(need)
		b.must("MatMul", err)
		e.act, e.actSize = p, need
	}
}

// cpuOrderMatMulK computes dst = x·wᵀ for Q4_K and Q6_K weights in the
// CPU's order: x quantized to Q8_K as the CPU quantizes it (co_act_q8_k:
// int8 values, a float scale per 256 values, the sums of 16), then
// co_mm_q4_k or co_mm_q6_k. Q6_K has one order whatever the token count
// (kernels.dotQ6_K). Q4_K's depends on it (kernels.MatMulRows, with a
// batch kernel): a product of n tokens — each sequence run its own
// product, as the CPU backend multiplies the runs separately — gives its
// first n - n%4 tokens ggml's gemm order when n >= 4 (dotQ4_KBatch) and
// the others the gemv order (dotQ4_K); q4KGemmTokens lists which.
func (b *Backend) cpuOrderMatMulK(dst, x *mat, w *weight) {
	e := b.exact
	if x.rows > maxGridY {
		backend.ShapeFail("MatMul", "%d rows exceed the %d a CPU-order launch takes", x.rows, maxGridY)
	}
	var gemm []int32
	if w.gpu == gpuQ4_K {
		if gemm = q4KGemmTokens(e.host[:0], x.rows, e.runs); gemm != nil {
			e.host = gemm
		}
	}
	defer b.enter("MatMul")()
	n := x.rows * x.cols
	blocks := n / qkK
	scalesAt := (n + 15) &^ 15
	sumsAt := scalesAt + 4*blocks
	b.cpuOrderActScratch(uintptr(sumsAt + 4*(n/16)))
	q, d, sums := e.act, e.act+uint64(scalesAt), e.act+uint64(sumsAt)
	b.args.reset().ptr(x.ptr).ptr(q).ptr(d).ptr(sums).i32(blocks)
	b.launchKeep("MatMul", e.actQ8K, grid1(blocks, coVecRows), dim3{coVecRows * 32, 1, 1})
	g := dim3{uint32((w.rows + coVecRows - 1) / coVecRows), uint32(x.rows), 1}
	b.args.reset().ptr(w.ptr).i64(w.rowBytes).i32(w.rows).i32(w.cols).ptr(q).ptr(d).ptr(sums).ptr(dst.ptr)
	fn := e.mmQ6_K
	if w.gpu == gpuQ4_K {
		fn = e.mmQ4_K
		var toks uint64
		if gemm != nil {
			toks = b.uploadOwn("MatMul", &e.gemmToks, gemm)
		}
		b.args.ptr(toks)
	}
	b.launchKeep("MatMul", fn, g, dim3{coVecRows * 32, 1, 1})
}

// q4KGemmTokens returns, appended to buf, one flag per token of a Q4_K
// product of ntok tokens: 1 where kernels.MatMulRows takes the batch
// kernel's (gemm) order, 0 where Dot's (gemv). runs (SetSequenceRuns;
// more than one entry: runs of consecutive tokens multiplied separately,
// as the CPU backend's runsFor) each take their first n - n%4 tokens in
// the gemm order when n >= 4. It returns nil when every token takes the
// gemv order, and panics with a ShapeError when the runs do not add up to
// ntok.
func q4KGemmTokens(buf []int32, ntok int, runs []int) []int32 {
	if len(runs) <= 1 {
		runs = []int{ntok}
	} else {
		total := 0
		for _, n := range runs {
			total += n
		}
		if total != ntok {
			backend.ShapeFail("MatMul", "sequence runs of %d rows for a product of %d rows", total, ntok)
		}
	}
	anyGemm := false
	for _, n := range runs {
		batch := 0
		if n >= 4 {
			batch = n &^ 3
			anyGemm = true
		}
		for i := range n {
			flag := int32(0)
			if i < batch {
				flag = 1
			}
			buf = append(buf, flag)
		}
	}
	if !anyGemm {
		return nil
	}
	return buf
}

// cpuOrderRMSNorm is RMSNorm in the CPU's order.
func (b *Backend) cpuOrderRMSNorm(dst, x *mat, w *weight, eps float32) {
	defer b.enter("RMSNorm")()
	b.args.reset().ptr(x.ptr).ptr(w.ptr).ptr(dst.ptr).i32(x.cols).f32(eps)
	b.launch("RMSNorm", b.exact.rmsNorm, dim3{uint32(x.rows), 1, 1}, dim3{coRowThreads, 1, 1})
}

// cpuOrderSwiGLU is SwiGLU in the CPU's order (row by row: a row's values
// past its last whole group of 16 take the scalar exponential).
func (b *Backend) cpuOrderSwiGLU(dst, g, u *mat) {
	n := g.rows * g.cols
	if n == 0 {
		return
	}
	defer b.enter("SwiGLU")()
	b.args.reset().ptr(g.ptr).ptr(u.ptr).ptr(dst.ptr).i32(n).i32(g.cols)
	b.launch("SwiGLU", b.exact.swiglu, grid1(n, coRowThreads), dim3{coRowThreads, 1, 1})
}

// cpuOrderRoPE is RoPE with the CPU's cosines and sines, computed here by
// the CPU backend's own functions and sent with the launch.
func (b *Backend) cpuOrderRoPE(x *mat, pos []int32, p backend.RoPEParams) {
	e := b.exact
	defer b.enter("RoPE")()
	n := len(pos) * p.Dims
	angles := make([]float32, n)
	cpu.RoPEAngles(angles, pos, p)
	e.host = slices.Grow(e.host[:0], n)[:n]
	for i, v := range angles {
		e.host[i] = int32(math.Float32bits(v))
	}
	tab := b.uploadOwn("RoPE", &e.angles, e.host)
	b.args.reset().ptr(x.ptr).ptr(tab).i32(p.Heads).i32(p.HeadDim).i32(p.Dims).flag(p.NeoX)
	b.launch("RoPE", e.rope, dim3{uint32(x.rows), 1, 1}, dim3{coRowThreads, 1, 1})
}

// cpuOrderAttention is Attention in the CPU's order. A row takes
// tinyBLAS's orders (F16 cache keys, and the weighted sum of values in 16
// lanes) when its slot has two or more rows in the batch, ggml_vec_dot's
// otherwise, as the CPU backend's attnTask.
func (b *Backend) cpuOrderAttention(dst, q *mat, c *kvCache, layer int, bt backend.Batch, p backend.AttnParams, scores, probs *mat, probeCols int, maxPos int32) {
	e := b.exact
	cfg := c.cfg
	if p.HeadDim > coAttnMaxHeadDim {
		backend.ShapeFail("Attention", "head size %d is over the %d the CPU-order kernel takes", p.HeadDim, coAttnMaxHeadDim)
	}
	defer b.enter("Attention")()
	perSlot := make([]int32, cfg.Slots)
	for _, s := range bt.Slot {
		perSlot[s]++
	}
	e.host = e.host[:0]
	for _, s := range bt.Slot {
		tiled := int32(0)
		if perSlot[s] >= 2 {
			tiled = 1
		}
		e.host = append(e.host, tiled)
	}
	tiled := b.uploadOwn("Attention", &e.tiled, e.host)
	slots, pos := b.upload("Attention", &b.slots, bt.Slot), b.upload("Attention", &b.pos, bt.Pos)
	// Scratch per (row, head): the scores of positions 0..n-1, then their
	// groups' sums of 16. n is the cache's context where that stays small
	// (always for decode), so that the launch's arguments do not change
	// from one decode step to the next and the steps replay as graphs;
	// else the batch's last position.
	stride := func(n int) (int, int) {
		groupOff := (n + 3) &^ 3
		return groupOff + ((n+15)/16+3)&^3, groupOff
	}
	st, groupOff := stride(cfg.Ctx)
	if uintptr(q.rows)*uintptr(p.Heads)*uintptr(st)*4 > coAttnScratchMax {
		st, groupOff = stride(int(maxPos) + 1)
	}
	need := uintptr(q.rows) * uintptr(p.Heads) * uintptr(st) * 4
	if need > e.scratchSize {
		b.must("Attention", b.free(e.scratch))
		ptr, err := b.alloc(need)
		b.must("Attention", err)
		e.scratch, e.scratchSize = ptr, need
	}
	b.args.reset().ptr(q.ptr).ptr(dst.ptr).ptr(c.k).ptr(c.v).ptr(slots).ptr(pos).ptr(tiled).
		i32(p.Heads).i32(p.KVHeads).i32(p.HeadDim).i32(cfg.Layers).i32(cfg.Ctx).i32(layer).f32(p.Scale).flag(!cfg.F32).
		optMat(scores).optMat(probs).i32(probeCols).ptr(e.scratch).i64(st).i32(groupOff)
	b.launch("Attention", e.attention, dim3{uint32(p.Heads), uint32(q.rows), 1}, dim3{coAttnThreads, 1, 1})
}

// CPUOrderTypes lists the weight types whose products CPU-order mode
// computes in the CPU's order, bit for bit; the others keep the normal
// kernels in that mode.
func CPUOrderTypes() []tensor.Type {
	return []tensor.Type{tensor.F32, tensor.F16, tensor.Q4_0, tensor.Q8_0, tensor.Q4_K, tensor.Q6_K}
}
