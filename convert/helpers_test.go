package convert

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/llamacpp"
)

// openGGUF opens a GGUF file for the test's duration.
func openGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// valuesEqual compares two metadata values exactly: floats by their bits
// (so -0 differs from 0, as the scores of tok512.bin do).
func valuesEqual(a, b gguf.Value) bool {
	if a.Type != b.Type || a.Elem != b.Elem {
		return false
	}
	if a.Type != gguf.TypeArray {
		return reflect.DeepEqual(a, b)
	}
	if fa, ok := a.Slice().([]float32); ok {
		fb := b.Slice().([]float32)
		if len(fa) != len(fb) {
			return false
		}
		for i := range fa {
			if math.Float32bits(fa[i]) != math.Float32bits(fb[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a.Slice(), b.Slice())
}

// convertStories converts stories260K.bin with tok512.bin into a
// temporary file and returns its path.
func convertStories(t *testing.T, opts Options) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "stories260K.gguf")
	err := Llama2C(testenv.Path(t, testenv.Stories260KBin), testenv.Path(t, testenv.Tok512Bin), out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tinyStoriesDir returns the TinyStories-656K directory after checking its
// files' digests.
func tinyStoriesDir(t *testing.T) string {
	t.Helper()
	testenv.Path(t, testenv.TinyStoriesTok)
	return filepath.Dir(testenv.Path(t, testenv.TinyStories656K))
}

func openLlamaCpp(t *testing.T) *llamacpp.Lib {
	t.Helper()
	lib, err := llamacpp.Open(testenv.RequireLlamaCpp(t))
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

// llamaCppGreedy loads the GGUF file at path with llama.cpp, feeds it the
// prompt ids and returns the n ids it then picks greedily (argmax of the
// logits, ties to the lowest id), stopping early after an end-of-generation
// token. It is the reference that llamago's own generation should match.
func llamaCppGreedy(t *testing.T, path string, prompt []int32, n int) []int32 {
	t.Helper()
	m, err := openLlamaCpp(t).LoadModel(path, llamacpp.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, err := m.NewContext(llamacpp.ContextOptions{NCtx: len(prompt) + n + 1, NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	var out []int32
	next, pos := prompt, int32(0)
	for len(out) < n {
		if err := ctx.Decode(next, pos, false); err != nil {
			t.Fatal(err)
		}
		pos += int32(len(next))
		id := testenv.Argmax(ctx.Logits(-1))
		out = append(out, id)
		if m.IsEOG(id) {
			break
		}
		next = []int32{id}
	}
	return out
}

func mkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }
