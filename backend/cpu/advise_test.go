package cpu

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/edsrzf/mmap-go"

	"llamago/backend"
	"llamago/tensor"
)

func TestPageRange(t *testing.T) {
	for _, tc := range []struct {
		addr       uintptr
		n, page    int
		start      uintptr
		wantLength int
	}{
		{0x1000, 1, 0x1000, 0x1000, 0x1000},
		{0x1000, 0x1000, 0x1000, 0x1000, 0x1000},
		{0x1001, 0x1000, 0x1000, 0x1000, 0x2000},
		{0x1fff, 2, 0x1000, 0x1000, 0x2000},
		{0x12345, 0x10000, 0x4000, 0x10000, 0x14000},
	} {
		start, length := pageRange(tc.addr, tc.n, tc.page)
		if start != tc.start || length != tc.wantLength {
			t.Errorf("pageRange(%#x, %#x, %#x) = %#x, %#x; want %#x, %#x", tc.addr, tc.n, tc.page, start, length, tc.start, tc.wantLength)
		}
	}
}

// TestLoadWeightFromMap loads a weight at an unaligned offset of a
// read-only map (the advice covers whole pages around it) and one on the
// heap, and multiplies with both.
func TestLoadWeightFromMap(t *testing.T) {
	const rows, cols = 3, 40
	data := make([]byte, 100+rows*cols*4)
	vals := make([]float32, rows*cols)
	for i := range vals {
		vals[i] = float32(i%7) - 3
	}
	for i, v := range vals {
		binary.LittleEndian.PutUint32(data[100+4*i:], math.Float32bits(v))
	}
	path := filepath.Join(t.TempDir(), "w.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := mmap.Map(f, mmap.RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmap()
	b := New(Options{Threads: 2})
	defer b.Close()
	for _, src := range [][]byte{m[100:], append([]byte(nil), data[100:]...)} {
		w, err := b.LoadWeight(backend.WeightSpec{Name: "w", Type: tensor.F32, Rows: rows, Cols: cols, Data: src})
		if err != nil {
			t.Fatal(err)
		}
		x, dst := b.NewMat(1, cols), b.NewMat(1, rows)
		ones := make([]float32, cols)
		for i := range ones {
			ones[i] = 1
		}
		b.Write(x, ones)
		b.MatMul(dst, x, w)
		got := make([]float32, rows)
		b.Read(dst, got)
		for r := range rows {
			var want float32
			for c := range cols {
				want += vals[r*cols+c]
			}
			if got[r] != want {
				t.Errorf("row %d: %g, want %g", r, got[r], want)
			}
		}
	}
}
