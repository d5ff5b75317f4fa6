package convert

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"llamago/internal/testenv"
	"llamago/tensor"
)

// The metadata in which our stories260K conversion may differ from
// llama.cpp's (stories260K.gguf), and why.
var allowedStoriesDiffs = map[string]string{
	"general.name":         "ours is the checkpoint's file name; llama.cpp's converter writes \"llama\"",
	"llama.context_length": "ours is the header's seq_len (512, the training length); llama.cpp's converter writes its n_ctx option (2048 in the reference)",
}

// Keys we write that the reference lacks (llama.cpp's llama2.c converter
// predates them; its Python converter writes both).
var extraStoriesKeys = map[string]bool{
	"general.file_type":            true,
	"general.quantization_version": true,
}

func TestLlama2CMatchesReference(t *testing.T) {
	ref := openGGUF(t, testenv.Path(t, testenv.Stories260KGGUF))
	tests := []struct {
		name    string
		opts    Options
		allowed map[string]string
	}{
		{"defaults", Options{}, allowedStoriesDiffs},
		{"reference name and context", Options{Name: "llama", ContextLength: 2048}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := openGGUF(t, convertStories(t, tt.opts))

			if len(got.Tensors) != len(ref.Tensors) {
				t.Errorf("%d tensors, reference has %d", len(got.Tensors), len(ref.Tensors))
			}
			for i, rt := range ref.Tensors {
				gt, ok := got.Tensor(rt.Name)
				if !ok {
					t.Errorf("tensor %s missing", rt.Name)
					continue
				}
				if gt.Type != rt.Type || !equalShape(gt.Shape, rt.Shape) {
					t.Errorf("tensor %s: %s %v, reference %s %v", rt.Name, gt.Type, gt.Shape, rt.Type, rt.Shape)
					continue
				}
				if !bytes.Equal(got.TensorData(gt), ref.TensorData(&ref.Tensors[i])) {
					t.Errorf("tensor %s: data differs from the reference", rt.Name)
				}
				if gt.Offset != rt.Offset {
					t.Errorf("tensor %s at data offset %d, reference %d", rt.Name, gt.Offset, rt.Offset)
				}
			}

			for _, kv := range ref.KV {
				v, ok := got.Get(kv.Key)
				if !ok {
					t.Errorf("key %s missing", kv.Key)
					continue
				}
				if !valuesEqual(v, kv.Value) {
					if why, ok := tt.allowed[kv.Key]; ok {
						t.Logf("allowed difference %s: %s", kv.Key, why)
						continue
					}
					t.Errorf("key %s differs from the reference", kv.Key)
				}
			}
			for _, kv := range got.KV {
				if !ref.Has(kv.Key) && !extraStoriesKeys[kv.Key] {
					t.Errorf("key %s is not in the reference", kv.Key)
				}
			}
			if ft, err := got.Uint32("general.file_type"); err != nil || ft != 0 {
				t.Errorf("general.file_type = %d, %v; want 0 (all F32)", ft, err)
			}
		})
	}
}

