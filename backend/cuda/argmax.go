package cuda

import (
	"math"
	"unsafe"

	"llamago/backend"
)

// argmaxThreads is ARGMAX_THREADS of kernels/llamago.cu: a block of 1024
// threads a row, 31 or 32 values each for a 32,000-entry vocabulary.
const argmaxThreads = 1024

// argMaxInts is the kernel's output per row: the pick, the first NaN or
// +Inf index, that value's bits.
const argMaxInts = 3

// ArgMax implements backend.ArgMaxer: the argmax kernel finds
// backend.FindPick of each row of m on the GPU, queued after the launches
// that compute m like any other (so a decode step stays one queue, replayed
// as a CUDA graph), into a buffer that keeps its address; then the host
// waits and copies back 12 bytes a row instead of the row.
func (b *Backend) ArgMax(m backend.Mat, dst []backend.Pick) {
	src := asMat(m)
	if !(len(dst) == src.rows) {
		backend.ShapeFail("ArgMax", "%d results for %s", len(dst), backend.Shape(m))
	}
	if len(dst) == 0 {
		return
	}
	defer b.enter("ArgMax")()
	out := b.argMaxBuf("ArgMax", src.rows)
	b.args.reset().ptr(src.ptr).i32(src.cols).ptr(out)
	// It writes only its own buffer: the rounded activations in the
	// scratch buffer stay valid (launchKeep).
	b.launchKeep("ArgMax", b.k.argmax, dim3{uint32(src.rows), 1, 1}, dim3{argmaxThreads, 1, 1})

	b.current("ArgMax")
	d := b.drv
	b.flush("ArgMax")
	b.must("ArgMax", d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)))
	b.waited()
	host := b.argMaxHost[:argMaxInts*src.rows]
	b.must("ArgMax", d.check("cuMemcpyDtoH", d.cuMemcpyDtoH(unsafe.Pointer(&host[0]), out, uintptr(len(host))*4)))
	for r := range dst {
		v := host[argMaxInts*r:]
		dst[r] = backend.Pick{ID: v[0], Bad: v[1], BadLogit: math.Float32frombits(uint32(v[2]))}
	}
}

// argMaxBuf returns the device buffer for the argmax results of rows rows
// (and sizes its host copy). It grows to the most rows seen, at least 16,
// and then keeps its address.
func (b *Backend) argMaxBuf(op string, rows int) uint64 {
	if rows > b.argMaxRows {
		b.must(op, b.free(b.argMax))
		n := max(rows, 16)
		p, err := b.alloc(uintptr(n) * argMaxInts * 4)
		b.must(op, err)
		b.argMax, b.argMaxRows = p, n
		b.argMaxHost = make([]int32, argMaxInts*n)
	}
	return b.argMax
}
