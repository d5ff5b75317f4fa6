// Package parallel runs one operation's work across a fixed set of
// long-lived worker goroutines, with one barrier per operation.
//
// A forward pass runs a few hundred operations per token; starting a
// goroutine per operation or per row would cost more than the smaller
// operations themselves. The pool's workers stay parked on a channel between
// operations, and For hands each of them one contiguous range of rows.
package parallel

import "sync"

// Task is one operation split by rows. Run computes rows [lo, hi); it is
// called concurrently on disjoint ranges. worker, in [0, Threads), tells
// which worker runs the range, so a task can give each its own scratch space.
type Task interface {
	Run(worker, lo, hi int)
}

type chunk struct {
	task           Task
	worker, lo, hi int
}

// Pool is a set of workers. The zero Pool is not usable; call New.
type Pool struct {
	n    int
	work []chan chunk
	wg   sync.WaitGroup
	mu   sync.Mutex // one operation at a time
}

// New starts a pool of n workers (the caller's goroutine counts as one of
// them, so n-1 goroutines are started). n < 1 means 1.
func New(n int) *Pool {
	if n < 1 {
		n = 1
	}
	p := &Pool{n: n, work: make([]chan chunk, n-1)}
	for i := range p.work {
		ch := make(chan chunk)
		p.work[i] = ch
		go func() {
			for c := range ch {
				c.task.Run(c.worker, c.lo, c.hi)
				p.wg.Done()
			}
		}()
	}
	return p
}

// Threads is the number of workers.
func (p *Pool) Threads() int { return p.n }

// For runs task over rows [0, n), split into at most Threads contiguous
// ranges whose starts are multiples of align (align < 1 means 1), and
// returns when every range is done. It does not allocate.
func (p *Pool) For(n, align int, task Task) {
	if n <= 0 {
		return
	}
	if align < 1 {
		align = 1
	}
	units := (n + align - 1) / align
	workers := p.n
	if units < workers {
		workers = units
	}
	if workers <= 1 {
		task.Run(0, 0, n)
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	per := units / workers
	extra := units % workers
	lo := 0
	bounds := func(i int) (int, int) {
		u := per
		if i < extra {
			u++
		}
		hi := lo + u*align
		if hi > n {
			hi = n
		}
		return lo, hi
	}
	p.wg.Add(workers - 1)
	var firstLo, firstHi int
	for i := 0; i < workers; i++ {
		l, h := bounds(i)
		if i == 0 {
			firstLo, firstHi = l, h
		} else {
			p.work[i-1] <- chunk{task, i, l, h}
		}
		lo = h
	}
	task.Run(0, firstLo, firstHi)
	p.wg.Wait()
}

// Close stops the workers. The pool must not be used afterwards.
func (p *Pool) Close() {
	for _, ch := range p.work {
		close(ch)
	}
}
