package convert

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"llamago/gguf"
)

// specialVocab is what gguf-py's SpecialVocab gathers from a Hugging Face
// directory: special token ids, whether to add BOS/EOS/SEP, the chat
// template and normalizer flags. Its entries keep their first-set order,
// the order they are written in.
type specialVocab struct {
	nVocab       int
	types        []string // bos, eos, unk, sep, pad, cls, mask (+ eot, eom)
	ids          []typedID
	add          []typedFlag
	chatTemplate any // nil, a string, or a list of {name, template}
	lowercase    *bool
	stripAccents *bool
}

type typedID struct {
	typ string
	id  int
}

type typedFlag struct {
	typ string
	on  bool
}

// GGUF keys of the special token ids; gguf-py has no key for cls.
var specialIDKeys = map[string]string{
	"bos":  "tokenizer.ggml.bos_token_id",
	"eos":  "tokenizer.ggml.eos_token_id",
	"unk":  "tokenizer.ggml.unknown_token_id",
	"sep":  "tokenizer.ggml.seperator_token_id", // sic: the GGUF key is misspelt
	"pad":  "tokenizer.ggml.padding_token_id",
	"mask": "tokenizer.ggml.mask_token_id",
	"eot":  "tokenizer.ggml.eot_token_id",
	"eom":  "tokenizer.ggml.eom_token_id",
}

// GGUF keys of the add-token flags; the other types have none.
var addFlagKeys = map[string]string{
	"bos": "tokenizer.ggml.add_bos_token",
	"eos": "tokenizer.ggml.add_eos_token",
	"sep": "tokenizer.ggml.add_sep_token",
}

func (sv *specialVocab) setID(typ string, v any) error {
	id, ok := jsonInt(v)
	if !ok {
		return nil
	}
	if id < 0 {
		return fmt.Errorf("invalid id %d for special token %s", id, typ)
	}
	if id >= sv.nVocab {
		return nil // out of range: gguf-py warns and skips it
	}
	for _, e := range sv.ids {
		if e.typ == typ {
			return nil
		}
	}
	sv.ids = append(sv.ids, typedID{typ, id})
	return nil
}

func (sv *specialVocab) setAdd(typ string, on bool) {
	for i := range sv.add {
		if sv.add[i].typ == typ {
			sv.add[i].on = on
			return
		}
	}
	sv.add = append(sv.add, typedFlag{typ, on})
}

func (sv *specialVocab) hasType(typ string) bool {
	for _, t := range sv.types {
		if t == typ {
			return true
		}
	}
	return false
}

// loadSpecialVocab reads tokenizer.json, tokenizer_config.json (already
// decoded as tcfg, nil when absent) and config.json as SpecialVocab does.
func loadSpecialVocab(dir string, nVocab int, tcfg jsonObject) (*specialVocab, error) {
	sv := &specialVocab{nVocab: nVocab, types: []string{"bos", "eos", "unk", "sep", "pad", "cls", "mask"}}
	tj, err := readJSONObject(dir, "tokenizer.json")
	if err != nil {
		return nil, err
	}
	// SpecialVocab edits its copy of tokenizer_config; keep the caller's.
	var cfg jsonObject
	if tcfg != nil {
		cfg = jsonObject{}
		for k, v := range tcfg {
			cfg[k] = v
		}
	}
	var addedTokens []any
	if tj != nil {
		if norm, ok := tj["normalizer"].(jsonObject); ok {
			sv.parseNormalizer(norm)
		}
		addedTokens, _ = tj["added_tokens"].([]any)
		sv.parsePostProcessor(tj, cfg)
	}
	if truthy(cfg) {
		if err := sv.loadTokenizerConfig(dir, cfg, addedTokens); err != nil {
			return nil, err
		}
	}
	config, err := readJSONObject(dir, "config.json")
	if err != nil {
		return nil, err
	}
	for _, typ := range sv.types {
		id, ok := config[typ+"_token_id"]
		if !ok || id == nil {
			if text, isObj := config["text_config"].(jsonObject); isObj {
				id = text[typ+"_token_id"]
			}
		}
		if err := sv.setID(typ, id); err != nil {
			return nil, fmt.Errorf("config.json: %w", err)
		}
	}
	return sv, nil
}

