// Package cuda is llamago's CUDA backend: the operations of package backend
// as CUDA kernels, driven through the driver API (libcuda.so.1) loaded at
// run time with purego, so that the Go build needs neither cgo nor the CUDA
// toolkit and a machine needs only the NVIDIA driver.
//
// The kernels are CUDA C in kernels/*.cu, shipped as the PTX that
// scripts/build-ptx.sh makes with nvcc and embedded in the binary; the
// driver compiles the PTX for the GPU at start. Weights are copied to the
// GPU in their file format (no dequantized copy) and products are computed
// on the blocks. Activations, the KV cache and every other buffer live on
// the GPU; Backend.Read copies a matrix back, which is how probes work.
//
// Launches queue in the Backend until their results are needed; an
// operation may merge into the launch queued before it (a residual add into
// the next norm, activation rounding into the kernel that wrote the
// activations, a SwiGLU into the gate/up product, a rotation into the
// attention), and a queue that repeats a recent one launch for launch,
// such as a decode step's chunks, runs as a CUDA graph (graph.go). All
// launches go to one stream and every buffer keeps its address for the
// backend's life, which is what makes decode steps repeat. On Hopper and
// newer the launches use programmatic dependent launch (a kernel's launch
// overlaps the end of the one before it). A CUDA context is current on one
// OS thread at a time, and goroutines move between threads: an operation
// that calls the driver locks its goroutine to the thread and makes the
// context current until it returns; one that only queues launches does
// neither (the Backend is used by one goroutine at a time, like every
// backend).
//
// Operations return no errors (see package backend); a driver failure
// inside one panics with a *backend.ShapeError whose Detail is the driver's
// error, which model.Forward returns as an error.
package cuda

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"llamago/backend"
	"llamago/tensor"
)

// Options configure a CUDA backend.
type Options struct {
	// Device is the CUDA device ordinal.
	Device int
	// PTX replaces the embedded kernels (for kernel development); nil
	// means the file named by $LLAMAGO_CUDA_PTX when set, else the
	// embedded PTX.
	PTX []byte
	// SyncEachOp waits for the GPU after every launch, so that a fault is
	// reported by the operation that caused it ($LLAMAGO_CUDA_SYNC=1 turns
	// it on too). Slow; for debugging.
	SyncEachOp bool
	// Eager sends every launch to the driver as its operation runs: no
	// queue, no fused launches, no CUDA graphs (stage one's behaviour, for
	// comparison and debugging; $LLAMAGO_CUDA_EAGER=1 turns it on too).
	// SyncEachOp implies it.
	Eager bool
	// NoPDL turns programmatic dependent launch off (see Backend.PDL;
	// $LLAMAGO_CUDA_PDL=0 turns it off too), for comparison.
	NoPDL bool
	// CPUOrder computes every operation in the CPU backend's order with
	// its float32 roundings, so that results equal the CPU backend's bit
	// for bit (F32, F16, Q4_0, Q8_0, Q4_K and Q6_K weights, both caches):
	// slower, for checking
	// ($LLAMAGO_CUDA_CPU_ORDER=1 turns it on too). See cpuorder.go.
	CPUOrder bool
	// NoSplitK turns split-K decode attention off (every decode row then
	// runs on the one-block-per-head kernel; $LLAMAGO_CUDA_SPLITK=0 turns
	// it off too), for comparison and to isolate a fault.
	NoSplitK bool
	// NoCUBLAS keeps F16 prefill products on the backend's own kernels
	// even where cuBLAS is installed ($LLAMAGO_CUDA_CUBLAS=0 does too; see
	// cublas.go and Backend.CUBLAS), for comparison.
	NoCUBLAS bool
	// NoNormFold keeps decode's RMSNorms before F16 products in launches
	// of their own ($LLAMAGO_CUDA_NORMFOLD=0 does too; see foldNorm), for
	// comparison.
	NoNormFold bool
}

