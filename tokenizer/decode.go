package tokenizer

import (
	"fmt"
	"strings"
)

// renderPiece is llama.cpp's token_to_piece with special=true, computed
// once per token: control, unknown and user-defined tokens render as their
// text, normal tokens with ▁ as space (SentencePiece) or mapped back from
// GPT-2's runes to bytes (byte-level BPE), byte tokens as their byte;
// unused and undefined tokens render as nothing.
func (t *Tokenizer) renderPiece(id int32) string {
	a := t.attrs[id]
	text := t.v.Tokens[id]
	switch {
	case a&(attrUnknown|attrControl|attrUserDefined) != 0:
		return t.text(id)
	case a&attrNormal != 0:
		if t.spm {
			return strings.ReplaceAll(text, "▁", " ")
		}
		return decodeByteLevel(text)
	case a&attrByte != 0:
		return string([]byte{byteTokenValue(text)})
	}
	return ""
}

// byteTokenValue reads the XX of "<0xXX>" as llama.cpp does (strtol of the
// two characters after "<0x", 0 when they are not hex).
func byteTokenValue(text string) byte {
	if len(text) < 4 {
		return 0
	}
	digits := text[3:min(5, len(text))]
	var v byte
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return v
		}
	}
	return v
}

// decodeByteLevel maps a byte-level BPE token's runes back to bytes; a rune
// outside GPT-2's table renders as llama.cpp renders it,
// "[UNK_BYTE_0x<utf-8 hex><token text>]".
func decodeByteLevel(text string) string {
	var b []byte
	for _, r := range decodeLenient(text) {
		if c, ok := runeToByte[r]; ok {
			b = append(b, c)
			continue
		}
		b = append(b, "[UNK_BYTE_0x"...)
		for _, c := range appendCpt(nil, r) {
			b = fmt.Appendf(b, "%02x", c)
		}
		b = append(b, text...)
		b = append(b, ']')
	}
	return string(b)
}

// TokenPiece returns the text of one token like llama_token_to_piece with
// lstrip 0: "" for control and unknown tokens unless special, and "" for
// an id out of range.
func (t *Tokenizer) TokenPiece(id int32, special bool) string {
	return t.piece(id, special, false)
}

func (t *Tokenizer) piece(id int32, special, stripSpace bool) string {
	if !t.valid(id) {
		return ""
	}
	if !special && t.attrs[id]&(attrUnknown|attrControl) != 0 {
		return ""
	}
	p := t.pieces[id]
	if stripSpace {
		p = strings.TrimPrefix(p, " ")
	}
	return p
}

// DecodeOptions are llama_detokenize's switches.
type DecodeOptions struct {
	// Special renders control and unknown tokens as their text
	// (unparse_special); otherwise they render as nothing.
	Special bool
	// RemoveSpecial drops a leading BOS and a trailing EOS when the
	// vocabulary adds them (remove_special).
	RemoveSpecial bool
}

// Decode turns ids back into text like llama_detokenize with neither
// switch: control tokens render as nothing, and with a space-prefixing
// vocabulary the first token loses its leading space. Ids out of range
// render as nothing.
func (t *Tokenizer) Decode(ids []int32) string {
	return t.DecodeWith(ids, DecodeOptions{})
}

// DecodeWith is Decode with llama_detokenize's switches. As in llama.cpp,
// the leading space is stripped only from the first token, so a leading
// BOS (kept, or removed by RemoveSpecial) leaves the next token's space.
func (t *Tokenizer) DecodeWith(ids []int32, opts DecodeOptions) string {
	removeSpace := t.v.AddSpacePrefix
	if opts.RemoveSpecial && t.v.AddBOS && len(ids) > 0 && ids[0] == t.v.BOS {
		removeSpace = false
		ids = ids[1:]
	}
	if opts.RemoveSpecial && t.v.AddEOS && len(ids) > 0 && ids[len(ids)-1] == t.v.EOS {
		ids = ids[:len(ids)-1]
	}
	var b []byte
	for _, id := range ids {
		b = append(b, t.piece(id, opts.Special, removeSpace)...)
		removeSpace = false
	}
	if t.cleanSpaces {
		b = cleanSpaces(b)
	}
	return string(b)
}

// cleanSpaces is llama.cpp's clean_up_tokenization_spaces, three passes
// over the bytes: drop the space before ? ! . , ; turn " ' " into "'";
// drop the space before 's 'm 're 've.
func cleanSpaces(text []byte) []byte {
	n := len(text)
	if n == 0 {
		return text
	}
	total := 1
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',') {
			total--
		}
		text[total] = x
		total++
	}
	n, total = total, 1
	for i := 1; i < n; i++ {
		x := text[i]
		if x == '\'' && i+1 < n && text[i-1] == ' ' && text[i+1] == ' ' {
			total--
			i++
			text[i] = 0 // llama.cpp blanks the skipped space, which the next step may read as text[i-1]
		}
		text[total] = x
		total++
	}
	n, total = total, 1
	for i := 1; i < n; i++ {
		x := text[i]
		if text[i-1] == ' ' && x == '\'' && i+1 < n {
			x1 := text[i+1]
			if x1 == 's' || x1 == 'm' {
				total--
			} else if i+2 < n {
				x2 := text[i+2]
				if (x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e') {
					total--
				}
			}
		}
		text[total] = x
		total++
	}
	return text[:total]
}
