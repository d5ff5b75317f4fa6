package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"llamago/gguf"
)

// jsonObject is a decoded JSON object; its values are what encoding/json
// gives an any (string, float64, bool, nil, []any, map[string]any).
type jsonObject = map[string]any

// readJSONObject reads dir/name; a missing file gives nil and no error.
func readJSONObject(dir, name string) (jsonObject, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var obj jsonObject
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return obj, nil
}

// truthy is Python's truth value of a decoded JSON value, which the logic
// ported from llama.cpp's gguf-py relies on.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != ""
	case float64:
		return x != 0
	case []any:
		return len(x) > 0
	case jsonObject:
		return len(x) > 0
	}
	return true
}

// pyEqual is Python's == between a template's token (a string) and a
// tokenizer_config entry, which may be a string, a dict or absent.
func pyEqual(s string, v any) bool {
	x, ok := v.(string)
	return ok && x == s
}

// jsonInt returns v as an int when it is a JSON integer.
func jsonInt(v any) (int, bool) {
	x, ok := v.(float64)
	if !ok || x != math.Trunc(x) || math.Abs(x) > math.MaxInt32 {
		return 0, false
	}
	return int(x), true
}

// tokenContent returns the text of a special-token entry of
// tokenizer_config.json: a string, or an AddedToken dict's "content".
func tokenContent(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case jsonObject:
		s, ok := x["content"].(string)
		return s, ok
	}
	return "", false
}

// addHFVocab writes the tokenizer metadata of a Hugging Face llama
// directory as convert_hf_to_gguf.py's LlamaModel.set_vocab does: a
// SentencePiece tokenizer.model when there is one, else a tokenizer.json
// BPE vocabulary with byte fallback (LlamaHfVocab), both as GGUF's "llama"
// tokenizer; then the special tokens, add-BOS/EOS flags and chat template
// (gguf-py's SpecialVocab).
func addHFVocab(out *ggufFile, dir string, vocabSize int) error {
	tcfg, err := readJSONObject(dir, "tokenizer_config.json")
	if err != nil {
		return err
	}
	if v, ok := tcfg["add_prefix_space"].(bool); ok {
		out.set("tokenizer.ggml.add_space_prefix", gguf.Bool(v))
	}
	var voc vocab
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.model")); err == nil {
		voc, err = sentencePieceVocab(dir, vocabSize, tcfg)
		if err != nil {
			return err
		}
	} else {
		voc, err = llamaHFVocab(dir, tcfg)
		if err != nil {
			return err
		}
	}
	out.set("tokenizer.ggml.model", gguf.String("llama"))
	out.set("tokenizer.ggml.pre", gguf.String("default"))
	out.set("tokenizer.ggml.tokens", gguf.Strings(voc.tokens))
	out.set("tokenizer.ggml.scores", gguf.Float32s(voc.scores))
	out.set("tokenizer.ggml.token_type", gguf.Int32s(voc.types))

	sv, err := loadSpecialVocab(dir, len(voc.tokens), tcfg)
	if err != nil {
		return err
	}
	sv.addTo(out)
	// Two model-specific fix-ups of LlamaModel.set_vocab: CodeLlama's
	// infill vocabulary (of which only the EOT id has a GGUF key) and the
	// small Granite models, which add no BOS.
	switch vocabSize {
	case 32016:
		if !out.has("tokenizer.ggml.eot_token_id") {
			out.set("tokenizer.ggml.eot_token_id", gguf.Uint32(32010))
		}
	case 49152:
		out.set("tokenizer.ggml.add_bos_token", gguf.Bool(false))
	}
	return nil
}

var byteTokenPattern = regexp.MustCompile(`^<0x[0-9A-Fa-f]{2}>$`)

