package tokenizer_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"llamago/internal/testenv"
	"llamago/tokenizer"
)

// The parts of TinyStories-656K's tokenizer_config.json and config.json
// that the converter reads (the files beside tokenizer.json).
const (
	tinyStoriesTokenizerConfig = `{"add_bos_token": true, "add_eos_token": false,
		"bos_token": "<|start_story|>", "eos_token": "<|end_story|>", "unk_token": "<unk>", "pad_token": "<unk>"}`
	tinyStoriesConfig = `{"bos_token_id": 1, "eos_token_id": 2, "vocab_size": 2048}`
)

type hfJSON struct {
	Model struct {
		Vocab  map[string]int `json:"vocab"`
		Merges []string       `json:"merges"`
	} `json:"model"`
}

func readTinyStories(t *testing.T) ([]byte, hfJSON) { return readTinyStoriesB(t) }

func readTinyStoriesB(t testing.TB) ([]byte, hfJSON) {
	t.Helper()
	data, err := os.ReadFile(testenv.Path(t, testenv.TinyStoriesTok))
	if err != nil {
		t.Fatal(err)
	}
	var j hfJSON
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	return data, j
}

func tinyStories(t *testing.T) (*tokenizer.Tokenizer, hfJSON) {
	t.Helper()
	data, j := readTinyStories(t)
	tok, err := tokenizer.FromHF(tokenizer.HFFiles{TokenizerJSON: data,
		TokenizerConfig: []byte(tinyStoriesTokenizerConfig), ModelConfig: []byte(tinyStoriesConfig)})
	if err != nil {
		t.Fatal(err)
	}
	return tok, j
}

// TestHFTinyStoriesVocab checks the vocabulary a converter would write,
// per llama.cpp's LlamaHfVocab: model llama, every score -1000, the
// special tokens control, <0xXX> tokens byte, the rest normal.
func TestHFTinyStoriesVocab(t *testing.T) {
	tok, j := tinyStories(t)
	v := tok.Vocab()
	if v.Model != tokenizer.ModelLlama || v.Pre != "default" {
		t.Errorf("model %q pre %q, want llama default", v.Model, v.Pre)
	}
	if len(v.Tokens) != len(j.Model.Vocab) {
		t.Fatalf("%d tokens, tokenizer.json has %d", len(v.Tokens), len(j.Model.Vocab))
	}
	byteRE := regexp.MustCompile(`^<0x[0-9A-Fa-f]{2}>$`)
	for text, id := range j.Model.Vocab {
		if v.Tokens[id] != text {
			t.Errorf("token %d = %q, want %q", id, v.Tokens[id], text)
		}
		want := tokenizer.TypeNormal
		switch {
		case byteRE.MatchString(text):
			want = tokenizer.TypeByte
		case id <= 2: // <unk>, <|start_story|>, <|end_story|>
			want = tokenizer.TypeControl
		}
		if v.Types[id] != want {
			t.Errorf("type of %d %q = %d, want %d", id, text, v.Types[id], want)
		}
		if v.Scores[id] != -1000 {
			t.Errorf("score of %d = %v, want -1000", id, v.Scores[id])
		}
	}
	if v.BOS != 1 || v.EOS != 2 || v.UNK != 0 || v.PAD != 0 || !v.AddBOS || v.AddEOS {
		t.Errorf("BOS %d EOS %d UNK %d PAD %d AddBOS %v AddEOS %v, want 1 2 0 0 true false",
			v.BOS, v.EOS, v.UNK, v.PAD, v.AddBOS, v.AddEOS)
	}
	if len(v.Merges) != len(j.Model.Merges) {
		t.Errorf("%d merges, want %d", len(v.Merges), len(j.Model.Merges))
	}

	// tokenizer.json alone: BOS and add_bos come from the post-processor
	// template.
	data, _ := readTinyStories(t)
	alone, err := tokenizer.FromHFTokenizerJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	if alone.BOS() != 1 || !alone.Vocab().AddBOS {
		t.Errorf("tokenizer.json alone: BOS %d AddBOS %v, want 1 true", alone.BOS(), alone.Vocab().AddBOS)
	}
}

