package probe

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Default thresholds of DiffOptions: a relative error under 1e-3 agrees,
// under 1e-2 warns, anything else diverges.
const (
	DefaultAgree = 1e-3
	DefaultWarn  = 1e-2
)

// ErrDifferentRuns is wrapped by Diff's refusal to compare dumps of
// different token ids or model files.
var ErrDifferentRuns = errors.New("dumps of different runs")

// DiffOptions configures Diff.
type DiffOptions struct {
	Agree float64 // relative error below which a probe agrees; 0 means DefaultAgree
	Warn  float64 // below which it warns (and above which it diverges); 0 means DefaultWarn
	// Force compares dumps whose token ids or model digests differ; the
	// report's Notes then say what was overridden.
	Force bool
	// Probes limits the comparison to the probes and positions it selects;
	// the zero Filter compares everything.
	Probes Filter
}

// Class is the verdict on one probe at one position.
type Class int

// The classes, from best to worst; the missing ones are listed but do not
// count as divergence.
const (
	Agree      Class = iota // relative error < Agree
	Warn                    // < Warn
	Diverge                 // anything else, NaN included
	MissingInA              // only B has the probe at this position
	MissingInB              // only A has it
)

func (c Class) String() string {
	switch c {
	case Agree:
		return "agree"
	case Warn:
		return "warn"
	case Diverge:
		return "diverge"
	case MissingInA:
		return "missing in A"
	case MissingInB:
		return "missing in B"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Row is the comparison of one probe at one position.
type Row struct {
	Probe string
	Pos   int
	Layer int    // from ParseName: -1 outside the layers
	Kind  string // from ParseName
	Shape []int
	// RelErr is ‖a−b‖/‖b‖ (B is the reference); when ‖b‖ = 0 it is 0 if a
	// equals b and +Inf otherwise; NaN when either side holds a NaN.
	RelErr float64
	MaxAbs float64 // largest |a−b|
	Cosine float64 // a·b/(‖a‖‖b‖); 1 when both are zero, 0 when one is
	Class  Class
}

// Report is the outcome of Diff: one row per probe and position in A's
// forward order, then the rows only B has, in B's order.
type Report struct {
	A, B        string // the dumps' paths (or "A" and "B")
	InfoA       DumpInfo
	InfoB       DumpInfo
	Agree, Warn float64
	Rows        []Row
	Notes       []string // what a forced comparison overrode, metadata that was missing
}

// Diff compares two dumps probe by probe and position by position, with B
// as the reference. It refuses (unless opts.Force) when the dumps come
// from different token ids or model files, since their tensors would then
// differ for reasons no backend is to blame for. Probes present on one side
// only are listed, not errors, unless no probe is on both sides; a probe
// whose shapes differ is an error.
func Diff(a, b *DumpFile, opts DiffOptions) (*Report, error) {
	if a == nil || b == nil {
		return nil, errors.New("probe: diff: missing dump")
	}
	if opts.Agree == 0 {
		opts.Agree = DefaultAgree
	}
	if opts.Warn == 0 {
		opts.Warn = DefaultWarn
	}
	if !(opts.Agree > 0) || !(opts.Warn >= opts.Agree) || math.IsInf(opts.Warn, 0) {
		return nil, fmt.Errorf("probe: diff: thresholds must satisfy 0 < agree (%g) <= warn (%g) < Inf", opts.Agree, opts.Warn)
	}
	r := &Report{
		A: labelOr(a.Path, "A"), B: labelOr(b.Path, "B"),
		InfoA: a.Info, InfoB: b.Info,
		Agree: opts.Agree, Warn: opts.Warn,
	}
	if err := r.checkSameRun(a, b, opts.Force); err != nil {
		return nil, err
	}

	compared := 0
	for _, key := range a.Keys {
		ta := a.Tensors[key]
		if ta == nil {
			return nil, fmt.Errorf("probe: diff: A lists %q but has no such tensor", key)
		}
		if !opts.Probes.Match(ta.Probe, ta.Pos) {
			continue
		}
		tb := b.Tensors[key]
		if tb == nil {
			r.Rows = append(r.Rows, newRow(ta, MissingInB))
			continue
		}
		if !slices.Equal(ta.Shape, tb.Shape) {
			return nil, fmt.Errorf("probe: diff: %s at position %d has shape %v in A but %v in B",
				ta.Probe, ta.Pos, ta.Shape, tb.Shape)
		}
		row := newRow(ta, Agree)
		row.RelErr, row.MaxAbs, row.Cosine = compare(ta.Values(), tb.Values())
		row.Class = classify(row.RelErr, opts.Agree, opts.Warn)
		r.Rows = append(r.Rows, row)
		compared++
	}
	for _, key := range b.Keys {
		tb := b.Tensors[key]
		if tb == nil {
			return nil, fmt.Errorf("probe: diff: B lists %q but has no such tensor", key)
		}
		if a.Tensors[key] == nil && opts.Probes.Match(tb.Probe, tb.Pos) {
			r.Rows = append(r.Rows, newRow(tb, MissingInA))
		}
	}
	if compared == 0 {
		c := r.Counts()
		return nil, fmt.Errorf("probe: diff: no probe is in both dumps (%d only in A, %d only in B, filter %s)",
			c[MissingInB], c[MissingInA], opts.Probes)
	}
	return r, nil
}

func labelOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// checkSameRun refuses dumps of different inputs, or notes the difference
// when forced.
func (r *Report) checkSameRun(a, b *DumpFile, force bool) error {
	var problems []string
	switch {
	case a.HasTokenIDs() && b.HasTokenIDs():
		if msg := tokenIDsDiffer(a.Info.TokenIDs, b.Info.TokenIDs); msg != "" {
			problems = append(problems, msg)
		}
	case !a.HasTokenIDs() && !b.HasTokenIDs():
		r.Notes = append(r.Notes, "neither dump records its token ids: cannot check that both runs saw the same input")
	case !a.HasTokenIDs():
		r.Notes = append(r.Notes, "A does not record its token ids: cannot check that both runs saw the same input")
	default:
		r.Notes = append(r.Notes, "B does not record its token ids: cannot check that both runs saw the same input")
	}
	ha, hb := a.Info.ModelSHA256, b.Info.ModelSHA256
	switch {
	case ha != "" && hb != "" && ha != hb:
		problems = append(problems, fmt.Sprintf("model SHA-256 differs: A %s, B %s", ha, hb))
	case ha == "" || hb == "":
		r.Notes = append(r.Notes, "a dump does not record its model's SHA-256: cannot check that both runs used the same file")
	}
	if len(problems) == 0 {
		return nil
	}
	if !force {
		return fmt.Errorf("probe: diff: refusing to compare %w: %s", ErrDifferentRuns, strings.Join(problems, "; "))
	}
	for _, p := range problems {
		r.Notes = append(r.Notes, "forced: "+p)
	}
	return nil
}

// tokenIDsDiffer describes the first difference of two id lists, or
// returns "" when they are equal.
func tokenIDsDiffer(a, b []int32) string {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return fmt.Sprintf("token ids differ at index %d: A has %d, B has %d (A %s, B %s)",
				i, a[i], b[i], formatIDs(a, i), formatIDs(b, i))
		}
	}
	if len(a) != len(b) {
		return fmt.Sprintf("token ids differ in length: A has %d ids, B has %d (first %d agree; A %s, B %s)",
			len(a), len(b), n, formatIDs(a, n), formatIDs(b, n))
	}
	return ""
}

