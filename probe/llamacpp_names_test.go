package probe

import (
	"slices"
	"strings"
	"testing"
)

func TestFromLlamaCpp(t *testing.T) {
	for _, tc := range []struct {
		node, op string
		want     string // "" for not a probe
	}{
		{"embd", "GET_ROWS", "embd"},
		{"inp_embd", "GET_ROWS", "embd"},
		{"norm-0", "RMS_NORM", ""},
		{"attn_norm-0", "MUL", "blk.0.attn_norm"},
		{"Qcur-0", "MUL_MAT", ""},
		{"Qcur-0", "RESHAPE", "blk.0.q"},
		{"Qcur-0", "ROPE", "blk.0.q_rope"},
		{"Qcur-0", "", ""},
		{"Kcur-3", "MUL_MAT", ""},
		{"Kcur-3", "RESHAPE", "blk.3.k"},
		{"Kcur-3", "ROPE", "blk.3.k_rope"},
		{"Vcur-12", "MUL_MAT", ""},
		{"Vcur-12", "RESHAPE", "blk.12.v"},
		{"Vcur-12", "ROPE", ""},
		{"Kcur-0 (view)", "VIEW", ""},
		{"cache_k_l0 (view)", "SET_ROWS", ""},
		{"kq-4", "MUL_MAT", "blk.4.attn_scores"},
		{"kq_soft_max-4", "SOFT_MAX", "blk.4.attn_probs"},
		{"kqv-4", "MUL_MAT", ""},
		{"kqv_out-4", "CONT", "blk.4.attn_out"},
		{"kqv_out-4", "RESHAPE", "blk.4.attn_out"}, // flash attention
		{"attn_out-4", "MUL_MAT", "blk.4.attn_proj"},
		{"ffn_inp-1", "ADD", "blk.1.ffn_inp"},
		{"ffn_norm-1", "MUL", "blk.1.ffn_norm"},
		{"ffn_gate-1", "MUL_MAT", "blk.1.ffn_gate"},
		{"ffn_up-1", "MUL_MAT", "blk.1.ffn_up"},
		{"ffn_swiglu-1", "SWIGLU", "blk.1.ffn_act"},
		{"ffn_swiglu-1", "GLU", "blk.1.ffn_act"},
		{"ffn_out-1", "MUL_MAT", "blk.1.ffn_out"},
		{"ffn_out-1", "ADD", ""},
		{"l_out-1", "ADD", "blk.1.out"},
		{"norm", "RMS_NORM", ""},
		{"result_norm", "MUL", "output_norm"},
		{"result_output", "MUL_MAT", "logits"},
		{"node_173", "GET_ROWS", ""},
		{"l_out-x", "ADD", ""},
		{"l_out--1", "ADD", ""},
		{"l_out-", "ADD", ""},
		{"", "", ""},
	} {
		got, ok := FromLlamaCpp(tc.node, tc.op)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("FromLlamaCpp(%q, %q) = %q, %v; want %q", tc.node, tc.op, got, ok, tc.want)
		}
	}
}

type emitted struct {
	pos   int
	shape []int
	data  []float32
}

func collect(t *testing.T, probe string, ne [4]int64, data []float32, opts SplitOptions) []emitted {
	t.Helper()
	var out []emitted
	err := SplitLlamaCpp(probe, ne, data, opts, func(pos int, shape []int, d []float32) error {
		out = append(out, emitted{pos, slices.Clone(shape), slices.Clone(d)})
		return nil
	})
	if err != nil {
		t.Fatalf("SplitLlamaCpp(%s, %v): %v", probe, ne, err)
	}
	return out
}

// seq returns 0, 1, ..., n-1: element i of a ggml tensor holds i, so that
// each output value says where it came from.
func seq(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(i)
	}
	return s
}

