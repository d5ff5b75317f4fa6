package tokenizer

import (
	"fmt"
	"strings"

	"github.com/dlclark/regexp2"
)

// Byte-level BPE first splits text into words with a list of regular
// expressions chosen by tokenizer.ggml.pre. Each expression splits every
// piece the previous ones left: a match and the text between matches
// become pieces of their own (Hugging Face's "Isolated" behaviour).
//
// llama.cpp runs three common expressions through hand-written matchers
// and the others through std::regex on a copy of the text in which each
// non-ASCII code point is replaced by one stand-in byte per Unicode
// category. This file does the same, with regexp2 for the general case
// (it has the look-aheads Go's regexp lacks), so that words split exactly
// where llama.cpp splits them, quirks included.

// The expressions llama.cpp matches by hand (unicode_regex_split_custom).
const (
	gpt2Regex   = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
	llama3Regex = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2Regex  = `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	// The same expressions as Hugging Face's tokenizer.json writes them.
	llama3RegexHF = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	qwen2RegexHF  = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
)

var (
	defaultRegexes = []string{`[\p{P}\$\+<=>\^~\|]+`, gpt2Regex, `\p{N}+`, `[0-9][0-9][0-9]`}
	// deepseek-llm's "\s+$": $ is written \z because in regexp2 (as in
	// .NET) $ also matches before a final newline, and ECMAScript's does
	// not.
	deepseekLLMRegexes = []string{
		"[\r\n]",
		"\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df\U0001e900-\U0001e943]+",
		"\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
		`\s+\z`,
		"[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+",
		`\p{N}+`,
	}
	deepseekCoderRegexes = []string{"[\r\n]", `\s?\p{L}+`, `\s?\p{P}+`, "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", `\p{N}`}
	falconRegexes        = []string{"[\\p{P}\\$\\+<=>\\^~\\|`]+", gpt2Regex, `[0-9][0-9][0-9]`}
	starcoderRegexes     = []string{`\p{N}`, gpt2Regex}
	poroRegexes          = []string{" ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+"}
	vikingRegexes        = []string{" ?[^(\\s|.,!?\u2026\u3002\uff0c\u3001\u0964\u06d4\u060c)]+", `\p{N}`}
	bailingRegexes       = []string{`'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+`}
	seedCoderRegexes     = []string{`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+`}
)

// preSpec is what a pre-tokenizer name selects in llama.cpp.
type preSpec struct {
	regexes      []string
	cleanSpaces  bool // Decode removes spaces before punctuation (clean_up_tokenization_spaces)
	ignoreMerges bool // a word that is a whole token is taken as is
	addBOS       bool // the default of AddBOS
}

// preTokenizers maps the tokenizer.ggml.pre names implemented here to
// their settings (llama_vocab::impl::load and llm_tokenizer_bpe).
var preTokenizers = func() map[string]preSpec {
	m := map[string]preSpec{}
	add := func(s preSpec, names ...string) {
		for _, n := range names {
			m[n] = s
		}
	}
	add(preSpec{regexes: defaultRegexes, cleanSpaces: true}, "", "default")
	add(preSpec{regexes: []string{llama3Regex}, cleanSpaces: true, ignoreMerges: true, addBOS: true},
		"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano")
	add(preSpec{regexes: []string{llama3Regex}, cleanSpaces: true}, "dbrx", "smaug-bpe", "glm4", "chatglm-bpe")
	add(preSpec{regexes: []string{gpt2Regex}, cleanSpaces: true},
		"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
		"modern-bert", "mpt", "olmo", "jais", "exaone4")
	add(preSpec{regexes: []string{gpt2Regex}}, "trillion", "granite-docling")
	add(preSpec{regexes: []string{qwen2Regex}}, "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2")
	add(preSpec{regexes: []string{qwen2Regex}, cleanSpaces: true}, "stablelm2", "megrez")
	add(preSpec{regexes: deepseekLLMRegexes}, "deepseek-llm")
	add(preSpec{regexes: deepseekCoderRegexes}, "deepseek-coder")
	add(preSpec{regexes: falconRegexes, cleanSpaces: true}, "falcon")
	add(preSpec{regexes: starcoderRegexes, cleanSpaces: true}, "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2")
	add(preSpec{regexes: starcoderRegexes}, "command-r", "smollm")
	add(preSpec{regexes: poroRegexes}, "poro-chat")
	add(preSpec{regexes: poroRegexes, cleanSpaces: true}, "bloom", "gpt3-finnish")
	add(preSpec{regexes: vikingRegexes}, "viking")
	add(preSpec{regexes: bailingRegexes}, "bailingmoe", "bailingmoe2", "llada-moe")
	add(preSpec{regexes: seedCoderRegexes}, "seed-coder")
	return m
}()

