package probe

import (
	"errors"
	"fmt"
	"sync"
)

// Sink receives the probes a Set lets through. data belongs to the caller
// and may be overwritten once Emit returns: a sink that keeps it must copy.
type Sink interface {
	Emit(name string, pos int, shape []int, data []float32) error
	Close() error
}

// Set is what the model holds: a filter and the sinks behind it. A nil *Set
// means no probes; every method is nil-safe and costs a nil check then.
//
// A Set may be used from several goroutines; emissions are serialised so
// that sinks see them one at a time, in the order the model made them.
type Set struct {
	filter Filter
	sinks  []Sink

	// wants caches filter.MatchName per name: glob matching costs a few
	// hundred ns, a map lookup a few tens, and the model asks about the
	// same few hundred names at every token.
	wantsMu sync.RWMutex
	wants   map[string]bool

	mu     sync.Mutex
	err    error // first error a sink returned; later emissions are dropped
	closed bool
}

// NewSet returns a Set that passes the probes f selects to the sinks.
func NewSet(f Filter, sinks ...Sink) *Set {
	return &Set{filter: f, sinks: sinks, wants: map[string]bool{}}
}

// maxCachedNames bounds the Wants cache; names past it are matched each time.
const maxCachedNames = 1 << 14

// Wants reports whether some position of the probe name would be recorded.
// The model calls it before it copies a tensor back from a backend.
func (s *Set) Wants(name string) bool {
	if s == nil {
		return false // kept apart from wantsName so that this inlines
	}
	return s.wantsName(name)
}

func (s *Set) wantsName(name string) bool {
	if s.filter.IsAll() {
		return true
	}
	s.wantsMu.RLock()
	want, ok := s.wants[name]
	s.wantsMu.RUnlock()
	if ok {
		return want
	}
	want = s.filter.MatchName(name)
	s.wantsMu.Lock()
	if s.wants == nil { // a Set made without NewSet
		s.wants = map[string]bool{}
	}
	if len(s.wants) < maxCachedNames {
		s.wants[name] = want
	}
	s.wantsMu.Unlock()
	return want
}

// WantsPos reports whether probes at the token position would be recorded.
func (s *Set) WantsPos(pos int) bool {
	if s == nil {
		return false
	}
	return s.filter.MatchPos(pos)
}

// Emit passes one position's tensor to the sinks if the filter selects it.
// shape describes data (row-major); their sizes must agree. Once a sink has
// failed (for example StopOnNaN), Emit returns that error and records
// nothing more, so the model can stop at the first error it sees.
func (s *Set) Emit(name string, pos int, shape []int, data []float32) error {
	if s == nil {
		return nil // kept apart from emit so that this inlines
	}
	return s.emit(name, pos, shape, data)
}

func (s *Set) emit(name string, pos int, shape []int, data []float32) error {
	if !s.filter.MatchPos(pos) || !s.wantsName(name) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.closed {
		return fmt.Errorf("probe: emit %s at position %d after Close", name, pos)
	}
	if n, ok := shapeSize(shape); !ok || n != len(data) {
		// A caller bug, but recorded like a sink error so it is not lost
		// when the caller ignores Emit's result.
		s.err = fmt.Errorf("probe: %s at position %d: shape %v does not describe %d values", name, pos, shape, len(data))
		return s.err
	}
	for _, sink := range s.sinks {
		if err := sink.Emit(name, pos, shape, data); err != nil {
			s.err = err
			return err
		}
	}
	return nil
}

// Err returns the first error a sink returned, or nil.
func (s *Set) Err() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close closes every sink (a Dump writes its file then) and returns their
// errors joined. It does not return the emission error Err reports.
func (s *Set) Close() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, sink := range s.sinks {
		if err := sink.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// shapeSize returns the number of elements a shape describes; ok is false
// for a negative dimension or an overflow.
func shapeSize(shape []int) (n int, ok bool) {
	n = 1
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d != 0 && n > maxInt/d {
			return 0, false
		}
		n *= d
	}
	return n, true
}

const maxInt = int(^uint(0) >> 1)
