package cuda_test

import (
	"context"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"llamago/backend"
	"llamago/backend/cuda"
	"llamago/engine"
	"llamago/gguf"
	"llamago/internal/synth"
	"llamago/internal/testenv"
	"llamago/quantize"
	"llamago/sample"
	"llamago/tokenizer"
)

var _ backend.ArgMaxer = (*cuda.Backend)(nil)

// argMaxRow makes one row of n logits of a kind the argmax kernel must
// get right.
func argMaxRow(r *rand.Rand, kind string, n int) []float32 {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	row := make([]float32, n)
	for i := range row {
		row[i] = float32(r.NormFloat64() * 3)
	}
	at := func() int { return r.IntN(n) }
	switch kind {
	case "random":
	case "coarse ties": // a few distinct values: many ties for the maximum
		for i := range row {
			row[i] = float32(math.Round(float64(row[i]) / 2))
		}
	case "max at several places":
		for range 4 {
			row[at()] = 100
		}
	case "max first and last":
		row[0], row[n-1] = 100, 100
	case "max last":
		row[n-1] = 100
	case "all equal":
		for i := range row {
			row[i] = 0.5
		}
	case "zeros of both signs":
		for i := range row {
			row[i] = float32(math.Copysign(0, float64(r.IntN(2)*2-1)))
		}
	case "NaN":
		row[at()] = nan
	case "+Inf":
		row[at()] = inf
	case "NaN and +Inf":
		for range 5 {
			row[at()] = nan
			row[at()] = inf
		}
	case "NaN last":
		row[n-1] = nan
	case "all -Inf":
		for i := range row {
			row[i] = -inf
		}
	case "-Inf but one":
		for i := range row {
			row[i] = -inf
		}
		row[at()] = -3e38
	case "-Inf and NaN":
		for i := range row {
			row[i] = -inf
		}
		row[at()] = nan
	case "masked half":
		for i := range row {
			if r.IntN(2) == 0 {
				row[i] = -inf
			}
		}
	default:
		panic("unknown row kind " + kind)
	}
	return row
}

var argMaxKinds = []string{"random", "coarse ties", "max at several places", "max first and last", "max last",
	"all equal", "zeros of both signs", "NaN", "+Inf", "NaN and +Inf", "NaN last", "all -Inf", "-Inf but one",
	"-Inf and NaN", "masked half"}

func sameBest(a, b backend.Pick) bool {
	return a.ID == b.ID && a.Bad == b.Bad && math.Float32bits(a.BadLogit) == math.Float32bits(b.BadLogit)
}

// TestArgMaxKernelMatchesFindPick checks the argmax kernel against
// backend.FindPick (the Go sampler's greedy rule) on rows of every kind
// (ties, NaN, +Inf, all -Inf, …) and lengths around the block's 1024
// threads and the 32,000-token vocabulary, all kinds of one length as the
// rows of one matrix (one launch), and on a view of its first rows.
func TestArgMaxKernelMatchesFindPick(t *testing.T) {
	gpu := needGPU(t)
	r := rand.New(rand.NewPCG(3, 5))
	rows, bad, none := 0, 0, 0
	for _, n := range []int{1, 2, 31, 33, 1000, 1023, 1024, 1025, 4097, 32000, 32003} {
		var data []float32
		var want []backend.Pick
		for _, kind := range argMaxKinds {
			for range 3 {
				row := argMaxRow(r, kind, n)
				data = append(data, row...)
				want = append(want, backend.FindPick(row))
			}
		}
		m := gpu.NewMat(len(want), n)
		gpu.Write(m, data)
		got := make([]backend.Pick, len(want))
		gpu.ArgMax(m, got)
		for i := range want {
			if !sameBest(got[i], want[i]) {
				t.Errorf("length %d, row %d (%s): GPU %+v, backend.FindPick %+v", n, i, argMaxKinds[i/3], got[i], want[i])
			}
			if want[i].Bad >= 0 {
				bad++
			}
			if want[i].ID < 0 {
				none++
			}
		}
		rows += len(want)
		view := gpu.View(m, 2)
		gpu.ArgMax(view, got[:2])
		if !sameBest(got[0], want[0]) || !sameBest(got[1], want[1]) {
			t.Errorf("length %d, view of 2 rows: GPU %+v, want %+v", n, got[:2], want[:2])
		}
	}
	t.Logf("argmax kernel vs backend.FindPick: %d rows of %d kinds and 11 lengths (1 … 32003) compared, %d with a NaN or +Inf, %d with no candidate; every mismatch is reported above", rows, len(argMaxKinds), bad, none)
}

