package gguf

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"

	"llamago/tensor"
)

// Writer builds a GGUF version 3 file: metadata in the order it was set,
// then tensor infos and data in the order they were added. Tensor data may
// come from a function called while writing, so that a large model can be
// streamed rather than held in memory.
//
// Set and AddTensor only record; WriteTo checks the metadata (value types,
// general.alignment) before it writes a byte.
type Writer struct {
	kv          []KV
	kvIndex     map[string]int
	tensors     []pendingTensor
	tensorIndex map[string]bool
}

type pendingTensor struct {
	info  TensorInfo // Offset is set by layout
	write func(io.Writer) error
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{kvIndex: map[string]int{}, tensorIndex: map[string]bool{}}
}

// Set sets key to v. Setting a key again replaces its value and keeps its
// first position. Array values are kept without a copy.
func (w *Writer) Set(key string, v Value) {
	if i, ok := w.kvIndex[key]; ok {
		w.kv[i].Value = v
		return
	}
	w.kvIndex[key] = len(w.kv)
	w.kv = append(w.kv, KV{Key: key, Value: v})
}

// AddTensor adds a tensor whose data is in memory; data must be exactly the
// size the type and shape (ggml order, innermost first) call for. The slice
// is kept without a copy until the file is written.
func (w *Writer) AddTensor(name string, typ tensor.Type, shape []uint64, data []byte) error {
	size, err := checkTensor(name, typ, shape)
	if err != nil {
		return err
	}
	if uint64(len(data)) != size {
		return fmt.Errorf("gguf: tensor %q: %d bytes of data, want %d for %s %v", name, len(data), size, typ, shape)
	}
	return w.add(name, typ, shape, size, func(out io.Writer) error {
		_, err := out.Write(data)
		return err
	})
}

// AddTensorFunc adds a tensor whose data write produces while the file is
// being written. write must write exactly the size the type and shape call
// for (TensorSize), or WriteTo fails.
func (w *Writer) AddTensorFunc(name string, typ tensor.Type, shape []uint64, write func(io.Writer) error) error {
	size, err := checkTensor(name, typ, shape)
	if err != nil {
		return err
	}
	if write == nil {
		return fmt.Errorf("gguf: tensor %q: no function to write its data", name)
	}
	return w.add(name, typ, shape, size, write)
}

func (w *Writer) add(name string, typ tensor.Type, shape []uint64, size uint64, write func(io.Writer) error) error {
	if w.tensorIndex[name] {
		return fmt.Errorf("gguf: tensor %q added twice", name)
	}
	w.tensorIndex[name] = true
	info := TensorInfo{Name: name, Shape: append([]uint64(nil), shape...), Type: typ, Size: size}
	w.tensors = append(w.tensors, pendingTensor{info: info, write: write})
	return nil
}

// TensorSize returns the bytes of a tensor of type typ and shape, after the
// checks the reader makes: a known type, 1 to 4 dimensions, an element count
// that fits an int64, and rows of whole blocks.
func TensorSize(typ tensor.Type, shape []uint64) (uint64, error) {
	if !typ.Known() {
		return 0, fmt.Errorf("unknown ggml type id %d", uint32(typ))
	}
	if len(shape) < 1 || len(shape) > MaxDims {
		return 0, fmt.Errorf("%d dimensions, want 1 to %d", len(shape), MaxDims)
	}
	elements := uint64(1)
	for _, ne := range shape {
		hi, lo := bits.Mul64(elements, ne)
		if ne > math.MaxInt64 || hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("shape %v has more elements than an int64 counts", shape)
		}
		elements = lo
	}
	bs, ts := uint64(typ.BlockSize()), uint64(typ.TypeSize())
	if shape[0]%bs != 0 {
		return 0, fmt.Errorf("rows of %d elements are not a whole number of %d-element %s blocks", shape[0], bs, typ)
	}
	hi, size := bits.Mul64(elements/bs, ts)
	if hi != 0 || size > math.MaxInt64 {
		return 0, fmt.Errorf("shape %v of %s has more bytes than an int64 counts", shape, typ)
	}
	return size, nil
}

func checkTensor(name string, typ tensor.Type, shape []uint64) (uint64, error) {
	if name == "" || len(name) > MaxNameLen {
		return 0, fmt.Errorf("gguf: tensor name %q: want 1 to %d bytes", name, MaxNameLen)
	}
	size, err := TensorSize(typ, shape)
	if err != nil {
		return 0, fmt.Errorf("gguf: tensor %q: %w", name, err)
	}
	return size, nil
}

