package inspect_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/inspect"
	"llamago/internal/testenv"
	"llamago/tensor"
)

// text runs inspect and returns its text output with each run of blanks
// made one space, so that tests do not depend on column widths.
func text(t *testing.T, path string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := inspect.Run(&buf, path, inspect.Options{}); err != nil {
		t.Fatal(err)
	}
	return regexp.MustCompile(`[ \t]+`).ReplaceAllString(buf.String(), " ")
}

// report runs inspect with JSON output and decodes it.
func report(t *testing.T, path string) (inspect.Report, map[string]any) {
	t.Helper()
	var buf bytes.Buffer
	if err := inspect.Run(&buf, path, inspect.Options{JSON: true}); err != nil {
		t.Fatal(err)
	}
	var r inspect.Report
	if err := json.Unmarshal(buf.Bytes(), &r); err != nil {
		t.Fatalf("%v in %s", err, buf.String())
	}
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	return r, raw
}

func containsAll(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

func TestStories260K(t *testing.T) {
	path := testenv.Path(t, testenv.Stories260KGGUF)
	containsAll(t, text(t, path),
		"GGUF version 3\n",
		"size 1185376 bytes (1.1 MiB)\n",
		"alignment 32\n",
		"tensors 48 (",
		"metadata 19 keys\n",
		" general.architecture string \"llama\"\n",
		" tokenizer.ggml.tokens array of string 512 × [\"<unk>\", \"<s>\", \"</s>\",",
		" llama.attention.layer_norm_rms_epsilon float32 1e-05\n",
		" token_embd.weight F32 [64 512] 0 131072\n",
		" output_norm.weight F32 [64] 131072 256\n",
		" F32 48 tensors 1171200 bytes",
		"model (llama):\n",
		" embedding length 64\n",
		" blocks 5\n",
		" attention heads 8\n",
		" key-value heads 4\n",
		" feed-forward length 172\n",
		" vocabulary 512\n",
		" context length 2048\n",
		" RoPE frequency base 10000 (default: no llama.rope.freq_base)\n",
		" RMS norm epsilon 1e-05\n",
	)

	r, raw := report(t, path)
	if r.TensorCount != 48 || len(r.Tensors) != 48 || r.KVCount != 19 || r.Version != 3 {
		t.Errorf("%d tensors (%d listed), %d keys, version %d", r.TensorCount, len(r.Tensors), r.KVCount, r.Version)
	}
	// Every tensor size here is a multiple of the alignment, so the data
	// section holds exactly the tensors' bytes.
	if len(r.Types) != 1 || r.Types[0].Type != "F32" || r.Types[0].Count != 48 || int64(r.Types[0].Bytes) != r.Size-int64(r.DataOffset) {
		t.Errorf("bytes by type %+v, data section %d bytes", r.Types, r.Size-int64(r.DataOffset))
	}
	m := r.Model
	if m == nil || m.EmbeddingLength != 64 || m.BlockCount != 5 || m.HeadCount != 8 || m.HeadCountKV != 4 ||
		m.FeedForwardLength != 172 || m.VocabSize != 512 || m.ContextLength != 2048 || m.RopeFreqBase != 10000 || m.RMSNormEpsilon != 1e-5 {
		t.Errorf("model %+v", m)
	}
	if len(r.Notes) != 0 {
		t.Errorf("notes %q", r.Notes)
	}
	// Long arrays are summarised in JSON too.
	tokens := raw["metadata"].([]any)[0].(map[string]any)
	if tokens["key"] != "tokenizer.ggml.tokens" || tokens["count"] != 512.0 || tokens["truncated"] != true || len(tokens["value"].([]any)) != 6 {
		t.Errorf("tokens entry %v", tokens)
	}
}

func TestVocabOnly(t *testing.T) {
	path := testenv.Path(t, testenv.LlamaSPMVocab)
	out := text(t, path)
	containsAll(t, out,
		"tensors 0 (0 parameters)\n",
		"note: no tensors (vocabulary-only file)\n",
		" tokenizer.ggml.tokens array of string 32000 × [",
		" vocabulary 32000\n",
		" tokenizer.ggml.add_bos_token bool true\n",
	)
	if strings.Contains(out, "bytes by type") {
		t.Error("a table of types for a file without tensors")
	}
	r, raw := report(t, path)
	if len(r.Notes) != 1 || r.Notes[0] != "no tensors (vocabulary-only file)" {
		t.Errorf("notes %q", r.Notes)
	}
	if tensors, ok := raw["tensors"].([]any); !ok || len(tensors) != 0 {
		t.Errorf("tensors %v, want []", raw["tensors"])
	}
}

// synthetic writes a file with the features a real model may have that
// the shared files lack.
func synthetic(t *testing.T) string {
	template := "{% for message in messages %}\n{{ message.content }}\n{% endfor %}"
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("tokenizer.chat_template", gguf.String(template))
	w.Set("general.description", gguf.String(strings.Repeat("é", 100)))
	w.Set("llama.embedding_length", gguf.Uint64(256))
	w.Set("llama.block_count", gguf.Uint32(2))
	w.Set("llama.attention.head_count", gguf.Int32s([]int32{4, 4}))
	w.Set("llama.feed_forward_length", gguf.Uint32s([]uint32{512, 768}))
	w.Set("llama.rope.freq_base", gguf.Float32(500000))
	w.Set("test.nan", gguf.Float32(float32(math.NaN())))
	w.Set("test.infs", gguf.Float64s([]float64{math.Inf(1), math.Inf(-1), 1}))
	w.Set("test.nested", gguf.ArrayOf(gguf.Strings([]string{"a", "b"}), gguf.Uint8s([]uint8{1})))
	add := func(name string, typ tensor.Type, shape []uint64) {
		size, err := gguf.TensorSize(typ, shape)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(name, typ, shape, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	add("token_embd.weight", tensor.Q4_K, []uint64{256, 10})
	add("blk.0.ffn_down.weight", tensor.IQ2_XXS, []uint64{512, 256})
	add("blk.1.ffn_down.weight", tensor.IQ2_XXS, []uint64{768, 256})
	add("output_norm.weight", tensor.F32, []uint64{256})
	path := filepath.Join(t.TempDir(), "synthetic.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSynthetic(t *testing.T) {
	path := synthetic(t)
	containsAll(t, text(t, path),
		` tokenizer.chat_template string "{% for message in messages %}"… (64 bytes)`,
		` general.description string "`+strings.Repeat("é", 36)+`"… (200 bytes)`,
		" test.nan float32 NaN\n",
		" test.infs array of float64 3 × [+Inf, -Inf, 1]\n",
		` test.nested array of array 2 × [2 × ["a", "b"], 1 × [1]]`,
		" blk.0.ffn_down.weight IQ2_XXS * [512 256] ",
		" token_embd.weight Q4_K [256 10] 0 1440\n",
		" IQ2_XXS 2 tensors ",
		"note: 2 tensors have types llamago does not support yet, marked * above: IQ2_XXS (2); for example, tensor blk.0.ffn_down.weight\n",
		" embedding length 256\n",
		" attention heads 4\n",
		" key-value heads 4 (default: no llama.attention.head_count_kv)\n",
		" feed-forward length 768\n",
		" problem llama.feed_forward_length: differs between layers (largest 768)\n",
		" vocabulary missing (tokenizer.ggml.tokens)\n",
		" context length missing (llama.context_length)\n",
		" RoPE frequency base 500000\n",
	)

	r, raw := report(t, path)
	supported := map[string]bool{}
	for _, tt := range r.Tensors {
		supported[tt.Name] = tt.Supported
	}
	if supported["blk.0.ffn_down.weight"] || !supported["token_embd.weight"] {
		t.Errorf("supported %v", supported)
	}
	if r.Types[0].Type != "IQ2_XXS" || r.Types[0].Supported {
		t.Errorf("types %+v: the largest is IQ2_XXS, unsupported", r.Types)
	}
	for _, e := range raw["metadata"].([]any) {
		e := e.(map[string]any)
		switch e["key"] {
		case "test.nan":
			if e["value"] != "NaN" {
				t.Errorf("NaN in JSON: %v", e["value"])
			}
		case "tokenizer.chat_template":
			if e["length"] != 64.0 || e["truncated"] != true || e["value"] != "{% for message in messages %}" {
				t.Errorf("template in JSON: %v", e)
			}
		}
	}
	if m := r.Model; len(m.Missing) != 3 || len(m.Defaulted) != 1 || len(m.Problems) != 1 {
		t.Errorf("missing %q, defaulted %q, problems %q", m.Missing, m.Defaulted, m.Problems)
	}
}

func TestNoArchitecture(t *testing.T) {
	w := gguf.NewWriter()
	w.Set("general.name", gguf.String("x"))
	path := filepath.Join(t.TempDir(), "x.gguf")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	out := text(t, path)
	containsAll(t, out, `note: no model shape: gguf: key "general.architecture" not found`)
	if strings.Contains(out, "model (") {
		t.Error("a model section without an architecture")
	}
}

func TestDamagedFiles(t *testing.T) {
	good, err := os.ReadFile(testenv.Path(t, testenv.Stories260KGGUF))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		name string
		data []byte
		is   error
		want string
	}{
		{"truncated in the metadata", good[:5000], gguf.ErrTruncated, "gguf: "},
		{"truncated in the data", good[:len(good)-100], gguf.ErrTruncated, `gguf: tensor info 47 ("blk.4.ffn_norm.weight"): offset at byte`},
		{"empty", nil, gguf.ErrNotGGUF, "gguf: not a GGUF file"},
		{"bad magic", append([]byte("GGML"), good[4:]...), gguf.ErrNotGGUF, `it starts with "GGML"`},
		{"version 1", append([]byte("GGUF\x01\x00\x00\x00"), good[8:]...), gguf.ErrVersion1, "gguf: version 1 files are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".gguf")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, opts := range []inspect.Options{{}, {JSON: true}} {
				var buf bytes.Buffer
				err := inspect.Run(&buf, path, opts)
				if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("JSON %v: error %v, want %q wrapping %q", opts.JSON, err, tt.want, tt.is)
				}
				if buf.Len() != 0 {
					t.Errorf("output for a damaged file: %q", buf.String())
				}
			}
		})
	}
	if err := inspect.Run(&bytes.Buffer{}, filepath.Join(dir, "absent.gguf"), inspect.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("absent file: %v", err)
	}
}