// TestGreedyArgMaxMatchesLogitsPath decodes greedily twice on fresh GPU
// backends — reading the logits every step and taking backend.FindPick on
// the host, then through the argmax kernel (engine.Session.EvalBest, as
// Generate does for greedy sampling) — and checks equal ids, that the
// argmax path's decode steps still replay as CUDA graphs (at least as many
// replays as the logits path, no more queues launched one by one), and
// that engine.Generate on the GPU returns the same ids.
func TestGreedyArgMaxMatchesLogitsPath(t *testing.T) {
	needGPU(t)
	vocab := testenv.Path(t, testenv.LlamaSPMVocab)
	dir := t.TempDir()
	cases := []struct {
		name, path, prompt string
		steps              int
	}{
		{"stories260K", testenv.Path(t, testenv.Stories260KGGUF), storyPrompt, 128},
		{"synthetic q4_0", "", "The old lighthouse keeper climbed the spiral stairs every evening", 64},
		{"synthetic f16", "", "The old lighthouse keeper climbed the spiral stairs every evening", 64},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path
			if path == "" {
				typ := c.name[len("synthetic "):]
				target, err := quantize.ParseTarget(typ)
				if err != nil {
					t.Fatal(err)
				}
				path = filepath.Join(dir, typ+".gguf")
				if err := synth.Write(path, synth.Small(), target, 1, synth.Options{VocabPath: vocab}); err != nil {
					t.Fatal(err)
				}
			}
			greedyArgMaxCase(t, path, c.prompt, c.steps)
		})
	}
}

func greedyArgMaxCase(t *testing.T, path, prompt string, steps int) {
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode(prompt, tokenizer.EncodeOptions{AddSpecial: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := len(ids) + steps + 1
	bg := context.Background()
	type outcome struct {
		ids                        []int32
		elapsed                    time.Duration
		captured, replayed, direct int
	}
	decode := func(useArgMax bool) outcome {
		gpu, err := cuda.New(cuda.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer gpu.Close()
		r := loadRun(t, f, gpu, ctx, false)
		next := func(in []int32) backend.Pick {
			if useArgMax {
				b, err := r.sess.EvalBest(bg, in)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			logits, err := r.sess.Eval(bg, in)
			if err != nil {
				t.Fatal(err)
			}
			return backend.FindPick(logits)
		}
		var o outcome
		b := next(ids)
		start := time.Now()
		for range steps {
			id, err := sample.PickToken(b)
			if err != nil {
				t.Fatal(err)
			}
			o.ids = append(o.ids, id)
			b = next([]int32{id})
		}
		o.elapsed = time.Since(start)
		o.captured, o.replayed, o.direct = gpu.GraphStats()
		return o
	}
	want := decode(false)
	got := decode(true)
	same := 0
	for same < steps && got.ids[same] == want.ids[same] {
		same++
	}
	t.Logf("%s: %d prompt tokens, %d greedy steps, ids of the argmax path equal to the logits path's for %d steps; graphs (captured, replays, one by one): logits path %d/%d/%d, argmax path %d/%d/%d; decode %.1f tokens/s with argmax, %.1f reading logits",
		filepath.Base(path), len(ids), steps, same, want.captured, want.replayed, want.direct, got.captured, got.replayed, got.direct,
		float64(steps)/got.elapsed.Seconds(), float64(steps)/want.elapsed.Seconds())
	if same != steps {
		t.Errorf("ids part at step %d: argmax path %v, logits path %v", same, got.ids[same:min(same+8, steps)], want.ids[same:min(same+8, steps)])
	}
	if got.replayed == 0 || got.replayed < want.replayed || got.direct > want.direct {
		t.Errorf("the argmax path's decode steps ran as graphs less often: %d replays and %d queues one by one, logits path %d and %d", got.replayed, got.direct, want.replayed, want.direct)
	}

	// Generate, greedy without penalties, takes the argmax path.
	gpu, err := cuda.New(cuda.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gpu.Close()
	r := loadRun(t, f, gpu, ctx, false)
	smp, err := sample.New(sample.Params{TopP: 1, RepeatPenalty: 1}, r.m.Config.NVocab)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.sess.Generate(bg, ids, engine.GenerateOptions{MaxTokens: steps, Sampler: smp, Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	// Generate stops at an end-of-generation token, which the loops above
	// do not know about.
	n := len(res.GeneratedIDs)
	if n == 0 || !slices.Equal(res.GeneratedIDs, want.ids[:n]) {
		t.Errorf("engine.Generate on the GPU: %d ids %v, logits path %v", n, res.GeneratedIDs[:min(n, 8)], want.ids[:min(n, 8)])
	}
	t.Logf("%s: engine.Generate (greedy, argmax path) gave %d ids (stop: %s), equal to the logits path's: %v", filepath.Base(path), n, res.StopReason, n > 0 && slices.Equal(res.GeneratedIDs, want.ids[:n]))
}
