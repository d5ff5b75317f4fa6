package gguf_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
)

// FuzzParse checks that Parse never panics, and that what it accepts is
// consistent: tensor data inside the file and of the size the shape calls
// for, keys findable, and writing the file again reproduces it.
func FuzzParse(f *testing.F) {
	// Every GGUF file of the shared folder, where it is present.
	_ = filepath.WalkDir(testenv.SharedDir(), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".gguf") {
			if b, err := os.ReadFile(path); err == nil {
				f.Add(b)
			}
		}
		return nil
	})
	valid := sample(f)
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(deepArray(8))
	f.Add(deepArray(9))
	v2 := bytes.Clone(valid)
	put32(v2, 4, 2)
	f.Add(v2)
	huge := bytes.Clone(valid)
	put64(huge, 8, 1<<40)
	f.Add(huge)
	f.Add(new(raw).header(3, 1, 0).str("t").u32(1).u64(0).u32(0).u64(0).pad().b)

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := gguf.Parse(data)
		if err != nil {
			return
		}
		for i := range file.Tensors {
			ti := &file.Tensors[i]
			got := file.TensorData(ti)
			if uint64(len(got)) != ti.Size {
				t.Fatalf("tensor %q: %d bytes of data, want %d", ti.Name, len(got), ti.Size)
			}
			if size, err := gguf.TensorSize(ti.Type, ti.Shape); err != nil || size != ti.Size {
				t.Fatalf("tensor %q: size %d, TensorSize %d, %v", ti.Name, ti.Size, size, err)
			}
			if ti.Offset%file.Alignment != 0 {
				t.Fatalf("tensor %q: offset %d not aligned", ti.Name, ti.Offset)
			}
			if got, ok := file.Tensor(ti.Name); !ok || got != ti {
				t.Fatalf("Tensor(%q) does not find it", ti.Name)
			}
		}
		for _, kv := range file.KV {
			if v, ok := file.Get(kv.Key); !ok || !reflect.DeepEqual(v.Slice(), kv.Value.Slice()) || v.Type != kv.Value.Type {
				t.Fatalf("Get(%q) differs from the KV list", kv.Key)
			}
		}

		once, ok := rewrite(t, file)
		if !ok {
			return
		}
		again, err := gguf.Parse(once)
		if err != nil {
			t.Fatalf("the rewritten file does not parse: %v", err)
		}
		if twice, _ := rewrite(t, again); !bytes.Equal(once, twice) {
			t.Fatal("writing the rewritten file again changes it")
		}
	})
}

// rewrite writes a parsed file again with the Writer. It reports false for
// the files the Writer refuses to make (an empty tensor name).
func rewrite(t *testing.T, file *gguf.File) ([]byte, bool) {
	w := gguf.NewWriter()
	for _, kv := range file.KV {
		w.Set(kv.Key, kv.Value)
	}
	for i := range file.Tensors {
		ti := &file.Tensors[i]
		if ti.Name == "" {
			return nil, false
		}
		if err := w.AddTensor(ti.Name, ti.Type, ti.Shape, file.TensorData(ti)); err != nil {
			t.Fatalf("the Writer refuses a tensor the reader accepted: %v", err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatalf("the Writer refuses metadata the reader accepted: %v", err)
	}
	return buf.Bytes(), true
}
