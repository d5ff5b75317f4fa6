package gguf_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/tensor"
)

func put32(b []byte, at int, x uint32) { le.PutUint32(b[at:], x) }
func put64(b []byte, at int, x uint64) { le.PutUint64(b[at:], x) }

// deepArray builds a file with one key whose value is depth arrays nested
// in one another, the innermost an empty array of uint32.
func deepArray(depth int) []byte {
	r := new(raw).header(3, 0, 1).str("deep").u32(uint32(gguf.TypeArray))
	for range depth - 1 {
		r.u32(uint32(gguf.TypeArray)).u64(1)
	}
	return r.u32(uint32(gguf.TypeUint32)).u64(0).b
}

func TestParseRejects(t *testing.T) {
	// Each case breaks one field of a valid file. want is the error's
	// message, or a part of it; at, when set, gives the byte offset the
	// FormatError must report.
	tests := []struct {
		name   string
		mutate func(t testing.TB, b []byte) []byte
		want   string
		is     error
		at     func(t testing.TB, valid []byte) int
	}{
		{
			name:   "bad magic",
			mutate: func(_ testing.TB, b []byte) []byte { b[0] = 'X'; return b },
			want:   `gguf: not a GGUF file: it starts with "XGUF", not "GGUF"`,
			is:     gguf.ErrNotGGUF,
		},
		{
			name:   "shorter than the magic",
			mutate: func(_ testing.TB, b []byte) []byte { return b[:3] },
			want:   `not a GGUF file: it starts with "GGU"`,
			is:     gguf.ErrNotGGUF,
		},
		{
			name:   "version 1",
			mutate: func(_ testing.TB, b []byte) []byte { put32(b, 4, 1); return b },
			want:   "gguf: version 1 files are not supported (llama.cpp dropped them); convert the file again",
			is:     gguf.ErrVersion1,
		},
		{
			name:   "big-endian",
			mutate: func(_ testing.TB, b []byte) []byte { put32(b, 4, 0x03000000); return b },
			want:   "big-endian",
			is:     gguf.ErrBigEndian,
		},
		{
			name:   "version 0",
			mutate: func(_ testing.TB, b []byte) []byte { put32(b, 4, 0); return b },
			want:   "gguf: version at byte 4: version 0 is not one llamago reads (2 and 3)",
		},
		{
			name:   "version 4",
			mutate: func(_ testing.TB, b []byte) []byte { put32(b, 4, 4); return b },
			want:   "gguf: version at byte 4: version 4 is not one llamago reads (2 and 3)",
		},
		{
			name:   "huge tensor count",
			mutate: func(_ testing.TB, b []byte) []byte { put64(b, 8, 1<<40); return b },
			want:   "gguf: tensor count at byte 8: 1099511627776 items of at least 32 bytes each cannot fit",
			is:     gguf.ErrTruncated,
		},
		{
			name:   "negative tensor count",
			mutate: func(_ testing.TB, b []byte) []byte { put64(b, 8, 1<<63); return b },
			want:   "gguf: tensor count at byte 8: -9223372036854775808 is negative as an int64",
		},
		{
			name:   "huge key-value count",
			mutate: func(_ testing.TB, b []byte) []byte { put64(b, 16, 1<<40); return b },
			want:   "gguf: key-value count at byte 16: 1099511627776 items",
			is:     gguf.ErrTruncated,
		},
		{
			name: "counts that fit apart but not together",
			mutate: func(_ testing.TB, b []byte) []byte {
				left := uint64(len(b) - 24)
				put64(b, 8, left/32)
				put64(b, 16, left/14)
				return b
			},
			want: "gguf: tensor and key-value counts at byte 8:",
			is:   gguf.ErrTruncated,
		},
		{
			name:   "huge key length",
			mutate: func(_ testing.TB, b []byte) []byte { put64(b, 24, 1<<62); return b },
			want:   "gguf: key 0: name at byte 24: string length 4611686018427387904 exceeds the",
			is:     gguf.ErrTruncated,
		},
		{
			name: "huge string value",
			mutate: func(t testing.TB, b []byte) []byte {
				put64(b, after(t, b, "general.architecture")+4, 1<<62)
				return b
			},
			want: `gguf: key 0 ("general.architecture"): string value at byte`,
			is:   gguf.ErrTruncated,
			at:   func(t testing.TB, b []byte) int { return after(t, b, "general.architecture") + 4 },
		},
		{
			name:   "invalid value type",
			mutate: func(t testing.TB, b []byte) []byte { put32(b, after(t, b, "test.aaa"), 13); return b },
			want:   `gguf: key 1 ("test.aaa"): value type at byte`,
			at:     func(t testing.TB, b []byte) int { return after(t, b, "test.aaa") },
		},
		{
			name:   "duplicate key",
			mutate: func(t testing.TB, b []byte) []byte { copy(b[after(t, b, "test.bbb")-3:], "aaa"); return b },
			want:   `gguf: key 2 ("test.aaa") at byte`,
			at:     func(t testing.TB, b []byte) int { return after(t, b, "test.bbb") - 16 },
		},
		{
			name: "huge array count",
			mutate: func(t testing.TB, b []byte) []byte {
				put64(b, after(t, b, "test.tokens")+8, 1<<40)
				return b
			},
			want: `gguf: key 3 ("test.tokens"): array length at byte`,
			is:   gguf.ErrTruncated,
			at:   func(t testing.TB, b []byte) int { return after(t, b, "test.tokens") + 8 },
		},
		{
			name: "invalid array element type",
			mutate: func(t testing.TB, b []byte) []byte {
				put32(b, after(t, b, "test.tokens")+4, 99)
				return b
			},
			want: `gguf: key 3 ("test.tokens"): array element type at byte`,
		},
		{
			name: "huge string in an array",
			mutate: func(t testing.TB, b []byte) []byte {
				put64(b, after(t, b, "test.tokens")+16, 1<<50)
				return b
			},
			want: `gguf: key 3 ("test.tokens"): element 0 at byte`,
			is:   gguf.ErrTruncated,
			at:   func(t testing.TB, b []byte) int { return after(t, b, "test.tokens") + 16 },
		},
		{
			name: "huge count of a nested array",
			mutate: func(t testing.TB, b []byte) []byte {
				// outer type, element type, count; inner element type, count
				put64(b, after(t, b, "test.nested")+4+4+8+4, 1<<40)
				return b
			},
			want: `gguf: key 4 ("test.nested"): element 0: array length at byte`,
			is:   gguf.ErrTruncated,
		},
		{
			name:   "arrays nested too deep",
			mutate: func(testing.TB, []byte) []byte { return deepArray(9) },
			want:   `gguf: key 0 ("deep"): element 0: element 0: element 0: element 0: element 0: element 0: element 0: element 0: array at byte`,
		},
		{
			name:   "empty key",
			mutate: func(testing.TB, []byte) []byte { return new(raw).header(3, 0, 1).str("").u32(0).u64(0).b },
			want:   "gguf: key 0: name at byte 24: the key is empty",
		},
		{
			name: "tensor name too long",
			mutate: func(testing.TB, []byte) []byte {
				return new(raw).header(3, 1, 0).str(strings.Repeat("n", 64)).u32(1).u64(1).u32(0).u64(0).pad().b
			},
			want: "gguf: tensor info 0 (\"" + strings.Repeat("n", 64) + "\"): name at byte 24: 64 bytes long, ggml allows at most 63",
		},
		{
			name: "alignment not a power of two",
			mutate: func(t testing.TB, _ []byte) []byte {
				return withAlignment(t, func(b []byte, at int) { put32(b, at+4, 48) })
			},
			want: `gguf: key "general.alignment" at byte 53: alignment 48 is not a power of two`,
		},
		{
			name: "alignment zero",
			mutate: func(t testing.TB, _ []byte) []byte {
				return withAlignment(t, func(b []byte, at int) { put32(b, at+4, 0) })
			},
			want: `alignment 0 is not a power of two`,
		},
		{
			name: "alignment of another type",
			mutate: func(t testing.TB, _ []byte) []byte {
				return withAlignment(t, func(b []byte, at int) { put32(b, at, uint32(gguf.TypeInt32)) })
			},
			want: `gguf: key "general.alignment" at byte 53: type int32, want uint32`,
		},
		{
			name:   "duplicate tensor name",
			mutate: func(t testing.TB, b []byte) []byte { copy(b[after(t, b, "t1")-2:], "t0"); return b },
			want:   `gguf: tensor info 1 ("t0"): name at byte`,
			at:     func(t testing.TB, b []byte) int { return fieldsOf(t, b, "t1").name },
		},
		{
			name:   "no dimensions",
			mutate: func(t testing.TB, b []byte) []byte { put32(b, fieldsOf(t, b, "t0").nDims, 0); return b },
			want:   `gguf: tensor info 0 ("t0"): dimension count at byte`,
			at:     func(t testing.TB, b []byte) int { return fieldsOf(t, b, "t0").nDims },
		},
		{
			name:   "five dimensions",
			mutate: func(t testing.TB, b []byte) []byte { put32(b, fieldsOf(t, b, "t0").nDims, 5); return b },
			want:   `5, want 1 to 4`,
		},
		{
			name:   "negative dimension",
			mutate: func(t testing.TB, b []byte) []byte { put64(b, fieldsOf(t, b, "t0").dim0, 1<<63); return b },
			want:   `gguf: tensor info 0 ("t0"): dimension 0 at byte`,
			at:     func(t testing.TB, b []byte) int { return fieldsOf(t, b, "t0").dim0 },
		},
		{
			name: "element count overflow",
			mutate: func(t testing.TB, b []byte) []byte {
				f := fieldsOf(t, b, "t0")
				put64(b, f.dim0, 1<<32)
				put64(b, f.dim0+8, 1<<32)
				return b
			},
			want: `gguf: tensor info 0 ("t0"): dimension 1 at byte`,
			at:   func(t testing.TB, b []byte) int { return fieldsOf(t, b, "t0").dim0 + 8 },
		},
		{
			name: "byte size overflow",
			mutate: func(t testing.TB, b []byte) []byte {
				f := fieldsOf(t, b, "t0")
				put64(b, f.dim0, 1<<31)
				put64(b, f.dim0+8, 1<<31)
				return b
			},
			want: `gguf: tensor info 0 ("t0"): shape at byte`,
		},
		{
			name:   "row not whole blocks",
			mutate: func(t testing.TB, b []byte) []byte { put64(b, fieldsOf(t, b, "t1").dim0, 33); return b },
			want:   `33 elements per row are not a whole number of 32-element Q8_0 blocks`,
		},
		{
			name:   "removed type id",
			mutate: func(t testing.TB, b []byte) []byte { put32(b, fieldsOf(t, b, "t1").typ, 4); return b },
			want:   `gguf: tensor info 1 ("t1"): type at byte`,
			at:     func(t testing.TB, b []byte) int { return fieldsOf(t, b, "t1").typ },
		},
		{
			name:   "type id past the table",
			mutate: func(t testing.TB, b []byte) []byte { put32(b, fieldsOf(t, b, "t1").typ, 1000); return b },
			want:   `unknown ggml type id 1000`,
		},
		{
			name: "misaligned offset",
			mutate: func(t testing.TB, b []byte) []byte {
				at := fieldsOf(t, b, "t1").offset
				put64(b, at, le.Uint64(b[at:])+1)
				return b
			},
			want: `gguf: tensor info 1 ("t1"): offset at byte`,
			at:   func(t testing.TB, b []byte) int { return fieldsOf(t, b, "t1").offset },
		},
		{
			name:   "offset past the end",
			mutate: func(t testing.TB, b []byte) []byte { put64(b, fieldsOf(t, b, "t2").offset, 1<<40); return b },
			want:   `gguf: tensor info 2 ("t2"): offset at byte`,
			is:     gguf.ErrTruncated,
		},
		{
			name:   "size past the end",
			mutate: func(t testing.TB, b []byte) []byte { put64(b, fieldsOf(t, b, "t2").dim0, 1024); return b },
			want:   `data [128, 2176) runs past the end of the 160-byte data section`,
			is:     gguf.ErrTruncated,
		},
		{
			name: "no padding before the data section",
			mutate: func(testing.TB, []byte) []byte {
				return new(raw).header(3, 1, 0).str("t").u32(1).u64(0).u32(0).u64(0).b
			},
			want: "gguf: padding before the data section at byte 57: the data section would start at byte 64",
			is:   gguf.ErrTruncated,
		},
	}
	valid := sample(t)
	if _, err := gguf.Parse(valid); err != nil {
		t.Fatalf("the unbroken sample fails: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mutate(t, bytes.Clone(valid))
			f, err := gguf.Parse(b)
			if err == nil {
				t.Fatalf("Parse succeeded with %d tensors, want error %q", len(f.Tensors), tt.want)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q does not wrap %q", err, tt.is)
			}
			if tt.at != nil {
				var fe *gguf.FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("error %q is not a *FormatError", err)
				}
				if want := tt.at(t, valid); fe.Offset != int64(want) {
					t.Errorf("error at byte %d, want %d", fe.Offset, want)
				}
			}
		})
	}
}

