package tokenizer

import (
	"reflect"
	"testing"
)

func TestCptFlags(t *testing.T) {
	tests := []struct {
		r    rune
		want uint16
	}{
		{'a', catLetter},
		{'Z', catLetter},
		{'7', catNumber},
		{'٣', catNumber},    // Arabic-Indic digit
		{'Ⅻ', catNumber},    // letter number
		{'\u0301', catMark}, // combining acute
		{'€', catSymbol},
		{'+', catSymbol},
		{'。', catPunct},
		{'_', catPunct},
		{' ', catSeparator | flagWhitespace},
		{'\u00a0', catSeparator | flagWhitespace},
		{'\u3000', catSeparator | flagWhitespace},
		{'\t', catControl | flagWhitespace},
		{'\u0085', catControl | flagWhitespace},
		{'\u200b', catControl}, // zero width space: format, not whitespace
		{'\ue000', catControl}, // private use
		{0x2EBF0, catLetter},   // CJK Extension I (Unicode 15.1)
		{0x31EF, catSymbol},    // Unicode 15.1
		{0x0378, catUndefined}, // unassigned
		{0x110000, catUndefined},
	}
	for _, tt := range tests {
		if got := cptFlags(tt.r); got != tt.want {
			t.Errorf("cptFlags(%U) = %#x, want %#x", tt.r, got, tt.want)
		}
	}
}

func TestDecodeLenient(t *testing.T) {
	const fffd = 0xFFFD
	tests := []struct {
		in   string
		want []rune
	}{
		{"aé€😀", []rune{'a', 'é', '€', '😀'}},
		{"\xc0\xaf", []rune{'/'}},                            // overlong form decodes to its value
		{"\xed\xa0\x80", []rune{0xD800}},                     // surrogate decodes to its value
		{"\xe2\x82", []rune{fffd, fffd}},                     // truncated: each byte
		{"\xf4\x90\x80\x80", []rune{fffd, fffd, fffd, fffd}}, // beyond U+10FFFF
		{"\xff\x80a", []rune{fffd, fffd, 'a'}},
	}
	for _, tt := range tests {
		got := decodeLenient(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("decodeLenient(%q) = %U, want %U", tt.in, got, tt.want)
		}
		var b []byte
		for _, r := range got {
			b = appendCpt(b, r)
		}
		if tt.in == "\xed\xa0\x80" && string(b) != tt.in {
			t.Errorf("surrogate re-encodes to %q", b)
		}
	}
}

// TestWordSplits checks the pre-tokenizers on splits worked out from the
// expressions by hand.
func TestWordSplits(t *testing.T) {
	tests := []struct {
		regexes []string
		text    string
		want    []string
	}{
		// \s+(?!\S) leaves the last space of a run to the next word.
		{[]string{gpt2Regex}, "Hello world's  test 123", []string{"Hello", " world", "'s", " ", " test", " 123"}},
		{[]string{gpt2Regex}, "a \n\nb", []string{"a", " \n", "\n", "b"}},
		// Trailing whitespace stays together.
		{[]string{gpt2Regex}, "x   ", []string{"x", "   "}},
		// \s*[\r\n]+ up to the last newline; digits in threes; 'RE folds case.
		{[]string{llama3Regex}, "Hello\n\n  world 12345 WE'RE", []string{"Hello", "\n\n", " ", " world", " ", "123", "45", " WE", "'RE"}},
		{[]string{qwen2Regex}, "a12", []string{"a", "1", "2"}},
		// A punctuation run takes one leading space and trailing newlines.
		{[]string{llama3Regex}, "a ...\n\nb", []string{"a", " ...\n\n", "b"}},
		// The default set: punctuation first, then gpt-2's expression, then
		// digit runs split in threes from the left.
		{defaultRegexes, "x=1234!?", []string{"x", "=", "123", "4", "!?"}},
		// deepseek-llm: newlines alone, letters with one space, CJK runs.
		{deepseekLLMRegexes, "ab 你好\ncd", []string{"ab", " ", "你好", "\n", "cd"}},
	}
	for _, tt := range tests {
		p, err := newPreTokenizer(tt.regexes)
		if err != nil {
			t.Fatal(err)
		}
		cpts := []rune(tt.text)
		var got []string
		start := 0
		for _, n := range p.words(cpts) {
			got = append(got, string(cpts[start:start+n]))
			start += n
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("words(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
