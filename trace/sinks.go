package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"llamago/probe"
)

// recorder keeps every tensor it receives until the trace ends, because
// the dump's metadata (the token ids, generated ones included) is complete
// only then, and probe.Dump takes its metadata when it is made.
type recorder struct {
	entries []recorded
}

type recorded struct {
	name  string
	pos   int
	shape []int
	data  []float32
}

func (r *recorder) Emit(name string, pos int, shape []int, data []float32) error {
	r.entries = append(r.entries, recorded{name: name, pos: pos, shape: slices.Clone(shape), data: slices.Clone(data)})
	return nil
}

func (r *recorder) Close() error { return nil }

// writeDump replays the tensors into a probe.Dump that writes path. Each
// entry is let go once the dump has its copy, so that the peak is not two
// full copies for long.
func (r *recorder) writeDump(path string, info probe.DumpInfo) error {
	d := probe.NewDump(path, info)
	for i := range r.entries {
		e := &r.entries[i]
		if err := d.Emit(e.name, e.pos, e.shape, e.data); err != nil {
			return err
		}
		*e = recorded{}
	}
	r.entries = nil
	return d.Close()
}

// countSink counts what passes the filter, to tell the user how much a
// trace recorded.
type countSink struct{ n int }

func (c *countSink) Emit(string, int, []int, []float32) error { c.n++; return nil }
func (c *countSink) Close() error                             { return nil }

// jsonStats writes the statistics of each probe and position as one JSON
// object a line. JSON has no NaN or Inf, so non-finite numbers are written
// as the strings "NaN", "+Inf" and "-Inf" (the nan and inf counts say how
// many there are).
type jsonStats struct {
	w   io.Writer
	buf []byte
}

func newJSONStats(w io.Writer) *jsonStats { return &jsonStats{w: w} }

func (j *jsonStats) Emit(name string, pos int, shape []int, data []float32) error {
	st := probe.ComputeStats(data)
	b := j.buf[:0]
	b = append(b, `{"probe":`...)
	b = appendJSONString(b, name)
	b = append(b, `,"pos":`...)
	b = strconv.AppendInt(b, int64(pos), 10)
	b = append(b, `,"shape":[`...)
	for i, d := range shape {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(d), 10)
	}
	b = append(b, ']')
	for _, f := range []struct {
		key string
		v   float64
	}{{"rms", st.RMS}, {"mean", st.Mean}, {"min", st.Min}, {"max", st.Max}} {
		b = append(b, `,"`...)
		b = append(b, f.key...)
		b = append(b, `":`...)
		b = appendJSONFloat(b, f.v, 64)
	}
	b = append(b, `,"nan":`...)
	b = strconv.AppendInt(b, int64(st.NaN), 10)
	b = append(b, `,"inf":`...)
	b = strconv.AppendInt(b, int64(st.Inf), 10)
	b = append(b, `,"first":[`...)
	for i, v := range st.First {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONFloat(b, float64(v), 32)
	}
	b = append(b, "]}\n"...)
	j.buf = b
	if _, err := j.w.Write(b); err != nil {
		return fmt.Errorf("trace: writing statistics of %s at position %d: %w", name, pos, err)
	}
	return nil
}

func (j *jsonStats) Close() error { return nil }

// appendJSONFloat writes v with the shortest digits that read back to the
// same float of that bit size; non-finite values become strings.
func appendJSONFloat(b []byte, v float64, bitSize int) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, bitSize)
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
