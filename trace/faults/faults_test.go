package faults_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"llamago/engine"
	"llamago/internal/testenv"
	"llamago/probe"
	"llamago/trace"
	"llamago/trace/faults"
)

// The tests plant each fault in layer 0 and in a middle layer of
// stories260K (5 layers; 8 heads of 8 over 4 KV heads; n_ff 172).
var layers = []int{0, 2}

const (
	prompt                  = "Once upon a time, there was a little girl"
	nHead, nKVHead, headDim = 8, 4, 8
)

func stories(t *testing.T) string {
	t.Helper()
	return testenv.Path(t, testenv.Stories260KGGUF)
}

// base is a clean CPU trace of every probe with an F32 KV cache (the
// attention rewrite of package faults computes in float32 over an F32
// copy of the cache).
func base(t *testing.T) trace.Options {
	return trace.Options{ModelPath: stories(t), Prompt: prompt, KVF32: true, Threads: 1}
}

// dump runs a trace into a temporary dump and reads it back.
func dump(t *testing.T, o trace.Options) *probe.DumpFile {
	t.Helper()
	o.DumpPath = filepath.Join(t.TempDir(), "trace.safetensors")
	if _, err := trace.Run(context.Background(), o); err != nil {
		t.Fatalf("trace: %v", err)
	}
	d, err := probe.ReadDump(o.DumpPath)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// localise diffs a faulty run against a clean one and checks that the
// first divergence is want at position wantPos, and that every probe
// before it agrees outright (no warning: the fault does not leak into
// earlier steps). It returns the report.
func localise(t *testing.T, bad, ref *probe.DumpFile, opts probe.DiffOptions, want string, wantPos int) *probe.Report {
	t.Helper()
	r, err := probe.Diff(bad, ref, opts)
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	got, pos, rel, ok := r.FirstDivergence()
	if !ok {
		t.Fatalf("no divergence; want %s at position %d", want, wantPos)
	}
	t.Logf("first divergence: %s at position %d (relative error %.3g)", got, pos, rel)
	if got != want || pos != wantPos {
		t.Fatalf("first divergence %s at position %d, want %s at position %d", got, pos, want, wantPos)
	}
	wantLayer, _ := probe.ParseName(want)
	for _, row := range r.Rows {
		if row.Probe == got && row.Pos == pos {
			if row.Layer != wantLayer {
				t.Errorf("the report puts %s in layer %d, want %d", row.Probe, row.Layer, wantLayer)
			}
			break
		}
		if row.Class != probe.Agree {
			t.Errorf("%s at position %d is %s before the first divergence", row.Probe, row.Pos, row.Class)
		}
	}
	return r
}

// TestComputeFaults plants each fault of the computation through the
// backend decorator and checks that diff names its probe and layer.
func TestComputeFaults(t *testing.T) {
	ref := dump(t, base(t))
	for _, tc := range []struct {
		fault   faults.Fault
		kind    string // the probe that must diverge first
		pos     int    // and where
		because string
	}{
		{faults.Fault{Kind: faults.ScaleQ, Factor: 0.01}, probe.KindQ, 0, "the Q projection's output is the first tensor it touches"},
		{faults.Fault{Kind: faults.ScaleAttnNorm, Factor: 2.14}, probe.KindAttnNorm, 0, "the normalised input is wrong from the start"},
		{faults.Fault{Kind: faults.RoPEPositionOffByOne}, probe.KindQRope, 0, "position 0 is rotated by 1 where it should not rotate at all"},
		// Position 0 does not rotate, so either layout leaves it alone.
		{faults.Fault{Kind: faults.RoPEWrongPairs}, probe.KindQRope, 1, "position 0 is not rotated in any layout"},
		// The scores are probed for the keys 0..pos the position may see;
		// the extra key changes only the softmax's normalisation.
		{faults.Fault{Kind: faults.MaskOffByOne}, probe.KindAttnProbs, 0, "position 0 also attends to position 1"},
	} {
		for _, layer := range layers {
			f := tc.fault
			f.Layer = layer
			t.Run(f.String(), func(t *testing.T) {
				o := base(t)
				o.WrapBackend = faults.Wrapper(f)
				localise(t, dump(t, o), ref, probe.DiffOptions{}, probe.LayerName(layer, tc.kind), tc.pos)
			})
		}
	}
}

// TestSoftmaxWithoutMaxShift needs large scores: both runs scale layer L's
// queries by 1000 (scores past 88.7 overflow exp in float32), and only the
// faulty one drops the max shift. The clean run stays finite, the faulty
// one turns attn_probs into NaN, and stop-on-NaN stops there too.
func TestSoftmaxWithoutMaxShift(t *testing.T) {
	for _, layer := range layers {
		t.Run(fmt.Sprintf("layer %d", layer), func(t *testing.T) {
			large := faults.Fault{Kind: faults.ScaleQ, Layer: layer, Factor: 1000}
			fault := faults.Fault{Kind: faults.SoftmaxNoMaxShift, Layer: layer}
			o := base(t)
			o.WrapBackend = faults.Wrapper(large)
			ref := dump(t, o)
			scores := ref.Tensors[probe.DumpKey(probe.LayerName(layer, probe.KindAttnScores), 0)].Values()
			if m := maxAbs(scores); m < 89 {
				t.Fatalf("scores at position 0 reach only %g: too small to overflow exp", m)
			}
			for _, k := range ref.Keys {
				if hasNonFinite(ref.Tensors[k].Values()) {
					t.Fatalf("the clean run with large scores has a NaN or Inf at %s", k)
				}
			}
			o.WrapBackend = faults.Wrapper(large, fault)
			bad := dump(t, o)
			localise(t, bad, ref, probe.DiffOptions{}, probe.LayerName(layer, probe.KindAttnProbs), 0)
			if !hasNonFinite(bad.Tensors[probe.DumpKey(probe.LayerName(layer, probe.KindAttnProbs), 0)].Values()) {
				t.Errorf("the faulty attn_probs hold no NaN")
			}

			o.StopOnNaN = true
			_, err := trace.Run(context.Background(), o)
			var nf *probe.NonFiniteError
			if !errors.As(err, &nf) || nf.Probe != probe.LayerName(layer, probe.KindAttnProbs) {
				t.Errorf("stop on NaN: %v, want a stop at %s", err, probe.LayerName(layer, probe.KindAttnProbs))
			}
		})
	}
}

func maxAbs(xs []float64) float64 {
	var m float64
	for _, x := range xs {
		m = max(m, math.Abs(x))
	}
	return m
}

func hasNonFinite(xs []float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return true
		}
	}
	return false
}

