package sample

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"llamago/backend"
)

func mustNew(t testing.TB, p Params, nVocab int) *Sampler {
	t.Helper()
	s, err := New(p, nVocab)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// noTruncation samples from the whole distribution at temperature t.
func noTruncation(t float32) Params {
	p := DefaultParams()
	p.Temperature, p.TopK, p.TopP, p.MinP = t, 0, 1, 0
	return p
}

func randomLogits(r *rand.Rand, n int) []float32 {
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 3)
	}
	return l
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*Params)
		nVocab int
		ok     bool
	}{
		{"defaults", func(*Params) {}, 10, true},
		{"negative temperature is greedy", func(p *Params) { p.Temperature = -1 }, 10, true},
		{"top_p 1", func(p *Params) { p.TopP = 1 }, 10, true},
		{"top_p 0", func(p *Params) { p.TopP = 0 }, 10, false},
		{"top_p above 1", func(p *Params) { p.TopP = 1.5 }, 10, false},
		{"min_p negative", func(p *Params) { p.MinP = -0.1 }, 10, false},
		{"min_p above 1", func(p *Params) { p.MinP = 2 }, 10, false},
		{"repeat penalty 0 is off", func(p *Params) { p.RepeatPenalty = 0 }, 10, true},
		{"repeat penalty negative", func(p *Params) { p.RepeatPenalty = -1 }, 10, false},
		{"repeat_last_n negative", func(p *Params) { p.RepeatLastN = -1 }, 10, false},
		{"NaN temperature", func(p *Params) { p.Temperature = float32(math.NaN()) }, 10, false},
		{"infinite penalty", func(p *Params) { p.FrequencyPenalty = float32(math.Inf(1)) }, 10, false},
		{"empty vocabulary", func(*Params) {}, 0, false},
		{"zero value", func(p *Params) { *p = Params{} }, 10, false},
	}
	for _, tt := range tests {
		p := DefaultParams()
		tt.edit(&p)
		_, err := New(p, tt.nVocab)
		if (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	s := mustNew(t, Params{TopK: -3, TopP: 1}, 7)
	if got := s.Params().TopK; got != 7 {
		t.Errorf("TopK off became %d, want the vocabulary size 7", got)
	}
}

func TestGreedyIsArgmax(t *testing.T) {
	inf := float32(math.Inf(1))
	tests := []struct {
		name   string
		logits []float32
		want   int32
	}{
		{"single", []float32{0}, 0},
		{"max in the middle", []float32{1, 3, 2}, 1},
		{"max last", []float32{-5, -4, -3}, 2},
		{"ties go to the lowest id", []float32{1, 7, 3, 7, 7}, 1},
		{"masked tokens", []float32{-inf, -inf, -100, -inf}, 2},
		{"negative zero and zero tie", []float32{float32(math.Copysign(0, -1)), 0}, 0},
	}
	for _, temp := range []float32{0, 1e-7, -2} {
		for _, tt := range tests {
			p := DefaultParams()
			p.Temperature = temp
			s := mustNew(t, p, len(tt.logits))
			got, err := s.Sample(tt.logits)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("temp %v, %s: got %d, want %d", temp, tt.name, got, tt.want)
			}
		}
	}
}

func argmax(l []float32) int32 {
	best := 0
	for i, v := range l {
		if v > l[best] {
			best = i
		}
	}
	return int32(best)
}

func TestTopK1IsGreedy(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, temp := range []float32{0.1, 0.8, 1, 3, 100} {
		p := DefaultParams()
		p.Temperature, p.TopK, p.TopP, p.MinP, p.Seed = temp, 1, 1, 0, 5
		s := mustNew(t, p, 500)
		for range 50 {
			logits := randomLogits(r, 500)
			got, err := s.Sample(logits)
			if err != nil {
				t.Fatal(err)
			}
			if want := argmax(logits); got != want {
				t.Fatalf("temp %v: top_k=1 gave %d, argmax is %d", temp, got, want)
			}
		}
	}
}

