package probe

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
)

// lastLine returns the last line of a report.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func mustDiff(t *testing.T, a, b *DumpFile, opts DiffOptions) *Report {
	t.Helper()
	r, err := Diff(a, b, opts)
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	return r
}

func reportText(t *testing.T, r *Report, compact bool) string {
	t.Helper()
	var buf bytes.Buffer
	write := r.WriteText
	if compact {
		write = r.WriteSummary
	}
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestDiffEqual(t *testing.T) {
	a, b := baseRun().dumpFile(t), baseRun().dumpFile(t)
	r := mustDiff(t, a, b, DiffOptions{})
	if r.Diverged() {
		t.Error("identical runs diverge")
	}
	if _, _, _, ok := r.FirstDivergence(); ok {
		t.Error("FirstDivergence found one")
	}
	c := r.Counts()
	if c[Agree] != len(a.Keys) || len(r.Rows) != len(a.Keys) {
		t.Errorf("counts %v for %d tensors", c, len(a.Keys))
	}
	for _, row := range r.Rows {
		if row.RelErr != 0 || row.MaxAbs != 0 || math.Abs(row.Cosine-1) > 1e-12 {
			t.Fatalf("%s@%d: rel %g max %g cos %g", row.Probe, row.Pos, row.RelErr, row.MaxAbs, row.Cosine)
		}
	}
	for _, compact := range []bool{false, true} {
		if got := lastLine(reportText(t, r, compact)); got != "all probes agree" {
			t.Errorf("compact=%v: last line %q", compact, got)
		}
	}
}

func TestDiffFirstDivergence(t *testing.T) {
	run := baseRun()
	run.edit = func(name string, pos int, data []float32) bool {
		switch {
		case name == "blk.1.q" && pos == 2:
			for i := range data {
				data[i] *= 1.05
			}
		case name == "blk.1.out" && pos == 0: // later in forward order, bigger
			for i := range data {
				data[i] *= 1.5
			}
		case name == "blk.0.ffn_up" && pos == 3: // earlier, but only a warning
			for i := range data {
				data[i] *= 1.005
			}
		}
		return true
	}
	r := mustDiff(t, run.dumpFile(t), baseRun().dumpFile(t), DiffOptions{})
	probe, pos, rel, ok := r.FirstDivergence()
	if !ok || probe != "blk.1.q" || pos != 2 || math.Abs(rel-0.05) > 1e-6 {
		t.Errorf("FirstDivergence = %s, %d, %g, %v", probe, pos, rel, ok)
	}
	if !r.Diverged() {
		t.Error("Diverged() is false")
	}
	want := "first divergence: blk.1.q at position 2 (relative error 0.05)"
	for _, compact := range []bool{false, true} {
		text := reportText(t, r, compact)
		if got := lastLine(text); got != want {
			t.Errorf("compact=%v: last line %q, want %q", compact, got, want)
		}
		if !strings.Contains(text, "blk.0.ffn_up") || !strings.Contains(text, "warn") {
			t.Errorf("compact=%v: the warning row is missing:\n%s", compact, text)
		}
	}
	// The compact table has the three planted rows only; the full one all.
	compact := reportText(t, r, true)
	if strings.Contains(compact, "blk.0.q ") || strings.Count(compact, "\n") > 15 {
		t.Errorf("compact report lists agreeing rows:\n%s", compact)
	}
	if full := reportText(t, r, false); !strings.Contains(full, "blk.0.q ") {
		t.Errorf("full report lacks agreeing rows")
	}
	c := r.Counts()
	if c[Diverge] != 2 || c[Warn] != 1 || c[Agree] != len(r.Rows)-3 {
		t.Errorf("counts %v", c)
	}
	for _, row := range r.Rows {
		if row.Probe == "blk.0.ffn_up" && row.Pos == 3 {
			if row.Class != Warn || math.Abs(row.RelErr-0.005) > 1e-6 || row.Layer != 0 || row.Kind != "ffn_up" {
				t.Errorf("warn row %+v", row)
			}
		}
	}
}

func TestDiffWarningsAreNotDivergence(t *testing.T) {
	run := baseRun()
	run.edit = func(name string, pos int, data []float32) bool {
		if name == "logits" {
			data[0] += 0.02 // a small absolute change on one value
		}
		return true
	}
	r := mustDiff(t, run.dumpFile(t), baseRun().dumpFile(t), DiffOptions{Agree: 1e-6, Warn: 0.5})
	if r.Diverged() || r.Counts()[Warn] != 4 {
		t.Errorf("counts %v, diverged %v", r.Counts(), r.Diverged())
	}
	if got := lastLine(reportText(t, r, true)); got != "all probes agree" {
		t.Errorf("last line %q", got)
	}
}

func TestCompare(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, tc := range []struct {
		name                string
		a, b                []float64
		rel, maxAbs, cosine float64
	}{
		// ‖(3,4)-(0,0)... worked by hand.
		{"equal", []float64{1, 2}, []float64{1, 2}, 0, 0, 1},
		{"scaled", []float64{2, 4}, []float64{1, 2}, 1, 2, 1},
		{"opposite", []float64{-1, 0}, []float64{1, 0}, 2, 2, -1},
		{"orthogonal", []float64{0, 3}, []float64{4, 0}, 5.0 / 4, 4, 0},
		{"both zero", []float64{0, 0}, []float64{0, 0}, 0, 0, 1},
		{"zero reference", []float64{0, 1}, []float64{0, 0}, inf, 1, 0},
		{"zero candidate", []float64{0, 0}, []float64{3, 4}, 1, 4, 0},
		{"NaN in A", []float64{nan, 1}, []float64{1, 1}, nan, nan, nan},
		{"NaN in B", []float64{1, 1}, []float64{1, nan}, nan, nan, nan},
		{"Inf in A", []float64{inf, 1}, []float64{1, 1}, inf, inf, nan},
		{"empty", nil, nil, 0, 0, 1},
	} {
		rel, maxAbs, cosine := compare(tc.a, tc.b)
		for _, c := range []struct {
			what      string
			got, want float64
		}{{"rel", rel, tc.rel}, {"max abs", maxAbs, tc.maxAbs}, {"cosine", cosine, tc.cosine}} {
			same := c.got == c.want || (math.IsNaN(c.got) && math.IsNaN(c.want)) || math.Abs(c.got-c.want) < 1e-12
			if !same {
				t.Errorf("%s: %s = %v, want %v", tc.name, c.what, c.got, c.want)
			}
		}
		if math.IsNaN(tc.rel) || math.IsInf(tc.rel, 0) {
			if classify(rel, DefaultAgree, DefaultWarn) != Diverge {
				t.Errorf("%s: relative error %v does not diverge", tc.name, rel)
			}
		}
	}
}

func TestDiffNaNDiverges(t *testing.T) {
	run := baseRun()
	run.edit = func(name string, pos int, data []float32) bool {
		if name == "blk.0.attn_probs" && pos == 1 {
			data[1] = float32(math.NaN())
		}
		return true
	}
	r := mustDiff(t, run.dumpFile(t), baseRun().dumpFile(t), DiffOptions{})
	want := "first divergence: blk.0.attn_probs at position 1 (relative error NaN)"
	if got := lastLine(reportText(t, r, true)); got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
}

func TestDiffRefusals(t *testing.T) {
	otherIDs := baseRun()
	otherIDs.info.TokenIDs = []int32{1, 403, 407, 262, 378}
	shorter := baseRun()
	shorter.info.TokenIDs = []int32{1, 403}
	otherModel := baseRun()
	otherModel.info.ModelSHA256 = "0000000000000000000000000000000000000000000000000000000000000000"
	for _, tc := range []struct {
		name  string
		run   synthRun
		wants []string
	}{
		{"token ids", otherIDs, []string{"token ids differ at index 3", "A has 262, B has 261", "[1 403 407 262 378]"}},
		{"token count", shorter, []string{"token ids differ in length", "A has 2 ids, B has 5"}},
		{"model", otherModel, []string{"model SHA-256 differs", "A 0000", "B 270cba1b"}},
	} {
		a, b := tc.run.dumpFile(t), baseRun().dumpFile(t)
		_, err := Diff(a, b, DiffOptions{})
		if !errors.Is(err, ErrDifferentRuns) {
			t.Errorf("%s: error %v, want ErrDifferentRuns", tc.name, err)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
		r, err := Diff(a, b, DiffOptions{Force: true})
		if err != nil {
			t.Errorf("%s: forced: %v", tc.name, err)
			continue
		}
		if len(r.Notes) == 0 || !strings.HasPrefix(r.Notes[0], "forced: ") {
			t.Errorf("%s: forced report notes %q", tc.name, r.Notes)
		}
		if !strings.Contains(reportText(t, r, true), "note: forced: ") {
			t.Errorf("%s: the text report does not say it was forced", tc.name)
		}
	}
}

func TestDiffMissingProbes(t *testing.T) {
	noAttn := baseRun()
	noAttn.edit = func(name string, pos int, data []float32) bool {
		_, kind := ParseName(name)
		return kind != KindAttnScores && kind != KindAttnProbs // as a flash-attention run
	}
	noLogits := baseRun()
	noLogits.edit = func(name string, pos int, data []float32) bool { return name != Logits || pos == 3 }

	r := mustDiff(t, noLogits.dumpFile(t), noAttn.dumpFile(t), DiffOptions{})
	c := r.Counts()
	if c[MissingInA] != 3 || c[MissingInB] != 2*2*4 || r.Diverged() {
		t.Errorf("counts %v", c)
	}
	text := reportText(t, r, true)
	for _, w := range []string{"missing in A", "missing in B", "logits", "blk.1.attn_probs"} {
		if !strings.Contains(text, w) {
			t.Errorf("report lacks %q:\n%s", w, text)
		}
	}
	if lastLine(text) != "all probes agree" {
		t.Errorf("last line %q", lastLine(text))
	}
	// Rows only B has come after A's, in B's order.
	last := r.Rows[len(r.Rows)-1]
	if last.Class != MissingInA || last.Probe != Logits || last.Pos != 2 {
		t.Errorf("last row %+v", last)
	}
}

func TestDiffErrors(t *testing.T) {
	onlyEmbd := baseRun()
	onlyEmbd.edit = func(name string, pos int, data []float32) bool { return name == Embd }
	noEmbd := baseRun()
	noEmbd.edit = func(name string, pos int, data []float32) bool { return name != Embd }
	wideQ := baseRun()
	wideQ.shapeOf = func(name string) []int {
		if name == "blk.1.q" {
			return []int{8}
		}
		return nil
	}
	for _, tc := range []struct {
		name string
		a, b synthRun
		opts DiffOptions
		want string
	}{
		{"nothing in common", onlyEmbd, noEmbd, DiffOptions{}, "no probe is in both"},
		{"filter selects nothing", baseRun(), baseRun(), DiffOptions{Probes: mustFilter(t, "nothing.*", "")}, "no probe is in both"},
		{"shape", wideQ, baseRun(), DiffOptions{}, "blk.1.q at position 0 has shape [8] in A but [2 4] in B"},
		{"thresholds", baseRun(), baseRun(), DiffOptions{Agree: 0.1, Warn: 0.01}, "thresholds"},
		{"negative threshold", baseRun(), baseRun(), DiffOptions{Agree: -1}, "thresholds"},
	} {
		_, err := Diff(tc.a.dumpFile(t), tc.b.dumpFile(t), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.want)
		}
	}
}

func TestDiffFilter(t *testing.T) {
	run := baseRun()
	run.edit = func(name string, pos int, data []float32) bool {
		if name == "blk.0.v" {
			data[0] += 10
		}
		return true
	}
	a, b := run.dumpFile(t), baseRun().dumpFile(t)
	r := mustDiff(t, a, b, DiffOptions{Probes: mustFilter(t, "blk.1.*", "1-2")})
	if r.Diverged() || len(r.Rows) != 17*2 {
		t.Errorf("filtered diff: %d rows, diverged %v", len(r.Rows), r.Diverged())
	}
	r = mustDiff(t, a, b, DiffOptions{Probes: mustFilter(t, "*.v", "")})
	if probe, pos, _, _ := r.FirstDivergence(); probe != "blk.0.v" || pos != 0 || len(r.Rows) != 8 {
		t.Errorf("first divergence %s@%d in %d rows", probe, pos, len(r.Rows))
	}
}

func mustFilter(t *testing.T, globs, positions string) Filter {
	t.Helper()
	f, err := ParseFilter(globs, positions)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDiffNotesMissingMetadata(t *testing.T) {
	anon := baseRun()
	anon.info = DumpInfo{}
	a := anon.dumpFile(t)
	delete(a.Metadata, MetaTokenIDs)
	r := mustDiff(t, a, baseRun().dumpFile(t), DiffOptions{})
	text := strings.Join(r.Notes, "\n")
	if !strings.Contains(text, "A does not record its token ids") || !strings.Contains(text, "SHA-256") {
		t.Errorf("notes %q", r.Notes)
	}
}
