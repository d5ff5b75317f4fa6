package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestComparisonMarkdown(t *testing.T) {
	c := Comparison{
		RefName: "llama.cpp", OursName: "llamago",
		PP: Test{Prompt: 128}, TG: Test{Gen: 64},
		BandwidthGBs: 20,
		Rows: []ComparisonRow{{
			Type:        "Q4_0",
			DecodeBytes: 500e6, // bound: 20e9 / 500e6 = 40 tokens/s
			PP:          Pair{Ref: Summary{Mean: 100, Stddev: 1}, Ours: Summary{Mean: 80, Stddev: 2}},
			TG:          Pair{Ref: Summary{Mean: 20, Stddev: 0.5}, Ours: Summary{Mean: 30, Stddev: 0.25}},
		}},
	}
	var b bytes.Buffer
	if err := c.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{
		"| type | llama.cpp pp128 | llamago pp128 | ratio | llama.cpp tg64 | llamago tg64 | ratio | MB/token | tg64 bound | llama.cpp of bound | llamago of bound |",
		"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
		"| Q4_0 | 100.00 ± 1.00 | 80.00 ± 2.00 | 0.80 | 20.00 ± 0.50 | 30.00 ± 0.25 | 1.50 | 500 | 40.0 | 50% | 75% |",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(lines), b.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, lines[i], want[i])
		}
	}

	// Without a bandwidth the bound columns go.
	c.BandwidthGBs = 0
	b.Reset()
	if err := c.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "bound") || !strings.Contains(b.String(), "| 0.80 |") {
		t.Errorf("without bandwidth:\n%s", b.String())
	}
	if r := (Pair{}).Ratio(); r != 0 {
		t.Errorf("ratio over a zero reference = %v, want 0", r)
	}
}

func TestPairRatios(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ref, ours   []float64
		med, lo, hi float64
		ok          bool
	}{
		// Repetition 2 ran under load for both engines: its speeds are
		// low, its ratio is not.
		{name: "odd", ref: []float64{10, 4, 10}, ours: []float64{11, 5, 9}, med: 1.1, lo: 0.9, hi: 1.25, ok: true},
		{name: "even", ref: []float64{10, 10, 20, 20}, ours: []float64{8, 12, 20, 30}, med: 1.1, lo: 0.8, hi: 1.5, ok: true},
		// A failed measurement (0) gives no ratio.
		{name: "zero", ref: []float64{0, 10}, ours: []float64{5, 20}, med: 2, lo: 2, hi: 2, ok: true},
		{name: "none", ref: nil, ours: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPair(tc.ref, tc.ours)
			med, lo, hi, ok := p.RatioSpread()
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			const eps = 1e-12
			if math.Abs(med-tc.med) > eps || math.Abs(lo-tc.lo) > eps || math.Abs(hi-tc.hi) > eps {
				t.Errorf("spread = %v (%v–%v), want %v (%v–%v)", med, lo, hi, tc.med, tc.lo, tc.hi)
			}
			if p.Ref.N != len(tc.ref) || p.Ours.N != len(tc.ours) {
				t.Errorf("summaries of %d and %d samples, want %d and %d", p.Ref.N, p.Ours.N, len(tc.ref), len(tc.ours))
			}
		})
	}
}

func TestComparisonMarkdownSpreadAndSkipped(t *testing.T) {
	c := Comparison{
		RefName: "llama.cpp", OursName: "llamago",
		PP: Test{}, TG: Test{Gen: 32},
		Rows: []ComparisonRow{{
			Type: "F16",
			TG:   NewPair([]float64{10, 12, 8}, []float64{9, 12, 10}),
		}},
	}
	var b bytes.Buffer
	if err := c.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	want := "| type | llama.cpp pp0 | llamago pp0 | ratio | llama.cpp tg32 | llamago tg32 | ratio |\n" +
		"| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n" +
		"| F16 | - | - | - | 10.00 ± 2.00 | 10.33 ± 1.53 | 1.03 |\n" +
		"\n" +
		"| type | pp0 ratio: median (min–max) | tg32 ratio: median (min–max) | pairs |\n" +
		"| --- | ---: | ---: | ---: |\n" +
		"| F16 | - | 1.00 (0.90–1.25) | 3 |\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