func TestSeedReproducible(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	logits := make([][]float32, 200)
	for i := range logits {
		logits[i] = randomLogits(r, 1000)
	}
	run := func(s *Sampler) []int32 {
		var out []int32
		for _, l := range logits {
			id, err := s.Sample(l)
			if err != nil {
				t.Fatal(err)
			}
			s.Accept(id)
			out = append(out, id)
		}
		return out
	}
	p := DefaultParams()
	p.Temperature, p.Seed, p.RepeatPenalty = 1.5, 42, 1.1
	a := mustNew(t, p, 1000)
	first := run(a)
	if again := run(mustNew(t, p, 1000)); !slices.Equal(first, again) {
		t.Error("same seed gave different tokens")
	}
	a.Reset()
	if afterReset := run(a); !slices.Equal(first, afterReset) {
		t.Error("Reset did not restart the sequence")
	}
	p.Seed = 43
	if other := run(mustNew(t, p, 1000)); slices.Equal(first, other) {
		t.Error("seeds 42 and 43 gave the same 200 tokens")
	}
}

// chiSquare compares counts with the expected probabilities.
func chiSquare(counts []int, probs []float64, n int) float64 {
	var x float64
	for i, c := range counts {
		e := probs[i] * float64(n)
		x += (float64(c) - e) * (float64(c) - e) / e
	}
	return x
}

