package gguf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"

	"github.com/edsrzf/mmap-go"

	"llamago/tensor"
)

// Format constants (gguf.h, ggml.h).
const (
	magic            = "GGUF"
	DefaultAlignment = 32 // used when general.alignment is absent
	AlignmentKey     = "general.alignment"
	MaxDims          = 4  // ggml's GGML_MAX_DIMS
	MaxNameLen       = 63 // ggml's GGML_MAX_NAME less the C string's NUL
	maxArrayDepth    = 8  // arrays of arrays nest at most this deep

	// The fewest bytes a key-value pair or a tensor info can take. Counts
	// from the header are checked against them before anything is sized
	// by a count.
	minKVSize         = 8 + 1 + 4 + 1     // key length, 1-byte key, type, uint8
	minTensorInfoSize = 8 + 4 + 8 + 4 + 8 // name length, n_dims, one dim, type, offset
)

// Errors for files that are not GGUF files llamago reads.
var (
	ErrNotGGUF   = errors.New("gguf: not a GGUF file")
	ErrVersion1  = errors.New("gguf: version 1 files are not supported (llama.cpp dropped them); convert the file again")
	ErrBigEndian = errors.New("gguf: this is a big-endian GGUF file (its version field reads byte-swapped); llamago reads little-endian files only: convert the file again")
)

// KV is one metadata key-value pair.
type KV struct {
	Key   string
	Value Value
}

// TensorInfo describes one tensor of the file.
type TensorInfo struct {
	Name   string
	Shape  []uint64    // ggml's ne: the innermost (contiguous) dimension first
	Type   tensor.Type // may be a type llamago cannot convert; see CheckSupported
	Offset uint64      // of the data, from the start of the data section
	Size   uint64      // bytes of data
}

// Elements returns the number of elements (the product of the shape).
func (ti *TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range ti.Shape {
		n *= d
	}
	return n
}

// UnsupportedTypeError says that a tensor has a ggml type llamago cannot
// compute with. It wraps tensor.ErrUnsupported.
type UnsupportedTypeError struct {
	Tensor string
	Type   tensor.Type
}

func (e *UnsupportedTypeError) Error() string {
	return fmt.Sprintf("tensor %s has type %s, which llamago does not support yet", e.Tensor, e.Type)
}

func (e *UnsupportedTypeError) Unwrap() error { return tensor.ErrUnsupported }

// CheckSupported returns an *UnsupportedTypeError when llamago cannot
// convert the tensor's type. The reader itself accepts every type ggml
// defines, so that such files can still be inspected.
func (ti *TensorInfo) CheckSupported() error {
	if !ti.Type.Supported() {
		return &UnsupportedTypeError{Tensor: ti.Name, Type: ti.Type}
	}
	return nil
}

// File is a parsed GGUF file. Metadata and tensor infos are copied out of
// the file; tensor data stays in the file's bytes (a read-only memory map
// for Open), so TensorData slices are valid only until Close.
type File struct {
	Version    uint32       // 2 or 3
	Alignment  uint64       // of tensor data, from general.alignment or 32
	DataOffset uint64       // absolute offset of the data section
	KV         []KV         // metadata in file order
	Tensors    []TensorInfo // tensor infos in file order

	data        []byte
	mapping     mmap.MMap // nil for Parse
	kvIndex     map[string]int
	tensorIndex map[string]int
}

// Open memory-maps the file at path read-only and parses it. Errors do not
// name the path; the caller knows it.
func Open(path string) (*File, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer fd.Close() // the mapping outlives the descriptor
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	if st.Size() == 0 {
		// mmap refuses empty files; report it as the parser would.
		return nil, fmt.Errorf("%w: the file is empty", ErrNotGGUF)
	}
	m, err := mmap.Map(fd, mmap.RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("gguf: memory-mapping %s: %w", path, err)
	}
	f, err := Parse(m)
	if err != nil {
		_ = m.Unmap()
		return nil, err
	}
	f.mapping = m
	return f, nil
}