func newRow(t *DumpTensor, c Class) Row {
	layer, kind := ParseName(t.Probe)
	return Row{Probe: t.Probe, Pos: t.Pos, Layer: layer, Kind: kind, Shape: t.Shape, Class: c}
}

// compare returns ‖a−b‖/‖b‖, max |a−b| and the cosine of a and b, which
// have the same length. NaNs propagate into all three on purpose: a NaN on
// either side must read as divergence, never as agreement.
func compare(a, b []float64) (rel, maxAbs, cosine float64) {
	var diff2, a2, b2, dot float64
	for i, x := range a {
		y := b[i]
		d := x - y
		diff2 += d * d
		a2 += x * x
		b2 += y * y
		dot += x * y
		maxAbs = max(maxAbs, math.Abs(d))
	}
	switch {
	case math.IsNaN(diff2):
		rel, maxAbs = math.NaN(), math.NaN()
	case b2 == 0 && diff2 == 0:
		rel = 0
	case b2 == 0:
		rel = math.Inf(1)
	default:
		rel = math.Sqrt(diff2) / math.Sqrt(b2)
	}
	switch {
	case math.IsNaN(dot) || math.IsNaN(a2) || math.IsNaN(b2):
		cosine = math.NaN()
	case a2 == 0 && b2 == 0:
		cosine = 1
	case a2 == 0 || b2 == 0:
		cosine = 0
	default:
		cosine = max(-1, min(1, dot/(math.Sqrt(a2)*math.Sqrt(b2))))
	}
	return rel, maxAbs, cosine
}

func classify(rel, agree, warn float64) Class {
	switch {
	case rel < agree:
		return Agree
	case rel < warn:
		return Warn
	}
	return Diverge // NaN compares false above and lands here
}

// FirstDivergence returns the first diverging probe in forward order.
func (r *Report) FirstDivergence() (probe string, pos int, rel float64, ok bool) {
	i := r.firstDivergenceIndex()
	if i < 0 {
		return "", 0, 0, false
	}
	row := r.Rows[i]
	return row.Probe, row.Pos, row.RelErr, true
}

// firstDivergenceIndex returns the index of the first diverging row, or -1.
func (r *Report) firstDivergenceIndex() int {
	for i, row := range r.Rows {
		if row.Class == Diverge {
			return i
		}
	}
	return -1
}

// Diverged reports whether some probe diverges. Warnings and missing
// probes do not count.
func (r *Report) Diverged() bool {
	_, _, _, ok := r.FirstDivergence()
	return ok
}

// Counts returns the number of rows of each class.
func (r *Report) Counts() map[Class]int {
	c := map[Class]int{}
	for _, row := range r.Rows {
		c[row.Class]++
	}
	return c
}

// Verdict is the report's last line: "first divergence: PROBE at position P
// (relative error X)" or "all probes agree" (also when some only warn: a
// warning is listed in the table but is not a divergence).
func (r *Report) Verdict() string {
	if probe, pos, rel, ok := r.FirstDivergence(); ok {
		return fmt.Sprintf("first divergence: %s at position %d (relative error %.3g)", probe, pos, rel)
	}
	return "all probes agree"
}