// Backend is the CUDA backend. It is not safe for concurrent use: one
// forward pass at a time.
type Backend struct {
	drv    *driver
	dev    int32
	ctx    uintptr
	stream uintptr
	mod    uintptr
	k      kernelSet
	info   DeviceInfo
	sync   bool
	closed bool

	allocs map[uint64]uintptr // live device allocations and their sizes

	// Device copies of the host index arrays operations take, re-sent only
	// when their contents change (positions are shared by RoPE, StoreKV
	// and Attention of every layer of a forward pass).
	ids, rows, pos, slots intBuf
	// tiles holds attention_tc's tiles of query rows (first row, count),
	// tileHost their host copy.
	tiles    intBuf
	tileHost []int32
	// scratch holds activations rounded to a weight's dot-product format:
	// two buffers, the second for the down product's input that mvq_glu
	// rounds while it still reads its own input from the first.
	scratch     [2]uint64
	scratchSize [2]uintptr

	// argMax holds the argmax kernel's results, 3 int32 a row for up to
	// argMaxRows rows; it grows once and then keeps its address, so that
	// a decode step ending with ArgMax still repeats as a CUDA graph.
	// argMaxHost is their host copy.
	argMax     uint64
	argMaxRows int
	argMaxHost []int32

	args kargs

	// Launch queue and graphs (graph.go).
	eager   bool // launch at once: no queue, fusions or graphs
	graphs  bool // replay repeated queues as CUDA graphs
	pending []launchRec
	recent  []sentQueue // the last queues sent one by one
	chunk   int         // length of the second chunk after the host waited (chunkLaunches)
	// chunkGrowth multiplies the length of each chunk after the second
	// since the host last waited (see chunkLaunches); nextChunk is the
	// next one's (0: b.chunk).
	chunkGrowth, nextChunk int
	idle                   bool // nothing sent since the host last waited for the stream
	// stepGraphs are the graphs launched since the host last waited for
	// the stream, lastStep those before that wait (a decode step's chunks:
	// for timing them without the host, TimeLastStep in the tests).
	stepGraphs, lastStep []uintptr
	// marks, when not nil, records when the host launched graphs and
	// waited for the stream (for the tests), to time the host's part of
	// a decode step.
	marks      *[]hostMark
	graphCache []*cachedGraph
	stats      graphStats

	// act says which activations the scratch buffer holds rounded, so
	// that q, k and v (and gate and up) round their shared input once.
	act      actState
	actBuf   uint64 // the scratch buffer act is in
	actValid bool

	// locked: the operation running holds its OS thread with the context
	// current (see enter).
	locked bool

	// pdl: launches after the first of a queue may overlap the launch
	// before them (programmatic dependent launch, sm_90 and newer; see
	// pdl_begin in kernels/llamago.cu). launchCfg and launchAttr are
	// cuLaunchKernelEx's arguments, kept here on the heap.
	pdl        bool
	launchCfg  launchConfig
	launchAttr launchAttr
	// counters are the arrival counts of mvq_glu's groups and of the
	// fused rotation's KV heads in attention (counterBuf), zero between
	// launches, allocated with the first fusion that needs them.
	counters uint64
	// splitK: decode attention at long contexts runs split-K (see
	// Backend.Attention); $LLAMAGO_CUDA_SPLITK=0 or Options.NoSplitK turn
	// it off. split is its scratch of per-chunk partials, grown (never
	// shrunk) to splitSize bytes, so that its address stays the same from
	// step to step and decode steps still repeat as CUDA graphs.
	splitK    bool
	split     uint64
	splitSize uintptr
	exact     *cpuOrder // CPU-order mode's kernels; nil when off (cpuorder.go)
	// blas is cuBLAS, which computes F16 prefill products when loaded
	// (nil when not; blasNote says which library or why not; cublas.go).
	blas     *cublasState
	blasNote string
	// hostIO: single index values go up as memsets and Read copies
	// through staging, page-locked memory, or straight into HostFloats's
	// ($LLAMAGO_CUDA_HOSTIO=0 turns all three off, for comparison).
	hostIO  bool
	staging []float32
	// host is the page-locked memory handed out by HostFloats, which
	// Read copies into directly.
	host [][]float32
	// gluTail: mvq_glu also rounds its output (the down product's input)
	// into Q8 blocks, each group in the group's last block after a fence
	// and an arrival count, instead of leaving that to an act launch of
	// its own; off unless $LLAMAGO_CUDA_GLU_TAIL=1, for comparison. The
	// tail held every block of the launch at its fence and barriers (a
	// quarter of mvq_glu_q4_k's stall samples, docs/CUDA.md, session
	// nine) while the second wave of blocks waited: without it, tg128 on
	// an H100 (session ten, four alternating runs, docs/CUDA.md) went
	// Q4_K_M 1134–1143 → 1204–1214 tokens/s, Q4_0 1341–1363 →
	// 1373–1393, Q8_0 1138–1160 → 1164–1178. F16 halves, rounded value
	// by value, are always rounded in mvq_glu.
	gluTail bool
	// normFold: a one-row RMSNorm before an F16 one-token product folds
	// into it (foldNorm), and the residual add before the norm into the
	// product before that (mergeAdd); off with Options.NoNormFold or
	// $LLAMAGO_CUDA_NORMFOLD=0. mvqnBlocks and mvqnGLUBlocks are the
	// blocks of mvqn_f16 and mvqn_glu_f16 the GPU holds at once, which
	// their launches do not exceed.
	normFold                  bool
	mvqnBlocks, mvqnGLUBlocks int
}