// WriteFile writes the file to path through a temporary file in the same
// folder, renamed over path once complete, so that a failed write never
// leaves a truncated file under the final name.
func (w *Writer) WriteFile(path string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := w.WriteTo(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("gguf: %w", err)
	}
	return nil
}

// WriteTo writes the whole file to out and returns the bytes written.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	meta, err := w.metadata()
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(out, 1<<20)
	cw := &countingWriter{w: bw}
	if _, err := cw.Write(meta); err != nil {
		return cw.n, fmt.Errorf("gguf: writing metadata: %w", err)
	}
	alignment := w.alignment()
	for _, t := range w.tensors {
		lw := &limitedWriter{w: cw, left: t.info.Size}
		if err := t.write(lw); err != nil {
			return cw.n, fmt.Errorf("gguf: writing tensor %q: %w", t.info.Name, err)
		}
		if lw.left != 0 {
			return cw.n, fmt.Errorf("gguf: writing tensor %q: %d bytes short of %d", t.info.Name, lw.left, t.info.Size)
		}
		if _, err := cw.Write(padding(uint64(cw.n), alignment)); err != nil {
			return cw.n, fmt.Errorf("gguf: writing tensor %q: %w", t.info.Name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return cw.n, fmt.Errorf("gguf: %w", err)
	}
	return cw.n, nil
}

// WriteMetadataTo writes only the metadata: header, key-value pairs, tensor
// infos and the padding up to the data section (llama.cpp's "only_meta").
// Tensor data written after it at the offsets of the infos, each padded to
// the alignment, completes the file.
func (w *Writer) WriteMetadataTo(out io.Writer) (int64, error) {
	meta, err := w.metadata()
	if err != nil {
		return 0, err
	}
	n, err := out.Write(meta)
	if err != nil {
		return int64(n), fmt.Errorf("gguf: writing metadata: %w", err)
	}
	return int64(n), nil
}

// alignment returns general.alignment, which metadata has checked, or the
// default.
func (w *Writer) alignment() uint64 {
	if i, ok := w.kvIndex[AlignmentKey]; ok {
		if a, err := w.kv[i].Value.Uint32(); err == nil && a != 0 {
			return uint64(a)
		}
	}
	return DefaultAlignment
}

// metadata checks and encodes everything before the data section.
func (w *Writer) metadata() ([]byte, error) {
	for _, kv := range w.kv {
		if kv.Key == "" {
			return nil, errors.New("gguf: empty key")
		}
		if err := checkValue(kv.Value, 0); err != nil {
			return nil, fmt.Errorf("gguf: key %q: %w", kv.Key, err)
		}
	}
	if i, ok := w.kvIndex[AlignmentKey]; ok {
		v := w.kv[i].Value
		if v.Type != TypeUint32 {
			return nil, fmt.Errorf("gguf: key %q is %s, want uint32", AlignmentKey, v.TypeName())
		}
		if a := v.bits; a == 0 || a&(a-1) != 0 {
			return nil, fmt.Errorf("gguf: key %q: alignment %d is not a power of two", AlignmentKey, a)
		}
	}
	alignment := w.alignment()

	le := binary.LittleEndian
	b := []byte(magic)
	b = le.AppendUint32(b, 3)
	b = le.AppendUint64(b, uint64(len(w.tensors)))
	b = le.AppendUint64(b, uint64(len(w.kv)))
	for _, kv := range w.kv {
		b = appendString(b, kv.Key)
		b = le.AppendUint32(b, uint32(kv.Value.Type))
		b = appendValue(b, kv.Value)
	}
	offset := uint64(0)
	for i := range w.tensors {
		t := &w.tensors[i].info
		t.Offset = offset
		b = appendString(b, t.Name)
		b = le.AppendUint32(b, uint32(len(t.Shape)))
		for _, ne := range t.Shape {
			b = le.AppendUint64(b, ne)
		}
		b = le.AppendUint32(b, uint32(t.Type))
		b = le.AppendUint64(b, t.Offset)
		offset += alignUp(t.Size, alignment)
	}
	return append(b, padding(uint64(len(b)), alignment)...), nil
}

// zeros is the source of padding; larger alignments allocate theirs.
var zeros = make([]byte, 4096)

// padding returns the zero bytes that bring n to a multiple of alignment.
func padding(n, alignment uint64) []byte {
	p := alignUp(n, alignment) - n
	if p <= uint64(len(zeros)) {
		return zeros[:p]
	}
	return make([]byte, p)
}

// checkValue checks that v can be encoded: a valid type, and for arrays a
// slice that matches the element type, nested no deeper than the reader
// accepts.
func checkValue(v Value, depth int) error {
	if !v.Type.Valid() {
		return fmt.Errorf("invalid value type %d", uint32(v.Type))
	}
	if v.Type != TypeArray {
		return nil
	}
	if depth+1 > maxArrayDepth {
		return fmt.Errorf("arrays nested more than %d deep", maxArrayDepth)
	}
	if got, ok := sliceElemType(v.arr); !ok || got != v.Elem {
		return fmt.Errorf("array of %s holds %T", v.Elem, v.arr)
	}
	if elems, ok := v.arr.([]Value); ok {
		for i, e := range elems {
			if e.Type != TypeArray {
				return fmt.Errorf("element %d of an array of arrays is %s", i, e.TypeName())
			}
			if err := checkValue(e, depth+1); err != nil {
				return fmt.Errorf("element %d: %w", i, err)
			}
		}
	}
	return nil
}

// sliceElemType returns the value type of the elements of a typed slice.
func sliceElemType(a any) (ValueType, bool) {
	switch a.(type) {
	case []uint8:
		return TypeUint8, true
	case []int8:
		return TypeInt8, true
	case []uint16:
		return TypeUint16, true
	case []int16:
		return TypeInt16, true
	case []uint32:
		return TypeUint32, true
	case []int32:
		return TypeInt32, true
	case []float32:
		return TypeFloat32, true
	case []bool:
		return TypeBool, true
	case []string:
		return TypeString, true
	case []uint64:
		return TypeUint64, true
	case []int64:
		return TypeInt64, true
	case []float64:
		return TypeFloat64, true
	case []Value:
		return TypeArray, true
	}
	return 0, false
}

func appendString(b []byte, s string) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s)))
	return append(b, s...)
}

