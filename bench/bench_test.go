package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"llamago/internal/testenv"
)

func TestMainJSONOnStories(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"--json", "-m", path, "-p", "16", "-n", "8", "-r", "2", "-t", "1"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errOut.String())
	}
	var tests []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		for _, k := range []string{"model", "type", "threads", "test", "tokens_per_second", "stddev"} {
			if _, ok := m[k]; !ok {
				t.Errorf("row %s has no field %q", sc.Text(), k)
			}
		}
		if m["model"] != "stories260K" || m["type"] != "F32" || m["threads"] != 1.0 {
			t.Errorf("row %s: want model stories260K, type F32, threads 1", sc.Text())
		}
		if tps, _ := m["tokens_per_second"].(float64); !(tps > 0) || math.IsInf(tps, 0) {
			t.Errorf("row %s: tokens_per_second not positive", sc.Text())
		}
		if sd, _ := m["stddev"].(float64); !(sd >= 0) {
			t.Errorf("row %s: stddev %v", sc.Text(), m["stddev"])
		}
		if s, _ := m["samples"].([]any); len(s) != 2 {
			t.Errorf("row %s: want 2 samples", sc.Text())
		}
		test, _ := m["test"].(string)
		tests = append(tests, test)
	}
	if strings.Join(tests, " ") != "pp16 tg8" {
		t.Errorf("tests %q, want pp16 then tg8", tests)
	}
}

func TestMainMarkdownOnStories(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"-m", path, "-p", "0", "-n", "4", "-r", "1", "-t", "1", "--huge-pages"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[2], "| stories260K | F32 | 1.12 MiB | 0.29 M | llamago cpu | 1 | tg4 | ") {
		t.Errorf("output:\n%s", out.String())
	}
}

func TestMainBadArguments(t *testing.T) {
	for _, args := range [][]string{
		{},                                     // no model
		{"-m", "x.gguf", "-p", "0", "-n", "0"}, // nothing to measure
		{"-m", "x.gguf", "-r", "0"},
		{"-m", "x.gguf", "-t", "0"},
		{"-m", "x.gguf", "-p", "abc"},
		{"-m", "x.gguf", "extra"},
	} {
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"-m", "/nonexistent.gguf", "-r", "1"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "nonexistent") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut.String())
	}
}

func TestWriteMarkdownRow(t *testing.T) {
	for _, tc := range []struct {
		row  Row
		want string
	}{
		{Row{Model: "tiny", Type: "Q4_0", SizeBytes: 5 << 20, Params: 1_100_048_384, Backend: "llamago cpu", Threads: 2, Test: "pp512", TokensPerSecond: 123.456, Stddev: 1.234},
			"| tiny | Q4_0 | 5.00 MiB | 1.10 B | llamago cpu | 2 | pp512 | 123.46 ± 1.23 |\n"},
		{Row{Model: "a|b", Type: "F16", SizeBytes: 3 << 30, Params: 292800, Backend: "llama.cpp", Threads: 1, Test: "tg128", TokensPerSecond: 7, Stddev: 0},
			"| a\\|b | F16 | 3.00 GiB | 0.29 M | llama.cpp | 1 | tg128 | 7.00 ± 0.00 |\n"},
	} {
		var b bytes.Buffer
		if err := WriteMarkdownRow(&b, tc.row); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("got  %q\nwant %q", b.String(), tc.want)
		}
	}
	if n := strings.Count(strings.SplitN(MarkdownHeader, "\n", 2)[0], "|"); n != 9 {
		t.Errorf("header has %d bars, want 9 (8 columns)", n)
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		xs         []float64
		mean, sdev float64
	}{
		{nil, 0, 0},
		{[]float64{5}, 5, 0},
		{[]float64{1, 3}, 2, math.Sqrt2},
		{[]float64{2, 4, 4, 4, 5, 5, 7, 9}, 5, math.Sqrt(32.0 / 7)},
	} {
		s := Summarize(tc.xs)
		if math.Abs(s.Mean-tc.mean) > 1e-12 || math.Abs(s.Stddev-tc.sdev) > 1e-12 || s.N != len(tc.xs) {
			t.Errorf("Summarize(%v) = %+v, want mean %v stddev %v", tc.xs, s, tc.mean, tc.sdev)
		}
	}
}

