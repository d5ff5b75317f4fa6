package cuda_test

import (
	"math/rand/v2"
	"slices"
	"testing"

	"llamago/backend"
	"llamago/backend/cuda"
)

var _ backend.HostAllocator = (*cuda.Backend)(nil)

// TestHostFloatsRead checks that Read into HostFloats's page-locked
// memory (copied there directly) gives what Read into Go memory gives,
// also for a part of the buffer, and that the sizes HostFloats refuses
// get nil.
func TestHostFloatsRead(t *testing.T) {
	b := needGPU(t)
	r := rand.New(rand.NewPCG(11, 12))
	const rows, cols = 3, 1000
	m := b.NewMat(rows, cols)
	want := randFloats(r, rows*cols, 1)
	b.Write(m, want)

	host := b.HostFloats(rows * cols)
	if len(host) != rows*cols {
		t.Fatalf("HostFloats(%d) gave %d floats", rows*cols, len(host))
	}
	if slices.ContainsFunc(host, func(f float32) bool { return f != 0 }) {
		t.Fatal("HostFloats's memory is not zeroed")
	}
	b.Read(m, host)
	if !slices.Equal(host, want) {
		t.Error("Read into HostFloats memory differs from what was written")
	}
	// One row into the buffer's middle, as the model reads one output row.
	row := b.View(m, 1)
	part := host[cols : 2*cols]
	clear(part)
	b.Read(row, part)
	if !slices.Equal(part, want[:cols]) {
		t.Error("Read of one row into the middle of HostFloats memory differs")
	}
	goMem := make([]float32, rows*cols)
	b.Read(m, goMem)
	if !slices.Equal(goMem, want) {
		t.Error("Read into Go memory differs from what was written")
	}
	for _, n := range []int{0, -1, 1 << 40} {
		if f := b.HostFloats(n); f != nil {
			t.Errorf("HostFloats(%d) gave %d floats, want nil", n, len(f))
		}
	}
}
