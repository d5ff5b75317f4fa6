package cuda

import "testing"

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
