package quantize

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ebitengine/purego"

	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/llamacpp"
	"llamago/tensor"
)

// modelConfig describes a synthetic llama-shaped model with random weights.
type modelConfig struct {
	arch     string
	nLayer   int
	nEmbd    int
	nFF      int
	nHead    int
	nHeadKV  int
	nExpert  int  // > 0: ffn_{gate,up,down}_exps with a router
	tied     bool // no output.weight
	rows     int  // > 0: every 2-D weight gets this many rows (enough for the type rules, not for inference)
	weights  tensor.Type
	seed     uint64
	extraKVs []gguf.KV
	noVocab  bool // leave out the tokenizer (enough for Plan and Run; llama.cpp wants one)
}

// realModel is small but has every row a multiple of 256, so that the
// k-quants apply, and runs in llama.cpp.
func realModel() modelConfig {
	return modelConfig{arch: "llama", nLayer: 4, nEmbd: 256, nFF: 512, nHead: 4, nHeadKV: 2, weights: tensor.F32, seed: 1}
}

// tinyModel is a shape for the type rules: nLayer layers of 2-row weights.
func tinyModel(nLayer int) modelConfig {
	return modelConfig{arch: "llama", nLayer: nLayer, nEmbd: 256, nFF: 768, nHead: 8, nHeadKV: 2, rows: 2, weights: tensor.F32, seed: uint64(nLayer)}
}

// tokenizerKVs returns the tokenizer metadata of stories260K.gguf (512
// tokens), so that the synthetic models load in llama.cpp.
func tokenizerKVs(t testing.TB) []gguf.KV {
	t.Helper()
	f, err := gguf.Open(testenv.Path(t, testenv.Stories260KGGUF))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var kvs []gguf.KV
	for _, kv := range f.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			kvs = append(kvs, kv) // the values' slices stay valid: Open copies metadata out of the map
		}
	}
	return kvs
}

