package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"llamago/backend"
	"llamago/engine"
	"llamago/model"
	"llamago/sample"
	"llamago/tokenizer"
)

// errShuttingDown ends the requests still running when the grace period
// of a shutdown is over.
var errShuttingDown = errors.New("server: shutting down")

// job is one generation request as the scheduler runs it. The scheduler
// goroutine owns the fields above mu; the handler reads the output below it.
type job struct {
	ctx       context.Context
	prompt    []int32
	sampler   *sample.Sampler
	maxTokens int // < 0: until the context is full
	stops     *sample.StopChecker
	dec       *tokenizer.StreamDecoder
	tok       *tokenizer.Tokenizer

	slot      int
	fed       int   // prompt tokens evaluated so far
	pos       int   // positions of the slot in use
	pending   int32 // the sampled token to evaluate next, once the prompt is in
	generated []int32
	stopped   bool

	mu     sync.Mutex
	out    strings.Builder // text not yet taken by the handler
	done   bool
	reason engine.StopReason
	err    error
	// notify has room for one wake-up, so the scheduler never blocks on a
	// slow client: the handler takes whatever text piled up.
	notify chan struct{}
}

// take returns the text produced since the last call and whether the job
// has finished (then reason and err say how).
func (j *job) take() (text string, done bool, reason engine.StopReason, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	text = j.out.String()
	j.out.Reset()
	return text, j.done, j.reason, j.err
}

