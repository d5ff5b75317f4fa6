//go:build linux

package kernels

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"unsafe"

	"llamago/tensor"
)

// guarded is a memory mapping whose first and last pages may not be
// touched: a kernel that reads a byte before or after the rows it was
// given faults instead of silently reading a neighbour's data.
type guarded struct {
	mem  []byte // the whole mapping
	data []byte // the readable pages between the guards
}

func newGuarded(t *testing.T, size int) *guarded {
	t.Helper()
	page := syscall.Getpagesize()
	size = (size + page - 1) / page * page
	mem, err := syscall.Mmap(-1, 0, size+2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	for _, guard := range [][]byte{mem[:page], mem[len(mem)-page:]} {
		if err := syscall.Mprotect(guard, syscall.PROT_NONE); err != nil {
			t.Fatalf("mprotect: %v", err)
		}
	}
	return &guarded{mem: mem, data: mem[page : len(mem)-page]}
}

// atEnd copies b so that it ends at the last readable byte; atStart so
// that it starts at the first.
func (g *guarded) atEnd(b []byte) []byte {
	dst := g.data[len(g.data)-len(b):]
	copy(dst, b)
	return dst
}

func (g *guarded) atStart(b []byte) []byte {
	dst := g.data[:len(b)]
	copy(dst, b)
	return dst
}

// TestSetsStayInsideRows runs every kernel and quantizer of every set on
// rows placed flush against unreadable pages, at both ends.
func TestSetsStayInsideRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	wMem, xMem := newGuarded(t, 1<<16), newGuarded(t, 1<<16)
	for _, s := range append(fastSets(t), Portable()) {
		for _, wt := range weightTypes {
			vt := VecDotType(wt)
			for _, n := range simdLengths(wt) {
				w := randomWeightRow(rng, wt, n, 0.1)
				xq := bytesOf(t, vt, activationRows(rng, n)["normal"])
				want := s.Dot(wt, w, xq, n)
				for _, place := range []func(g *guarded, b []byte) []byte{(*guarded).atEnd, (*guarded).atStart} {
					if got := s.Dot(wt, place(wMem, w), place(xMem, xq), n); got != want {
						t.Errorf("%s %s n=%d: %g in guarded memory, %g elsewhere", s.Name(), wt, n, got, want)
					}
				}
			}
			// Four rows at once (the four-row kernels), ending at the guard.
			n := 3 * max(wt.BlockSize(), 32)
			rb := RowBytes(wt, n)
			var w []byte
			for r := 0; r < 4; r++ {
				w = append(w, randomWeightRow(rng, wt, n, 0.1)...)
			}
			xq := bytesOf(t, vt, activationRows(rng, n)["normal"])
			want := make([]float32, 4)
			s.MatMulRows(wt, w, rb, 0, 4, xq, len(xq), 1, n, want, 4)
			got := make([]float32, 4)
			s.MatMulRows(wt, wMem.atEnd(w), rb, 0, 4, xMem.atEnd(xq), len(xq), 1, n, got, 4)
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("%s %s: MatMulRows row %d: %g in guarded memory, %g elsewhere", s.Name(), wt, i, got[i], want[i])
				}
			}
		}
		for _, vt := range []tensor.Type{tensor.Q8_0, tensor.Q8_1, tensor.Q8_K, tensor.F16, tensor.BF16, tensor.F32} {
			for _, n := range []int{256, 768} {
				x := activationRows(rng, n)["normal"]
				xb := unsafe.Slice((*byte)(unsafe.Pointer(&x[0])), 4*n)
				for _, place := range []func(g *guarded, b []byte) []byte{(*guarded).atEnd, (*guarded).atStart} {
					gb := place(xMem, xb)
					gx := unsafe.Slice((*float32)(unsafe.Pointer(&gb[0])), n)
					want := bytesOf(t, vt, x)
					got := place(wMem, make([]byte, len(want)))
					s.QuantizeRow(vt, gx, got)
					if i := firstDiff(got, want); i >= 0 {
						t.Errorf("%s QuantizeRow %s n=%d in guarded memory: byte %d differs", s.Name(), vt, n, i)
					}
				}
			}
		}
	}
}
