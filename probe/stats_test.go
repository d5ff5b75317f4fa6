package probe

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestComputeStats(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, tc := range []struct {
		name                 string
		data                 []float32
		rms, mean, min, max  float64
		nan, inf, firstCount int
	}{
		// Worked by hand: mean (3-4)/2, rms sqrt((9+16)/2).
		{"two", []float32{3, -4}, math.Sqrt(12.5), -0.5, -4, 3, 0, 0, 2},
		{"constant", []float32{2, 2, 2, 2}, 2, 2, 2, 2, 0, 0, 4},
		// Finite values 1, -1, 2: mean 2/3, rms sqrt(6/3).
		{"non-finite skipped", []float32{1, nan, inf, -1, -inf, 2}, math.Sqrt2, 2.0 / 3, -1, 2, 1, 2, 6},
		// 1..12: mean 6.5, rms sqrt(650/12) (sum of squares 12*13*25/6).
		{"first ten kept", []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, math.Sqrt(650.0 / 12), 6.5, 1, 12, 0, 0, 10},
	} {
		st := ComputeStats(tc.data)
		if st.Count != len(tc.data) || st.NaN != tc.nan || st.Inf != tc.inf || len(st.First) != tc.firstCount {
			t.Errorf("%s: count %d nan %d inf %d first %d", tc.name, st.Count, st.NaN, st.Inf, len(st.First))
		}
		for _, c := range []struct {
			what      string
			got, want float64
		}{{"rms", st.RMS, tc.rms}, {"mean", st.Mean, tc.mean}, {"min", st.Min, tc.min}, {"max", st.Max, tc.max}} {
			if math.Abs(c.got-c.want) > 1e-12*math.Max(1, math.Abs(c.want)) {
				t.Errorf("%s: %s = %v, want %v", tc.name, c.what, c.got, c.want)
			}
		}
		for i, v := range st.First {
			if math.Float32bits(v) != math.Float32bits(tc.data[i]) {
				t.Errorf("%s: First[%d] = %v, want %v", tc.name, i, v, tc.data[i])
			}
		}
	}
	for _, data := range [][]float32{nil, {nan, inf}} {
		st := ComputeStats(data)
		if !math.IsNaN(st.RMS) || !math.IsNaN(st.Mean) || !math.IsNaN(st.Min) || !math.IsNaN(st.Max) {
			t.Errorf("ComputeStats(%v) = %+v, want NaN statistics without finite values", data, st)
		}
	}
}

func TestStatsWriterLines(t *testing.T) {
	var buf bytes.Buffer
	s := NewSet(Filter{}, NewStatsWriter(&buf, StatsOptions{}))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Emit("blk.0.q", 7, []int{2, 2}, []float32{3, -4, 3, -4}))
	must(s.Emit("blk.10.attn_scores", 123, []int{2, 1}, []float32{0.5, -0.25}))
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{"blk.0.q ", "pos 7 ", "shape [2 2] ", "rms 3.536 ", "mean -0.5 ", "min -4 ", "max 3 ", "nan 0 ", "inf 0 ", "first [3 -4 3 -4]"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line %q lacks %q", lines[0], want)
		}
	}
	// Columns align: every label starts at the same offset on both lines.
	for _, label := range []string{"pos ", "shape ", "rms ", "mean ", "min ", "max ", "nan ", "inf ", "first "} {
		a, b := strings.Index(lines[0], " "+label), strings.Index(lines[1], " "+label)
		if a < 0 || a != b {
			t.Errorf("column %q at %d and %d:\n%s\n%s", label, a, b, lines[0], lines[1])
		}
	}
}

func TestStopOnNaN(t *testing.T) {
	for _, tc := range []struct {
		name string
		sink func(*bytes.Buffer) Sink
	}{
		{"StopOnNaN", func(*bytes.Buffer) Sink { return StopOnNaN() }},
		{"StatsWriter", func(b *bytes.Buffer) Sink { return NewStatsWriter(b, StatsOptions{StopOnNaN: true}) }},
	} {
		var buf bytes.Buffer
		s := NewSet(Filter{}, tc.sink(&buf))
		if err := s.Emit("blk.1.ffn_up", 5, []int{3}, []float32{1, 2, 3}); err != nil {
			t.Fatalf("%s: finite data: %v", tc.name, err)
		}
		err := s.Emit("blk.1.ffn_act", 6, []int{4}, []float32{1, float32(math.Inf(-1)), float32(math.NaN()), 0})
		var nf *NonFiniteError
		if !errors.As(err, &nf) {
			t.Fatalf("%s: Emit = %v, want a *NonFiniteError", tc.name, err)
		}
		if nf.Probe != "blk.1.ffn_act" || nf.Pos != 6 || nf.NaN != 1 || nf.Inf != 1 || nf.Index != 1 {
			t.Errorf("%s: %+v", tc.name, nf)
		}
		if !strings.Contains(err.Error(), "blk.1.ffn_act at position 6") {
			t.Errorf("%s: message %q does not name probe and position", tc.name, err)
		}
		if s.Err() != err {
			t.Errorf("%s: Err() = %v", tc.name, s.Err())
		}
	}
}
