package convert

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode"

	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/llamacpp"
	"llamago/tensor"
)

// testTensor is a tensor to write into a safetensors file.
type testTensor struct {
	Dtype string
	Shape []int
	Data  []byte
}

// writeSafetensors writes tensors in the safetensors format, laid out in
// name order.
func writeSafetensors(t *testing.T, path string, tensors map[string]testTensor) {
	t.Helper()
	names := make([]string, 0, len(tensors))
	for n := range tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	header := map[string]any{"__metadata__": map[string]string{"format": "pt"}}
	var data bytes.Buffer
	for _, n := range names {
		tt := tensors[n]
		start := data.Len()
		data.Write(tt.Data)
		header[n] = map[string]any{"dtype": tt.Dtype, "shape": tt.Shape, "data_offsets": []int{start, data.Len()}}
	}
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	_ = binary.Write(&file, binary.LittleEndian, uint64(len(h)))
	file.Write(h)
	file.Write(data.Bytes())
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTestSafetensors is a second, minimal safetensors reader, so that the
// tests do not check the package's reader against itself.
func readTestSafetensors(t *testing.T, path string) map[string]testTensor {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	out := map[string]testTensor{}
	for name, h := range header {
		if name == "__metadata__" {
			continue
		}
		var e struct {
			Dtype   string
			Shape   []int
			Offsets []int `json:"data_offsets"`
		}
		if err := json.Unmarshal(h, &e); err != nil {
			t.Fatal(err)
		}
		out[name] = testTensor{e.Dtype, e.Shape, raw[8+int(n)+e.Offsets[0] : 8+int(n)+e.Offsets[1]]}
	}
	return out
}

// copyDir makes a scratch copy of a model directory, so that tests can
// edit its files.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dst, e.Name(), data)
	}
	return dst
}

func convertTinyStories(t *testing.T, dir string, opts Options) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "tinystories.gguf")
	if err := HuggingFace(dir, out, opts); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestHuggingFaceTinyStories checks the conversion against what