func equalShape(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLlama2CGreedyMatchesReference runs llama.cpp on our conversion and on
// llama.cpp's: identical tensors must give identical greedy tokens (and this
// exercises the helper the lead reuses).
func TestLlama2CGreedyMatchesReference(t *testing.T) {
	ours := convertStories(t, Options{})
	ref := testenv.Path(t, testenv.Stories260KGGUF)
	prompt := []int32{1}
	want := llamaCppGreedy(t, ref, prompt, 30)
	got := llamaCppGreedy(t, ours, prompt, 30)
	if len(got) != len(want) {
		t.Fatalf("greedy ids %v, reference %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("greedy ids %v, reference %v", got, want)
		}
	}
	t.Logf("greedy ids from BOS: %v", got)
}

// toVersion1 rewrites a legacy (version 0) checkpoint in export.py's
// version 1 layout: a 256-byte header with the ak42 magic, then the norms,
// then the other weights, without the RoPE tables.
func toVersion1(t *testing.T, v0 []byte) []byte {
	t.Helper()
	cfg, err := parseLlama2CHeader(bytes.NewReader(v0), int64(len(v0)))
	if err != nil {
		t.Fatal(err)
	}
	arrays := map[string][]byte{}
	for _, a := range cfg.arrays() {
		arrays[a.name] = v0[a.offset : a.offset+int64(a.bytes())]
	}
	var b bytes.Buffer
	for _, x := range []int32{0x616b3432, 1, int32(cfg.dim), int32(cfg.hiddenDim), int32(cfg.nLayers), int32(cfg.nHeads), int32(cfg.nKVHeads), int32(cfg.vocabSize), int32(cfg.seqLen)} {
		_ = binary.Write(&b, binary.LittleEndian, x)
	}
	if cfg.shared {
		b.WriteByte(1)
	} else {
		b.WriteByte(0)
	}
	b.Write(make([]byte, 256-b.Len()))
	for _, name := range []string{"rms_att_weight", "rms_ffn_weight", "rms_final_weight", "token_embedding_table", "wq", "wk", "wv", "wo", "w1", "w2", "w3"} {
		b.Write(arrays[name])
	}
	return b.Bytes()
}

func TestLlama2CVersion1(t *testing.T) {
	v0, err := os.ReadFile(testenv.Path(t, testenv.Stories260KBin))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "v1.bin")
	if err := os.WriteFile(ckpt, toVersion1(t, v0), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "v1.gguf")
	if err := Llama2C(ckpt, testenv.Path(t, testenv.Tok512Bin), out, Options{}); err != nil {
		t.Fatal(err)
	}
	got := openGGUF(t, out)
	ref := openGGUF(t, testenv.Path(t, testenv.Stories260KGGUF))
	for i, rt := range ref.Tensors {
		gt, ok := got.Tensor(rt.Name)
		if !ok || !bytes.Equal(got.TensorData(gt), ref.TensorData(&ref.Tensors[i])) {
			t.Errorf("tensor %s differs from the reference", rt.Name)
		}
	}
}

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func header(fields ...int32) []byte {
	var b bytes.Buffer
	for _, f := range fields {
		_ = binary.Write(&b, binary.LittleEndian, f)
	}
	return b.Bytes()
}

func TestLlama2CCorruptCheckpoints(t *testing.T) {
	v0, err := os.ReadFile(testenv.Path(t, testenv.Stories260KBin))
	if err != nil {
		t.Fatal(err)
	}
	tok := testenv.Path(t, testenv.Tok512Bin)
	good := v0[:28]
	withBody := func(h []byte) []byte { return append(append([]byte(nil), h...), v0[28:]...) }
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "too short"},
		{"3 bytes", v0[:3], "too short"},
		{"header only", v0[:28], "truncated"},
		{"cut in the embeddings", v0[:1000], "truncated"},
		{"cut in the RoPE tables", v0[:len(v0)-1], "truncated"},
		{"trailing bytes", append(append([]byte(nil), v0...), 0, 0, 0, 0), "implies"},
		{"negative dim", withBody(header(-64, 172, 5, 8, 4, 512, 512)), "dim = -64"},
		{"zero layers", withBody(header(64, 172, 0, 8, 4, 512, 512)), "n_layers = 0"},
		{"absurd dim", withBody(header(1<<30, 172, 5, 8, 4, 512, 512)), "out of range"},
		{"absurd everything", header(math.MaxInt32, math.MaxInt32, math.MaxInt32, 1, 1, math.MaxInt32, math.MaxInt32), "out of range"},
		{"huge but in range", withBody(header(1<<20, 1<<20, 1<<12, 1<<10, 1<<10, 1<<24, 1<<24)), "implies"},
		{"zero vocab", withBody(header(64, 172, 5, 8, 4, 0, 512)), "vocab_size = 0"},
		{"negative seq_len", withBody(header(64, 172, 5, 8, 4, 512, -1)), "seq_len = -1"},
		{"heads do not divide dim", withBody(header(64, 172, 5, 7, 7, 512, 512)), "not a multiple of n_heads"},
		{"kv heads above heads", withBody(header(64, 172, 5, 8, 16, 512, 512)), "n_kv_heads"},
		{"kv heads do not divide heads", withBody(header(64, 172, 5, 8, 3, 512, 512)), "n_kv_heads"},
		{"odd head size", withBody(header(63, 172, 5, 9, 9, 512, 512)), "odd"},
		{"unshared classifier missing", withBody(header(64, 172, 5, 8, 4, -512, 512)), "implies"},
		{"version 2", append(header(0x616b3432, 2), make([]byte, 300)...), "version 2"},
		{"unknown version", append(header(0x616b3432, 7), make([]byte, 300)...), "unknown llama2.c checkpoint version 7"},
		{"version 1 short header", header(0x616b3432, 1, 64, 172, 5, 8, 4, 512, 512), "256"},
		{"good header, bad body", append(append([]byte(nil), good...), 1, 2, 3), "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ckpt := writeFile(t, dir, "model.bin", tt.data)
			out := filepath.Join(dir, "out.gguf")
			err := Llama2C(ckpt, tok, out, Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", err, tt.wantErr)
			}
			if _, statErr := os.Stat(out); statErr == nil {
				t.Error("an output file was left behind")
			}
		})
	}
}