// actState names a rounding of n activations at src into the scratch
// buffer through format kind.
type actState struct {
	src  uint64
	n    int
	kind int
}

// DeviceInfo describes the GPU a Backend runs on.
type DeviceInfo struct {
	Name            string
	ComputeMajor    int
	ComputeMinor    int
	Multiprocessors int
	MemoryBytes     uint64
	DriverVersion   int // as cuDriverGetVersion reports it: 1000·major + 10·minor
}

// New loads the driver, makes the device's primary context current and
// loads the kernels. On a machine without the NVIDIA driver the error says
// so (it wraps a message starting "cuda: libcuda.so.1 not found").
func New(opts Options) (*Backend, error) {
	drv, err := loadDriver()
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if r := drv.cuInit(0); r != 0 {
		err := drv.check("cuInit", r)
		if r == errNoDevice {
			return nil, fmt.Errorf("cuda: the NVIDIA driver is installed but sees no GPU: %w", err)
		}
		return nil, err
	}
	var count int32
	if err := drv.check("cuDeviceGetCount", drv.cuDeviceGetCount(&count)); err != nil {
		return nil, err
	}
	if opts.Device < 0 || opts.Device >= int(count) {
		return nil, fmt.Errorf("cuda: device %d does not exist (this machine has %d)", opts.Device, count)
	}
	b := &Backend{drv: drv, allocs: map[uint64]uintptr{}, sync: opts.SyncEachOp || os.Getenv("LLAMAGO_CUDA_SYNC") == "1"}
	b.eager = b.sync || opts.Eager || os.Getenv("LLAMAGO_CUDA_EAGER") == "1"
	b.graphs = !b.eager
	b.splitK = !opts.NoSplitK && os.Getenv("LLAMAGO_CUDA_SPLITK") != "0"
	b.hostIO = os.Getenv("LLAMAGO_CUDA_HOSTIO") != "0"
	b.gluTail = os.Getenv("LLAMAGO_CUDA_GLU_TAIL") == "1"
	b.normFold = !b.eager && !opts.NoNormFold && os.Getenv("LLAMAGO_CUDA_NORMFOLD") != "0"
	if b.chunk, err = envCount("LLAMAGO_CUDA_CHUNK", chunkLaunches, 0, "a number of launches (0: whole forward passes)"); err != nil {
		return nil, err
	}
	if b.chunkGrowth, err = envCount("LLAMAGO_CUDA_CHUNK_GROWTH", chunkGrowth, 1, "a factor of at least 1"); err != nil {
		return nil, err
	}
	if err := drv.check("cuDeviceGet", drv.cuDeviceGet(&b.dev, int32(opts.Device))); err != nil {
		return nil, err
	}
	if err := b.readInfo(); err != nil {
		return nil, err
	}
	ptx, err := kernelPTX(opts.PTX, b.info.ComputeMajor)
	if err != nil {
		return nil, err
	}
	// Programmatic dependent launch needs Hopper or newer, a driver with
	// cuLaunchKernelEx and kernels compiled for sm_90 (which wait for the
	// kernel before them: pdl_begin).
	b.pdl = !b.eager && !opts.NoPDL && os.Getenv("LLAMAGO_CUDA_PDL") != "0" &&
		b.info.ComputeMajor >= 9 && ptxTarget(ptx) >= 90 && drv.cuLaunchKernelEx != nil
	b.launchAttr.id = launchAttrProgrammatic
	b.launchAttr.value[0] = 1
	if err := drv.check("cuDevicePrimaryCtxRetain", drv.cuDevicePrimaryCtxRetain(&b.ctx, b.dev)); err != nil {
		return nil, err
	}
	if err := b.setup(ptx); err != nil {
		b.release()
		return nil, err
	}
	if err := b.loadCPUOrder(opts); err != nil {
		b.release()
		return nil, err
	}
	if b.exact != nil {
		b.normFold = false // CPU-order mode has kernels of its own
	}
	switch {
	case b.exact != nil:
		b.blasNote = "not used in CPU-order mode"
	case opts.NoCUBLAS:
		b.blasNote = "turned off (Options.NoCUBLAS)"
	default:
		b.startCUBLAS() // optional: without it products use the kernels
	}
	return b, nil
}

// envCount returns the integer in $name, at least least (want says what
// it is in the error), or def when the variable is unset.
func envCount(name string, def, least int, want string) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		return 0, fmt.Errorf("cuda: $%s=%q: want %s", name, v, want)
	}
	return n, nil
}