// withAlignment writes a file whose only key is general.alignment = 64 and
// lets mutate change it; at is the offset of the value's type.
func withAlignment(t testing.TB, mutate func(b []byte, at int)) []byte {
	w := gguf.NewWriter()
	w.Set("general.alignment", gguf.Uint32(64))
	b := writeBytes(t, w)
	mutate(b, after(t, b, "general.alignment"))
	return b
}

func writeBytes(t testing.TB, w *gguf.Writer) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseExactMessage(t *testing.T) {
	b := sample(t)
	f := fieldsOf(t, b, "t1")
	put64(b, f.offset, 33)
	_, err := gguf.Parse(b)
	want := fmt.Sprintf(`gguf: tensor info 1 ("t1"): offset at byte %d: 33 is not a multiple of the alignment 32`, f.offset)
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestNestingLimit(t *testing.T) {
	f, err := gguf.Parse(deepArray(8))
	if err != nil {
		t.Fatalf("8 nested arrays: %v", err)
	}
	v, _ := f.Get("deep")
	for depth := 1; depth < 8; depth++ {
		vs, err := v.Values()
		if err != nil || len(vs) != 1 {
			t.Fatalf("depth %d: %v, %d elements", depth, err, len(vs))
		}
		v = vs[0]
	}
	if v.Elem != gguf.TypeUint32 || v.Len() != 0 {
		t.Errorf("innermost array is %s with %d elements, want an empty array of uint32", v.TypeName(), v.Len())
	}
}

// Every truncation of a valid file is an error, except those that only
// cut the padding after the last tensor's data, which llama.cpp accepts.
func TestParseTruncated(t *testing.T) {
	b := sample(t)
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Tensors[len(f.Tensors)-1]
	dataEnd := int(f.DataOffset + last.Offset + last.Size)
	for n := range len(b) {
		_, err := gguf.Parse(b[:n])
		if n >= dataEnd {
			if err != nil {
				t.Errorf("cut at %d, after the data ends at %d: %v", n, dataEnd, err)
			}
			continue
		}
		if err == nil {
			t.Fatalf("cut at %d of %d: no error", n, len(b))
		}
		var fe *gguf.FormatError
		switch {
		case errors.As(err, &fe):
			if fe.Offset < 0 || fe.Offset > int64(n) {
				t.Errorf("cut at %d: error offset %d outside the data: %v", n, fe.Offset, err)
			}
			if !errors.Is(err, gguf.ErrTruncated) {
				t.Errorf("cut at %d: %v does not wrap ErrTruncated", n, err)
			}
		case errors.Is(err, gguf.ErrNotGGUF):
			if n >= 4 {
				t.Errorf("cut at %d: %v", n, err)
			}
		default:
			t.Errorf("cut at %d: unexpected error %v", n, err)
		}
	}
}

func TestVersion2(t *testing.T) {
	b := sample(t)
	put32(b, 4, 2)
	f, err := gguf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 || len(f.Tensors) != 3 {
		t.Errorf("version %d, %d tensors; want 2, 3", f.Version, len(f.Tensors))
	}
}

func TestUnsupportedType(t *testing.T) {
	w := gguf.NewWriter()
	mustAdd(t, w, "blk.3.ffn_down.weight", tensor.IQ2_XXS, []uint64{256, 2}, 2*66)
	mustAdd(t, w, "blk.3.ffn_up.weight", tensor.Q4_K, []uint64{256, 2}, 2*144)
	f, err := gguf.Parse(writeBytes(t, w))
	if err != nil {
		t.Fatalf("a file with an IQ2_XXS tensor must parse: %v", err)
	}
	err = f.CheckSupported("blk.3.ffn_down.weight")
	const want = "tensor blk.3.ffn_down.weight has type IQ2_XXS, which llamago does not support yet"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	if !errors.Is(err, tensor.ErrUnsupported) {
		t.Errorf("%v does not wrap tensor.ErrUnsupported", err)
	}
	if err := f.CheckSupported("blk.3.ffn_up.weight"); err != nil {
		t.Errorf("Q4_K: %v", err)
	}
	if err := f.CheckSupported("missing"); err == nil {
		t.Error("no error for a missing tensor")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.gguf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.Open(empty); !errors.Is(err, gguf.ErrNotGGUF) {
		t.Errorf("empty file: %v, want ErrNotGGUF", err)
	}
	if _, err := gguf.Open(filepath.Join(dir, "absent.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v, want ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.gguf")
	b := sample(t)
	put32(b, 4, 1)
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := gguf.Open(bad); !errors.Is(err, gguf.ErrVersion1) {
		t.Errorf("version 1 file: %v", err)
	}
}

func TestStories260K(t *testing.T) {
	f, err := gguf.Open(testenv.Path(t, testenv.Stories260KGGUF))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if arch, err := f.String("general.architecture"); arch != "llama" || err != nil {
		t.Errorf("general.architecture = %q, %v", arch, err)
	}
	for key, want := range map[string]uint32{
		"llama.block_count":                 5,
		"llama.embedding_length":            64,
		"llama.attention.head_count":        8,
		"llama.attention.head_count_kv":     4,
		"tokenizer.ggml.bos_token_id":       1,
		"tokenizer.ggml.eos_token_id":       2,
		"tokenizer.ggml.unknown_token_id":   0,
		"llama.context_length":              2048,
		"llama.rope.dimension_count":        8,
		"tokenizer.ggml.seperator_token_id": 0xffffffff,
	} {
		if got, err := f.Uint32(key); got != want || err != nil {
			t.Errorf("%s = %d, %v; want %d", key, got, err, want)
		}
	}
	if tokens, err := f.Strings("tokenizer.ggml.tokens"); err != nil || len(tokens) != 512 || tokens[1] != "<s>" || tokens[3] != "<0x00>" {
		t.Errorf("tokens: %d, %v", len(tokens), err)
	}
	if f.Version != 3 || f.Alignment != 32 || f.Size() != 1185376 || f.DataOffset%32 != 0 {
		t.Errorf("version %d, alignment %d, size %d, data offset %d", f.Version, f.Alignment, f.Size(), f.DataOffset)
	}
	// 3 global tensors and 9 per layer.
	if len(f.Tensors) != 3+5*9 {
		t.Errorf("%d tensors, want 48", len(f.Tensors))
	}
	emb, ok := f.Tensor("token_embd.weight")
	if !ok || emb.Type != tensor.F32 || fmt.Sprint(emb.Shape) != "[64 512]" || emb.Size != 64*512*4 {
		t.Fatalf("token_embd.weight: %+v", emb)
	}
	out, ok := f.Tensor("output.weight")
	if !ok {
		t.Fatal("no output.weight")
	}
	// The shared README says the converter stored output.weight as a copy of
	// the embedding.
	if !bytes.Equal(f.TensorData(emb), f.TensorData(out)) {
		t.Error("output.weight differs from token_embd.weight")
	}
	var total uint64
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		if err := ti.CheckSupported(); err != nil {
			t.Error(err)
		}
		if uint64(len(f.TensorData(ti))) != ti.Size {
			t.Errorf("%s: %d bytes of data, want %d", ti.Name, len(f.TensorData(ti)), ti.Size)
		}
		total += ti.Size
	}
	// The model has about 260K float32 parameters.
	if params := total / 4; params < 250_000 || params > 300_000 {
		t.Errorf("%d parameters", params)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestVocabOnly(t *testing.T) {
	f, err := gguf.Open(testenv.Path(t, testenv.LlamaSPMVocab))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != 0 {
		t.Errorf("%d tensors, want none", len(f.Tensors))
	}
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil || len(tokens) != 32000 {
		t.Fatalf("%d tokens, %v", len(tokens), err)
	}
	// Facts of the Llama 2 vocabulary.
	for id, want := range map[int]string{0: "<unk>", 1: "<s>", 2: "</s>", 3: "<0x00>", 258: "<0xFF>", 29871: "▁"} {
		if tokens[id] != want {
			t.Errorf("token %d = %q, want %q", id, tokens[id], want)
		}
	}
	scores, err := f.Float32s("tokenizer.ggml.scores")
	if err != nil || len(scores) != 32000 {
		t.Errorf("%d scores, %v", len(scores), err)
	}
	types, err := f.Int32s("tokenizer.ggml.token_type")
	if err != nil || len(types) != 32000 || types[0] != 2 || types[1] != 3 || types[3] != 6 || types[1000] != 1 {
		t.Errorf("token types: %d, %v", len(types), err)
	}
	if add, err := f.Bool("tokenizer.ggml.add_bos_token"); !add || err != nil {
		t.Errorf("add_bos_token = %v, %v", add, err)
	}
}
