package probe

import "testing"

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		layer int
		kind  string
	}{
		{"blk.12.ffn_up", 12, "ffn_up"},
		{"blk.0.q", 0, "q"},
		{"blk.3.attn_scores", 3, "attn_scores"},
		{"embd", -1, "embd"},
		{"output_norm", -1, "output_norm"},
		{"logits", -1, "logits"},
		{"blk.x.q", -1, "blk.x.q"},
		{"blk.-1.q", -1, "blk.-1.q"},
		{"blk.+1.q", -1, "blk.+1.q"},
		{"blk.7", -1, "blk.7"},
		{"blk.7.", -1, "blk.7."},
		{"blk..q", -1, "blk..q"},
		{"blk.99999999999999999999.q", -1, "blk.99999999999999999999.q"},
		{"", -1, ""},
	} {
		layer, kind := ParseName(tc.name)
		if layer != tc.layer || kind != tc.kind {
			t.Errorf("ParseName(%q) = %d, %q; want %d, %q", tc.name, layer, kind, tc.layer, tc.kind)
		}
	}
}

func TestLayerNames(t *testing.T) {
	names := NewLayerNames(3)
	if len(names) != 3 {
		t.Fatalf("NewLayerNames(3) has %d layers", len(names))
	}
	ln := names[2]
	got := []string{ln.AttnNorm, ln.Q, ln.K, ln.V, ln.QRope, ln.KRope, ln.AttnScores, ln.AttnProbs,
		ln.AttnOut, ln.AttnProj, ln.FFNInp, ln.FFNNorm, ln.FFNGate, ln.FFNUp, ln.FFNAct, ln.FFNOut, ln.Out}
	kinds := LayerKinds()
	if len(got) != len(kinds) {
		t.Fatalf("LayerNames has %d fields, LayerKinds %d kinds", len(got), len(kinds))
	}
	for i, kind := range kinds {
		want := "blk.2." + kind
		if got[i] != want {
			t.Errorf("field %d = %q, want %q (forward order)", i, got[i], want)
		}
		if l, k := ParseName(got[i]); l != 2 || k != kind {
			t.Errorf("ParseName(%q) = %d, %q", got[i], l, k)
		}
	}
	if len(NewLayerNames(-1)) != 0 {
		t.Error("NewLayerNames(-1) is not empty")
	}
}