func (b *Backend) readInfo() error {
	d := b.drv
	name := make([]byte, 256)
	if err := d.check("cuDeviceGetName", d.cuDeviceGetName(&name[0], int32(len(name)), b.dev)); err != nil {
		return err
	}
	b.info.Name = goString(&name[0])
	attrs := []struct {
		attr int32
		dst  *int
	}{
		{devAttrComputeMajor, &b.info.ComputeMajor},
		{devAttrComputeMinor, &b.info.ComputeMinor},
		{devAttrMultiprocessors, &b.info.Multiprocessors},
	}
	for _, a := range attrs {
		var v int32
		if err := d.check("cuDeviceGetAttribute", d.cuDeviceGetAttribute(&v, a.attr, b.dev)); err != nil {
			return err
		}
		*a.dst = int(v)
	}
	var ver int32
	if err := d.check("cuDriverGetVersion", d.cuDriverGetVersion(&ver)); err != nil {
		return err
	}
	b.info.DriverVersion = int(ver)
	return d.check("cuDeviceTotalMem", d.cuDeviceTotalMem(&b.info.MemoryBytes, b.dev))
}

// setup makes the context current, creates the stream and loads the
// kernels; the caller holds the OS thread.
func (b *Backend) setup(ptx []byte) error {
	d := b.drv
	if err := d.check("cuCtxSetCurrent", d.cuCtxSetCurrent(b.ctx)); err != nil {
		return err
	}
	// A non-blocking stream, as graph capture wants: it is not ordered
	// with the legacy default stream, so the copies and memsets that go
	// there wait for it to finish (legacySync), and index uploads go to
	// this stream itself.
	if err := d.check("cuStreamCreate", d.cuStreamCreate(&b.stream, streamNonBlocking)); err != nil {
		return err
	}
	image := append(slices.Clip(ptx), 0)
	logBuf := make([]byte, jitErrorLogCap)
	opts := []int32{jitErrorLogBuffer, jitErrorLogBufferSize}
	// Option values are pointer-sized slots: the log buffer's address and
	// its size.
	vals := []uintptr{uintptr(unsafe.Pointer(&logBuf[0])), uintptr(len(logBuf))}
	if r := d.cuModuleLoadDataEx(&b.mod, unsafe.Pointer(&image[0]), uint32(len(opts)), &opts[0], &vals[0]); r != 0 {
		err := d.check("cuModuleLoadDataEx", r)
		if log := goString(&logBuf[0]); log != "" {
			return fmt.Errorf("%w: the JIT compiler said: %s", err, log)
		}
		return err
	}
	runtime.KeepAlive(image)
	runtime.KeepAlive(logBuf)
	if err := b.k.load(d, b.mod); err != nil {
		return err
	}
	// The norm-folded products loop over their rows in as many blocks as
	// the GPU holds at once.
	for _, f := range []struct {
		fn  uintptr
		dst *int
	}{{b.k.mvqnF16, &b.mvqnBlocks}, {b.k.mvqnGLUF16, &b.mvqnGLUBlocks}} {
		var n int32
		if err := d.check("cuOccupancyMaxActiveBlocksPerMultiprocessor", d.cuOccupancyMaxBlocks(&n, f.fn, normThreads, 0)); err != nil {
			return err
		}
		*f.dst = int(n) * b.info.Multiprocessors
	}
	return nil
}

// release frees what New acquired so far.
func (b *Backend) release() {
	d := b.drv
	b.unloadCPUOrder()
	if b.mod != 0 {
		d.cuModuleUnload(b.mod)
	}
	if b.stream != 0 {
		d.cuStreamDestroy(b.stream)
	}
	if b.ctx != 0 {
		d.cuDevicePrimaryCtxRelease(b.dev)
	}
}

// Name implements backend.Backend.
func (b *Backend) Name() string { return "cuda" }

// Info describes the GPU.
func (b *Backend) Info() DeviceInfo { return b.info }

// PDL reports whether the backend launches kernels with programmatic
// dependent launch: a kernel's launch and start overlap the end of the
// kernel before it (sm_90 and newer with the sm_90 PTX; off when eager).
func (b *Backend) PDL() bool { return b.pdl }

// Close frees every buffer and releases the context. Matrices and weights
// of the backend must not be used afterwards.
func (b *Backend) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	d := b.drv
	err := d.check("cuCtxSetCurrent", d.cuCtxSetCurrent(b.ctx))
	b.pending = nil // results nobody can read any more
	if err == nil {
		err = d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream))
	}
	b.destroyGraphs()
	if b.staging != nil {
		err = errors.Join(err, d.check("cuMemFreeHost", d.cuMemFreeHost(unsafe.Pointer(&b.staging[0]))))
		b.staging = nil
	}
	for _, h := range b.host {
		err = errors.Join(err, d.check("cuMemFreeHost", d.cuMemFreeHost(unsafe.Pointer(&h[0]))))
	}
	b.host = nil
	// cuBLAS's handle goes before its workspace and the context.
	err = errors.Join(err, b.stopCUBLAS())
	for p := range b.allocs {
		err = errors.Join(err, d.check("cuMemFree", d.cuMemFree(p)))
	}
	clear(b.allocs)
	b.release()
	return err
}