// Close releases the memory map. Slices from TensorData must not be used
// after it. Closing a File from Parse, or closing twice, does nothing.
func (f *File) Close() error {
	if f.mapping == nil {
		return nil
	}
	err := f.mapping.Unmap()
	f.mapping, f.data = nil, nil
	if err != nil {
		return fmt.Errorf("gguf: unmapping: %w", err)
	}
	return nil
}

// Size returns the size of the file in bytes.
func (f *File) Size() int64 { return int64(len(f.data)) }

// Parse parses a whole GGUF file held in data, with the same checks as Open.
// The File keeps data for TensorData; the caller must not change it.
func Parse(data []byte) (*File, error) {
	r := &readBuf{b: data}
	f := &File{data: data, Alignment: DefaultAlignment}

	// Header: magic, version, tensor count, key-value count.
	if r.left() < 4 || string(r.b[:4]) != magic {
		got := r.b[:min(4, len(r.b))]
		return nil, fmt.Errorf("%w: it starts with %q, not %q", ErrNotGGUF, got, magic)
	}
	r.off = 4
	version, err := r.uint32()
	if err != nil {
		return nil, fieldError(4, "version", err)
	}
	switch {
	case version == 1:
		return nil, ErrVersion1
	case version != 0 && version&0xffff == 0:
		// A little-endian reader sees version 2 or 3 written big-endian as
		// 0x02000000 or 0x03000000: the low half is zero.
		return nil, ErrBigEndian
	case version != 2 && version != 3:
		return nil, fieldError(4, "version", fmt.Errorf("version %d is not one llamago reads (2 and 3)", version))
	}
	f.Version = version

	countOff := r.off
	nTensors, err := r.count("tensor count", minTensorInfoSize, 8)
	if err != nil {
		return nil, err
	}
	nKV, err := r.count("key-value count", minKVSize, 0)
	if err != nil {
		return nil, err
	}
	// Both sections share the bytes left; check them together too.
	if uint64(nTensors)*minTensorInfoSize+uint64(nKV)*minKVSize > uint64(r.left()) {
		return nil, fieldError(countOff, "tensor and key-value counts",
			fmt.Errorf("%d tensor infos and %d key-value pairs cannot fit in the %d bytes left: %w", nTensors, nKV, r.left(), ErrTruncated))
	}

	if err := f.readKVs(r, nKV); err != nil {
		return nil, err
	}
	offsetFields, err := f.readTensorInfos(r, nTensors)
	if err != nil {
		return nil, err
	}

	// The data section starts at the next multiple of the alignment. A file
	// without tensors may end before that padding (llama.cpp then does not
	// seek), so clamp.
	end := uint64(r.off)
	f.DataOffset = alignUp(end, f.Alignment)
	if f.DataOffset > uint64(len(data)) {
		if nTensors > 0 {
			return nil, fieldError(r.off, "padding before the data section",
				fmt.Errorf("the data section would start at byte %d, past the end of the %d-byte file: %w", f.DataOffset, len(data), ErrTruncated))
		}
		f.DataOffset = uint64(len(data))
	}
	dataSize := uint64(len(data)) - f.DataOffset
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if ti.Offset > dataSize || ti.Size > dataSize-ti.Offset {
			return nil, fieldError(offsetFields[i], fmt.Sprintf("tensor info %d (%q): offset", i, ti.Name),
				fmt.Errorf("data [%d, %d) runs past the end of the %d-byte data section: %w", ti.Offset, ti.Offset+ti.Size, dataSize, ErrTruncated))
		}
	}
	return f, nil
}

// count reads a header count (an int64) and checks that that many items of
// at least minSize bytes each fit in the bytes left, minus reserve bytes
// still to come in the header.
func (r *readBuf) count(field string, minSize, reserve int) (int, error) {
	off := r.off
	n, err := r.uint64()
	if err != nil {
		return 0, fieldError(off, field, err)
	}
	if n > math.MaxInt64 {
		return 0, fieldError(off, field, fmt.Errorf("%d is negative as an int64", int64(n)))
	}
	avail := max(r.left()-reserve, 0)
	if n > uint64(avail/minSize) {
		return 0, fieldError(off, field,
			fmt.Errorf("%d items of at least %d bytes each cannot fit in the %d bytes left: %w", n, minSize, avail, ErrTruncated))
	}
	return int(n), nil
}