func (j *job) wake() {
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// emit sends text through the stop-string checker to the handler.
func (j *job) emit(piece string) {
	out, stopped := j.stops.Push(piece)
	if stopped {
		j.stopped = true
	}
	if out == "" {
		return
	}
	j.mu.Lock()
	j.out.WriteString(out)
	j.mu.Unlock()
	j.wake()
}

// finish ends the job, flushing held-back text unless a stop string ended
// it, as engine.Session.Generate does.
func (j *job) finish(reason engine.StopReason, err error) {
	if err == nil && reason != engine.StopString {
		j.emit(j.dec.Flush())
		if tail := j.stops.Flush(); tail != "" {
			j.mu.Lock()
			j.out.WriteString(tail)
			j.mu.Unlock()
		}
	}
	j.mu.Lock()
	j.done, j.reason, j.err = true, reason, err
	j.mu.Unlock()
	j.wake()
}

// scheduler runs every sequence of the server through one model state:
// each step is one forward pass over the next token of every decoding
// sequence plus prompt chunks of those still prefilling.
type scheduler struct {
	m       *model.Model
	st      *model.State
	queue   chan *job
	slots   []*job
	metrics *metrics

	ids, pos, slot, outputs []int32
	outJobs                 []*job

	// Published after every change for the metrics, read from other
	// goroutines.
	activeSeqs, usedPositions atomic.Int64
}

// publish updates the counters other goroutines read.
func (s *scheduler) publish() {
	n, used := 0, 0
	for _, j := range s.slots {
		if j != nil {
			n++
			used += j.pos
		}
	}
	s.activeSeqs.Store(int64(n))
	s.usedPositions.Store(int64(used))
}

func newScheduler(m *model.Model, st *model.State, parallel, queueSize int, mt *metrics) *scheduler {
	n := st.MaxBatch()
	return &scheduler{
		m: m, st: st,
		queue:   make(chan *job, queueSize),
		slots:   make([]*job, parallel),
		metrics: mt,
		ids:     make([]int32, 0, n), pos: make([]int32, 0, n), slot: make([]int32, 0, n),
		outputs: make([]int32, 0, n), outJobs: make([]*job, 0, n),
	}
}

// submit queues j, or reports false when the queue is full.
func (s *scheduler) submit(j *job) bool {
	select {
	case s.queue <- j:
		return true
	default:
		return false
	}
}

// active counts the sequences holding a slot.
func (s *scheduler) active() int {
	n := 0
	for _, j := range s.slots {
		if j != nil {
			n++
		}
	}
	return n
}

// run steps until ctx ends, then fails every request left.
func (s *scheduler) run(ctx context.Context) {
	defer s.abortAll()
	for {
		s.publish()
		if !s.admit(ctx) {
			return
		}
		s.dropCancelled()
		s.publish()
		if s.active() == 0 {
			continue
		}
		if err := s.step(); err != nil {
			for i, j := range s.slots {
				if j != nil {
					j.finish("", err)
					s.slots[i] = nil
				}
			}
		}
	}
}

// admit moves queued jobs into free slots, waiting for one when nothing
// runs. It reports false when ctx ended.
func (s *scheduler) admit(ctx context.Context) bool {
	for i := range s.slots {
		if s.slots[i] != nil {
			continue
		}
		var j *job
		if s.active() == 0 {
			select {
			case j = <-s.queue:
			case <-ctx.Done():
				return false
			}
		} else {
			select {
			case j = <-s.queue:
			case <-ctx.Done():
				return false
			default:
				return true
			}
		}
		j.slot = i
		s.slots[i] = j
	}
	return ctx.Err() == nil
}

// dropCancelled frees the slots of clients that went away.
func (s *scheduler) dropCancelled() {
	for i, j := range s.slots {
		if j != nil && j.ctx.Err() != nil {
			j.finish("", j.ctx.Err())
			s.slots[i] = nil
			s.metrics.cancelled.Inc()
		}
	}
}

// abortAll fails the running and queued jobs (shutdown).
func (s *scheduler) abortAll() {
	for i, j := range s.slots {
		if j != nil {
			j.finish("", errShuttingDown)
			s.slots[i] = nil
		}
	}
	s.publish()
	for {
		select {
		case j := <-s.queue:
			j.finish("", errShuttingDown)
		default:
			return
		}
	}
}

// step runs one forward pass and samples for every sequence that gets
// logits from it.
func (s *scheduler) step() error {
	start := time.Now()
	s.ids, s.pos, s.slot, s.outputs, s.outJobs = s.ids[:0], s.pos[:0], s.slot[:0], s.outputs[:0], s.outJobs[:0]
	budget := s.st.MaxBatch()
	// Decoding sequences first: one row each, so prefills never stall them.
	decoding := 0
	for _, j := range s.slots {
		if j == nil || j.fed < len(j.prompt) {
			continue
		}
		s.addRow(j, j.pending, j.pos, true)
		budget--
		decoding++
	}
	for _, j := range s.slots {
		if j == nil || j.fed >= len(j.prompt) || budget == 0 {
			continue
		}
		n := min(len(j.prompt)-j.fed, budget)
		for k := range n {
			s.addRow(j, j.prompt[j.fed+k], j.fed+k, j.fed+k == len(j.prompt)-1)
		}
		budget -= n
	}
	logits, err := s.m.Forward(s.st, model.Input{
		Tokens:  s.ids,
		Batch:   backend.Batch{Slot: s.slot, Pos: s.pos},
		Outputs: s.outputs,
	}, nil)
	if err != nil {
		return fmt.Errorf("server: batched forward pass of %d rows: %w", len(s.ids), err)
	}
	// Advance positions: every row written belongs to its job's next spot.
	for r := range s.ids {
		j := s.slots[s.slot[r]]
		if j.fed < len(j.prompt) {
			j.fed++
		}
		j.pos++
	}
	nv := s.m.Config.NVocab
	generated := 0
	for o, j := range s.outJobs {
		if s.sampleNext(j, logits[o*nv:(o+1)*nv]) {
			s.slots[j.slot] = nil
		}
		generated++
	}
	s.metrics.stepDone(len(s.ids), generated, time.Since(start))
	return nil
}

func (s *scheduler) addRow(j *job, id int32, pos int, output bool) {
	if output {
		s.outputs = append(s.outputs, int32(len(s.ids)))
		s.outJobs = append(s.outJobs, j)
	}
	s.ids = append(s.ids, id)
	s.pos = append(s.pos, int32(pos))
	s.slot = append(s.slot, int32(j.slot))
}

// sampleNext picks j's next token from its logits and decides whether it
// is done, in the same order of checks as engine.Session.Generate, so a
// greedy answer is the same token for token. It reports whether j ended.
func (s *scheduler) sampleNext(j *job, logits []float32) bool {
	if j.maxTokens >= 0 && len(j.generated) >= j.maxTokens {
		j.finish(engine.StopLength, nil)
		return true
	}
	id, err := j.sampler.Sample(logits)
	if err != nil {
		j.finish("", fmt.Errorf("server: sampling at position %d: %w", j.pos, err))
		return true
	}
	j.sampler.Accept(id)
	if j.tok.IsEOG(id) {
		j.finish(engine.StopEOS, nil)
		return true
	}
	j.generated = append(j.generated, id)
	s.metrics.generatedTokens.Inc()
	j.emit(j.dec.Add(id))
	switch {
	case j.stopped:
		j.finish(engine.StopString, nil)
		return true
	case j.pos >= s.st.Ctx():
		j.finish(engine.StopContext, nil)
		return true
	case j.maxTokens >= 0 && len(j.generated) >= j.maxTokens:
		j.finish(engine.StopLength, nil)
		return true
	}
	j.pending = id
	return false
}
