package tokenizer

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// NoToken marks an absent special token id (llama.cpp's LLAMA_TOKEN_NULL).
const NoToken int32 = -1

// The tokenizer models (GGUF tokenizer.ggml.model) this package implements.
const (
	ModelLlama = "llama" // SentencePiece-style: ▁ for spaces, merges by score, <0xXX> byte fallback
	ModelGPT2  = "gpt2"  // byte-level BPE: bytes mapped to printable runes, merges by rank
)

// TokenType is a token's type as GGUF stores it (tokenizer.ggml.token_type).
type TokenType int32

// Token types, with GGUF's numbering.
const (
	TypeUndefined   TokenType = 0
	TypeNormal      TokenType = 1
	TypeUnknown     TokenType = 2
	TypeControl     TokenType = 3 // BOS, EOS and the like: rendered only on request
	TypeUserDefined TokenType = 4 // always recognised in text, rendered verbatim
	TypeUnused      TokenType = 5
	TypeByte        TokenType = 6 // <0xXX> byte fallback
)

// Vocab is everything that defines a tokenizer, in the shape GGUF stores it.
// Special ids are NoToken when absent.
type Vocab struct {
	Model  string      // ModelLlama or ModelGPT2
	Pre    string      // pre-tokenizer name (tokenizer.ggml.pre), byte-level BPE only; "" means "default"
	Tokens []string    // token texts by id
	Scores []float32   // by id; nil means all 0 (byte-level BPE has none)
	Types  []TokenType // by id; nil means all normal
	Merges []string    // "left right" by rank, byte-level BPE only

	BOS, EOS, EOT, EOM, UNK, PAD int32

	AddBOS         bool // Encode with AddSpecial prepends BOS
	AddEOS         bool // Encode with AddSpecial appends EOS
	AddSpacePrefix bool // SentencePiece: prefix text with a space; Decode strips it from the first token
}

// Defaults returns the settings llama.cpp assumes for a model when the GGUF
// file does not say otherwise (llama_vocab::impl::load), without tokens.
// For byte-level BPE, AddBOS also depends on the pre-tokenizer: pre is
// used only for that.
func Defaults(model, pre string) Vocab {
	v := Vocab{Model: model, Pre: pre, BOS: NoToken, EOS: NoToken, EOT: NoToken, EOM: NoToken, UNK: NoToken, PAD: NoToken}
	switch model {
	case ModelLlama:
		v.BOS, v.EOS, v.UNK = 1, 2, 0
		v.AddBOS = true
		v.AddSpacePrefix = true
	case ModelGPT2:
		// llama.cpp's defaults for BPE are 11 for both; files always
		// override them.
		v.BOS, v.EOS = 11, 11
		if p, ok := preTokenizers[pre]; ok {
			v.AddBOS = p.addBOS
		}
	}
	return v
}

// Token attributes, llama.cpp's llama_token_attr bits. Types map to one
// attribute each; loading adds CONTROL or UNUSED to some tokens by text.
const (
	attrUnknown     uint16 = 1 << 0
	attrUnused      uint16 = 1 << 1
	attrNormal      uint16 = 1 << 2
	attrControl     uint16 = 1 << 3
	attrUserDefined uint16 = 1 << 4
	attrByte        uint16 = 1 << 5
)

func typeAttr(t TokenType) uint16 {
	switch t {
	case TypeNormal:
		return attrNormal
	case TypeUnknown:
		return attrUnknown
	case TypeControl:
		return attrControl
	case TypeUserDefined:
		return attrUserDefined
	case TypeUnused:
		return attrUnused
	case TypeByte:
		return attrByte
	}
	return 0
}

// Texts llama.cpp recognises as special when the file does not name them
// (llama_vocab::impl::load). A token found this way is made a control token.
var (
	eotTexts = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
		"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"}
	eomTexts    = []string{"<|eom_id|>"}
	fimPreTexts = []string{"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"}
	fimSufTexts = []string{"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"}
	fimMidTexts = []string{"<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"}
	fimPadTexts = []string{"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"}
	fimRepTexts = []string{"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"}
	fimSepTexts = []string{"<|file_sep|>"}
	eogTexts    = []string{"<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
		"<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
		"<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["}
	// gpt-oss: always rendered, whatever the file says.
	alwaysUserDefined = []string{"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"}
)

// loaded is a vocabulary checked and indexed for tokenizing.
type loaded struct {
	v       Vocab // as given (Vocab() returns a copy of it)
	attrs   []uint16
	scores  []float32
	tokenID map[string]int32
	eot     int32
	eog     map[int32]bool

	// specials are the control, user-defined and unknown tokens, longest
	// text first: the order in which text is searched for them.
	specials []int32
}