func TestSplitLlamaCppRows(t *testing.T) {
	// attn_norm: ne [4, 3] = 3 tokens of 4 values.
	got := collect(t, "blk.0.attn_norm", [4]int64{4, 3, 1, 1}, seq(12), SplitOptions{Positions: []int{5, 6, 7}})
	if len(got) != 3 || got[1].pos != 6 || !slices.Equal(got[1].shape, []int{4}) || !slices.Equal(got[1].data, []float32{4, 5, 6, 7}) {
		t.Errorf("rows: %+v", got)
	}
	// q: ne [head_dim 2, n_head 3, n_tokens 2]: token 1 is elements 6..11,
	// head h of it at 6+2h.
	got = collect(t, "blk.2.q_rope", [4]int64{2, 3, 2, 1}, seq(12), SplitOptions{})
	if len(got) != 2 || got[1].pos != 1 || !slices.Equal(got[1].shape, []int{3, 2}) || !slices.Equal(got[1].data, []float32{6, 7, 8, 9, 10, 11}) {
		t.Errorf("heads: %+v", got)
	}
}

func TestSplitLlamaCppAttention(t *testing.T) {
	// kq: ne [n_kv 4, n_tokens 2, n_head 2]; element (j, r, h) sits at
	// j + 4r + 8h. Token rows are positions 1 and 2, so they keep 2 and 3
	// keys.
	got := collect(t, "blk.0.attn_scores", [4]int64{4, 2, 2, 1}, seq(16), SplitOptions{Positions: []int{1, 2}, KQScale: 0.5})
	want := []emitted{
		{1, []int{2, 2}, []float32{0, 0.5, 4, 4.5}},
		{2, []int{2, 3}, []float32{2, 2.5, 3, 6, 6.5, 7}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows", len(got))
	}
	for i := range want {
		if got[i].pos != want[i].pos || !slices.Equal(got[i].shape, want[i].shape) || !slices.Equal(got[i].data, want[i].data) {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// The scale applies to scores only.
	probs := collect(t, "blk.0.attn_probs", [4]int64{4, 2, 2, 1}, seq(16), SplitOptions{Positions: []int{1, 2}, KQScale: 0.5})
	if !slices.Equal(probs[0].data, []float32{0, 1, 8, 9}) {
		t.Errorf("probs row 0 = %v", probs[0].data)
	}
}

func TestSplitLlamaCppErrors(t *testing.T) {
	nop := func(int, []int, []float32) error { return nil }
	for _, tc := range []struct {
		name  string
		probe string
		ne    [4]int64
		n     int
		opts  SplitOptions
		want  string
	}{
		{"count", "embd", [4]int64{4, 3, 1, 1}, 11, SplitOptions{}, "does not describe"},
		{"zero dim", "embd", [4]int64{0, 3, 1, 1}, 0, SplitOptions{}, "does not describe"},
		{"negative dim", "embd", [4]int64{-4, -3, 1, 1}, 12, SplitOptions{}, "does not describe"},
		{"huge dims", "embd", [4]int64{1 << 40, 1 << 40, 1 << 40, 1 << 40}, 16, SplitOptions{}, "does not describe"},
		{"4-D", "embd", [4]int64{2, 2, 1, 2}, 8, SplitOptions{}, "does not describe"},
		{"3-D row tensor", "embd", [4]int64{2, 2, 2, 1}, 8, SplitOptions{}, "want [n, n_tokens]"},
		{"positions count", "embd", [4]int64{4, 3, 1, 1}, 12, SplitOptions{Positions: []int{0, 1}}, "2 positions given for 3 rows"},
		{"negative position", "embd", [4]int64{4, 1, 1, 1}, 4, SplitOptions{Positions: []int{-1}}, "negative"},
		{"keys past the node", "blk.0.attn_probs", [4]int64{4, 1, 2, 1}, 8, SplitOptions{Positions: []int{4}}, "only 4 keys"},
	} {
		err := SplitLlamaCpp(tc.probe, tc.ne, make([]float32, tc.n), tc.opts, nop)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
