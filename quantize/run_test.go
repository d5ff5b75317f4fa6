package quantize

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"llamago/gguf"
	"llamago/tensor"
)

// smallModel is a one-layer model without tokenizer: enough for Run.
func smallModel() modelConfig {
	return modelConfig{arch: "llama", nLayer: 1, nEmbd: 256, nFF: 512, nHead: 4, nHeadKV: 2, weights: tensor.F32, seed: 7, noVocab: true}
}

func mustTarget(t testing.TB, name string) Target {
	t.Helper()
	target, err := ParseTarget(name)
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// TestThreadsAndSlabs wants the same bytes whatever the number of
// goroutines and however the rows are cut into slabs.
func TestThreadsAndSlabs(t *testing.T) {
	dir := t.TempDir()
	in := buildModel(t, dir, smallModel())
	for _, name := range []string{"q4_k_m", "q8_0", "f16"} {
		target := mustTarget(t, name)
		ref := filepath.Join(dir, name+"-ref.gguf")
		if err := Run(in, ref, target, Options{Threads: 1}); err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(ref)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ threads, slab int }{{2, slabElements}, {3, 1000}, {5, 256}, {2, 1}, {0, 4096}} {
			out := filepath.Join(dir, name+"-other.gguf")
			if err := run(in, out, target, Options{Threads: tc.threads}, tc.slab); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s with %d threads and slabs of %d elements differs from 1 thread", name, tc.threads, tc.slab)
			}
		}
	}
}

// TestOutputFile checks what Run writes without llama.cpp: the metadata
// (copied in order, split keys dropped, quantization version and file type
// last), the tensors in Plan's order with Plan's types, and data that
// decodes close to the input.
func TestOutputFile(t *testing.T) {
	dir := t.TempDir()
	c := smallModel()
	c.extraKVs = []gguf.KV{
		{Key: "general.quantization_version", Value: gguf.Uint32(1)},
		{Key: "split.no", Value: gguf.Uint16(0)},
		{Key: "split.count", Value: gguf.Uint16(1)},
		{Key: "split.tensors.count", Value: gguf.Int32(12)},
		{Key: "zz.custom", Value: gguf.Strings([]string{"a", "b"})},
	}
	in := buildModel(t, dir, c)
	out := filepath.Join(dir, "out.gguf")
	target := mustTarget(t, "q4_k_m")

	src := openGGUF(t, in)
	plans, err := Plan(src, target)
	if err != nil {
		t.Fatal(err)
	}
	var progress []string
	opts := Options{Threads: 2, Progress: func(i, n int, p TensorPlan) {
		if i != len(progress) || n != len(plans) {
			t.Errorf("progress(%d, %d) after %d calls, %d tensors", i, n, len(progress), len(plans))
		}
		progress = append(progress, p.Name)
	}}
	if err := Run(in, out, target, opts); err != nil {
		t.Fatal(err)
	}
	f := openGGUF(t, out)

	var wantKeys []string
	for _, kv := range src.KV {
		switch kv.Key {
		case "general.file_type", "general.quantization_version", "split.no", "split.count", "split.tensors.count":
		default:
			wantKeys = append(wantKeys, kv.Key)
		}
	}
	wantKeys = append(wantKeys, "general.quantization_version", "general.file_type")
	var gotKeys []string
	for _, kv := range f.KV {
		gotKeys = append(gotKeys, kv.Key)
	}
	if !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("keys %v, want %v", gotKeys, wantKeys)
	}
	if v, _ := f.Get("general.file_type"); v.Type != gguf.TypeUint32 || v.Any() != uint32(15) {
		t.Errorf("general.file_type = %v (%s), want uint32 15", v.Any(), v.TypeName())
	}
	if v, _ := f.Get("general.quantization_version"); v.Type != gguf.TypeUint32 || v.Any() != uint32(2) {
		t.Errorf("general.quantization_version = %v (%s), want uint32 2", v.Any(), v.TypeName())
	}
	if s, err := f.Strings("zz.custom"); err != nil || !slices.Equal(s, []string{"a", "b"}) {
		t.Errorf("zz.custom = %v, %v", s, err)
	}

	if len(f.Tensors) != len(plans) || !slices.Equal(progress, names(plans)) {
		t.Fatalf("%d tensors, progress %v; plan %v", len(f.Tensors), progress, names(plans))
	}
	for i, ti := range f.Tensors {
		p := plans[i]
		if ti.Name != p.Name || ti.Type != p.To || !slices.Equal(ti.Shape, p.Shape) || ti.Size != p.OutSize {
			t.Errorf("tensor %d: %s %s %v (%d bytes), plan %s %s %v (%d bytes)", i, ti.Name, ti.Type, ti.Shape, ti.Size, p.Name, p.To, p.Shape, p.OutSize)
			continue
		}
		orig, _ := src.Tensor(ti.Name)
		a := make([]float32, ti.Elements())
		b := make([]float32, ti.Elements())
		if err := tensor.Dequantize(orig.Type, src.TensorData(orig), a); err != nil {
			t.Fatal(err)
		}
		if err := tensor.Dequantize(ti.Type, f.TensorData(&ti), b); err != nil {
			t.Fatal(err)
		}
		if e := relRMSE(a, b); e > 0.12 || (!p.Converts() && e != 0) {
			t.Errorf("%s (%s -> %s): relative RMS error %.4f", ti.Name, p.From, p.To, e)
		}
	}
}

