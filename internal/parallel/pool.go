// Package parallel runs one operation's work across a fixed set of
// long-lived worker goroutines, with one barrier per operation.
//
// A forward pass runs a few hundred operations per token, many of them
// only microseconds long; starting a goroutine per operation, or waking a
// parked one through a channel (tens of microseconds on a busy machine),
// would cost more than the operations themselves. The pool's workers
// therefore spin briefly after each operation, so that the next one reaches
// them through a single atomic word, and park on a channel only when no
// work has come for a while, so that an idle pool burns no CPU.
//
// An operation's rows are cut into chunks that the caller and the workers
// claim one at a time, so a worker that the operating system has
// descheduled, or that is still waking up, delays nobody: whoever is
// running takes the remaining chunks.
package parallel

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is one operation split by rows. Run computes rows [lo, hi); it is
// called concurrently on disjoint ranges, possibly several times per
// worker within one operation. worker, in [0, Threads), tells which worker
// runs the range, so a task can give each its own scratch space; two calls
// with the same worker never overlap in time.
type Task interface {
	Run(worker, lo, hi int)
}

const (
	// chunksPerThread is how many chunks an operation is cut into per
	// thread: enough for a fast thread to take over part of a slow one's
	// share, few enough that claiming them (an atomic add on a line the
	// threads share) costs little. Two measured faster than four on a
	// small model's batched steps.
	chunksPerThread = 2
	// spinFor is how long a worker waits for the next operation, and the
	// caller for the workers, before parking. Forward-pass operations
	// follow each other within microseconds, but on a busy machine one
	// thread often falls behind the other by more than 50 µs (the value
	// before): a two-thread decode step then parked and woke about 40
	// times per token, each costing a wake-up's latency and often an
	// operation run by the caller alone. With 0.5–2 ms parks became rare
	// (a few per hundred tokens), and in alternating runs F16 decode went
	// 23.1–24.6 → 25.3–26.7 tokens/s (0.5 ms, a quiet minute) and Q4_K_M
	// 43.8–45.4 → 44.1–47.9 (1 ms, a busy one); see docs/PERFORMANCE.md.
	// An idle pool still parks within a millisecond, and waiters yield
	// the processor while they spin.
	spinFor = time.Millisecond
	// tightSpins is how many times a waiter polls before it starts
	// yielding its processor to other goroutines between polls. Longer
	// pure spinning measured slower: the goroutines the server runs
	// beside a forward pass (sampling, streaming) need the processor.
	tightSpins = 64
)

// The state word: the operation's number in the high 32 bits, a flag set
// once the operation takes no more helpers, and the count of workers that
// joined it in the low bits.
const (
	epochShift = 32
	closedBit  = 1 << 31
	joinedMask = closedBit - 1
)

// Pool is a set of workers. The zero Pool is not usable; call New.
type Pool struct {
	n  int
	mu sync.Mutex // one operation at a time

	// The current operation, written by For before it publishes the new
	// epoch and left alone until every worker that joined has finished.
	task               Task
	rows, align, chunk int // rows, alignment, units (of align rows) per chunk
	chunks             int32
	// The padding keeps each atomic word, written by different threads,
	// on a cache line of its own.
	_        [64]byte
	state    atomic.Uint64 // epoch | closedBit | joined
	_        [56]byte
	next     atomic.Int32 // next unclaimed chunk
	_        [60]byte
	finished atomic.Int32 // joined workers that are done
	_        [60]byte
	waiting  atomic.Int32 // For is parked on done
	done     chan struct{}
	workers  []worker
	closed   atomic.Bool
	exited   sync.WaitGroup
	_        [64]byte
}

type worker struct {
	sleeping atomic.Int32 // parked on wake
	wake     chan struct{}
	_        [56]byte
}

// New starts a pool of n workers (the caller's goroutine counts as one of
// them, so n-1 goroutines are started). n < 1 means 1.
func New(n int) *Pool {
	if n < 1 {
		n = 1
	}
	p := &Pool{n: n, done: make(chan struct{}, 1), workers: make([]worker, n-1)}
	p.exited.Add(n - 1)
	for i := range p.workers {
		p.workers[i].wake = make(chan struct{}, 1)
		go p.work(i + 1)
	}
	return p
}

// Threads is the number of workers.
func (p *Pool) Threads() int { return p.n }

