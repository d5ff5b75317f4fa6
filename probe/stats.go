package probe

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// FirstN is how many leading values Stats keeps: enough to eyeball two
// runs side by side, as llama.cpp's eval callback prints.
const FirstN = 10

// Stats summarises one tensor. RMS, Mean, Min and Max are taken over the
// finite values only, so that one NaN does not hide the scale of the rest;
// they are NaN when no value is finite (or the tensor is empty).
type Stats struct {
	Count     int // all values
	NaN, Inf  int
	RMS, Mean float64
	Min, Max  float64
	First     []float32 // the first min(Count, FirstN) values, NaN and Inf included
}

// ComputeStats summarises data. Sums are kept in float64 so that the
// statistics of a float32 tensor are not themselves rounded much.
func ComputeStats(data []float32) Stats {
	st := Stats{
		Count: len(data),
		Min:   math.Inf(1),
		Max:   math.Inf(-1),
		First: append([]float32(nil), data[:min(len(data), FirstN)]...),
	}
	var sum, sumSq float64
	finite := 0
	for _, v := range data {
		x := float64(v)
		switch {
		case math.IsNaN(x):
			st.NaN++
			continue
		case math.IsInf(x, 0):
			st.Inf++
			continue
		}
		finite++
		sum += x
		sumSq += x * x
		st.Min = math.Min(st.Min, x)
		st.Max = math.Max(st.Max, x)
	}
	if finite == 0 {
		st.Mean, st.RMS, st.Min, st.Max = math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return st
	}
	st.Mean = sum / float64(finite)
	st.RMS = math.Sqrt(sumSq / float64(finite))
	return st
}

// NonFiniteError is what StopOnNaN returns: the probe and position where
// the first NaN or Inf appeared.
type NonFiniteError struct {
	Probe    string
	Pos      int
	NaN, Inf int
	Index    int // of the first non-finite value in the position's data
}

func (e *NonFiniteError) Error() string {
	return fmt.Sprintf("probe: %s at position %d has %d NaN and %d Inf values (first at index %d)",
		e.Probe, e.Pos, e.NaN, e.Inf, e.Index)
}

// checkFinite returns a *NonFiniteError when data holds a NaN or Inf.
func checkFinite(name string, pos int, data []float32) error {
	first := -1
	nan, inf := 0, 0
	for i, v := range data {
		x := float64(v)
		switch {
		case math.IsNaN(x):
			nan++
		case math.IsInf(x, 0):
			inf++
		default:
			continue
		}
		if first < 0 {
			first = i
		}
	}
	if first < 0 {
		return nil
	}
	return &NonFiniteError{Probe: name, Pos: pos, NaN: nan, Inf: inf, Index: first}
}

// StopOnNaN returns a sink that fails (with a *NonFiniteError) at the first
// probe holding a NaN or Inf. Put it in a Set to stop a run at the first
// non-finite value; the Set then records nothing more.
func StopOnNaN() Sink { return stopOnNaN{} }

type stopOnNaN struct{}

func (stopOnNaN) Emit(name string, pos int, _ []int, data []float32) error {
	return checkFinite(name, pos, data)
}

func (stopOnNaN) Close() error { return nil }

// StatsOptions configures a StatsWriter.
type StatsOptions struct {
	// StopOnNaN makes Emit fail with a *NonFiniteError after writing the
	// line of the first probe that holds a NaN or Inf.
	StopOnNaN bool
	// NameWidth pads probe names to this width; 0 means 20, which fits
	// "blk.99.attn_scores" and keeps columns aligned.
	NameWidth int
}

// StatsWriter is a sink that writes one line of statistics per probe and
// position, as it comes, so that a crash loses nothing written before.
type StatsWriter struct {
	w    io.Writer
	opts StatsOptions
	buf  []byte
}

// NewStatsWriter returns a sink writing statistics lines to w.
func NewStatsWriter(w io.Writer, opts StatsOptions) *StatsWriter {
	if opts.NameWidth <= 0 {
		opts.NameWidth = 20
	}
	return &StatsWriter{w: w, opts: opts}
}

// Emit writes the line for one probe and position.
func (sw *StatsWriter) Emit(name string, pos int, shape []int, data []float32) error {
	st := ComputeStats(data)
	sw.buf = AppendStatsLine(sw.buf[:0], name, pos, shape, st, sw.opts.NameWidth)
	sw.buf = append(sw.buf, '\n')
	if _, err := sw.w.Write(sw.buf); err != nil {
		return fmt.Errorf("probe: writing statistics of %s at position %d: %w", name, pos, err)
	}
	if sw.opts.StopOnNaN && st.NaN+st.Inf > 0 {
		return checkFinite(name, pos, data)
	}
	return nil
}

// Close does nothing: lines are written as they come.
func (sw *StatsWriter) Close() error { return nil }

// AppendStatsLine appends the statistics line of one probe and position,
// without a newline, with the name padded to nameWidth and every other
// column padded to a fixed width, so that lines of one run align:
//
//	blk.0.q               pos 7     shape [8 8]         rms 0.4132      mean -0.0021     min -2.31       max 2.57        nan 0     inf 0     first [0.12 -0.5 ...]
func AppendStatsLine(b []byte, name string, pos int, shape []int, st Stats, nameWidth int) []byte {
	b = appendPadded(b, name, nameWidth)
	b = append(b, "  pos "...)
	b = appendPadded(b, strconv.Itoa(pos), 4)
	b = append(b, "  shape "...)
	b = appendPadded(b, formatShape(shape), 12)
	b = append(b, "  "...)
	return appendStatsColumns(b, st)
}

// appendStatsColumns appends "rms ... first [...]" for st.
func appendStatsColumns(b []byte, st Stats) []byte {
	for i, col := range []struct {
		label string
		v     float64
	}{{"rms", st.RMS}, {"mean", st.Mean}, {"min", st.Min}, {"max", st.Max}} {
		if i > 0 {
			b = append(b, "  "...)
		}
		b = append(b, col.label...)
		b = append(b, ' ')
		b = appendPadded(b, formatG4(col.v), 10)
	}
	b = append(b, "  nan "...)
	b = appendPadded(b, strconv.Itoa(st.NaN), 4)
	b = append(b, "  inf "...)
	b = appendPadded(b, strconv.Itoa(st.Inf), 4)
	b = append(b, "  first ["...)
	for i, v := range st.First {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, formatG4(float64(v))...)
	}
	return append(b, ']')
}

func appendPadded(b []byte, s string, width int) []byte {
	b = append(b, s...)
	for i := len(s); i < width; i++ {
		b = append(b, ' ')
	}
	return b
}

// formatG4 prints 4 significant digits, and NaN/Inf as Go spells them.
func formatG4(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

// formatShape prints a shape as "[8 8]".
func formatShape(shape []int) string {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, d := range shape {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(strconv.Itoa(d))
	}
	sb.WriteByte(']')
	return sb.String()
}

// String returns the statistics in the column format of a stats line,
// without name, position and shape.
func (st Stats) String() string {
	return string(appendStatsColumns(nil, st))
}