// convert_hf_to_gguf.py writes for this model (--outtype auto): the
// metadata from config.json and the tokenizer files, BF16 weights with Q
// and K rows permuted, F32 norms, and no output.weight (tied embeddings).
func TestHuggingFaceTinyStories(t *testing.T) {
	dir := tinyStoriesDir(t)
	f := openGGUF(t, convertTinyStories(t, dir, Options{}))

	u32 := map[string]uint32{
		"llama.block_count": 2, "llama.context_length": 512, "llama.embedding_length": 128,
		"llama.feed_forward_length": 384, "llama.attention.head_count": 8, "llama.attention.head_count_kv": 4,
		"llama.vocab_size": 2048, "llama.rope.dimension_count": 16, "general.file_type": 32,
		"general.quantization_version": 2,
		"tokenizer.ggml.bos_token_id":  1, "tokenizer.ggml.eos_token_id": 2,
		"tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.padding_token_id": 0,
	}
	for k, want := range u32 {
		if got, err := f.Uint32(k); err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", k, got, err, want)
		}
	}
	strs := map[string]string{
		"general.architecture": "llama", "general.name": "TinyStories-656K",
		"tokenizer.ggml.model": "llama", "tokenizer.ggml.pre": "default",
	}
	for k, want := range strs {
		if got, err := f.String(k); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", k, got, err, want)
		}
	}
	bools := map[string]bool{"tokenizer.ggml.add_bos_token": true, "tokenizer.ggml.add_eos_token": false, "tokenizer.ggml.add_sep_token": false}
	for k, want := range bools {
		if got, err := f.Bool(k); err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", k, got, err, want)
		}
	}
	floats := map[string]float32{"llama.rope.freq_base": 10000, "llama.attention.layer_norm_rms_epsilon": 1e-6}
	for k, want := range floats {
		if got, err := f.Float32(k); err != nil || got != want {
			t.Errorf("%s = %v, %v; want %v", k, got, err, want)
		}
	}
	for _, k := range []string{"tokenizer.chat_template", "tokenizer.ggml.seperator_token_id", "llama.rope.scaling.type", "tokenizer.ggml.add_space_prefix"} {
		if f.Has(k) {
			t.Errorf("key %s is set; llama.cpp's converter leaves it out for this model", k)
		}
	}

	// The vocabulary: tokenizer.json's tokens in id order, scored -1000,
	// the special tokens <unk>, BOS, EOS control, no byte tokens.
	var tj struct {
		Model struct{ Vocab map[string]int }
	}
	data, err := os.ReadFile(filepath.Join(dir, "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &tj); err != nil {
		t.Fatal(err)
	}
	tokens, _ := f.Strings("tokenizer.ggml.tokens")
	scores, _ := f.Float32s("tokenizer.ggml.scores")
	types, _ := f.Int32s("tokenizer.ggml.token_type")
	if len(tokens) != 2048 || len(scores) != 2048 || len(types) != 2048 {
		t.Fatalf("%d tokens, %d scores, %d types; want 2048", len(tokens), len(scores), len(types))
	}
	for text, id := range tj.Model.Vocab {
		wantType := int32(tokenNormal)
		if id <= 2 {
			wantType = tokenControl
		}
		if tokens[id] != text || scores[id] != -1000 || types[id] != wantType {
			t.Errorf("token %d = %q score %v type %d; want %q -1000 %d", id, tokens[id], scores[id], types[id], text, wantType)
		}
	}

	// The tensors.
	src := readTestSafetensors(t, filepath.Join(dir, "model.safetensors"))
	if _, ok := f.Tensor("output.weight"); ok {
		t.Error("output.weight written for a model with tied embeddings")
	}
	if len(f.Tensors) != len(src) {
		t.Errorf("%d tensors, the checkpoint has %d", len(f.Tensors), len(src))
	}
	for name, st := range src {
		gname, err := ggufTensorName(name, 2)
		if err != nil {
			t.Fatal(err)
		}
		gt, ok := f.Tensor(gname)
		if !ok {
			t.Errorf("tensor %s (%s) missing", gname, name)
			continue
		}
		want := st.Data
		wantType := tensor.BF16
		switch {
		case len(st.Shape) == 1:
			wantType = tensor.F32
			want = make([]byte, 2*len(st.Data))
			for i := 0; i < len(st.Data)/2; i++ {
				binary.LittleEndian.PutUint32(want[4*i:], uint32(binary.LittleEndian.Uint16(st.Data[2*i:]))<<16)
			}
		case strings.HasSuffix(name, "q_proj.weight"):
			want = unpermuteRows(st.Data, st.Shape[0], 8)
		case strings.HasSuffix(name, "k_proj.weight"):
			want = unpermuteRows(st.Data, st.Shape[0], 4)
		}
		wantShape := make([]uint64, len(st.Shape))
		for i, d := range st.Shape {
			wantShape[len(st.Shape)-1-i] = uint64(d)
		}
		if gt.Type != wantType || !equalShape(gt.Shape, wantShape) {
			t.Errorf("tensor %s: %s %v, want %s %v", gname, gt.Type, gt.Shape, wantType, wantShape)
			continue
		}
		if !bytes.Equal(f.TensorData(gt), want) {
			t.Errorf("tensor %s: data differs", gname)
		}
	}
}

// unpermuteRows is the Q/K reordering written from the output's side:
// output row r of a head of headRows rows is the head's row
// (r%2)*headRows/2 + (r%headRows)/2 of the input.
func unpermuteRows(data []byte, rows, nHead int) []byte {
	rowBytes := len(data) / rows
	headRows := rows / nHead
	out := make([]byte, 0, len(data))
	for r := 0; r < rows; r++ {
		h, w := r/headRows, r%headRows
		src := h*headRows + (w%2)*(headRows/2) + w/2
		out = append(out, data[src*rowBytes:(src+1)*rowBytes]...)
	}
	return out
}