// For runs task over rows [0, n) and returns when every row is done. The
// rows are handed out in ranges whose starts are multiples of align
// (align < 1 means 1). It does not allocate.
func (p *Pool) For(n, align int, task Task) {
	if n <= 0 {
		return
	}
	if align < 1 {
		align = 1
	}
	units := (n + align - 1) / align
	if p.n == 1 || units == 1 {
		task.Run(0, 0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	chunks := min(units, p.n*chunksPerThread)
	p.task, p.rows, p.align = task, n, align
	p.chunk = (units + chunks - 1) / chunks
	p.chunks = int32((units + p.chunk - 1) / p.chunk)
	p.next.Store(0)
	p.finished.Store(0)
	epoch := p.state.Load()>>epochShift + 1
	p.state.Store(epoch << epochShift)
	for i := range p.workers {
		w := &p.workers[i]
		if w.sleeping.Load() == 1 && w.sleeping.Swap(0) == 1 {
			w.wake <- struct{}{}
		}
	}
	p.runChunks(0)
	// No chunk is left: close the operation to latecomers and wait for
	// those that joined.
	var joined int32
	for {
		s := p.state.Load()
		if p.state.CompareAndSwap(s, s|closedBit) {
			joined = int32(s & joinedMask)
			break
		}
	}
	p.waitFinished(joined)
	p.task = nil
}

// runChunks claims and runs chunks of the current operation until none is
// left.
func (p *Pool) runChunks(worker int) {
	task, rows, step := p.task, p.rows, p.chunk*p.align
	for {
		c := p.next.Add(1) - 1
		if c >= p.chunks {
			return
		}
		lo := int(c) * step
		task.Run(worker, lo, min(lo+step, rows))
	}
}

// waitFinished waits until joined workers have finished the operation.
func (p *Pool) waitFinished(joined int32) {
	if joined == 0 {
		return
	}
	start := time.Time{}
	for i := 0; ; i++ {
		if p.finished.Load() == joined {
			return
		}
		if i < tightSpins {
			continue
		}
		if start.IsZero() {
			start = time.Now()
		} else if i%16 == 0 && time.Since(start) > spinFor {
			break
		}
		runtime.Gosched()
	}
	// Park. The last worker to finish signals done if it sees waiting;
	// whichever of us clears waiting first decides whether it does.
	p.waiting.Store(1)
	if p.finished.Load() == joined && p.waiting.Swap(0) == 1 {
		return
	}
	<-p.done
}

// work is worker id's loop: wait for an operation, join it, run chunks.
func (p *Pool) work(id int) {
	defer p.exited.Done()
	w := &p.workers[id-1]
	var seen uint64 // the last epoch this worker looked at
	for {
		s := p.waitEpoch(w, seen)
		if p.closed.Load() {
			return
		}
		seen = s >> epochShift
		if !p.join(seen) {
			continue
		}
		p.runChunks(id)
		f := p.finished.Add(1)
		if s := p.state.Load(); s>>epochShift == seen && s&closedBit != 0 && int32(s&joinedMask) == f {
			if p.waiting.Swap(0) == 1 {
				p.done <- struct{}{}
			}
		}
	}
}

// join adds the worker to operation epoch unless it has already closed.
func (p *Pool) join(epoch uint64) bool {
	for {
		s := p.state.Load()
		if s>>epochShift != epoch || s&closedBit != 0 {
			return false
		}
		if p.state.CompareAndSwap(s, s+1) {
			return true
		}
	}
}

// waitEpoch returns the state word once its epoch differs from seen,
// spinning first and then parking on the worker's wake channel.
func (p *Pool) waitEpoch(w *worker, seen uint64) uint64 {
	start := time.Time{}
	for i := 0; ; i++ {
		if s := p.state.Load(); s>>epochShift != seen {
			return s
		}
		if i < tightSpins {
			continue
		}
		if start.IsZero() {
			start = time.Now()
		} else if i%16 == 0 && time.Since(start) > spinFor {
			// Park. For wakes a sleeping worker after publishing an
			// epoch; whichever of us clears sleeping first decides
			// whether a wake-up is sent.
			w.sleeping.Store(1)
			if s := p.state.Load(); s>>epochShift != seen {
				if w.sleeping.Swap(0) == 0 {
					<-w.wake
				}
				return s
			}
			<-w.wake
			start, i = time.Time{}, 0
			continue
		}
		runtime.Gosched()
	}
}

// Close stops the workers and waits for them to exit. The pool must not be
// used afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return
	}
	epoch := p.state.Load()>>epochShift + 1
	p.state.Store(epoch<<epochShift | closedBit)
	for i := range p.workers {
		w := &p.workers[i]
		if w.sleeping.Swap(0) == 1 {
			w.wake <- struct{}{}
		}
	}
	p.exited.Wait()
}
