package tokenizer_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/tokenizer"
)

// loadGGUF builds the tokenizer of a shared GGUF asset.
func loadGGUF(t testing.TB, a testenv.Asset) *tokenizer.Tokenizer {
	t.Helper()
	f, err := gguf.Open(testenv.Path(t, a))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// readVectors reads llama.cpp's tokenizer test vectors: inputs separated
// by "\n__ggml_vocab_test__\n", one line of ids per input.
func readVectors(t *testing.T, inp, out testenv.Asset) ([]string, [][]int32) {
	t.Helper()
	rawIn, err := os.ReadFile(testenv.Path(t, inp))
	if err != nil {
		t.Fatal(err)
	}
	rawOut, err := os.ReadFile(testenv.Path(t, out))
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	var inputs []string
	for s := string(rawIn); s != ""; {
		i := strings.Index(s, sep)
		if i < 0 {
			inputs = append(inputs, s)
			break
		}
		inputs = append(inputs, s[:i])
		s = s[i+len(sep):]
	}
	lines := strings.Split(strings.TrimSuffix(string(rawOut), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("%d inputs but %d output lines", len(inputs), len(lines))
	}
	want := make([][]int32, len(lines))
	for i, l := range lines {
		for _, f := range strings.Fields(l) {
			id, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("output line %d: %v", i+1, err)
			}
			want[i] = append(want[i], int32(id))
		}
	}
	return inputs, want
}

func TestLlamaSPMVectors(t *testing.T) {
	tok := loadGGUF(t, testenv.LlamaSPMVocab)
	inputs, want := readVectors(t, testenv.LlamaSPMInp, testenv.LlamaSPMOut)
	for i, in := range inputs {
		got, err := tok.Encode(in, tokenizer.EncodeOptions{})
		if err != nil {
			t.Errorf("Encode(%q): %v", in, err)
			continue
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", in, got, want[i])
		}
	}
	t.Logf("%d vectors", len(inputs))
}
