package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"llamago/engine"
	"llamago/internal/testenv"
	"llamago/trace/faults"
)

const prompt = "Once upon a time, there was a little girl"

// stories260K: 5 layers; 8 heads of 8 over 4 KV heads; n_ff 172.
const nHead, headDim = 8, 8

func stories(t *testing.T) string {
	t.Helper()
	return testenv.Path(t, testenv.Stories260KGGUF)
}

func options(t *testing.T) Options {
	return Options{ModelPath: stories(t), Prompt: prompt, Threads: 1}
}

func statuses(r *Report) map[string]Status {
	m := map[string]Status{}
	for _, c := range r.Checks {
		m[c.Component] = c.Status
	}
	return m
}

// The components every full report has, in order.
var components = []string{
	"weights", "tokenizer", "token embedding", "RoPE tables", "RoPE rotation", "RMSNorm",
	"Q/K/V projections", "attention mask", "attention softmax", "FFN", "logits", "layer-by-layer diff",
}

// TestHealthyModel: on stories260K every line is ✅, in text, plain text
// and JSON, against the oracle and llama.cpp, and the exit status is 0.
func TestHealthyModel(t *testing.T) {
	path := stories(t)
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the output
		not  []string
	}{
		{"text", nil, []string{"verify: 12 ✅, 0 ⚠️, 0 ❌", "✅ 🌀 RoPE tables", "✅ 💫 attention mask", "✅ 🎯 Q/K/V projections", "✅ 🔧 weights"}, []string{"\n❌", "\n⚠️"}},
		{"plain", []string{"--plain"}, []string{"verify: 12 ok, 0 warn, 0 fail", "ok    RoPE rotation"}, []string{"✅", "🌀", "💫", "🎯", "📊", "🔧"}},
		{"chat", []string{"--chat"}, []string{"verify: 12 ✅, 0 ⚠️, 0 ❌"}, nil},
		{"llama.cpp", []string{"--reference", "llamacpp"}, []string{"verify: 12 ✅, 0 ⚠️, 0 ❌", "agree with llama.cpp"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "llama.cpp" {
				testenv.RequireLlamaCpp(t)
			}
			var out, errOut bytes.Buffer
			code := Main(context.Background(), append([]string{"-m", path, "-p", prompt, "-t", "1"}, tc.args...), &out, &errOut)
			if code != ExitOK {
				t.Fatalf("exit status %d, stderr %q, stdout:\n%s", code, errOut.String(), out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.not {
				if strings.Contains(out.String(), w) {
					t.Errorf("output holds %q:\n%s", w, out.String())
				}
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), []string{"-m", path, "-p", prompt, "-t", "1", "--json"}, &out, &errOut); code != ExitOK {
			t.Fatalf("exit status %d, stderr %q", code, errOut.String())
		}
		var got struct {
			Report
			Counts map[string]int `json:"counts"`
		}
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Fatalf("%v:\n%s", err, out.String())
		}
		if got.Counts["ok"] != len(components) || got.Counts["warn"] != 0 || got.Counts["fail"] != 0 {
			t.Errorf("counts %v", got.Counts)
		}
		var names []string
		for _, c := range got.Checks {
			names = append(names, c.Component)
			if c.Status != OK || c.Marker == "" || c.Summary == "" || len(c.Figures) == 0 {
				t.Errorf("check %+v", c)
			}
		}
		if !slices.Equal(names, components) {
			t.Errorf("components %q, want %q", names, components)
		}
		if len(got.TokenIDs) != 13 || got.Reference != ReferenceOracle {
			t.Errorf("token ids %v, reference %q", got.TokenIDs, got.Reference)
		}
	})
}

