package tokenizer

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// HFFiles are the Hugging Face tokenizer files of a model. Only
// TokenizerJSON is required; the others supply the special tokens and the
// add_bos/add_eos flags as llama.cpp's converter reads them.
type HFFiles struct {
	TokenizerJSON   []byte // tokenizer.json
	TokenizerConfig []byte // tokenizer_config.json, optional
	ModelConfig     []byte // config.json, optional (bos_token_id, eos_token_id, ...)
}

// FromHFTokenizerJSON builds a tokenizer from a Hugging Face tokenizer.json
// alone; see FromHF.
func FromHFTokenizerJSON(data []byte) (*Tokenizer, error) {
	return FromHF(HFFiles{TokenizerJSON: data})
}

// FromHF builds a tokenizer from Hugging Face tokenizer files whose model
// is "BPE", in one of two shapes:
//
//   - SentencePiece-like (Llama 2, TinyStories): byte_fallback, spaces
//     replaced by ▁ (a Prepend + Replace normalizer or a Metaspace
//     pre-tokenizer). Vocab() then describes the GGUF vocabulary llama.cpp's
//     convert_hf_to_gguf.py writes for it (LlamaHfVocab): model "llama",
//     pre "default", every score -1000, <0xXX> tokens typed byte, special
//     tokens control; the merges are listed but SetGGUF does not write
//     them, as the converter does not. Encode, however, works as Hugging
//     Face's tokenizers does: merges by the tokenizer.json ranks, fuses
//     runs of unknown characters into one unknown token (fuse_unk), and
//     matches added tokens leftmost-longest, the "normalized" ones against
//     the normalized text (so with a Prepend normalizer "<|end|>" is found
//     only after a space or at the start). llama.cpp, given the converted
//     GGUF, has only the equal scores, merges leftmost-first and so can
//     tokenize the same text differently; New(t.Vocab()) and FromGGUF of the
//     converted file reproduce llama.cpp's behaviour.
//   - Byte-level (GPT-2, Llama 3, Qwen 2): a ByteLevel pre-tokenizer,
//     optionally after a Split by the Llama 3 or Qwen 2 expression. Vocab()
//     is model "gpt2" with the matching pre-tokenizer name and the merges,
//     as convert_hf_to_gguf.py's _set_vocab_gpt2 writes it (except that the
//     pre-tokenizer is recognised by its expression, not by hashing
//     Hugging Face's output as the converter does), and the tokenizer is
//     llama.cpp's for that vocabulary.
//
// Decoding is llama.cpp's in both shapes. Not supported: other models
// (WordPiece, Unigram), other normalizers and pre-tokenizers, and the
// lstrip/rstrip/single_word flags of added tokens.
func FromHF(files HFFiles) (*Tokenizer, error) {
	var tj hfTokenizerJSON
	if err := json.Unmarshal(files.TokenizerJSON, &tj); err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json: %w", err)
	}
	if tj.Model.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer: tokenizer.json model type %q is not supported (want BPE)", tj.Model.Type)
	}
	var cfg map[string]any
	if len(files.TokenizerConfig) > 0 {
		if err := json.Unmarshal(files.TokenizerConfig, &cfg); err != nil {
			return nil, fmt.Errorf("tokenizer: tokenizer_config.json: %w", err)
		}
	}
	var modelCfg map[string]any
	if len(files.ModelConfig) > 0 {
		if err := json.Unmarshal(files.ModelConfig, &modelCfg); err != nil {
			return nil, fmt.Errorf("tokenizer: config.json: %w", err)
		}
	}
	merges, err := tj.merges()
	if err != nil {
		return nil, err
	}
	if tj.isByteLevel() {
		return fromHFByteLevel(&tj, merges, cfg, modelCfg)
	}
	return fromHFMetaspace(&tj, merges, cfg, modelCfg)
}

type hfAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	Normalized *bool  `json:"normalized"`
}

