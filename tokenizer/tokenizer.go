// Package tokenizer turns text into token ids and back, exactly as
// llama.cpp does for the two vocabulary families of the llama models:
// SentencePiece-style vocabularies (GGUF tokenizer.ggml.model "llama":
// spaces become ▁, adjacent pieces merge by score, unknown characters fall
// back to <0xXX> byte tokens) and byte-level BPE (model "gpt2": bytes map
// to printable runes, a regular-expression pre-tokenizer chosen by
// tokenizer.ggml.pre splits words, pieces merge by rank).
//
// Special tokens (control, user-defined, unknown) are found in the text
// before the model's algorithm runs; control and unknown tokens only when
// asked (EncodeOptions.ParseSpecial), user-defined ones always, as in
// llama.cpp. Decoding follows llama_token_to_piece and llama_detokenize;
// StreamDecoder emits text token by token without splitting characters.
//
// Where llama.cpp aborts the process, this package does not: a character
// a SentencePiece-style vocabulary has neither a token nor byte tokens for
// becomes the unknown token (an error without one), and byte-level BPE
// reads a 4-byte UTF-8 form beyond U+10FFFF as invalid bytes (U+FFFD).
package tokenizer

import (
	"fmt"
	"strings"
)

// Tokenizer encodes and decodes with one vocabulary. It is immutable and
// safe for concurrent use.
type Tokenizer struct {
	*loaded
	spm bool // SentencePiece-style; otherwise byte-level BPE

	// SentencePiece-style only: byteTokens[b] is the token of byte b
	// (<0xXX>, else the one-byte text), NoToken when the vocabulary has
	// neither.
	byteTokens [256]int32
	// hf is set for a SentencePiece-like Hugging Face tokenizer (FromHF),
	// which merges by rank and treats added tokens its own way.
	hf *hfMode

	// Byte-level BPE only.
	pre          *preTokenizer
	ranks        map[tokenPair]int
	ignoreMerges bool

	cleanSpaces bool
	pieces      []string // token_to_piece(special=true) of every token
}

type tokenPair struct{ left, right string }

// New builds a tokenizer from an explicit vocabulary. Special ids must be
// in range or NoToken; see Defaults for llama.cpp's default settings.
func New(v Vocab) (*Tokenizer, error) {
	l, err := index(v)
	if err != nil {
		return nil, err
	}
	t := &Tokenizer{loaded: l}
	switch v.Model {
	case ModelLlama:
		t.spm = true
		for b := 0; b < 256; b++ {
			t.byteTokens[b] = NoToken
			if id, ok := l.tokenID[fmt.Sprintf("<0x%02X>", b)]; ok {
				t.byteTokens[b] = id
			} else if id, ok := l.tokenID[string([]byte{byte(b)})]; ok {
				t.byteTokens[b] = id
			}
		}
	case ModelGPT2:
		spec, ok := preTokenizers[v.Pre]
		if !ok {
			return nil, fmt.Errorf("tokenizer: pre-tokenizer %q is not implemented", v.Pre)
		}
		if t.pre, err = newPreTokenizer(spec.regexes); err != nil {
			return nil, err
		}
		t.cleanSpaces = spec.cleanSpaces
		t.ignoreMerges = spec.ignoreMerges
		t.ranks = parseMerges(v.Merges)
	default:
		return nil, fmt.Errorf("tokenizer: tokenizer model %q is not supported (want %q or %q)", v.Model, ModelLlama, ModelGPT2)
	}
	t.pieces = make([]string, len(v.Tokens))
	for id := range t.pieces {
		t.pieces[id] = t.renderPiece(int32(id))
	}
	return t, nil
}

// parseMerges reads "left right" merges; like llama.cpp it splits at the
// first space after the first byte, and a merge without one pairs two
// empty strings (which never match).
func parseMerges(merges []string) map[tokenPair]int {
	ranks := make(map[tokenPair]int, len(merges))
	for rank, m := range merges {
		var p tokenPair
		for i := 1; i < len(m); i++ {
			if m[i] == ' ' {
				p = tokenPair{m[:i], m[i+1:]}
				break
			}
		}
		if _, dup := ranks[p]; !dup {
			ranks[p] = rank
		}
	}
	return ranks
}

// Vocab returns a copy of the vocabulary the tokenizer was built from, as
// a converter would write it to GGUF.
func (t *Tokenizer) Vocab() Vocab {
	v := t.v
	v.Tokens = append([]string(nil), v.Tokens...)
	if v.Scores != nil {
		v.Scores = append([]float32(nil), v.Scores...)
	}
	if v.Types != nil {
		v.Types = append([]TokenType(nil), v.Types...)
	}
	if v.Merges != nil {
		v.Merges = append([]string(nil), v.Merges...)
	}
	return v
}

// NumTokens is the size of the vocabulary.
func (t *Tokenizer) NumTokens() int { return len(t.v.Tokens) }

// BOS returns the beginning-of-sequence token, or NoToken.
func (t *Tokenizer) BOS() int32 { return t.v.BOS }

// EOS returns the end-of-sequence token, or NoToken.
func (t *Tokenizer) EOS() int32 { return t.v.EOS }

// EOT returns the end-of-turn token (from the file, else found by text as
// llama.cpp does), or NoToken.
func (t *Tokenizer) EOT() int32 { return t.eot }

// IsEOG reports whether generating id ends the generation (EOS, EOT, EOM
// and the tokens llama.cpp recognises by text, such as <|im_end|>).
func (t *Tokenizer) IsEOG(id int32) bool { return t.eog[id] }

// TokenText returns the token's text as stored in the vocabulary ("" when
// id is out of range).
func (t *Tokenizer) TokenText(id int32) string {
	if !t.valid(id) {
		return ""
	}
	return t.v.Tokens[id]
}

// IsControl reports whether id is a control token (after llama.cpp's
// load-time adjustments: tokens such as <|eot_id|> count as control even
// when the file says otherwise).
func (t *Tokenizer) IsControl(id int32) bool {
	return t.valid(id) && t.attrs[id]&attrControl != 0
}

func (t *Tokenizer) valid(id int32) bool { return id >= 0 && int(id) < len(t.v.Tokens) }

// EncodeOptions selects what Encode adds and recognises.
type EncodeOptions struct {
	// AddSpecial adds BOS and EOS as the vocabulary says (AddBOS, AddEOS).
	AddSpecial bool
	// ParseSpecial recognises the texts of control and unknown tokens,
	// such as "</s>", as those tokens. User-defined tokens are always
	// recognised.
	ParseSpecial bool
}

// fragment is a piece of the input: raw text, or a special token found in
// it.
type fragment struct {
	text  string
	token int32 // NoToken for text
}

// Encode tokenizes text like llama_tokenize. Invalid UTF-8 is accepted:
// SentencePiece-style vocabularies encode the stray bytes as byte tokens
// (so decoding gives the same bytes back); byte-level BPE replaces each
// invalid byte by U+FFFD first, as llama.cpp does. It fails only when the
// vocabulary cannot represent the text (a SentencePiece-style vocabulary
// without byte tokens or an unknown token) or lacks a BOS/EOS it must add.
func (t *Tokenizer) Encode(text string, opts EncodeOptions) ([]int32, error) {
	if t.hf != nil {
		return t.encodeHF(text, opts)
	}
	frags := t.partition(text, opts.ParseSpecial)
	out := make([]int32, 0, len(text)/3+2)
	if opts.AddSpecial && t.v.AddBOS {
		out = append(out, t.v.BOS)
	}
	var err error
	if t.spm {
		// Text after a special token (or at the start) gets the space
		// prefix, like the start of a SentencePiece sentence.
		prevSpecial := true
		s := spmSession{t: t}
		for _, f := range frags {
			if f.token != NoToken {
				out = append(out, f.token)
				prevSpecial = true
				continue
			}
			if out, err = s.encode(f.text, t.v.AddSpacePrefix && prevSpecial, out); err != nil {
				return nil, err
			}
			prevSpecial = false
		}
	} else {
		s := bpeSession{t: t}
		for _, f := range frags {
			if f.token != NoToken {
				out = append(out, f.token)
				continue
			}
			out = s.encode(f.text, out)
		}
	}
	if opts.AddSpecial && t.v.AddEOS {
		out = append(out, t.v.EOS)
	}
	return out, nil
}

// partition splits text at the special tokens it contains, longest token
// text first (tokenizer_st_partition): each special token in turn splits
// every remaining text fragment at each of its occurrences.
func (t *Tokenizer) partition(text string, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	frags := []fragment{{text: text, token: NoToken}}
	for _, id := range t.specials {
		if !parseSpecial && t.attrs[id]&(attrControl|attrUnknown) != 0 {
			continue
		}
		special := t.text(id)
		found := false
		for _, f := range frags {
			if f.token == NoToken && strings.Contains(f.text, special) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		next := make([]fragment, 0, len(frags)+2)
		for _, f := range frags {
			if f.token != NoToken {
				next = append(next, f)
				continue
			}
			rest := f.text
			for {
				i := strings.Index(rest, special)
				if i < 0 {
					break
				}
				if i > 0 {
					next = append(next, fragment{text: rest[:i], token: NoToken})
				}
				next = append(next, fragment{token: id})
				rest = rest[i+len(special):]
			}
			if rest != "" {
				next = append(next, fragment{text: rest, token: NoToken})
			}
		}
		frags = next
	}
	return frags
}
