package tokenizer_test

import (
	"strings"
	"testing"

	"llamago/internal/testenv"
	"llamago/tokenizer"
)

// benchText is about 10 KB of mixed English prose, code and other
// scripts.
func benchText() string {
	var b strings.Builder
	for _, s := range generatedStrings(400)[120:] {
		if b.Len() > 10_000 {
			break
		}
		b.WriteString(s)
		b.WriteString(" Once upon a time, there was a little girl named Lily. She loved to play outside.\n")
	}
	return b.String()
}

func benchEncode(b *testing.B, tok *tokenizer.Tokenizer) {
	text := benchText()
	b.SetBytes(int64(len(text)))
	var n int
	for b.Loop() {
		ids, err := tok.Encode(text, tokenizer.EncodeOptions{AddSpecial: true})
		if err != nil {
			b.Fatal(err)
		}
		n = len(ids)
	}
	b.ReportMetric(float64(n), "tokens")
}

func BenchmarkEncodeSPM(b *testing.B) { benchEncode(b, loadGGUF(b, testenv.LlamaSPMVocab)) }

func BenchmarkEncodeBPE(b *testing.B) {
	for _, pre := range []string{"llama-bpe", "default"} {
		tok, err := tokenizer.New(synthBPEVocab(pre))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(pre, func(b *testing.B) { benchEncode(b, tok) })
	}
}

func BenchmarkEncodeHF(b *testing.B) {
	data, _ := readTinyStoriesB(b)
	tok, err := tokenizer.FromHFTokenizerJSON(data)
	if err != nil {
		b.Fatal(err)
	}
	benchEncode(b, tok)
}

func BenchmarkDecodeSPM(b *testing.B) {
	tok := loadGGUF(b, testenv.LlamaSPMVocab)
	ids, _ := tok.Encode(benchText(), tokenizer.EncodeOptions{})
	for b.Loop() {
		tok.Decode(ids)
	}
}