func softmaxRef(l []float32, temp float64) []float64 {
	p := make([]float64, len(l))
	var sum float64
	for i, v := range l {
		p[i] = math.Exp(float64(v) / temp)
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// With no truncation, tokens come out in proportion to softmax(logits/T).
// The seed is fixed, so the test is deterministic; the bound is the 0.1%
// critical value of chi-square with 7 degrees of freedom.
func TestDistributionFollowsSoftmax(t *testing.T) {
	logits := []float32{1, 2, 0.5, -1, 3, 0, 2.5, 1.5}
	const n = 40000
	for _, temp := range []float32{1, 0.7, 2} {
		p := noTruncation(temp)
		p.Seed = 7
		s := mustNew(t, p, len(logits))
		counts := make([]int, len(logits))
		for range n {
			id, err := s.Sample(logits)
			if err != nil {
				t.Fatal(err)
			}
			counts[id]++
		}
		if x := chiSquare(counts, softmaxRef(logits, float64(temp)), n); x > 24.32 {
			t.Errorf("temperature %v: chi-square %.1f over 7 degrees of freedom; counts %v", temp, x, counts)
		}
	}
}

// probsToLogits gives logits whose softmax is probs.
func probsToLogits(probs ...float64) []float32 {
	l := make([]float32, len(probs))
	for i, p := range probs {
		l[i] = float32(math.Log(p))
	}
	return l
}

func ids(cands []candidate) []int32 {
	out := make([]int32, len(cands))
	for i, c := range cands {
		out[i] = c.id
	}
	slices.Sort(out)
	return out
}

// The truncation sets below are worked out by hand from the probabilities
// (token i has probability probs[i]).
func TestTruncation(t *testing.T) {
	probs := probsToLogits(0.10, 0.50, 0.04, 0.25, 0.11) // best first: 1, 3, 4, 0, 2
	tests := []struct {
		name       string
		topK       int
		topP, minP float32
		temp       float32
		want       []int32
	}{
		{"nothing", 0, 1, 0, 1, []int32{0, 1, 2, 3, 4}},
		{"top_k 2", 2, 1, 0, 1, []int32{1, 3}},
		{"top_k 4", 4, 1, 0, 1, []int32{0, 1, 3, 4}},
		{"top_p 0.4 keeps one", 0, 0.4, 0, 1, []int32{1}},
		{"top_p 0.7: 0.50+0.25", 0, 0.7, 0, 1, []int32{1, 3}},
		{"top_p 0.8: +0.11", 0, 0.8, 0, 1, []int32{1, 3, 4}},
		{"top_p 0.9: +0.10", 0, 0.9, 0, 1, []int32{0, 1, 3, 4}},
		{"top_p after top_k renormalises: 0.50/0.75 >= 0.6", 2, 0.6, 0, 1, []int32{1}},
		{"min_p 0.3: p >= 0.15", 0, 1, 0.3, 1, []int32{1, 3}},
		{"min_p 0.15: p >= 0.075", 0, 1, 0.15, 1, []int32{0, 1, 3, 4}},
		{"min_p 1 keeps the best", 0, 1, 1, 1, []int32{1}},
		{"min_p 0.19 after top_p 0.9: p >= 0.095", 0, 0.9, 0.19, 1, []int32{0, 1, 3, 4}},
		{"min_p 0.21 after top_p 0.9: p >= 0.105", 0, 0.9, 0.21, 1, []int32{1, 3, 4}},
		{"temperature does not change the sets", 0, 0.7, 0, 10, []int32{1, 3}},
		{"defaults", 40, 0.95, 0.05, 0.8, []int32{0, 1, 3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Params{Temperature: tt.temp, TopK: tt.topK, TopP: tt.topP, MinP: tt.minP, RepeatPenalty: 1}
			s := mustNew(t, p, len(probs))
			cands, err := s.candidates(probs)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(cands); !slices.Equal(got, tt.want) {
				t.Errorf("kept %v, want %v", got, tt.want)
			}
			// Sampling never leaves the set.
			for range 300 {
				id, err := s.Sample(probs)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(tt.want, id) {
					t.Fatalf("sampled %d outside %v", id, tt.want)
				}
			}
		})
	}
}

// top_p on a long unsorted list first tries the best topPWindow tokens; the
// result must not depend on whether that was enough.
func TestTopPLongVocabulary(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, flat := range []bool{false, true} {
		logits := randomLogits(r, 5000)
		if flat {
			for i := range logits {
				logits[i] /= 100 // nearly uniform: the window is not enough
			}
		}
		probs := softmaxRef(logits, 1)
		order := make([]int, len(logits))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int {
			switch {
			case logits[a] > logits[b]:
				return -1
			case logits[a] < logits[b]:
				return 1
			}
			return a - b
		})
		var cum float64
		var want []int32
		for _, i := range order {
			want = append(want, int32(i))
			cum += probs[i]
			if cum >= 0.9 {
				break
			}
		}
		s := mustNew(t, Params{Temperature: 1, TopP: 0.9, RepeatPenalty: 1}, len(logits))
		cands, err := s.candidates(logits)
		if err != nil {
			t.Fatal(err)
		}
		// The kept tokens must be the best ones; float32 sums may move the
		// boundary by one token.
		got := ids(cands)
		best := make([]int32, len(got))
		for i := range best {
			best[i] = int32(order[i])
		}
		slices.Sort(best)
		if !slices.Equal(got, best) || len(got) < len(want)-1 || len(got) > len(want)+1 {
			t.Errorf("flat=%v: kept %d tokens (best ones: %v), want %d", flat, len(got), slices.Equal(got, best), len(want))
		}
	}
}

func TestSelectBest(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		n := 1 + r.IntN(300)
		k := 1 + r.IntN(n)
		cands := make([]candidate, n)
		for i := range cands {
			// Few distinct values, so ties are common.
			cands[i] = candidate{id: int32(i), logit: float32(r.IntN(20))}
		}
		want := slices.Clone(cands)
		slices.SortFunc(want, compareCandidates)
		selectBest(cands, k)
		got := cands[:k]
		slices.SortFunc(got, compareCandidates)
		if !slices.Equal(got, want[:k]) {
			t.Fatalf("n=%d k=%d: best %v, want %v", n, k, got, want[:k])
		}
	}
}

func TestSelectNucleus(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 300 {
		n := 1 + r.IntN(400)
		cands := make([]candidate, n)
		var sum float64
		for i := range cands {
			w := math.Exp(r.NormFloat64() * 2)
			cands[i] = candidate{id: int32(i), logit: float32(math.Log(w))}
			sum += w
		}
		softmax(cands)
		mass := r.Float64()
		sorted := slices.Clone(cands)
		slices.SortFunc(sorted, compareCandidates)
		var cum float64
		want := len(sorted)
		for i, c := range sorted {
			cum += float64(c.p)
			if cum >= mass {
				want = i + 1
				break
			}
		}
		got := selectNucleus(cands, mass)
		if !slices.Equal(ids(cands[:got]), ids(sorted[:want])) {
			t.Fatalf("n=%d mass=%v: kept %v, want %v", n, mass, ids(cands[:got]), ids(sorted[:want]))
		}
	}
}