// TestPlantedFaults plants each fault of package faults and checks that
// the line of the component it lives in turns ❌ while the components
// upstream of it stay ✅.
func TestPlantedFaults(t *testing.T) {
	path := stories(t)
	dir := t.TempDir()
	rewrite := func(t *testing.T, name string, edits ...faults.Edit) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := faults.RewriteGGUF(path, p, edits...); err != nil {
			t.Fatal(err)
		}
		return p
	}
	q8 := faults.QuantizeQ8_0(func(name string) bool { return strings.HasPrefix(name, "blk.") })
	wrap := func(fs ...faults.Fault) func(*Options) {
		return func(o *Options) { o.wrapBackend = faults.Wrapper(fs...) }
	}
	const layer = 2
	upstream := []string{"weights", "tokenizer", "token embedding"}
	for _, tc := range []struct {
		name   string
		plant  func(*Options)
		fail   []string
		pass   []string
		saying string // in the first failing line's summary
	}{
		{"Q ×0.01", wrap(faults.Fault{Kind: faults.ScaleQ, Layer: layer, Factor: 0.01}),
			[]string{"Q/K/V projections", "layer-by-layer diff"}, append(upstream, "RMSNorm"), "blk.2.q"},
		{"attention RMSNorm ×2.14", wrap(faults.Fault{Kind: faults.ScaleAttnNorm, Layer: layer, Factor: 2.14}),
			[]string{"RMSNorm", "layer-by-layer diff"}, upstream, "blk.2.attn_norm"},
		{"RoPE position off by one", wrap(faults.Fault{Kind: faults.RoPEPositionOffByOne, Layer: layer}),
			[]string{"RoPE tables", "layer-by-layer diff"}, append(upstream, "RMSNorm", "Q/K/V projections", "RoPE rotation"), "position 0 is not the identity"},
		{"RoPE wrong pairs", wrap(faults.Fault{Kind: faults.RoPEWrongPairs, Layer: layer}),
			[]string{"RoPE tables", "RoPE rotation", "layer-by-layer diff"}, append(upstream, "RMSNorm", "Q/K/V projections"), "layer 2"},
		{"mask off by one", wrap(faults.Fault{Kind: faults.MaskOffByOne, Layer: layer}),
			[]string{"attention mask", "layer-by-layer diff"}, append(upstream, "RoPE tables", "RoPE rotation", "Q/K/V projections"), "blk.2.attn_probs"},
		{"softmax without max shift (Q ×1000)", wrap(faults.Fault{Kind: faults.ScaleQ, Layer: layer, Factor: 1000}, faults.Fault{Kind: faults.SoftmaxNoMaxShift, Layer: layer}),
			[]string{"attention softmax"}, upstream, "NaN"},
		{"Q8_0 scales one block off", func(o *Options) {
			o.referenceModel = rewrite(t, "q8.gguf", q8)
			o.ModelPath = rewrite(t, "q8-shifted.gguf", q8, faults.ShiftQ8_0Scales("blk.2.attn_q.weight"))
		}, []string{"Q/K/V projections", "layer-by-layer diff"}, append(upstream, "RMSNorm"), "blk.2.q"},
		{"Q8_0 scales one block off, against llama.cpp", func(o *Options) {
			if testenv.LlamaCppLibDir() == "" {
				t.Skip("llama.cpp's libraries are not installed")
			}
			o.Reference = ReferenceLlamaCpp
			o.referenceModel = rewrite(t, "q8.gguf", q8)
			o.ModelPath = rewrite(t, "q8-shifted.gguf", q8, faults.ShiftQ8_0Scales("blk.2.attn_q.weight"))
		}, []string{"Q/K/V projections", "layer-by-layer diff"}, append(upstream, "RMSNorm"), "blk.2.q"},
		{"square weight transposed", func(o *Options) {
			o.referenceModel = path
			o.ModelPath = rewrite(t, "transposed-q.gguf", faults.Transpose("blk.2.attn_q.weight", false))
		}, []string{"Q/K/V projections", "layer-by-layer diff"}, append(upstream, "RMSNorm"), "blk.2.q"},
		{"K/V sized for all heads", func(o *Options) {
			o.ModelPath = rewrite(t, "wide-kv.gguf", faults.WidenKV(layer, nHead, headDim))
		}, []string{"weights"}, nil, "tensor blk.2.attn_k.weight has shape [64 64], want [64 32]"},
		{"non-square weight transposed", func(o *Options) {
			o.ModelPath = rewrite(t, "transposed-gate.gguf", faults.Transpose("blk.2.ffn_gate.weight", true))
		}, []string{"weights"}, nil, "tensor blk.2.ffn_gate.weight has shape [172 64], want [64 172]"},
		{"EOS appended", func(o *Options) {
			o.editTokens = func(ids []int32) []int32 { return append(ids, 2) }
		}, []string{"tokenizer"}, []string{"weights", "token embedding", "RoPE tables", "attention mask", "layer-by-layer diff"}, "extra [2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := options(t)
			tc.plant(&o)
			r, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := r.WriteText(&buf, false); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", buf.String())
			st := statuses(r)
			for _, c := range tc.fail {
				if s, ok := st[c]; !ok || s != Fail {
					t.Errorf("%s: %v, want fail", c, s)
				}
			}
			for _, c := range tc.pass {
				if s, ok := st[c]; !ok || s != OK {
					t.Errorf("%s: %v, want ok", c, s)
				}
			}
			if want, ok := firstDivergence[tc.name]; ok {
				if d, _ := r.Check("layer-by-layer diff"); !strings.Contains(d.Summary, want) {
					t.Errorf("the diff says %q, want the first divergence at %s", d.Summary, want)
				}
			}
			first, _ := r.Check(tc.fail[0])
			if !strings.Contains(first.Summary, tc.saying) {
				t.Errorf("%s says %q, want it to mention %q", first.Component, first.Summary, tc.saying)
			}
			if !strings.Contains(buf.String(), "❌ "+first.Marker+" "+first.Component) {
				t.Errorf("text lacks the ❌ line of %s", first.Component)
			}
			if !r.Failed() {
				t.Error("the report does not fail")
			}
		})
	}
}

