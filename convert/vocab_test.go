package convert

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
)

// encodeSentencePieceModel serializes pieces as a SentencePiece ModelProto,
// with a trainer_spec and normalizer_spec around them that the parser must
// skip. Normal pieces leave out their type, which then defaults to normal.
func encodeSentencePieceModel(tokens []string, scores []float32, types []int32) []byte {
	key := func(field, wire int) uint64 { return uint64(field<<3 + wire) }
	appendBytesField := func(b []byte, field int, data []byte) []byte {
		b = binary.AppendUvarint(b, key(field, 2))
		b = binary.AppendUvarint(b, uint64(len(data)))
		return append(b, data...)
	}
	var out []byte
	// trainer_spec { model_type: BPE (3), vocab_size: len } as field 2.
	spec := binary.AppendUvarint(nil, key(3, 0))
	spec = binary.AppendUvarint(spec, 2)
	spec = binary.AppendUvarint(spec, key(4, 0))
	spec = binary.AppendUvarint(spec, uint64(len(tokens)))
	out = appendBytesField(out, 2, spec)
	for i, tok := range tokens {
		var p []byte
		p = appendBytesField(p, 1, []byte(tok))
		p = binary.AppendUvarint(p, key(2, 5))
		p = binary.LittleEndian.AppendUint32(p, math.Float32bits(scores[i]))
		if types[i] != tokenNormal {
			p = binary.AppendUvarint(p, key(3, 0))
			p = binary.AppendUvarint(p, uint64(types[i]))
		}
		out = appendBytesField(out, 1, p)
	}
	// normalizer_spec { name: "identity" } as field 3, after the pieces.
	out = appendBytesField(out, 3, appendBytesField(nil, 1, []byte("identity")))
	// A fixed64 field the parser does not know.
	out = binary.AppendUvarint(out, key(9, 1))
	return binary.LittleEndian.AppendUint64(out, 42)
}

// TestSentencePieceVocab rebuilds a tokenizer.model from llama.cpp's Llama
// SentencePiece vocabulary, converts a directory holding it as Llama 2's
// Hugging Face files are laid out, and expects llama.cpp's tokenizer
// metadata for it.
func TestSentencePieceVocab(t *testing.T) {
	ref := openGGUF(t, testenv.Path(t, testenv.LlamaSPMVocab))
	tokens, _ := ref.Strings("tokenizer.ggml.tokens")
	scores, _ := ref.Float32s("tokenizer.ggml.scores")
	types, _ := ref.Int32s("tokenizer.ggml.token_type")
	dir := t.TempDir()
	writeFile(t, dir, "tokenizer.model", encodeSentencePieceModel(tokens, scores, types))
	writeFile(t, dir, "config.json", []byte(`{"architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": null, "vocab_size": 32000}`))
	writeFile(t, dir, "tokenizer_config.json", []byte(`{"add_bos_token": true, "add_eos_token": false,
		"bos_token": {"content": "<s>", "special": true}, "eos_token": {"content": "</s>"}, "unk_token": "<unk>",
		"pad_token": null, "tokenizer_class": "LlamaTokenizer"}`))
	writeFile(t, dir, "tokenizer.json", []byte(`{"added_tokens": [{"id": 0, "content": "<unk>"}, {"id": 1, "content": "<s>"}, {"id": 2, "content": "</s>"}],
		"model": {"type": "BPE", "byte_fallback": true, "vocab": {}}, "decoder": {"type": "Sequence"}}`))

	out := &ggufFile{}
	if err := addHFVocab(out, dir, 32000); err != nil {
		t.Fatal(err)
	}
	got := map[string]gguf.Value{}
	for _, kv := range out.kvs {
		got[kv.key] = kv.val
	}
	for _, kv := range ref.KV {
		if !strings.HasPrefix(kv.Key, "tokenizer.") {
			continue
		}
		v, ok := got[kv.Key]
		if !ok {
			t.Errorf("key %s missing", kv.Key)
		} else if !valuesEqual(v, kv.Value) {
			t.Errorf("key %s differs from llama.cpp's", kv.Key)
		}
		delete(got, kv.Key)
	}
	for k := range got {
		t.Errorf("key %s is not in llama.cpp's file", k)
	}

	// A smaller vocab_size drops the pieces past it; a larger one pads.
	for _, n := range []int{1000, 32005} {
		voc, err := sentencePieceVocab(dir, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(voc.tokens) != n {
			t.Errorf("vocab_size %d: %d tokens", n, len(voc.tokens))
		}
		if last := voc.tokens[n-1]; n > 32000 && (last != "[PAD32004]" || voc.types[n-1] != tokenUnused || voc.scores[n-1] != -10000) {
			t.Errorf("vocab_size %d: last token %q type %d score %v", n, last, voc.types[n-1], voc.scores[n-1])
		}
	}

	// added_tokens.json and tokenizer_config's added_tokens_decoder override
	// entries as convert_hf_to_gguf.py does.
	writeFile(t, dir, "added_tokens.json", []byte(`{"<extra>": 32001}`))
	tcfg := jsonObject{"added_tokens_decoder": jsonObject{
		"0":     jsonObject{"content": "<unk>", "special": true},
		"32000": jsonObject{"content": "▁user▁word", "special": false},
		"32002": jsonObject{"content": "<|im_start|>", "special": false},
	}}
	voc, err := sentencePieceVocab(dir, 32003, tcfg)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		id    int
		text  string
		typ   int32
		score float32
	}{
		{0, "<unk>", tokenControl, -1000},
		{32000, " user word", tokenUserDefined, -1000},
		{32001, "<extra>", tokenUserDefined, -1000},
		{32002, "<|im_start|>", tokenControl, -1000}, // looks special
		{3, "<0x00>", tokenByte, 0},
	}
	for _, c := range checks {
		if voc.tokens[c.id] != c.text || voc.types[c.id] != c.typ || voc.scores[c.id] != c.score {
			t.Errorf("token %d = %q type %d score %v; want %q %d %v", c.id, voc.tokens[c.id], voc.types[c.id], voc.scores[c.id], c.text, c.typ, c.score)
		}
	}
}

func TestParseSentencePieceModelErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"no pieces", []byte{0x12, 0x00}},
		{"truncated length", []byte{0x0a, 0x05, 0x0a}},
		{"bad key varint", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{"pieces not a message", []byte{0x08, 0x01}},
		{"group wire type", []byte{0x0b}},
		{"truncated fixed32", []byte{0x0a, 0x02, 0x15, 0x00}},
		{"huge length", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tt := range tests {
		if _, err := parseSentencePieceModel(tt.data); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// TestSpecialVocab follows gguf-py's SpecialVocab through tokenizer files
// of other shapes than TinyStories': the expected keys were worked out by
// reading vocab.py.
func TestSpecialVocab(t *testing.T) {
	tests := []struct {
		name      string
		tokenizer string // tokenizer.json
		config    string // tokenizer_config.json, "" for none
		extra     map[string]string
		want      map[string]any // key: uint32, bool or string; nil value: absent
	}{
		{
			name: "template with BOS and EOS",
			tokenizer: `{"added_tokens": [{"id": 1, "content": "<s>"}, {"id": 2, "content": "</s>"}],
				"post_processor": {"type": "TemplateProcessing",
					"single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "</s>"}}],
					"pair": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "</s>"}}, {"Sequence": {"id": "B"}}, {"SpecialToken": {"id": "</s>"}}]}}`,
			config: `{"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{{ messages }}"}`,
			want: map[string]any{
				"tokenizer.ggml.bos_token_id": uint32(1), "tokenizer.ggml.eos_token_id": uint32(2),
				// One separator between A and B counts as SEP only when the
				// single template does not end in EOS already.
				"tokenizer.ggml.add_bos_token": true, "tokenizer.ggml.add_eos_token": true, "tokenizer.ggml.add_sep_token": false,
				"tokenizer.chat_template": "{{ messages }}",
			},
		},
		{
			name: "template ending in another token than EOS",
			tokenizer: `{"added_tokens": [{"id": 5, "content": "<|end|>"}, {"id": 6, "content": "<|eot|>"}],
				"post_processor": {"type": "Sequence", "processors": [{"type": "ByteLevel"}, {"type": "TemplateProcessing",
					"single": [{"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "<|eot|>"}}], "pair": []}]}}`,
			config: `{"eos_token": "<|end|>"}`,
			want: map[string]any{
				"tokenizer.ggml.eos_token_id": uint32(6), "tokenizer.ggml.eot_token_id": uint32(5),
				"tokenizer.ggml.add_eos_token": true, "tokenizer.ggml.add_bos_token": nil,
			},
		},
		{
			name: "template with two separators",
			tokenizer: `{"added_tokens": [{"id": 1, "content": "<s>"}, {"id": 2, "content": "</s>"}],
				"post_processor": {"type": "TemplateProcessing",
					"single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "</s>"}}],
					"pair": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}, {"SpecialToken": {"id": "</s>"}}, {"SpecialToken": {"id": "</s>"}}, {"Sequence": {"id": "B"}}, {"SpecialToken": {"id": "</s>"}}]}}`,
			config: `{"bos_token": "<s>", "eos_token": "</s>"}`,
			want:   map[string]any{"tokenizer.ggml.add_sep_token": true, "tokenizer.ggml.seperator_token_id": uint32(2)}, // SEP defaults to EOS
		},
		{
			name:      "roberta",
			tokenizer: `{"added_tokens": [{"id": 0, "content": "<s>"}, {"id": 2, "content": "</s>"}], "post_processor": {"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]}}`,
			config:    `{"bos_token": "<s>", "eos_token": "</s>"}`,
			want: map[string]any{
				"tokenizer.ggml.bos_token_id": uint32(0), "tokenizer.ggml.eos_token_id": uint32(2),
				"tokenizer.ggml.seperator_token_id": uint32(2),
				"tokenizer.ggml.add_bos_token":      true, "tokenizer.ggml.add_eos_token": true, "tokenizer.ggml.add_sep_token": true,
			},
		},
		{
			name:      "no tokenizer_config: ids from config.json only",
			tokenizer: `{"added_tokens": [{"id": 1, "content": "<s>"}], "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}]}}`,
			extra:     map[string]string{"config.json": `{"bos_token_id": 1, "eos_token_id": [2, 3], "pad_token_id": 99999}`},
			want: map[string]any{
				"tokenizer.ggml.bos_token_id": uint32(1), "tokenizer.ggml.add_bos_token": true,
				"tokenizer.ggml.eos_token_id": nil, "tokenizer.ggml.padding_token_id": nil, // a list; out of range
			},
		},
		{
			name:      "chat templates from files, lowercase normalizer",
			tokenizer: `{"normalizer": {"type": "Sequence", "normalizers": [{"type": "BertNormalizer", "lowercase": true, "strip_accents": false}]}}`,
			config:    `{"add_bos_token": false}`,
			extra: map[string]string{
				"chat_template.jinja":                      "default {{ x }}",
				"additional_chat_templates/tool-use.jinja": "tools {{ x }}",
			},
			want: map[string]any{
				"tokenizer.chat_template": "default {{ x }}", "tokenizer.chat_template.tool_use": "tools {{ x }}",
				"tokenizer.ggml.add_bos_token": false, "tokenizer.ggml.normalizer.lowercase": true,
				"tokenizer.ggml.normalizer.strip_accents": false,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "tokenizer.json", []byte(tt.tokenizer))
			var tcfg jsonObject
			if tt.config != "" {
				writeFile(t, dir, "tokenizer_config.json", []byte(tt.config))
				if err := json.Unmarshal([]byte(tt.config), &tcfg); err != nil {
					t.Fatal(err)
				}
			}
			for name, data := range tt.extra {
				if strings.Contains(name, "/") {
					sub := filepath.Join(dir, filepath.Dir(name))
					if err := mkdirAll(sub); err != nil {
						t.Fatal(err)
					}
				}
				writeFile(t, dir, name, []byte(data))
			}
			sv, err := loadSpecialVocab(dir, 1000, tcfg)
			if err != nil {
				t.Fatal(err)
			}
			out := &ggufFile{}
			sv.addTo(out)
			for key, want := range tt.want {
				v, ok := out.get(key)
				if want == nil {
					if ok {
						t.Errorf("%s is set", key)
					}
					continue
				}
				if !ok {
					t.Errorf("%s missing", key)
					continue
				}
				var wantV gguf.Value
				switch w := want.(type) {
				case uint32:
					wantV = gguf.Uint32(w)
				case bool:
					wantV = gguf.Bool(w)
				case string:
					wantV = gguf.String(w)
				}
				if !valuesEqual(v, wantV) {
					t.Errorf("%s = %v, want %v", key, v, want)
				}
			}
		})
	}
}