func (sv *specialVocab) parseNormalizer(norm jsonObject) {
	yes := true
	switch norm["type"] {
	case "Lowercase":
		sv.lowercase = &yes
	case "StripAccents":
		sv.stripAccents = &yes
	case "BertNormalizer":
		if v, ok := norm["lowercase"].(bool); ok {
			sv.lowercase = &v
		}
		if v, ok := norm["strip_accents"].(bool); ok {
			sv.stripAccents = &v
		}
	case "Sequence":
		list, _ := norm["normalizers"].([]any)
		for _, n := range list {
			if obj, ok := n.(jsonObject); ok {
				sv.parseNormalizer(obj)
			}
		}
	}
}

// specialTokenID is the "id" of a template entry {"SpecialToken": {...}},
// or "" when the entry is something else.
func specialTokenID(entry any) string {
	obj, _ := entry.(jsonObject)
	st, _ := obj["SpecialToken"].(jsonObject)
	id, _ := st["id"].(string)
	return id
}

func sequenceID(entry any) string {
	obj, _ := entry.(jsonObject)
	seq, _ := obj["Sequence"].(jsonObject)
	id, _ := seq["id"].(string)
	return id
}

// parsePostProcessor infers add_bos/add_eos/add_sep from tokenizer.json's
// post-processor as SpecialVocab does: RobertaProcessing adds all three; a
// TemplateProcessing adds BOS when its single-sequence template starts with
// the BOS (or CLS) token, EOS when it ends with the EOS token, and SEP when
// its pair template puts SEP or EOS between the sequences. cfg (nil when
// there is no tokenizer_config.json) is updated as SpecialVocab updates it.
func (sv *specialVocab) parsePostProcessor(tj, cfg jsonObject) {
	post, ok := tj["post_processor"].(jsonObject)
	if !ok {
		return
	}
	hasCfg := truthy(cfg)
	specialBOS, specialCLS := cfg["bos_token"], cfg["cls_token"]
	specialEOS, specialSEP := cfg["eos_token"], cfg["sep_token"]
	if !truthy(specialBOS) && truthy(specialCLS) && hasCfg {
		specialBOS = specialCLS
		cfg["bos_token"] = specialBOS
	}
	if !truthy(specialEOS) && truthy(specialSEP) && hasCfg {
		specialEOS = specialSEP
		cfg["eos_token"] = specialEOS
	}
	processors := []any{post}
	if list, ok := post["processors"].([]any); ok {
		processors = list
	}
	for _, p := range processors {
		proc, _ := p.(jsonObject)
		switch proc["type"] {
		case "RobertaProcessing":
			sv.setAdd("bos", true)
			sv.setAdd("eos", true)
			sv.setAdd("sep", true)
			if !truthy(specialCLS) && hasCfg {
				specialCLS = specialBOS
				if cls, ok := proc["cls"].([]any); ok && len(cls) > 0 {
					specialCLS = cls[0]
				}
				cfg["cls_token"] = specialCLS
			}
			if !truthy(specialSEP) && hasCfg {
				specialSEP = specialEOS
				if sep, ok := proc["sep"].([]any); ok && len(sep) > 0 {
					specialSEP = sep[0]
				}
				cfg["sep_token"] = specialSEP
			}
		case "TemplateProcessing":
			single, _ := proc["single"].([]any)
			pair, _ := proc["pair"].([]any)
			first, last := "", ""
			if len(single) > 1 {
				if first = specialTokenID(single[0]); first != "" {
					if !hasCfg {
						specialBOS = first
					} else if !pyEqual(first, specialBOS) && !pyEqual(first, specialCLS) {
						if !truthy(specialBOS) {
							specialBOS = first
							cfg["bos_token"] = first
						}
						if !truthy(specialCLS) {
							specialCLS = first
							cfg["cls_token"] = first
						}
					}
					sv.setAdd("bos", pyEqual(first, specialBOS) || pyEqual(first, specialCLS))
				}
				if last = specialTokenID(single[len(single)-1]); last != "" {
					if !hasCfg {
						specialEOS = last
					} else if !pyEqual(last, specialEOS) {
						// The template ends with another token than EOS: the
						// old EOS becomes the end-of-turn (or -message) token.
						if !sv.hasType("eot") {
							sv.types = append(sv.types, "eot")
							cfg["eot_token"] = specialEOS
						} else if !sv.hasType("eom") {
							sv.types = append(sv.types, "eom")
							cfg["eom_token"] = specialEOS
						}
						specialEOS = last
						cfg["eos_token"] = last
					}
					sv.setAdd("eos", pyEqual(last, specialEOS))
				}
			}
			if len(pair) == 0 {
				continue
			}
			start, stop := 0, len(pair)
			if first != "" && specialTokenID(pair[0]) == first {
				start = 1
			}
			if last != "" && specialTokenID(pair[len(pair)-1]) == last {
				stop = len(pair) - 1
			}
			if start >= stop {
				continue
			}
			pair = pair[start:stop]
			if sequenceID(pair[0]) != "A" || sequenceID(pair[len(pair)-1]) != "B" || len(pair) <= 2 {
				continue
			}
			middle := pair[1 : len(pair)-1]
			addSEP := false
			if entry := specialTokenID(middle[0]); entry != "" {
				if (pyEqual(entry, specialSEP) || pyEqual(entry, specialEOS)) && last == "" {
					addSEP = true
				}
			}
			if len(middle) == 2 {
				if entry := specialTokenID(middle[1]); entry != "" && (pyEqual(entry, specialSEP) || pyEqual(entry, specialEOS)) {
					addSEP = true
				}
			}
			sv.setAdd("sep", addSEP)
			if addSEP && !truthy(specialSEP) && hasCfg {
				cfg["sep_token"] = specialEOS
			}
		}
	}
}