func names(plans []TensorPlan) []string {
	s := make([]string, len(plans))
	for i, p := range plans {
		s[i] = p.Name
	}
	return s
}

// relRMSE is the RMS of a-b over the RMS of a.
func relRMSE(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(a[i]) * float64(a[i])
	}
	return math.Sqrt(num / den)
}

// TestTrimmedShape: a weight stored with a trailing dimension of one is
// written with the dimensions ggml counts, and counts as 1-D.
func TestTrimmedShape(t *testing.T) {
	dir := t.TempDir()
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("llama.block_count", gguf.Uint32(1))
	if err := w.AddTensor("blk.0.attn_q.weight", tensor.F32, []uint64{256, 2, 1}, make([]byte, 256*2*4)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("blk.0.odd.weight", tensor.F32, []uint64{256, 1}, make([]byte, 256*4)); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in.gguf")
	if err := w.WriteFile(in); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.gguf")
	if err := Run(in, out, mustTarget(t, "q8_0"), Options{}); err != nil {
		t.Fatal(err)
	}
	f := openGGUF(t, out)
	want := map[string]struct {
		shape []uint64
		typ   tensor.Type
	}{
		"blk.0.attn_q.weight": {[]uint64{256, 2}, tensor.Q8_0},
		"blk.0.odd.weight":    {[]uint64{256}, tensor.F32},
	}
	for _, ti := range f.Tensors {
		if w := want[ti.Name]; !slices.Equal(ti.Shape, w.shape) || ti.Type != w.typ {
			t.Errorf("%s: %s %v, want %s %v", ti.Name, ti.Type, ti.Shape, w.typ, w.shape)
		}
	}
}

// writeModel writes a GGUF file with the given metadata and one 2-D
// weight (and a norm) of type typ holding vals (or random bytes when vals
// is nil).
func writeModel(t *testing.T, path string, kvs []gguf.KV, typ tensor.Type, vals []float32) {
	t.Helper()
	w := gguf.NewWriter()
	for _, kv := range kvs {
		w.Set(kv.Key, kv.Value)
	}
	shape := []uint64{256, 4}
	size, err := gguf.TensorSize(typ, shape)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, size)
	if vals != nil {
		if err := tensor.Quantize(typ, vals, data); err != nil {
			t.Fatal(err)
		}
	} else {
		for i := range data {
			data[i] = byte(i * 7)
		}
	}
	if err := w.AddTensor("blk.0.attn_q.weight", typ, shape, data); err != nil {
		t.Fatal(err)
	}
	norm := make([]byte, 256*4)
	if err := tensor.Quantize(tensor.F32, slices.Repeat([]float32{1}, 256), norm); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("blk.0.attn_norm.weight", tensor.F32, shape[:1], norm); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	llama := []gguf.KV{
		{Key: "general.architecture", Value: gguf.String("llama")},
		{Key: "llama.block_count", Value: gguf.Uint32(1)},
	}
	ramp := make([]float32, 1024)
	for i := range ramp {
		ramp[i] = float32(i%37) - 18
	}
	with := func(i int, x float32) []float32 {
		v := slices.Clone(ramp)
		v[i] = x
		return v
	}
	model := func(name string, kvs []gguf.KV, typ tensor.Type, vals []float32) string {
		p := filepath.Join(dir, name+".gguf")
		writeModel(t, p, kvs, typ, vals)
		return p
	}
	junk := filepath.Join(dir, "junk.gguf")
	if err := os.WriteFile(junk, []byte("this is not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	q4km := mustTarget(t, "q4_k_m")

	tests := []struct {
		name   string
		in     string
		out    string
		target Target
		opts   Options
		is     error  // errors.Is, or nil
		want   string // substring of the message
	}{
		{"missing input", filepath.Join(dir, "nope.gguf"), "", q4km, Options{}, fs.ErrNotExist, "nope.gguf"},
		{"not gguf", junk, "", q4km, Options{}, gguf.ErrNotGGUF, "junk.gguf"},
		{"zero target", model("ok", llama, tensor.F32, ramp), "", Target{}, Options{}, nil, "no target"},
		{"no architecture", model("noarch", llama[1:], tensor.F32, ramp), "", q4km, Options{}, gguf.ErrKeyNotFound, "general.architecture"},
		{"no block count", model("noblocks", llama[:1], tensor.F32, ramp), "", q4km, Options{}, gguf.ErrKeyNotFound, "llama.block_count"},
		{"split", model("split", append(slices.Clone(llama), gguf.KV{Key: "split.count", Value: gguf.Uint16(3)}), tensor.F32, ramp), "", q4km, Options{}, nil, "one of 3 parts"},
		{"quantized input", model("q8", llama, tensor.Q8_0, ramp), "", q4km, Options{}, nil, "AllowRequantize"},
		{"unsupported type", model("iq4nl", llama, tensor.IQ4_NL, nil), "", q4km, Options{AllowRequantize: true}, tensor.ErrUnsupported, "IQ4_NL"},
		{"nan input", model("nan", llama, tensor.F32, with(300, float32(math.NaN()))), "", q4km, Options{}, nil, "element 300 is NaN"},
		{"inf input f16", model("inf", llama, tensor.F16, with(5, float32(math.Inf(1)))), "", mustTarget(t, "q8_0"), Options{}, nil, "element 5 is +Inf"},
		{"q8_0 scale overflow", model("huge", llama, tensor.F32, with(700, 1e30)), "", mustTarget(t, "q8_0"), Options{}, nil, "not finite"},
		{"f16 overflow", model("huge16", llama, tensor.F32, with(700, 1e6)), "", mustTarget(t, "f16"), Options{}, nil, "not finite"},
		{"no output folder", model("ok2", llama, tensor.F32, ramp), filepath.Join(dir, "missing", "out.gguf"), q4km, Options{}, fs.ErrNotExist, "out.gguf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.out
			if out == "" {
				out = filepath.Join(dir, "out-"+strings.ReplaceAll(tc.name, " ", "-")+".gguf")
			}
			err := Run(tc.in, out, tc.target, tc.opts)
			if err == nil {
				t.Fatal("Run succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "quantize: ") {
				t.Errorf("error %q does not start with quantize: and say %q", err, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a failed Run left %s (%v)", out, err)
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestReleasePages: advising the kernel away from pieces of the input
// mapping, aligned or not, larger or smaller than a page, leaves the data
// readable and unchanged.
func TestReleasePages(t *testing.T) {
	dir := t.TempDir()
	f := openGGUF(t, buildModel(t, dir, smallModel()))
	ti, ok := f.Tensor("token_embd.weight") // 512 KiB
	if !ok {
		t.Fatal("no token_embd.weight")
	}
	data := f.TensorData(ti)
	want := bytes.Clone(data)
	for _, r := range [][2]int{{0, 0}, {0, 1}, {1, 100}, {5, 4096}, {4095, 4097}, {100, 9000}, {3, 70000}, {0, len(data)}} {
		releasePages(data[r[0]:r[1]])
		if !bytes.Equal(data, want) {
			t.Fatalf("data changed after releasing [%d, %d)", r[0], r[1])
		}
	}
}