// llamaHFVocab reads a tokenizer.json BPE vocabulary with byte fallback as
// gguf-py's LlamaHfVocab does: the model's tokens in id order, then added
// tokens beyond them; every score -1000; "<0xNN>" tokens BYTE, the
// tokenizer's special tokens CONTROL, other added tokens USER_DEFINED, the
// rest NORMAL.
func llamaHFVocab(dir string, tcfg jsonObject) (vocab, error) {
	var v vocab
	tj, err := readJSONObject(dir, "tokenizer.json")
	if err != nil {
		return v, err
	}
	if tj == nil {
		return v, fmt.Errorf("%s has neither tokenizer.model nor tokenizer.json", dir)
	}
	model, _ := tj["model"].(jsonObject)
	decoder, _ := tj["decoder"].(jsonObject)
	byteFallback, _ := model["byte_fallback"].(bool)
	if model["type"] != "BPE" || !byteFallback || decoder["type"] != "Sequence" {
		return v, errors.New("tokenizer.json is not a SentencePiece-style BPE with byte fallback; GPT-2 style BPE vocabularies (Llama 3) are not supported")
	}
	rawVocab, _ := model["vocab"].(jsonObject)
	if len(rawVocab) == 0 {
		return v, errors.New("tokenizer.json has an empty model.vocab")
	}
	n := len(rawVocab)
	ids := map[string]int{}
	texts := make([]string, n)
	filled := make([]bool, n)
	for text, raw := range rawVocab {
		id, ok := jsonInt(raw)
		if !ok || id < 0 || id >= n || filled[id] {
			return v, fmt.Errorf("tokenizer.json: token %q has id %v: model.vocab ids must be 0..%d, each once", text, raw, n-1)
		}
		texts[id], filled[id] = text, true
		ids[text] = id
	}
	// Added tokens past the model's vocabulary come after it, in id order.
	type added struct {
		text string
		id   int
	}
	var extra []added
	addedList, _ := tj["added_tokens"].([]any)
	for _, a := range addedList {
		obj, _ := a.(jsonObject)
		text, ok1 := obj["content"].(string)
		id, ok2 := jsonInt(obj["id"])
		if !ok1 || !ok2 || id < 0 {
			return v, fmt.Errorf("tokenizer.json: malformed added token %v", a)
		}
		if id >= n {
			extra = append(extra, added{text, id})
		}
		if _, ok := ids[text]; !ok {
			ids[text] = id
		}
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].id < extra[j].id })
	for i, e := range extra {
		if e.id != n+i {
			return v, fmt.Errorf("tokenizer.json: added token %q has id %d, want %d: ids must follow the vocabulary without gaps", e.text, e.id, n+i)
		}
	}

	specialTexts, err := hfSpecialTokens(dir, tcfg)
	if err != nil {
		return v, err
	}
	specialIDs := map[int]bool{}
	for _, s := range specialTexts {
		if id, ok := ids[s]; ok {
			specialIDs[id] = true
		} else if unk, ok := ids[hfUnkToken(dir, tcfg)]; ok {
			// transformers maps a token missing from the vocabulary to unk.
			specialIDs[unk] = true
		}
	}

	total := n + len(extra)
	v.tokens = make([]string, 0, total)
	v.scores = make([]float32, 0, total)
	v.types = make([]int32, 0, total)
	isSpecial := map[string]bool{}
	for _, s := range specialTexts {
		isSpecial[s] = true
	}
	for id, text := range texts {
		typ := int32(tokenNormal)
		switch {
		case byteTokenPattern.MatchString(text):
			typ = tokenByte
		case specialIDs[id]:
			typ = tokenControl
		}
		v.tokens = append(v.tokens, text)
		v.scores = append(v.scores, -1000)
		v.types = append(v.types, typ)
	}
	for _, e := range extra {
		typ := int32(tokenUserDefined)
		if isSpecial[e.text] {
			typ = tokenNormal
			if specialIDs[ids[e.text]] {
				typ = tokenControl
			}
		}
		v.tokens = append(v.tokens, e.text)
		v.scores = append(v.scores, -1000)
		v.types = append(v.types, typ)
	}
	return v, nil
}

// specialTokenKeys are transformers' SPECIAL_TOKENS_ATTRIBUTES less the
// additional tokens, which are a list.
var specialTokenKeys = []string{"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}

// hfSpecialTokens returns the texts of the tokenizer's special tokens as
// transformers' all_special_tokens lists them: the entries of
// tokenizer_config.json, overridden by special_tokens_map.json, with
// LlamaTokenizer's defaults (<unk>, <s>, </s>) for absent ones.
func hfSpecialTokens(dir string, tcfg jsonObject) ([]string, error) {
	stm, err := readJSONObject(dir, "special_tokens_map.json")
	if err != nil {
		return nil, err
	}
	merged := jsonObject{}
	for _, key := range append(specialTokenKeys, "additional_special_tokens") {
		if v, ok := tcfg[key]; ok {
			merged[key] = v
		}
		if v, ok := stm[key]; ok {
			merged[key] = v
		}
	}
	if isLlamaTokenizerClass(tcfg) {
		for key, def := range map[string]string{"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"} {
			if _, ok := merged[key]; !ok {
				merged[key] = def
			}
		}
	}
	var list []string
	seen := map[string]bool{}
	add := func(v any) {
		if s, ok := tokenContent(v); ok && s != "" && !seen[s] {
			seen[s] = true
			list = append(list, s)
		}
	}
	for _, key := range specialTokenKeys {
		add(merged[key])
	}
	if extra, ok := merged["additional_special_tokens"].([]any); ok {
		for _, v := range extra {
			add(v)
		}
	}
	return list, nil
}

// hfUnkToken is the unknown token's text, or "" when there is none.
func hfUnkToken(dir string, tcfg jsonObject) string {
	if stm, _ := readJSONObject(dir, "special_tokens_map.json"); stm != nil {
		if s, ok := tokenContent(stm["unk_token"]); ok {
			return s
		}
	}
	if v, ok := tcfg["unk_token"]; ok {
		s, _ := tokenContent(v)
		return s
	}
	if isLlamaTokenizerClass(tcfg) {
		return "<unk>"
	}
	return ""
}

// isLlamaTokenizerClass reports whether transformers loads the directory's
// tokenizer as a LlamaTokenizer(Fast), which is what it does for a llama
// model without tokenizer_class.
func isLlamaTokenizerClass(tcfg jsonObject) bool {
	class, ok := tcfg["tokenizer_class"].(string)
	return !ok || strings.HasPrefix(class, "Llama")
}
