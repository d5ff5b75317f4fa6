package llamacpp

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"llamago/internal/testenv"
	"llamago/tensor"
)

// stories is the path of stories260K (n_vocab 512, n_embd 64, 5 layers).
func stories(t testing.TB) string {
	t.Helper()
	return testenv.Path(t, testenv.Stories260KGGUF)
}

// loadStories loads stories260K, closed when the test ends.
func loadStories(t *testing.T, lib *Lib) *Model {
	t.Helper()
	m, err := lib.LoadModel(stories(t), ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func TestModelInfo(t *testing.T) {
	lib := openLib(t)
	m := loadStories(t, lib)
	if got := m.NVocab(); got != 512 {
		t.Errorf("NVocab = %d, want 512", got)
	}
	if got := m.NEmbd(); got != 64 {
		t.Errorf("NEmbd = %d, want 64", got)
	}
	if got := m.NLayer(); got != 5 {
		t.Errorf("NLayer = %d, want 5", got)
	}
	if m.BOS() != 1 || m.EOS() != 2 {
		t.Errorf("BOS, EOS = %d, %d, want 1, 2", m.BOS(), m.EOS())
	}
	if !m.IsEOG(m.EOS()) || m.IsEOG(m.BOS()) {
		t.Errorf("IsEOG(EOS)=%v IsEOG(BOS)=%v", m.IsEOG(m.EOS()), m.IsEOG(m.BOS()))
	}
	if arch, ok := m.Meta("general.architecture"); !ok || arch != "llama" {
		t.Errorf("Meta(general.architecture) = %q, %v", arch, ok)
	}
	if v, ok := m.Meta("no.such.key"); ok {
		t.Errorf("Meta(no.such.key) = %q, true", v)
	}
	if d := m.Desc(); !strings.HasPrefix(d, "llama") {
		t.Errorf("Desc = %q", d)
	}
	t.Logf("desc %q, %d params, %d bytes, chat template %q, n_head %d/%d, n_ctx_train %d",
		m.Desc(), m.NParams(), m.Size(), m.ChatTemplate(), m.NHead(), m.NHeadKV(), m.NCtxTrain())
}

func TestLoadModelErrors(t *testing.T) {
	lib := openLib(t)
	if _, err := lib.LoadModel(filepath.Join(t.TempDir(), "missing.gguf"), ModelOptions{}); err == nil {
		t.Error("missing file: no error")
	}
	// A file that exists but is not GGUF: llama.cpp refuses it, and the
	// error quotes its log.
	bad := testenv.Path(t, testenv.Stories260KBin)
	_, err := lib.LoadModel(bad, ModelOptions{})
	if err == nil {
		t.Fatal("non-GGUF file: no error")
	}
	if !strings.Contains(err.Error(), "llama.cpp log:") {
		t.Errorf("error does not quote the log: %v", err)
	}
}

func TestTokenize(t *testing.T) {
	lib := openLib(t)
	m := loadStories(t, lib)
	ids, err := m.Tokenize("Once upon a time", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) < 3 || ids[0] != m.BOS() {
		t.Fatalf("tokens %v: want BOS first and a few pieces", ids)
	}
	// llama.cpp keeps the prefix space when it drops the BOS it removes,
	// and strips it when the text starts without BOS.
	if got := m.Detokenize(ids, true, false); got != " Once upon a time" {
		t.Errorf("Detokenize(with BOS) = %q", got)
	}
	if got := m.Detokenize(ids[1:], true, false); got != "Once upon a time" {
		t.Errorf("Detokenize(without BOS) = %q", got)
	}
	if got := m.Detokenize(ids, false, true); got != "<s> Once upon a time" {
		t.Errorf("Detokenize(unparse special) = %q", got)
	}
	var sb strings.Builder
	for _, id := range ids[1:] {
		sb.WriteString(m.TokenToPiece(id, false))
	}
	if got := strings.TrimPrefix(sb.String(), " "); got != "Once upon a time" {
		t.Errorf("pieces join to %q", sb.String())
	}
	noBOS, err := m.Tokenize("Once upon a time", false, false)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(noBOS) != fmt.Sprint(ids[1:]) {
		t.Errorf("without BOS %v, with %v", noBOS, ids)
	}
	empty, err := m.Tokenize("", false, false)
	if err != nil || len(empty) != 0 {
		t.Errorf("Tokenize(\"\") = %v, %v", empty, err)
	}
	// Byte-fallback text (each byte of a character outside the 512-token
	// vocabulary is a token) needs more room than the first guess, so
	// this takes the resize path.
	long := strings.Repeat("\u4e2d", 40)
	lt, err := m.Tokenize(long, false, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(lt) < len(long) {
		t.Errorf("%d tokens for %d bytes of byte-fallback text", len(lt), len(long))
	}
	if got := m.Detokenize(lt, false, false); got != long {
		t.Errorf("byte-fallback round trip: %q", got)
	}
}

func TestDecodeAndGenerate(t *testing.T) {
	lib := openLib(t)
	m := loadStories(t, lib)
	ctx, err := m.NewContext(ContextOptions{NCtx: 256, NBatch: 64, NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()

	ids, err := m.Tokenize("Once upon a time", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctx.Decode(ids, 0, true); err != nil {
		t.Fatal(err)
	}
	for i := range ids {
		lg := ctx.Logits(i)
		if len(lg) != 512 {
			t.Fatalf("Logits(%d) has %d values, want 512", i, len(lg))
		}
		if !allFinite(lg) {
			t.Fatalf("Logits(%d) not finite", i)
		}
	}
	if ctx.Logits(len(ids)) != nil {
		t.Error("Logits past the outputs is not nil")
	}
	last := ctx.Logits(-1)
	if fmt.Sprint(last) != fmt.Sprint(ctx.Logits(len(ids)-1)) {
		t.Error("Logits(-1) differs from the last output")
	}

	// Greedy generation from BOS.
	ctx.ClearMemory()
	gen := []int32{m.BOS()}
	for pos := int32(0); len(gen) < 21; pos++ {
		if err := ctx.Decode(gen[len(gen)-1:], pos, false); err != nil {
			t.Fatal(err)
		}
		next := testenv.Argmax(ctx.Logits(-1))
		if m.IsEOG(next) {
			break
		}
		gen = append(gen, next)
	}
	text := m.Detokenize(gen, true, false)
	t.Logf("greedy: %q", text)
	if len(gen) < 10 || !strings.Contains(text, " ") {
		t.Errorf("generated %d tokens %q: want story text with spaces", len(gen), text)
	}
	for _, r := range text {
		if !unicode.IsPrint(r) && r != '\n' {
			t.Errorf("generated text has a non-printable %q", r)
			break
		}
	}

	// The same prompt after ClearMemory gives the same logits: the cache
	// really was emptied.
	ctx.ClearMemory()
	if err := ctx.Decode(ids, 0, false); err != nil {
		t.Fatal(err)
	}
	again := ctx.Logits(-1)
	for i := range last {
		if d := last[i] - again[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("after ClearMemory logit %d: %v, before %v", i, again[i], last[i])
		}
	}

	perf := ctx.Perf()
	t.Logf("llama.cpp perf: %+v", perf)
	if perf.PromptTokens+perf.EvalTokens == 0 || perf.EvalMs+perf.PromptEvalMs <= 0 {
		t.Errorf("Perf counted nothing: %+v", perf)
	}

	if err := ctx.Decode([]int32{600}, 0, false); err == nil {
		t.Error("token outside the vocabulary: no error")
	}
	if err := ctx.Decode(make([]int32, 65), 0, false); err == nil {
		t.Error("more tokens than NBatch: no error")
	}
}

// evalNode is a copy of what the eval callback saw.
type evalNode struct {
	name, op string
	typ      tensor.Type
	ne       [4]int64
	data     []float32
	raw      string
}

// layer0Only keeps the nodes of layer 0 and those outside the layers
// (llama.cpp suffixes per-layer names with -<layer>; the KV cache views
// with _l<layer>).
func layer0Only(name string) bool {
	if i := strings.LastIndexByte(name, '-'); i >= 0 {
		return name[i+1:] == "0"
	}
	if i := strings.Index(name, "cache_"); i >= 0 {
		return strings.HasPrefix(name[i+len("cache_")+1:], "_l0 ")
	}
	return true
}

func TestEvalCallback(t *testing.T) {
	lib := openLib(t)
	m := loadStories(t, lib)
	var seq []evalNode
	// llama.cpp gives several nodes one name (Qcur-0 is the MUL_MAT, its
	// RESHAPE and the ROPE): keep the last, the finished value.
	nodes := map[string]evalNode{}
	asked := 0
	ctx, err := m.NewContext(ContextOptions{
		NCtx: 64, NBatch: 8, NThreads: 1, FlashAttn: FlashAttnDisabled,
		EvalFilter: func(name string) bool {
			asked++
			return layer0Only(name)
		},
		Eval: func(et *EvalTensor) {
			n := evalNode{et.Name, et.Op, et.Type, et.Ne, append([]float32(nil), et.Data...), et.Raw}
			seq = append(seq, n)
			nodes[n.name] = n
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	ids, err := m.Tokenize("Once upon a time", true, false)
	if err != nil {
		t.Fatal(err)
	}
	nTok := int64(len(ids))
	if err := ctx.Decode(ids, 0, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes asked about; %d taken (layer 0 and outside the layers), in graph order, %d tokens, n_ctx %d:",
		asked, len(seq), nTok, ctx.NCtx())
	for _, n := range seq {
		t.Logf("  %-30s %-9s %-4s ne=%v", n.name, n.op, n.typ, n.ne)
	}

	// Shapes for n_embd 64, n_head 8 (head size 8), n_head_kv 4, n_ff 172,
	// n_vocab 512. The token embeddings are "embd" (GET_ROWS); in this
	// release "inp_embd" names the graph input for embedding vectors,
	// which is not a computed node.
	tests := []struct {
		name string
		ne   [4]int64
	}{
		{"embd", [4]int64{64, nTok, 1, 1}},
		{"attn_norm-0", [4]int64{64, nTok, 1, 1}},
		{"Qcur-0", [4]int64{8, 8, nTok, 1}},
		{"Kcur-0", [4]int64{8, 4, nTok, 1}},
		{"kq_soft_max-0", [4]int64{0, nTok, 8, 1}}, // ne[0] is the KV cache length
		{"kqv_out-0", [4]int64{64, nTok, 1, 1}},
		{"ffn_out-0", [4]int64{64, nTok, 1, 1}},
		{"l_out-0", [4]int64{64, nTok, 1, 1}},
		{"result_norm", [4]int64{64, nTok, 1, 1}},
		{"result_output", [4]int64{512, nTok, 1, 1}},
	}
	for _, tt := range tests {
		n, ok := nodes[tt.name]
		if !ok {
			t.Errorf("node %s not seen", tt.name)
			continue
		}
		want := tt.ne
		if want[0] == 0 {
			want[0] = n.ne[0]
			if n.ne[0] < nTok {
				t.Errorf("%s: ne[0] %d shorter than the %d tokens", tt.name, n.ne[0], nTok)
			}
		}
		if n.ne != want {
			t.Errorf("%s: ne %v, want %v", tt.name, n.ne, want)
		}
		if n.typ != tensor.F32 {
			t.Errorf("%s: type %s, want F32", tt.name, n.typ)
		}
		if n.raw != "" || int64(len(n.data)) != n.ne[0]*n.ne[1]*n.ne[2]*n.ne[3] {
			t.Errorf("%s: %d values for ne %v (%s)", tt.name, len(n.data), n.ne, n.raw)
		}
		if !allFinite(n.data) {
			t.Errorf("%s: values not finite", tt.name)
		}
	}

	// The last node's data is what llama.cpp returns as logits.
	out := nodes["result_output"].data
	for i := range ids {
		lg := ctx.Logits(i)
		for j := range lg {
			if lg[j] != out[i*512+j] {
				t.Fatalf("result_output[%d][%d] = %v, logits %v", i, j, out[i*512+j], lg[j])
			}
		}
	}

	// Softmax rows sum to one.
	if sm, ok := nodes["kq_soft_max-0"]; ok && sm.raw == "" {
		kv := sm.ne[0]
		for row := range sm.ne[1] * sm.ne[2] {
			sum := float32(0)
			for _, p := range sm.data[row*kv : (row+1)*kv] {
				sum += p
			}
			if sum < 0.999 || sum > 1.001 {
				t.Fatalf("kq_soft_max-0 row %d sums to %v", row, sum)
			}
		}
	}

	// Strided reads: the permuted K cache view (a non-contiguous F16
	// node) must hold, in ne order, the same values as the view it
	// permutes, with dims 1 and 2 swapped; and positions 0..nTok-1 of the
	// cache hold Kcur-0 rounded to F16.
	view, okV := nodes["cache_k_l0 (view)"]
	perm, okP := nodes["cache_k_l0 (view) (permuted)"]
	if !okV || !okP {
		t.Fatal("K cache view nodes not seen")
	}
	if view.typ != tensor.F16 || perm.ne != [4]int64{view.ne[0], view.ne[2], view.ne[1], 1} {
		t.Fatalf("K cache view %s %v, permuted %v", view.typ, view.ne, perm.ne)
	}
	for _, n := range []evalNode{view, perm} {
		if n.raw != "" || int64(len(n.data)) != n.ne[0]*n.ne[1]*n.ne[2]*n.ne[3] {
			t.Fatalf("%s: %d values for ne %v (%s)", n.name, len(n.data), n.ne, n.raw)
		}
	}
	d0, d1, d2 := view.ne[0], view.ne[1], view.ne[2]
	for p := range d2 {
		for h := range d1 {
			for d := range d0 {
				a := view.data[d+d0*(h+d1*p)]
				b := perm.data[d+d0*(p+d2*h)]
				if a != b {
					t.Fatalf("K view (%d,%d,%d) = %v, permuted (%d,%d,%d) = %v", d, h, p, a, d, p, h, b)
				}
			}
		}
	}
	kcur := nodes["Kcur-0"]
	for i, x := range kcur.data { // ne [8 4 nTok]: same order as the view's first nTok positions
		want := lib.FP16ToFP32(lib.FP32ToFP16(x))
		if view.data[i] != want {
			t.Fatalf("K cache [%d] = %v, want Kcur-0 %v as F16 %v", i, view.data[i], x, want)
		}
	}

	// Single-token decodes (the second reuses the graph) still reach the
	// callback, with one column.
	for pos := nTok; pos < nTok+2; pos++ {
		nodes = map[string]evalNode{}
		if err := ctx.Decode([]int32{ids[1]}, int32(pos), false); err != nil {
			t.Fatal(err)
		}
		if n, ok := nodes["l_out-0"]; !ok || n.ne != [4]int64{64, 1, 1, 1} {
			t.Errorf("decode at %d: l_out-0 %v seen %v", pos, n.ne, ok)
		}
	}
}

func TestEvalCallbackPanicStopsDecode(t *testing.T) {
	lib := openLib(t)
	m := loadStories(t, lib)
	ctx, err := m.NewContext(ContextOptions{
		NCtx: 64, NBatch: 8, NThreads: 1,
		EvalFilter: func(name string) bool { return name == "l_out-0" },
		Eval:       func(*EvalTensor) { panic("boom") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	err = ctx.Decode([]int32{1}, 0, false)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("Decode after a panicking callback: %v", err)
	}
}

func TestQuantizeModel(t *testing.T) {
	lib := openLib(t)
	in := testenv.Path(t, testenv.Stories260KGGUF)
	out := filepath.Join(t.TempDir(), "stories260K-q8_0.gguf")
	if err := lib.QuantizeModel(in, out, FTypeQ8_0, 1); err != nil {
		t.Fatal(err)
	}
	m, err := lib.LoadModel(out, ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if d := m.Desc(); !strings.Contains(d, "Q8_0") {
		t.Errorf("Desc of the quantized model = %q, want Q8_0", d)
	}
	ctx, err := m.NewContext(ContextOptions{NCtx: 64, NBatch: 8, NThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer ctx.Close()
	if err := ctx.Decode([]int32{m.BOS()}, 0, false); err != nil {
		t.Fatal(err)
	}
	if lg := ctx.Logits(-1); len(lg) != 512 || !allFinite(lg) {
		t.Errorf("logits of the Q8_0 model: %d values, finite %v", len(lg), allFinite(lg))
	}
	if err := lib.QuantizeModel(filepath.Join(t.TempDir(), "none.gguf"), out, FTypeQ8_0, 1); err == nil {
		t.Error("missing input: no error")
	}
}

func TestClose(t *testing.T) {
	lib := openLib(t)
	m, err := lib.LoadModel(testenv.Path(t, testenv.Stories260KGGUF), ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := m.NewContext(ContextOptions{NCtx: 64, NBatch: 8, NThreads: 1, Eval: func(*EvalTensor) {}})
	if err != nil {
		t.Fatal(err)
	}
	m.Close() // closes ctx too
	m.Close()
	ctx.Close()
	if err := ctx.Decode([]int32{1}, 0, false); err == nil {
		t.Error("Decode after Close: no error")
	}
	if ctx.Logits(-1) != nil {
		t.Error("Logits after Close is not nil")
	}
	if _, err := m.Tokenize("x", true, false); err == nil {
		t.Error("Tokenize after Close: no error")
	}
	if _, err := m.NewContext(ContextOptions{}); err == nil {
		t.Error("NewContext after Close: no error")
	}
	if n := len(lib.evalTargets); n != 0 {
		t.Errorf("%d eval callbacks still registered", n)
	}
}
