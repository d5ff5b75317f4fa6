package quantize

import (
	"path/filepath"
	"slices"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/tensor"
)

// TestMatchesLlamaCpp quantizes models of several shapes to every target
// with this package and with llama.cpp's llama_model_quantize, and wants
// the same file: same metadata, same tensors in the same order with the
// same types, shapes and bytes. llama.cpp then loads and runs our outputs
// of the synthetic model.
func TestMatchesLlamaCpp(t *testing.T) {
	lib := openLlamaCpp(t)
	dir := t.TempDir()

	tied := tinyModel(32)
	tied.tied = true
	falcon := tinyModel(32)
	falcon.arch = "falcon"
	moe := tinyModel(4)
	moe.nExpert = 8
	f16 := tinyModel(8)
	f16.weights = tensor.F16
	bf16 := tinyModel(9)
	bf16.weights = tensor.BF16

	// The tiny models only check the type rules, so they skip the targets
	// without rules of their own beyond output.weight.
	someTargets := []string{"q8_0", "q4_0", "q4_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m"}
	var syntheticTargets []string // all
	if testing.Short() {
		syntheticTargets = []string{"f16", "q8_0", "q4_0", "q4_k_m"}
	}
	inputs := []struct {
		name    string
		path    string
		targets []string // nil: all
		runs    bool     // have llama.cpp run our output
	}{
		// 64-wide rows: k-quants fall back; 172-wide ffn_down rows fit
		// no block and fall back to F16.
		{"stories260K", testenv.Path(t, testenv.Stories260KGGUF), nil, false},
		{"synthetic", buildModel(t, dir, realModel()), syntheticTargets, true},
		{"f16-input", buildModel(t, dir, f16), nil, false},
		{"bf16-input", buildModel(t, dir, bf16), someTargets, false},
		{"22-layers", buildModel(t, dir, tinyModel(22)), someTargets, false},
		{"32-layers-tied", buildModel(t, dir, tied), someTargets, false},
		{"80-layers-gqa", buildModel(t, dir, tinyModel(80)), someTargets, false}, // llama.cpp's "70B"
		{"falcon", buildModel(t, dir, falcon), someTargets, false},
		{"moe-8-experts", buildModel(t, dir, moe), someTargets, false},
	}
	for _, in := range inputs {
		for _, target := range Targets() {
			if in.targets != nil && !slices.Contains(in.targets, target.Name()) {
				continue
			}
			t.Run(in.name+"/"+target.Name(), func(t *testing.T) {
				ours := filepath.Join(dir, in.name+"-"+target.Name()+"-ours.gguf")
				theirs := filepath.Join(dir, in.name+"-"+target.Name()+"-llama.gguf")
				if err := Run(in.path, ours, target, Options{Threads: 2}); err != nil {
					t.Fatal(err)
				}
				llamaCppQuantize(t, lib, in.path, theirs, target, false)
				compareOutputs(t, ours, theirs)
				if in.runs && !t.Failed() {
					checkRuns(t, lib, ours)
				}
			})
		}
	}
}

// TestRequantizeMatchesLlamaCpp requantizes a Q8_0 model, which needs
// AllowRequantize, and compares with llama.cpp's --allow-requantize.
func TestRequantizeMatchesLlamaCpp(t *testing.T) {
	lib := openLlamaCpp(t)
	dir := t.TempDir()
	q8 := filepath.Join(dir, "q8_0.gguf")
	q8Target, err := ParseTarget("q8_0")
	if err != nil {
		t.Fatal(err)
	}
	if err := Run(buildModel(t, dir, realModel()), q8, q8Target, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"q4_k_m", "q5_0", "q3_k", "f16"} {
		t.Run(name, func(t *testing.T) {
			target, err := ParseTarget(name)
			if err != nil {
				t.Fatal(err)
			}
			ours := filepath.Join(dir, name+"-ours.gguf")
			theirs := filepath.Join(dir, name+"-llama.gguf")
			if err := Run(q8, ours, target, Options{AllowRequantize: true}); err != nil {
				t.Fatal(err)
			}
			llamaCppQuantize(t, lib, q8, theirs, target, true)
			compareOutputs(t, ours, theirs)
		})
	}
}