// recorder is an Engine that records what it is asked to do.
type recorder struct {
	resets int
	evals  [][]int32
	fail   error
}

func (r *recorder) Name() string { return "recorder" }
func (r *recorder) Reset() error { r.resets++; return nil }
func (r *recorder) Eval(_ context.Context, ids []int32) error {
	r.evals = append(r.evals, append([]int32(nil), ids...))
	return r.fail
}

func TestRunOnceDrivesEngineLikeLlamaBench(t *testing.T) {
	info := ModelInfo{Name: "m", NVocab: 50, BOS: 1, AddBOS: true}
	rng := rand.New(rand.NewPCG(1, 2))

	pp := &recorder{}
	if tps, err := RunOnce(context.Background(), pp, info, Test{Prompt: 12}, rng); err != nil || !(tps > 0) {
		t.Fatalf("pp: %v tokens/s, %v", tps, err)
	}
	if pp.resets != 1 || len(pp.evals) != 1 || len(pp.evals[0]) != 12 || pp.evals[0][0] != 1 {
		t.Errorf("pp12: %d resets, evals %v; want one reset and one batch of 12 starting with BOS", pp.resets, pp.evals)
	}
	tg := &recorder{}
	if _, err := RunOnce(context.Background(), tg, info, Test{Gen: 5}, rng); err != nil {
		t.Fatal(err)
	}
	if tg.resets != 1 || len(tg.evals) != 5 || tg.evals[0][0] != 1 {
		t.Errorf("tg5: %d resets, evals %v; want one reset and 5 single tokens starting with BOS", tg.resets, tg.evals)
	}
	for _, e := range append(pp.evals, tg.evals...) {
		for _, id := range e {
			if id < 0 || id >= 50 {
				t.Errorf("token id %d outside the vocabulary", id)
			}
		}
	}
	warm := &recorder{}
	if err := Warmup(context.Background(), warm, info, Test{Gen: 64}, rng); err != nil || len(warm.evals) != 1 {
		t.Errorf("tg warm-up: %d evals, %v; want one decode step", len(warm.evals), err)
	}
	bad := &recorder{fail: errors.New("boom")}
	if _, err := RunOnce(context.Background(), bad, info, Test{Gen: 3}, rng); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("failing engine: %v", err)
	}
	for _, tc := range []Test{{}, {Prompt: 1, Gen: 1}, {Prompt: -1}} {
		if _, err := RunOnce(context.Background(), &recorder{}, info, tc, rng); err == nil {
			t.Errorf("test %+v: no error", tc)
		}
	}
}

func TestTestName(t *testing.T) {
	for _, tc := range []struct {
		t    Test
		want string
	}{{Test{Prompt: 512}, "pp512"}, {Test{Gen: 128}, "tg128"}} {
		if got := tc.t.Name(); got != tc.want {
			t.Errorf("%+v.Name() = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestDescribeStories(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	info, err := DescribeFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// stories260K: 64 wide, vocabulary 512, all F32; the embedding table
	// (512×64 floats) is read one row per token.
	embd := int64(512 * 64 * 4)
	if info.Type != "F32" || info.NVocab != 512 || info.BOS != 1 || !info.AddBOS {
		t.Errorf("info %+v", info)
	}
	if info.SizeBytes != 4*info.Params || info.DecodeBytes != info.SizeBytes-embd+64*4 {
		t.Errorf("size %d, params %d, decode bytes %d", info.SizeBytes, info.Params, info.DecodeBytes)
	}
}