// TestDecoratorIsFaithful is the control of the two tests above: the
// decorator with a fault in a layer the model does not have, and the
// attention rewrite with a fault that needs large scores to show, both
// agree with the real backend everywhere. So a divergence in the fault
// tests comes from the fault, not from the machinery that plants it.
func TestDecoratorIsFaithful(t *testing.T) {
	ref := dump(t, base(t))
	for _, f := range []faults.Fault{
		{Kind: faults.ScaleQ, Layer: 99, Factor: 0.01},
		{Kind: faults.SoftmaxNoMaxShift, Layer: 0},
		{Kind: faults.SoftmaxNoMaxShift, Layer: 2},
	} {
		t.Run(f.String(), func(t *testing.T) {
			o := base(t)
			o.WrapBackend = faults.Wrapper(f)
			r, err := probe.Diff(dump(t, o), ref, probe.DiffOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := r.Counts()
			if c[probe.Agree] != len(r.Rows) {
				t.Errorf("%v; want every probe to agree", c)
			}
		})
	}
}

// TestModelFileFaults plants faults in copies of the model file.
func TestModelFileFaults(t *testing.T) {
	path := stories(t)
	dir := t.TempDir()
	write := func(t *testing.T, name string, edits ...faults.Edit) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := faults.RewriteGGUF(path, p, edits...); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The copies are other files: diff refuses them unless forced, and the
	// forced report says what it overrode.
	forced := func(t *testing.T, r *probe.Report) {
		t.Helper()
		if !slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "forced: model SHA-256 differs") }) {
			t.Errorf("notes %q do not say the model digests differ", r.Notes)
		}
	}
	ref := dump(t, base(t))
	// Control: a copy without edits computes what the original does.
	o := base(t)
	o.ModelPath = write(t, "copy.gguf")
	r, err := probe.Diff(dump(t, o), ref, probe.DiffOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Counts(); c[probe.Agree] != len(r.Rows) {
		t.Fatalf("an unedited copy of the model: %v; want every probe to agree", c)
	}
	q8 := faults.QuantizeQ8_0(func(name string) bool { return strings.HasPrefix(name, "blk.") })
	o = base(t)
	o.ModelPath = write(t, "q8_0.gguf", q8)
	q8Ref := dump(t, o)

	for _, layer := range layers {
		t.Run(fmt.Sprintf("square weight transposed in layer %d", layer), func(t *testing.T) {
			o := base(t)
			o.ModelPath = write(t, fmt.Sprintf("transposed-q-%d.gguf", layer), faults.Transpose(fmt.Sprintf("blk.%d.attn_q.weight", layer), false))
			bad := dump(t, o)
			if _, err := probe.Diff(bad, ref, probe.DiffOptions{}); !errors.Is(err, probe.ErrDifferentRuns) {
				t.Errorf("unforced diff of two model files: %v, want a refusal", err)
			}
			forced(t, localise(t, bad, ref, probe.DiffOptions{Force: true}, probe.LayerName(layer, probe.KindQ), 0))
		})
		t.Run(fmt.Sprintf("Q8_0 scales one block off in layer %d", layer), func(t *testing.T) {
			o := base(t)
			o.ModelPath = write(t, fmt.Sprintf("q8_0-shifted-%d.gguf", layer), q8, faults.ShiftQ8_0Scales(fmt.Sprintf("blk.%d.attn_q.weight", layer)))
			forced(t, localise(t, dump(t, o), q8Ref, probe.DiffOptions{Force: true}, probe.LayerName(layer, probe.KindQ), 0))
		})
		// Faults that change a tensor's shape are localised by the loader,
		// which names the tensor and both shapes.
		for i, tc := range []struct {
			name   string
			edit   faults.Edit
			tensor string
			shapes []string // as found, as wanted
		}{
			{"K/V sized for all heads", faults.WidenKV(layer, nHead, headDim),
				fmt.Sprintf("blk.%d.attn_k.weight", layer), []string{"[64 64]", "[64 32]"}},
			{"non-square weight transposed", faults.Transpose(fmt.Sprintf("blk.%d.ffn_gate.weight", layer), true),
				fmt.Sprintf("blk.%d.ffn_gate.weight", layer), []string{"[172 64]", "[64 172]"}},
		} {

			t.Run(fmt.Sprintf("%s in layer %d", tc.name, layer), func(t *testing.T) {
				o := base(t)
				o.ModelPath = write(t, fmt.Sprintf("shape-%d-%d.gguf", i, layer), tc.edit)
				_, err := trace.Run(context.Background(), o)
				if err == nil {
					t.Fatal("the model loaded")
				}
				msg := err.Error()
				want := fmt.Sprintf("tensor %s has shape %s, want %s", tc.tensor, tc.shapes[0], tc.shapes[1])
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			})
		}
	}
}