// TestPermuteRoPEPreservesAttention checks the permutation against the two
// RoPE conventions themselves: Hugging Face rotates dimension i of a head
// with dimension i+d/2; GGUF's llama RoPE rotates 2i with 2i+1, by the same
// angle. Attention scores q·k computed both ways, from the original and
// from the permuted weights, must agree.
func TestPermuteRoPEPreservesAttention(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const nHead, nKV, headDim, nEmbd = 4, 2, 8, 16
	randMat := func(rows int) []float32 {
		m := make([]float32, rows*nEmbd)
		for i := range m {
			m[i] = float32(rng.NormFloat64())
		}
		return m
	}
	wq, wk := randMat(nHead*headDim), randMat(nKV*headDim)
	asBytes := func(m []float32) []byte {
		b := make([]byte, 4*len(m))
		for i, x := range m {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	asFloats := func(b []byte) []float32 {
		m := make([]float32, len(b)/4)
		for i := range m {
			m[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return m
	}
	pq, err := permuteRoPE(asBytes(wq), nHead*headDim, nHead)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := permuteRoPE(asBytes(wk), nKV*headDim, nKV)
	if err != nil {
		t.Fatal(err)
	}
	matVec := func(w []float32, x []float64) []float64 {
		y := make([]float64, len(w)/nEmbd)
		for r := range y {
			for c := 0; c < nEmbd; c++ {
				y[r] += float64(w[r*nEmbd+c]) * x[c]
			}
		}
		return y
	}
	// rope rotates each head of v at position pos; pair(i) gives the two
	// dimensions rotated by the i-th frequency.
	rope := func(v []float64, pos int, pair func(i int) (int, int)) {
		for h := 0; h < len(v)/headDim; h++ {
			for i := 0; i < headDim/2; i++ {
				theta := float64(pos) * math.Pow(10000, -2*float64(i)/headDim)
				a, b := pair(i)
				a, b = h*headDim+a, h*headDim+b
				x, y := v[a], v[b]
				v[a] = x*math.Cos(theta) - y*math.Sin(theta)
				v[b] = x*math.Sin(theta) + y*math.Cos(theta)
			}
		}
	}
	rotateHalf := func(i int) (int, int) { return i, i + headDim/2 }
	adjacent := func(i int) (int, int) { return 2 * i, 2*i + 1 }
	for trial := 0; trial < 5; trial++ {
		x1, x2 := make([]float64, nEmbd), make([]float64, nEmbd)
		for i := range x1 {
			x1[i], x2[i] = rng.NormFloat64(), rng.NormFloat64()
		}
		p1, p2 := rng.Intn(100), rng.Intn(100)
		qHF, kHF := matVec(wq, x1), matVec(wk, x2)
		qGG, kGG := matVec(asFloats(pq), x1), matVec(asFloats(pk), x2)
		rope(qHF, p1, rotateHalf)
		rope(kHF, p2, rotateHalf)
		rope(qGG, p1, adjacent)
		rope(kGG, p2, adjacent)
		for h := 0; h < nHead; h++ {
			kv := h / (nHead / nKV)
			var sHF, sGG float64
			for d := 0; d < headDim; d++ {
				sHF += qHF[h*headDim+d] * kHF[kv*headDim+d]
				sGG += qGG[h*headDim+d] * kGG[kv*headDim+d]
			}
			if math.Abs(sHF-sGG) > 1e-9*(1+math.Abs(sHF)) {
				t.Errorf("trial %d head %d: score %v with Hugging Face RoPE, %v with GGUF RoPE", trial, h, sHF, sGG)
			}
		}
	}
	if _, err := permuteRoPE(make([]byte, 12), 3, 1); err == nil {
		t.Error("3 rows in 1 head of pairs: no error")
	}
}

// TestHuggingFaceLlamaCppGreedy loads the converted TinyStories-656K with
// llama.cpp and generates greedily from the model card's prompt.
func TestHuggingFaceLlamaCppGreedy(t *testing.T) {
	path := convertTinyStories(t, tinyStoriesDir(t), Options{})
	lib := openLlamaCpp(t)
	m, err := lib.LoadModel(path, llamacpp.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt, err := m.Tokenize("<|start_story|>Once upon a time, ", false, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(prompt) == 0 || prompt[0] != 1 {
		t.Fatalf("prompt ids %v do not start with BOS (1)", prompt)
	}
	ids := llamaCppGreedy(t, path, prompt, 40)
	text := m.Detokenize(ids, false, false)
	t.Logf("prompt ids %v\ngreedy ids %v\ntext: %q", prompt, ids, text)
	letters := 0
	for _, r := range text {
		if unicode.IsLetter(r) || r == ' ' {
			letters++
		}
	}
	words := strings.Fields(text)
	if len(words) < 15 || float64(letters) < 0.8*float64(len([]rune(text))) {
		t.Errorf("generation does not read as text: %q", text)
	}
	common := 0
	for _, w := range words {
		switch strings.ToLower(strings.Trim(w, ".,!?\"'")) {
		case "the", "a", "was", "he", "she", "to", "and", "her", "his", "they", "it":
			common++
		}
	}
	if common < 3 {
		t.Errorf("generation has only %d common English words: %q", common, text)
	}
}

// TestHuggingFaceOutTypes checks each output type's tensor types, and that
// llama.cpp loads and runs the result.
func TestHuggingFaceOutTypes(t *testing.T) {
	dir := tinyStoriesDir(t)
	tests := []struct {
		out      OutType
		fileType uint32
		weights  tensor.Type
	}{
		{OutF32, 0, tensor.F32},
		{OutF16, 1, tensor.F16},
		{OutQ8_0, 7, tensor.Q8_0},
	}
	for _, tt := range tests {
		t.Run(tt.out.String(), func(t *testing.T) {
			path := convertTinyStories(t, dir, Options{OutType: tt.out})
			f := openGGUF(t, path)
			if ft, _ := f.Uint32("general.file_type"); ft != tt.fileType {
				t.Errorf("general.file_type = %d, want %d", ft, tt.fileType)
			}
			for _, ti := range f.Tensors {
				want := tt.weights
				if len(ti.Shape) == 1 {
					want = tensor.F32
				}
				if ti.Type != want {
					t.Errorf("tensor %s is %s, want %s", ti.Name, ti.Type, want)
				}
			}
			ids := llamaCppGreedy(t, path, []int32{1}, 8)
			if len(ids) == 0 {
				t.Error("no tokens generated")
			}
		})
	}
}

// TestHuggingFaceSharded splits the checkpoint in two files with an index
// and expects the same GGUF file, byte for byte.
func TestHuggingFaceSharded(t *testing.T) {
	src := tinyStoriesDir(t)
	single, err := os.ReadFile(convertTinyStories(t, src, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, name, data)
	}
	tensors := readTestSafetensors(t, filepath.Join(src, "model.safetensors"))
	shards := []map[string]testTensor{{}, {}}
	weightMap := map[string]string{}
	for name, tt := range tensors {
		i := 0
		if strings.Contains(name, "layers.1.") || name == "model.norm.weight" {
			i = 1
		}
		shards[i][name] = tt
		weightMap[name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[i]
	}
	writeSafetensors(t, filepath.Join(dir, "model-00001-of-00002.safetensors"), shards[0])
	writeSafetensors(t, filepath.Join(dir, "model-00002-of-00002.safetensors"), shards[1])
	index, _ := json.Marshal(map[string]any{"weight_map": weightMap})
	writeFile(t, dir, "model.safetensors.index.json", index)

	sharded, err := os.ReadFile(convertTinyStories(t, dir, Options{Name: "TinyStories-656K"}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(single, sharded) {
		t.Error("sharded conversion differs from the single-file one")
	}

	// An index naming a tensor no shard holds.
	weightMap["model.extra.weight"] = "model-00001-of-00002.safetensors"
	index, _ = json.Marshal(map[string]any{"weight_map": weightMap})
	writeFile(t, dir, "model.safetensors.index.json", index)
	if err := HuggingFace(dir, filepath.Join(t.TempDir(), "x.gguf"), Options{}); err == nil || !strings.Contains(err.Error(), "model.extra.weight") {
		t.Errorf("index with a missing tensor: %v", err)
	}
	// An index pointing outside the directory.
	index, _ = json.Marshal(map[string]any{"weight_map": map[string]string{"a": "../model.safetensors"}})
	writeFile(t, dir, "model.safetensors.index.json", index)
	if err := HuggingFace(dir, filepath.Join(t.TempDir(), "x.gguf"), Options{}); err == nil || !strings.Contains(err.Error(), "not a file of the model directory") {
		t.Errorf("index naming ../: %v", err)
	}
}

func TestHuggingFaceErrors(t *testing.T) {
	src := tinyStoriesDir(t)
	edit := func(file string, change func(obj map[string]any)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			var obj map[string]any
			data, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, &obj); err != nil {
				t.Fatal(err)
			}
			change(obj)
			data, _ = json.Marshal(obj)
			writeFile(t, dir, file, data)
		}
	}
	bf16 := func(n int) []byte { return make([]byte, 2*n) }
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr string
	}{
		{"not llama", edit("config.json", func(c map[string]any) { c["architectures"] = []string{"GPT2LMHeadModel"} }), "only llama models"},
		{"no architectures", edit("config.json", func(c map[string]any) { delete(c, "architectures") }), "only llama models"},
		{"zero layers", edit("config.json", func(c map[string]any) { c["num_hidden_layers"] = 0 }), "num_hidden_layers = 0"},
		{"kv heads", edit("config.json", func(c map[string]any) { c["num_key_value_heads"] = 3 }), "num_key_value_heads"},
		{"llama3 rope", edit("config.json", func(c map[string]any) {
			c["rope_scaling"] = map[string]any{"rope_type": "llama3", "factor": 8.0}
		}), `"llama3" is not supported`},
		{"fewer layers than tensors", edit("config.json", func(c map[string]any) { c["num_hidden_layers"] = 1 }), "cannot map tensor \"model.layers.1."},
		{"gpt2 tokenizer", edit("tokenizer.json", func(c map[string]any) {
			c["model"].(map[string]any)["byte_fallback"] = false
		}), "GPT-2 style"},
		{"no tokenizer", func(t *testing.T, dir string) { _ = os.Remove(filepath.Join(dir, "tokenizer.json")) }, "neither tokenizer.model nor tokenizer.json"},
		{"no weights", func(t *testing.T, dir string) { _ = os.Remove(filepath.Join(dir, "model.safetensors")) }, "no model*.safetensors"},
		{"unknown tensor", func(t *testing.T, dir string) {
			writeSafetensors(t, filepath.Join(dir, "model.safetensors"), map[string]testTensor{"model.vision.weight": {"BF16", []int{4}, bf16(4)}})
		}, `cannot map tensor "model.vision.weight"`},
		{"integer weights", func(t *testing.T, dir string) {
			writeSafetensors(t, filepath.Join(dir, "model.safetensors"), map[string]testTensor{"model.norm.weight": {"I32", []int{128}, make([]byte, 512)}})
		}, "only F32, F16 and BF16"},
		{"q rows not pairs of heads", func(t *testing.T, dir string) {
			writeSafetensors(t, filepath.Join(dir, "model.safetensors"), map[string]testTensor{"model.layers.0.self_attn.q_proj.weight": {"BF16", []int{12, 2}, bf16(24)}})
		}, "cannot be split into 8 heads"},
		{"corrupt safetensors", func(t *testing.T, dir string) {
			writeFile(t, dir, "model.safetensors", []byte{200, 0, 0, 0, 0, 0, 0, 0, '{'})
		}, "does not fit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, src)
			tt.setup(t, dir)
			out := filepath.Join(t.TempDir(), "out.gguf")
			err := HuggingFace(dir, out, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
			}
			if _, statErr := os.Stat(out); statErr == nil {
				t.Error("an output file was left behind")
			}
		})
	}
}

func TestSafetensorsHeaderErrors(t *testing.T) {
	file := func(header string, data int) []byte {
		var b bytes.Buffer
		_ = binary.Write(&b, binary.LittleEndian, uint64(len(header)))
		b.WriteString(header)
		b.Write(make([]byte, data))
		return b.Bytes()
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "too short"},
		{"7 bytes", []byte{1, 2, 3, 4, 5, 6, 7}, "too short"},
		{"length past the end", []byte{255, 255, 255, 255, 255, 255, 255, 255}, "does not fit"},
		{"not JSON", file("{nope", 0), "not a JSON object"},
		{"array header", file("[1,2]", 0), "not a JSON object"},
		{"entry not an object", file(`{"a": 5}`, 0), `tensor "a"`},
		{"unknown dtype", file(`{"a": {"dtype": "F7", "shape": [1], "data_offsets": [0, 1]}}`, 1), `unknown dtype "F7"`},
		{"offsets past data", file(`{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}`, 4), "outside"},
		{"offsets reversed", file(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}`, 4), "outside"},
		{"one offset", file(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}`, 4), "outside"},
		{"negative offset", file(`{"a": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}`, 4), `tensor "a"`},
		{"size mismatch", file(`{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}`, 8), "needs 12 bytes"},
		{"negative dim", file(`{"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}}`, 0), "negative dimension"},
		{"overflowing shape", file(`{"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}}`, 0), "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseSafetensorsHeader(bytes.NewReader(tt.data), int64(len(tt.data)), "x.safetensors")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
	good := file(`{"__metadata__": {"format": "pt"}, "b": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [4, 16]}, "a": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}`, 16)
	list, err := parseSafetensorsHeader(bytes.NewReader(good), int64(len(good)), "x")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].name != "a" || list[1].name != "b" || list[1].size != 12 || list[1].offset != int64(len(good)-12) {
		t.Errorf("parsed %+v", list)
	}
}

func TestGGUFTensorName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"model.embed_tokens.weight", "token_embd.weight"},
		{"model.norm.weight", "output_norm.weight"},
		{"lm_head.weight", "output.weight"},
		{"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
		{"model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"},
		{"model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias"},
		{"model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"},
		{"model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"},
		{"model.layers.3.post_attention_layernorm.weight", "blk.3.ffn_norm.weight"},
		{"model.layers.3.mlp.gate_proj.weight", "blk.3.ffn_gate.weight"},
		{"model.layers.3.mlp.up_proj.weight", "blk.3.ffn_up.weight"},
		{"model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight"},
		{"model.layers.4.mlp.down_proj.weight", ""}, // past the 4 layers
		{"model.layers.x.mlp.down_proj.weight", ""},
		{"model.layers.0.mlp.fc.weight", ""},
		{"model.embed_tokens.bias", ""},
	}
	for _, tt := range tests {
		got, err := ggufTensorName(tt.in, 4)
		if got != tt.want || (err != nil) != (tt.want == "") {
			t.Errorf("ggufTensorName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestRopeKVs(t *testing.T) {
	theta := 500000.0
	tests := []struct {
		name    string
		cfg     hfConfig
		want    map[string]gguf.Value
		wantErr string
	}{
		{"none", hfConfig{}, map[string]gguf.Value{}, ""},
		{"theta", hfConfig{RopeTheta: &theta}, map[string]gguf.Value{"llama.rope.freq_base": gguf.Float32(500000)}, ""},
		{"null scaling", hfConfig{RopeScaling: json.RawMessage("null"), RopeTheta: &theta}, map[string]gguf.Value{"llama.rope.freq_base": gguf.Float32(500000)}, ""},
		{"linear", hfConfig{RopeScaling: json.RawMessage(`{"type": "linear", "factor": 4}`)}, map[string]gguf.Value{
			"llama.rope.scaling.type": gguf.String("linear"), "llama.rope.scaling.factor": gguf.Float32(4)}, ""},
		{"linear without factor", hfConfig{RopeScaling: json.RawMessage(`{"rope_type": "linear"}`)}, map[string]gguf.Value{}, ""},
		{"yarn", hfConfig{RopeScaling: json.RawMessage(`{"rope_type": "yarn", "factor": 4, "original_max_position_embeddings": 4096, "beta_fast": 32, "attn_factor": 0.5}`)}, map[string]gguf.Value{
			"llama.rope.scaling.type": gguf.String("yarn"), "llama.rope.scaling.factor": gguf.Float32(4),
			"llama.rope.scaling.original_context_length": gguf.Uint32(4096),
			"llama.rope.scaling.yarn_beta_fast":          gguf.Float32(32), "llama.rope.scaling.yarn_attn_factor": gguf.Float32(0.5)}, ""},
		{"rope_parameters with theta", hfConfig{RopeParameters: json.RawMessage(`{"rope_type": "default", "rope_theta": 1000}`), RopeTheta: &theta},
			map[string]gguf.Value{"llama.rope.freq_base": gguf.Float32(1000)}, ""},
		{"yarn without original context", hfConfig{RopeScaling: json.RawMessage(`{"rope_type": "yarn", "factor": 4}`)}, nil, "original_max_position_embeddings"},
		{"dynamic", hfConfig{RopeScaling: json.RawMessage(`{"type": "dynamic", "factor": 2}`)}, nil, "not supported"},
		{"bad json", hfConfig{RopeScaling: json.RawMessage(`[1]`)}, nil, "rope parameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kvs, err := tt.cfg.ropeKVs()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(kvs) != len(tt.want) {
				t.Errorf("got %d keys, want %d: %v", len(kvs), len(tt.want), kvs)
			}
			for _, kv := range kvs {
				if want, ok := tt.want[kv.key]; !ok || !valuesEqual(kv.val, want) {
					t.Errorf("%s = %v, want %v", kv.key, kv.val, want)
				}
			}
		})
	}
}

// hfReferenceLogits runs TinyStories-656K's forward pass as Hugging Face's
// LlamaForCausalLM defines it (rotate-half RoPE on the original Q and K
// weights, RMS norm, SiLU-gated MLP, grouped-query attention, tied
// embeddings), in float64 from the checkpoint's BF16 weights, and returns
// the logits of every position.
func hfReferenceLogits(t *testing.T, dir string, tokens []int32) [][]float64 {
	t.Helper()
	const (
		nEmbd, nFF, nLayer, nHead, nKV = 128, 384, 2, 8, 4
		headDim, eps, base             = nEmbd / nHead, 1e-6, 10000.0
	)
	src := readTestSafetensors(t, filepath.Join(dir, "model.safetensors"))
	weight := func(name string) []float64 {
		tt, ok := src[name]
		if !ok {
			t.Fatalf("checkpoint has no %s", name)
		}
		w := make([]float64, len(tt.Data)/2)
		for i := range w {
			w[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(tt.Data[2*i:])) << 16))
		}
		return w
	}
	matVec := func(w, x []float64) []float64 {
		y := make([]float64, len(w)/len(x))
		for r := range y {
			row := w[r*len(x) : (r+1)*len(x)]
			for c, xc := range x {
				y[r] += row[c] * xc
			}
		}
		return y
	}
	rmsNorm := func(x, w []float64) []float64 {
		var ss float64
		for _, v := range x {
			ss += v * v
		}
		scale := 1 / math.Sqrt(ss/float64(len(x))+eps)
		y := make([]float64, len(x))
		for i := range x {
			y[i] = x[i] * scale * w[i]
		}
		return y
	}
	ropeHalf := func(v []float64, pos int) {
		half := headDim / 2
		for h := 0; h < len(v)/headDim; h++ {
			for i := 0; i < half; i++ {
				theta := float64(pos) * math.Pow(base, -2*float64(i)/headDim)
				a, b := h*headDim+i, h*headDim+i+half
				x, y := v[a], v[b]
				v[a] = x*math.Cos(theta) - y*math.Sin(theta)
				v[b] = y*math.Cos(theta) + x*math.Sin(theta)
			}
		}
	}
	embed := weight("model.embed_tokens.weight")
	xs := make([][]float64, len(tokens))
	for p, tok := range tokens {
		xs[p] = append([]float64(nil), embed[int(tok)*nEmbd:(int(tok)+1)*nEmbd]...)
	}
	for l := 0; l < nLayer; l++ {
		w := func(s string) []float64 { return weight("model.layers." + string(rune('0'+l)) + "." + s + ".weight") }
		wq, wk, wv, wo := w("self_attn.q_proj"), w("self_attn.k_proj"), w("self_attn.v_proj"), w("self_attn.o_proj")
		inNorm, postNorm := w("input_layernorm"), w("post_attention_layernorm")
		gate, up, down := w("mlp.gate_proj"), w("mlp.up_proj"), w("mlp.down_proj")
		qs, ks, vs := make([][]float64, len(xs)), make([][]float64, len(xs)), make([][]float64, len(xs))
		for p, x := range xs {
			h := rmsNorm(x, inNorm)
			qs[p], ks[p], vs[p] = matVec(wq, h), matVec(wk, h), matVec(wv, h)
			ropeHalf(qs[p], p)
			ropeHalf(ks[p], p)
		}
		for p := range xs {
			attn := make([]float64, nEmbd)
			for h := 0; h < nHead; h++ {
				kvh := h / (nHead / nKV)
				scores := make([]float64, p+1)
				maxScore := math.Inf(-1)
				for j := 0; j <= p; j++ {
					for d := 0; d < headDim; d++ {
						scores[j] += qs[p][h*headDim+d] * ks[j][kvh*headDim+d]
					}
					scores[j] /= math.Sqrt(headDim)
					maxScore = math.Max(maxScore, scores[j])
				}
				var sum float64
				for j := range scores {
					scores[j] = math.Exp(scores[j] - maxScore)
					sum += scores[j]
				}
				for j := range scores {
					for d := 0; d < headDim; d++ {
						attn[h*headDim+d] += scores[j] / sum * vs[j][kvh*headDim+d]
					}
				}
			}
			o := matVec(wo, attn)
			for i := range xs[p] {
				xs[p][i] += o[i]
			}
			h := rmsNorm(xs[p], postNorm)
			g, u := matVec(gate, h), matVec(up, h)
			act := make([]float64, nFF)
			for i := range act {
				act[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
			}
			f := matVec(down, act)
			for i := range xs[p] {
				xs[p][i] += f[i]
			}
		}
	}
	norm := weight("model.norm.weight")
	logits := make([][]float64, len(xs))
	for p, x := range xs {
		logits[p] = matVec(embed, rmsNorm(x, norm))
	}
	return logits
}

// TestHuggingFaceLogitsMatchReferenceForward compares llama.cpp's logits on
// our F32 conversion with an independent float64 forward pass of the Hugging
// Face checkpoint: this checks tensor names, the Q/K permutation, norms and
// the tied output together.
func TestHuggingFaceLogitsMatchReferenceForward(t *testing.T) {
	dir := tinyStoriesDir(t)
	path := convertTinyStories(t, dir, Options{OutType: OutF32})
	tokens := []int32{1, 80, 147, 201, 282, 215, 286, 598, 1662, 436, 1027, 1376}
	want := hfReferenceLogits(t, dir, tokens)

	m, err := openLlamaCpp(t).LoadModel(path, llamacpp.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, err := m.NewContext(llamacpp.ContextOptions{NCtx: 64, NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	if err := ctx.Decode(tokens, 0, true); err != nil {
		t.Fatal(err)
	}
	var worst float64
	for p := range tokens {
		got := ctx.Logits(p)
		var maxAbs, maxDiff float64
		for i, w := range want[p] {
			maxAbs = math.Max(maxAbs, math.Abs(w))
			maxDiff = math.Max(maxDiff, math.Abs(float64(got[i])-w))
		}
		rel := maxDiff / maxAbs
		worst = math.Max(worst, rel)
		// llama.cpp keeps K and V in F16, hence a few 1e-4.
		if rel > 2e-3 {
			t.Errorf("position %d: logits differ by %.3g (largest logit %.3g)", p, maxDiff, maxAbs)
		}
		if g, w := testenv.Argmax(got), argmax64(want[p]); g != w {
			t.Errorf("position %d: llama.cpp's top token %d, the reference's %d", p, g, w)
		}
	}
	t.Logf("largest logit difference relative to the largest logit: %.2g", worst)
}

func argmax64(xs []float64) int32 {
	best := 0
	for i, x := range xs {
		if x > xs[best] {
			best = i
		}
	}
	return int32(best)
}
