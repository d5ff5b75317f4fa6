package cuda

import (
	"math"
	"slices"
	"strings"
	"testing"

	"llamago/backend"
)

// The queue's graph cache is keyed by the launches themselves: a graph
// may be replayed only for a queue equal launch for launch. These tests
// need no GPU.

func rec(fn uintptr, grid uint32, vals ...uint64) launchRec {
	r := launchRec{fn: fn, grid: dim3{grid, 1, 1}, block: dim3{128, 1, 1}, n: len(vals)}
	copy(r.vals[:], vals)
	return r
}

func TestHashRecsSeesEveryField(t *testing.T) {
	base := []launchRec{rec(1, 4, 10, 20), rec(2, 8, 30)}
	h := hashRecs(base)
	changed := map[string]func([]launchRec){
		"function":      func(r []launchRec) { r[1].fn = 3 },
		"grid":          func(r []launchRec) { r[0].grid.x = 5 },
		"block":         func(r []launchRec) { r[1].block.y = 2 },
		"argument":      func(r []launchRec) { r[0].vals[1] = 21 },
		"argument list": func(r []launchRec) { r[1].n = 2 },
		"order":         func(r []launchRec) { r[0], r[1] = r[1], r[0] },
	}
	for name, change := range changed {
		t.Run(name, func(t *testing.T) {
			r := append([]launchRec(nil), base...)
			change(r)
			if hashRecs(r) == h {
				t.Errorf("same hash after changing the %s", name)
			}
		})
	}
	if hashRecs(append([]launchRec(nil), base...)) != h {
		t.Error("equal queues hash differently")
	}
}

func TestFindGraphComparesLaunches(t *testing.T) {
	a := []launchRec{rec(1, 4, 10), rec(2, 8, 30)}
	b := []launchRec{rec(1, 4, 10), rec(2, 8, 31)}
	be := &Backend{graphCache: []*cachedGraph{{recs: a, hash: 7}}}
	if be.findGraph(7, a) == nil {
		t.Error("the cached queue is not found")
	}
	// A hash collision must not replay another queue's graph.
	if be.findGraph(7, b) != nil {
		t.Error("a different queue with the same hash found the graph")
	}
	if be.findGraph(8, a) != nil {
		t.Error("found under another hash")
	}
}

