package tokenizer_test

import (
	"math/rand/v2"
	"strings"
)

// Pieces of text the generated test strings are built from: many scripts,
// emoji (with skin tones, flags and ZWJ sequences), whitespace of every
// kind, code, numbers, contractions, chat markup and invalid UTF-8.
var corpusPieces = []string{
	// scripts
	"Hello world", "Hello, y'all! How're you?", "нещо на Български", "Γειά σου Κόσμε", "שלום עולם",
	"مرحبا بالعالم", "नमस्ते दुनिया", "こんにちは世界", "你好，世界", "我想在apple工作1314151天～",
	"안녕하세요 세계", "สวัสดีชาวโลก", "កាន់តែពិសេសអាចខលចេញ", "Tiếng Việt có dấu", "Ærøskøbing straße",
	"ﬁnancial ﬂow", "ｆｕｌｌｗｉｄｔｈ ＡＢＣ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "e\u0301 a\u0308 n\u0303", "ქართული ენა",
	"Ελληνικά κείμενα", "ᚠᛇᚻ᛫ᛒᛦᚦ", "ⲁⲗⲗⲏⲗⲟⲩⲓⲁ", "𐐷𐐸𐐹", "한국어 텍스트", "Ṱ̺̺̕o͞ ̷i̲̬͇̪͙n̝̗͕v̟̜̘̦͟o̶̙̰̠kè͚̮̺̪̹̱̤ ̖t̝͕̳̣̻̪͞h̼͓̲̦̳̘̲e͇̣̰̦̬͎ ̢̼̻̱̘h͚͎͙̜̣̲ͅi̦̲̣̰̤v̻͍e̺̭̳̪̰-m̢iͅn̖̺̞̲̯̰d̵̼̟͙̩̼̘̳",
	// emoji
	"🚀", "😶‍🌫️", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "🇯🇵🇫🇷", "❤️", "✅", "🦙.cpp", "🫠🫶",
	// whitespace
	" ", "  ", "   ", "\t", "\n", "\r\n", "\n\n\n", " \t ", "\u00a0", "\u3000", "\u2028", "\v\f", "\u200b",
	// code
	"func main() { fmt.Println(\"hi\") }", "for (int i = 0; i < n; ++i) {\n\tx[i] = 0;\n}",
	"def f(x):\n    return x**2\n", "<div class=\"a\">&amp;</div>", "SELECT * FROM t WHERE id=42;",
	"$ ls -la | grep '.go'", "a->b && c || !d", "#include <stdio.h>", "x := []int{1, 2, 3}",
	// numbers
	"3", "33", "333333333", "3.14159", "1,000,000", "-42", "0x1F", "1e-10", "2024-01-01", "١٢٣ ४५६",
	// punctuation and contractions
	"...", "!!!!!!", "' era", "I'm", "don't", "we'Ve a'lL", "—", "«quote»", "“smart” ‘quotes’", "(?!)", "' ' '",
	// chat markup and special token texts
	"<|user|>\n1</s>\n<|assistant|>\n", "<s>[INST] hi [/INST]", "</s><s>", "<unk>", "<s>", "</s>",
	"<|im_start|>user\nhi<|im_end|>", "<<SYS>>\n", "<|endoftext|>", " </s> ", "a</s>b",
	"call <tool> now", "<tool><tool>", "x<|im_end|>\n", " <|im_start|>assistant",
	// invalid UTF-8
	"\xff", "\xc3", "abc\x80def", "\xe2\x82", "\xed\xa0\x80", "\xf0\x9f\x98", "\xc0\xaf", "\xf8\x88\x80\x80\x80",
	"\xf4\x90\x80\x80", "\xfe\xfe", "é\xe9",
	// empty
	"",
}

var separators = []string{"", " ", "  ", "\n", "\t", "\n\n", " \n "}

// generatedStrings returns n deterministic test strings: every piece
// alone, then random concatenations with random separators, some with
// leading or trailing whitespace.
func generatedStrings(n int) []string {
	out := append([]string(nil), corpusPieces...)
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	for len(out) < n {
		var b strings.Builder
		if rng.IntN(4) == 0 {
			b.WriteString(pick(separators[1:]))
		}
		k := 2 + rng.IntN(4)
		for i := 0; i < k; i++ {
			if i > 0 {
				b.WriteString(pick(separators))
			}
			b.WriteString(pick(corpusPieces))
		}
		if rng.IntN(4) == 0 {
			b.WriteString(pick(separators[1:]))
		}
		out = append(out, b.String())
	}
	return out
}