// buildModel writes the model described by c and returns its path.
func buildModel(t testing.TB, dir string, c modelConfig) string {
	t.Helper()
	const nVocab = 512
	rng := rand.New(rand.NewPCG(c.seed, 0x9e3779b97f4a7c15))
	w := gguf.NewWriter()
	a := func(k string) string { return c.arch + "." + k }
	w.Set("general.architecture", gguf.String(c.arch))
	w.Set("general.name", gguf.String("synthetic"))
	w.Set(a("context_length"), gguf.Uint32(128))
	w.Set(a("embedding_length"), gguf.Uint32(uint32(c.nEmbd)))
	w.Set(a("feed_forward_length"), gguf.Uint32(uint32(c.nFF)))
	w.Set(a("attention.head_count"), gguf.Uint32(uint32(c.nHead)))
	w.Set(a("attention.head_count_kv"), gguf.Uint32(uint32(c.nHeadKV)))
	w.Set(a("block_count"), gguf.Uint32(uint32(c.nLayer)))
	w.Set(a("rope.dimension_count"), gguf.Uint32(uint32(c.nEmbd/c.nHead)))
	w.Set(a("attention.layer_norm_rms_epsilon"), gguf.Float32(1e-5))
	w.Set(a("attention.layer_norm_epsilon"), gguf.Float32(1e-5)) // falcon's
	if c.nExpert > 0 {
		w.Set(a("expert_count"), gguf.Uint32(uint32(c.nExpert)))
		w.Set(a("expert_used_count"), gguf.Uint32(2))
	}
	w.Set("general.file_type", gguf.Uint32(0)) // moved to the end by quantizing
	if !c.noVocab {
		for _, kv := range tokenizerKVs(t) {
			w.Set(kv.Key, kv.Value)
		}
	}
	for _, kv := range c.extraKVs {
		w.Set(kv.Key, kv.Value)
	}

	add := func(name string, typ tensor.Type, shape ...uint64) {
		t.Helper()
		if c.rows > 0 && len(shape) >= 2 {
			shape[1] = uint64(c.rows)
		}
		n := uint64(1)
		for _, d := range shape {
			n *= d
		}
		vals := make([]float32, n)
		// Rows of differing scale, a few outliers: the quantizers' search
		// paths all get exercised.
		for i := range vals {
			scale := 0.02 * float32(1+(uint64(i)/shape[0])%7)
			vals[i] = float32(rng.NormFloat64()) * scale
			if rng.IntN(997) == 0 {
				vals[i] *= 12
			}
		}
		if len(shape) == 1 {
			typ = tensor.F32 // norms stay F32, as converters write them
			for i := range vals {
				vals[i] = 1 + vals[i]
			}
		}
		size, err := gguf.TensorSize(typ, shape)
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, size)
		if err := tensor.Quantize(typ, vals, data); err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(name, typ, shape, data); err != nil {
			t.Fatal(err)
		}
	}
	e, ff, kv := uint64(c.nEmbd), uint64(c.nFF), uint64(c.nEmbd/c.nHead*c.nHeadKV)
	add("token_embd.weight", c.weights, e, nVocab)
	add("output_norm.weight", tensor.F32, e)
	if !c.tied {
		add("output.weight", c.weights, e, nVocab)
	}
	for i := range c.nLayer {
		p := fmt.Sprintf("blk.%d.", i)
		add(p+"attn_norm.weight", tensor.F32, e)
		add(p+"attn_q.weight", c.weights, e, e)
		add(p+"attn_k.weight", c.weights, e, kv)
		add(p+"attn_v.weight", c.weights, e, kv)
		add(p+"attn_output.weight", c.weights, e, e)
		add(p+"ffn_norm.weight", tensor.F32, e)
		if c.nExpert > 0 {
			x := uint64(c.nExpert)
			add(p+"ffn_gate_inp.weight", tensor.F32, e, x)
			add(p+"ffn_gate_exps.weight", c.weights, e, ff, x)
			add(p+"ffn_down_exps.weight", c.weights, ff, e, x)
			add(p+"ffn_up_exps.weight", c.weights, e, ff, x)
		} else {
			add(p+"ffn_gate.weight", c.weights, e, ff)
			add(p+"ffn_down.weight", c.weights, ff, e)
			add(p+"ffn_up.weight", c.weights, e, ff)
		}
	}
	file, err := os.CreateTemp(dir, fmt.Sprintf("model-%s-%d-*.gguf", c.arch, c.nLayer))
	if err != nil {
		t.Fatal(err)
	}
	path := file.Name()
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// openLlamaCpp loads llama.cpp's libraries or stops the test through
// testenv.Missing.
func openLlamaCpp(t testing.TB) *llamacpp.Lib {
	t.Helper()
	lib, err := llamacpp.Open(testenv.RequireLlamaCpp(t))
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

// llamaQuantizeParams is llama.h's llama_model_quantize_params.
type llamaQuantizeParams struct {
	NThread              int32
	FType                int32
	OutputTensorType     int32
	TokenEmbeddingType   int32
	AllowRequantize      bool
	QuantizeOutputTensor bool
	OnlyCopy             bool
	Pure                 bool
	KeepSplit            bool
	DryRun               bool
	_                    [2]byte
	Imatrix              uintptr
	KVOverrides          uintptr
	TTOverrides          uintptr
	PruneLayers          uintptr
	MaxBufSize           uint64
}

// llamaCppQuantize quantizes in to out with llama.cpp as llama-quantize
// would for target: lib.QuantizeModel for the mixes; for --pure and
// --allow-requantize, which that harness does not expose, a direct call
// of llama_model_quantize in the library lib has loaded.
func llamaCppQuantize(t testing.TB, lib *llamacpp.Lib, in, out string, target Target, allowRequantize bool) {
	llamaCppQuantizeThreads(t, lib, in, out, target, allowRequantize, 2)
}

// llamaCppQuantizeThreads is llamaCppQuantize with nThreads threads.
func llamaCppQuantizeThreads(t testing.TB, lib *llamacpp.Lib, in, out string, target Target, allowRequantize bool, nThreads int) {
	t.Helper()
	if !target.Pure() && !allowRequantize {
		if err := lib.QuantizeModel(in, out, int(target.FileType()), nThreads); err != nil {
			t.Fatal(err)
		}
		return
	}
	h, err := purego.Dlopen(filepath.Join(lib.Dir(), "libllama.v0.4.0.so"), purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		t.Fatal(err)
	}
	var defaults func() llamaQuantizeParams
	var quantize func(in, out string, p *llamaQuantizeParams) uint32
	purego.RegisterLibFunc(&defaults, h, "llama_model_quantize_default_params")
	purego.RegisterLibFunc(&quantize, h, "llama_model_quantize")
	p := defaults()
	p.FType = int32(target.FileType())
	p.NThread = int32(nThreads)
	p.Pure = target.Pure()
	p.AllowRequantize = allowRequantize
	if rc := quantize(in, out, &p); rc != 0 {
		t.Fatalf("llama_model_quantize %s to %s (pure %v) failed: %s", in, target, p.Pure, strings.Join(lib.RecentLog(6), "\n"))
	}
}

// compareOutputs checks that our file is llama.cpp's: the same metadata in
// the same order, the same tensors (names, order, types, shapes) with the
// same bytes, and in the end the same file.
func compareOutputs(t *testing.T, ours, theirs string) {
	t.Helper()
	a, err := gguf.Open(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := gguf.Open(theirs)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	if len(a.KV) != len(b.KV) {
		t.Errorf("%d metadata keys, llama.cpp wrote %d", len(a.KV), len(b.KV))
	}
	for i := range min(len(a.KV), len(b.KV)) {
		ka, kb := a.KV[i], b.KV[i]
		if ka.Key != kb.Key || ka.Value.Type != kb.Value.Type || ka.Value.Elem != kb.Value.Elem || !reflect.DeepEqual(ka.Value.Any(), kb.Value.Any()) {
			t.Errorf("metadata %d: %s = %s (%s), llama.cpp wrote %s = %s (%s)", i, ka.Key, short(ka.Value), ka.Value.TypeName(), kb.Key, short(kb.Value), kb.Value.TypeName())
		}
	}
	if len(a.Tensors) != len(b.Tensors) {
		t.Fatalf("%d tensors, llama.cpp wrote %d", len(a.Tensors), len(b.Tensors))
	}
	bad := 0
	for i := range a.Tensors {
		ta, tb := &a.Tensors[i], &b.Tensors[i]
		switch {
		case ta.Name != tb.Name:
			t.Errorf("tensor %d is %s, llama.cpp wrote %s", i, ta.Name, tb.Name)
		case ta.Type != tb.Type || !reflect.DeepEqual(ta.Shape, tb.Shape):
			t.Errorf("%s: %s %v, llama.cpp wrote %s %v", ta.Name, ta.Type, ta.Shape, tb.Type, tb.Shape)
		case !bytes.Equal(a.TensorData(ta), b.TensorData(tb)):
			t.Errorf("%s (%s): data differs from llama.cpp's", ta.Name, ta.Type)
		default:
			continue
		}
		if bad++; bad > 8 {
			t.Fatal("too many differences")
		}
	}
	if t.Failed() {
		return
	}
	da, err := os.ReadFile(ours)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(da, db) {
		t.Errorf("the files differ (%d and %d bytes) although metadata and tensors match", len(da), len(db))
	}
}

// short renders a metadata value for a message, cut to 60 bytes.
func short(v gguf.Value) string {
	s := fmt.Sprint(v.Any())
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}

// tensorTypes returns name -> type of a GGUF file's tensors.
func tensorTypes(t testing.TB, path string) map[string]tensor.Type {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	types := make(map[string]tensor.Type, len(f.Tensors))
	for _, ti := range f.Tensors {
		types[ti.Name] = ti.Type
	}
	return types
}

// checkRuns loads a model in llama.cpp and decodes a few tokens, which must
// give finite logits.
func checkRuns(t *testing.T, lib *llamacpp.Lib, path string) {
	t.Helper()
	m, err := lib.LoadModel(path, llamacpp.ModelOptions{})
	if err != nil {
		t.Fatalf("llama.cpp cannot load %s: %v", filepath.Base(path), err)
	}
	defer m.Close()
	ctx, err := m.NewContext(llamacpp.ContextOptions{NCtx: 64, NThreads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	tokens, err := m.Tokenize("Once upon a time", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.Decode(tokens, 0, false); err != nil {
		t.Fatal(err)
	}
	logits := ctx.Logits(-1)
	if len(logits) != m.NVocab() {
		t.Fatalf("%d logits, want %d", len(logits), m.NVocab())
	}
	for i, x := range logits {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			t.Fatalf("logit %d is %v", i, x)
		}
	}
}

// blk names a tensor of block i.
func blk(i int, name string) string { return fmt.Sprintf("blk.%d.%s", i, name) }

// openGGUF opens a GGUF file for the rest of the test.
func openGGUF(t testing.TB, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
