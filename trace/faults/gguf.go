package faults

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"llamago/gguf"
	"llamago/tensor"
)

// Tensor is one tensor of a model file as an Edit sees and returns it.
type Tensor struct {
	Name  string
	Type  tensor.Type
	Shape []uint64 // ggml's ne, innermost first
	Data  []byte
}

// Edit changes the tensors of a model file as it is copied: it returns the
// tensor to write (t itself to keep it).
type Edit func(t Tensor) (Tensor, error)

// RewriteGGUF copies the GGUF file src to dst, metadata unchanged, passing
// every tensor through the edits in order.
func RewriteGGUF(src, dst string, edits ...Edit) error {
	f, err := gguf.Open(src)
	if err != nil {
		return fmt.Errorf("faults: %s: %w", src, err)
	}
	defer f.Close()
	w := gguf.NewWriter()
	for _, kv := range f.KV {
		w.Set(kv.Key, kv.Value)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		t := Tensor{Name: ti.Name, Type: ti.Type, Shape: slices.Clone(ti.Shape), Data: f.TensorData(ti)}
		for _, e := range edits {
			if t, err = e(t); err != nil {
				return fmt.Errorf("faults: tensor %s: %w", ti.Name, err)
			}
		}
		if err := w.AddTensor(t.Name, t.Type, t.Shape, t.Data); err != nil {
			return fmt.Errorf("faults: %w", err)
		}
	}
	// The tensors' data are slices of src's memory map, written before
	// the deferred Close.
	if err := w.WriteFile(dst); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	return nil
}

// f32Matrix reads a 2-D F32 tensor's values.
func f32Matrix(t Tensor) ([]float32, int, int, error) {
	if t.Type != tensor.F32 || len(t.Shape) != 2 {
		return nil, 0, 0, fmt.Errorf("want a 2-D F32 tensor, got %s %v", t.Type, t.Shape)
	}
	cols, rows := int(t.Shape[0]), int(t.Shape[1])
	vals := make([]float32, rows*cols)
	for i := range vals {
		vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return vals, rows, cols, nil
}

func f32Bytes(vals []float32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// Transpose transposes the F32 matrix called name. With swapShape the
// shape is swapped too (a converter that wrote the matrix the wrong way
// round: a non-square one then no longer has the shape the loader wants);
// without it the shape is kept and only the values move (a reader that
// takes rows for columns).
func Transpose(name string, swapShape bool) Edit {
	return func(t Tensor) (Tensor, error) {
		if t.Name != name {
			return t, nil
		}
		vals, rows, cols, err := f32Matrix(t)
		if err != nil {
			return t, err
		}
		out := make([]float32, len(vals))
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				out[c*rows+r] = vals[r*cols+c]
			}
		}
		t.Data = f32Bytes(out)
		if swapShape {
			t.Shape = []uint64{t.Shape[1], t.Shape[0]}
		}
		return t, nil
	}
}

// WidenKV makes the K and V projections of layer produce nHead heads of
// headDim instead of the model's KV heads, each KV head's rows repeated
// for the query heads that share it: projections sized for all heads, as
// a converter that ignores grouped-query attention would write them.
func WidenKV(layer, nHead, headDim int) Edit {
	k := fmt.Sprintf("blk.%d.attn_k.weight", layer)
	v := fmt.Sprintf("blk.%d.attn_v.weight", layer)
	return func(t Tensor) (Tensor, error) {
		if t.Name != k && t.Name != v {
			return t, nil
		}
		vals, rows, cols, err := f32Matrix(t)
		if err != nil {
			return t, err
		}
		kvHeads := rows / headDim
		if kvHeads == 0 || rows%headDim != 0 || nHead%kvHeads != 0 {
			return t, fmt.Errorf("%d rows are not whole KV heads of %d for %d heads", rows, headDim, nHead)
		}
		group := nHead / kvHeads
		out := make([]float32, 0, nHead*headDim*cols)
		for h := 0; h < nHead; h++ {
			kvh := h / group
			out = append(out, vals[kvh*headDim*cols:(kvh+1)*headDim*cols]...)
		}
		t.Data = f32Bytes(out)
		t.Shape = []uint64{uint64(cols), uint64(nHead * headDim)}
		return t, nil
	}
}

// QuantizeQ8_0 stores the F32 matrices that match as Q8_0 (those whose
// rows are whole 32-value blocks; others are kept).
func QuantizeQ8_0(match func(name string) bool) Edit {
	return func(t Tensor) (Tensor, error) {
		if !match(t.Name) || t.Type != tensor.F32 || len(t.Shape) != 2 || t.Shape[0]%uint64(tensor.Q8_0.BlockSize()) != 0 {
			return t, nil
		}
		vals, rows, cols, err := f32Matrix(t)
		if err != nil {
			return t, err
		}
		rowBytes, err := tensor.Q8_0.RowSize(int64(cols))
		if err != nil {
			return t, err
		}
		q := make([]byte, rowBytes*int64(rows))
		if err := tensor.Quantize(tensor.Q8_0, vals, q); err != nil {
			return t, err
		}
		t.Type, t.Data = tensor.Q8_0, q
		return t, nil
	}
}

// ShiftQ8_0Scales gives each Q8_0 block of the tensor called name the
// scale of the block after it (the last keeps its own): what a reader
// that takes the scale one block off would compute with.
func ShiftQ8_0Scales(name string) Edit {
	return func(t Tensor) (Tensor, error) {
		if t.Name != name {
			return t, nil
		}
		if t.Type != tensor.Q8_0 {
			return t, fmt.Errorf("want Q8_0, got %s", t.Type)
		}
		size := tensor.Q8_0.TypeSize() // 2-byte F16 scale, then 32 int8
		data := slices.Clone(t.Data)
		for off := 0; off+2*size <= len(data); off += size {
			copy(data[off:off+2], t.Data[off+size:off+size+2])
		}
		t.Data = data
		return t, nil
	}
}