func TestOverlaps(t *testing.T) {
	m := func(ptr uint64, rows, cols int) *mat { return &mat{rows: rows, cols: cols, ptr: ptr} }
	cases := []struct {
		name string
		a, b *mat
		want bool
	}{
		{"same", m(1000, 1, 8), m(1000, 1, 8), true},
		{"view of fewer rows", m(1000, 4, 8), m(1000, 1, 8), true},
		{"adjacent", m(1000, 1, 8), m(1032, 1, 8), false},
		{"one float overlapping", m(1000, 1, 8), m(1028, 1, 8), true},
		{"far apart", m(1000, 2, 8), m(9000, 2, 8), false},
	}
	for _, c := range cases {
		if got := overlaps(c.a, c.b); got != c.want {
			t.Errorf("%s: overlaps = %v, want %v", c.name, got, c.want)
		}
		if got := overlaps(c.b, c.a); got != c.want {
			t.Errorf("%s (swapped): overlaps = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestActKindOf(t *testing.T) {
	want := map[int]int{gpuF32: actNone, gpuF16: actF16, gpuQ4_0: actQ8_0, gpuQ8_0: actQ8_0, gpuQ4_K: actQ8_K, gpuQ6_K: actQ8_K}
	for gpu := range numGPUTypes {
		if got := actKindOf(gpu); got != want[gpu] {
			t.Errorf("actKindOf(%d) = %d, want %d", gpu, got, want[gpu])
		}
	}
	// The formats of the products that take activations in the weights'
	// own number format: the same rounding as actKindOf, kept as int8
	// values and scales (F16 as halves); none for F32.
	wantInt := map[int]int{gpuF32: actNone, gpuF16: actF16Bits, gpuQ4_0: actQ8_0Int, gpuQ8_0: actQ8_0Int, gpuQ4_K: actQ8_KInt, gpuQ6_K: actQ8_KInt}
	for gpu := range numGPUTypes {
		if got := actIntKindOf(gpu); got != wantInt[gpu] {
			t.Errorf("actIntKindOf(%d) = %d, want %d", gpu, got, wantInt[gpu])
		}
	}
}

func TestMergeProduct(t *testing.T) {
	const fn, in, cols = 5, 4096, 2048
	b := &Backend{}
	w := func(rows int) *weight {
		return &weight{rows: rows, cols: cols, rowBytes: 1152, ptr: uint64(rows) << 20}
	}
	queue := func() {
		r := launchRec{fn: fn, grid: dim3{512, 1, 1}, n: mvqArgs + 4*mvqSets}
		r.vals[0], r.vals[1] = in, cols
		r.vals[mvqArgs], r.vals[mvqArgs+1], r.vals[mvqArgs+2], r.vals[mvqArgs+3] = 1<<30, 1152, 2048, 1000
		b.pending = []launchRec{r}
	}
	queue()
	if !b.mergeProduct(fn, in, w(256), &mat{rows: 1, cols: 256, ptr: 1 << 20}) {
		t.Fatal("k did not merge into q's launch")
	}
	if !b.mergeProduct(fn, in, w(256), &mat{rows: 1, cols: 256, ptr: 2 << 20}) {
		t.Fatal("v did not merge")
	}
	if got := b.pending[0].grid.x; got != (2048+256+256)/mvRows {
		t.Errorf("grid %d blocks for 2560 rows", got)
	}
	if b.mergeProduct(fn, in, w(256), &mat{rows: 1, cols: 256, ptr: 3 << 20}) {
		t.Error("a fourth matrix merged into three sets")
	}
	// F16 products take two warps a row (mvqSplit): twice the blocks.
	queue()
	f16 := w(256)
	f16.gpu = gpuF16
	if !b.mergeProduct(fn, in, f16, &mat{rows: 1, cols: 256, ptr: 1 << 20}) || b.pending[0].grid.x != 2*(2048+256)/mvRows {
		t.Errorf("F16: grid %d blocks for 2304 rows of two warps", b.pending[0].grid.x)
	}
	refused := []struct {
		name string
		fn   uintptr
		in   uint64
		w    *weight
		dst  *mat
	}{
		{"another kernel", fn + 1, in, w(256), &mat{rows: 1, cols: 256, ptr: 1 << 20}},
		{"another input", fn, in + 64, w(256), &mat{rows: 1, cols: 256, ptr: 1 << 20}},
		{"overlapping output", fn, in, w(256), &mat{rows: 1, cols: 256, ptr: 1000 + 4}},
	}
	for _, c := range refused {
		queue()
		if b.mergeProduct(c.fn, c.in, c.w, c.dst) {
			t.Errorf("%s: merged", c.name)
		}
	}
}

func TestMergeTiles(t *testing.T) {
	const fn, in, cols, ntok = 5, 4096, 2048, 100
	b := &Backend{}
	w := func(rows int) *weight {
		return &weight{rows: rows, cols: cols, rowBytes: 1152, ptr: uint64(rows) << 20}
	}
	queue := func() {
		r := launchRec{fn: fn, grid: dim3{2048 / mmqTile, 2, 1}, n: mmqArgs + 4*mvqSets}
		r.vals[0], r.vals[1], r.vals[2] = in, cols, ntok
		r.vals[mmqArgs], r.vals[mmqArgs+1], r.vals[mmqArgs+2], r.vals[mmqArgs+3] = 1<<30, 1152, 2048, 1<<40
		b.pending = []launchRec{r}
	}
	queue()
	if !b.mergeTiles(fn, in, w(256), &mat{rows: ntok, cols: 256, ptr: 1 << 41}, ntok) {
		t.Fatal("k did not merge into q's launch")
	}
	if !b.mergeTiles(fn, in, w(200), &mat{rows: ntok, cols: 200, ptr: 1 << 42}, ntok) {
		t.Fatal("v did not merge")
	}
	r := b.pending[0]
	if want := (dim3{2048/mmqTile + 4 + 4, 2, 1}); r.grid != want {
		t.Errorf("grid %v, want %v (each matrix's row tiles, 200 rows in 4)", r.grid, want)
	}
	if a := r.vals[mmqArgs+8:]; a[0] != 200<<20 || a[1] != 1152 || a[2] != 200 || a[3] != 1<<42 {
		t.Errorf("third set %v", a[:4])
	}
	if b.mergeTiles(fn, in, w(256), &mat{rows: ntok, cols: 256, ptr: 1 << 43}, ntok) {
		t.Error("a fourth matrix merged into three sets")
	}
	refused := []struct {
		name string
		fn   uintptr
		in   uint64
		ntok int
		dst  uint64
	}{
		{"another kernel", fn + 1, in, ntok, 1 << 41},
		{"another input", fn, in + 64, ntok, 1 << 41},
		{"another token count", fn, in, ntok - 1, 1 << 41},
		// q's output is 100 rows of 2048 floats from 1<<40.
		{"overlapping output", fn, in, ntok, 1<<40 + 2048*4*99},
	}
	for _, c := range refused {
		queue()
		if b.mergeTiles(c.fn, c.in, w(256), &mat{rows: c.ntok, cols: 256, ptr: c.dst}, c.ntok) {
			t.Errorf("%s: merged", c.name)
		}
	}
}

func TestAttentionTiles(t *testing.T) {
	long := make([]int32, 130)
	for i := range long {
		long[i] = 3
	}
	for _, tc := range []struct {
		name  string
		slots []int32
		want  []int32
	}{
		{"empty", nil, nil},
		{"one row", []int32{0}, []int32{0, 1}},
		{"two slots", []int32{1, 1, 1, 0, 0}, []int32{0, 3, 3, 2}},
		{"alternating", []int32{0, 1, 0}, []int32{0, 1, 1, 1, 2, 1}},
		{"cut every faRows", long, []int32{0, faRows, faRows, faRows, 2 * faRows, 130 - 2*faRows}},
	} {
		if got := attentionTiles(nil, tc.slots); !slices.Equal(got, tc.want) {
			t.Errorf("%s: attentionTiles = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestMergeRoPEAndStoreKV checks the queue-time fusions of a decode
// layer's k rotation into q's and of the cache store into the rotation.
func TestMergeRoPEAndStoreKV(t *testing.T) {
	const ropeFn, pos, rows = 7, 1 << 40, 3
	p := backend.RoPEParams{Heads: 4, HeadDim: 64, Dims: 64, FreqBase: 10000, FreqScale: 1}
	q := &mat{rows: rows, cols: 32 * 64, ptr: 1 << 30}
	k := &mat{rows: rows, cols: 4 * 64, ptr: 2 << 30}
	v := &mat{rows: rows, cols: 4 * 64, ptr: 3 << 30}
	cache := &kvCache{cfg: backend.KVConfig{Slots: 1, Layers: 2, Ctx: 64, KVDim: 256}, k: 4 << 30, v: 5 << 30}
	b := &Backend{}
	b.k.rope = ropeFn
	// args fills b.args as RoPE does for x with heads heads.
	args := func(x *mat, heads, dims int, posPtr uint64) {
		b.args.reset().ptr(x.ptr).ptr(posPtr).i32(heads).i32(64).i32(dims).f32(0.5).f32(1).flag(false).
			ptr(0).i32(0).ptr(0).ptr(0).ptr(0).ptr(0).ptr(0).i32(0).i32(0).i32(0).i32(0).i32(0)
	}
	// queue queues q's rotation (32 heads) as the last launch.
	queue := func() {
		args(q, 32, 64, pos)
		r := launchRec{fn: ropeFn, grid: dim3{rows, 1, 1}, block: dim3{ropeThreads(32, 64), 1, 1}, n: b.args.n}
		copy(r.vals[:], b.args.vals[:b.args.n])
		b.pending = []launchRec{r}
	}

	queue()
	args(k, 4, 64, pos)
	if !b.mergeRoPE(k, p) {
		t.Fatal("k's rotation did not merge into q's")
	}
	r := &b.pending[0]
	if r.vals[ropeX2] != k.ptr || r.vals[ropeX2+1] != 4 || r.block.x != ropeThreads(36, 64) {
		t.Errorf("merged launch: x2 %#x, heads2 %d, %d threads", r.vals[ropeX2], r.vals[ropeX2+1], r.block.x)
	}
	args(k, 4, 64, pos)
	if b.mergeRoPE(k, p) {
		t.Error("a third rotation merged")
	}
	if !b.mergeStoreKV(cache, 1, k, v, 9, pos) {
		t.Fatal("the store did not merge into the rotation of k")
	}
	a := r.vals[ropeV:]
	if a[0] != v.ptr || a[1] != k.ptr || a[2] != cache.k || a[3] != cache.v || a[4] != 9 || a[5] != 256 || a[6] != 2 || a[7] != 64 || a[8] != 1 || a[9] != 1 {
		t.Errorf("store arguments %v", a[:10])
	}
	if b.mergeStoreKV(cache, 1, k, v, 9, pos) {
		t.Error("a second store merged")
	}

	refusedRoPE := []struct {
		name  string
		x     *mat
		dims  int
		pos   uint64
		other bool // the last launch is another kernel
	}{
		{"other positions", k, 64, pos + 256, false},
		{"other rotated dims", k, 32, pos, false},
		{"other rows", &mat{rows: rows + 1, cols: 256, ptr: 2 << 30}, 64, pos, false},
		{"overlapping q", &mat{rows: rows, cols: 256, ptr: 1<<30 + 64}, 64, pos, false},
		{"after another kernel", k, 64, pos, true},
	}
	for _, c := range refusedRoPE {
		queue()
		if c.other {
			b.pending[0].fn = ropeFn + 1
		}
		args(c.x, 4, c.dims, c.pos)
		if b.mergeRoPE(c.x, p) {
			t.Errorf("%s: merged", c.name)
		}
	}

	// The store merges only into a rotation of k itself.
	queue()
	if b.mergeStoreKV(cache, 0, k, v, 9, pos) {
		t.Error("the store merged into q's rotation alone")
	}
	queue()
	b.pending[0].vals[0] = k.ptr // a rotation of k alone
	if !b.mergeStoreKV(cache, 0, k, v, 9, pos) {
		t.Error("the store did not merge into k's rotation alone")
	}
	queue()
	b.pending[0].vals[0] = k.ptr
	if b.mergeStoreKV(cache, 0, k, v, 9, pos+256) {
		t.Error("the store merged with other positions")
	}
}

// TestFuseActIntoAttention checks that the o projection's Q8_0 rounding of
// one decode row merges into the launch that wrote the row — the attention
// kernel, or split-K attention's combine launch — its F16 rounding into
// the attention kernel, and nothing else does.
func TestFuseActIntoAttention(t *testing.T) {
	const out = 1 << 36
	x := &mat{rows: 1, cols: 32 * 64, ptr: 1 << 30}
	for _, k := range []struct {
		name string
		fn   uintptr
		set  func(b *Backend, fn uintptr)
		// where the launch's arguments hold the row, the head count, the
		// head size and the rounding's output
		row, heads, headDim, act int
	}{
		{"attention", 11, func(b *Backend, fn uintptr) { b.k.attention = fn }, 1, 6, 8, attnAct},
		{"attention_combine", 12, func(b *Backend, fn uintptr) { b.k.attentionCombine = fn }, 0, 2, 3, attnCombineAct},
		{"attention_dec64", 13, func(b *Backend, fn uintptr) { b.k.attention, b.k.attentionDec64 = 14, fn }, 1, 6, 8, attnAct},
	} {
		b := &Backend{}
		k.set(b, k.fn)
		queue := func(rows uint32, headDim uint64) {
			r := launchRec{fn: k.fn, grid: dim3{32, rows, 1}, n: max(k.act, attnActKind) + 1}
			r.vals[k.row], r.vals[k.heads], r.vals[k.headDim] = x.ptr, 32, headDim
			b.pending = []launchRec{r}
		}
		queue(1, 64)
		if !b.fuseAct(x, out, actQ8_0Int) || b.pending[0].vals[k.act] != out {
			t.Fatalf("%s: the rounding did not merge: act %#x", k.name, b.pending[0].vals[k.act])
		}
		attn := k.name != "attention_combine"
		if attn && b.pending[0].vals[attnActKind] != actQ8_0Int {
			t.Errorf("%s: rounding kind %d, want %d", k.name, b.pending[0].vals[attnActKind], actQ8_0Int)
		}
		// F16 halves (an F16 o projection): the attention kernel only,
		// any head size.
		queue(1, 48)
		x48 := &mat{rows: 1, cols: 32 * 48, ptr: x.ptr}
		if got, want := b.fuseAct(x48, out, actF16Bits), attn; got != want {
			t.Errorf("%s: F16 rounding merged %v, want %v", k.name, got, want)
		} else if got && (b.pending[0].vals[attnAct] != out || b.pending[0].vals[attnActKind] != actF16Bits) {
			t.Errorf("%s: F16 rounding: act %#x kind %d", k.name, b.pending[0].vals[attnAct], b.pending[0].vals[attnActKind])
		}
		for _, c := range []struct {
			name    string
			kind    int
			rows    uint32
			headDim uint64
			x       *mat
		}{
			{"Q8_K rounding (blocks of 256 span heads)", actQ8_KInt, 1, 64, x},
			{"float rounding", actQ8_0, 1, 64, x},
			{"two rows", actQ8_0Int, 2, 64, x},
			{"heads of 48 (not whole blocks)", actQ8_0Int, 1, 48, &mat{rows: 1, cols: 32 * 48, ptr: x.ptr}},
			{"another matrix", actQ8_0Int, 1, 64, &mat{rows: 1, cols: 32 * 64, ptr: x.ptr + 4}},
		} {
			queue(c.rows, c.headDim)
			if b.fuseAct(c.x, out, c.kind) {
				t.Errorf("%s: %s: merged", k.name, c.name)
			}
		}
	}
}

// TestFuseSwiGLU checks the queue-time fusion of a one-token SwiGLU into
// the gate/up product before it, and of the down product's rounding into
// that launch.
func TestFuseSwiGLU(t *testing.T) {
	const mvqFn, gluFn, xq, cols, nff = 21, 22, 1 << 40, 2048, 5632
	gate := &mat{rows: 1, cols: nff, ptr: 1 << 30}
	up := &mat{rows: 1, cols: nff, ptr: 2 << 30}
	b := &Backend{counters: 1 << 44, gluTail: true}
	b.k.mvq[gpuQ4_0], b.k.mvqGLU[gpuQ4_0] = mvqFn, gluFn
	// queue queues the gate/up product: sets (W, rowBytes, rows, Y).
	queue := func(fn uintptr, sets ...[4]uint64) {
		r := launchRec{fn: fn, grid: dim3{2 * nff / mvRows, 1, 1}, n: mvqArgs + 4*mvqSets}
		r.vals[0], r.vals[1] = xq, cols
		for k, s := range sets {
			copy(r.vals[mvqArgs+4*k:], s[:])
		}
		b.pending = []launchRec{r}
	}
	gateSet := [4]uint64{1 << 20, 1152, nff, gate.ptr}
	upSet := [4]uint64{2 << 20, 1152, nff, up.ptr}

	queue(mvqFn, gateSet, upSet)
	if !b.fuseSwiGLU(gate, gate, up) {
		t.Fatal("the SwiGLU did not fuse")
	}
	r := &b.pending[0]
	want := []uint64{xq, cols, 1 << 20, 1152, 2 << 20, 1152, nff, gate.ptr, up.ptr, gate.ptr, 0, actNone, 1 << 44}
	if wantGrid := uint32(nff * mvqSplit(gpuQ4_0) / mvRows); r.fn != gluFn || !slices.Equal(r.vals[:r.n], want) || r.grid.x != wantGrid {
		t.Errorf("fused launch fn %d grid %d args %v, want fn %d grid %d args %v", r.fn, r.grid.x, r.vals[:r.n], gluFn, wantGrid, want)
	}
	// The down product's rounding: into another buffer than the input.
	if b.fuseAct(gate, xq, actQ8_0Int) {
		t.Error("the rounding fused into the buffer mvq_glu reads")
	}
	if !b.fuseAct(gate, 3<<40, actQ8_0Int) || r.vals[gluAct] != 3<<40 || r.vals[gluAct+1] != actQ8_0Int {
		t.Errorf("the rounding did not fuse: act %#x kind %d", r.vals[gluAct], r.vals[gluAct+1])
	}
	// Without gluTail (the default; $LLAMAGO_CUDA_GLU_TAIL=1 sets it): Q8
	// blocks round in a launch of their own, F16 halves still in mvq_glu.
	b.gluTail = false
	r.vals[gluAct], r.vals[gluAct+1] = 0, actNone
	if b.fuseAct(gate, 3<<40, actQ8_0Int) || b.fuseAct(gate, 3<<40, actQ8_KInt) {
		t.Error("a Q8 rounding fused into mvq_glu with its tail off")
	}
	if !b.fuseAct(gate, 3<<40, actF16Bits) || r.vals[gluAct+1] != actF16Bits {
		t.Error("F16 rounding did not fuse with mvq_glu's tail off")
	}
	b.gluTail = true

	other := &mat{rows: 1, cols: nff, ptr: 4 << 30}
	for _, c := range []struct {
		name          string
		fn            uintptr
		sets          [][4]uint64
		dst, gate, up *mat
	}{
		{"three matrices", mvqFn, [][4]uint64{gateSet, upSet, {3 << 20, 1152, 256, 5 << 30}}, gate, gate, up},
		{"one matrix", mvqFn, [][4]uint64{gateSet}, gate, gate, up},
		{"gate and up swapped", mvqFn, [][4]uint64{upSet, gateSet}, gate, gate, up},
		{"another kernel", mvqFn + 5, [][4]uint64{gateSet, upSet}, gate, gate, up},
		{"two rows", mvqFn, [][4]uint64{gateSet, upSet}, &mat{rows: 2, cols: nff / 2, ptr: gate.ptr}, &mat{rows: 2, cols: nff / 2, ptr: gate.ptr}, &mat{rows: 2, cols: nff / 2, ptr: up.ptr}},
		{"dst overlapping gate shifted", mvqFn, [][4]uint64{gateSet, upSet}, &mat{rows: 1, cols: nff, ptr: gate.ptr + 4}, gate, up},
	} {
		queue(c.fn, c.sets...)
		if b.fuseSwiGLU(c.dst, c.gate, c.up) {
			t.Errorf("%s: fused", c.name)
		}
	}
	queue(mvqFn, gateSet, upSet)
	if !b.fuseSwiGLU(other, gate, up) {
		t.Error("SwiGLU into a third matrix did not fuse")
	}
	// F16: two warps a row (mvqSplit), so twice the blocks.
	const mvqF16, gluF16 = 31, 32
	b.k.mvq[gpuF16], b.k.mvqGLU[gpuF16] = mvqF16, gluF16
	queue(mvqF16, gateSet, upSet)
	if !b.fuseSwiGLU(gate, gate, up) || b.pending[0].fn != gluF16 || b.pending[0].grid.x != 2*nff/mvRows {
		t.Errorf("F16: fn %d grid %d, want fn %d grid %d", b.pending[0].fn, b.pending[0].grid.x, gluF16, 2*nff/mvRows)
	}
}

func TestGLURounds(t *testing.T) {
	for _, c := range []struct {
		kind, n int
		want    bool
	}{
		{actF16Bits, 100, true},
		{actQ8_0Int, 5632, true},
		{actQ8_0Int, 5632 + 16, false},
		{actQ8_KInt, 5632, true},
		{actQ8_KInt, 5632 + 32, false},
		{actQ8_0Int, 32 * (gluCounters + 1), false},
		{actQ8_0, 5632, false},
		{actNone, 5632, false},
	} {
		if got := gluRounds(c.kind, c.n); got != c.want {
			t.Errorf("gluRounds(%d, %d) = %v, want %v", c.kind, c.n, got, c.want)
		}
	}
}

// TestFuseRoPEIntoAttention checks that a decode layer's rope launch (q's
// and k's rotation and the cache store, merged) moves into the attention
// launch after it, with the rotation's arguments, and only then.
func TestFuseRoPEIntoAttention(t *testing.T) {
	const ropeFn, pos, slots = 7, 1 << 40, 9
	p := backend.AttnParams{Heads: 32, KVHeads: 4, HeadDim: 64, Scale: 0.125}
	q := &mat{rows: 1, cols: 32 * 64, ptr: 1 << 30}
	k := &mat{rows: 1, cols: 4 * 64, ptr: 2 << 30}
	v := &mat{rows: 1, cols: 4 * 64, ptr: 3 << 30}
	cache := &kvCache{cfg: backend.KVConfig{Slots: 1, Layers: 2, Ctx: 64, KVDim: 256}, k: 4 << 30, v: 5 << 30}
	b := &Backend{counters: 1 << 44}
	b.k.rope = ropeFn
	rp := backend.RoPEParams{Heads: 4, HeadDim: 64, Dims: 64, FreqBase: 10000, FreqScale: 1}
	// queueHeads queues the decode layer's merged rope launch as RoPE(q),
	// RoPE(k) and StoreKV do, for heads of headDim values; queue for 64.
	queueHeads := func(layer int, store bool, headDim int) {
		b.args.reset().ptr(q.ptr).ptr(pos).i32(32).i32(headDim).i32(headDim).f32(0.5).f32(1).flag(true).
			ptr(0).i32(0).ptr(0).ptr(0).ptr(0).ptr(0).ptr(0).i32(0).i32(0).i32(0).i32(0).i32(0)
		r := launchRec{fn: ropeFn, grid: dim3{1, 1, 1}, block: dim3{ropeThreads(32, headDim), 1, 1}, n: b.args.n}
		copy(r.vals[:], b.args.vals[:b.args.n])
		b.pending = []launchRec{r}
		b.args.reset().ptr(k.ptr).ptr(pos).i32(4).i32(headDim).i32(headDim).f32(0.5).f32(1).flag(true).
			ptr(0).i32(0).ptr(0).ptr(0).ptr(0).ptr(0).ptr(0).i32(0).i32(0).i32(0).i32(0).i32(0)
		krp := rp
		krp.HeadDim, krp.Dims = headDim, headDim
		if !b.mergeRoPE(k, krp) {
			t.Fatal("k's rotation did not merge")
		}
		if store && !b.mergeStoreKV(cache, layer, k, v, slots, pos) {
			t.Fatal("the store did not merge")
		}
	}
	queue := func(layer int, store bool) { queueHeads(layer, store, 64) }
	attnArgs := func() {
		b.args.reset()
		for range attnAct + 1 {
			b.args.ptr(0)
		}
	}
	queue(1, true)
	attnArgs()
	if !b.fuseRoPE(cache, 1, q, p, slots, pos) {
		t.Fatal("the rotation did not move into the attention launch")
	}
	if len(b.pending) != 0 {
		t.Errorf("%d launches left queued", len(b.pending))
	}
	want := []uint64{k.ptr, v.ptr, 64, uint64(math.Float32bits(0.5)), uint64(math.Float32bits(1)), 1, 1<<44 + gluCounters*4}
	if got := b.args.vals[attnAct+1 : b.args.n]; !slices.Equal(got, want) {
		t.Errorf("rotation arguments %v, want %v", got, want)
	}
	// Short heads fuse too (stories260K's are 8 values).
	for _, hd := range []int{32, 16, 8} {
		queueHeads(1, true, hd)
		attnArgs()
		ph := backend.AttnParams{Heads: 32, KVHeads: 4, HeadDim: hd, Scale: 0.125}
		if !b.fuseRoPE(cache, 1, q, ph, slots, pos) {
			t.Errorf("heads of %d values: not fused", hd)
		}
	}
	for _, c := range []struct {
		name  string
		layer int
		store bool
		q     *mat
		p     backend.AttnParams
		cache *kvCache
		slots uint64
	}{
		{"no store", 1, false, q, p, cache, slots},
		{"another layer", 0, true, q, p, cache, slots},
		{"another query", 1, true, &mat{rows: 1, cols: 32 * 64, ptr: 6 << 30}, p, cache, slots},
		{"two rows", 1, true, &mat{rows: 2, cols: 32 * 64, ptr: q.ptr}, p, cache, slots},
		{"other heads", 1, true, q, backend.AttnParams{Heads: 16, KVHeads: 4, HeadDim: 128}, cache, slots},
		{"another cache", 1, true, q, p, &kvCache{cfg: cache.cfg, k: 7 << 30, v: 8 << 30}, slots},
		{"other slots", 1, true, q, p, cache, slots + 4},
	} {
		queue(1, c.store)
		if c.name == "another layer" {
			queue(1, true)
		}
		attnArgs()
		if b.fuseRoPE(c.cache, c.layer, c.q, c.p, c.slots, pos) {
			t.Errorf("%s: fused", c.name)
		}
	}
}

// TestChunkLimits checks the lengths at which residual adds send a decode
// step's queue: firstChunkLaunches while the GPU is idle, then b.chunk,
// then chunkGrowth times the limit before, from the start again after
// the host waited.
func TestChunkLimits(t *testing.T) {
	for _, c := range []struct {
		chunk, growth int
		want          []int
	}{
		{16, 4, []int{firstChunkLaunches, 16, 64, 256, 1024}},
		{32, 1, []int{firstChunkLaunches, 32, 32, 32, 32}},
		{2, 2, []int{2, 2, 4, 8, 16}}, // the first chunk never longer than b.chunk
	} {
		b := &Backend{chunk: c.chunk, chunkGrowth: c.growth}
		for round := range 2 {
			b.waited()
			var got []int
			for range c.want {
				limit := b.chunkLimit()
				got = append(got, limit)
				b.chunkSent(b.idle, limit)
				b.idle = false // what flush does
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("chunk %d growth %d, round %d: limits %v, want %v", c.chunk, c.growth, round, got, c.want)
			}
		}
	}
}

// TestEnvCount checks the reading of the chunk settings from the
// environment: unset gives the default, a number under the least or no
// number an error naming the variable.
func TestEnvCount(t *testing.T) {
	const name = "LLAMAGO_CUDA_TEST_COUNT"
	for _, c := range []struct {
		value   string
		want    int
		wantErr bool
	}{
		{"", 16, false}, {"0", 0, false}, {"64", 64, false}, {"-1", 0, true}, {"x", 0, true}, {"4.5", 0, true},
	} {
		t.Setenv(name, c.value)
		got, err := envCount(name, 16, 0, "a count")
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("$%s=%q: %d, %v; want %d, error %v", name, c.value, got, err, c.want, c.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), name) {
			t.Errorf("$%s=%q: the error %q does not name the variable", name, c.value, err)
		}
	}
}

// TestFoldNormAndMergeAdd checks the queue-time decisions of the norm
// fold: the residual add merged into the F16 product before it, the
// one-row norm after it folded into the F16 product after it (mvqn_f16),
// the next products merged into that launch and a SwiGLU turning it into
// mvqn_glu_f16; and each refusal where the launches' buffers overlap in a
// way the fused kernels cannot take.
func TestFoldNormAndMergeAdd(t *testing.T) {
	const mvqF16, norm, mvqn, mvqnGLU, cols = 11, 12, 13, 14, 2048
	const xq, gamma, eps = 1 << 40, 1 << 41, 0x3727c5ac
	newBackend := func() *Backend {
		b := &Backend{normFold: true, mvqnBlocks: 264, mvqnGLUBlocks: 396, counters: 1 << 44}
		b.k.mvq[gpuF16], b.k.rmsNorm, b.k.mvqnF16, b.k.mvqnGLUF16 = mvqF16, norm, mvqn, mvqnGLU
		return b
	}
	f16 := func(rows, c int, ptr uint64) *weight {
		return &weight{rows: rows, cols: c, rowBytes: 2 * c, ptr: ptr, gpu: gpuF16}
	}
	row := func(c int, ptr uint64) *mat { return &mat{rows: 1, cols: c, ptr: ptr} }
	x, y, xn := row(cols, 1<<30), row(cols, 2<<30), row(cols, 3<<30)

	// queueProduct queues the o product y = a·woᵀ as MatMul does.
	queueProduct := func(b *Backend, sets ...[4]uint64) {
		r := launchRec{fn: mvqF16, grid: dim3{1024, 1, 1}, block: dim3{128, 1, 1}, n: mvqAdd + 2}
		r.vals[0], r.vals[1] = xq+1<<20, cols
		for k, s := range sets {
			copy(r.vals[mvqArgs+4*k:], s[:])
		}
		b.pending = append(b.pending, r)
	}
	oSet := [4]uint64{5 << 20, 2 * cols, cols, y.ptr}
	b := newBackend()
	queueProduct(b, oSet)
	if !b.mergeAdd(x, x, y) {
		t.Fatal("the residual add did not merge into the product")
	}
	if r := b.pending[0]; r.vals[mvqAdd] != x.ptr || r.vals[mvqAdd+1] != x.ptr {
		t.Errorf("add arguments %#x %#x, want x twice", r.vals[mvqAdd], r.vals[mvqAdd+1])
	}
	if b.mergeAdd(x, x, y) {
		t.Error("a second add merged into the same product")
	}
	for _, c := range []struct {
		name      string
		sets      [][4]uint64
		dst, a, c *mat
	}{
		{"two matrices", [][4]uint64{oSet, {6 << 20, 2 * cols, 256, 4 << 30}}, x, x, y},
		{"neither operand the product's", [][4]uint64{oSet}, x, x, row(cols, 4<<30)},
		{"the other operand overlapping the product's", [][4]uint64{oSet}, x, row(cols, y.ptr+8), y},
		{"dst overlapping an operand shifted", [][4]uint64{oSet}, row(cols, x.ptr+4), x, y},
		{"another length", [][4]uint64{oSet}, row(cols/2, x.ptr), row(cols/2, x.ptr), row(cols/2, y.ptr)},
	} {
		b := newBackend()
		queueProduct(b, c.sets...)
		if b.mergeAdd(c.dst, c.a, c.c) {
			t.Errorf("%s: the add merged", c.name)
		}
	}
	b = newBackend()
	b.normFold = false
	queueProduct(b, oSet)
	if b.mergeAdd(x, x, y) {
		t.Error("the add merged with the fold off")
	}

	// queueNorm queues xn = RMSNorm(x) rounded into in, as RMSNorm and
	// fuseAct do.
	queueNorm := func(b *Backend, x, dst *mat, addend uint64, in uint64) {
		b.pending = append(b.pending, rec(norm, 1, x.ptr, addend, 0, gamma, dst.ptr, uint64(x.cols), eps, in, actF16Bits))
	}
	b = newBackend()
	queueNorm(b, x, xn, 0, xq)
	q, k, v := row(cols, 6<<30), row(256, 7<<30), row(256, 8<<30)
	if !b.foldNorm(xq, f16(cols, cols, 1<<32), q) {
		t.Fatal("the norm did not fold into q's product")
	}
	if !b.mergeProduct(mvqF16, xq, f16(256, cols, 2<<32), k) || !b.mergeProduct(mvqF16, xq, f16(256, cols, 3<<32), v) {
		t.Fatal("k and v did not merge into the folded launch")
	}
	r := b.pending[0]
	want := []uint64{xq, cols, 1 << 32, 2 * cols, cols, q.ptr, 2 << 32, 2 * cols, 256, k.ptr, 3 << 32, 2 * cols, 256, v.ptr, 0, 0, x.ptr, gamma, xn.ptr, eps}
	// 2560 rows are 320 groups of mvqnPairs: as many blocks as the GPU holds.
	if len(b.pending) != 1 || r.fn != mvqn || !slices.Equal(r.vals[:r.n], want) || r.grid.x != 264 || r.block.x != normThreads {
		t.Errorf("%d launches; fn %d grid %d block %d args %v, want one of fn %d grid 264 block %d args %v",
			len(b.pending), r.fn, r.grid.x, r.block.x, r.vals[:r.n], mvqn, normThreads, want)
	}
	b = newBackend()
	queueNorm(b, x, xn, 0, xq)
	if !b.foldNorm(xq, f16(1000, cols, 1<<32), q) || b.pending[0].grid.x != 125 {
		t.Errorf("1000 rows: grid %d blocks, want 125", b.pending[0].grid.x)
	}
	// The output product: no more blocks than the GPU holds.
	b = newBackend()
	queueNorm(b, x, xn, 0, xq)
	if !b.foldNorm(xq, f16(32000, cols, 1<<32), row(32000, 6<<30)) || b.pending[0].grid.x != 264 {
		t.Errorf("32000 rows: grid %d blocks, want 264", b.pending[0].grid.x)
	}
	// Gate, up and SwiGLU.
	b = newBackend()
	queueNorm(b, x, xn, 0, xq)
	gate, up := row(5632, 9<<30), row(5632, 10<<30)
	if !b.foldNorm(xq, f16(5632, cols, 1<<32), gate) || !b.mergeProduct(mvqF16, xq, f16(5632, cols, 2<<32), up) || !b.fuseSwiGLU(gate, gate, up) {
		t.Fatal("gate, up and SwiGLU did not fold")
	}
	r = b.pending[0]
	wantGLU := []uint64{xq, cols, 1 << 32, 2 * cols, 2 << 32, 2 * cols, 5632, gate.ptr, up.ptr, gate.ptr, 0, actNone, 1 << 44, x.ptr, gamma, xn.ptr, eps}
	if r.fn != mvqnGLU || !slices.Equal(r.vals[:r.n], wantGLU) || r.grid.x != 396 || r.block.x != normThreads {
		t.Errorf("fn %d grid %d block %d args %v, want fn %d grid 396 block %d args %v", r.fn, r.grid.x, r.block.x, r.vals[:r.n], mvqnGLU, normThreads, wantGLU)
	}
	// The down product's F16 rounding goes into that launch, but not into
	// the buffer block 0 writes the norm's halves to.
	if b.fuseAct(gate, xq, actF16Bits) {
		t.Error("the down product's rounding fused into the norm's buffer")
	}
	if !b.fuseAct(gate, 11<<40, actF16Bits) || b.pending[0].vals[gluAct] != 11<<40 {
		t.Error("the down product's rounding did not fuse into the folded gate/up launch")
	}
	for _, c := range []struct {
		name   string
		w      *weight
		dst    *mat
		addend uint64
		in     uint64
		xn     *mat
		change func(b *Backend)
	}{
		{"a norm with an addend", f16(cols, cols, 1<<32), q, y.ptr, xq, xn, nil},
		{"another input", f16(cols, cols, 1<<32), q, 0, xq + 64, xn, nil},
		{"rows longer than the fold takes", f16(cols, mvqnMaxCols+8, 1<<32), row(cols, q.ptr), 0, xq, xn, nil},
		{"Q8_0 weights", &weight{rows: cols, cols: cols, rowBytes: 2176, ptr: 1 << 32, gpu: gpuQ8_0}, q, 0, xq, xn, nil},
		{"the product writing the norm's input", f16(cols, cols, 1<<32), row(cols, x.ptr+4), 0, xq, xn, nil},
		{"the product writing the norm's output", f16(cols, cols, 1<<32), xn, 0, xq, xn, nil},
		{"the norm in place", f16(cols, cols, 1<<32), q, 0, xq, x, nil},
		{"the fold off", f16(cols, cols, 1<<32), q, 0, xq, xn, func(b *Backend) { b.normFold = false }},
		{"no folded block fits", f16(cols, cols, 1<<32), q, 0, xq, xn, func(b *Backend) { b.mvqnBlocks = 0 }},
	} {
		b := newBackend()
		queueNorm(b, row(c.w.cols, x.ptr), row(c.w.cols, c.xn.ptr), c.addend, xq)
		if c.change != nil {
			c.change(b)
		}
		if b.foldNorm(c.in, c.w, c.dst) {
			t.Errorf("%s: the norm folded", c.name)
		}
	}
	// A matrix merged later may not write the norm's input either.
	b = newBackend()
	queueNorm(b, x, xn, 0, xq)
	b.foldNorm(xq, f16(cols, cols, 1<<32), q)
	if b.mergeProduct(mvqF16, xq, f16(256, cols, 2<<32), row(256, x.ptr)) {
		t.Error("a product writing the norm's input merged into the folded launch")
	}
}