func alignUp(x, alignment uint64) uint64 {
	return (x + alignment - 1) &^ (alignment - 1)
}

func (f *File) readKVs(r *readBuf, n int) error {
	f.KV = make([]KV, 0, n)
	f.kvIndex = make(map[string]int, n)
	alignmentOff := -1
	for i := range n {
		start := r.off
		key, err := r.string()
		if err != nil {
			return fieldError(start, fmt.Sprintf("key %d: name", i), err)
		}
		if key == "" {
			return fieldError(start, fmt.Sprintf("key %d: name", i), errors.New("the key is empty"))
		}
		field := fmt.Sprintf("key %d (%q)", i, key)
		if j, dup := f.kvIndex[key]; dup {
			return fieldError(start, field, fmt.Errorf("duplicate of key %d", j))
		}
		typeOff := r.off
		t, err := r.valueType()
		if err != nil {
			return fieldError(typeOff, field+": value type", err)
		}
		if key == AlignmentKey {
			alignmentOff = r.off
		}
		v, err := r.value(t, 0)
		if err != nil {
			return prefix(err, "%s", field)
		}
		f.kvIndex[key] = len(f.KV)
		f.KV = append(f.KV, KV{Key: key, Value: v})
	}

	if alignmentOff >= 0 {
		// llama.cpp insists on uint32 here, so we do too.
		v := f.KV[f.kvIndex[AlignmentKey]].Value
		field := fmt.Sprintf("key %q", AlignmentKey)
		if v.Type != TypeUint32 {
			return fieldError(alignmentOff, field, fmt.Errorf("type %s, want uint32", v.TypeName()))
		}
		a := v.bits
		if a == 0 || a&(a-1) != 0 {
			return fieldError(alignmentOff, field, fmt.Errorf("alignment %d is not a power of two", a))
		}
		f.Alignment = a
	}
	return nil
}