// noBOSPre are the pre-tokenizers for which llama.cpp has no default BOS.
var noBOSPre = map[string]bool{"glm4": true, "chatglm-bpe": true}

// splitter splits each piece of a text (lengths in code points, in order)
// into smaller pieces.
type splitter interface {
	split(cpts []rune, flags []uint16, pieces []int) []int
}

type preTokenizer struct {
	splitters []splitter
}

func newPreTokenizer(regexes []string) (*preTokenizer, error) {
	p := &preTokenizer{}
	for _, re := range regexes {
		var s splitter
		switch re {
		case gpt2Regex:
			s = customSplitter(splitGPT2)
		case llama3Regex:
			s = customSplitter(func(c *cursor) { splitLlama3(c, 3) })
		case qwen2Regex:
			s = customSplitter(func(c *cursor) { splitLlama3(c, 1) })
		default:
			rs, err := newRegexSplitter(re)
			if err != nil {
				return nil, err
			}
			s = rs
		}
		p.splitters = append(p.splitters, s)
	}
	return p, nil
}

// words splits text (already decoded to code points) into words, returned
// as lengths in code points.
func (p *preTokenizer) words(cpts []rune) []int {
	if len(cpts) == 0 {
		return nil
	}
	flags := make([]uint16, len(cpts))
	for i, r := range cpts {
		flags[i] = cptFlags(r)
	}
	pieces := []int{len(cpts)}
	for _, s := range p.splitters {
		pieces = s.split(cpts, flags, pieces)
	}
	return pieces
}

// cursor walks one piece of text for a hand-written matcher; positions
// outside the piece read as "no code point" (-1, no flags), as llama.cpp's
// _get_cpt and _get_flags do.
type cursor struct {
	cpts     []rune
	flags    []uint16
	ini, end int
	prevEnd  int
	out      []int
}

func (c *cursor) cpt(pos int) rune {
	if pos >= c.ini && pos < c.end {
		return c.cpts[pos]
	}
	return -1
}

func (c *cursor) flag(pos int) uint16 {
	if pos >= c.ini && pos < c.end {
		return c.flags[pos]
	}
	return 0
}

// emit ends the current word at end and returns its length.
func (c *cursor) emit(end int) int {
	n := end - c.prevEnd
	if n > 0 {
		c.out = append(c.out, n)
	}
	c.prevEnd = end
	return n
}

type customSplitter func(c *cursor)

func (f customSplitter) split(cpts []rune, flags []uint16, pieces []int) []int {
	c := &cursor{cpts: cpts, flags: flags, out: make([]int, 0, len(pieces))}
	start := 0
	for _, n := range pieces {
		c.ini, c.end, c.prevEnd = start, start+n, start
		f(c)
		start += n
	}
	return c.out
}

func isLetter(f uint16) bool { return f&catLetter != 0 }
func isNumber(f uint16) bool { return f&catNumber != 0 }
func isSpace(f uint16) bool  { return f&flagWhitespace != 0 }

// lowerASCII lowers A-Z; llama.cpp lowers with the full Unicode table, but
// it only compares the result with ASCII letters that no other code point
// lowers to.
func lowerASCII(r rune) rune {
	if r >= 'A' && r <= 'Z' {
		return r + 'a' - 'A'
	}
	return r
}

// contraction returns the length (2 or 3) of 's 't 're 've 'm 'll 'd at
// pos, or 0; foldCase accepts upper-case letters too.
func contraction(c *cursor, pos int, foldCase bool) int {
	if c.cpt(pos) != '\'' || pos+1 >= c.end {
		return 0
	}
	low := func(r rune) rune {
		if foldCase {
			return lowerASCII(r)
		}
		return r
	}
	next := low(c.cpt(pos + 1))
	if next == 's' || next == 't' || next == 'm' || next == 'd' {
		return 2
	}
	if pos+2 < c.end {
		next2 := low(c.cpt(pos + 2))
		if (next == 'r' && next2 == 'e') || (next == 'v' && next2 == 'e') || (next == 'l' && next2 == 'l') {
			return 3
		}
	}
	return 0
}