// TestEOSAppended plants the prompt fault: an EOS token after the prompt.
// diff refuses, naming the extra id; forced, every probe of the shared
// positions agrees (attention is causal, so a token appended cannot change
// what came before) and only the EOS position is left over.
func TestEOSAppended(t *testing.T) {
	path := stories(t)
	l, err := engine.Load(path, engine.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := l.TextPrompt(prompt)
	eos := l.Tokenizer.EOS()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	ref := dump(t, base(t))
	o := base(t)
	o.TokenIDs = append(slices.Clone(ids), eos)
	bad := dump(t, o)

	_, err = probe.Diff(bad, ref, probe.DiffOptions{})
	if !errors.Is(err, probe.ErrDifferentRuns) {
		t.Fatalf("diff: %v, want a refusal for different token ids", err)
	}
	want := fmt.Sprintf("token ids differ in length: A has %d ids, B has %d", len(ids)+1, len(ids))
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprint(eos)+"]") {
		t.Errorf("refusal %q does not say %q nor show the appended id %d", err, want, eos)
	}

	r, err := probe.Diff(bad, ref, probe.DiffOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.Diverged() {
		t.Errorf("forced: %s, want no divergence over the shared positions", r.Verdict())
	}
	eosPos := len(ids)
	missing := 0
	for _, row := range r.Rows {
		switch {
		case row.Class == probe.MissingInB && row.Pos == eosPos:
			missing++
		case row.Class != probe.Agree:
			t.Errorf("%s at position %d: %s", row.Probe, row.Pos, row.Class)
		}
	}
	if n := len(trace.ProbeNames(5)); missing != n {
		t.Errorf("%d probes only in the faulty run at position %d, want all %d", missing, eosPos, n)
	}
}
