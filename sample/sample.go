// Package sample picks the next token from a model's logits the way
// llama.cpp's default sampler chain does (penalties, top-k, top-p, min-p,
// temperature, then a random draw), and finds stop strings in generated
// text (StopChecker).
//
// Greedy sampling (temperature 0) gives the same token as llama.cpp. Random
// sampling follows the same distribution but draws from math/rand/v2's PCG
// instead of llama.cpp's mt19937, so the same seed does not give the same
// text in both.
package sample

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"llamago/backend"
)

// Params configures a Sampler. DefaultParams gives llama.cpp's defaults;
// the zero value is not valid (its TopP is 0).
type Params struct {
	// Temperature divides the logits before the draw: below 1 sharpens the
	// distribution, above 1 flattens it. 0 (anything below 1e-6, negative
	// included) samples greedily: the highest logit wins. Default 0.8.
	Temperature float32
	// TopK keeps the K most likely tokens; 0 or less keeps all. Default 40.
	TopK int
	// TopP keeps the most likely tokens whose probabilities add up to at
	// least TopP (at least one token); 1 keeps all. Must be in (0, 1].
	// Default 0.95.
	TopP float32
	// MinP drops the tokens less likely than MinP times the most likely
	// one; 0 keeps all. Must be in [0, 1]. Default 0.05.
	MinP float32

	// RepeatPenalty divides the positive logits, and multiplies the
	// negative ones, of the tokens among the last RepeatLastN accepted;
	// 1 (or 0) is off. Must not be negative. Default 1.
	RepeatPenalty float32
	// RepeatLastN is how many accepted tokens the penalties look back on;
	// 0 turns the penalties off. Default 64.
	RepeatLastN int
	// FrequencyPenalty is subtracted from a token's logit once per time it
	// occurs among the last RepeatLastN tokens, PresencePenalty once if it
	// occurs at all. 0 is off. Defaults 0.
	FrequencyPenalty, PresencePenalty float32

	// Seed starts the random number generator; the same seed, parameters
	// and logits give the same tokens.
	Seed uint64
}

// DefaultParams returns llama.cpp's default sampling parameters (common.h's
// common_params_sampling), with seed 0.
func DefaultParams() Params {
	return Params{
		Temperature:   0.8,
		TopK:          40,
		TopP:          0.95,
		MinP:          0.05,
		RepeatPenalty: 1,
		RepeatLastN:   64,
	}
}

// greedyBelow is the temperature under which sampling is greedy.
const greedyBelow = 1e-6

// candidate is a token still in the running, with its logit and, once the
// softmax has run, its probability.
type candidate struct {
	id    int32
	logit float32
	p     float32
}

// Sampler picks tokens. It keeps the history the penalties need and the
// random generator's state, so each generation needs its own. It allocates
// nothing after New.
type Sampler struct {
	p      Params
	nVocab int
	greedy bool

	buf []candidate // room for the whole vocabulary, reused by every Sample
	pcg *rand.PCG
	rng *rand.Rand

	// The last RepeatLastN accepted tokens, as a ring, and how many times
	// each token occurs in it.
	history     []int32
	historyNext int
	historyLen  int
	counts      []int32
	penalize    bool
}

