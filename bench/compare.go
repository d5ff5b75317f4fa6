package bench

import (
	"fmt"
	"io"
)

// Pair is one test measured on the reference engine (llama.cpp) and on
// ours, alternately.
type Pair struct {
	Ref, Ours Summary
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
func (c *Comparison) WriteMarkdown(w io.Writer) error {
	ref, ours := c.RefName, c.OursName
	pp, tg := c.PP.Name(), c.TG.Name()
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
		line := fmt.Sprintf("| %s | %s | %s | %.2f | %s | %s | %.2f |", escapeCell(r.Type),
			formatSpeed(r.PP.Ref), formatSpeed(r.PP.Ours), r.PP.Ratio(),
			formatSpeed(r.TG.Ref), formatSpeed(r.TG.Ours), r.TG.Ratio())
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

func formatSpeed(s Summary) string {
	return fmt.Sprintf("%.2f ± %.2f", s.Mean, s.Stddev)
}

func percentOf(x, bound float64) string {
	if bound <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", 100*x/bound)
}
