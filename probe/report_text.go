package probe

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// WriteText writes the whole report: a header naming both dumps, a table of
// every row in forward order (probe, pos, shape, rel err, max abs, cosine,
// class), a summary per class and, always as the last line, the verdict.
func (r *Report) WriteText(w io.Writer) error {
	return r.writeText(w, false)
}

// WriteSummary writes the compact form: the table holds only the rows
// that do not agree, then come the summary and the verdict.
func (r *Report) WriteSummary(w io.Writer) error {
	return r.writeText(w, true)
}

func (r *Report) writeText(w io.Writer, compact bool) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "A: %s%s\n", r.A, describeInfo(r.InfoA))
	fmt.Fprintf(&sb, "B: %s%s (reference)\n", r.B, describeInfo(r.InfoB))
	for _, n := range r.Notes {
		fmt.Fprintf(&sb, "note: %s\n", n)
	}
	fmt.Fprintf(&sb, "classes: agree if relative error < %g, warn if < %g, diverge otherwise\n", r.Agree, r.Warn)

	first := r.firstDivergenceIndex()
	var rows []int
	for i, row := range r.Rows {
		if !compact || row.Class != Agree {
			rows = append(rows, i)
		}
	}
	if len(rows) > 0 {
		sb.WriteByte('\n')
		tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "probe\tpos\tshape\trel err\tmax abs\tcosine\tclass")
		for _, i := range rows {
			row := r.Rows[i]
			marker := ""
			if i == first {
				marker = "  <- first"
			}
			if row.Class == MissingInA || row.Class == MissingInB {
				fmt.Fprintf(tw, "%s\t%d\t%s\t-\t-\t-\t%s\n", row.Probe, row.Pos, formatShape(row.Shape), row.Class)
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s%s\n", row.Probe, row.Pos, formatShape(row.Shape),
				formatG3(row.RelErr), formatG3(row.MaxAbs), strconv.FormatFloat(row.Cosine, 'f', 6, 64),
				row.Class, marker)
		}
		tw.Flush()
		sb.WriteByte('\n')
	}
	c := r.Counts()
	fmt.Fprintf(&sb, "summary: %d compared: %d agree, %d warn, %d diverge; %d missing in A, %d missing in B\n",
		c[Agree]+c[Warn]+c[Diverge], c[Agree], c[Warn], c[Diverge], c[MissingInA], c[MissingInB])
	sb.WriteString(r.Verdict())
	sb.WriteByte('\n')
	_, err := io.WriteString(w, sb.String())
	if err != nil {
		return fmt.Errorf("probe: writing report: %w", err)
	}
	return nil
}

func describeInfo(in DumpInfo) string {
	var parts []string
	if in.Prompt != "" {
		p := []rune(in.Prompt)
		if len(p) > 40 {
			p = append(p[:40], '…')
		}
		parts = append(parts, "prompt "+strconv.Quote(string(p)))
	}
	if in.Backend != "" {
		parts = append(parts, "backend "+in.Backend)
	}
	if in.ModelPath != "" {
		parts = append(parts, "model "+in.ModelPath)
	}
	if in.ModelSHA256 != "" {
		parts = append(parts, "sha256 "+shortHash(in.ModelSHA256))
	}
	if in.TokenIDs != nil {
		parts = append(parts, fmt.Sprintf("%d tokens", len(in.TokenIDs)))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// formatG3 prints 3 significant digits, the precision of the verdict.
func formatG3(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) }