// appendValue encodes v without its type id: a scalar's bytes, a string,
// or an array's element type, count and elements. checkValue has passed.
func appendValue(b []byte, v Value) []byte {
	le := binary.LittleEndian
	switch v.Type {
	case TypeUint8, TypeInt8, TypeBool:
		return append(b, byte(v.bits))
	case TypeUint16, TypeInt16:
		return le.AppendUint16(b, uint16(v.bits))
	case TypeUint32, TypeInt32, TypeFloat32:
		return le.AppendUint32(b, uint32(v.bits))
	case TypeUint64, TypeInt64, TypeFloat64:
		return le.AppendUint64(b, v.bits)
	case TypeString:
		return appendString(b, v.str)
	}
	b = le.AppendUint32(b, uint32(v.Elem))
	b = le.AppendUint64(b, uint64(v.Len()))
	switch a := v.arr.(type) {
	case []uint8:
		b = append(b, a...)
	case []int8:
		for _, x := range a {
			b = append(b, byte(x))
		}
	case []bool:
		for _, x := range a {
			if x {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
	case []uint16:
		for _, x := range a {
			b = le.AppendUint16(b, x)
		}
	case []int16:
		for _, x := range a {
			b = le.AppendUint16(b, uint16(x))
		}
	case []uint32:
		for _, x := range a {
			b = le.AppendUint32(b, x)
		}
	case []int32:
		for _, x := range a {
			b = le.AppendUint32(b, uint32(x))
		}
	case []float32:
		for _, x := range a {
			b = le.AppendUint32(b, math.Float32bits(x))
		}
	case []uint64:
		for _, x := range a {
			b = le.AppendUint64(b, x)
		}
	case []int64:
		for _, x := range a {
			b = le.AppendUint64(b, uint64(x))
		}
	case []float64:
		for _, x := range a {
			b = le.AppendUint64(b, math.Float64bits(x))
		}
	case []string:
		for _, x := range a {
			b = appendString(b, x)
		}
	case []Value:
		for _, x := range a {
			b = appendValue(b, x)
		}
	}
	return b
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// limitedWriter passes on at most left bytes and fails past that, so that
// a tensor's writer cannot spill into the next tensor's place.
type limitedWriter struct {
	w    io.Writer
	left uint64
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if uint64(len(p)) > l.left {
		return 0, fmt.Errorf("%d bytes more than the tensor's size", uint64(len(p))-l.left)
	}
	n, err := l.w.Write(p)
	l.left -= uint64(n)
	return n, err
}