// TestQuantizedModel: a healthy Q8_0 copy of stories260K passes against
// both references, although the CPU backend's quantized activations move
// it by about 1% from the float64 oracle.
func TestQuantizedModel(t *testing.T) {
	p := filepath.Join(t.TempDir(), "q8.gguf")
	if err := faults.RewriteGGUF(stories(t), p, faults.QuantizeQ8_0(func(n string) bool { return strings.HasPrefix(n, "blk.") })); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{ReferenceOracle, ReferenceLlamaCpp} {
		t.Run(ref, func(t *testing.T) {
			if ref == ReferenceLlamaCpp {
				testenv.RequireLlamaCpp(t)
			}
			o := options(t)
			o.ModelPath, o.Reference = p, ref
			r, err := Run(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range r.Checks {
				if c.Status != OK {
					t.Errorf("%s: %s: %s", c.Component, c.Status, c.Summary)
				}
			}
		})
	}
}

// firstDivergence is where the diff line must place each fault in layer 2,
// as package faults' own tests localise them.
var firstDivergence = map[string]string{
	"Q ×0.01":                   "blk.2.q at position 0",
	"attention RMSNorm ×2.14":   "blk.2.attn_norm at position 0",
	"RoPE position off by one":  "blk.2.q_rope at position 0",
	"RoPE wrong pairs":          "blk.2.q_rope at position 1",
	"mask off by one":           "blk.2.attn_probs at position 0",
	"Q8_0 scales one block off": "blk.2.q at position 0",
	"square weight transposed":  "blk.2.q at position 0",
}

// TestEOSWithGenuineTokenizer checks the premise of the EOS case: the
// edit is what makes the tokenizer line fail (id 2 is stories260K's EOS).
func TestEOSWithGenuineTokenizer(t *testing.T) {
	l, err := engine.Load(stories(t), engine.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if eos := l.Tokenizer.EOS(); eos != 2 {
		t.Fatalf("EOS is %d, the test appends 2", eos)
	}
}

func TestUsageErrors(t *testing.T) {
	path := stories(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no model"},
		{[]string{"-m", path, "--reference", "cuda"}, "unknown reference"},
		{[]string{"-m", path, "--chat", "--no-chat"}, "exclude each other"},
		{[]string{"-m", path, "--json", "--plain"}, "exclude each other"},
		{[]string{"-m", path, "stray"}, "unexpected arguments"},
		{[]string{"--bogus"}, "flag provided but not defined"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := Main(context.Background(), tc.args, &out, &errOut); code != ExitUsage {
				t.Errorf("exit status %d, want %d", code, ExitUsage)
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), []string{"-m", filepath.Join(t.TempDir(), "none.gguf"), "--plain"}, &out, &errOut)
		if code != ExitFail || !strings.Contains(out.String(), "fail  weights") || !strings.Contains(out.String(), "verify: 0 ok, 0 warn, 1 fail") {
			t.Errorf("exit status %d, output:\n%s", code, out.String())
		}
	})
}

func TestFiguresJSON(t *testing.T) {
	in := Figures{"a": 1.5, "nan": math.NaN(), "inf": math.Inf(1), "ninf": math.Inf(-1)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Figures
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out["a"] != 1.5 || !math.IsNaN(out["nan"]) || !math.IsInf(out["inf"], 1) || !math.IsInf(out["ninf"], -1) || len(out) != 4 {
		t.Errorf("%s read back as %v", b, out)
	}
}

func TestIDsDiffer(t *testing.T) {
	for _, tc := range []struct {
		ours, ref []int32
		want      string
	}{
		{[]int32{1, 2}, []int32{1, 2}, ""},
		{[]int32{1, 3}, []int32{1, 2}, "first at index 1: 3, reference 2"},
		{[]int32{1, 2, 2}, []int32{1, 2}, "3 ids, reference 2 (extra [2])"},
		{[]int32{1}, []int32{1, 2}, "1 ids, reference 2 (missing [2])"},
	} {
		if got := idsDiffer(tc.ours, tc.ref); got != tc.want {
			t.Errorf("idsDiffer(%v, %v) = %q, want %q", tc.ours, tc.ref, got, tc.want)
		}
	}
}

func TestSoftmaxAndTopK(t *testing.T) {
	p := softmax([]float64{1000, 1000, math.Inf(-1)})
	if p[0] != 0.5 || p[1] != 0.5 || p[2] != 0 {
		t.Errorf("softmax = %v", p)
	}
	if got := topK([]float64{0.1, 3, 2, 3}, 3); !slices.Equal(got, []int{1, 3, 2}) {
		t.Errorf("topK = %v", got)
	}
	if s := fmt.Sprint(Fail); s != "fail" {
		t.Errorf("Fail prints %q", s)
	}
}