// readTensorInfos reads n tensor infos and returns the byte offset of each
// one's offset field, for the range checks that need the data section.
func (f *File) readTensorInfos(r *readBuf, n int) ([]int, error) {
	f.Tensors = make([]TensorInfo, 0, n)
	f.tensorIndex = make(map[string]int, n)
	offsetFields := make([]int, 0, n)
	for i := range n {
		start := r.off
		name, err := r.string()
		if err != nil {
			return nil, fieldError(start, fmt.Sprintf("tensor info %d: name", i), err)
		}
		field := fmt.Sprintf("tensor info %d (%q)", i, name)
		if len(name) > MaxNameLen {
			return nil, fieldError(start, field+": name", fmt.Errorf("%d bytes long, ggml allows at most %d", len(name), MaxNameLen))
		}
		if j, dup := f.tensorIndex[name]; dup {
			return nil, fieldError(start, field+": name", fmt.Errorf("duplicate of tensor info %d", j))
		}

		ti := TensorInfo{Name: name}
		dimsOff := r.off
		nDims, err := r.uint32()
		if err != nil {
			return nil, fieldError(dimsOff, field+": dimension count", err)
		}
		if nDims < 1 || nDims > MaxDims {
			return nil, fieldError(dimsOff, field+": dimension count", fmt.Errorf("%d, want 1 to %d", nDims, MaxDims))
		}
		ti.Shape = make([]uint64, nDims)
		elements := uint64(1)
		for d := range ti.Shape {
			off := r.off
			dfield := fmt.Sprintf("%s: dimension %d", field, d)
			ne, err := r.uint64()
			if err != nil {
				return nil, fieldError(off, dfield, err)
			}
			// ggml stores dimensions as int64. Zero is allowed (an empty
			// tensor), as llama.cpp allows it.
			if ne > math.MaxInt64 {
				return nil, fieldError(off, dfield, fmt.Errorf("size %d is negative as an int64", int64(ne)))
			}
			ti.Shape[d] = ne
			hi, lo := bits.Mul64(elements, ne)
			if hi != 0 || lo > math.MaxInt64 {
				return nil, fieldError(off, dfield, fmt.Errorf("size %d makes the element count of %v overflow int64", ne, ti.Shape[:d+1]))
			}
			elements = lo
		}

		typeOff := r.off
		id, err := r.uint32()
		if err != nil {
			return nil, fieldError(typeOff, field+": type", err)
		}
		ti.Type = tensor.Type(id)
		if !ti.Type.Known() {
			return nil, fieldError(typeOff, field+": type", fmt.Errorf("unknown ggml type id %d", id))
		}
		bs, ts := uint64(ti.Type.BlockSize()), uint64(ti.Type.TypeSize())
		if ti.Shape[0]%bs != 0 {
			return nil, fieldError(dimsOff+4, field+": dimension 0",
				fmt.Errorf("%d elements per row are not a whole number of %d-element %s blocks", ti.Shape[0], bs, ti.Type))
		}
		hi, size := bits.Mul64(elements/bs, ts)
		if hi != 0 || size > math.MaxInt64 {
			return nil, fieldError(dimsOff, field+": shape", fmt.Errorf("%v of %s overflows int64 bytes", ti.Shape, ti.Type))
		}
		ti.Size = size

		offsetOff := r.off
		ti.Offset, err = r.uint64()
		if err != nil {
			return nil, fieldError(offsetOff, field+": offset", err)
		}
		if ti.Offset%f.Alignment != 0 {
			return nil, fieldError(offsetOff, field+": offset", fmt.Errorf("%d is not a multiple of the alignment %d", ti.Offset, f.Alignment))
		}

		f.tensorIndex[name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
		offsetFields = append(offsetFields, offsetOff)
	}
	return offsetFields, nil
}

// valueType reads a value type id and checks it.
func (r *readBuf) valueType() (ValueType, error) {
	id, err := r.uint32()
	if err != nil {
		return 0, err
	}
	t := ValueType(id)
	if !t.Valid() {
		return 0, fmt.Errorf("%d is not a GGUF value type", id)
	}
	return t, nil
}

// value reads one value of type t; depth is the number of arrays around it.
func (r *readBuf) value(t ValueType, depth int) (Value, error) {
	start := r.off
	switch t {
	case TypeString:
		s, err := r.string()
		if err != nil {
			return Value{}, fieldError(start, "string value", err)
		}
		return String(s), nil
	case TypeArray:
		return r.array(depth + 1)
	}
	n := t.fixedSize()
	if err := r.need(uint64(n)); err != nil {
		return Value{}, fieldError(start, t.String()+" value", err)
	}
	b := r.bytes(n)
	v := Value{Type: t}
	switch t {
	case TypeUint8, TypeBool:
		v.bits = uint64(b[0])
	case TypeInt8:
		v.bits = uint64(int64(int8(b[0])))
	case TypeUint16:
		v.bits = uint64(binary.LittleEndian.Uint16(b))
	case TypeInt16:
		v.bits = uint64(int64(int16(binary.LittleEndian.Uint16(b))))
	case TypeUint32, TypeFloat32:
		v.bits = uint64(binary.LittleEndian.Uint32(b))
	case TypeInt32:
		v.bits = uint64(int64(int32(binary.LittleEndian.Uint32(b))))
	case TypeUint64, TypeInt64, TypeFloat64:
		v.bits = binary.LittleEndian.Uint64(b)
	}
	if t == TypeBool && v.bits != 0 {
		v.bits = 1 // llama.cpp reads any non-zero byte as true
	}
	return v, nil
}

// array reads an array: element type, count, elements. depth counts this
// array among those around it.
func (r *readBuf) array(depth int) (Value, error) {
	start := r.off
	if depth > maxArrayDepth {
		return Value{}, fieldError(start, "array", fmt.Errorf("arrays nested more than %d deep", maxArrayDepth))
	}
	elem, err := r.valueType()
	if err != nil {
		return Value{}, fieldError(start, "array element type", err)
	}
	countOff := r.off
	n64, err := r.uint64()
	if err != nil {
		return Value{}, fieldError(countOff, "array length", err)
	}
	minSize := uint64(elem.minSize())
	if n64 > uint64(r.left())/minSize {
		return Value{}, fieldError(countOff, "array length",
			fmt.Errorf("%d %s elements of at least %d bytes each cannot fit in the %d bytes left: %w", n64, elem, minSize, r.left(), ErrTruncated))
	}
	n := int(n64)

	v := Value{Type: TypeArray, Elem: elem}
	if size := elem.fixedSize(); size > 0 {
		v.arr = decodeFixed(elem, r.bytes(n*size), n)
		return v, nil
	}
	switch elem {
	case TypeString:
		v.arr, err = r.strings(n)
	case TypeArray:
		v.arr, err = r.arrays(n, depth)
	}
	if err != nil {
		return Value{}, err
	}
	return v, nil
}

// decodeFixed decodes n little-endian elements of a fixed-size type.
func decodeFixed(t ValueType, b []byte, n int) any {
	le := binary.LittleEndian
	switch t {
	case TypeUint8:
		out := make([]uint8, n)
		copy(out, b)
		return out
	case TypeInt8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(b[i])
		}
		return out
	case TypeBool:
		out := make([]bool, n)
		for i := range out {
			out[i] = b[i] != 0
		}
		return out
	case TypeUint16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le.Uint16(b[2*i:])
		}
		return out
	case TypeInt16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le.Uint16(b[2*i:]))
		}
		return out
	case TypeUint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le.Uint32(b[4*i:])
		}
		return out
	case TypeInt32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le.Uint32(b[4*i:]))
		}
		return out
	case TypeFloat32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le.Uint32(b[4*i:]))
		}
		return out
	case TypeUint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le.Uint64(b[8*i:])
		}
		return out
	case TypeInt64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le.Uint64(b[8*i:]))
		}
		return out
	case TypeFloat64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
		return out
	}
	return nil
}

