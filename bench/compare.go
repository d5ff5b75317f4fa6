package bench

import (
	"fmt"
	"io"
	"slices"
)

// Pair is one test measured on the reference engine (llama.cpp) and on
// ours, alternately.
type Pair struct {
	Ref, Ours Summary
	// Ratios holds, for each repetition, our speed over the reference's
	// in that repetition (the two ran one right after the other). On a
	// shared machine the load changes from one repetition to the next,
	// so these ratios spread less than the two means do, and their
	// median and range say how far a ratio can be trusted.
	Ratios []float64
}

// NewPair summarizes the speeds of the repetitions of one test, ref[i]
// and ours[i] measured in repetition i. Repetitions with a speed of 0 or
// less on either side give no ratio.
func NewPair(ref, ours []float64) Pair {
	p := Pair{Ref: Summarize(ref), Ours: Summarize(ours)}
	for i := range min(len(ref), len(ours)) {
		if ref[i] > 0 && ours[i] > 0 {
			p.Ratios = append(p.Ratios, ours[i]/ref[i])
		}
	}
	return p
}

// RatioSpread is the median, the smallest and the largest of the
// per-repetition ratios; ok is false when there are none.
func (p Pair) RatioSpread() (median, lo, hi float64, ok bool) {
	if len(p.Ratios) == 0 {
		return 0, 0, 0, false
	}
	r := slices.Clone(p.Ratios)
	slices.Sort(r)
	n := len(r)
	median = r[n/2]
	if n%2 == 0 {
		median = (r[n/2-1] + r[n/2]) / 2
	}
	return median, r[0], r[n-1], true
}

// Ratio is our mean speed over the reference's: above 1 we are faster.
func (p Pair) Ratio() float64 {
	if p.Ref.Mean <= 0 {
		return 0
	}
	return p.Ours.Mean / p.Ref.Mean
}

// ComparisonRow is one model type of a side-by-side run.
type ComparisonRow struct {
	Type        string
	DecodeBytes int64 // weight bytes read per decoded token
	PP, TG      Pair
}

// Comparison is a side-by-side table and what it needs to be read.
type Comparison struct {
	RefName, OursName string
	PP, TG            Test
	// BandwidthGBs is the measured memory read bandwidth; 0 leaves the
	// bound columns out.
	BandwidthGBs float64
	Rows         []ComparisonRow
}

// testNames names the two tests' columns, "pp128" and "tg64", also for a
// test that was skipped (length 0).
func (c *Comparison) testNames() (pp, tg string) {
	return fmt.Sprintf("pp%d", c.PP.Prompt), fmt.Sprintf("tg%d", c.TG.Gen)
}

// boundTokensPerSecond is the decode speed that reading every weight
// once per token at the measured bandwidth would allow.
func (c *Comparison) boundTokensPerSecond(r ComparisonRow) float64 {
	if c.BandwidthGBs <= 0 || r.DecodeBytes <= 0 {
		return 0
	}
	return c.BandwidthGBs * 1e9 / float64(r.DecodeBytes)
}

// WriteMarkdown writes the table: speeds as mean ± stddev, ratios ours ÷
// reference, and for decoding the bandwidth bound and the fraction of it
// each engine reaches (bytes per token × tokens per second ÷ bandwidth).
// A test that was not run (a zero Prompt or Gen) shows "-". When the
// rows have per-repetition ratios, a second table follows with their
// median and range (see Pair.Ratios).
func (c *Comparison) WriteMarkdown(w io.Writer) error {
	if err := c.writeSpeeds(w); err != nil {
		return err
	}
	return c.writeRatioSpreads(w)
}

// writeSpeeds writes the main table.
func (c *Comparison) writeSpeeds(w io.Writer) error {
	ref, ours := c.RefName, c.OursName
	pp, tg := c.testNames()
	header := fmt.Sprintf("| type | %s %s | %s %s | ratio | %s %s | %s %s | ratio |", ref, pp, ours, pp, ref, tg, ours, tg)
	align := "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
	if c.BandwidthGBs > 0 {
		header += fmt.Sprintf(" MB/token | %s bound | %s of bound | %s of bound |", tg, ref, ours)
		align += " ---: | ---: | ---: | ---: |"
	}
	if _, err := fmt.Fprintf(w, "%s\n%s\n", header, align); err != nil {
		return err
	}
	for _, r := range c.Rows {
		line := fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |", escapeCell(r.Type),
			formatSpeed(r.PP.Ref), formatSpeed(r.PP.Ours), formatRatio(r.PP),
			formatSpeed(r.TG.Ref), formatSpeed(r.TG.Ours), formatRatio(r.TG))
		if c.BandwidthGBs > 0 {
			bound := c.boundTokensPerSecond(r)
			line += fmt.Sprintf(" %.0f | %.1f | %s | %s |", float64(r.DecodeBytes)/1e6, bound,
				percentOf(r.TG.Ref.Mean, bound), percentOf(r.TG.Ours.Mean, bound))
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// writeRatioSpreads writes, when any row has per-repetition ratios, the
// table of their medians and ranges.
func (c *Comparison) writeRatioSpreads(w io.Writer) error {
	if !slices.ContainsFunc(c.Rows, func(r ComparisonRow) bool { return len(r.PP.Ratios)+len(r.TG.Ratios) > 0 }) {
		return nil
	}
	pp, tg := c.testNames()
	if _, err := fmt.Fprintf(w, "\n| type | %s ratio: median (min–max) | %s ratio: median (min–max) | pairs |\n| --- | ---: | ---: | ---: |\n", pp, tg); err != nil {
		return err
	}
	for _, r := range c.Rows {
		pairs := max(len(r.PP.Ratios), len(r.TG.Ratios))
		if _, err := fmt.Fprintf(w, "| %s | %s | %s | %d |\n", escapeCell(r.Type), formatSpread(r.PP), formatSpread(r.TG), pairs); err != nil {
			return err
		}
	}
	return nil
}

// formatSpeed is "mean ± stddev", or "-" for a test that was not run.
func formatSpeed(s Summary) string {
	if s.N == 0 && s.Mean == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f ± %.2f", s.Mean, s.Stddev)
}

// formatRatio is the ratio of the means, or "-" for a test not run.
func formatRatio(p Pair) string {
	if p.Ref.Mean <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", p.Ratio())
}

// formatSpread is "median (min–max)" of the per-repetition ratios.
func formatSpread(p Pair) string {
	med, lo, hi, ok := p.RatioSpread()
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.2f (%.2f–%.2f)", med, lo, hi)
}

func percentOf(x, bound float64) string {
	if bound <= 0 || x <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*x/bound)
}
