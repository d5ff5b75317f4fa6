package tokenizer_test

import (
	"slices"
	"testing"

	"llamago/tokenizer"
)

// handBPE is a byte-level vocabulary small enough to work out by hand:
// ids 0..255 are the bytes (as GPT-2 runes, so byte b has id b), then one
// token per merge, in merge order.
func handBPE(t *testing.T, pre string, merges []string) *tokenizer.Tokenizer {
	t.Helper()
	runes := gpt2ByteRunes()
	var tokens []string
	for _, r := range runes {
		tokens = append(tokens, string(r))
	}
	for _, m := range merges {
		for i := 1; i < len(m); i++ {
			if m[i] == ' ' {
				tokens = append(tokens, m[:i]+m[i+1:])
				break
			}
		}
	}
	tokens = append(tokens, "<|endoftext|>")
	types := make([]tokenizer.TokenType, len(tokens))
	for i := range types {
		types[i] = tokenizer.TypeNormal
	}
	types[len(types)-1] = tokenizer.TypeControl
	v := tokenizer.Defaults(tokenizer.ModelGPT2, pre)
	v.Tokens, v.Types, v.Merges = tokens, types, merges
	v.BOS, v.EOS = int32(len(tokens)-1), int32(len(tokens)-1)
	tok, err := tokenizer.New(v)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestBPEByHand(t *testing.T) {
	// Merge results get ids 256, 257, ... in merge order.
	merges := []string{
		"H e",       // 256 He
		"l l",       // 257 ll
		"He ll",     // 258 Hell
		"Hell o",    // 259 Hello
		"Ġ w",       // 260 Ġw
		"o r",       // 261 or
		"Ġw or",     // 262 Ġwor
		"l d",       // 263 ld
		"a a",       // 264 aa
		"Ġ Ġ",       // 265 ĠĠ
		"1 2",       // 266 12
		"12 3",      // 267 123
		"' s",       // 268 's
		"Ċ Ċ",       // 269 ĊĊ (two newlines)
		"o Ġ",       // 270 oĠ: never applies, the pre-tokenizer keeps the space with the next word
		"Ã ©",       // 271 é (UTF-8 C3 A9 as GPT-2 runes)
		"l Ã©",      // 272 lé
		"Ġwor ld",   // 273 Ġworld
		"Ġ 1",       // 274 Ġ1: never applies for llama-bpe, whose digit runs take no space
		"3 Ġ",       // 275 3Ġ: never applies
		"Ġ12 3",     // unused: no token Ġ12
		"<|endof t", // a merge of texts that are not tokens: ignored
	}
	const eot = 256 + 22
	tests := []struct {
		pre  string
		text string
		opts tokenizer.EncodeOptions
		want []int32
	}{
		// "Hello": He (rank 0), then ll (1), then He+ll (2), then Hell+o (3).
		{"gpt-2", "Hello", tokenizer.EncodeOptions{}, []int32{259}},
		// " world": Ġw (4), or (5), Ġw+or (6), ld (7), Ġwor+ld (17).
		{"gpt-2", "Hello world", tokenizer.EncodeOptions{}, []int32{259, 273}},
		// Equal ranks merge leftmost first: aaa -> aa a; aaaa -> aa aa.
		{"gpt-2", "aaa", tokenizer.EncodeOptions{}, []int32{264, 'a'}},
		{"gpt-2", "aaaa", tokenizer.EncodeOptions{}, []int32{264, 264}},
		// gpt-2 splits "'s" off and keeps "3 " apart: "it's" -> it 's.
		{"gpt-2", "it's", tokenizer.EncodeOptions{}, []int32{'i', 't', 268}},
		// Three spaces before a word: \s+(?!\S) takes two (ĠĠ), the word the third.
		{"gpt-2", "   w", tokenizer.EncodeOptions{}, []int32{265, 260}},
		// Digits: gpt-2 takes " 123" as one word; Ġ1 (rank 18) is lower
		// priority than 12 (10), so: Ġ 12 3 -> Ġ 123.
		{"gpt-2", " 1234", tokenizer.EncodeOptions{}, []int32{32, 267, '4'}},
		// llama-bpe splits digits in threes and leaves the space alone.
		{"llama-bpe", " 1234", tokenizer.EncodeOptions{}, []int32{32, 267, '4'}},
		// Newlines: gpt-2's \s+(?!\S) leaves the last newline to stand
		// alone before a word, so ĊĊ cannot merge; llama-bpe's \s*[\r\n]+
		// keeps them together. é is two bytes that merge, then l+é.
		{"gpt-2", "\n\nlé", tokenizer.EncodeOptions{}, []int32{10, 10, 272}},
		{"llama-bpe", "\n\nlé", tokenizer.EncodeOptions{}, []int32{269, 272}},
		// The control token only with ParseSpecial; as text it is bytes.
		{"gpt-2", "o<|endoftext|>", tokenizer.EncodeOptions{ParseSpecial: true}, []int32{'o', eot}},
		{"gpt-2", "<|e", tokenizer.EncodeOptions{}, []int32{'<', '|', 'e'}},
		// gpt-2 adds no BOS by default; llama-bpe does.
		{"gpt-2", "aa", tokenizer.EncodeOptions{AddSpecial: true}, []int32{264}},
		{"llama-bpe", "aa", tokenizer.EncodeOptions{AddSpecial: true}, []int32{eot, 264}},
		// Invalid UTF-8 becomes U+FFFD (EF BF BD), bytes ï ¿ ½ as runes.
		{"gpt-2", "\xff", tokenizer.EncodeOptions{}, []int32{0xEF, 0xBF, 0xBD}},
		{"gpt-2", "", tokenizer.EncodeOptions{AddSpecial: true}, nil},
	}
	for _, tt := range tests {
		tok := handBPE(t, tt.pre, merges)
		got, err := tok.Encode(tt.text, tt.opts)
		if err != nil {
			t.Errorf("%s: Encode(%q): %v", tt.pre, tt.text, err)
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: Encode(%q, %+v) = %v, want %v", tt.pre, tt.text, tt.opts, got, tt.want)
		}
	}
}

func TestBPEDecodeByHand(t *testing.T) {
	tok := handBPE(t, "gpt-2", []string{"Ġ w", "Ã ©"})
	tests := []struct {
		ids  []int32
		want string
	}{
		{[]int32{256, 'o'}, " wo"},
		{[]int32{'l', 257}, "lé"},
		// clean_up_tokenization_spaces: " ," -> ",", " 's" -> "'s", " ' " -> "'".
		{[]int32{'a', 32, ',', 32, '\'', 's'}, "a,'s"},
		{[]int32{'a', 32, '\'', 32, 'b'}, "a'b"},
		// A lone byte of a multi-byte character stays a raw byte.
		{[]int32{0xC3}, "\xc3"},
		// Out of range ids render as nothing.
		{[]int32{-1, 'x', 1 << 20}, "x"},
	}
	for _, tt := range tests {
		if got := tok.Decode(tt.ids); got != tt.want {
			t.Errorf("Decode(%v) = %q, want %q", tt.ids, got, tt.want)
		}
	}
}
