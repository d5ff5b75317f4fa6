package cuda

import (
	"errors"
	"fmt"
	"slices"
	"time"
	"unsafe"
)

// PendingLaunches is the number of launches queued in b, for the tests of
// package cuda_test that check fusions happened.
func PendingLaunches(b *Backend) int { return len(b.pending) }

// PendingIsAttentionDec64 reports whether the last queued launch runs
// attention_dec64, the decode attention compiled for heads of 64 values.
func PendingIsAttentionDec64(b *Backend) bool {
	return len(b.pending) > 0 && b.k.attentionDec64 != 0 && b.pending[len(b.pending)-1].fn == b.k.attentionDec64
}

// CUBLASGemms is the number of products b sent to cuBLAS, for the tests
// that check which path a product took.
func CUBLASGemms(b *Backend) int {
	if b.blas == nil {
		return 0
	}
	return b.blas.gemms
}

// CUBLASMinTokens is the fewest activation rows a product sends to cuBLAS.
const CUBLASMinTokens = cublasMinTokens

// TimeLastGraph replays the graph captured last n times back to back and
// returns the GPU time of one replay: a decode step's GPU time without the
// host's part, when that graph is a whole decode step.
func TimeLastGraph(b *Backend, n int) (time.Duration, error) {
	if len(b.graphCache) == 0 {
		return 0, errors.New("no graph captured")
	}
	return timeGraphs(b, []uintptr{b.graphCache[len(b.graphCache)-1].exec}, n)
}

// TimeLastStep replays the graphs launched before the host's last wait
// for the stream (a decode step's chunks, in order) n times back to back
// and returns the GPU time of one pass and how many graphs it holds: the
// step's GPU time with its chunks' graph boundaries, without the host.
func TimeLastStep(b *Backend, n int) (time.Duration, int, error) {
	graphs := slices.Clone(b.lastStep)
	if len(graphs) == 0 {
		return 0, 0, errors.New("no graph launched before the last wait")
	}
	d, err := timeGraphs(b, graphs, n)
	return d, len(graphs), err
}

// timeGraphs launches graphs in order, n times, after the stream is
// idle, and returns the GPU time of one pass.
func timeGraphs(b *Backend, graphs []uintptr, n int) (time.Duration, error) {
	defer b.enter("timeGraphs")()
	d := b.drv
	if err := b.makeCurrent(); err != nil {
		return 0, err
	}
	b.flush("timeGraphs")
	if err := d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)); err != nil {
		return 0, err
	}
	start := time.Now()
	for range n {
		for _, g := range graphs {
			if err := d.check("cuGraphLaunch", d.cuGraphLaunch(g, b.stream)); err != nil {
				return 0, err
			}
		}
	}
	if err := d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)); err != nil {
		return 0, err
	}
	return time.Since(start) / time.Duration(n), nil
}

// Mark is a moment of the host's part of a step: a graph launched
// (MarkGraph), Read called (MarkRead), the host's wait over (MarkWaited).
type Mark = hostMark

const (
	MarkGraph  = markGraph
	MarkRead   = markRead
	MarkWaited = markWaited
)

// RecordMarks starts recording the host's marks into m (or stops, with
// nil).
func RecordMarks(b *Backend, m *[]Mark) { b.marks = m }

// TimelineStamp is one stamp of the kernels built with TIMELINE=1
// (kernels/llamago.cu): a kernel (TL_… code), an event (0 start, 1 the
// wait for the kernel before returned, 2 end, 3 and 4 points inside, 5
// just before the wait, 6 and 7 two points of attention's prologue),
// whether the launch's last block (else its first) stamped it or any
// block its end (TL_BLOCKS=1), its slot and the GPU clock in
// nanoseconds. Blocks take the slots of their end stamps
// as they end, so those of one launch come after those of the launches
// before it.
type TimelineStamp struct {
	Kernel, Event int
	Last, Any     bool
	Slot          int
	At            int64
	SM, Block     int // a block's end stamp (Any): its multiprocessor and blockIdx.x
}

// ResetTimeline waits for the GPU and empties the timeline; ReadTimeline
// waits for it and returns the stamps since. Both fail when the loaded
// PTX was built without TIMELINE=1.
func ResetTimeline(b *Backend) error {
	defer b.enter("timeline")()
	count, _, tags, capacity, err := timelineSymbols(b)
	if err != nil {
		return err
	}
	// Blocks reserve slots they may not fill: a zero tag marks a slot
	// no stamp wrote.
	if err := b.drv.check("cuMemsetD8(tl_tag)", b.drv.cuMemsetD8(tags, 0, uintptr(4*capacity))); err != nil {
		return err
	}
	zero := uint32(0)
	return b.drv.check("cuMemcpyHtoD(tl_count)", b.drv.cuMemcpyHtoD(count, unsafe.Pointer(&zero), 4))
}

