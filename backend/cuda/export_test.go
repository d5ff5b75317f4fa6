package cuda

import (
	"errors"
	"slices"
	"time"
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
