package gguf_test

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/tensor"
)

// allValues has a value of every type, including arrays of each element
// type and arrays of arrays.
func allValues() []gguf.KV {
	return []gguf.KV{
		{"u8", gguf.Uint8(200)},
		{"i8", gguf.Int8(-100)},
		{"u16", gguf.Uint16(60000)},
		{"i16", gguf.Int16(-30000)},
		{"u32", gguf.Uint32(4_000_000_000)},
		{"i32", gguf.Int32(-2_000_000_000)},
		{"f32", gguf.Float32(1e-5)},
		{"bool.true", gguf.Bool(true)},
		{"bool.false", gguf.Bool(false)},
		{"str", gguf.String("héllo\x00world")},
		{"str.empty", gguf.String("")},
		{"u64", gguf.Uint64(math.MaxUint64)},
		{"i64", gguf.Int64(math.MinInt64)},
		{"f64", gguf.Float64(math.Pi)},
		{"a.u8", gguf.Uint8s([]uint8{0, 1, 255})},
		{"a.i8", gguf.Int8s([]int8{-128, 0, 127})},
		{"a.u16", gguf.Uint16s([]uint16{0, 65535})},
		{"a.i16", gguf.Int16s([]int16{-32768, 32767})},
		{"a.u32", gguf.Uint32s([]uint32{1, 1 << 31})},
		{"a.i32", gguf.Int32s([]int32{-1, 2, -3})},
		{"a.f32", gguf.Float32s([]float32{0.25, -1, float32(math.Inf(1))})},
		{"a.bool", gguf.Bools([]bool{true, false, true})},
		{"a.str", gguf.Strings([]string{"", "a", "▁the", "<0x0A>"})},
		{"a.str.empty", gguf.Strings([]string{})},
		{"a.u64", gguf.Uint64s([]uint64{math.MaxUint64})},
		{"a.i64", gguf.Int64s([]int64{math.MinInt64, math.MaxInt64})},
		{"a.f64", gguf.Float64s([]float64{math.SmallestNonzeroFloat64})},
		{"a.nested", gguf.ArrayOf(
			gguf.Strings([]string{"x", "y"}),
			gguf.ArrayOf(gguf.Float32s([]float32{1.5}), gguf.Int64s([]int64{})),
			gguf.Uint8s([]uint8{9}),
		)},
	}
}

