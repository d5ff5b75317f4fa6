package synth

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"llamago/chat"
	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/model"
	"llamago/quantize"
	"llamago/tensor"
	"llamago/tokenizer"
)

// tiny is a shape small enough to write in milliseconds.
var tiny = Shape{NEmbd: 64, NLayer: 2, NHead: 4, NKVHead: 2, NFF: 96, NCtx: 128}

func mustTarget(t *testing.T, name string) quantize.Target {
	t.Helper()
	tg, err := quantize.ParseTarget(name)
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func fileDigest(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// moments returns the mean and standard deviation of xs.
func moments(xs []float32) (mean, std float64) {
	for _, x := range xs {
		mean += float64(x)
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		d := float64(x) - mean
		std += d * d
	}
	return mean, math.Sqrt(std / float64(len(xs)))
}

func TestStandardNormal(t *testing.T) {
	const n = 1 << 20
	buf := make([]byte, 4*n)
	fillRow(buf, tensorKey(1, "test"), 0, 0, 1)
	xs := make([]float32, n)
	if err := tensor.Dequantize(tensor.F32, buf, xs); err != nil {
		t.Fatal(err)
	}
	mean, std := moments(xs)
	var m4 float64
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range xs {
		d := float64(x) - mean
		m4 += d * d * d * d
		lo, hi = min(lo, float64(x)), max(hi, float64(x))
	}
	kurt := m4/float64(n)/(std*std*std*std) - 3
	// Irwin–Hall with four terms: excess kurtosis −0.3, support ±√12.
	if math.Abs(mean) > 0.005 || math.Abs(std-1) > 0.005 || math.Abs(kurt+0.3) > 0.03 || lo < -math.Sqrt(12) || hi > math.Sqrt(12) || hi < 3 || lo > -3 {
		t.Errorf("mean %.4f std %.4f excess kurtosis %.3f range [%.2f, %.2f]; want 0, 1, -0.3 and about ±3.46", mean, std, kurt, lo, hi)
	}
}

func TestRowsAreIndependentStreams(t *testing.T) {
	row := func(seed uint64, name string, r uint64) []byte {
		b := make([]byte, 4*64)
		fillRow(b, tensorKey(seed, name), r, 0, 1)
		return b
	}
	base := row(1, "blk.0.attn_q.weight", 3)
	if !bytes.Equal(base, row(1, "blk.0.attn_q.weight", 3)) {
		t.Fatal("the same row twice gave different values")
	}
	for _, other := range [][]byte{
		row(1, "blk.0.attn_q.weight", 4), // next row
		row(1, "blk.0.attn_k.weight", 3), // other tensor
		row(2, "blk.0.attn_q.weight", 3), // other seed
	} {
		if bytes.Equal(base, other) {
			t.Error("two different streams gave the same row")
		}
	}
}

func vocabPath(t *testing.T) string {
	return testenv.Path(t, testenv.LlamaSPMVocab)
}

func TestWriteF32(t *testing.T) {
	vocab := vocabPath(t)
	path := filepath.Join(t.TempDir(), "m.gguf")
	sc := DefaultScales()
	if err := Write(path, tiny, mustTarget(t, "f32"), 42, Options{VocabPath: vocab}); err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	cfg, err := model.ConfigFromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	want := model.Config{Arch: "llama", NEmbd: 64, NLayer: 2, NHead: 4, NKVHead: 2, HeadDim: 16, NFF: 96, NCtxTrain: 128,
		RopeDims: 16, RopeBase: 10000, RopeScale: 1, RMSEps: 1e-5}
	if cfg != want {
		t.Errorf("config %+v, want %+v", cfg, want)
	}
	if ft, err := f.Uint32("general.file_type"); err != nil || ft != 0 {
		t.Errorf("general.file_type %d (%v), want 0", ft, err)
	}
	if tmpl, err := f.String("tokenizer.chat_template"); err != nil || tmpl != chat.TinyLlamaTemplate {
		t.Errorf("chat template %q (%v), want TinyLlama's", tmpl, err)
	}

	// The vocabulary is the real one, key for key.
	vf, err := gguf.Open(vocab)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	for _, kv := range vf.KV {
		if !strings.HasPrefix(kv.Key, "tokenizer.") {
			continue
		}
		got, ok := f.Get(kv.Key)
		if !ok || got.Type != kv.Value.Type || got.Len() != kv.Value.Len() {
			t.Errorf("%s missing or changed", kv.Key)
		}
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if tok.NumTokens() != 32000 {
		t.Errorf("%d tokens, want 32000", tok.NumTokens())
	}

	// Every tensor of a llama model, with the sizes the scales ask for.
	if n := len(f.Tensors); n != 3+9*tiny.NLayer {
		t.Errorf("%d tensors, want %d", n, 3+9*tiny.NLayer)
	}
	for _, c := range []struct {
		name      string
		shape     []uint64
		mean, std float64
	}{
		{"token_embd.weight", []uint64{64, 32000}, 0, sc.Embd},
		{"blk.1.attn_q.weight", []uint64{64, 64}, 0, sc.QK / 8},
		{"blk.0.attn_k.weight", []uint64{64, 32}, 0, sc.QK / 8},
		{"blk.0.attn_output.weight", []uint64{64, 64}, 0, sc.AttnOut / 8},
		{"blk.1.ffn_down.weight", []uint64{96, 64}, 0, sc.Down / math.Sqrt(96)},
		{"blk.0.ffn_norm.weight", []uint64{64}, 1, sc.Norm},
		{"output.weight", []uint64{64, 32000}, 0, sc.Output / 8},
	} {
		ti, ok := f.Tensor(c.name)
		if !ok {
			t.Errorf("no tensor %s", c.name)
			continue
		}
		if !slices.Equal(ti.Shape, c.shape) || ti.Type != tensor.F32 {
			t.Errorf("%s: %s %v, want F32 %v", c.name, ti.Type, ti.Shape, c.shape)
			continue
		}
		xs := make([]float32, ti.Elements())
		if err := tensor.Dequantize(tensor.F32, f.TensorData(ti), xs); err != nil {
			t.Fatal(err)
		}
		mean, std := moments(xs)
		// A vector of 64 values gives loose estimates; the matrices tight ones.
		tol := 0.04
		if len(xs) < 1000 {
			tol = 0.3
		}
		if math.Abs(mean-c.mean) > tol*c.std+1e-3 || math.Abs(std/c.std-1) > tol {
			t.Errorf("%s: mean %.4f std %.4f, want %.4f and %.4f", c.name, mean, std, c.mean, c.std)
		}
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	vocab := vocabPath(t)
	dir := t.TempDir()
	write := func(name string, seed uint64, target string) [32]byte {
		p := filepath.Join(dir, name)
		if err := Write(p, tiny, mustTarget(t, target), seed, Options{VocabPath: vocab, Threads: len(name)%3 + 1}); err != nil {
			t.Fatal(err)
		}
		return fileDigest(t, p)
	}
	if write("a", 7, "f32") != write("bb", 7, "f32") {
		t.Error("the same seed written with 1 and 3 threads gave different files")
	}
	if write("c", 7, "f32") == write("d", 8, "f32") {
		t.Error("seeds 7 and 8 gave the same file")
	}
	if write("e", 7, "q4_k_m") != write("ff", 7, "q4_k_m") {
		t.Error("the same seed gave different Q4_K_M files")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 6 {
		t.Errorf("%d files in the folder, want the 6 written (temporary files left behind?)", len(entries))
	}
}

func TestCached(t *testing.T) {
	vocab := vocabPath(t)
	dir := t.TempDir()
	opts := Options{VocabPath: vocab}
	q8, err := Cached(dir, tiny, mustTarget(t, "q8_0"), 3, opts)
	if err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(q8)
	if err != nil {
		t.Fatal(err)
	}
	// The F32 file it came from is kept, and the Q8_0 file is what
	// quantizing that F32 file gives.
	f32, err := Cached(dir, tiny, mustTarget(t, "f32"), 3, opts)
	if err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "q8.gguf")
	if err := quantize.Run(f32, again, mustTarget(t, "q8_0"), quantize.Options{}); err != nil {
		t.Fatal(err)
	}
	if fileDigest(t, again) != fileDigest(t, q8) {
		t.Error("the cached Q8_0 file is not the quantized F32 file")
	}
	f, err := gguf.Open(q8)
	if err != nil {
		t.Fatal(err)
	}
	ft, err := f.Uint32("general.file_type")
	f.Close()
	if err != nil || ft != mustTarget(t, "q8_0").FileType() {
		t.Errorf("general.file_type %d (%v), want %d", ft, err, mustTarget(t, "q8_0").FileType())
	}

	// A second call finds the file and leaves it alone.
	q8again, err := Cached(dir, tiny, mustTarget(t, "q8_0"), 3, opts)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(q8again)
	if err != nil {
		t.Fatal(err)
	}
	if q8again != q8 || !os.SameFile(before, after) || !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("the second call rewrote or moved the file: %s then %s", q8, q8again)
	}

	// Other seeds, shapes and scales are other files.
	other := opts
	other.Scales = DefaultScales()
	other.Scales.Embd = 0.5
	for _, c := range []struct {
		shape Shape
		seed  uint64
		opts  Options
	}{
		{tiny, 4, opts},
		{Shape{NEmbd: 64, NLayer: 3, NHead: 4, NKVHead: 2, NFF: 96, NCtx: 128}, 3, opts},
		{tiny, 3, other},
	} {
		key, err := cacheKey(c.shape, c.seed, c.opts)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(q8, key) {
			t.Errorf("shape %v seed %d scales %s share the cache key %s", c.shape, c.seed, c.opts.scales(), key)
		}
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv(CacheDirEnv, "/some/where")
	if d, err := DefaultCacheDir(); err != nil || d != "/some/where" {
		t.Errorf("DefaultCacheDir() = %q, %v; want $%s", d, err, CacheDirEnv)
	}
	t.Setenv(CacheDirEnv, "")
	d, err := DefaultCacheDir()
	if err != nil {
		t.Skip("no user cache folder here:", err)
	}
	if !strings.HasSuffix(d, filepath.Join("llamago", "synth")) {
		t.Errorf("DefaultCacheDir() = %q, want a llamago/synth folder", d)
	}
}

func TestWriteRejectsBadInput(t *testing.T) {
	vocab := vocabPath(t)
	negative := DefaultScales()
	negative.QK = -1
	nan := DefaultScales()
	nan.Output = math.NaN()
	for _, c := range []struct {
		name  string
		shape Shape
		opts  Options
		want  string
	}{
		{"heads do not divide the width", Shape{NEmbd: 64, NLayer: 1, NHead: 3, NKVHead: 1, NFF: 96, NCtx: 8}, Options{VocabPath: vocab}, "multiple of n_head"},
		{"query heads not a multiple of kv heads", Shape{NEmbd: 64, NLayer: 1, NHead: 4, NKVHead: 3, NFF: 96, NCtx: 8}, Options{VocabPath: vocab}, "multiple of n_head"},
		{"zero layers", Shape{NEmbd: 64, NLayer: 0, NHead: 4, NKVHead: 2, NFF: 96, NCtx: 8}, Options{VocabPath: vocab}, "not positive"},
		{"odd head size", Shape{NEmbd: 96, NLayer: 1, NHead: 32, NKVHead: 2, NFF: 96, NCtx: 8}, Options{VocabPath: vocab}, "even"},
		{"width not in blocks", Shape{NEmbd: 72, NLayer: 1, NHead: 4, NKVHead: 2, NFF: 96, NCtx: 8}, Options{VocabPath: vocab}, "multiples of 32"},
		{"no vocabulary", tiny, Options{}, "vocabulary"},
		{"vocabulary not a GGUF", tiny, Options{VocabPath: "/dev/null"}, "vocabulary"},
		{"negative scale", tiny, Options{VocabPath: vocab, Scales: negative}, "scales"},
		{"NaN scale", tiny, Options{VocabPath: vocab, Scales: nan}, "scales"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			err := Write(filepath.Join(dir, "m.gguf"), c.shape, mustTarget(t, "q8_0"), 1, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a failed write left %d files behind", len(entries))
			}
		})
	}
}

func TestShapes(t *testing.T) {
	for _, c := range []struct {
		name   string
		shape  Shape
		params int64
	}{
		// TinyLlama-1.1B: 1,100,048,384 parameters.
		{"tinyllama", TinyLlama(), 1100048384},
		{"small", Small(), 17892608},
	} {
		if err := c.shape.check(); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if got := c.shape.Params(32000); got != c.params {
			t.Errorf("%s: %d parameters, want %d", c.name, got, c.params)
		}
		if c.shape.NEmbd%256 != 0 || c.shape.NFF%256 != 0 {
			t.Errorf("%s: widths %d and %d are not whole k-quant super-blocks", c.name, c.shape.NEmbd, c.shape.NFF)
		}
	}
}