func TestLlama2CTokenizerErrors(t *testing.T) {
	tok, err := os.ReadFile(testenv.Path(t, testenv.Tok512Bin))
	if err != nil {
		t.Fatal(err)
	}
	negative := append([]byte(nil), tok...)
	binary.LittleEndian.PutUint32(negative[8:], uint32(0xFFFFFFFF)) // token 0's length: -1
	huge := append([]byte(nil), tok...)
	binary.LittleEndian.PutUint32(huge[8:], 1<<30)
	tests := []struct {
		name    string
		data    []byte
		nVocab  int
		wantErr string
	}{
		{"empty", nil, 512, "too short"},
		{"header only", tok[:4], 512, "too short"},
		{"cut inside a token", tok[:len(tok)-1], 512, "left in the tokenizer"},
		{"cut between tokens", tok[:len(tok)-7], 512, "ends inside token"},
		{"negative length", negative, 512, "length -1"},
		{"length past the end", huge, 512, "length 1073741824"},
		{"more tokens than the model", tok, 300, "larger vocabulary"},
		{"fewer tokens than the model", tok, 1 << 20, "too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseLlama2CTokenizer(tt.data, tt.nVocab)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	v, err := parseLlama2CTokenizer(tok, 512)
	if err != nil {
		t.Fatal(err)
	}
	// The facts of ../shared/README.md and llama.cpp's converter.
	checks := []struct {
		id   int
		text string
		typ  int32
	}{
		{0, "<unk>", tokenUnknown}, {1, "<s>", tokenControl}, {2, "</s>", tokenControl},
		{3, "<0x00>", tokenByte}, {258, "<0xFF>", tokenByte}, {259, "▁t", tokenNormal},
	}
	for _, c := range checks {
		if v.tokens[c.id] != c.text || v.types[c.id] != c.typ {
			t.Errorf("token %d = %q type %d, want %q type %d", c.id, v.tokens[c.id], v.types[c.id], c.text, c.typ)
		}
	}
}

func TestLlama2CToken(t *testing.T) {
	tests := []struct {
		id       int
		in, want string
		typ      int32
	}{
		{0, "anything", "<unk>", tokenUnknown},
		{1, "\n<s>\n", "<s>", tokenControl},
		{2, "\n</s>\n", "</s>", tokenControl},
		{5, "", "", tokenControl},
		{6, "<0x0A>", "<0x0A>", tokenByte},
		{7, "<0xa>", "<0xa>", tokenByte}, // sscanf's %02hhX takes one digit
		{8, "<0x>", "<0x>", tokenNormal},
		{9, " the cat", "▁the▁cat", tokenNormal},
		{10, "ab", "ab", tokenNormal},
	}
	for _, tt := range tests {
		text, typ := llama2cToken(tt.id, tt.in)
		if text != tt.want || typ != tt.typ {
			t.Errorf("llama2cToken(%d, %q) = %q, %d; want %q, %d", tt.id, tt.in, text, typ, tt.want, tt.typ)
		}
	}
}

// TestLlama2COutTypes converts to each output type and checks every
// tensor's type and that its data is the F32 reference tensor converted to
// that type.
func TestLlama2COutTypes(t *testing.T) {
	ref := openGGUF(t, testenv.Path(t, testenv.Stories260KGGUF))
	tests := []struct {
		out      OutType
		fileType uint32
		weights  tensor.Type
	}{
		{OutF16, 1, tensor.F16},
		{OutBF16, 32, tensor.BF16},
		{OutQ8_0, 7, tensor.Q8_0},
	}
	for _, tt := range tests {
		t.Run(tt.out.String(), func(t *testing.T) {
			got := openGGUF(t, convertStories(t, Options{OutType: tt.out}))
			if ft, _ := got.Uint32("general.file_type"); ft != tt.fileType {
				t.Errorf("general.file_type = %d, want %d", ft, tt.fileType)
			}
			for i, rt := range ref.Tensors {
				gt, ok := got.Tensor(rt.Name)
				if !ok {
					t.Fatalf("tensor %s missing", rt.Name)
				}
				want := tt.weights
				switch {
				case len(rt.Shape) == 1:
					want = tensor.F32
				case tt.weights == tensor.Q8_0 && rt.Shape[0]%32 != 0:
					want = tensor.F16 // ffn_down's rows of 172
				}
				if gt.Type != want {
					t.Errorf("tensor %s is %s, want %s", rt.Name, gt.Type, want)
					continue
				}
				vals := make([]float32, rt.Elements())
				if err := tensor.Dequantize(tensor.F32, ref.TensorData(&ref.Tensors[i]), vals); err != nil {
					t.Fatal(err)
				}
				size, _ := want.RowSize(int64(len(vals)))
				wantData := make([]byte, size)
				if err := tensor.Quantize(want, vals, wantData); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.TensorData(gt), wantData) {
					t.Errorf("tensor %s: data is not the reference converted to %s", rt.Name, want)
				}
			}
		})
	}
}

// TestLlama2CQuantizedMatchesLlamaCpp compares our F16 and Q8_0 outputs
// with llama.cpp's own quantization of the reference file: every tensor
// both put in the same type must be byte-identical.
func TestLlama2CQuantizedMatchesLlamaCpp(t *testing.T) {
	lib := openLlamaCpp(t)
	refPath := testenv.Path(t, testenv.Stories260KGGUF)
	tests := []struct {
		out   OutType
		ftype int
	}{
		{OutF16, 1},
		{OutQ8_0, 7},
	}
	for _, tt := range tests {
		t.Run(tt.out.String(), func(t *testing.T) {
			theirsPath := filepath.Join(t.TempDir(), "theirs.gguf")
			if err := lib.QuantizeModel(refPath, theirsPath, tt.ftype, 1); err != nil {
				t.Fatal(err)
			}
			theirs := openGGUF(t, theirsPath)
			ours := openGGUF(t, convertStories(t, Options{OutType: tt.out}))
			compared := 0
			for i, tt := range theirs.Tensors {
				ot, ok := ours.Tensor(tt.Name)
				if !ok {
					t.Fatalf("tensor %s missing", tt.Name)
				}
				if ot.Type != tt.Type {
					t.Logf("tensor %s: ours %s, llama-quantize %s", tt.Name, ot.Type, tt.Type)
					continue
				}
				compared++
				if !bytes.Equal(ours.TensorData(ot), theirs.TensorData(&theirs.Tensors[i])) {
					t.Errorf("tensor %s (%s) differs from llama.cpp's", tt.Name, tt.Type)
				}
			}
			if compared < len(theirs.Tensors)/2 {
				t.Errorf("only %d of %d tensors share a type with llama.cpp's", compared, len(theirs.Tensors))
			}
		})
	}
}

func TestParseOutType(t *testing.T) {
	tests := []struct {
		in   string
		want OutType
		ok   bool
	}{
		{"auto", OutAuto, true}, {"f32", OutF32, true}, {"F16", OutF16, true},
		{"bf16", OutBF16, true}, {"Q8_0", OutQ8_0, true}, {"q4_0", 0, false}, {"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseOutType(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseOutType(%q) = %v, %v", tt.in, got, err)
		}
		if tt.ok && got.String() != strings.ToLower(tt.in) {
			t.Errorf("%v.String() = %q", got, got.String())
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.gguf")
	if err := Run(filepath.Join(dir, "missing"), out, Options{}); err == nil {
		t.Error("missing input: no error")
	}
	if err := Run(dir, out, Options{}); err == nil || !strings.Contains(err.Error(), "config.json") {
		t.Errorf("directory without config.json: %v", err)
	}
	bin := testenv.Path(t, testenv.Stories260KBin)
	if err := Run(bin, out, Options{}); err == nil || !strings.Contains(err.Error(), "tokenizer") {
		t.Errorf("checkpoint without tokenizer: %v", err)
	}
	if err := Run(bin, out, Options{Tokenizer: testenv.Path(t, testenv.Tok512Bin)}); err != nil {
		t.Fatal(err)
	}
	f := openGGUF(t, out)
	if n, _ := f.Uint32("llama.block_count"); n != 5 {
		t.Errorf("llama.block_count = %d, want 5", n)
	}
	if err := Run(tinyStoriesDir(t), out, Options{}); err != nil {
		t.Fatal(err)
	}
}