// enter starts an operation; the returned function ends it. Operations
// that only queue launches make no driver call and need no context: the
// first driver call of an operation (current) locks the goroutine to its
// OS thread and makes the context current there, and the end unlocks.
// (Making the context current in every operation cost a driver call
// through purego, about half a microsecond, in each of the ~270
// operations of a decode step.)
func (b *Backend) enter(op string) func() {
	if b.closed {
		backend.ShapeFail(op, "cuda: the backend is closed")
	}
	return b.leave
}

// leave ends what enter began: it unlocks the OS thread if current
// locked it.
func (b *Backend) leave() {
	if b.locked {
		b.locked = false
		runtime.UnlockOSThread()
	}
}

// current makes the context current on the calling goroutine's OS thread,
// locked to it until leave, before a driver call of operation op.
func (b *Backend) current(op string) {
	if err := b.makeCurrent(); err != nil {
		b.fail(op, err)
	}
}

// makeCurrent is current returning the error.
func (b *Backend) makeCurrent() error {
	if b.locked {
		return nil
	}
	runtime.LockOSThread()
	if r := b.drv.cuCtxSetCurrent(b.ctx); r != 0 {
		runtime.UnlockOSThread()
		return b.drv.check("cuCtxSetCurrent", r)
	}
	b.locked = true
	return nil
}

// fail reports a driver error inside an operation (see the package doc).
func (b *Backend) fail(op string, err error) {
	panic(&backend.ShapeError{Op: op, Detail: err.Error()})
}

// must fails op when err is not nil.
func (b *Backend) must(op string, err error) {
	if err != nil {
		b.fail(op, err)
	}
}

// alloc returns n bytes of zeroed device memory (at least 4, so that empty
// matrices have an address too).
func (b *Backend) alloc(n uintptr) (uint64, error) {
	if err := b.makeCurrent(); err != nil {
		return 0, err
	}
	n = max(n, 4)
	var p uint64
	if err := b.drv.check(fmt.Sprintf("cuMemAlloc(%d bytes)", n), b.drv.cuMemAlloc(&p, n)); err != nil {
		return 0, err
	}
	b.allocs[p] = n
	if err := b.drv.check("cuMemsetD8", b.drv.cuMemsetD8(p, 0, n)); err != nil {
		return 0, err
	}
	return p, b.legacySync()
}

// legacySync waits for the work of the legacy default stream (memsets,
// host-to-device copies, which may return before their transfer ends),
// which the backend's non-blocking stream does not wait for by itself.
func (b *Backend) legacySync() error {
	return b.drv.check("cuStreamSynchronize(legacy)", b.drv.cuStreamSynchronize(0))
}

// free releases an allocation after the stream has finished with it.
func (b *Backend) free(p uint64) error {
	if p == 0 {
		return nil
	}
	if err := b.makeCurrent(); err != nil {
		return err
	}
	d := b.drv
	b.flush("free")
	if err := d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)); err != nil {
		return err
	}
	delete(b.allocs, p)
	return d.check("cuMemFree", d.cuMemFree(p))
}

// ---------------------------------------------------------------- matrices

// mat is a row-major float32 matrix in device memory.
type mat struct {
	rows, cols int
	ptr        uint64
}

func (m *mat) Rows() int { return m.rows }
func (m *mat) Cols() int { return m.cols }

func asMat(m backend.Mat) *mat { return m.(*mat) }

// NewMat implements backend.Backend. It panics with a *backend.ShapeError
// when the GPU is out of memory.
func (b *Backend) NewMat(rows, cols int) backend.Mat {
	if rows < 0 || cols < 0 {
		backend.ShapeFail("NewMat", "(%d, %d)", rows, cols)
	}
	defer b.enter("NewMat")()
	p, err := b.alloc(uintptr(rows) * uintptr(cols) * 4)
	b.must("NewMat", err)
	return &mat{rows: rows, cols: cols, ptr: p}
}

// View implements backend.Backend.
func (b *Backend) View(m backend.Mat, rows int) backend.Mat {
	src := asMat(m)
	if !(rows >= 0 && rows <= src.rows) {
		backend.ShapeFail("View", "%d rows of %s", rows, backend.Shape(m))
	}
	return &mat{rows: rows, cols: src.cols, ptr: src.ptr}
}

// waited notes that the host waited for the stream: nothing is in flight.
func (b *Backend) waited() {
	b.idle = true
	b.nextChunk = 0
	b.lastStep, b.stepGraphs = b.stepGraphs, b.lastStep[:0]
	b.mark(markWaited)
}