// New checks p and returns a Sampler for logits of nVocab entries.
func New(p Params, nVocab int) (*Sampler, error) {
	if nVocab <= 0 {
		return nil, fmt.Errorf("sample: vocabulary size %d is not positive", nVocab)
	}
	for _, f := range []struct {
		name string
		v    float32
	}{
		{"temperature", p.Temperature}, {"top_p", p.TopP}, {"min_p", p.MinP},
		{"repeat_penalty", p.RepeatPenalty}, {"frequency_penalty", p.FrequencyPenalty},
		{"presence_penalty", p.PresencePenalty},
	} {
		if math.IsNaN(float64(f.v)) || math.IsInf(float64(f.v), 0) {
			return nil, fmt.Errorf("sample: %s is %v", f.name, f.v)
		}
	}
	if !(p.TopP > 0 && p.TopP <= 1) {
		return nil, fmt.Errorf("sample: top_p %v is outside (0, 1] (1 turns it off; start from DefaultParams)", p.TopP)
	}
	if p.MinP < 0 || p.MinP > 1 {
		return nil, fmt.Errorf("sample: min_p %v is outside [0, 1] (0 turns it off)", p.MinP)
	}
	if p.RepeatPenalty < 0 {
		return nil, fmt.Errorf("sample: repeat_penalty %v is negative (1 turns it off)", p.RepeatPenalty)
	}
	if p.RepeatPenalty == 0 {
		p.RepeatPenalty = 1 // unset: a factor of 0 would zero or blow up logits
	}
	if p.RepeatLastN < 0 {
		return nil, fmt.Errorf("sample: repeat_last_n %d is negative (pass the context size to look back on all of it)", p.RepeatLastN)
	}
	if p.TopK <= 0 || p.TopK > nVocab {
		p.TopK = nVocab
	}
	s := &Sampler{
		p:      p,
		nVocab: nVocab,
		greedy: p.Temperature < greedyBelow,
		buf:    make([]candidate, nVocab),
		pcg:    rand.NewPCG(p.Seed, p.Seed),
		penalize: p.RepeatLastN > 0 &&
			(p.RepeatPenalty != 1 || p.FrequencyPenalty != 0 || p.PresencePenalty != 0),
	}
	s.rng = rand.New(s.pcg)
	if s.penalize {
		s.history = make([]int32, p.RepeatLastN)
		s.counts = make([]int32, nVocab)
	}
	return s, nil
}

// Params returns the parameters in use, after New's adjustments (TopK
// turned off is the vocabulary size, RepeatPenalty 0 is 1).
func (s *Sampler) Params() Params { return s.p }

// Reset forgets the accepted tokens and restarts the random generator from
// the seed, so the sampler behaves as new.
func (s *Sampler) Reset() {
	s.pcg.Seed(s.p.Seed, s.p.Seed)
	clear(s.counts)
	s.historyNext, s.historyLen = 0, 0
}

// Accept records a token that entered the context, for the penalties: call
// it for each sampled token, and for prompt tokens if they should count too
// (llama.cpp's tools do).
func (s *Sampler) Accept(id int32) {
	if !s.penalize || id < 0 || int(id) >= s.nVocab {
		return
	}
	if s.historyLen == len(s.history) {
		s.counts[s.history[s.historyNext]]--
	} else {
		s.historyLen++
	}
	s.history[s.historyNext] = id
	s.historyNext = (s.historyNext + 1) % len(s.history)
	s.counts[id]++
}

// ErrNoCandidate is returned when every logit is -Inf.
var ErrNoCandidate = errors.New("sample: every logit is -Inf")

// Greedy reports whether the sampler picks the highest logit with no
// penalty to apply: then Sample(logits) is PickToken(backend.FindPick(logits)),
// which a backend can compute where the logits are (backend.ArgMaxer), and
// SampleBest takes its result.
func (s *Sampler) Greedy() bool { return s.greedy && !s.penalize }

// PickToken is the token greedy Sample returns for the logits p was found
// in (backend.FindPick, or a backend's ArgMax), or the error it returns:
// the first NaN or +Inf logit, or ErrNoCandidate when every logit is -Inf.
func PickToken(p backend.Pick) (int32, error) {
	if p.Bad >= 0 {
		return 0, fmt.Errorf("sample: logit %d is %v", p.Bad, p.BadLogit)
	}
	if p.ID < 0 {
		return 0, ErrNoCandidate
	}
	return p.ID, nil
}

// SampleBest is Sample for a sampler that is Greedy, given
// backend.FindPick of the logits instead of the logits themselves.
func (s *Sampler) SampleBest(b backend.Pick) (int32, error) {
	if !s.Greedy() {
		return 0, errors.New("sample: SampleBest needs a greedy sampler without penalties")
	}
	if b.ID >= int32(s.nVocab) || b.Bad >= int32(s.nVocab) {
		return 0, fmt.Errorf("sample: greedy pick %d (bad logit at %d) outside the vocabulary of %d", b.ID, b.Bad, s.nVocab)
	}
	return PickToken(b)
}

