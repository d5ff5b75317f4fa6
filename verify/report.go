package verify

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Status is the verdict of one check.
type Status int

// The statuses, from best to worst.
const (
	OK   Status = iota // verified
	Warn               // unusual but not known wrong
	Fail               // wrong
)

func (s Status) String() string {
	switch s {
	case OK:
		return "ok"
	case Warn:
		return "warn"
	case Fail:
		return "fail"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

// icon is the status as the debugging story writes it.
func (s Status) icon() string {
	switch s {
	case OK:
		return "✅"
	case Warn:
		return "⚠️"
	}
	return "❌"
}

// MarshalJSON writes the status as its name.
func (s Status) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON reads a status name.
func (s *Status) UnmarshalJSON(b []byte) error {
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return fmt.Errorf("verify: status: %w", err)
	}
	for _, c := range []Status{OK, Warn, Fail} {
		if c.String() == name {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("verify: unknown status %q", name)
}

// The markers of the debugging story, one per kind of component.
const (
	MarkerWeights     = "🔧"
	MarkerAttention   = "💫"
	MarkerRoPE        = "🌀"
	MarkerProjections = "🎯"
	MarkerStatistics  = "📊"
)

// Check is the outcome of one component's check.
type Check struct {
	Component string  `json:"component"`
	Marker    string  `json:"marker"`
	Status    Status  `json:"status"`
	Summary   string  `json:"summary"`
	Figures   Figures `json:"figures,omitempty"`
}

// Figures are a check's measurements by name. NaN and infinities, which
// JSON cannot hold as numbers, are written as the strings "NaN", "+Inf"
// and "-Inf".
type Figures map[string]float64

// MarshalJSON writes the figures with non-finite values as strings.
func (f Figures) MarshalJSON() ([]byte, error) {
	out := make(map[string]any, len(f))
	for k, v := range f {
		switch {
		case math.IsNaN(v):
			out[k] = "NaN"
		case math.IsInf(v, 1):
			out[k] = "+Inf"
		case math.IsInf(v, -1):
			out[k] = "-Inf"
		default:
			out[k] = v
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads figures written by MarshalJSON.
func (f *Figures) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("verify: figures: %w", err)
	}
	*f = make(Figures, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case float64:
			(*f)[k] = v
		case string:
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("verify: figure %s: %w", k, err)
			}
			(*f)[k] = x
		default:
			return fmt.Errorf("verify: figure %s is %T, not a number", k, v)
		}
	}
	return nil
}

// Report is the whole checklist for one model and prompt.
type Report struct {
	Model     string   `json:"model"`
	Prompt    string   `json:"prompt"`
	Reference string   `json:"reference"`
	TokenIDs  []int32  `json:"token_ids"`
	Checks    []Check  `json:"checks"`
	Notes     []string `json:"notes,omitempty"`
}

// Counts returns the number of checks of each status.
func (r *Report) Counts() (ok, warn, fail int) {
	for _, c := range r.Checks {
		switch c.Status {
		case OK:
			ok++
		case Warn:
			warn++
		default:
			fail++
		}
	}
	return ok, warn, fail
}

// Failed reports whether some check failed.
func (r *Report) Failed() bool {
	_, _, fail := r.Counts()
	return fail > 0
}

// Check returns the check of a component.
func (r *Report) Check(component string) (Check, bool) {
	i := slices.IndexFunc(r.Checks, func(c Check) bool { return c.Component == component })
	if i < 0 {
		return Check{}, false
	}
	return r.Checks[i], true
}

// Summary is the report's last line: "verify: 12 ✅, 0 ⚠️, 0 ❌", or with
// plain "verify: 12 ok, 0 warn, 0 fail".
func (r *Report) Summary(plain bool) string {
	ok, warn, fail := r.Counts()
	if plain {
		return fmt.Sprintf("verify: %d ok, %d warn, %d fail", ok, warn, fail)
	}
	return fmt.Sprintf("verify: %d ✅, %d ⚠️, %d ❌", ok, warn, fail)
}

// WriteText writes one line per check with the story's markers, or with
// plain the status as a word and no markers, then the summary line.
func (r *Report) WriteText(w io.Writer, plain bool) error {
	var sb strings.Builder
	if plain {
		fmt.Fprintf(&sb, "model %s, reference %s, %d tokens\n", r.Model, r.Reference, len(r.TokenIDs))
	} else {
		fmt.Fprintf(&sb, "%s model %s, reference %s, %d tokens\n", MarkerStatistics, r.Model, r.Reference, len(r.TokenIDs))
	}
	width := 0
	for _, c := range r.Checks {
		width = max(width, len(c.Component))
	}
	for _, c := range r.Checks {
		if plain {
			fmt.Fprintf(&sb, "%-4s  %-*s  %s\n", c.Status, width, c.Component, c.Summary)
		} else {
			fmt.Fprintf(&sb, "%s %s %-*s  %s\n", c.Status.icon(), c.Marker, width, c.Component, c.Summary)
		}
	}
	for _, n := range r.Notes {
		if plain {
			fmt.Fprintf(&sb, "note: %s\n", n)
		} else {
			fmt.Fprintf(&sb, "⚠️ note: %s\n", n)
		}
	}
	sb.WriteString(r.Summary(plain))
	sb.WriteByte('\n')
	_, err := io.WriteString(w, sb.String())
	return err
}

// jsonReport is the report as data, with the counts added.
type jsonReport struct {
	*Report
	Counts map[string]int `json:"counts"`
}

// WriteJSON writes the report as one indented JSON object with the
// counts of each status.
func (r *Report) WriteJSON(w io.Writer) error {
	ok, warn, fail := r.Counts()
	b, err := json.MarshalIndent(jsonReport{r, map[string]int{"ok": ok, "warn": warn, "fail": fail}}, "", "  ")
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