// naiveHFBPE is Hugging Face's BPE written the slow, obvious way for
// the TinyStories tokenizer (Prepend ▁ and spaces to ▁, no pre-tokenizer):
// merge the lowest-ranked adjacent pair, leftmost first, until none is
// left; characters outside the vocabulary become one <unk> per run.
func naiveHFBPE(j hfJSON, text string) []int32 {
	if text == "" {
		return nil
	}
	rank := map[[2]string]int{}
	for i, m := range j.Model.Merges {
		a, b, _ := strings.Cut(m, " ")
		if _, dup := rank[[2]string{a, b}]; !dup {
			rank[[2]string{a, b}] = i
		}
	}
	var syms []string
	for _, r := range "▁" + strings.ReplaceAll(text, " ", "▁") {
		syms = append(syms, string(r))
	}
	for {
		best, at := -1, -1
		for i := 0; i+1 < len(syms); i++ {
			if r, ok := rank[[2]string{syms[i], syms[i+1]}]; ok && (best < 0 || r < best) {
				best, at = r, i
			}
		}
		if at < 0 {
			break
		}
		syms = append(syms[:at], append([]string{syms[at] + syms[at+1]}, syms[at+2:]...)...)
	}
	var ids []int32
	prevUnk := false
	for _, s := range syms {
		id, ok := j.Model.Vocab[s]
		if !ok {
			if !prevUnk {
				ids = append(ids, 0)
			}
			prevUnk = true
			continue
		}
		ids = append(ids, int32(id))
		prevUnk = false
	}
	return ids
}

// TestHFTinyStoriesReference checks ids that Hugging Face's tokenizers.js
// 0.2.0 (Tokenizer(tokenizer.json, tokenizer_config.json).encode, with
// and without special tokens) gives for the TinyStories tokenizer. The
// last case has two characters outside the vocabulary (# and é), and the
// special tokens are matched in the normalized text: "▁<|end_story|>".
func TestHFTinyStoriesReference(t *testing.T) {
	tok, _ := tinyStories(t)
	tests := []struct {
		text         string
		plain, withS []int32
	}{
		{"Once upon a time, there was a little girl named Lily.",
			[]int32{80, 147, 201, 282, 215, 286, 598, 629, 10}, []int32{1, 80, 147, 201, 282, 215, 286, 598, 629, 10}},
		{"Tom said, \"Let's go to the park!\"\nThey ran.",
			[]int32{80, 388, 1991, 1457, 455, 572, 473, 494, 10}, []int32{1, 80, 388, 1991, 1457, 455, 572, 473, 494, 10}},
		{"<|start_story|>Once upon a time", []int32{1, 147, 201, 282, 57}, []int32{1, 1, 147, 201, 282, 57}},
		{" <|end_story|>", []int32{80, 2}, []int32{1, 80, 2}},
		{"don't", []int32{80, 56, 111, 7, 72}, []int32{1, 80, 56, 111, 7, 72}},
		{"The cat sat  on the mat #1 café",
			[]int32{80, 247, 411, 1214, 80, 337, 65, 143, 0, 12, 80, 295, 58, 0}, []int32{1, 80, 247, 411, 1214, 80, 337, 65, 143, 0, 12, 80, 295, 58, 0}},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			add  bool
			want []int32
		}{{false, tt.plain}, {true, tt.withS}} {
			got, err := tok.Encode(tt.text, tokenizer.EncodeOptions{AddSpecial: c.add, ParseSpecial: true})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("Encode(%q, AddSpecial %v) = %v, Hugging Face %v", tt.text, c.add, got, c.want)
			}
		}
	}
}

