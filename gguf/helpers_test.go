package gguf_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"llamago/gguf"
	"llamago/tensor"
)

var le = binary.LittleEndian

// raw builds GGUF bytes field by field, independently of the Writer, for
// files the Writer refuses to make.
type raw struct{ b []byte }

func (r *raw) u32(x uint32) *raw { r.b = le.AppendUint32(r.b, x); return r }
func (r *raw) u64(x uint64) *raw { r.b = le.AppendUint64(r.b, x); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *raw) header(version uint32, nTensors, nKV uint64) *raw {
	r.b = append(r.b, "GGUF"...)
	return r.u32(version).u64(nTensors).u64(nKV)
}

// pad appends zeros up to a multiple of 32.
func (r *raw) pad() *raw {
	for len(r.b)%32 != 0 {
		r.b = append(r.b, 0)
	}
	return r
}

// sample returns the bytes of a small valid file, written by the Writer:
// a few keys of different types and three tensors of different types.
func sample(t testing.TB) []byte {
	t.Helper()
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("test.aaa", gguf.Uint32(7))
	w.Set("test.bbb", gguf.Float32(0.5))
	w.Set("test.tokens", gguf.Strings([]string{"a", "bb", "ccc"}))
	w.Set("test.nested", gguf.ArrayOf(gguf.Int32s([]int32{1, -2}), gguf.Strings([]string{"x"})))
	mustAdd(t, w, "t0", tensor.F32, []uint64{4, 2}, 32)
	mustAdd(t, w, "t1", tensor.Q8_0, []uint64{32, 2}, 68)
	mustAdd(t, w, "t2", tensor.F16, []uint64{8}, 16)
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// mustAdd adds a tensor whose bytes count up from its name's first byte.
func mustAdd(t testing.TB, w *gguf.Writer, name string, typ tensor.Type, shape []uint64, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = name[0] + byte(i)
	}
	if err := w.AddTensor(name, typ, shape, data); err != nil {
		t.Fatal(err)
	}
	return data
}

// after returns the offset just past the first length-prefixed string s in
// b: where a key's type or a tensor info's dimension count starts.
func after(t testing.TB, b []byte, s string) int {
	t.Helper()
	needle := append(le.AppendUint64(nil, uint64(len(s))), s...)
	i := bytes.Index(b, needle)
	if i < 0 {
		t.Fatalf("%q not found in the file", s)
	}
	return i + len(needle)
}

// tensorFields returns the offsets of the fields of the tensor info named
// name: its name, dimension count, first dimension, type and offset.
type tensorFields struct{ name, nDims, dim0, typ, offset int }

func fieldsOf(t testing.TB, b []byte, name string) tensorFields {
	t.Helper()
	p := after(t, b, name)
	nDims := int(le.Uint32(b[p:]))
	typ := p + 4 + 8*nDims
	return tensorFields{name: p - len(name) - 8, nDims: p, dim0: p + 4, typ: typ, offset: typ + 4}
}