func ReadTimeline(b *Backend) ([]TimelineStamp, error) {
	defer b.enter("timeline")()
	count, times, tags, capacity, err := timelineSymbols(b)
	if err != nil {
		return nil, err
	}
	d := b.drv
	var n uint32
	if err := d.check("cuMemcpyDtoH(tl_count)", d.cuMemcpyDtoH(unsafe.Pointer(&n), count, 4)); err != nil {
		return nil, err
	}
	n = min(n, uint32(capacity))
	if n == 0 {
		return nil, nil
	}
	ts, tg := make([]uint64, n), make([]uint32, n)
	if err := d.check("cuMemcpyDtoH(tl_time)", d.cuMemcpyDtoH(unsafe.Pointer(&ts[0]), times, uintptr(8*n))); err != nil {
		return nil, err
	}
	if err := d.check("cuMemcpyDtoH(tl_tag)", d.cuMemcpyDtoH(unsafe.Pointer(&tg[0]), tags, uintptr(4*n))); err != nil {
		return nil, err
	}
	// tl_info (TL_BLOCKS=1 only): where each block's end stamp came from.
	info := make([]uint32, n)
	var infoAt uint64
	var infoSize uintptr
	name := []byte("tl_info\x00")
	if d.cuModuleGetGlobal(&infoAt, &infoSize, b.mod, &name[0]) == 0 {
		if err := d.check("cuMemcpyDtoH(tl_info)", d.cuMemcpyDtoH(unsafe.Pointer(&info[0]), infoAt, uintptr(4*n))); err != nil {
			return nil, err
		}
	}
	out := make([]TimelineStamp, 0, n)
	for i := range ts {
		if tg[i]>>16&1 == 0 {
			continue // a reserved slot no stamp wrote
		}
		out = append(out, TimelineStamp{Kernel: int(tg[i] & 0xff), Event: int(tg[i] >> 8 & 0xf), Last: tg[i]>>12&1 == 1,
			Any: tg[i]>>13&1 == 1, Slot: i, At: int64(ts[i]), SM: int(info[i] & 0xff), Block: int(info[i] >> 8)})
	}
	return out, nil
}

// timelineSymbols flushes the queue, waits for the GPU and finds the
// timeline's device variables and its number of slots (TL_CAP); the
// caller has entered the backend (its thread keeps the context current
// until it returns).
func timelineSymbols(b *Backend) (count, times, tags uint64, capacity int, err error) {
	if err := b.makeCurrent(); err != nil {
		return 0, 0, 0, 0, err
	}
	b.flush("timeline")
	d := b.drv
	if err := d.check("cuStreamSynchronize", d.cuStreamSynchronize(b.stream)); err != nil {
		return 0, 0, 0, 0, err
	}
	addr := func(name string) (uint64, uintptr, error) {
		var p uint64
		var size uintptr
		c := append([]byte(name), 0)
		if err := d.check("cuModuleGetGlobal("+name+")", d.cuModuleGetGlobal(&p, &size, b.mod, &c[0])); err != nil {
			return 0, 0, fmt.Errorf("%w (kernels built without TIMELINE=1?)", err)
		}
		return p, size, nil
	}
	if count, _, err = addr("tl_count"); err != nil {
		return
	}
	if times, _, err = addr("tl_time"); err != nil {
		return
	}
	var size uintptr
	tags, size, err = addr("tl_tag")
	return count, times, tags, int(size / 4), err
}

// PendingFolded is the number of queued launches that run a norm-folded
// product (mvqn_f16, mvqn_glu_f16), for the tests that check the fold.
func PendingFolded(b *Backend) int {
	n := 0
	for _, r := range b.pending {
		if r.fn == b.k.mvqnF16 || r.fn == b.k.mvqnGLUF16 {
			n++
		}
	}
	return n
}

// MVQNBlocks is how many blocks of mvqn_f16 and mvqn_glu_f16 the GPU holds
// at once (the most a launch of them takes).
func MVQNBlocks(b *Backend) (mvqn, glu int) { return b.mvqnBlocks, b.mvqnGLUBlocks }