// hostMark is a moment of the host's part of the work, recorded for
// timing when asked for (see Backend.marks).
type hostMark struct {
	What byte // markGraph, markRead or markWaited
	At   time.Time
}

// Kinds of hostMark: a graph launched, Read called, the host's wait for
// the stream over.
const (
	markGraph  = 'G'
	markRead   = 'R'
	markWaited = 'W'
)

// mark records a hostMark when marks are on.
func (b *Backend) mark(what byte) {
	if b.marks != nil {
		*b.marks = append(*b.marks, hostMark{What: what, At: time.Now()})
	}
}

// Read implements backend.Backend: it waits for the GPU and copies m back.
func (b *Backend) Read(m backend.Mat, dst []float32) {
	src := asMat(m)
	if !(len(dst) == src.rows*src.cols) {
		backend.ShapeFail("Read", "%d values from %s", len(dst), backend.Shape(m))
	}
	defer b.enter("Read")()
	b.mark(markRead)
	b.current("Read")
	d := b.drv
	b.flush("Read")
	if n := len(dst); n > 0 && b.hostIO {
		// Through page-locked memory: the copy joins the stream after the
		// queue, one wait for both, and no staging by the driver. Into
		// HostFloats's memory it goes straight to dst, else through the
		// staging buffer.
		direct := b.isHost(dst)
		if direct || n <= maxStagedFloats {
			into := dst
			if !direct {
				into = b.stagingFloats("Read", n)
			}
			b.must("Read", d.check("cuMemcpyDtoHAsync", d.cuMemcpyDtoHAsync(unsafe.Pointer(&into[0]), src.ptr, uintptr(n)*4, b.stream)))
			b.must("Read", d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)))
			b.waited()
			if !direct {
				copy(dst, into)
			}
			return
		}
	}
	b.must("Read", d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)))
	b.waited()
	if len(dst) == 0 {
		return
	}
	b.must("Read", d.check("cuMemcpyDtoH", d.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), src.ptr, uintptr(len(dst))*4)))
}

// maxStagedFloats bounds the page-locked staging buffer of Read: a row of
// logits or a few (a 128k vocabulary is 512 KB a row); larger reads (a
// whole batch of logits, probes of long prompts) copy from pageable memory.
const maxStagedFloats = 4 << 20

// maxHostFloats bounds one HostFloats buffer (256 MiB): the logits of a
// batch of 512 tokens over a 128k vocabulary.
const maxHostFloats = 64 << 20

// HostFloats implements backend.HostAllocator: n floats of page-locked
// memory, which Read copies into without staging, freed by Close. It
// returns nil when n is not positive or above maxHostFloats, when
// $LLAMAGO_CUDA_HOSTIO=0 turns page-locked copies off, or when the driver
// cannot give the memory (the caller then uses its own).
func (b *Backend) HostFloats(n int) []float32 {
	if n <= 0 || n > maxHostFloats || !b.hostIO || b.closed {
		return nil
	}
	defer b.enter("HostFloats")()
	if b.makeCurrent() != nil {
		return nil
	}
	var p unsafe.Pointer
	if b.drv.cuMemAllocHost(&p, uintptr(n)*4) != 0 || p == nil {
		return nil
	}
	f := unsafe.Slice((*float32)(p), n)
	clear(f)
	b.host = append(b.host, f)
	return f
}

// isHost reports whether dst lies inside one of HostFloats's buffers.
func (b *Backend) isHost(dst []float32) bool {
	start := uintptr(unsafe.Pointer(&dst[0]))
	end := start + uintptr(len(dst))*4
	for _, h := range b.host {
		lo := uintptr(unsafe.Pointer(&h[0]))
		if start >= lo && end <= lo+uintptr(len(h))*4 {
			return true
		}
	}
	return false
}

// stagingFloats returns at least n floats of page-locked host memory,
// grown (never shrunk) to the largest Read seen.
func (b *Backend) stagingFloats(op string, n int) []float32 {
	if n > len(b.staging) {
		d := b.drv
		if b.staging != nil {
			b.must(op, d.check("cuMemFreeHost", d.cuMemFreeHost(unsafe.Pointer(&b.staging[0]))))
			b.staging = nil
		}
		size := max(n, 32<<10)
		var p unsafe.Pointer
		b.must(op, d.check("cuMemAllocHost", d.cuMemAllocHost(&p, uintptr(size)*4)))
		b.staging = unsafe.Slice((*float32)(p), size)
	}
	return b.staging[:n]
}

