package model

import (
	"fmt"
	"sort"
	"strings"

	"llamago/backend"
	"llamago/gguf"
)

// Layer holds one transformer block's weights. Shapes are (rows, cols) =
// (out, in) as backend.Weight reports them.
type Layer struct {
	AttnNorm backend.Weight // (1, NEmbd)
	Q        backend.Weight // (NHead·HeadDim, NEmbd)
	K        backend.Weight // (NKVHead·HeadDim, NEmbd)
	V        backend.Weight // (NKVHead·HeadDim, NEmbd)
	O        backend.Weight // (NEmbd, NHead·HeadDim)
	FFNNorm  backend.Weight // (1, NEmbd)
	Gate     backend.Weight // (NFF, NEmbd)
	Up       backend.Weight // (NFF, NEmbd)
	Down     backend.Weight // (NEmbd, NFF)
}

// Weights are a model's tensors bound to a backend.
type Weights struct {
	TokenEmbd  backend.Weight // (NVocab, NEmbd)
	OutputNorm backend.Weight // (1, NEmbd)
	Output     backend.Weight // (NVocab, NEmbd); token_embd when the file has no output.weight
	Layers     []Layer
}

// binder binds GGUF tensors to a backend, checking each shape, and
// remembers which tensors were used so that unknown ones are reported.
type binder struct {
	f    *gguf.File
	be   backend.Backend
	used map[string]bool
}

// bind binds the tensor name, which must have GGUF shape ne = {cols, rows}
// (or {cols} when rows is 0, for vectors).
func (b *binder) bind(name string, rows, cols int) (backend.Weight, error) {
	ti, ok := b.f.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("model: tensor %s is missing", name)
	}
	want := []uint64{uint64(cols)}
	if rows > 0 {
		want = append(want, uint64(rows))
	}
	if !equalShape(ti.Shape, want) {
		return nil, fmt.Errorf("model: tensor %s has shape %v, want %v", name, ti.Shape, want)
	}
	if err := b.f.CheckSupported(name); err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	b.used[name] = true
	if rows == 0 {
		rows = 1
	}
	w, err := b.be.LoadWeight(backend.WeightSpec{Name: name, Type: ti.Type, Rows: rows, Cols: cols, Data: b.f.TensorData(ti)})
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	return w, nil
}

func equalShape(got, want []uint64) bool {
	// Trailing dimensions of size 1 do not change a tensor.
	for len(got) > len(want) && got[len(got)-1] == 1 {
		got = got[:len(got)-1]
	}
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// bindWeights binds every tensor of a llama model and fails on tensors
// the forward pass would not use, as llama.cpp does.
func bindWeights(f *gguf.File, be backend.Backend, c *Config) (*Weights, error) {
	b := &binder{f: f, be: be, used: map[string]bool{}}
	w := &Weights{}
	embd, ok := f.Tensor("token_embd.weight")
	if !ok {
		return nil, fmt.Errorf("model: tensor token_embd.weight is missing")
	}
	if len(embd.Shape) != 2 || embd.Shape[1] == 0 || embd.Shape[1] > 1<<31 {
		return nil, fmt.Errorf("model: tensor token_embd.weight has shape %v, want [%d n_vocab]", embd.Shape, c.NEmbd)
	}
	c.NVocab = int(embd.Shape[1])
	var err error
	if w.TokenEmbd, err = b.bind("token_embd.weight", c.NVocab, c.NEmbd); err != nil {
		return nil, err
	}
	if w.OutputNorm, err = b.bind("output_norm.weight", 0, c.NEmbd); err != nil {
		return nil, err
	}
	if _, ok := f.Tensor("output.weight"); ok {
		if w.Output, err = b.bind("output.weight", c.NVocab, c.NEmbd); err != nil {
			return nil, err
		}
	} else {
		w.Output = w.TokenEmbd
	}
	qDim, kvDim := c.NHead*c.HeadDim, c.KVDim()
	w.Layers = make([]Layer, c.NLayer)
	for i := range w.Layers {
		l := &w.Layers[i]
		for _, t := range []struct {
			dst        *backend.Weight
			name       string
			rows, cols int
		}{
			{&l.AttnNorm, "attn_norm", 0, c.NEmbd},
			{&l.Q, "attn_q", qDim, c.NEmbd},
			{&l.K, "attn_k", kvDim, c.NEmbd},
			{&l.V, "attn_v", kvDim, c.NEmbd},
			{&l.O, "attn_output", c.NEmbd, qDim},
			{&l.FFNNorm, "ffn_norm", 0, c.NEmbd},
			{&l.Gate, "ffn_gate", c.NFF, c.NEmbd},
			{&l.Up, "ffn_up", c.NFF, c.NEmbd},
			{&l.Down, "ffn_down", c.NEmbd, c.NFF},
		} {
			if *t.dst, err = b.bind(fmt.Sprintf("blk.%d.%s.weight", i, t.name), t.rows, t.cols); err != nil {
				return nil, err
			}
		}
	}
	var unused []string
	for _, ti := range f.Tensors {
		if !b.used[ti.Name] && !ignorable(ti.Name) {
			unused = append(unused, ti.Name)
		}
	}
	if len(unused) > 0 {
		sort.Strings(unused)
		if len(unused) > 5 {
			unused = append(unused[:5], fmt.Sprintf("and %d more", len(unused)-5))
		}
		return nil, fmt.Errorf("model: the file has tensors the llama forward pass does not use: %s", strings.Join(unused, ", "))
	}
	return w, nil
}

// ignorable names tensors some converters write that the llama forward
// pass has no use for (old llama checkpoints carry rotary tables as tensors).
func ignorable(name string) bool {
	return strings.HasSuffix(name, ".attn_rot_embd")
}