// Sample picks the next token from logits (one per vocabulary entry, not
// modified). It fails on NaN or +Inf logits, which come from a broken
// model or kernel.
func (s *Sampler) Sample(logits []float32) (int32, error) {
	if s.Greedy() {
		if len(logits) != s.nVocab {
			return 0, fmt.Errorf("sample: %d logits for a vocabulary of %d", len(logits), s.nVocab)
		}
		return PickToken(backend.FindPick(logits))
	}
	cands, err := s.candidates(logits)
	if err != nil {
		return 0, err
	}
	if s.greedy || len(cands) == 1 {
		if len(cands) == 1 && !s.greedy {
			s.rng.Float64() // one draw per sampled token, whatever is left
		}
		return cands[0].id, nil
	}
	if t := s.p.Temperature; t != 1 {
		for i := range cands {
			cands[i].logit /= t
		}
	}
	return s.draw(cands), nil
}

// candidates applies the penalties and the truncations (top-k, top-p,
// min-p) to logits and returns the tokens left, or for greedy sampling the
// best one alone.
func (s *Sampler) candidates(logits []float32) ([]candidate, error) {
	if len(logits) != s.nVocab {
		return nil, fmt.Errorf("sample: %d logits for a vocabulary of %d", len(logits), s.nVocab)
	}
	negInf, posInf := float32(math.Inf(-1)), float32(math.Inf(1))
	cands := s.buf[:len(logits)]
	best, bestLogit := -1, negInf
	for i, l := range logits {
		if !(l < posInf) { // NaN or +Inf
			return nil, fmt.Errorf("sample: logit %d is %v", i, l)
		}
		if s.penalize {
			l = s.penalty(int32(i), l)
		}
		if !s.greedy {
			cands[i] = candidate{id: int32(i), logit: l}
		}
		// Strictly greater: ties go to the lowest id, like llama.cpp's
		// greedy sampler; -Inf (a masked token) never wins.
		if l > bestLogit {
			best, bestLogit = i, l
		}
	}
	if best < 0 {
		return nil, ErrNoCandidate
	}
	if s.greedy {
		cands[0] = candidate{id: int32(best), logit: bestLogit}
		return cands[:1], nil
	}
	cands, sorted := s.topK(cands)
	cands, sorted = s.topP(cands, sorted)
	return s.minP(cands, sorted), nil
}

// penalty applies the repetition, frequency and presence penalties to the
// logit l of token id, as llama_sampler_penalties does.
func (s *Sampler) penalty(id int32, l float32) float32 {
	n := s.counts[id]
	if n == 0 {
		return l
	}
	if l <= 0 {
		l *= s.p.RepeatPenalty
	} else {
		l /= s.p.RepeatPenalty
	}
	return l - float32(n)*s.p.FrequencyPenalty - s.p.PresencePenalty
}

// better orders candidates by decreasing logit, then increasing id, so that
// every order and selection is deterministic.
func better(a, b candidate) bool {
	return a.logit > b.logit || a.logit == b.logit && a.id < b.id
}

func compareCandidates(a, b candidate) int {
	switch {
	case better(a, b):
		return -1
	case better(b, a):
		return 1
	}
	return 0
}

// topK keeps the TopK best candidates, sorted best first. The second result
// reports whether cands is sorted.
func (s *Sampler) topK(cands []candidate) ([]candidate, bool) {
	k := s.p.TopK
	if k >= len(cands) {
		return cands, false
	}
	selectBest(cands, k)
	cands = cands[:k]
	slices.SortFunc(cands, compareCandidates)
	return cands, true
}

// selectBest moves the k best candidates to cands[:k], in no particular
// order, in O(n log k): cands[:k] is kept as a heap whose root is the worst
// of the best so far.
func selectBest(cands []candidate, k int) {
	if k <= 0 {
		return
	}
	heap := cands[:k]
	for i := k/2 - 1; i >= 0; i-- {
		siftDown(heap, i)
	}
	for i := k; i < len(cands); i++ {
		if better(cands[i], heap[0]) {
			heap[0], cands[i] = cands[i], heap[0]
			siftDown(heap, 0)
		}
	}
}

// siftDown restores the heap property below i, the worst candidate on top.
func siftDown(heap []candidate, i int) {
	for {
		worst, l, r := i, 2*i+1, 2*i+2
		if l < len(heap) && better(heap[worst], heap[l]) {
			worst = l
		}
		if r < len(heap) && better(heap[worst], heap[r]) {
			worst = r
		}
		if worst == i {
			return
		}
		heap[i], heap[worst] = heap[worst], heap[i]
		i = worst
	}
}