// whitespaceRun handles the whitespace alternatives shared by the
// matchers: \s+(?!\S) (a run before a non-space keeps its last space for
// the next word) and \s+. It reports false when pos is not whitespace.
func whitespaceRun(c *cursor, pos *int) bool {
	n := 0
	for isSpace(c.flag(*pos + n)) {
		n++
	}
	if n > 1 && c.cpt(*pos+n) != -1 {
		*pos += n - 1
		c.emit(*pos)
		return true
	}
	if n > 0 {
		*pos += n
		c.emit(*pos)
		return true
	}
	return false
}

// splitGPT2 matches 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)
func splitGPT2(c *cursor) {
	for pos := c.ini; pos < c.end; {
		cpt := c.cpt(pos)
		if n := contraction(c, pos, false); n > 0 {
			pos += c.emit(pos + n)
			continue
		}
		f := c.flag(pos)
		if cpt == ' ' {
			f = c.flag(pos + 1)
		}
		switch {
		case isLetter(f):
			if cpt == ' ' {
				pos++
			}
			for isLetter(c.flag(pos)) {
				pos++
			}
			c.emit(pos)
			continue
		case isNumber(f):
			if cpt == ' ' {
				pos++
			}
			for isNumber(c.flag(pos)) {
				pos++
			}
			c.emit(pos)
			continue
		case otherClass(f):
			if cpt == ' ' {
				pos++
			}
			for otherClass(c.flag(pos)) {
				pos++
			}
			c.emit(pos)
			continue
		}
		if whitespaceRun(c, &pos) {
			continue
		}
		pos++
		c.emit(pos)
	}
}

// otherClass is [^\s\p{L}\p{N}] for a code point inside the piece.
func otherClass(f uint16) bool {
	return f != 0 && !isSpace(f) && !isLetter(f) && !isNumber(f)
}

// splitLlama3 matches llama-3's expression, and Qwen-2's when maxDigits is
// 1 (\p{N} instead of \p{N}{1,3}):
// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
func splitLlama3(c *cursor, maxDigits int) {
	for pos := c.ini; pos < c.end; {
		cpt := c.cpt(pos)
		f := c.flag(pos)
		if n := contraction(c, pos, true); n > 0 {
			pos += c.emit(pos + n)
			continue
		}
		// [^\r\n\p{L}\p{N}]?\p{L}+
		if !(cpt == '\r' || cpt == '\n' || isNumber(f)) && (isLetter(f) || isLetter(c.flag(pos+1))) {
			pos++
			for isLetter(c.flag(pos)) {
				pos++
			}
			c.emit(pos)
			continue
		}
		// \p{N}{1,maxDigits}
		if isNumber(f) {
			ini := pos
			for isNumber(c.flag(pos)) {
				pos++
				if pos-ini >= maxDigits {
					c.emit(pos)
					ini = pos
				}
			}
			c.emit(pos)
			continue
		}
		// <space>?[^\s\p{L}\p{N}]+[\r\n]*; llama.cpp tests the first code
		// point's own flags for being inside the piece, which any code
		// point at pos is.
		f2 := f
		if cpt == ' ' {
			f2 = c.flag(pos + 1)
		}
		if !isSpace(f2) && !isLetter(f2) && !isNumber(f2) && f != 0 {
			if cpt == ' ' {
				pos++
			}
			for otherClass(f2) {
				pos++
				f2 = c.flag(pos)
			}
			for r := c.cpt(pos); r == '\r' || r == '\n'; r = c.cpt(pos) {
				pos++
			}
			c.emit(pos)
			continue
		}
		// \s*[\r\n]+ : up to the last CR or LF of the whitespace run.
		lastNL, n := 0, 0
		for isSpace(c.flag(pos + n)) {
			if r := c.cpt(pos + n); r == '\r' || r == '\n' {
				lastNL = pos + n + 1
			}
			n++
		}
		if lastNL > 0 {
			pos = lastNL
			c.emit(pos)
			continue
		}
		if whitespaceRun(c, &pos) {
			continue
		}
		pos++
		c.emit(pos)
	}
}

// regexSplitter runs a general expression with regexp2 on a stand-in text,
// as llama.cpp runs std::regex.
type regexSplitter struct {
	re        *regexp2.Regexp
	collapsed bool // the expression uses \p classes: match against one stand-in per category
}