// Penalties worked out by hand, as llama_sampler_penalties applies them.
func TestPenalties(t *testing.T) {
	logits := []float32{2, -2, 1, 0.5, 0}
	tests := []struct {
		name     string
		lastN    int
		repeat   float32
		freq     float32
		presence float32
		accepted []int32
		want     []float32
	}{
		{
			name: "repeat divides positive, multiplies negative", lastN: 64, repeat: 2,
			accepted: []int32{0, 1, 4},
			want:     []float32{1, -4, 1, 0.5, 0},
		},
		{
			name: "frequency and presence", lastN: 64, repeat: 1, freq: 0.1, presence: 0.5,
			accepted: []int32{0, 1, 0},
			want:     []float32{2 - 0.2 - 0.5, -2 - 0.1 - 0.5, 1, 0.5, 0},
		},
		{
			name: "all three", lastN: 64, repeat: 2, freq: 0.1, presence: 0.5,
			accepted: []int32{0, 1, 0},
			want:     []float32{1 - 0.2 - 0.5, -4 - 0.1 - 0.5, 1, 0.5, 0},
		},
		{
			name: "only the last n count", lastN: 2, repeat: 2, freq: 1,
			accepted: []int32{0, 1, 0, 2, 2}, // window: 2, 2
			want:     []float32{2, -2, 0.5 - 2, 0.5, 0},
		},
		{
			name: "last n 0 turns them off", lastN: 0, repeat: 2, freq: 1,
			accepted: []int32{0, 1},
			want:     []float32{2, -2, 1, 0.5, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Params{Temperature: 1, TopP: 1, RepeatPenalty: tt.repeat, RepeatLastN: tt.lastN,
				FrequencyPenalty: tt.freq, PresencePenalty: tt.presence}
			s := mustNew(t, p, len(logits))
			for _, id := range tt.accepted {
				s.Accept(id)
			}
			cands, err := s.candidates(logits)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(logits))
			for _, c := range cands {
				got[c.id] = c.logit
			}
			for i := range got {
				if math.Abs(float64(got[i]-tt.want[i])) > 1e-6 {
					t.Errorf("logits %v, want %v", got, tt.want)
					break
				}
			}
			s.Reset()
			if cands, _ := s.candidates(logits); cands[0].logit != logits[0] {
				t.Error("Reset kept the history")
			}
		})
	}
	// A penalty can change the greedy choice: 2/2 - 2*0.1 - 0.5 = 0.3 < 1.
	p := Params{Temperature: 0, TopP: 1, RepeatPenalty: 2, RepeatLastN: 64, FrequencyPenalty: 0.1, PresencePenalty: 0.5}
	s := mustNew(t, p, len(logits))
	s.Accept(0)
	s.Accept(0)
	if id, _ := s.Sample(logits); id != 2 {
		t.Errorf("greedy with penalties picked %d, want 2", id)
	}
}

func TestSampleErrors(t *testing.T) {
	s := mustNew(t, DefaultParams(), 4)
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name    string
		logits  []float32
		mention string
	}{
		{"NaN", []float32{0, 1, nan, 2}, "logit 2 is NaN"},
		{"+Inf", []float32{inf, 1, 2, 3}, "logit 0 is +Inf"},
		{"too few", []float32{1, 2}, "2 logits for a vocabulary of 4"},
		{"all masked", []float32{-inf, -inf, -inf, -inf}, "-Inf"},
	}
	for _, tt := range tests {
		_, err := s.Sample(tt.logits)
		if err == nil || !strings.Contains(err.Error(), tt.mention) {
			t.Errorf("%s: err = %v, want one mentioning %q", tt.name, err, tt.mention)
		}
	}
	if _, err := s.Sample([]float32{-inf, -inf, -inf, -inf}); !errors.Is(err, ErrNoCandidate) {
		t.Errorf("all masked: %v is not ErrNoCandidate", err)
	}
}

const llamaVocab = 32000

