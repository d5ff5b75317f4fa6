package synth

import (
	"fmt"
	"math"
)

// Scales set the size of the random weights. A matrix with fan-in n has
// values N(0, (gain/√n)²), so that for an input of unit RMS its outputs have
// RMS gain whatever the width; the gains below are those of each matrix.
//
// The sizes decide whether two correct engines can agree on the model at
// all. With N(0, 0.02) everywhere the embeddings are tiny next to what each
// block adds, RMSNorm blows their differences up layer after layer, and
// rounding alone (F16 against Q8_0 weights) moves the output distribution
// by a KL divergence of about 0.4: the model is chaotic. Embeddings that
// stay a sizeable part of the residual stream and blocks that each add a
// modest amount keep it stable; output logits with a spread of a few units
// keep it from being degenerate (uniform over 32,000 tokens).
type Scales struct {
	Embd    float64 // σ of token_embd's values
	Norm    float64 // σ of the norm weights around 1
	QK      float64 // gain of attn_q and attn_k: attention scores have σ ≈ QK²
	V       float64 // gain of attn_v
	AttnOut float64 // gain of attn_output: the attention block's share of the residual stream
	GateUp  float64 // gain of ffn_gate and ffn_up
	Down    float64 // gain of ffn_down: the feed-forward block's share
	Output  float64 // gain of output: σ of the logits
}

// DefaultScales are the scales the tests use; see the package comment for
// how they were chosen.
func DefaultScales() Scales {
	return Scales{
		Embd:    0.35,
		Norm:    0.05,
		QK:      1.4,
		V:       1,
		AttnOut: 0.1,
		GateUp:  1,
		Down:    0.1,
		Output:  4,
	}
}

// IsZero reports whether s is the zero value (which Options read as
// DefaultScales).
func (s Scales) IsZero() bool { return s == Scales{} }

// String lists the scales, for metadata and cache keys.
func (s Scales) String() string {
	return fmt.Sprintf("embd=%g norm=%g qk=%g v=%g attn_out=%g gate_up=%g down=%g output=%g",
		s.Embd, s.Norm, s.QK, s.V, s.AttnOut, s.GateUp, s.Down, s.Output)
}

func (s Scales) check() error {
	for _, v := range []float64{s.Embd, s.Norm, s.QK, s.V, s.AttnOut, s.GateUp, s.Down, s.Output} {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("synth: scales %s: each must be finite and not negative", s)
		}
	}
	return nil
}