// Write implements backend.Backend.
func (b *Backend) Write(m backend.Mat, src []float32) {
	dst := asMat(m)
	if !(len(src) == dst.rows*dst.cols) {
		backend.ShapeFail("Write", "%d values into %s", len(src), backend.Shape(m))
	}
	if len(src) == 0 {
		return
	}
	defer b.enter("Write")()
	b.current("Write")
	d := b.drv
	b.flush("Write")
	b.actValid = false
	// Kernels already sent may still read the matrix.
	b.must("Write", d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)))
	b.waited()
	b.must("Write", d.check("cuMemcpyHtoD", d.cuMemcpyHtoD(dst.ptr, unsafe.Pointer(&src[0]), uintptr(len(src))*4)))
	b.must("Write", b.legacySync())
}

// ---------------------------------------------------------------- weights

// Weight type codes of the kernels (TYPE_… in kernels/llamago.cu).
const (
	gpuF32 = iota
	gpuF16
	gpuQ4_0
	gpuQ8_0
	gpuQ4_K
	gpuQ6_K
	numGPUTypes
)

// gpuType is the kernels' code of a tensor type, false for types the
// kernels cannot compute with.
func gpuType(t tensor.Type) (int, bool) {
	switch t {
	case tensor.F32:
		return gpuF32, true
	case tensor.F16:
		return gpuF16, true
	case tensor.Q4_0:
		return gpuQ4_0, true
	case tensor.Q8_0:
		return gpuQ8_0, true
	case tensor.Q4_K:
		return gpuQ4_K, true
	case tensor.Q6_K:
		return gpuQ6_K, true
	}
	return 0, false
}

// Types lists the weight types the backend computes with.
func Types() []tensor.Type {
	return []tensor.Type{tensor.F32, tensor.F16, tensor.Q4_0, tensor.Q8_0, tensor.Q4_K, tensor.Q6_K}
}

// weight is a tensor in device memory, in its file format.
type weight struct {
	name       string
	typ        tensor.Type
	gpu        int
	rows, cols int
	rowBytes   int
	ptr        uint64
}

func (w *weight) Name() string      { return w.name }
func (w *weight) Type() tensor.Type { return w.typ }
func (w *weight) Rows() int         { return w.rows }
func (w *weight) Cols() int         { return w.cols }

func asWeight(w backend.Weight) *weight { return w.(*weight) }

func weightShape(w backend.Weight) string {
	return fmt.Sprintf("%s (%d, %d)", w.Name(), w.Rows(), w.Cols())
}

// LoadWeight implements backend.Backend: it copies the tensor's bytes to
// the GPU as they are.
func (b *Backend) LoadWeight(spec backend.WeightSpec) (backend.Weight, error) {
	code, ok := gpuType(spec.Type)
	if !ok {
		return nil, fmt.Errorf("cuda: tensor %s has type %s, which the CUDA backend cannot compute with yet (it takes %v)", spec.Name, spec.Type, Types())
	}
	if spec.Rows < 0 || spec.Cols < 0 {
		return nil, fmt.Errorf("cuda: tensor %s: shape (%d, %d)", spec.Name, spec.Rows, spec.Cols)
	}
	rowBytes, err := spec.Type.RowSize(int64(spec.Cols))
	if err != nil {
		return nil, fmt.Errorf("cuda: tensor %s: %w", spec.Name, err)
	}
	if int64(len(spec.Data)) != rowBytes*int64(spec.Rows) {
		return nil, fmt.Errorf("cuda: tensor %s: %d bytes for %d×%d %s, want %d", spec.Name, len(spec.Data), spec.Rows, spec.Cols, spec.Type, rowBytes*int64(spec.Rows))
	}
	if b.closed {
		return nil, errors.New("cuda: LoadWeight on a closed backend")
	}
	defer b.leave()
	d := b.drv
	if err := b.makeCurrent(); err != nil {
		return nil, fmt.Errorf("cuda: tensor %s: %w", spec.Name, err)
	}
	p, err := b.alloc(uintptr(len(spec.Data)))
	if err != nil {
		return nil, fmt.Errorf("cuda: tensor %s: %w", spec.Name, err)
	}
	if len(spec.Data) > 0 {
		if err := d.check("cuMemcpyHtoD", d.cuMemcpyHtoD(p, unsafe.Pointer(&spec.Data[0]), uintptr(len(spec.Data)))); err != nil {
			return nil, fmt.Errorf("cuda: tensor %s: %w", spec.Name, err)
		}
		if err := b.legacySync(); err != nil {
			return nil, fmt.Errorf("cuda: tensor %s: %w", spec.Name, err)
		}
	}
	return &weight{name: spec.Name, typ: spec.Type, gpu: code, rows: spec.Rows, cols: spec.Cols, rowBytes: int(rowBytes), ptr: p}, nil
}

// ---------------------------------------------------------------- index arrays

