package convert

import (
	"fmt"
	"io"
	"strings"

	"llamago/gguf"
	"llamago/tensor"
)

// ggufFile is a conversion's plan: metadata in the order it will be
// written, and the tensors, each read and converted only when written.
type ggufFile struct {
	kvs     []keyValue
	tensors []tensorOut
}

type keyValue struct {
	key string
	val gguf.Value
}

// tensorOut is an output tensor whose data is produced while the file is
// written, so that only one tensor at a time is in memory.
type tensorOut struct {
	name    string
	typ     tensor.Type
	shape   []uint64 // ggml order: ne[0] (the row length) first
	produce func() ([]byte, error)
}

// set adds a metadata key, or replaces its value where it is already set,
// keeping its first position.
func (f *ggufFile) set(key string, v gguf.Value) {
	for i := range f.kvs {
		if f.kvs[i].key == key {
			f.kvs[i].val = v
			return
		}
	}
	f.kvs = append(f.kvs, keyValue{key, v})
}

// get returns the value of a key set earlier.
func (f *ggufFile) get(key string) (gguf.Value, bool) {
	for _, kv := range f.kvs {
		if kv.key == key {
			return kv.val, true
		}
	}
	return gguf.Value{}, false
}

func (f *ggufFile) has(key string) bool {
	_, ok := f.get(key)
	return ok
}

// addTensor plans an output tensor: its type is what targetType picks for
// out; load reads the source when the tensor is written.
func (f *ggufFile) addTensor(name string, shape []uint64, out OutType, load func() (srcTensor, error)) {
	typ := targetType(name, shape, out)
	f.tensors = append(f.tensors, tensorOut{name: name, typ: typ, shape: shape, produce: func() ([]byte, error) {
		src, err := load()
		if err != nil {
			return nil, err
		}
		return encode(name, src, typ)
	}})
}

func (f *ggufFile) write(path string) error {
	w := gguf.NewWriter()
	for _, kv := range f.kvs {
		w.Set(kv.key, kv.val)
	}
	for _, t := range f.tensors {
		produce := t.produce
		err := w.AddTensorFunc(t.name, t.typ, t.shape, func(out io.Writer) error {
			data, err := produce()
			if err != nil {
				return err
			}
			_, err = out.Write(data)
			return err
		})
		if err != nil {
			return fmt.Errorf("convert: adding tensor %s: %w", t.name, err)
		}
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("convert: writing %s: %w", path, err)
	}
	return nil
}

// srcTensor is a tensor as read from an input, in its stored type.
type srcTensor struct {
	typ   tensor.Type // F32, F16 or BF16
	shape []uint64    // ggml order
	data  []byte
}

func (s srcTensor) elements() uint64 {
	n := uint64(1)
	for _, d := range s.shape {
		n *= d
	}
	return n
}

// llama.cpp's file types (enum llama_ftype) for the output types.
const (
	fileTypeAllF32     = 0
	fileTypeMostlyF16  = 1
	fileTypeMostlyQ80  = 7
	fileTypeMostlyBF16 = 32
)

// fileType is general.file_type for a resolved (non-auto) output type.
func fileType(out OutType) uint32 {
	switch out {
	case OutF16:
		return fileTypeMostlyF16
	case OutBF16:
		return fileTypeMostlyBF16
	case OutQ8_0:
		return fileTypeMostlyQ80
	}
	return fileTypeAllF32
}

// targetType picks a tensor's output type the way convert_hf_to_gguf.py
// does: 1-D tensors, norms and anything that is not a ".weight" stay F32;
// other tensors take the output type, except that Q8_0 needs rows of whole
// 32-element blocks and falls back to F16 otherwise.
func targetType(name string, shape []uint64, out OutType) tensor.Type {
	if len(shape) <= 1 || strings.HasSuffix(name, "_norm.weight") || !strings.HasSuffix(name, ".weight") {
		return tensor.F32
	}
	switch out {
	case OutF16:
		return tensor.F16
	case OutBF16:
		return tensor.BF16
	case OutQ8_0:
		if shape[0]%uint64(tensor.Q8_0.BlockSize()) != 0 {
			return tensor.F16
		}
		return tensor.Q8_0
	}
	return tensor.F32
}

// encode converts src to typ. A tensor already in that type is passed
// through unchanged, except BF16, which goes through float32 as in
// llama.cpp's converter (that only changes NaN payloads).
func encode(name string, src srcTensor, typ tensor.Type) ([]byte, error) {
	if typ == src.typ && typ != tensor.BF16 {
		return src.data, nil
	}
	n := src.elements()
	vals := make([]float32, n)
	if err := tensor.Dequantize(src.typ, src.data, vals); err != nil {
		return nil, fmt.Errorf("reading %s as %s: %w", name, src.typ, err)
	}
	size, err := typ.RowSize(int64(n))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	data := make([]byte, size)
	if err := tensor.Quantize(typ, vals, data); err != nil {
		return nil, fmt.Errorf("writing %s as %s: %w", name, typ, err)
	}
	return data, nil
}