// TestHFTinyStoriesEncode compares the priority-queue merge with the naive
// one on the generated strings and on story-like text.
func TestHFTinyStoriesEncode(t *testing.T) {
	tok, j := tinyStories(t)
	texts := append(generatedStrings(300), storyTexts...)
	texts = append(texts, "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.")
	n := 0
	for _, s := range texts {
		if !utf8.ValidString(s) {
			continue
		}
		got, err := tok.Encode(s, tokenizer.EncodeOptions{})
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		if want := naiveHFBPE(j, s); !slices.Equal(got, want) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", s, got, want)
		}
		n++
	}
	story := texts[len(texts)-2]
	ids, _ := tok.Encode(story, tokenizer.EncodeOptions{AddSpecial: true})
	if ids[0] != 1 {
		t.Errorf("AddSpecial: first id %d, want BOS 1", ids[0])
	}
	// As in llama.cpp, only a first token that is not BOS loses its space.
	if got := tok.Decode(ids[1:]); got != story {
		t.Errorf("Decode(Encode(%q)) = %q", story, got)
	}
	t.Logf("%d strings; %q -> %d tokens", n, story, len(ids))
}

// storyTexts are sentences like the ones TinyStories-656K was trained on.
var storyTexts = []string{
	"Once upon a time, there was a little girl named Lily.",
	"She loved to play outside in the sunshine with her dog, Max.",
	"One day, Tim went to the park with his mom.",
	"\"Can I have a ball?\" he asked. His mom smiled and said, \"Yes!\"",
	"The cat sat on the mat. It was happy!",
	"They played all day and had lots of fun.",
	"Lily was sad because her toy was broken.",
	"The big red bird flew high in the sky.",
	"Ben and Sue were best friends. They liked to share their toys.",
	"At the end of the day, they went home and ate dinner.",
	"The little boy wanted to help his dad in the garden.",
	"\"I'm sorry,\" said the bear. \"Let's be friends.\"",
}

// TestHFConvertedLlamaCpp writes the vocabulary as the converter would,
// loads it in llama.cpp, and requires FromGGUF of that file to tokenize
// as llama.cpp does. It also counts how often llama.cpp, which only has
// the converter's equal scores, disagrees with Hugging Face's merge order.
func TestHFConvertedLlamaCpp(t *testing.T) {
	lib := openLlamaCpp(t)
	hf, _ := tinyStories(t)
	path := writeVocabGGUF(t, hf.Vocab())
	m := loadLlamaCppVocab(t, lib, path)
	conv := loadGGUFPath(t, path)
	compareVocabWithLlamaCpp(t, conv, m)

	// llama.cpp aborts the process on characters that are neither tokens
	// nor byte tokens (this vocabulary has no byte tokens): keep the texts
	// whose characters all are tokens.
	single := map[string]bool{}
	for _, text := range conv.Vocab().Tokens {
		single[text] = true
	}
	known := func(s string) bool {
		for _, r := range strings.ReplaceAll(s, " ", "▁") {
			if !single[string(r)] {
				return false
			}
		}
		return true
	}
	var texts []string
	for _, s := range generatedStrings(400) {
		if utf8.ValidString(s) && known(s) {
			texts = append(texts, s)
		}
	}
	texts = append(texts, storyTexts...)
	n := compareWithLlamaCpp(t, conv, m, texts)

	differ := 0
	var example string
	for _, s := range texts {
		a, _ := hf.Encode(s, tokenizer.EncodeOptions{})
		b, _ := conv.Encode(s, tokenizer.EncodeOptions{})
		if !slices.Equal(a, b) {
			differ++
			if example == "" || len(s) < len(example) {
				example = s
			}
		}
	}
	t.Logf("%d encodings compared with llama.cpp; Hugging Face merge order and llama.cpp differ on %d of %d texts (e.g. %q)",
		n, differ, len(texts), example)
}