func TestRoundTrip(t *testing.T) {
	w := gguf.NewWriter()
	for _, kv := range allValues() {
		w.Set(kv.Key, kv.Value)
	}
	// Tensors of several types and shapes, the second streamed.
	type added struct {
		name  string
		typ   tensor.Type
		shape []uint64
		data  []byte
	}
	var tensors []added
	add := func(name string, typ tensor.Type, shape []uint64, size int) {
		tensors = append(tensors, added{name, typ, shape, mustAdd(t, w, name, typ, shape, size)})
	}
	add("a", tensor.F32, []uint64{3}, 12)
	streamed := bytes.Repeat([]byte{7}, 2*210)
	if err := w.AddTensorFunc("b", tensor.Q6_K, []uint64{256, 2}, func(out io.Writer) error {
		// in two pieces, as a streaming quantizer would
		if _, err := out.Write(streamed[:100]); err != nil {
			return err
		}
		_, err := out.Write(streamed[100:])
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tensors = append(tensors, added{"b", tensor.Q6_K, []uint64{256, 2}, streamed})
	add("c", tensor.Q4_0, []uint64{64, 3, 2, 1}, 2*18*3*2)
	add("empty", tensor.F16, []uint64{0, 5}, 0)
	add("d", tensor.BF16, []uint64{5, 1, 1}, 10)

	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset%32 != 0 {
		t.Errorf("version %d, alignment %d, data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	if !reflect.DeepEqual(f.KV, allValues()) {
		for i, kv := range f.KV {
			if want := allValues()[i]; !reflect.DeepEqual(kv, want) {
				t.Errorf("KV %d: got %+v, want %+v", i, kv, want)
			}
		}
		t.Fatal("metadata differs")
	}
	if len(f.Tensors) != len(tensors) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(tensors))
	}
	end := uint64(0)
	for i, want := range tensors {
		ti := &f.Tensors[i]
		if ti.Name != want.name || ti.Type != want.typ || !reflect.DeepEqual(ti.Shape, want.shape) {
			t.Errorf("tensor %d: %s %s %v, want %s %s %v", i, ti.Name, ti.Type, ti.Shape, want.name, want.typ, want.shape)
		}
		if !bytes.Equal(f.TensorData(ti), want.data) {
			t.Errorf("tensor %s: data differs", ti.Name)
		}
		// llama.cpp wants each tensor right after the previous one, padded.
		if ti.Offset != end {
			t.Errorf("tensor %s at %d, want %d", ti.Name, ti.Offset, end)
		}
		end = (ti.Offset + ti.Size + 31) &^ 31
	}
	if f.DataOffset+end != uint64(buf.Len()) {
		t.Errorf("file is %d bytes, want %d", buf.Len(), f.DataOffset+end)
	}

	// Writing what was read gives the same bytes.
	w2 := gguf.NewWriter()
	for _, kv := range f.KV {
		w2.Set(kv.Key, kv.Value)
	}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if err := w2.AddTensor(ti.Name, ti.Type, ti.Shape, f.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	if again := writeBytes(t, w2); !bytes.Equal(again, buf.Bytes()) {
		t.Error("writing the file read back gives different bytes")
	}
}

func TestWriterAlignment(t *testing.T) {
	w := gguf.NewWriter()
	w.Set("general.alignment", gguf.Uint32(256))
	mustAdd(t, w, "x", tensor.F32, []uint64{3}, 12)
	mustAdd(t, w, "y", tensor.F32, []uint64{3}, 12)
	b := writeBytes(t, w)
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 256 || f.DataOffset%256 != 0 || f.Tensors[1].Offset != 256 || len(b)%256 != 0 {
		t.Errorf("alignment %d, data at %d, y at %d, size %d", f.Alignment, f.DataOffset, f.Tensors[1].Offset, len(b))
	}
}

func TestWriterSetReplaces(t *testing.T) {
	w := gguf.NewWriter()
	w.Set("a", gguf.Uint32(1))
	w.Set("b", gguf.Uint32(2))
	w.Set("a", gguf.String("again"))
	f, err := gguf.Parse(writeBytes(t, w))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.KV) != 2 || f.KV[0].Key != "a" || f.KV[1].Key != "b" {
		t.Fatalf("keys %+v", f.KV)
	}
	if s, err := f.String("a"); s != "again" || err != nil {
		t.Errorf("a = %q, %v", s, err)
	}
}

func TestWriterRejects(t *testing.T) {
	long := strings.Repeat("n", 64)
	addTests := []struct {
		name  string
		tname string
		typ   tensor.Type
		shape []uint64
		size  int
		want  string
	}{
		{"wrong size", "x", tensor.F32, []uint64{4}, 15, `gguf: tensor "x": 15 bytes of data, want 16 for F32 [4]`},
		{"unknown type", "x", tensor.Type(4), []uint64{4}, 16, `gguf: tensor "x": unknown ggml type id 4`},
		{"no dimensions", "x", tensor.F32, nil, 4, `gguf: tensor "x": 0 dimensions, want 1 to 4`},
		{"five dimensions", "x", tensor.F32, []uint64{1, 1, 1, 1, 1}, 4, `5 dimensions`},
		{"partial block", "x", tensor.Q4_K, []uint64{128}, 72, `rows of 128 elements are not a whole number of 256-element Q4_K blocks`},
		{"overflow", "x", tensor.F32, []uint64{1 << 32, 1 << 32}, 0, `more elements than an int64 counts`},
		{"empty name", "", tensor.F32, []uint64{1}, 4, `gguf: tensor name "": want 1 to 63 bytes`},
		{"long name", long, tensor.F32, []uint64{1}, 4, `want 1 to 63 bytes`},
		{"duplicate", "dup", tensor.F32, []uint64{1}, 4, `gguf: tensor "dup" added twice`},
	}
	if err := gguf.NewWriter().AddTensorFunc("x", tensor.F32, []uint64{1}, nil); err == nil {
		t.Error("AddTensorFunc accepts a nil function")
	}
	for _, tt := range addTests {
		t.Run(tt.name, func(t *testing.T) {
			w := gguf.NewWriter()
			mustAdd(t, w, "dup", tensor.F32, []uint64{1}, 4)
			err := w.AddTensor(tt.tname, tt.typ, tt.shape, make([]byte, tt.size))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}

	deep := gguf.Uint8s(nil)
	for range 8 {
		deep = gguf.ArrayOf(deep)
	}
	writeTests := []struct {
		name  string
		build func(w *gguf.Writer)
		want  string
	}{
		{"alignment type", func(w *gguf.Writer) { w.Set("general.alignment", gguf.Uint64(64)) }, `gguf: key "general.alignment" is uint64, want uint32`},
		{"alignment value", func(w *gguf.Writer) { w.Set("general.alignment", gguf.Uint32(48)) }, `alignment 48 is not a power of two`},
		{"empty key", func(w *gguf.Writer) { w.Set("", gguf.Uint8(1)) }, `gguf: empty key`},
		{"scalar in an array of arrays", func(w *gguf.Writer) { w.Set("k", gguf.ArrayOf(gguf.Uint8(1))) }, `gguf: key "k": element 0 of an array of arrays is uint8`},
		{"nested too deep", func(w *gguf.Writer) { w.Set("k", deep) }, `arrays nested more than 8 deep`},
		{"invalid type", func(w *gguf.Writer) { w.Set("k", gguf.Value{Type: 13}) }, `invalid value type 13`},
		{"array without a slice", func(w *gguf.Writer) { w.Set("k", gguf.Value{Type: gguf.TypeArray, Elem: gguf.TypeInt32}) }, `array of int32 holds <nil>`},
		{"short tensor", func(w *gguf.Writer) {
			_ = w.AddTensorFunc("s", tensor.F32, []uint64{4}, func(out io.Writer) error { _, err := out.Write(make([]byte, 10)); return err })
		}, `gguf: writing tensor "s": 6 bytes short of 16`},
		{"long tensor", func(w *gguf.Writer) {
			_ = w.AddTensorFunc("s", tensor.F32, []uint64{4}, func(out io.Writer) error { _, err := out.Write(make([]byte, 20)); return err })
		}, `gguf: writing tensor "s": 4 bytes more than the tensor's size`},
		{"failing tensor", func(w *gguf.Writer) {
			_ = w.AddTensorFunc("s", tensor.F32, []uint64{4}, func(io.Writer) error { return errors.New("disk on fire") })
		}, `gguf: writing tensor "s": disk on fire`},
	}
	for _, tt := range writeTests {
		t.Run(tt.name, func(t *testing.T) {
			w := gguf.NewWriter()
			tt.build(w)
			_, err := w.WriteTo(io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.gguf")
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	data := mustAdd(t, w, "x", tensor.F32, []uint64{2, 2}, 16)
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ti, _ := f.Tensor("x")
	if !bytes.Equal(f.TensorData(ti), data) {
		t.Error("data differs")
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// A failed write leaves the old file and no temporary file behind.
	bad := gguf.NewWriter()
	_ = bad.AddTensorFunc("x", tensor.F32, []uint64{4}, func(io.Writer) error { return errors.New("no") })
	if err := bad.WriteFile(path); err == nil {
		t.Fatal("no error")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "m.gguf" {
		t.Errorf("folder holds %v", entries)
	}
	if _, err := gguf.Open(path); err != nil {
		t.Errorf("the old file was damaged: %v", err)
	}
}

func TestWriteMetadataTo(t *testing.T) {
	w := gguf.NewWriter()
	w.Set("k", gguf.Uint32(1))
	mustAdd(t, w, "x", tensor.F32, []uint64{3}, 12)
	full := writeBytes(t, w)
	var meta bytes.Buffer
	n, err := w.WriteMetadataTo(&meta)
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(n) != f.DataOffset || !bytes.Equal(meta.Bytes(), full[:n]) {
		t.Errorf("metadata is %d bytes, data starts at %d", n, f.DataOffset)
	}
}
