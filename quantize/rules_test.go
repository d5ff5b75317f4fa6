package quantize

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"llamago/llamacpp"
	"llamago/tensor"
)

func TestParseTarget(t *testing.T) {
	// The llama_ftype each name must write, from the llamacpp harness's
	// copy of llama.h, and what the name means.
	tests := []struct {
		name  string
		ftype int
		base  tensor.Type
		pure  bool
	}{
		{"f32", llamacpp.FTypeAllF32, tensor.F32, false},
		{"F16", llamacpp.FTypeMostlyF16, tensor.F16, false},
		{"bf16", llamacpp.FTypeBF16, tensor.BF16, false},
		{"q8_0", llamacpp.FTypeQ8_0, tensor.Q8_0, false},
		{"q5_1", llamacpp.FTypeQ5_1, tensor.Q5_1, false},
		{"q5_0", llamacpp.FTypeQ5_0, tensor.Q5_0, false},
		{"q4_1", llamacpp.FTypeQ4_1, tensor.Q4_1, false},
		{"Q4_0", llamacpp.FTypeQ4_0, tensor.Q4_0, false},
		{"q6_k", llamacpp.FTypeQ6_K, tensor.Q6_K, true},
		{"q5_k", llamacpp.FTypeQ5_K_M, tensor.Q5_K, true},
		{"Q4_K", llamacpp.FTypeQ4_K_M, tensor.Q4_K, true},
		{"q3_k", llamacpp.FTypeQ3_K_M, tensor.Q3_K, true},
		{"q2_k", llamacpp.FTypeQ2_K, tensor.Q2_K, true},
		{"q5_k_m", llamacpp.FTypeQ5_K_M, tensor.Q5_K, false},
		{"q5_k_s", llamacpp.FTypeQ5_K_S, tensor.Q5_K, false},
		{"Q4_K_M", llamacpp.FTypeQ4_K_M, tensor.Q4_K, false},
		{" q4_k_s ", llamacpp.FTypeQ4_K_S, tensor.Q4_K, false},
		{"q3_k_l", llamacpp.FTypeQ3_K_L, tensor.Q3_K, false},
		{"q3_k_m", llamacpp.FTypeQ3_K_M, tensor.Q3_K, false},
		{"q3_k_s", llamacpp.FTypeQ3_K_S, tensor.Q3_K, false},
	}
	if len(tests) != len(Targets()) {
		t.Errorf("%d targets, the test knows %d", len(Targets()), len(tests))
	}
	for _, tc := range tests {
		got, err := ParseTarget(tc.name)
		if err != nil {
			t.Errorf("ParseTarget(%q): %v", tc.name, err)
			continue
		}
		if int(got.FileType()) != tc.ftype || got.BaseType() != tc.base || got.Pure() != tc.pure {
			t.Errorf("ParseTarget(%q) = ftype %d, base %s, pure %v; want %d, %s, %v", tc.name, got.FileType(), got.BaseType(), got.Pure(), tc.ftype, tc.base, tc.pure)
		}
		if got.Name() != strings.ToLower(strings.TrimSpace(tc.name)) || got.Describe() == "" {
			t.Errorf("ParseTarget(%q): name %q, description %q", tc.name, got.Name(), got.Describe())
		}
	}
	for _, bad := range []string{"", "q4", "q4_k_x", "q2_k_s", "iq2_xxs", "q8_k", "copy", "15"} {
		if _, err := ParseTarget(bad); err == nil || !strings.Contains(err.Error(), "unknown target") {
			t.Errorf("ParseTarget(%q) = %v, want an unknown target error", bad, err)
		}
	}
}

