package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Row is one line of a benchmark table: one test of one model with one
// engine and thread count.
type Row struct {
	Model           string    `json:"model"`
	Type            string    `json:"type"`
	SizeBytes       int64     `json:"size_bytes"`
	Params          int64     `json:"params"`
	Backend         string    `json:"backend"`
	Threads         int       `json:"threads"`
	Test            string    `json:"test"`
	TokensPerSecond float64   `json:"tokens_per_second"`
	Stddev          float64   `json:"stddev"`
	Samples         []float64 `json:"samples"`
}

// NewRow fills a row from a model's description and the speeds of its
// repetitions.
func NewRow(info ModelInfo, backend string, threads int, t Test, samples []float64) Row {
	s := Summarize(samples)
	return Row{
		Model: info.Name, Type: info.Type, SizeBytes: info.SizeBytes, Params: info.Params,
		Backend: backend, Threads: threads, Test: t.Name(),
		TokensPerSecond: s.Mean, Stddev: s.Stddev, Samples: samples,
	}
}

// WriteJSON writes one JSON object per row, one per line (JSON Lines), so
// that a long run can be read while it goes.
func WriteJSON(w io.Writer, r Row) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// MarkdownHeader is the header of the table WriteMarkdownRow writes rows of.
const MarkdownHeader = "| model | type | size | params | backend | threads | test | t/s |\n" +
	"| --- | --- | ---: | ---: | --- | ---: | --- | ---: |\n"

// WriteMarkdownRow writes r as a row of a markdown table in llama-bench's
// style: sizes in MiB or GiB, parameters in M or B, "mean ± stddev".
func WriteMarkdownRow(w io.Writer, r Row) error {
	_, err := fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %d | %s | %.2f ± %.2f |\n",
		escapeCell(r.Model), escapeCell(r.Type), formatSize(r.SizeBytes), formatParams(r.Params),
		escapeCell(r.Backend), r.Threads, r.Test, r.TokensPerSecond, r.Stddev)
	return err
}

// formatSize writes bytes as llama-bench does: MiB below 1 GiB, else GiB.
func formatSize(b int64) string {
	if b < 1<<30 {
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
}

// formatParams writes a parameter count in millions below a billion.
func formatParams(n int64) string {
	if n < 1e9 {
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	}
	return fmt.Sprintf("%.2f B", float64(n)/1e9)
}

// escapeCell keeps a file name from breaking the table.
func escapeCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