// intBuf is a device copy of a host []int32 that is re-sent only when the
// host contents change.
type intBuf struct {
	dev  uint64
	capN int
	last []int32
	sent bool
	// queued: a launch in the queue reads the buffer, so new contents
	// must wait for the queue to be sent.
	queued bool
}

// upload returns the device address of a copy of v. The copy goes to the
// backend's stream, after every launch sent before it, so a kernel still
// reading the previous contents is not disturbed; new contents that a
// queued launch would read send the queue first. (From pageable memory
// the driver stages v before returning, so v may change afterwards.)
func (b *Backend) upload(op string, buf *intBuf, v []int32) uint64 {
	if buf.sent && slices.Equal(buf.last, v) {
		buf.queued = true
		return buf.dev
	}
	b.current(op)
	if buf.queued {
		b.flush(op)
	}
	if len(v) > buf.capN {
		b.must(op, b.free(buf.dev))
		n := max(64, len(v))
		p, err := b.alloc(uintptr(n) * 4)
		b.must(op, err)
		buf.dev, buf.capN = p, n
	}
	d := b.drv
	switch {
	case len(v) == 1 && b.hostIO:
		// One value (a decode step's token id, position, slot): a memset
		// node carries it in its arguments, no host staging copy.
		b.must(op, d.check("cuMemsetD32Async", d.cuMemsetD32Async(buf.dev, uint32(v[0]), 1, b.stream)))
	case len(v) > 0:
		b.must(op, d.check("cuMemcpyHtoDAsync", d.cuMemcpyHtoDAsync(buf.dev, unsafe.Pointer(&v[0]), uintptr(len(v))*4, b.stream)))
	}
	buf.last = append(buf.last[:0], v...)
	buf.sent = true
	buf.queued = true
	return buf.dev
}

// scratchFloats returns scratch buffer i (0 or 1), at least n floats, for
// rounded activations. It grows to the largest product seen and then keeps
// its address.
func (b *Backend) scratchFloats(op string, i, n int) uint64 {
	need := uintptr(n) * 4
	if need > b.scratchSize[i] {
		b.must(op, b.free(b.scratch[i]))
		p, err := b.alloc(need)
		b.must(op, err)
		b.scratch[i], b.scratchSize[i] = p, need
	}
	return b.scratch[i]
}

// ---------------------------------------------------------------- launches

// kargs packs kernel arguments for cuLaunchKernel: each argument's bytes in
// a 64-bit slot (little-endian, so smaller types sit at the slot's start),
// and the array of pointers to the slots the driver reads them through.
// It lives in the Backend, on the heap, so the pointers stay valid.
type kargs struct {
	n    int
	vals [maxArgs]uint64
	ptrs [maxArgs]unsafe.Pointer
}

func (a *kargs) reset() *kargs { a.n = 0; return a }

func (a *kargs) put(v uint64) *kargs {
	a.vals[a.n] = v
	a.ptrs[a.n] = unsafe.Pointer(&a.vals[a.n])
	a.n++
	return a
}

func (a *kargs) ptr(p uint64) *kargs  { return a.put(p) }
func (a *kargs) i32(v int) *kargs     { return a.put(uint64(uint32(int32(v)))) }
func (a *kargs) i64(v int) *kargs     { return a.put(uint64(int64(v))) }
func (a *kargs) f32(v float32) *kargs { return a.put(uint64(math.Float32bits(v))) }

func (a *kargs) flag(v bool) *kargs {
	if v {
		return a.i32(1)
	}
	return a.i32(0)
}

// optMat passes a matrix that may be absent as a null pointer.
func (a *kargs) optMat(m *mat) *kargs {
	if m == nil {
		return a.ptr(0)
	}
	return a.ptr(m.ptr)
}

// dim3 is a grid or block size.
type dim3 struct{ x, y, z uint32 }

func grid1(n, per int) dim3 { return dim3{uint32((n + per - 1) / per), 1, 1} }

// launch queues fn with the packed arguments (see graph.go). Every
// operation but MatMul's products launches through it, and so forgets
// which activations the scratch buffer holds rounded: the operation may
// overwrite them.
func (b *Backend) launch(op string, fn uintptr, grid, block dim3) {
	b.actValid = false
	b.launchKeep(op, fn, grid, block)
}

// launchKeep is launch for a product, which writes only its output.
func (b *Backend) launchKeep(op string, fn uintptr, grid, block dim3) {
	if grid.x == 0 || grid.y == 0 || grid.z == 0 {
		return // nothing to do (an empty batch)
	}
	b.enqueue(op, fn, grid, block)
}

// Open is New with the default options, returned as a backend.Backend
// (a nil interface on error): engine.NewBackend's "cuda".
func Open() (backend.Backend, error) {
	b, err := New(Options{})
	if err != nil {
		return nil, err
	}
	return b, nil
}