func TestUseMoreBits(t *testing.T) {
	// By hand: layers below n/8, from 7n/8 on, and n/8+2, n/8+5, ...
	tests := map[int][]int{
		8:  {0, 3, 6, 7},
		22: {0, 1, 4, 7, 10, 13, 16, 19, 20, 21},
		32: {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31},
	}
	for n, want := range tests {
		var got []int
		for i := range n {
			if useMoreBits(i, n) {
				got = append(got, i)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("useMoreBits(i, %d) holds for %v, want %v", n, got, want)
		}
	}
}

func TestFallback(t *testing.T) {
	tests := []struct {
		ncols    uint64
		typ      tensor.Type
		want     tensor.Type
		fallback bool
	}{
		{256, tensor.Q4_K, tensor.Q4_K, false},
		{512, tensor.Q6_K, tensor.Q6_K, false},
		{64, tensor.Q2_K, tensor.Q4_0, true},
		{64, tensor.Q3_K, tensor.Q4_0, true},
		{64, tensor.Q4_K, tensor.Q5_0, true},
		{288, tensor.Q5_K, tensor.Q5_1, true},
		{64, tensor.Q6_K, tensor.Q8_0, true},
		{172, tensor.Q4_K, tensor.F16, true}, // not even 32-element blocks
		{172, tensor.Q8_0, tensor.F16, true},
		{96, tensor.Q4_0, tensor.Q4_0, false},
		{48, tensor.Q5_1, tensor.F16, true},
	}
	for _, tc := range tests {
		got, fb, err := fallback(tc.ncols, tc.typ)
		if err != nil || got != tc.want || fb != tc.fallback {
			t.Errorf("fallback(%d, %s) = %s, %v, %v; want %s, %v", tc.ncols, tc.typ, got, fb, err, tc.want, tc.fallback)
		}
	}
	if _, _, err := fallback(100, tensor.IQ2_XXS); err == nil {
		t.Error("fallback of a 256-block type with no defined fallback succeeded")
	}
}

func TestAllowsQuantization(t *testing.T) {
	tests := []struct {
		name  string
		nDims int
		want  bool
	}{
		{"blk.0.attn_q.weight", 2, true},
		{"blk.0.attn_q.weight", 1, false},
		{"token_embd.weight", 2, true},
		{"output.weight", 2, true},
		{"blk.3.ffn_down_exps.weight", 3, true},
		{"blk.0.attn_norm.weight", 2, false},
		{"output_norm.weight", 1, false},
		{"blk.0.attn_q.bias", 2, false},
		{"blk.0.ffn_gate_inp.weight", 2, false},
		{"position_embd.weight", 2, false},
		{"token_types.weight", 2, false},
		{"blk.0.ssm_conv1d.weight", 2, false},
		{"blk.0.time_mix_w1.weight", 2, false},
		{"v.patch_embd.weight", 2, false},
		{"abcde", 2, true}, // llama.cpp's suffix test passes 5-byte names
		{"abcd", 2, false},
	}
	for _, tc := range tests {
		if got := allowsQuantization(tc.name, tc.nDims); got != tc.want {
			t.Errorf("allowsQuantization(%q, %d) = %v, want %v", tc.name, tc.nDims, got, tc.want)
		}
	}
}

func TestTensorOrder(t *testing.T) {
	want := []string{
		"output.weight", "output_norm.weight", "token_embd.weight",
		"blk.0.attn_k.weight", "blk.0.attn_v.weight", "blk.0.ffn_up.weight",
		"blk.2.attn_q.weight",
		"blk.10.attn_k.weight", "blk.10.ffn_down.weight",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		got := slices.Clone(want)
		rng.Shuffle(len(got), func(i, j int) { got[i], got[j] = got[j], got[i] })
		slices.SortStableFunc(got, compareWeightNames)
		if !slices.Equal(got, want) {
			t.Fatalf("sorted to %v, want %v", got, want)
		}
	}
}

func TestScanLayer(t *testing.T) {
	tests := []struct {
		name string
		n    int
		ok   bool
	}{
		{"blk.12.attn_q.weight", 12, true},
		{"blk.0.ffn_down.weight", 0, true},
		{"blk.7", 7, true},
		{"blk.-1.x", -1, true},
		{"blk. 3.x", 3, true},
		{"blk.x.weight", 0, false},
		{"token_embd.weight", 0, false},
		{"v.blk.3.attn_q.weight", 0, false},
		{"blk.99999999999999999999.x", 1 << 30, true},
	}
	for _, tc := range tests {
		n, ok := scanLayer(tc.name)
		if ok != tc.ok || (ok && n < tc.n) || (ok && tc.n < 1<<30 && n != tc.n) {
			t.Errorf("scanLayer(%q) = %d, %v; want %d, %v", tc.name, n, ok, tc.n, tc.ok)
		}
	}
}

// TestPlanRules checks rules of llama.cpp's mixes, worked out by hand from
// llama-quant.cpp, on synthetic models (TestMatchesLlamaCpp checks the same
// models against llama.cpp itself).
func TestPlanRules(t *testing.T) {
	dir := t.TempDir()
	tiny := func(nLayer int, edit func(*modelConfig)) string {
		c := tinyModel(nLayer)
		c.noVocab = true
		if edit != nil {
			edit(&c)
		}
		return buildModel(t, dir, c)
	}
	dense32 := tiny(32, nil)
	tied := tiny(8, func(c *modelConfig) { c.tied = true })
	gqa80 := tiny(80, nil) // n_head 8, n_head_kv 2: llama.cpp's 70B
	mha80 := tiny(80, func(c *modelConfig) { c.nHeadKV = c.nHead; c.seed = 81 })
	falcon := tiny(32, func(c *modelConfig) { c.arch = "falcon" })
	moe := tiny(4, func(c *modelConfig) { c.nExpert = 8 })
	narrow := tiny(4, func(c *modelConfig) { c.nEmbd, c.nFF, c.nHead, c.nHeadKV = 64, 172, 8, 4 })

	tests := []struct {
		model, target, tensor string
		want                  tensor.Type
	}{
		// Legacy targets are mixes too: the output gets Q6_K, but Q8_0
		// stays Q8_0.
		{dense32, "q4_0", "output.weight", tensor.Q6_K},
		{dense32, "q4_0", "token_embd.weight", tensor.Q4_0},
		{dense32, "q8_0", "output.weight", tensor.Q8_0},
		{dense32, "f16", "output.weight", tensor.F16},
		{dense32, "f16", blk(0, "attn_norm.weight"), tensor.F32},
		// Pure targets: every weight the base type.
		{dense32, "q4_k", "output.weight", tensor.Q4_K},
		{dense32, "q4_k", blk(0, "attn_v.weight"), tensor.Q4_K},
		{dense32, "q2_k", blk(5, "ffn_down.weight"), tensor.Q2_K},
		// Q3_K mixes.
		{dense32, "q3_k_m", blk(0, "attn_v.weight"), tensor.Q5_K},
		{dense32, "q3_k_m", blk(1, "attn_v.weight"), tensor.Q5_K},
		{dense32, "q3_k_m", blk(2, "attn_v.weight"), tensor.Q4_K},
		{dense32, "q3_k_m", blk(1, "ffn_down.weight"), tensor.Q5_K}, // i < n/16
		{dense32, "q3_k_m", blk(2, "ffn_down.weight"), tensor.Q4_K},
		{dense32, "q3_k_m", blk(2, "attn_output.weight"), tensor.Q4_K},
		{dense32, "q3_k_m", blk(2, "attn_q.weight"), tensor.Q3_K},
		{dense32, "q3_k_l", blk(9, "attn_v.weight"), tensor.Q5_K},
		{dense32, "q3_k_l", blk(9, "ffn_down.weight"), tensor.Q5_K},
		{dense32, "q3_k_l", blk(9, "attn_output.weight"), tensor.Q5_K},
		{dense32, "q3_k_s", blk(9, "attn_v.weight"), tensor.Q3_K},
		{dense32, "q3_k_s", "output.weight", tensor.Q6_K},
		// Q4_K_S: attn_v of the first 4 layers, ffn_down of the first n/8.
		{dense32, "q4_k_s", blk(3, "attn_v.weight"), tensor.Q5_K},
		{dense32, "q4_k_s", blk(4, "attn_v.weight"), tensor.Q4_K},
		{dense32, "q4_k_s", blk(3, "ffn_down.weight"), tensor.Q5_K},
		{dense32, "q4_k_s", blk(4, "ffn_down.weight"), tensor.Q4_K},
		{dense32, "q5_k_s", blk(0, "attn_v.weight"), tensor.Q5_K},
		// Tied embeddings: token_embd is the output and gets its type.
		{tied, "q4_k_m", "token_embd.weight", tensor.Q6_K},
		{tied, "q8_0", "token_embd.weight", tensor.Q8_0},
		// 70B (80 layers, grouped-query attention): attn_v gets Q5_K over
		// Q3_K/Q4_K; not so with as many kv heads as heads.
		{gqa80, "q3_k_s", blk(40, "attn_v.weight"), tensor.Q5_K},
		{gqa80, "q4_k_s", blk(40, "attn_v.weight"), tensor.Q5_K},
		{gqa80, "q4_k_m", blk(41, "attn_v.weight"), tensor.Q5_K}, // not a more-bits layer
		{gqa80, "q4_k_m", blk(42, "attn_v.weight"), tensor.Q6_K}, // (42-10)%3 == 2
		{mha80, "q3_k_s", blk(40, "attn_v.weight"), tensor.Q3_K},
		// Falcon: the output is Q8_0; ffn_down differs.
		{falcon, "q4_k_m", "output.weight", tensor.Q8_0},
		{falcon, "q4_k_m", blk(1, "ffn_down.weight"), tensor.Q6_K}, // i < n/16
		{falcon, "q4_k_m", blk(6, "ffn_down.weight"), tensor.Q5_K}, // more bits
		{falcon, "q4_k_m", blk(7, "ffn_down.weight"), tensor.Q4_K},
		{falcon, "q3_k_m", blk(7, "ffn_down.weight"), tensor.Q3_K},
		{falcon, "q3_k_l", blk(7, "ffn_down.weight"), tensor.Q4_K},
		{falcon, "q3_k_l", blk(7, "attn_output.weight"), tensor.Q4_K},
		{falcon, "q4_k_s", blk(0, "ffn_down.weight"), tensor.Q4_K},
		// 8 experts: attn_v and attn_k get Q8_0, attn_output Q5_K.
		{moe, "q4_k_m", blk(1, "attn_v.weight"), tensor.Q8_0},
		{moe, "q4_k_m", blk(1, "attn_k.weight"), tensor.Q8_0},
		{moe, "q4_k_m", blk(1, "attn_output.weight"), tensor.Q5_K},
		{moe, "q3_k_l", blk(1, "attn_output.weight"), tensor.Q3_K},
		{moe, "q4_k_m", blk(0, "ffn_down_exps.weight"), tensor.Q4_K}, // 4 layers: n/8 is 0
		{moe, "q4_k_m", blk(1, "ffn_down_exps.weight"), tensor.Q4_K},
		{moe, "q4_k_m", blk(2, "ffn_down_exps.weight"), tensor.Q6_K}, // (2-0)%3 == 2
		{moe, "q4_k_m", blk(3, "ffn_down_exps.weight"), tensor.Q6_K}, // >= 7n/8
		{moe, "q4_k_m", blk(1, "ffn_gate_inp.weight"), tensor.F32},
		// Rows of 64 and 172: fallbacks.
		{narrow, "q4_k_m", "output.weight", tensor.Q8_0},
		{narrow, "q4_k_m", blk(1, "attn_q.weight"), tensor.Q5_0},
		{narrow, "q4_k_m", blk(0, "attn_v.weight"), tensor.Q5_0},
		{narrow, "q4_k_m", blk(2, "attn_v.weight"), tensor.Q8_0}, // Q6_K falls back
		{narrow, "q4_k_m", blk(1, "ffn_down.weight"), tensor.F16},
		{narrow, "q5_k", blk(1, "attn_q.weight"), tensor.Q5_1},
		{narrow, "q2_k", blk(1, "attn_q.weight"), tensor.Q4_0},
		{narrow, "q4_0", "output.weight", tensor.Q8_0},
		{narrow, "q4_0", blk(1, "ffn_down.weight"), tensor.F16},
	}
	plans := map[string]map[string]tensor.Type{}
	for _, tc := range tests {
		key := tc.model + "|" + tc.target
		if plans[key] == nil {
			target, err := ParseTarget(tc.target)
			if err != nil {
				t.Fatal(err)
			}
			ps, err := Plan(openGGUF(t, tc.model), target)
			if err != nil {
				t.Fatal(err)
			}
			plans[key] = map[string]tensor.Type{}
			for _, p := range ps {
				plans[key][p.Name] = p.To
			}
		}
		got, ok := plans[key][tc.tensor]
		if !ok || got != tc.want {
			t.Errorf("%s, %s: %s is %s, want %s", modelName(tc.model), tc.target, tc.tensor, got, tc.want)
		}
	}
}

func modelName(path string) string {
	return strings.TrimSuffix(path[strings.LastIndex(path, "/")+1:], ".gguf")
}

// FuzzChoose feeds the type rules arbitrary names and row sizes: they must
// not panic, and what they choose must divide the rows into whole blocks.
func FuzzChoose(f *testing.F) {
	f.Add("blk.3.ffn_down.weight", uint64(172), uint8(15), uint8(0), uint8(32))
	f.Add("output.weight", uint64(64), uint8(7), uint8(8), uint8(80))
	f.Add("blk.x.ffn_up_exps.weight", uint64(256), uint8(3), uint8(8), uint8(4))
	f.Fuzz(func(t *testing.T, name string, ncols uint64, targetIndex, nExpert, nLayer uint8) {
		targets := Targets()
		target := targets[int(targetIndex)%len(targets)]
		hp := hparams{arch: "llama", nLayer: int(nLayer) + 1, nHead: 8, nHeadKV: 2, nExpert: int(nExpert % 10)}
		if nLayer%5 == 0 {
			hp.arch = "falcon"
		}
		hp.is70B = is70B(hp)
		c := newTypeChooser(target, hp, []string{name, "output.weight"})
		for range 3 { // counters advance
			typ, _, err := c.choose(name, ncols)
			if err != nil {
				continue
			}
			if ncols%uint64(typ.BlockSize()) != 0 {
				t.Fatalf("%s, %q, %d columns: chose %s", target, name, ncols, typ)
			}
		}
		_ = allowsQuantization(name, 2)
		_, _ = scanLayer(name)
	})
}
