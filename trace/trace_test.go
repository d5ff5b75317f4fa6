package trace_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"llamago/engine"
	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/probe"
	"llamago/probe/diffcli"
	"llamago/trace"
	"llamago/trace/faults"
)

// stories260K's shape (shared/README.md): 64 wide, 5 layers, 8 heads of 8
// over 4 KV heads, n_ff 172, vocabulary 512.
const (
	nEmbd, nLayer, nHead, nKVHead, headDim, nFF, nVocab = 64, 5, 8, 4, 8, 172, 512
)

const prompt = "Once upon a time, there was a little girl"

func stories(t *testing.T) string {
	t.Helper()
	return testenv.Path(t, testenv.Stories260KGGUF)
}

// runMain runs the command and returns its exit status and outputs.
func runMain(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = trace.Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// dumpWith runs a trace into a dump in a temporary folder and reads it back.
func dumpWith(t *testing.T, o trace.Options) *probe.DumpFile {
	t.Helper()
	o.DumpPath = filepath.Join(t.TempDir(), "dump.safetensors")
	if _, err := trace.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	d, err := probe.ReadDump(o.DumpPath)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestMainRefusesBadInput(t *testing.T) {
	noModel := filepath.Join(t.TempDir(), "nonesuch.gguf")
	notGGUF := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notGGUF, []byte("not a model at all, just text"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		needModel bool
		code      int
		want      []string // substrings of stderr
	}{
		{"no model flag", []string{"-p", "hi"}, false, trace.ExitUsage, []string{"no model", "-m FILE"}},
		{"missing model file", []string{"-m", noModel, "-p", "hi"}, false, trace.ExitFail, []string{noModel, "no such file"}},
		{"not a GGUF file", []string{"-m", notGGUF, "-p", "hi"}, false, trace.ExitFail, []string{notGGUF, "GGUF"}},
		{"bad backend", []string{"-m", noModel, "--backend", "gpu"}, false, trace.ExitUsage, []string{`unknown backend "gpu"`, "cpu, oracle, cuda or llamacpp"}},
		{"chat and no-chat", []string{"-m", noModel, "--chat", "--no-chat"}, false, trace.ExitUsage, []string{"exclude each other"}},
		{"negative -n", []string{"-m", noModel, "-n", "-1"}, false, trace.ExitUsage, []string{"-n -1"}},
		{"stray argument", []string{"-m", noModel, "-p", "Once", "upon"}, false, trace.ExitUsage, []string{`unexpected arguments ["upon"]`}},
		{"bad ids", []string{"-m", noModel, "--ids", "1,x"}, false, trace.ExitUsage, []string{`"x" is not a token id`}},
		{"unknown flag", []string{"-m", noModel, "--frobnicate"}, false, trace.ExitUsage, []string{"frobnicate"}},
		{"glob matching no probe", []string{"-p", "hi", "--probe", "blk.0.attn_q"}, true, trace.ExitUsage,
			[]string{`--probe "blk.0.attn_q" matches no probe`, "blk.{0..4}", "q_rope"}},
		{"one glob of two matching nothing", []string{"-p", "hi", "--probe", "blk.0.q,blk.9.*"}, true, trace.ExitUsage,
			[]string{`"blk.9.*" matches no probe`}},
		{"malformed glob", []string{"-p", "hi", "--probe", "blk.[0"}, true, trace.ExitUsage, []string{"bad name pattern"}},
		{"positions past the tokens", []string{"-p", "hi", "--pos", "40-50"}, true, trace.ExitUsage,
			[]string{`--pos "40-50" selects none`}},
		{"context too small", []string{"-p", prompt, "-c", "4"}, true, trace.ExitUsage, []string{"do not fit a context of 4"}},
		{"token id outside the vocabulary", []string{"--ids", "1,512"}, true, trace.ExitUsage, []string{"token id 512", "vocabulary of 512"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.needModel {
				args = append([]string{"-m", stories(t)}, args...)
			}
			code, stdout, stderr := runMain(t, args...)
			if code != tc.code {
				t.Errorf("exit status %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not mention %q:\n%s", w, stderr)
				}
			}
			if stdout != "" {
				t.Errorf("wrote to stdout on failure:\n%s", stdout)
			}
		})
	}
}

// TestStatsLinesDescribeTheDump runs one trace with statistics and a dump
// and checks each line against the dumped tensor, recomputing the
// statistics here.
func TestStatsLinesDescribeTheDump(t *testing.T) {
	path := stories(t)
	dump := filepath.Join(t.TempDir(), "d.safetensors")
	code, stdout, stderr := runMain(t, "-m", path, "-p", prompt, "--probe", "blk.1.k_rope,logits", "--pos", "1-2", "--stats", "--dump", dump)
	if code != trace.ExitOK {
		t.Fatalf("exit status %d: %s", code, stderr)
	}
	d, err := probe.ReadDump(dump)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"blk.1.k_rope@1", "blk.1.k_rope@2", "logits@1", "logits@2"}
	if !slices.Equal(d.Keys, want) {
		t.Fatalf("dump keys %v, want %v", d.Keys, want)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d statistics lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, line := range lines {
		f := strings.Fields(line)
		tn := d.Tensors[want[i]]
		data := tn.Values()
		if f[0] != tn.Probe || f[1] != "pos" || f[2] != strconv.Itoa(tn.Pos) {
			t.Fatalf("line %d is %q, want %s at position %d", i, line, tn.Probe, tn.Pos)
		}
		var sum, sq float64
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range data {
			sum += v
			sq += v * v
			lo, hi = min(lo, v), max(hi, v)
		}
		n := float64(len(data))
		for label, v := range map[string]float64{"rms": math.Sqrt(sq / n), "mean": sum / n, "min": lo, "max": hi} {
			got := field(t, f, label)
			if math.Abs(got-v) > 5e-4*max(math.Abs(v), 1e-3) {
				t.Errorf("%s: %s %g, the dump says %g", want[i], label, got, v)
			}
		}
		if field(t, f, "nan") != 0 || field(t, f, "inf") != 0 {
			t.Errorf("%s: non-finite counts in %q", want[i], line)
		}
		first := line[strings.Index(line, "first [")+len("first [") : len(line)-1]
		vals := strings.Fields(first)
		if len(vals) != min(10, len(data)) {
			t.Fatalf("%s: %d first values, want %d", want[i], len(vals), min(10, len(data)))
		}
		for j, s := range vals {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.Abs(v-data[j]) > 5e-4*max(math.Abs(data[j]), 1e-3) {
				t.Errorf("%s: first value %d is %s, the dump says %g", want[i], j, s, data[j])
			}
		}
	}
	if !strings.Contains(stderr, "4 tensors recorded") {
		t.Errorf("summary on stderr: %q", stderr)
	}
}

// field reads the number after label in a statistics line's fields.
func field(t *testing.T, f []string, label string) float64 {
	t.Helper()
	for i := 0; i+1 < len(f); i++ {
		if f[i] == label {
			v, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil {
				t.Fatalf("%s %q: %v", label, f[i+1], err)
			}
			return v
		}
	}
	t.Fatalf("no %q in %v", label, f)
	return 0
}

func TestJSONStats(t *testing.T) {
	code, stdout, stderr := runMain(t, "-m", stories(t), "-p", "Once upon", "--probe", "blk.0.attn_probs", "--json")
	if code != trace.ExitOK {
		t.Fatalf("exit status %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) < 2 {
		t.Fatalf("want a line per position, got:\n%s", stdout)
	}
	for i, line := range lines {
		var rec struct {
			Probe    string
			Pos      int
			Shape    []int
			RMS      float64
			Mean     float64
			NaN, Inf int
			First    []float64
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, line)
		}
		if rec.Probe != "blk.0.attn_probs" || rec.Pos != i || !slices.Equal(rec.Shape, []int{nHead, i + 1}) {
			t.Errorf("line %d: %+v", i, rec)
		}
		// Each head's probabilities sum to 1, so the mean is 1/(pos+1).
		if math.Abs(rec.Mean-1/float64(i+1)) > 1e-6 {
			t.Errorf("line %d: mean %g, want %g", i, rec.Mean, 1/float64(i+1))
		}
	}
}

// TestDumpRecordsTheRun checks a full dump: its metadata against what the
// test computes itself (tokenization, SHA-256), every probe at every
// position with the documented shape, in forward order, and the values
// of the probes the test can recompute from the file or from other probes.
func TestDumpRecordsTheRun(t *testing.T) {
	path := stories(t)
	d := dumpWith(t, trace.Options{ModelPath: path, Prompt: prompt, KVF32: true, Threads: 2})

	l, err := engine.Load(path, engine.LoadOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ids, err := l.TextPrompt(prompt)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if got := d.Info; !slices.Equal(got.TokenIDs, ids) || got.Prompt != prompt || got.ModelSHA256 != hex.EncodeToString(sum[:]) ||
		got.ModelPath != path || got.Backend != "cpu, F32 KV" {
		t.Errorf("metadata %+v, want ids %v, prompt %q, sha256 %x, backend cpu, F32 KV", got, ids, prompt, sum)
	}

	var want []string
	for _, name := range trace.ProbeNames(nLayer) {
		for p := range ids {
			want = append(want, probe.DumpKey(name, p))
		}
	}
	if !slices.Equal(d.Keys, want) {
		t.Fatalf("dump keys (forward order) differ:\n got %v\nwant %v", d.Keys, want)
	}
	for _, k := range d.Keys {
		tn := d.Tensors[k]
		if s := wantShape(tn.Probe, tn.Pos); !slices.Equal(tn.Shape, s) {
			t.Errorf("%s has shape %v, want %v", k, tn.Shape, s)
		}
	}

	// embd is the token's row of token_embd.weight, read here from the file.
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ti, _ := f.Tensor("token_embd.weight")
	table := f.TensorData(ti)
	for p, id := range ids {
		got := d.Tensors[probe.DumpKey(probe.Embd, p)].Values()
		for i, v := range got {
			w := math.Float32frombits(binary.LittleEndian.Uint32(table[4*(int(id)*nEmbd+i):]))
			if float32(v) != w {
				t.Fatalf("embd@%d[%d] = %g, token_embd row %d has %g", p, i, v, id, w)
			}
		}
	}
	checkAttention(t, d, 1e-5)
}

// wantShape is the package probe contract for stories260K.
func wantShape(name string, pos int) []int {
	_, kind := probe.ParseName(name)
	switch kind {
	case probe.KindQ, probe.KindQRope:
		return []int{nHead, headDim}
	case probe.KindK, probe.KindKRope, probe.KindV:
		return []int{nKVHead, headDim}
	case probe.KindAttnScores, probe.KindAttnProbs:
		return []int{nHead, pos + 1}
	case probe.KindAttnOut:
		return []int{nHead * headDim}
	case probe.KindFFNGate, probe.KindFFNUp, probe.KindFFNAct:
		return []int{nFF}
	case probe.Logits:
		return []int{nVocab}
	}
	return []int{nEmbd}
}

// checkAttention recomputes every layer's attention from the dump's own
// q_rope, k_rope and v: scores = q·k/sqrt(head_dim) with query head h
// reading KV head h/2, probs their softmax, attn_out the probabilities
// times v, heads concatenated. It pins the layout of those probes (which
// head is which, which key is which position), for llamago's dumps and for
// llama.cpp's converted ones alike. The bound is on ‖a−b‖/‖b‖ per probe
// and position, as diff measures it.
func checkAttention(t *testing.T, d *probe.DumpFile, tol float64) {
	t.Helper()
	values := map[string][]float64{}
	get := func(name string, pos int) []float64 {
		key := probe.DumpKey(name, pos)
		if v, ok := values[key]; ok {
			return v
		}
		tn := d.Tensors[key]
		if tn == nil {
			t.Fatalf("dump has no %s at position %d", name, pos)
		}
		values[key] = tn.Values()
		return values[key]
	}
	nPos := len(d.Info.TokenIDs)
	scale := 1 / math.Sqrt(headDim)
	worst, where := 0.0, ""
	check := func(name string, pos int, want []float64) {
		if e := relErr(get(name, pos), want); !(e <= worst) {
			worst, where = e, probe.DumpKey(name, pos)
		}
	}
	for l := range nLayer {
		for p := range nPos {
			q := get(probe.LayerName(l, probe.KindQRope), p)
			scores := make([]float64, nHead*(p+1))
			probs := make([]float64, nHead*(p+1))
			out := make([]float64, nHead*headDim)
			for h := range nHead {
				kvh := h / (nHead / nKVHead)
				s := scores[h*(p+1):][:p+1]
				maxS := math.Inf(-1)
				for j := range s {
					k := get(probe.LayerName(l, probe.KindKRope), j)[kvh*headDim:][:headDim]
					for i := range headDim {
						s[j] += q[h*headDim+i] * k[i]
					}
					s[j] *= scale
					maxS = max(maxS, s[j])
				}
				pr := probs[h*(p+1):][:p+1]
				var z float64
				for j := range s {
					pr[j] = math.Exp(s[j] - maxS)
					z += pr[j]
				}
				for j := range pr {
					pr[j] /= z
					v := get(probe.LayerName(l, probe.KindV), j)[kvh*headDim:][:headDim]
					for i := range headDim {
						out[h*headDim+i] += pr[j] * v[i]
					}
				}
			}
			check(probe.LayerName(l, probe.KindAttnScores), p, scores)
			check(probe.LayerName(l, probe.KindAttnProbs), p, probs)
			check(probe.LayerName(l, probe.KindAttnOut), p, out)
		}
	}
	if worst > tol {
		t.Errorf("attention recomputed from q_rope, k_rope and v differs from the dump at %s by %.3g (> %g)", where, worst, tol)
	}
}

// relErr is ‖a−b‖/‖b‖.
func relErr(a, b []float64) float64 {
	var num, den float64
	for i := range a {
		num += (a[i] - b[i]) * (a[i] - b[i])
		den += b[i] * b[i]
	}
	return math.Sqrt(num / den)
}

// diffFiles runs "llamago diff A B" and returns its exit status and output.
func diffFiles(t *testing.T, a, b string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := diffcli.Main([]string{a, b}, &out, &errb)
	return code, out.String() + errb.String()
}

// traceToFile runs the command with a dump and returns the dump's path.
func traceToFile(t *testing.T, args ...string) string {
	t.Helper()
	dump := filepath.Join(t.TempDir(), "trace.safetensors")
	code, _, stderr := runMain(t, append(args, "--dump", dump)...)
	if code != trace.ExitOK {
		t.Fatalf("llamago trace %v: exit status %d: %s", args, code, stderr)
	}
	return dump
}

// worstRelErr reads the largest relative error of a diff of two dumps.
func worstRelErr(t *testing.T, a, b string) (float64, string) {
	t.Helper()
	da, err := probe.ReadDump(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := probe.ReadDump(b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := probe.Diff(da, db, probe.DiffOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var worst float64
	where := ""
	for _, row := range r.Rows {
		if row.Class == probe.MissingInA || row.Class == probe.MissingInB {
			t.Errorf("%s at position %d is in one dump only", row.Probe, row.Pos)
		}
		if !(row.RelErr <= worst) {
			worst, where = row.RelErr, probe.DumpKey(row.Probe, row.Pos)
		}
	}
	return worst, where
}

// TestCPUAgreesWithOracle is the end-to-end check of the issue: dump the
// CPU backend and the float64 oracle through the command, diff them with
// the diff command, read "all probes agree".
func TestCPUAgreesWithOracle(t *testing.T) {
	path := stories(t)
	oracle := traceToFile(t, "-m", path, "-p", prompt, "--backend", "oracle", "-n", "2")
	for _, tc := range []struct {
		name  string
		flags []string
		worst float64 // bound on the largest relative error
	}{
		// An F32 cache leaves only float32 rounding.
		{"F32 KV", []string{"--kv-f32"}, 1e-5},
		// The default F16 cache rounds K and V (and, as ggml does, the
		// query and probabilities): a few probes of the last layers
		// then warn (about 2.5e-3 here), none diverges.
		{"F16 KV", nil, probe.DefaultWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cpu := traceToFile(t, append([]string{"-m", path, "-p", prompt, "-n", "2", "-t", "2"}, tc.flags...)...)
			code, out := diffFiles(t, cpu, oracle)
			if code != diffcli.ExitAgree || !strings.HasSuffix(strings.TrimSpace(out), "all probes agree") {
				t.Fatalf("diff exit status %d:\n%s", code, out)
			}
			worst, where := worstRelErr(t, cpu, oracle)
			t.Logf("CPU (%s) vs oracle: largest relative error %.3g at %s", tc.name, worst, where)
			if worst >= tc.worst {
				t.Errorf("largest relative error %.3g at %s, want < %g", worst, where, tc.worst)
			}
		})
	}
}

// TestLlamagoAgreesWithLlamaCpp dumps llama.cpp's own graph nodes through
// its eval callback and diffs them with llamago's probes: prefill and two
// greedy steps, with the same KV cache type on both sides.
func TestLlamagoAgreesWithLlamaCpp(t *testing.T) {
	path := stories(t)
	testenv.RequireLlamaCpp(t)
	t.Setenv("LLAMAGO_LLAMACPP_LIB", testenv.LlamaCppLibDir())
	for _, tc := range []struct {
		name  string
		flags []string
		worst float64
	}{
		{"F32 KV", []string{"--kv-f32"}, 1e-5},
		// Both round K and V to F16 the same way.
		{"F16 KV", nil, 1e-3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			common := append([]string{"-m", path, "-p", prompt, "-n", "2", "-t", "2"}, tc.flags...)
			ours := traceToFile(t, common...)
			ref := traceToFile(t, append(common, "--backend", "llamacpp")...)
			code, out := diffFiles(t, ours, ref)
			if code != diffcli.ExitAgree || !strings.HasSuffix(strings.TrimSpace(out), "all probes agree") {
				t.Fatalf("diff exit status %d:\n%s", code, out)
			}
			worst, where := worstRelErr(t, ours, ref)
			t.Logf("llamago vs llama.cpp (%s): largest relative error %.3g at %s", tc.name, worst, where)
			if worst >= tc.worst {
				t.Errorf("largest relative error %.3g at %s, want < %g", worst, where, tc.worst)
			}
			d, err := probe.ReadDump(ref)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(d.Info.Backend, "llama.cpp") || len(d.Keys) != len(trace.ProbeNames(nLayer))*len(d.Info.TokenIDs) {
				t.Errorf("llama.cpp dump: backend %q, %d tensors for %d tokens", d.Info.Backend, len(d.Keys), len(d.Info.TokenIDs))
			}
			if tc.flags != nil {
				// llama.cpp's nodes, converted, obey the same attention
				// algebra: the layouts (heads, keys, scale) are right.
				checkAttention(t, d, 1e-5)
			}
		})
	}
}

// TestLlamaCppFilter checks that the eval filter and the position filter
// record exactly the selected probes from llama.cpp.
func TestLlamaCppFilter(t *testing.T) {
	path := stories(t)
	testenv.RequireLlamaCpp(t)
	t.Setenv("LLAMAGO_LLAMACPP_LIB", testenv.LlamaCppLibDir())
	d := dumpWith(t, trace.Options{ModelPath: path, Prompt: prompt, Backend: "llamacpp", ProbeGlobs: "blk.3.q,*.attn_scores", Positions: "2,4", Threads: 2})
	var want []string
	for _, name := range []string{"blk.0.attn_scores", "blk.1.attn_scores", "blk.2.attn_scores", "blk.3.q", "blk.3.attn_scores", "blk.4.attn_scores"} {
		want = append(want, name+"@2", name+"@4")
	}
	got := slices.Clone(d.Keys)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("keys %v, want %v", got, want)
	}
}

// TestStopOnNaN plants a softmax that overflows in layer 2 and checks that
// the trace stops there: the error, the last statistics line and the last
// tensor of the dump all name blk.2.attn_probs.
func TestStopOnNaN(t *testing.T) {
	path := stories(t)
	var stats bytes.Buffer
	o := trace.Options{
		ModelPath: path, Prompt: prompt, KVF32: true, Threads: 2, Stats: &stats, StopOnNaN: true,
		DumpPath: filepath.Join(t.TempDir(), "nan.safetensors"),
		WrapBackend: faults.Wrapper(
			faults.Fault{Kind: faults.ScaleQ, Layer: 2, Factor: 1000},
			faults.Fault{Kind: faults.SoftmaxNoMaxShift, Layer: 2},
		),
	}
	_, err := trace.Run(context.Background(), o)
	var nf *probe.NonFiniteError
	if !errors.As(err, &nf) {
		t.Fatalf("err = %v, want a *probe.NonFiniteError", err)
	}
	if nf.Probe != "blk.2.attn_probs" || nf.Pos != 0 {
		t.Errorf("stopped at %s position %d, want blk.2.attn_probs at 0", nf.Probe, nf.Pos)
	}
	lines := strings.Split(strings.TrimSpace(stats.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "blk.2.attn_probs ") || strings.Contains(last, "nan 0 ") {
		t.Errorf("last statistics line %q", last)
	}
	d, err := probe.ReadDump(o.DumpPath)
	if err != nil {
		t.Fatal(err)
	}
	if last := d.Keys[len(d.Keys)-1]; last != "blk.2.attn_probs@0" {
		t.Errorf("the dump ends at %s, want blk.2.attn_probs@0", last)
	}
}
