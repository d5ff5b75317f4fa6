//go:build linux

package kernels

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"llamago/tensor"
)

// BenchmarkMatMulRowsMapped times one-token products over a 96 MB matrix
// read from a file's memory map, as the engine reads its weights, and
// from a heap copy of the same bytes, for the types a decode step of the
// models llamago is measured on reads (Q4_K and Q6_K: Q4_K_M). Which pages
// each gets depends on the kernel: on Linux 6.18 with transparent huge
// pages in "madvise" mode the heap has 4 KiB pages (Go does not advise
// them) and the file, written in one piece, is cached and mapped in 2 MiB
// ones (smaps: FilePmdMapped), so the gap between the two is what 4 KiB
// pages cost a decode step (docs/PERFORMANCE.md, "Pages").
func BenchmarkMatMulRowsMapped(b *testing.B) {
	const n, total = 2048, 96 << 20
	rng := rand.New(rand.NewPCG(41, 42))
	for _, wt := range []tensor.Type{tensor.Q4_0, tensor.Q8_0, tensor.Q4_K, tensor.Q6_K, tensor.F16} {
		b.Run(wt.String(), func(b *testing.B) {
			rowBytes := RowBytes(wt, n)
			rows := total / rowBytes
			const distinct = 64
			heap := make([]byte, rows*rowBytes)
			for r := 0; r < distinct; r++ {
				copy(heap[r*rowBytes:], randomWeightRow(rng, wt, n, 0.05))
			}
			for r := distinct; r < rows; r++ {
				copy(heap[r*rowBytes:(r+1)*rowBytes], heap[(r%distinct)*rowBytes:])
			}
			mapped := mapBytes(b, heap)
			vt := VecDotType(wt)
			xRowBytes := RowBytes(vt, n)
			xq := make([]byte, xRowBytes)
			QuantizeRow(vt, activationRows(rng, n)["normal"], xq)
			dst := make([]float32, rows)
			for _, src := range []struct {
				name string
				w    []byte
			}{{"heap", heap}, {"mapped", mapped}} {
				b.Run(src.name, func(b *testing.B) {
					cpu0 := processCPUSeconds()
					for b.Loop() {
						MatMulRows(wt, src.w, rowBytes, 0, rows, xq, xRowBytes, 1, n, dst, rows)
					}
					reportWeightGBs(b, len(src.w), cpu0)
				})
			}
		})
	}
}

// mappedWeights returns rows of n weights of type wt — 72 MiB of them (a
// multiple of 8 rows), far more than the caches hold — as mapBytes maps
// them, and the row size: 64 random rows repeated.
func mappedWeights(b *testing.B, rng *rand.Rand, wt tensor.Type, n int) (w []byte, rowBytes, rows int) {
	b.Helper()
	rowBytes = RowBytes(wt, n)
	rows = (72 << 20) / rowBytes / 8 * 8
	heap := make([]byte, rows*rowBytes)
	for r := 0; r < 64; r++ {
		copy(heap[r*rowBytes:], randomWeightRow(rng, wt, n, 0.05))
	}
	for r := 64; r < rows; r++ {
		copy(heap[r*rowBytes:(r+1)*rowBytes], heap[(r%64)*rowBytes:])
	}
	return mapBytes(b, heap), rowBytes, rows
}

// mapBytes writes data to a temporary file and returns a read-only shared
// memory map of it, already faulted in.
func mapBytes(b *testing.B, data []byte) []byte {
	b.Helper()
	path := filepath.Join(b.TempDir(), "weights")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatalf("write %s: %v", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	m, err := syscall.Mmap(int(f.Fd()), 0, len(data), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		b.Fatalf("mmap %s: %v", path, err)
	}
	b.Cleanup(func() { _ = syscall.Munmap(m) })
	var sink byte
	for i := 0; i < len(m); i += 4096 {
		sink ^= m[i]
	}
	_ = sink
	return m
}
