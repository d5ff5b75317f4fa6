package tokenizer_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"llamago/internal/testenv"
	"llamago/tokenizer"
)

// FuzzEncode checks that encoding never fails or panics on any input, that
// ids stay in range, that streaming decode agrees with Decode, and that
// decoding gives back the text where llama.cpp's semantics promise it:
// valid UTF-8 without a literal ▁ (which decodes as a space), control
// tokens rendered. With the SentencePiece-style vocabularies the leading
// space Encode adds is the one Decode strips.
func FuzzEncode(f *testing.F) {
	for _, s := range corpusPieces {
		f.Add(s, false)
	}
	f.Add("<|user|>\n1</s>\n<|assistant|>\n", true)
	spm := loadGGUF(f, testenv.LlamaSPMVocab)
	stories := loadGGUF(f, testenv.Stories260KGGUF)
	bpe, err := tokenizer.New(synthBPEVocab("qwen2")) // no space cleanup when decoding
	if err != nil {
		f.Fatal(err)
	}
	toks := map[string]*tokenizer.Tokenizer{"llama-spm": spm, "stories260K": stories, "bpe": bpe}
	f.Fuzz(func(t *testing.T, s string, parseSpecial bool) {
		for name, tok := range toks {
			ids, err := tok.Encode(s, tokenizer.EncodeOptions{AddSpecial: true, ParseSpecial: parseSpecial})
			if err != nil {
				t.Fatalf("%s: Encode(%q): %v", name, s, err)
			}
			for _, id := range ids {
				if id < 0 || int(id) >= tok.NumTokens() {
					t.Fatalf("%s: Encode(%q) gave id %d", name, s, id)
				}
			}
			checkStream(t, tok, ids, tokenizer.DecodeOptions{Special: true})
			if parseSpecial || !utf8.ValidString(s) || strings.Contains(s, "▁") {
				continue
			}
			plain, _ := tok.Encode(s, tokenizer.EncodeOptions{})
			if got := tok.DecodeWith(plain, tokenizer.DecodeOptions{Special: true}); got != s {
				t.Errorf("%s: Decode(Encode(%q)) = %q (ids %v)", name, s, got, plain)
			}
		}
	})
}
