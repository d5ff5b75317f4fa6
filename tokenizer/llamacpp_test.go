package tokenizer_test

import (
	"fmt"
	"slices"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/llamacpp"
	"llamago/tokenizer"
)

// Live comparison with llama.cpp's own tokenizer (libllama through the
// llamacpp harness) on generated strings.

func openLlamaCpp(t *testing.T) *llamacpp.Lib {
	t.Helper()
	lib, err := llamacpp.Open(testenv.RequireLlamaCpp(t))
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func loadLlamaCppVocab(t *testing.T, lib *llamacpp.Lib, path string) *llamacpp.Model {
	t.Helper()
	m, err := lib.LoadModel(path, llamacpp.ModelOptions{VocabOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

var (
	encodeCombos = []tokenizer.EncodeOptions{{}, {AddSpecial: true}, {ParseSpecial: true}, {AddSpecial: true, ParseSpecial: true}}
	decodeCombos = []tokenizer.DecodeOptions{{}, {Special: true}, {RemoveSpecial: true}, {Special: true, RemoveSpecial: true}}
)

// compareWithLlamaCpp encodes every text with every option combination
// with both tokenizers and requires the same ids, then decodes the ids
// with every decode option combination and requires the same text.
// It returns the number of encodings compared.
func compareWithLlamaCpp(t *testing.T, tok *tokenizer.Tokenizer, m *llamacpp.Model, texts []string) int {
	t.Helper()
	failures, compared := 0, 0
	fail := func(format string, args ...any) {
		failures++
		if failures <= 15 {
			t.Errorf(format, args...)
		}
	}
	for _, s := range texts {
		for _, o := range encodeCombos {
			want, err := m.Tokenize(s, o.AddSpecial, o.ParseSpecial)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tok.Encode(s, o)
			if err != nil {
				fail("Encode(%q, %+v): %v", s, o, err)
				continue
			}
			compared++
			if !slices.Equal(got, want) {
				fail("Encode(%q, %+v)\n got %v\nwant %v (llama.cpp)", s, o, got, want)
				continue
			}
			for _, d := range decodeCombos {
				if g, w := tok.DecodeWith(got, d), m.Detokenize(got, d.RemoveSpecial, d.Special); g != w {
					fail("DecodeWith(%v, %+v) = %q, llama.cpp %q", got, d, g, w)
				}
			}
		}
	}
	if failures > 0 {
		t.Errorf("%d mismatches in total", failures)
	}
	return compared
}

// compareVocabWithLlamaCpp checks every token's piece and the special
// ids.
func compareVocabWithLlamaCpp(t *testing.T, tok *tokenizer.Tokenizer, m *llamacpp.Model) {
	t.Helper()
	if tok.NumTokens() != m.NVocab() {
		t.Fatalf("NumTokens = %d, llama.cpp %d", tok.NumTokens(), m.NVocab())
	}
	for _, c := range []struct {
		name      string
		got, want int32
	}{{"BOS", tok.BOS(), m.BOS()}, {"EOS", tok.EOS(), m.EOS()}, {"EOT", tok.EOT(), m.EOT()}} {
		if c.got != c.want {
			t.Errorf("%s = %d, llama.cpp %d", c.name, c.got, c.want)
		}
	}
	bad := 0
	for id := int32(0); id < int32(tok.NumTokens()); id++ {
		for _, special := range []bool{false, true} {
			if g, w := tok.TokenPiece(id, special), m.TokenToPiece(id, special); g != w {
				if bad++; bad <= 10 {
					t.Errorf("TokenPiece(%d %q, %v) = %q, llama.cpp %q", id, tok.TokenText(id), special, g, w)
				}
			}
		}
		if g, w := tok.IsEOG(id), m.IsEOG(id); g != w {
			if bad++; bad <= 10 {
				t.Errorf("IsEOG(%d %q) = %v, llama.cpp %v", id, tok.TokenText(id), g, w)
			}
		}
	}
}

func TestLlamaCppSPM(t *testing.T) {
	lib := openLlamaCpp(t)
	texts := generatedStrings(400)
	for _, a := range []testenv.Asset{testenv.LlamaSPMVocab, testenv.Stories260KGGUF} {
		t.Run(a.Path, func(t *testing.T) {
			tok := loadGGUF(t, a)
			m := loadLlamaCppVocab(t, lib, testenv.Path(t, a))
			compareVocabWithLlamaCpp(t, tok, m)
			n := compareWithLlamaCpp(t, tok, m, texts)
			t.Logf("%d strings, %d encodings compared", len(texts), n)
		})
	}
}

// TestLlamaCppSPMAddedTokens adds tokens to the llama-spm vocabulary the
// way chat fine-tunes do: <tool> user-defined (always split out, rendered
// verbatim), <|im_start|> control, and <|im_end|> typed user-defined,
// which llama.cpp turns into a control end-of-generation token by its
// text.
func TestLlamaCppSPMAddedTokens(t *testing.T) {
	lib := openLlamaCpp(t)
	f, err := gguf.Open(testenv.Path(t, testenv.LlamaSPMVocab))
	if err != nil {
		t.Fatal(err)
	}
	v, err := tokenizer.VocabFromGGUF(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []struct {
		text string
		typ  tokenizer.TokenType
	}{{"<tool>", tokenizer.TypeUserDefined}, {"<|im_start|>", tokenizer.TypeControl}, {"<|im_end|>", tokenizer.TypeUserDefined}} {
		v.Tokens = append(v.Tokens, a.text)
		v.Types = append(v.Types, a.typ)
		v.Scores = append(v.Scores, 0)
	}
	tok, err := tokenizer.New(v)
	if err != nil {
		t.Fatal(err)
	}
	path := writeVocabGGUF(t, v)
	m := loadLlamaCppVocab(t, lib, path)
	compareVocabWithLlamaCpp(t, tok, m)
	n := compareWithLlamaCpp(t, tok, m, generatedStrings(400))
	if !tok.IsEOG(int32(len(v.Tokens)-1)) || !tok.IsControl(int32(len(v.Tokens)-1)) {
		t.Error("<|im_end|> is not a control end-of-generation token")
	}
	t.Logf("%d encodings compared", n)
}

// TestTinyLlamaChatPrompt tokenizes TinyLlama's chat prompt for the
// message "1" (Zephyr template) with BOS and special tokens parsed.
func TestTinyLlamaChatPrompt(t *testing.T) {
	lib := openLlamaCpp(t)
	tok := loadGGUF(t, testenv.LlamaSPMVocab)
	m := loadLlamaCppVocab(t, lib, testenv.Path(t, testenv.LlamaSPMVocab))
	const prompt = "<|user|>\n1</s>\n<|assistant|>\n"
	opts := tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: true}
	got, err := tok.Encode(prompt, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.Tokenize(prompt, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Encode(%q)\n got %v\nwant %v (llama.cpp)", prompt, got, want)
	}
	var pieces []string
	for _, id := range got {
		pieces = append(pieces, fmt.Sprintf("%d:%q", id, tok.TokenPiece(id, true)))
	}
	t.Logf("%q -> %v", prompt, pieces)
}
