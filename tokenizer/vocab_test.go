package tokenizer_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/tokenizer"
)

func smallSPM() tokenizer.Vocab {
	v := tokenizer.Defaults(tokenizer.ModelLlama, "")
	v.Tokens = []string{"<unk>", "<s>", "</s>", "▁a", "a", "▁"}
	v.Types = []tokenizer.TokenType{2, 3, 3, 1, 1, 1}
	v.Scores = []float32{0, 0, 0, -1, -2, -3}
	return v
}

func TestNewRejectsBadVocabularies(t *testing.T) {
	tests := []struct {
		name   string
		change func(v *tokenizer.Vocab)
		want   string
	}{
		{"no tokens", func(v *tokenizer.Vocab) { v.Tokens, v.Types, v.Scores = nil, nil, nil }, "no tokens"},
		{"duplicate", func(v *tokenizer.Vocab) { v.Tokens[4] = "▁a" }, "same text"},
		{"BOS out of range", func(v *tokenizer.Vocab) { v.BOS = 6 }, "BOS id 6"},
		{"negative EOS", func(v *tokenizer.Vocab) { v.EOS = -5 }, "EOS id -5"},
		{"AddBOS without BOS", func(v *tokenizer.Vocab) { v.BOS = tokenizer.NoToken }, "no BOS"},
		{"short scores", func(v *tokenizer.Vocab) { v.Scores = v.Scores[:3] }, "3 scores"},
		{"short types", func(v *tokenizer.Vocab) { v.Types = v.Types[:3] }, "3 token types"},
		{"unknown model", func(v *tokenizer.Vocab) { v.Model = "bert" }, `"bert" is not supported`},
		{"unknown pre", func(v *tokenizer.Vocab) { v.Model, v.Pre, v.AddBOS = tokenizer.ModelGPT2, "tekken", false }, `"tekken" is not implemented`},
	}
	for _, tt := range tests {
		v := smallSPM()
		tt.change(&v)
		_, err := tokenizer.New(v)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

func TestSPMSmall(t *testing.T) {
	v := smallSPM()
	tok, err := tokenizer.New(v)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		opts tokenizer.EncodeOptions
		want []int32
	}{
		// "▁a" scores -1, better than nothing: " a" -> ▁a.
		{"a", tokenizer.EncodeOptions{}, []int32{3}},
		{"a", tokenizer.EncodeOptions{AddSpecial: true}, []int32{1, 3}},
		// No byte tokens: "b" becomes <unk> (llama.cpp would abort).
		{"ab", tokenizer.EncodeOptions{}, []int32{3, 0}},
		// "</s>" splits out only with ParseSpecial, and the text after it
		// gets the space prefix again.
		{"a</s>a", tokenizer.EncodeOptions{ParseSpecial: true}, []int32{3, 2, 3}},
		{"", tokenizer.EncodeOptions{AddSpecial: true}, []int32{1}},
	}
	for _, tt := range tests {
		got, err := tok.Encode(tt.text, tt.opts)
		if err != nil {
			t.Errorf("Encode(%q): %v", tt.text, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q, %+v) = %v, want %v", tt.text, tt.opts, got, tt.want)
		}
	}
	v.UNK = tokenizer.NoToken
	noUnk, err := tokenizer.New(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noUnk.Encode("ab", tokenizer.EncodeOptions{}); err == nil {
		t.Error("Encode without byte tokens or <unk> succeeded")
	}
	if !tok.IsEOG(2) || tok.IsEOG(1) || !tok.IsControl(1) || tok.IsControl(3) {
		t.Error("EOG/control attributes wrong")
	}
	if got := tok.TokenPiece(2, false) + tok.TokenPiece(2, true) + tok.TokenPiece(99, true); got != "</s>" {
		t.Errorf("pieces of </s>: %q", got)
	}
}

// ggufFile writes v's tokenizer keys (and extra keys) to an in-memory
// GGUF file and parses it back.
func ggufFile(t *testing.T, v tokenizer.Vocab, extra map[string]gguf.Value, drop ...string) *gguf.File {
	t.Helper()
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	v.SetGGUF(w)
	for k, x := range extra {
		w.Set(k, x)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if len(drop) > 0 {
		// Rewrite without the dropped keys.
		f, err := gguf.Parse(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		w = gguf.NewWriter()
	kvs:
		for _, kv := range f.KV {
			for _, d := range drop {
				if kv.Key == d {
					continue kvs
				}
			}
			w.Set(kv.Key, kv.Value)
		}
		buf.Reset()
		if _, err := w.WriteTo(&buf); err != nil {
			t.Fatal(err)
		}
	}
	f, err := gguf.Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFromGGUFDefaultsAndErrors(t *testing.T) {
	v := smallSPM()
	// Defaults apply when the file leaves keys out: SentencePiece adds BOS
	// and a space prefix.
	f := ggufFile(t, v, nil, "tokenizer.ggml.bos_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.scores")
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	got := tok.Vocab()
	if got.BOS != 1 || !got.AddBOS || !got.AddSpacePrefix || got.Scores != nil {
		t.Errorf("defaults: BOS %d AddBOS %v AddSpacePrefix %v scores %v", got.BOS, got.AddBOS, got.AddSpacePrefix, got.Scores)
	}
	// An id beyond the vocabulary is ignored (llama.cpp keeps the default),
	// as stories260K's padding id 4294967295 is.
	f = ggufFile(t, v, map[string]gguf.Value{"tokenizer.ggml.padding_token_id": gguf.Uint32(1<<32 - 1),
		"tokenizer.ggml.add_space_prefix": gguf.Bool(false), "tokenizer.ggml.scores": gguf.Int32s([]int32{0, 0, 0, -1, -2, -3})})
	if tok, err = tokenizer.FromGGUF(f); err != nil {
		t.Fatal(err)
	}
	got = tok.Vocab()
	if got.PAD != tokenizer.NoToken || got.AddSpacePrefix || got.Scores[4] != -2 {
		t.Errorf("PAD %d AddSpacePrefix %v scores %v", got.PAD, got.AddSpacePrefix, got.Scores)
	}
	if ids, _ := tok.Encode("a", tokenizer.EncodeOptions{}); !slices.Equal(ids, []int32{4}) {
		t.Errorf("without space prefix: Encode(a) = %v, want [4]", ids)
	}

	errTests := []struct {
		name  string
		extra map[string]gguf.Value
		drop  []string
		want  string
	}{
		{"no model", nil, []string{"tokenizer.ggml.model"}, "tokenizer.ggml.model"},
		{"no tokens", nil, []string{"tokenizer.ggml.tokens"}, "tokenizer.ggml.tokens"},
		{"bert", map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("bert")}, nil, `"bert" is not supported`},
		{"gpt2 without merges", map[string]gguf.Value{"tokenizer.ggml.model": gguf.String("gpt2"), "tokenizer.ggml.pre": gguf.String("gpt-2")}, nil, "tokenizer.ggml.merges"},
		{"short types", map[string]gguf.Value{"tokenizer.ggml.token_type": gguf.Int32s([]int32{1})}, nil, "token_type has 1 entries"},
		{"string scores", map[string]gguf.Value{"tokenizer.ggml.scores": gguf.Strings([]string{"x"})}, nil, "tokenizer.ggml.scores"},
		{"bool BOS", map[string]gguf.Value{"tokenizer.ggml.bos_token_id": gguf.Bool(true)}, nil, "bos_token_id"},
	}
	for _, tt := range errTests {
		_, err := tokenizer.FromGGUF(ggufFile(t, v, tt.extra, tt.drop...))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}

// TestHFByteLevel builds tokenizer.json files in the byte-level shape from
// the synthetic vocabulary and checks that they tokenize like the same
// vocabulary given directly, with the pre-tokenizer recognised.
func TestHFByteLevel(t *testing.T) {
	v := synthBPEVocab("gpt-2")
	vocab := map[string]int{}
	var added []map[string]any
	for id, text := range v.Tokens {
		if v.Types[id] == tokenizer.TypeControl || v.Types[id] == tokenizer.TypeUserDefined {
			added = append(added, map[string]any{"id": id, "content": text, "special": v.Types[id] == tokenizer.TypeControl, "normalized": false})
		}
		vocab[text] = id
	}
	pairs := make([][]string, len(v.Merges))
	for i, m := range v.Merges {
		a, b, _ := strings.Cut(m, " ")
		pairs[i] = []string{a, b}
	}
	shapes := []struct {
		pre          string
		preTokenizer any
	}{
		{"gpt-2", map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}},
		{"llama-bpe", map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`}, "behavior": "Isolated"},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}}}},
	}
	for _, sh := range shapes {
		for _, merges := range []any{v.Merges, pairs} {
			tj, err := json.Marshal(map[string]any{
				"added_tokens":  added,
				"pre_tokenizer": sh.preTokenizer,
				"decoder":       map[string]any{"type": "ByteLevel"},
				"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "byte_fallback": false},
			})
			if err != nil {
				t.Fatal(err)
			}
			cfg := `{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}`
			hf, err := tokenizer.FromHF(tokenizer.HFFiles{TokenizerJSON: tj, TokenizerConfig: []byte(cfg)})
			if err != nil {
				t.Fatal(err)
			}
			got := hf.Vocab()
			if got.Model != tokenizer.ModelGPT2 || got.Pre != sh.pre || got.EOS != v.EOS || len(got.Merges) != len(v.Merges) {
				t.Fatalf("%s: model %q pre %q EOS %d merges %d", sh.pre, got.Model, got.Pre, got.EOS, len(got.Merges))
			}
			direct := synthBPEVocab(sh.pre)
			want, err := tokenizer.New(direct)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range generatedStrings(200) {
				a, _ := hf.Encode(s, tokenizer.EncodeOptions{ParseSpecial: true})
				b, _ := want.Encode(s, tokenizer.EncodeOptions{ParseSpecial: true})
				if !slices.Equal(a, b) {
					t.Fatalf("%s: Encode(%q) = %v, want %v", sh.pre, s, a, b)
				}
			}
		}
	}
}