// index validates v and builds the lookups; it applies llama.cpp's
// load-time fix-ups of token attributes.
func index(v Vocab) (*loaded, error) {
	n := len(v.Tokens)
	if n == 0 {
		return nil, fmt.Errorf("tokenizer: vocabulary has no tokens")
	}
	if n > 1<<31-2 {
		return nil, fmt.Errorf("tokenizer: vocabulary of %d tokens is too large", n)
	}
	if v.Scores != nil && len(v.Scores) < n {
		return nil, fmt.Errorf("tokenizer: %d scores for %d tokens", len(v.Scores), n)
	}
	if v.Types != nil && len(v.Types) < n {
		return nil, fmt.Errorf("tokenizer: %d token types for %d tokens", len(v.Types), n)
	}
	for _, s := range []struct {
		name string
		id   int32
	}{{"BOS", v.BOS}, {"EOS", v.EOS}, {"EOT", v.EOT}, {"EOM", v.EOM}, {"UNK", v.UNK}, {"PAD", v.PAD}} {
		if s.id != NoToken && (s.id < 0 || int(s.id) >= n) {
			return nil, fmt.Errorf("tokenizer: %s id %d is outside the vocabulary of %d tokens", s.name, s.id, n)
		}
	}
	if v.AddBOS && v.BOS == NoToken {
		return nil, fmt.Errorf("tokenizer: AddBOS is set but there is no BOS token")
	}
	if v.AddEOS && v.EOS == NoToken {
		return nil, fmt.Errorf("tokenizer: AddEOS is set but there is no EOS token")
	}

	l := &loaded{v: v, attrs: make([]uint16, n), scores: make([]float32, n), tokenID: make(map[string]int32, n), eot: v.EOT}
	for i, text := range v.Tokens {
		if text == "" {
			// llama.cpp renames empty tokens so that they cannot match
			// empty text.
			text = "[EMPTY_" + strconv.Itoa(i) + "]"
		}
		if prev, dup := l.tokenID[text]; dup {
			return nil, fmt.Errorf("tokenizer: tokens %d and %d have the same text %q", prev, i, text)
		}
		l.tokenID[text] = int32(i)
		l.attrs[i] = attrNormal
		if v.Types != nil {
			l.attrs[i] = typeAttr(v.Types[i])
		}
		if v.Scores != nil {
			l.scores[i] = v.Scores[i]
		}
	}
	l.fixAttrs()
	for id, a := range l.attrs {
		if a&(attrControl|attrUserDefined|attrUnknown) != 0 {
			l.specials = append(l.specials, int32(id))
		}
	}
	// llama.cpp sorts by length only (unstable); ties go by id here so that
	// the order is deterministic.
	sort.SliceStable(l.specials, func(a, b int) bool {
		return len(l.text(l.specials[a])) > len(l.text(l.specials[b]))
	})
	return l, nil
}

// text is the token's text as indexed (empty tokens renamed).
func (l *loaded) text(id int32) string {
	if t := l.v.Tokens[id]; t != "" {
		return t
	}
	return "[EMPTY_" + strconv.Itoa(int(id)) + "]"
}

// findText returns the lowest id among the tokens with one of the texts.
func (l *loaded) findText(texts []string) int32 {
	best := NoToken
	for _, t := range texts {
		if id, ok := l.tokenID[t]; ok && (best == NoToken || id < best) {
			best = id
		}
	}
	return best
}

// fixAttrs finds the end-of-generation tokens and adjusts attributes by
// token text, as llama.cpp does after reading the types.
func (l *loaded) fixAttrs() {
	makeControl := func(id int32) {
		if id != NoToken {
			l.attrs[id] |= attrControl
		}
	}
	// Special tokens the file does not name are found by text (llama.cpp
	// takes whichever its hash map yields first; the lowest id here).
	if l.eot == NoToken {
		l.eot = l.findText(eotTexts)
		makeControl(l.eot)
	}
	eom := l.v.EOM
	if eom == NoToken {
		eom = l.findText(eomTexts)
		makeControl(eom)
	}
	for _, texts := range [][]string{fimPreTexts, fimSufTexts, fimMidTexts} {
		makeControl(l.findText(texts))
	}
	l.eog = map[int32]bool{}
	for _, texts := range [][]string{fimPadTexts, fimRepTexts, fimSepTexts} {
		id := l.findText(texts)
		makeControl(id)
		if id != NoToken {
			l.eog[id] = true
		}
	}
	// Control tokens named like "<unused12>" are unused.
	for id, a := range l.attrs {
		if a&attrControl != 0 && strings.Contains(l.text(int32(id)), "unused") {
			l.attrs[id] |= attrUnused
		}
	}
	for _, t := range eogTexts {
		if id, ok := l.tokenID[t]; ok {
			l.eog[id] = true
			makeControl(id)
		}
	}
	for _, t := range alwaysUserDefined {
		if id, ok := l.tokenID[t]; ok {
			l.attrs[id] = attrUserDefined
		}
	}
	for _, id := range []int32{l.v.EOS, l.eot, eom} {
		if id != NoToken {
			l.eog[id] = true
		}
	}
	// gpt-oss and solar-open end turns with <|end|> without ending the
	// generation; gemma-4 uses </s> as text.
	has := func(t string) bool { id, ok := l.tokenID[t]; return ok && l.eog[id] }
	hasCall := has("<|call|>") || has("<|calls|>")
	if id, ok := l.tokenID["<|end|>"]; ok && l.eog[id] && hasCall && (has("<|return|>") || has("<|flush|>")) {
		delete(l.eog, id)
		l.attrs[id] = attrUserDefined
	}
	if id, ok := l.tokenID["</s>"]; ok && l.eog[id] && has("<|tool_response>") {
		delete(l.eog, id)
		l.attrs[id] = attrNormal
	}
}
