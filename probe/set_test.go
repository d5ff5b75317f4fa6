package probe

import (
	"errors"
	"strings"
	"testing"
)

// recorder is a sink that remembers what it got.
type recorder struct {
	keys   []string
	closed int
	fail   error // returned by Emit when set
}

func (r *recorder) Emit(name string, pos int, shape []int, data []float32) error {
	r.keys = append(r.keys, DumpKey(name, pos))
	return r.fail
}

func (r *recorder) Close() error { r.closed++; return nil }

func TestNilSetIsInert(t *testing.T) {
	var s *Set
	if s.Wants("blk.0.q") || s.WantsPos(0) {
		t.Error("a nil Set wants probes")
	}
	if err := s.Emit("blk.0.q", 0, []int{2}, []float32{1, 2}); err != nil {
		t.Error(err)
	}
	if s.Err() != nil || s.Close() != nil {
		t.Error("a nil Set reports errors")
	}
}

func TestNilSetAllocatesNothing(t *testing.T) {
	var s *Set
	names := NewLayerNames(2)
	shape := []int{2, 4}
	data := make([]float32, 8)
	allocs := testing.AllocsPerRun(100, func() {
		for _, ln := range names {
			if s.Wants(ln.Q) && s.WantsPos(3) {
				t.Fatal("unreachable")
			}
			_ = s.Emit(ln.QRope, 3, shape, data)
		}
	})
	if allocs != 0 {
		t.Errorf("nil Set: %v allocations per run, want 0", allocs)
	}
}

func TestSetFiltersAndOrders(t *testing.T) {
	f, err := ParseFilter("blk.0.*,embd", "1-2")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	s := NewSet(f, rec)
	if !s.Wants("blk.0.q") || s.Wants("blk.1.q") || !s.WantsPos(2) || s.WantsPos(3) {
		t.Error("Wants/WantsPos disagree with the filter")
	}
	for pos := 0; pos < 4; pos++ {
		for _, name := range []string{"embd", "blk.0.q", "blk.1.q", "logits"} {
			if err := s.Emit(name, pos, []int{1}, []float32{0}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := "embd@1 blk.0.q@1 embd@2 blk.0.q@2"
	if got := strings.Join(rec.keys, " "); got != want {
		t.Errorf("sink got %q, want %q", got, want)
	}
	if err := s.Close(); err != nil || rec.closed != 1 {
		t.Errorf("Close: %v, sink closed %d times", err, rec.closed)
	}
	if err := s.Close(); err != nil || rec.closed != 1 {
		t.Errorf("second Close: %v, sink closed %d times", err, rec.closed)
	}
	if err := s.Emit("embd", 1, []int{1}, []float32{0}); err == nil {
		t.Error("Emit after Close succeeded")
	}
}

func TestSetFirstErrorSticks(t *testing.T) {
	boom := errors.New("boom")
	bad, after := &recorder{fail: boom}, &recorder{}
	s := NewSet(Filter{}, bad, after)
	if err := s.Emit("embd", 0, []int{1}, []float32{0}); !errors.Is(err, boom) {
		t.Fatalf("Emit = %v, want boom", err)
	}
	if err := s.Emit("embd", 1, []int{1}, []float32{0}); !errors.Is(err, boom) {
		t.Errorf("second Emit = %v, want the first error again", err)
	}
	if !errors.Is(s.Err(), boom) {
		t.Errorf("Err() = %v", s.Err())
	}
	if len(after.keys) != 0 || len(bad.keys) != 1 {
		t.Errorf("sinks after the failure got %v and %v", bad.keys, after.keys)
	}
}

func TestSetChecksShape(t *testing.T) {
	s := NewSet(Filter{}, &recorder{})
	err := s.Emit("blk.0.q", 3, []int{2, 4}, make([]float32, 7))
	if err == nil || !strings.Contains(err.Error(), "blk.0.q at position 3") {
		t.Errorf("shape mismatch: %v", err)
	}
	if s.Err() == nil {
		t.Error("shape mismatch not recorded")
	}
	s = NewSet(Filter{}, &recorder{})
	if err := s.Emit("x", 0, []int{-1, -1}, []float32{0}); err == nil {
		t.Error("negative dimensions accepted")
	}
}

// BenchmarkNoProbe is the price of probes in the forward pass when none is
// attached: per probe point, a Wants check and an Emit on a nil Set.
func BenchmarkNoProbe(b *testing.B) {
	var s *Set
	names := NewLayerNames(22)
	shape := []int{32, 64}
	data := make([]float32, 32*64)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ln := &names[i%len(names)]
		if s.Wants(ln.QRope) {
			b.Fatal("unreachable")
		}
		if err := s.Emit(ln.QRope, i, shape, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnselected is the price when a Set is attached but its filter
// does not select the probe (the model then copies nothing back).
func BenchmarkUnselected(b *testing.B) {
	f, err := ParseFilter("blk.0.*,*.logits", "")
	if err != nil {
		b.Fatal(err)
	}
	s := NewSet(f, &recorder{})
	names := NewLayerNames(22)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if s.Wants(names[1+i%21].QRope) {
			b.Fatal("selected")
		}
	}
}

func TestZeroSetUsable(t *testing.T) {
	var s Set // not made by NewSet: selects everything, has no sinks
	if !s.Wants("blk.0.q") || s.Emit("blk.0.q", 0, []int{1}, []float32{1}) != nil {
		t.Error("zero Set misbehaves")
	}
	f, _ := ParseFilter("embd", "")
	s2 := Set{filter: f}
	if s2.Wants("blk.0.q") || !s2.Wants("embd") {
		t.Error("Set without a cache map misbehaves")
	}
}