// TestMoreBitsLayers checks the layers that get Q6_K in llama.cpp's _M
// mixes, listed by hand from use_more_bits (the first and last eighth of
// the layers, and every third layer from n/8+2), in our plan and in the
// file llama.cpp writes.
func TestMoreBitsLayers(t *testing.T) {
	lib := openLlamaCpp(t)
	dir := t.TempDir()
	tests := []struct {
		nLayer   int
		moreBits []int
	}{
		{22, []int{0, 1, 4, 7, 10, 13, 16, 19, 20, 21}},
		{32, []int{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}},
	}
	mixes := []struct {
		target string
		base   tensor.Type
	}{
		{"q4_k_m", tensor.Q4_K},
		{"q5_k_m", tensor.Q5_K},
	}
	for _, tc := range tests {
		in := buildModel(t, dir, tinyModel(tc.nLayer))
		f := openGGUF(t, in)
		for _, mix := range mixes {
			target, err := ParseTarget(mix.target)
			if err != nil {
				t.Fatal(err)
			}
			plans, err := Plan(f, target)
			if err != nil {
				t.Fatal(err)
			}
			planned := map[string]tensor.Type{}
			for _, p := range plans {
				planned[p.Name] = p.To
			}
			out := filepath.Join(dir, mix.target+".gguf")
			llamaCppQuantize(t, lib, in, out, target, false)
			written := tensorTypes(t, out)

			for layer := range tc.nLayer {
				want := mix.base
				if slices.Contains(tc.moreBits, layer) {
					want = tensor.Q6_K
				}
				for _, name := range []string{blk(layer, "attn_v.weight"), blk(layer, "ffn_down.weight")} {
					if planned[name] != want {
						t.Errorf("%d layers, %s: we plan %s for %s, want %s", tc.nLayer, mix.target, planned[name], name, want)
					}
					if written[name] != want {
						t.Errorf("%d layers, %s: llama.cpp wrote %s for %s, want %s", tc.nLayer, mix.target, written[name], name, want)
					}
				}
			}
			others := map[string]tensor.Type{
				"output.weight":            tensor.Q6_K,
				"token_embd.weight":        mix.base,
				blk(0, "attn_q.weight"):    mix.base,
				blk(0, "ffn_up.weight"):    mix.base,
				blk(0, "attn_norm.weight"): tensor.F32,
			}
			for name, want := range others {
				if planned[name] != want || written[name] != want {
					t.Errorf("%d layers, %s: %s is %s in our plan and %s in llama.cpp's file, want %s", tc.nLayer, mix.target, name, planned[name], written[name], want)
				}
			}
		}
	}
}

// TestAlignmentKept quantizes a model whose general.alignment is 64: our
// output keeps its tensors 64-aligned and runs in llama.cpp (llama.cpp's
// own quantizer copies the key but aligns to 32, and cannot load the
// result).
func TestAlignmentKept(t *testing.T) {
	lib := openLlamaCpp(t)
	dir := t.TempDir()
	c := realModel()
	c.nLayer = 1
	c.extraKVs = []gguf.KV{{Key: "general.alignment", Value: gguf.Uint32(64)}}
	in := buildModel(t, dir, c)
	out := filepath.Join(dir, "out.gguf")
	if err := Run(in, out, mustTarget(t, "q4_k_m"), Options{}); err != nil {
		t.Fatal(err)
	}
	f := openGGUF(t, out)
	if f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("alignment %d, data at %d; want 64", f.Alignment, f.DataOffset)
	}
	for _, ti := range f.Tensors {
		if ti.Offset%64 != 0 {
			t.Errorf("%s at offset %d", ti.Name, ti.Offset)
		}
	}
	checkRuns(t, lib, out)
}