// hfComponent is a normalizer, pre-tokenizer, post-processor or decoder:
// a type and its settings, possibly a sequence of others.
type hfComponent struct {
	Type          string          `json:"type"`
	Normalizers   []hfComponent   `json:"normalizers"`
	Pretokenizers []hfComponent   `json:"pretokenizers"`
	Processors    []hfComponent   `json:"processors"`
	Decoders      []hfComponent   `json:"decoders"`
	Prepend       string          `json:"prepend"`
	Content       string          `json:"content"`
	Pattern       json.RawMessage `json:"pattern"`
	Replacement   string          `json:"replacement"`
	PrependScheme string          `json:"prepend_scheme"`
	AddPrefixSpc  *bool           `json:"add_prefix_space"`
	Split         *bool           `json:"split"`
	UseRegex      *bool           `json:"use_regex"`
	Single        []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	} `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int `json:"ids"`
	} `json:"special_tokens"`
}

// flatten lists c and the members of the sequences it contains.
func (c *hfComponent) flatten() []hfComponent {
	if c == nil {
		return nil
	}
	out := []hfComponent{*c}
	for _, list := range [][]hfComponent{c.Normalizers, c.Pretokenizers, c.Processors, c.Decoders} {
		for i := range list {
			out = append(out, list[i].flatten()...)
		}
	}
	return out
}

// patternString returns a Replace/Split pattern: {"String": s} or
// {"Regex": r}.
func (c *hfComponent) patternString() (s string, isRegex bool) {
	var p struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	}
	if json.Unmarshal(c.Pattern, &p) != nil {
		return "", false
	}
	if p.Regex != nil {
		return *p.Regex, true
	}
	if p.String != nil {
		return *p.String, false
	}
	return "", false
}

type hfTokenizerJSON struct {
	AddedTokens   []hfAddedToken `json:"added_tokens"`
	Normalizer    *hfComponent   `json:"normalizer"`
	PreTokenizer  *hfComponent   `json:"pre_tokenizer"`
	PostProcessor *hfComponent   `json:"post_processor"`
	Decoder       *hfComponent   `json:"decoder"`
	Model         struct {
		Type         string          `json:"type"`
		Vocab        map[string]int  `json:"vocab"`
		Merges       json.RawMessage `json:"merges"`
		ByteFallback bool            `json:"byte_fallback"`
		IgnoreMerges bool            `json:"ignore_merges"`
		FuseUnk      bool            `json:"fuse_unk"`
		UnkToken     *string         `json:"unk_token"`
	} `json:"model"`
}

// merges reads model.merges in either format: "a b" strings, or [a, b]
// pairs (transformers 4.45+), whose spaces llama.cpp's converter writes as
// U+0120.
func (tj *hfTokenizerJSON) merges() ([]string, error) {
	if len(tj.Model.Merges) == 0 || string(tj.Model.Merges) == "null" {
		return nil, nil
	}
	var asStrings []string
	if err := json.Unmarshal(tj.Model.Merges, &asStrings); err == nil {
		return asStrings, nil
	}
	var pairs [][]string
	if err := json.Unmarshal(tj.Model.Merges, &pairs); err != nil {
		return nil, fmt.Errorf("tokenizer: tokenizer.json merges are neither strings nor pairs: %w", err)
	}
	out := make([]string, len(pairs))
	for i, p := range pairs {
		if len(p) != 2 {
			return nil, fmt.Errorf("tokenizer: tokenizer.json merge %d has %d parts", i, len(p))
		}
		out[i] = strings.ReplaceAll(p[0], " ", "Ġ") + " " + strings.ReplaceAll(p[1], " ", "Ġ")
	}
	return out, nil
}

func (tj *hfTokenizerJSON) isByteLevel() bool {
	for _, c := range tj.PreTokenizer.flatten() {
		if c.Type == "ByteLevel" {
			return true
		}
	}
	return false
}

// tokenTexts lays the vocabulary and the added tokens out by id. A gap is
// filled like the converter does ("[PAD<id>]", typed unused) and reported
// in gaps.
func (tj *hfTokenizerJSON) tokenTexts() (texts []string, inModel []bool, gaps []int, err error) {
	n := 0
	for _, id := range tj.Model.Vocab {
		n = max(n, id+1)
	}
	for _, a := range tj.AddedTokens {
		n = max(n, a.ID+1)
	}
	if n == 0 {
		return nil, nil, nil, fmt.Errorf("tokenizer: tokenizer.json has an empty vocabulary")
	}
	if n > 1<<24 {
		return nil, nil, nil, fmt.Errorf("tokenizer: tokenizer.json has a token id of %d", n-1)
	}
	texts = make([]string, n)
	inModel = make([]bool, n)
	set := make([]bool, n)
	for text, id := range tj.Model.Vocab {
		if id < 0 {
			return nil, nil, nil, fmt.Errorf("tokenizer: tokenizer.json token %q has id %d", text, id)
		}
		if set[id] {
			return nil, nil, nil, fmt.Errorf("tokenizer: tokenizer.json has two tokens with id %d", id)
		}
		texts[id], inModel[id], set[id] = text, true, true
	}
	for _, a := range tj.AddedTokens {
		if a.ID < 0 {
			return nil, nil, nil, fmt.Errorf("tokenizer: tokenizer.json added token %q has id %d", a.Content, a.ID)
		}
		if set[a.ID] && texts[a.ID] != a.Content {
			return nil, nil, nil, fmt.Errorf("tokenizer: tokenizer.json added token %q has the id %d of %q", a.Content, a.ID, texts[a.ID])
		}
		texts[a.ID], set[a.ID] = a.Content, true
	}
	for id, ok := range set {
		if !ok {
			texts[id] = fmt.Sprintf("[PAD%d]", id)
			gaps = append(gaps, id)
		}
	}
	return texts, inModel, gaps, nil
}

// hfSpecials resolves the special tokens as gguf-py's SpecialVocab does:
// names from tokenizer_config.json looked up among the added tokens, then
// ids from config.json; add_bos/add_eos from the post-processor template,
// overridden by tokenizer_config.json. Without tokenizer_config.json the
// template's tokens give the ids too (the converter would leave them to
// config.json).
func hfSpecials(tj *hfTokenizerJSON, cfg, modelCfg map[string]any, v *Vocab) {
	added := map[string]int{}
	for _, a := range tj.AddedTokens {
		if _, ok := added[a.Content]; !ok {
			added[a.Content] = a.ID
		}
	}
	named := map[string]*int32{"bos": &v.BOS, "eos": &v.EOS, "unk": &v.UNK, "pad": &v.PAD, "eot": &v.EOT, "eom": &v.EOM}
	set := map[string]bool{}
	n := int32(len(v.Tokens))
	setID := func(typ string, id int) {
		if p, ok := named[typ]; ok && !set[typ] && id >= 0 && int32(id) < n {
			*p = int32(id)
			set[typ] = true
		}
	}
	// The post-processor template: a leading special token is BOS, a
	// trailing one EOS.
	for _, c := range tj.PostProcessor.flatten() {
		if c.Type != "TemplateProcessing" || len(c.Single) < 2 {
			continue
		}
		idOf := func(name string) (int, bool) {
			if st, ok := c.SpecialTokens[name]; ok && len(st.IDs) == 1 {
				return st.IDs[0], true
			}
			id, ok := added[name]
			return id, ok
		}
		if first := c.Single[0].SpecialToken; first != nil {
			v.AddBOS = true
			if id, ok := idOf(first.ID); ok && cfg == nil {
				setID("bos", id)
			}
		}
		if last := c.Single[len(c.Single)-1].SpecialToken; last != nil {
			v.AddEOS = true
			if id, ok := idOf(last.ID); ok && cfg == nil {
				setID("eos", id)
			}
		}
	}
	for typ := range named {
		if b, ok := cfg["add_"+typ+"_token"].(bool); ok {
			switch typ {
			case "bos":
				v.AddBOS = b
			case "eos":
				v.AddEOS = b
			}
		}
		var content string
		switch e := cfg[typ+"_token"].(type) {
		case string:
			content = e
		case map[string]any:
			content, _ = e["content"].(string)
		}
		if id, ok := added[content]; ok && content != "" {
			setID(typ, id)
		}
	}
	for typ := range named {
		if f, ok := modelCfg[typ+"_token_id"].(float64); ok && f == float64(int(f)) {
			setID(typ, int(f))
		}
	}
}

// specialIDs are the ids Hugging Face counts as special: the special
// tokens named in tokenizer_config.json (with additional_special_tokens),
// or without it, the added tokens marked special.
func specialIDs(tj *hfTokenizerJSON, cfg map[string]any, v *Vocab) map[int]bool {
	ids := map[int]bool{}
	if cfg == nil {
		for _, a := range tj.AddedTokens {
			if a.Special {
				ids[a.ID] = true
			}
		}
		return ids
	}
	for _, id := range []int32{v.BOS, v.EOS, v.UNK, v.PAD} {
		if id != NoToken {
			ids[int(id)] = true
		}
	}
	byText := map[string]int{}
	for _, a := range tj.AddedTokens {
		byText[a.Content] = a.ID
	}
	for k, e := range cfg {
		if !strings.HasSuffix(k, "_token") && k != "additional_special_tokens" {
			continue
		}
		var list []any
		if l, ok := e.([]any); ok {
			list = l
		} else {
			list = []any{e}
		}
		for _, item := range list {
			var content string
			switch x := item.(type) {
			case string:
				content = x
			case map[string]any:
				content, _ = x["content"].(string)
			}
			if id, ok := byText[content]; ok {
				ids[id] = true
			}
		}
	}
	return ids
}

var byteTokenRE = regexp.MustCompile(`^<0x[0-9A-Fa-f]{2}>$`)

// fromHFMetaspace handles the SentencePiece-like shape.
func fromHFMetaspace(tj *hfTokenizerJSON, merges []string, cfg, modelCfg map[string]any) (*Tokenizer, error) {
	if !tj.Model.ByteFallback {
		return nil, fmt.Errorf("tokenizer: tokenizer.json BPE without byte_fallback or a ByteLevel pre-tokenizer is not supported")
	}
	mode, err := metaspaceMode(tj)
	if err != nil {
		return nil, err
	}
	texts, inModel, gaps, err := tj.tokenTexts()
	if err != nil {
		return nil, err
	}
	if len(gaps) > 0 {
		return nil, fmt.Errorf("tokenizer: tokenizer.json has no token with id %d", gaps[0])
	}
	v := Defaults(ModelLlama, "default")
	v.Tokens = texts
	if tj.Model.UnkToken != nil {
		if id, ok := tj.Model.Vocab[*tj.Model.UnkToken]; ok {
			v.UNK = int32(id)
		}
	}
	hfSpecials(tj, cfg, modelCfg, &v)
	special := specialIDs(tj, cfg, &v)
	v.Scores = make([]float32, len(texts))
	v.Types = make([]TokenType, len(texts))
	for id, text := range texts {
		v.Scores[id] = -1000
		switch {
		case inModel[id] && byteTokenRE.MatchString(text):
			v.Types[id] = TypeByte
		case special[id]:
			v.Types[id] = TypeControl
		case inModel[id]:
			v.Types[id] = TypeNormal
		default:
			v.Types[id] = TypeUserDefined
		}
	}
	// The merges are in Vocab() for the record, but SetGGUF does not
	// write them for a llama model (neither does the converter), and New
	// ignores them: merging by rank is set up here only.
	v.Merges = merges
	t, err := New(v)
	if err != nil {
		return nil, err
	}
	mode.ranks = parseMerges(merges)
	mode.fuseUnknown = tj.Model.FuseUnk
	for _, a := range tj.AddedTokens {
		if a.Content == "" {
			continue
		}
		p := hfPattern{text: a.Content, id: int32(a.ID), special: a.Special}
		normalized := !a.Special // Hugging Face's default
		if a.Normalized != nil {
			normalized = *a.Normalized
		}
		if normalized {
			// Matched in the normalized text by its normalized form.
			p.text = strings.ReplaceAll(p.text, " ", "▁")
			if mode.prepend {
				p.text = "▁" + p.text
			}
			mode.normalized = append(mode.normalized, p)
		} else {
			mode.raw = append(mode.raw, p)
		}
	}
	t.hf = mode
	return t, nil
}

// hfMode is how a SentencePiece-like Hugging Face tokenizer differs from
// llama.cpp's SentencePiece-style one: merges by rank, its own placement of
// the leading ▁, and added tokens matched leftmost-longest, those marked
// "normalized" against the normalized text.
type hfMode struct {
	ranks       map[tokenPair]int
	prepend     bool   // a Prepend normalizer puts ▁ before every piece between raw added tokens
	metaspace   string // a Metaspace pre-tokenizer's prepend_scheme: "always", "first", "never", or "" for none
	fuseUnknown bool   // one unknown token for a run of unknown characters (fuse_unk)
	raw         []hfPattern
	normalized  []hfPattern
}

type hfPattern struct {
	text    string
	id      int32
	special bool
}

// encodeHF tokenizes as Hugging Face's tokenizers does for a
// SentencePiece-like tokenizer.json: split out the added tokens that are
// matched raw, normalize each remaining piece (spaces to ▁, the Prepend
// normalizer's ▁), split out the normalized added tokens, then merge each
// piece by rank. Special added tokens are split out only with
// ParseSpecial (Hugging Face always does).
func (t *Tokenizer) encodeHF(text string, opts EncodeOptions) ([]int32, error) {
	out := make([]int32, 0, len(text)/3+2)
	if opts.AddSpecial && t.v.AddBOS {
		out = append(out, t.v.BOS)
	}
	s := spmSession{t: t}
	first := true // the next piece starts the input
	var err error
	for _, p := range splitAdded(text, t.hf.raw, opts.ParseSpecial) {
		if p.token != NoToken {
			out = append(out, p.token)
			first = false
			continue
		}
		norm := strings.ReplaceAll(p.text, " ", "▁")
		if t.hf.prepend {
			norm = "▁" + norm
		}
		for _, q := range splitAdded(norm, t.hf.normalized, opts.ParseSpecial) {
			if q.token != NoToken {
				out = append(out, q.token)
				first = false
				continue
			}
			startsWithSpace := strings.HasPrefix(q.text, "▁")
			prefix := !startsWithSpace && (t.hf.metaspace == "always" || (t.hf.metaspace == "first" && first))
			if out, err = s.encode(q.text, prefix, out); err != nil {
				return nil, err
			}
			first = false
		}
	}
	if opts.AddSpecial && t.v.AddEOS {
		out = append(out, t.v.EOS)
	}
	return out, nil
}

// splitAdded splits text at the added tokens it contains, leftmost
// longest first as Hugging Face's matcher does; special ones only when
// parseSpecial.
func splitAdded(text string, patterns []hfPattern, parseSpecial bool) []fragment {
	if text == "" {
		return nil
	}
	var out []fragment
	start := 0
	for i := 0; i < len(text); {
		best := -1
		for k, p := range patterns {
			if (parseSpecial || !p.special) && strings.HasPrefix(text[i:], p.text) && (best < 0 || len(p.text) > len(patterns[best].text)) {
				best = k
			}
		}
		if best < 0 {
			i++
			continue
		}
		if i > start {
			out = append(out, fragment{text: text[start:i], token: NoToken})
		}
		out = append(out, fragment{token: patterns[best].id})
		i += len(patterns[best].text)
		start = i
	}
	if start < len(text) {
		out = append(out, fragment{text: text[start:], token: NoToken})
	}
	return out
}

// metaspaceMode recognises how spaces become ▁ in a SentencePiece-like
// tokenizer.json: a Prepend and Replace normalizer (Llama 2) or a
// Metaspace pre-tokenizer.
func metaspaceMode(tj *hfTokenizerJSON) (*hfMode, error) {
	m := &hfMode{}
	replace := false
	for _, c := range tj.Normalizer.flatten() {
		switch c.Type {
		case "Prepend":
			if c.Prepend != "▁" {
				return nil, fmt.Errorf("tokenizer: tokenizer.json Prepend normalizer adds %q, not ▁", c.Prepend)
			}
			m.prepend = true
		case "Replace":
			if s, isRegex := c.patternString(); isRegex || s != " " || c.Content != "▁" {
				return nil, fmt.Errorf("tokenizer: tokenizer.json Replace normalizer %q -> %q is not supported", s, c.Content)
			}
			replace = true
		case "Sequence":
		default:
			return nil, fmt.Errorf("tokenizer: tokenizer.json normalizer %q is not supported", c.Type)
		}
	}
	for _, c := range tj.PreTokenizer.flatten() {
		switch c.Type {
		case "Metaspace":
			if c.Replacement != "" && c.Replacement != "▁" {
				return nil, fmt.Errorf("tokenizer: tokenizer.json Metaspace replacement %q is not ▁", c.Replacement)
			}
			if c.Split != nil && *c.Split {
				return nil, fmt.Errorf("tokenizer: tokenizer.json Metaspace with split is not supported")
			}
			switch {
			case c.PrependScheme == "always" || c.PrependScheme == "first" || c.PrependScheme == "never":
				m.metaspace = c.PrependScheme
			case c.AddPrefixSpc == nil || *c.AddPrefixSpc:
				m.metaspace = "always" // the older add_prefix_space form
			default:
				m.metaspace = "never"
			}
			replace = true
		case "Sequence":
		default:
			return nil, fmt.Errorf("tokenizer: tokenizer.json pre-tokenizer %q is not supported", c.Type)
		}
	}
	if !replace {
		return nil, fmt.Errorf("tokenizer: tokenizer.json does not replace spaces by ▁ (no Replace normalizer or Metaspace pre-tokenizer)")
	}
	return m, nil
}

// fromHFByteLevel handles the byte-level shape.
func fromHFByteLevel(tj *hfTokenizerJSON, merges []string, cfg, modelCfg map[string]any) (*Tokenizer, error) {
	pre, err := byteLevelPre(tj)
	if err != nil {
		return nil, err
	}
	texts, _, gaps, err := tj.tokenTexts()
	if err != nil {
		return nil, err
	}
	v := Defaults(ModelGPT2, pre)
	v.BOS, v.EOS = NoToken, NoToken
	v.Tokens = texts
	v.Merges = merges
	v.Types = make([]TokenType, len(texts))
	hfSpecials(tj, cfg, modelCfg, &v)
	added := map[int]hfAddedToken{}
	for _, a := range tj.AddedTokens {
		added[a.ID] = a
	}
	isGap := map[int]bool{}
	for _, id := range gaps {
		isGap[id] = true
	}
	for id, text := range texts {
		a, isAdded := added[id]
		switch {
		case isGap[id]:
			v.Types[id] = TypeUnused
		case isAdded && (a.Special || looksSpecial(text)):
			v.Types[id] = TypeControl
		case isAdded:
			// The converter writes user-defined tokens with spaces, not ▁.
			v.Tokens[id] = strings.ReplaceAll(text, "▁", " ")
			v.Types[id] = TypeUserDefined
		default:
			v.Types[id] = TypeNormal
		}
	}
	return New(v)
}

// looksSpecial is the converter's does_token_look_special.
func looksSpecial(t string) bool {
	switch t {
	case "<pad>", "<mask>", "<2mass>", "[@BOS@]":
		return true
	}
	return (strings.HasPrefix(t, "<|") && strings.HasSuffix(t, "|>")) ||
		(strings.HasPrefix(t, "<｜") && strings.HasSuffix(t, "｜>")) ||
		(strings.HasPrefix(t, "<unused") && strings.HasSuffix(t, ">"))
}

// byteLevelPre names the llama.cpp pre-tokenizer that matches a byte-level
// tokenizer.json.
func byteLevelPre(tj *hfTokenizerJSON) (string, error) {
	var splits []string
	byteLevelRegex := false
	for _, c := range tj.PreTokenizer.flatten() {
		switch c.Type {
		case "Sequence":
		case "Split":
			s, isRegex := c.patternString()
			if !isRegex {
				return "", fmt.Errorf("tokenizer: tokenizer.json Split by string %q is not supported", s)
			}
			splits = append(splits, s)
		case "ByteLevel":
			if c.AddPrefixSpc != nil && *c.AddPrefixSpc {
				return "", fmt.Errorf("tokenizer: tokenizer.json ByteLevel with add_prefix_space is not supported")
			}
			byteLevelRegex = c.UseRegex == nil || *c.UseRegex
		default:
			return "", fmt.Errorf("tokenizer: tokenizer.json pre-tokenizer %q is not supported", c.Type)
		}
	}
	switch {
	case len(splits) == 0 && byteLevelRegex:
		return "gpt-2", nil
	case len(splits) == 1 && !byteLevelRegex:
		known := map[string]string{llama3RegexHF: "llama-bpe", llama3Regex: "llama-bpe", qwen2RegexHF: "qwen2", qwen2Regex: "qwen2"}
		if pre, ok := known[splits[0]]; ok {
			return pre, nil
		}
		return "", fmt.Errorf("tokenizer: tokenizer.json split expression %q matches no known pre-tokenizer", splits[0])
	}
	return "", fmt.Errorf("tokenizer: tokenizer.json pre-tokenizer layout is not recognised (%d splits, ByteLevel regex %v)", len(splits), byteLevelRegex)
}
