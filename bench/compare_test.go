package bench

import (
	"bytes"
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
