package probe

import (
	"strconv"
	"strings"
)

// Names of the probes outside the layers.
const (
	Embd       = "embd"
	OutputNorm = "output_norm"
	Logits     = "logits"
)

// Kinds of the per-layer probes: the part of the name after "blk.{i}.".
const (
	KindAttnNorm   = "attn_norm"
	KindQ          = "q"
	KindK          = "k"
	KindV          = "v"
	KindQRope      = "q_rope"
	KindKRope      = "k_rope"
	KindAttnScores = "attn_scores"
	KindAttnProbs  = "attn_probs"
	KindAttnOut    = "attn_out"
	KindAttnProj   = "attn_proj"
	KindFFNInp     = "ffn_inp"
	KindFFNNorm    = "ffn_norm"
	KindFFNGate    = "ffn_gate"
	KindFFNUp      = "ffn_up"
	KindFFNAct     = "ffn_act"
	KindFFNOut     = "ffn_out"
	KindOut        = "out"
)

// LayerKinds returns the per-layer probe kinds in forward order. It returns
// a fresh slice each time so that no caller can change another's view.
func LayerKinds() []string {
	return []string{
		KindAttnNorm, KindQ, KindK, KindV, KindQRope, KindKRope,
		KindAttnScores, KindAttnProbs, KindAttnOut, KindAttnProj,
		KindFFNInp, KindFFNNorm, KindFFNGate, KindFFNUp, KindFFNAct,
		KindFFNOut, KindOut,
	}
}

// LayerNames holds the full probe names of one layer, computed once at
// model load so that the forward pass never builds strings.
type LayerNames struct {
	AttnNorm, Q, K, V, QRope, KRope string
	AttnScores, AttnProbs           string
	AttnOut, AttnProj               string
	FFNInp, FFNNorm, FFNGate, FFNUp string
	FFNAct, FFNOut, Out             string
}

// NewLayerNames returns the probe names of layers 0..nLayer-1.
func NewLayerNames(nLayer int) []LayerNames {
	names := make([]LayerNames, max(nLayer, 0))
	for i := range names {
		n := func(kind string) string { return LayerName(i, kind) }
		names[i] = LayerNames{
			AttnNorm: n(KindAttnNorm), Q: n(KindQ), K: n(KindK), V: n(KindV),
			QRope: n(KindQRope), KRope: n(KindKRope),
			AttnScores: n(KindAttnScores), AttnProbs: n(KindAttnProbs),
			AttnOut: n(KindAttnOut), AttnProj: n(KindAttnProj),
			FFNInp: n(KindFFNInp), FFNNorm: n(KindFFNNorm),
			FFNGate: n(KindFFNGate), FFNUp: n(KindFFNUp), FFNAct: n(KindFFNAct),
			FFNOut: n(KindFFNOut), Out: n(KindOut),
		}
	}
	return names
}

// LayerName returns "blk.{layer}.{kind}". It allocates; use NewLayerNames
// in the forward pass.
func LayerName(layer int, kind string) string {
	return "blk." + strconv.Itoa(layer) + "." + kind
}

// ParseName splits a probe name into its layer and kind:
// "blk.12.ffn_up" gives (12, "ffn_up"); a name outside the layers, such as
// "embd", gives (-1, "embd"). A name that starts with "blk." but has no
// valid layer number is returned whole with layer -1.
func ParseName(name string) (layer int, kind string) {
	rest, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return -1, name
	}
	num, kind, ok := strings.Cut(rest, ".")
	if !ok || kind == "" || num == "" {
		return -1, name
	}
	// Only plain decimal digits: strconv.Atoi would accept "+3" and "-3",
	// which would make two spellings of one layer.
	for _, c := range num {
		if c < '0' || c > '9' {
			return -1, name
		}
	}
	layer, err := strconv.Atoi(num)
	if err != nil {
		return -1, name
	}
	return layer, kind
}
