// Package inspect describes a GGUF file for a person: its header, its
// metadata with long values summarised, its tensor table, the bytes taken
// by each tensor type, and the model's shape as llama.cpp's llama loader
// reads it. It backs the command `llamago inspect FILE [--json]`.
package inspect

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"unicode/utf8"

	"llamago/gguf"
	"llamago/tensor"
)

// Options choose the output.
type Options struct {
	JSON         bool // one JSON object instead of text
	MaxItems     int  // array elements shown; 0 means 6
	MaxStringLen int  // bytes of a string shown; 0 means 72
}

func (o Options) withDefaults() Options {
	if o.MaxItems <= 0 {
		o.MaxItems = 6
	}
	if o.MaxStringLen <= 0 {
		o.MaxStringLen = 72
	}
	return o
}

// Run opens the GGUF file at path and writes its description to w. A file
// that does not parse gives the gguf package's error.
func Run(w io.Writer, path string, opts Options) error {
	f, err := gguf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := NewReport(f, opts)
	r.Path = path
	if opts.JSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // tokens like "<s>" stay readable
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("inspect: %w", err)
		}
		return nil
	}
	if err := r.WriteText(w); err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	return nil
}

// Report is the description of one file; its JSON form is what --json
// prints.
type Report struct {
	Path        string      `json:"path,omitempty"`
	Version     uint32      `json:"version"`
	Size        int64       `json:"size"`
	Alignment   uint64      `json:"alignment"`
	DataOffset  uint64      `json:"data_offset"`
	TensorCount int         `json:"tensor_count"`
	KVCount     int         `json:"kv_count"`
	Parameters  uint64      `json:"parameters"` // elements of all tensors
	Metadata    []Metadata  `json:"metadata"`
	Tensors     []Tensor    `json:"tensors"`
	Types       []TypeTotal `json:"bytes_by_type"`
	Model       *Model      `json:"model,omitempty"`
	Notes       []string    `json:"notes,omitempty"`
}

// Metadata is one key-value pair, summarised.
type Metadata struct {
	Key       string `json:"key"`
	Type      string `json:"type"`             // "uint32", "array of string"
	Count     int    `json:"count,omitempty"`  // elements of an array
	Length    int    `json:"length,omitempty"` // bytes of a string
	Value     any    `json:"value"`            // a scalar, a string cut short, or an array's first elements
	Truncated bool   `json:"truncated,omitempty"`
	text      string // the value as the text output shows it
}

// Tensor is one row of the tensor table.
type Tensor struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	Shape     []uint64 `json:"shape"` // ggml order, innermost first
	Offset    uint64   `json:"offset"`
	Bytes     uint64   `json:"bytes"`
	Supported bool     `json:"supported"` // llamago can compute with its type
}

// TypeTotal counts the tensors of one type and their bytes.
type TypeTotal struct {
	Type      string `json:"type"`
	Count     int    `json:"count"`
	Bytes     uint64 `json:"bytes"`
	Supported bool   `json:"supported"`
}

// Model is the shape of the model as llama.cpp reads it from the keys
// prefixed with the architecture's name. A key that is absent is listed
// in Missing, or in Defaulted where llama.cpp has a default.
type Model struct {
	Architecture      string   `json:"architecture"`
	EmbeddingLength   uint64   `json:"embedding_length"`
	BlockCount        uint64   `json:"block_count"`
	HeadCount         uint64   `json:"head_count"`
	HeadCountKV       uint64   `json:"head_count_kv"`
	FeedForwardLength uint64   `json:"feed_forward_length"`
	VocabSize         uint64   `json:"vocab_size"`
	ContextLength     uint64   `json:"context_length"`
	RopeFreqBase      float32  `json:"rope_freq_base"`
	RMSNormEpsilon    float32  `json:"rms_norm_epsilon"`
	Defaulted         []string `json:"defaulted,omitempty"`
	Missing           []string `json:"missing,omitempty"`
	Problems          []string `json:"problems,omitempty"` // keys present but unreadable
}

// NewReport describes f.
func NewReport(f *gguf.File, opts Options) *Report {
	opts = opts.withDefaults()
	r := &Report{
		Version:     f.Version,
		Size:        f.Size(),
		Alignment:   f.Alignment,
		DataOffset:  f.DataOffset,
		TensorCount: len(f.Tensors),
		KVCount:     len(f.KV),
		Metadata:    make([]Metadata, 0, len(f.KV)),
		Tensors:     make([]Tensor, 0, len(f.Tensors)),
		Types:       []TypeTotal{},
	}
	for _, kv := range f.KV {
		r.Metadata = append(r.Metadata, summarise(kv, opts))
	}

	byType := map[tensor.Type]*TypeTotal{}
	var unsupported []string
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		supported := ti.CheckSupported() == nil
		r.Tensors = append(r.Tensors, Tensor{
			Name: ti.Name, Type: ti.Type.String(), Shape: ti.Shape,
			Offset: ti.Offset, Bytes: ti.Size, Supported: supported,
		})
		r.Parameters += ti.Elements()
		tt := byType[ti.Type]
		if tt == nil {
			tt = &TypeTotal{Type: ti.Type.String(), Supported: supported}
			byType[ti.Type] = tt
		}
		tt.Count++
		tt.Bytes += ti.Size
		if !supported {
			unsupported = append(unsupported, ti.Name)
		}
	}
	for _, tt := range byType {
		r.Types = append(r.Types, *tt)
	}
	sort.Slice(r.Types, func(i, j int) bool {
		if r.Types[i].Bytes != r.Types[j].Bytes {
			return r.Types[i].Bytes > r.Types[j].Bytes
		}
		return r.Types[i].Type < r.Types[j].Type
	})

	if len(f.Tensors) == 0 {
		r.Notes = append(r.Notes, "no tensors (vocabulary-only file)")
	}
	if len(unsupported) > 0 {
		var types []string
		for _, tt := range r.Types {
			if !tt.Supported {
				types = append(types, fmt.Sprintf("%s (%d)", tt.Type, tt.Count))
			}
		}
		r.Notes = append(r.Notes, fmt.Sprintf("%d tensors have types llamago does not support yet, marked * above: %s; for example, tensor %s",
			len(unsupported), strings.Join(types, ", "), unsupported[0]))
	}
	if arch, err := f.String("general.architecture"); err == nil {
		r.Model = readModel(f, arch)
	} else {
		r.Notes = append(r.Notes, fmt.Sprintf("no model shape: %v", err))
	}
	return r
}