// Stand-ins for non-ASCII code points in the collapsed text, one per
// category (llama.cpp's bytes 0xD0..0xD5, here the runes of the same
// values). Only the collapsed expression refers to them.
const (
	standInOther  = '\u00D0'
	standInNumber = '\u00D1'
	standInLetter = '\u00D2'
	standInPunct  = '\u00D3'
	standInMark   = '\u00D4'
	standInSymbol = '\u00D5'
)

// categoryClasses replaces \p{X} in a collapsed expression: the stand-in
// plus the ASCII members of the category.
var categoryClasses = map[string]string{
	`\p{N}`:  string(standInNumber) + `0-9`,
	`\p{L}`:  string(standInLetter) + `A-Za-z`,
	`\p{Lu}`: string(standInLetter) + `A-Za-z`,
	`\p{Ll}`: string(standInLetter) + `A-Za-z`,
	`\p{Lt}`: string(standInLetter) + `A-Za-z`,
	`\p{Lm}`: string(standInLetter) + `A-Za-z`,
	`\p{Lo}`: string(standInLetter) + `A-Za-z`,
	`\p{P}`:  string(standInPunct) + `!-#%-*,-/:-;?-@\[-\]_\{\}`,
	`\p{M}`:  string(standInMark),
	`\p{S}`:  string(standInSymbol) + "\\$\\+<->^`\\|\\~",
}

func newRegexSplitter(expr string) (*regexSplitter, error) {
	usesCategories := false
	for k := range categoryClasses {
		if strings.Contains(expr, k) {
			usesCategories = true
		}
	}
	pattern := expr
	if usesCategories {
		for _, r := range expr {
			if r >= 0x80 {
				return nil, fmt.Errorf("tokenizer: pre-tokenizer expression %q mixes Unicode classes and non-ASCII text", expr)
			}
		}
		pattern = collapseExpr(expr)
	}
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: pre-tokenizer expression %q: %w", expr, err)
	}
	return &regexSplitter{re: re, collapsed: usesCategories}, nil
}

// collapseExpr rewrites the \p classes of expr for the collapsed text,
// tracking (unnested) brackets so that a class inside brackets is not
// bracketed again.
func collapseExpr(expr string) string {
	var b strings.Builder
	inside := false
	for i := 0; i < len(expr); i++ {
		ch := expr[i]
		if ch == '[' && (i == 0 || expr[i-1] != '\\') {
			inside = true
			b.WriteByte(ch)
			continue
		}
		if inside && ch == ']' && expr[i-1] != '\\' {
			inside = false
			b.WriteByte(ch)
			continue
		}
		if ch == '\\' && i+3 < len(expr) && expr[i+1] == 'p' && expr[i+2] == '{' {
			if end := strings.IndexByte(expr[i+3:], '}'); end >= 0 {
				name := expr[i : i+3+end+1]
				if class, ok := categoryClasses[name]; ok {
					if !inside {
						b.WriteByte('[')
					}
					b.WriteString(class)
					if !inside {
						b.WriteByte(']')
					}
					i += 3 + end
					continue
				}
			}
		}
		b.WriteByte(ch)
	}
	return b.String()
}

// standIn is the collapsed form of a code point.
func standIn(r rune, f uint16) rune {
	if r < 0x80 {
		return r
	}
	if isSpace(f) {
		return '\v'
	}
	switch f & categoryMask {
	case catNumber:
		return standInNumber
	case catLetter:
		return standInLetter
	case catPunct:
		return standInPunct
	case catMark:
		return standInMark
	case catSymbol:
		return standInSymbol
	}
	return standInOther
}

func (s *regexSplitter) split(cpts []rune, flags []uint16, pieces []int) []int {
	text := make([]rune, len(cpts))
	for i, r := range cpts {
		switch {
		case s.collapsed:
			text[i] = standIn(r, flags[i])
		case r >= 0x80 && isSpace(flags[i]):
			// std::wregex's \s knows only ASCII whitespace; llama.cpp
			// maps the rest to a vertical tab.
			text[i] = '\v'
		default:
			text[i] = r
		}
	}
	out := make([]int, 0, len(pieces))
	start := 0
	for _, n := range pieces {
		piece := text[start : start+n]
		prev := 0
		m, err := s.re.FindRunesMatch(piece)
		for m != nil && err == nil {
			if m.Index > prev {
				out = append(out, m.Index-prev)
			}
			if m.Length > 0 {
				out = append(out, m.Length)
			}
			prev = m.Index + m.Length
			m, err = s.re.FindNextMatch(m)
		}
		if prev < n {
			out = append(out, n-prev)
		}
		start += n
	}
	return out
}