func TestSampleAllocatesNothing(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	logits := randomLogits(r, llamaVocab)
	for name, p := range map[string]Params{
		"defaults":        DefaultParams(),
		"greedy":          {TopP: 1, RepeatPenalty: 1},
		"no top_k, top_p": {Temperature: 0.8, TopP: 0.95, RepeatPenalty: 1},
		"penalties":       {Temperature: 0.8, TopK: 40, TopP: 0.95, RepeatPenalty: 1.1, RepeatLastN: 64, FrequencyPenalty: 0.1},
		"no truncation":   noTruncation(1),
	} {
		s := mustNew(t, p, llamaVocab)
		allocs := testing.AllocsPerRun(50, func() {
			id, err := s.Sample(logits)
			if err != nil {
				t.Fatal(err)
			}
			s.Accept(id)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per token", name, allocs)
		}
	}
}

func benchmarkSample(b *testing.B, p Params) {
	r := rand.New(rand.NewPCG(1, 1))
	logits := randomLogits(r, llamaVocab)
	s := mustNew(b, p, llamaVocab)
	b.ReportAllocs()
	for b.Loop() {
		id, err := s.Sample(logits)
		if err != nil {
			b.Fatal(err)
		}
		s.Accept(id)
	}
}

func BenchmarkSampleDefault(b *testing.B) { benchmarkSample(b, DefaultParams()) }
func BenchmarkSampleGreedy(b *testing.B)  { benchmarkSample(b, Params{TopP: 1, RepeatPenalty: 1}) }
func BenchmarkSampleTopPOnly(b *testing.B) {
	benchmarkSample(b, Params{Temperature: 0.8, TopP: 0.95, RepeatPenalty: 1})
}
func BenchmarkSampleNoTruncation(b *testing.B) { benchmarkSample(b, noTruncation(1)) }

func TestGreedy(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		want bool
	}{
		{"temperature 0", Params{TopP: 1, RepeatPenalty: 1}, true},
		{"negative temperature", Params{Temperature: -1, TopP: 1}, true},
		{"penalties off by repeat_last_n 0", Params{TopP: 1, RepeatPenalty: 1.3}, true},
		{"defaults", DefaultParams(), false},
		{"repeat penalty", Params{TopP: 1, RepeatPenalty: 1.1, RepeatLastN: 64}, false},
		{"frequency penalty", Params{TopP: 1, RepeatPenalty: 1, RepeatLastN: 64, FrequencyPenalty: 0.5}, false},
		{"presence penalty", Params{TopP: 1, RepeatPenalty: 1, RepeatLastN: 64, PresencePenalty: 0.5}, false},
	}
	for _, tt := range tests {
		if got := mustNew(t, tt.p, 8).Greedy(); got != tt.want {
			t.Errorf("%s: Greedy() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestFindPickIsGreedySample checks PickToken(backend.FindPick(l)), what a backend's
// argmax reports, against greedy sampling through the candidates scan (a
// greedy sampler with penalties configured but no history takes that
// path, not FindPick) and against the rule written out by hand.
func TestFindPickIsGreedySample(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	negZero := float32(math.Copysign(0, -1))
	tests := []struct {
		name    string
		logits  []float32
		want    backend.Pick
		wantErr string // empty: want.ID is the token
	}{
		{"single", []float32{0}, backend.Pick{ID: 0, Bad: -1}, ""},
		{"max last", []float32{-5, -4, -3}, backend.Pick{ID: 2, Bad: -1}, ""},
		{"ties go to the lowest id", []float32{1, 7, 3, 7, 7}, backend.Pick{ID: 1, Bad: -1}, ""},
		{"negative zero and zero tie", []float32{negZero, 0}, backend.Pick{ID: 0, Bad: -1}, ""},
		{"zero and negative zero tie", []float32{-1, 0, negZero}, backend.Pick{ID: 1, Bad: -1}, ""},
		{"masked tokens", []float32{-inf, -inf, -100, -inf}, backend.Pick{ID: 2, Bad: -1}, ""},
		{"largest finite", []float32{-inf, math.MaxFloat32, -math.MaxFloat32}, backend.Pick{ID: 1, Bad: -1}, ""},
		{"every logit -Inf", []float32{-inf, -inf, -inf}, backend.Pick{ID: -1, Bad: -1}, "every logit is -Inf"},
		{"NaN", []float32{0, 1, nan, 2}, backend.Pick{ID: 3, Bad: 2, BadLogit: nan}, "logit 2 is NaN"},
		{"+Inf", []float32{inf, 1, 2, 3}, backend.Pick{ID: 3, Bad: 0, BadLogit: inf}, "logit 0 is +Inf"},
		{"first bad wins", []float32{1, inf, nan, inf}, backend.Pick{ID: 0, Bad: 1, BadLogit: inf}, "logit 1 is +Inf"},
		{"NaN before +Inf", []float32{nan, inf}, backend.Pick{ID: -1, Bad: 0, BadLogit: nan}, "logit 0 is NaN"},
		{"NaN among -Inf", []float32{-inf, nan, -inf}, backend.Pick{ID: -1, Bad: 1, BadLogit: nan}, "logit 1 is NaN"},
	}
	same := func(a, b backend.Pick) bool {
		return a.ID == b.ID && a.Bad == b.Bad && math.Float32bits(a.BadLogit) == math.Float32bits(b.BadLogit)
	}
	for _, tt := range tests {
		got := backend.FindPick(tt.logits)
		if !same(got, tt.want) {
			t.Errorf("%s: FindPick = %+v, want %+v", tt.name, got, tt.want)
		}
		id, err := PickToken(got)
		scan := mustNew(t, Params{TopP: 1, RepeatPenalty: 1.5, RepeatLastN: 4}, len(tt.logits))
		scanID, scanErr := scan.Sample(tt.logits)
		plain := mustNew(t, Params{TopP: 1, RepeatPenalty: 1}, len(tt.logits))
		bestID, bestErr := plain.SampleBest(got)
		for _, e := range []error{err, scanErr, bestErr} {
			if tt.wantErr == "" && e != nil || tt.wantErr != "" && (e == nil || !strings.Contains(e.Error(), tt.wantErr)) {
				t.Errorf("%s: error %v, want %q", tt.name, e, tt.wantErr)
			}
		}
		if tt.wantErr != "" {
			if err.Error() != scanErr.Error() {
				t.Errorf("%s: Token's error %q differs from Sample's %q", tt.name, err, scanErr)
			}
			if tt.want.Bad < 0 && !errors.Is(err, ErrNoCandidate) {
				t.Errorf("%s: %v is not ErrNoCandidate", tt.name, err)
			}
			continue
		}
		if id != tt.want.ID || scanID != tt.want.ID || bestID != tt.want.ID {
			t.Errorf("%s: Token %d, candidates scan %d, SampleBest %d; want %d", tt.name, id, scanID, bestID, tt.want.ID)
		}
	}
}

func TestFindPickRandomRows(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	scan := mustNew(t, Params{TopP: 1, RepeatPenalty: 1.5, RepeatLastN: 4}, llamaVocab)
	for range 50 {
		l := randomLogits(r, llamaVocab)
		// Coarse values make ties for the maximum likely.
		for i := range l {
			l[i] = float32(math.Round(float64(l[i])))
		}
		want, err := scan.Sample(l)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := PickToken(backend.FindPick(l)); err != nil || got != want || got != argmax(l) {
			t.Fatalf("FindPick token %d (%v), candidates scan %d, argmax %d", got, err, want, argmax(l))
		}
	}
}

func TestSampleBestRefuses(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		b    backend.Pick
	}{
		{"not greedy", DefaultParams(), backend.Pick{ID: 1, Bad: -1}},
		{"penalties", Params{TopP: 1, RepeatPenalty: 1.1, RepeatLastN: 8}, backend.Pick{ID: 1, Bad: -1}},
		{"id past the vocabulary", Params{TopP: 1, RepeatPenalty: 1}, backend.Pick{ID: 8, Bad: -1}},
		{"bad index past the vocabulary", Params{TopP: 1, RepeatPenalty: 1}, backend.Pick{ID: 1, Bad: 9}},
	}
	for _, tt := range tests {
		if id, err := mustNew(t, tt.p, 8).SampleBest(tt.b); err == nil {
			t.Errorf("%s: SampleBest = %d, want an error", tt.name, id)
		}
	}
}