// softmax sets the probabilities of cands from their logits.
func softmax(cands []candidate) {
	maxLogit := cands[0].logit
	for _, c := range cands[1:] {
		maxLogit = max(maxLogit, c.logit)
	}
	var sum float64
	for i := range cands {
		p := float32(math.Exp(float64(cands[i].logit - maxLogit)))
		cands[i].p = p
		sum += float64(p)
	}
	for i := range cands {
		cands[i].p = float32(float64(cands[i].p) / sum)
	}
}

// topP keeps the smallest set of best candidates whose probabilities reach
// TopP, at least one. A sorted list keeps its order; an unsorted one (top-k
// off) is not sorted, which would cost O(n log n) on the whole vocabulary.
func (s *Sampler) topP(cands []candidate, sorted bool) ([]candidate, bool) {
	if s.p.TopP >= 1 {
		return cands, sorted
	}
	softmax(cands)
	if !sorted {
		return cands[:selectNucleus(cands, float64(s.p.TopP))], false
	}
	var cum float64
	for i, c := range cands {
		cum += float64(c.p)
		if cum >= float64(s.p.TopP) {
			return cands[:i+1], true
		}
	}
	return cands, true
}

// selectNucleus moves to the front of cands the fewest best candidates
// whose probabilities add up to at least mass, and returns how many they
// are. It is quickselect, except that the side to continue on depends on
// the probability mass of the better side rather than on its size:
// O(n) expected.
func selectNucleus(cands []candidate, mass float64) int {
	lo, hi := 0, len(cands) // cands[:lo] are taken; the answer ends in (lo, hi]
	need := mass
	for hi-lo > 1 {
		m := partition(cands[lo:hi]) + lo
		var better float64
		for _, c := range cands[lo:m] {
			better += float64(c.p)
		}
		if better >= need && m > lo {
			hi = m // enough among the better ones
			continue
		}
		need -= better
		if float64(cands[m].p) >= need {
			return m + 1 // the better ones and the pivot
		}
		need -= float64(cands[m].p)
		lo = m + 1
	}
	return hi
}

// partition reorders cands around a pivot, the median of the first, middle
// and last, into better ones, the pivot, and worse ones; it returns the
// pivot's index.
func partition(cands []candidate) int {
	last := len(cands) - 1
	a, b, c := 0, last/2, last
	if better(cands[b], cands[a]) {
		a, b = b, a
	}
	if better(cands[c], cands[b]) {
		b = c
		if better(cands[b], cands[a]) {
			b = a
		}
	}
	cands[b], cands[last] = cands[last], cands[b]
	pivot := cands[last]
	i := 0
	for j := range last {
		if better(cands[j], pivot) {
			cands[i], cands[j] = cands[j], cands[i]
			i++
		}
	}
	cands[i], cands[last] = cands[last], cands[i]
	return i
}

// minP drops candidates whose probability is below MinP times the best
// one's, i.e. whose logit is below maxLogit + ln(MinP). It keeps the order.
func (s *Sampler) minP(cands []candidate, sorted bool) []candidate {
	if s.p.MinP <= 0 {
		return cands
	}
	maxLogit := cands[0].logit
	if !sorted {
		for _, c := range cands {
			maxLogit = max(maxLogit, c.logit)
		}
	}
	threshold := maxLogit + float32(math.Log(float64(s.p.MinP)))
	n := 0
	for _, c := range cands {
		if c.logit >= threshold {
			cands[n] = c
			n++
		} else if sorted {
			break
		}
	}
	return cands[:n]
}

// draw picks a candidate at random in proportion to the softmax of the
// logits, as llama.cpp's dist sampler: the first whose running sum of
// weights reaches a uniform fraction of the total.
func (s *Sampler) draw(cands []candidate) int32 {
	maxLogit := cands[0].logit
	for _, c := range cands[1:] {
		maxLogit = max(maxLogit, c.logit)
	}
	var sum float64
	for i := range cands {
		w := float32(math.Exp(float64(cands[i].logit - maxLogit)))
		cands[i].p = w
		sum += float64(w)
	}
	target := s.rng.Float64() * sum
	var run float64
	for _, c := range cands {
		run += float64(c.p)
		if run >= target && c.p > 0 {
			return c.id
		}
	}
	// Rounding left the target beyond the sum: take the last possible one.
	for i := len(cands) - 1; i > 0; i-- {
		if cands[i].p > 0 {
			return cands[i].id
		}
	}
	return cands[0].id
}