// readModel reads the hyper-parameters llama.cpp's loader reads for the
// llama family.
func readModel(f *gguf.File, arch string) *Model {
	m := &Model{Architecture: arch}
	key := func(k string) string { return arch + "." + k }
	count := func(dst *uint64, k string) bool {
		v, ok := f.Get(k)
		if !ok {
			return false
		}
		x, err := perLayerCount(v)
		if err != nil {
			m.Problems = append(m.Problems, fmt.Sprintf("%s: %v", k, err))
		}
		*dst = x
		return true
	}
	required := func(dst *uint64, k string) {
		if !count(dst, k) {
			m.Missing = append(m.Missing, k)
		}
	}
	required(&m.EmbeddingLength, key("embedding_length"))
	required(&m.BlockCount, key("block_count"))
	required(&m.HeadCount, key("attention.head_count"))
	if !count(&m.HeadCountKV, key("attention.head_count_kv")) {
		m.HeadCountKV = m.HeadCount // llama.cpp's default: no grouped-query attention
		m.Defaulted = append(m.Defaulted, key("attention.head_count_kv"))
	}
	required(&m.FeedForwardLength, key("feed_forward_length"))
	required(&m.ContextLength, key("context_length"))

	if v, ok := f.Get("tokenizer.ggml.tokens"); ok {
		m.VocabSize = uint64(v.Len())
	} else if !count(&m.VocabSize, key("vocab_size")) {
		m.Missing = append(m.Missing, "tokenizer.ggml.tokens")
	}

	// llama.cpp reads these as float32, and so shows them.
	float := func(dst *float32, k string) bool {
		if !f.Has(k) {
			return false
		}
		x, err := f.Float32(k)
		if err != nil {
			m.Problems = append(m.Problems, err.Error())
		}
		*dst = x
		return true
	}
	if !float(&m.RopeFreqBase, key("rope.freq_base")) {
		m.RopeFreqBase = 10000 // llama.cpp's default
		m.Defaulted = append(m.Defaulted, key("rope.freq_base"))
	}
	if !float(&m.RMSNormEpsilon, key("attention.layer_norm_rms_epsilon")) {
		m.Missing = append(m.Missing, key("attention.layer_norm_rms_epsilon"))
	}
	return m
}

// perLayerCount reads a count that llama.cpp also accepts as one value per
// layer (an array); an array whose values differ gives its largest, with
// an error that says so.
func perLayerCount(v gguf.Value) (uint64, error) {
	if v.Type != gguf.TypeArray {
		return v.Uint64()
	}
	var top, first uint64
	uniform := true
	for i := range v.Len() {
		x, err := v.Index(i).Uint64()
		if err != nil {
			return 0, fmt.Errorf("element %d: %w", i, err)
		}
		if i == 0 {
			first = x
		}
		uniform = uniform && x == first
		top = max(top, x)
	}
	if !uniform {
		return top, fmt.Errorf("differs between layers (largest %d)", top)
	}
	return top, nil
}

// summarise makes the display form of a key-value pair: long strings cut at
// their first line or at opts.MaxStringLen bytes, arrays cut at
// opts.MaxItems elements.
func summarise(kv gguf.KV, opts Options) Metadata {
	v := kv.Value
	m := Metadata{Key: kv.Key, Type: v.TypeName()}
	switch v.Type {
	case gguf.TypeString:
		s, _ := v.String()
		short, cut := shorten(s, opts.MaxStringLen)
		m.Value, m.Truncated = short, cut
		m.text = fmt.Sprintf("%q", short)
		if cut {
			m.Length = len(s)
			m.text = fmt.Sprintf("%q… (%d bytes)", short, len(s))
		}
	case gguf.TypeArray:
		m.Count = v.Len()
		n := min(m.Count, opts.MaxItems)
		items := make([]any, n)
		texts := make([]string, n)
		for i := range n {
			e := summarise(gguf.KV{Value: v.Index(i)}, opts)
			items[i], texts[i] = e.Value, e.text
		}
		m.Value = items
		m.Truncated = n < m.Count
		m.text = fmt.Sprintf("%d × [%s", m.Count, strings.Join(texts, ", "))
		if m.Truncated {
			m.text += ", …"
		}
		m.text += "]"
	default:
		m.Value = jsonSafe(v.Any())
		m.text = fmt.Sprint(v.Any())
	}
	return m
}

// shorten cuts s at its first newline or after limit bytes, on a rune
// boundary, and reports whether it cut.
func shorten(s string, limit int) (string, bool) {
	cut := false
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s, cut = s[:i], true
	}
	if len(s) > limit {
		i := limit
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s, cut = s[:i], true
	}
	return s, cut
}

// jsonSafe replaces the floats JSON cannot hold (NaN, ±Inf) by strings.
func jsonSafe(x any) any {
	switch f := x.(type) {
	case float32:
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return fmt.Sprint(f)
		}
	case float64:
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
	}
	return x
}
