package tokenizer

import "unicode"

// Code point classes as llama.cpp's unicode.cpp sees them. Every code point
// has exactly one category (or is undefined); whitespace is a separate flag.
const (
	catUndefined uint16 = 1 << iota
	catNumber
	catLetter
	catSeparator
	catMark
	catPunct
	catSymbol
	catControl
	flagWhitespace
)

// categoryMask keeps the category bits and drops the whitespace flag.
const categoryMask = catUndefined | catNumber | catLetter | catSeparator | catMark | catPunct | catSymbol | catControl

// cptFlags returns the class of a code point. Go's unicode tables are
// Unicode 15.0 while llama.cpp's generated table is 15.1; the two differ
// only in the code points 15.1 added (CJK Extension I and six ideographic
// description characters), patched in here so that pre-tokenization splits
// exactly where llama.cpp's does. A full scan of all 0x110000 code points
// against llama.cpp's unicode-data.cpp found no other difference.
func cptFlags(r rune) uint16 {
	if r < 0 || r > unicode.MaxRune {
		return catUndefined
	}
	var f uint16
	if isWhitespace(r) {
		f = flagWhitespace
	}
	switch {
	case r < 0x80 && asciiCat[r] != 0:
		return f | asciiCat[r]
	case unicode.IsNumber(r):
		return f | catNumber
	case unicode.IsLetter(r) || (r >= 0x2EBF0 && r <= 0x2EE5D):
		return f | catLetter
	case unicode.Is(unicode.Z, r):
		return f | catSeparator
	case unicode.IsMark(r):
		return f | catMark
	case unicode.IsPunct(r):
		return f | catPunct
	case unicode.IsSymbol(r) || (r >= 0x2FFC && r <= 0x2FFF) || r == 0x31EF:
		return f | catSymbol
	case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs):
		return f | catControl
	}
	return f | catUndefined
}

// asciiCat caches the categories of ASCII, the common case.
var asciiCat = func() (t [128]uint16) {
	for r := rune(0); r < 128; r++ {
		switch {
		case unicode.IsNumber(r):
			t[r] = catNumber
		case unicode.IsLetter(r):
			t[r] = catLetter
		case unicode.Is(unicode.Z, r):
			t[r] = catSeparator
		case unicode.IsPunct(r):
			t[r] = catPunct
		case unicode.IsSymbol(r):
			t[r] = catSymbol
		default:
			t[r] = catControl
		}
	}
	return t
}()

// isWhitespace is the White_Space property, which is what llama.cpp's
// whitespace set holds (tab to carriage return, space, U+0085, U+00A0 and
// the separators); unicode.IsSpace is the same set.
func isWhitespace(r rune) bool { return unicode.IsSpace(r) }

// utf8SeqLen is the length of a UTF-8 sequence judged by its first byte
// alone, as llama.cpp's unicode_len_utf8 does: continuation and invalid
// bytes count as one, 0xF8..0xFF as four.
func utf8SeqLen(b byte) int {
	switch b >> 4 {
	case 0xC, 0xD:
		return 2
	case 0xE:
		return 3
	case 0xF:
		return 4
	}
	return 1
}

// decodeLenient splits text into code points the way llama.cpp's
// unicode_cpts_from_utf8 does: it only checks the lead byte and that
// continuation bytes look like continuation bytes, so overlong forms and
// surrogates decode to their numeric value; each byte that does not start
// such a sequence becomes U+FFFD. A 4-byte form above U+10FFFF (which
// llama.cpp turns into an exception and a crash later) is also U+FFFD here.
func decodeLenient(text string) []rune {
	out := make([]rune, 0, len(text))
	for i := 0; i < len(text); {
		r, n := decodeOneLenient(text, i)
		out = append(out, r)
		i += n
	}
	return out
}

func decodeOneLenient(s string, i int) (rune, int) {
	b := s[i]
	cont := func(k int) bool { return i+k < len(s) && s[i+k]&0xC0 == 0x80 }
	switch {
	case b < 0x80:
		return rune(b), 1
	case b&0x40 == 0: // a stray continuation byte
		return unicode.ReplacementChar, 1
	case b&0x20 == 0:
		if cont(1) {
			return rune(b&0x1F)<<6 | rune(s[i+1]&0x3F), 2
		}
	case b&0x10 == 0:
		if cont(1) && cont(2) {
			return rune(b&0x0F)<<12 | rune(s[i+1]&0x3F)<<6 | rune(s[i+2]&0x3F), 3
		}
	case b&0x08 == 0:
		if cont(1) && cont(2) && cont(3) {
			r := rune(b&0x07)<<18 | rune(s[i+1]&0x3F)<<12 | rune(s[i+2]&0x3F)<<6 | rune(s[i+3]&0x3F)
			if r <= unicode.MaxRune {
				return r, 4
			}
		}
	}
	return unicode.ReplacementChar, 1
}

// appendCpt encodes a code point as UTF-8 without Go's refusal of
// surrogates, so that text decoded by decodeLenient re-encodes to the same
// bytes llama.cpp produces.
func appendCpt(b []byte, r rune) []byte {
	switch {
	case r < 0x80:
		return append(b, byte(r))
	case r < 0x800:
		return append(b, 0xC0|byte(r>>6), 0x80|byte(r)&0x3F)
	case r < 0x10000:
		return append(b, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	default:
		return append(b, 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
	}
}

// byteToRune is GPT-2's reversible mapping of the 256 byte values to
// printable code points: printable Latin-1 bytes map to themselves, the
// others (controls, space, 0x7F..0xA0, 0xAD) to U+0100 upwards in order.
var byteToRune, runeToByte = func() ([256]rune, map[rune]byte) {
	var fwd [256]rune
	inv := make(map[rune]byte, 256)
	next := rune(256)
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			fwd[b] = rune(b)
		} else {
			fwd[b] = next
			next++
		}
		inv[fwd[b]] = byte(b)
	}
	return fwd, inv
}()