// strings reads n length-prefixed strings. Vocabularies hold up to 256k of
// them, so rather than allocate each one, it copies all their bytes into a
// single string and slices it: one pass to check the lengths and sum them,
// one to copy, one to slice. The loops are written out, without the
// checked readBuf methods, because they are the hot path of opening a file.
func (r *readBuf) strings(n int) ([]string, error) {
	b, start := r.b, r.off
	p, total := start, 0
	for i := range n {
		if len(b)-p < 8 {
			r.off = p
			_, err := r.stringBytes()
			return nil, fieldError(p, fmt.Sprintf("element %d", i), err)
		}
		size := binary.LittleEndian.Uint64(b[p:])
		if size > uint64(len(b)-p-8) {
			r.off = p
			_, err := r.stringBytes()
			return nil, fieldError(p, fmt.Sprintf("element %d", i), err)
		}
		p += 8 + int(size)
		total += int(size)
	}
	end := p

	all := make([]byte, 0, total)
	for p = start; p < end; {
		size := int(binary.LittleEndian.Uint64(b[p:]))
		all = append(all, b[p+8:p+8+size]...)
		p += 8 + size
	}
	text := string(all)

	out := make([]string, n)
	pos := 0
	p = start
	for i := range out {
		size := int(binary.LittleEndian.Uint64(b[p:]))
		out[i] = text[pos : pos+size]
		pos += size
		p += 8 + size
	}
	r.off = end
	return out, nil
}

// arrays reads n arrays that are the elements of an array at depth.
func (r *readBuf) arrays(n, depth int) ([]Value, error) {
	out := make([]Value, n)
	for i := range out {
		v, err := r.array(depth + 1)
		if err != nil {
			return nil, prefix(err, "element %d", i)
		}
		out[i] = v
	}
	return out, nil
}