// loadTokenizerConfig takes the chat template, the add_*_token flags and
// the special tokens named in tokenizer_config.json, whose ids come from
// tokenizer.json's added tokens.
func (sv *specialVocab) loadTokenizerConfig(dir string, cfg jsonObject, addedTokens []any) error {
	var alt any
	if data, err := os.ReadFile(filepath.Join(dir, "chat_template.jinja")); err == nil {
		alt = string(data)
		extra, _ := filepath.Glob(filepath.Join(dir, "additional_chat_templates", "*.jinja"))
		if len(extra) > 0 {
			list := []any{jsonObject{"name": "default", "template": alt}}
			for _, path := range extra {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				name := strings.TrimSuffix(filepath.Base(path), ".jinja")
				list = append(list, jsonObject{"name": name, "template": string(data)})
			}
			alt = list
		}
	} else if obj, err := readJSONObject(dir, "chat_template.json"); err != nil {
		return err
	} else if obj != nil {
		alt = obj["chat_template"]
	}
	tmpl, ok := cfg["chat_template"]
	if !ok {
		tmpl = alt
	}
	switch tmpl.(type) {
	case nil, string, []any:
		sv.chatTemplate = tmpl
	}
	for _, typ := range sv.types {
		if on, ok := cfg["add_"+typ+"_token"].(bool); ok {
			sv.setAdd(typ, on)
		}
		content, ok := tokenContent(cfg[typ+"_token"])
		if !ok {
			continue
		}
		for _, a := range addedTokens {
			obj, _ := a.(jsonObject)
			if obj["content"] == content {
				if err := sv.setID(typ, obj["id"]); err != nil {
					return fmt.Errorf("tokenizer_config.json: %w", err)
				}
				break
			}
		}
	}
	return nil
}

// addTo writes the gathered metadata as SpecialVocab.add_to_gguf does.
func (sv *specialVocab) addTo(out *ggufFile) {
	for _, e := range sv.ids {
		if key, ok := specialIDKeys[e.typ]; ok {
			out.set(key, gguf.Uint32(uint32(e.id)))
		}
	}
	for _, f := range sv.add {
		if key, ok := addFlagKeys[f.typ]; ok {
			out.set(key, gguf.Bool(f.on))
		}
	}
	switch t := sv.chatTemplate.(type) {
	case string:
		out.set("tokenizer.chat_template", gguf.String(t))
	case []any:
		var names []string
		var def *string
		for _, c := range t {
			obj, _ := c.(jsonObject)
			name, _ := obj["name"].(string)
			tmpl, ok := obj["template"].(string)
			name = sanitizeTemplateName(name)
			if name == "" || !ok {
				continue
			}
			if name == "default" {
				def = &tmpl
				continue
			}
			names = append(names, name)
			out.set("tokenizer.chat_template."+name, gguf.String(tmpl))
		}
		if len(names) > 0 {
			sort.Strings(names)
			out.set("tokenizer.chat_templates", gguf.Strings(names))
		}
		if def != nil {
			out.set("tokenizer.chat_template", gguf.String(*def))
		}
	}
	if sv.lowercase != nil {
		out.set("tokenizer.ggml.normalizer.lowercase", gguf.Bool(*sv.lowercase))
	}
	if sv.stripAccents != nil {
		out.set("tokenizer.ggml.normalizer.strip_accents", gguf.Bool(*sv.stripAccents))
	}
}

// sanitizeTemplateName keeps ASCII letters and digits and turns anything
// else into '_', as gguf-py does for named chat templates' keys.
func sanitizeTemplateName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
