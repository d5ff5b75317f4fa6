package synth

import "fmt"

// Shape is a llama model's size: what the GGUF metadata's llama.* keys say.
type Shape struct {
	NEmbd   int // hidden size
	NLayer  int // transformer blocks
	NHead   int // query heads
	NKVHead int // key/value heads
	NFF     int // feed-forward hidden size
	NCtx    int // training context length written to the metadata
}

// TinyLlama is the shape of TinyLlama-1.1B (1.1 billion parameters with
// the 32,000-token vocabulary).
func TinyLlama() Shape {
	return Shape{NEmbd: 2048, NLayer: 22, NHead: 32, NKVHead: 4, NFF: 5632, NCtx: 2048}
}

// Small is a shape for fast tests that keeps TinyLlama's ratios where it
// matters (head size 32 and grouped-query attention, 4 query heads per KV
// head) and widths that are multiples of 256, so that every k-quant type
// applies to every weight.
func Small() Shape {
	return Shape{NEmbd: 256, NLayer: 2, NHead: 8, NKVHead: 2, NFF: 768, NCtx: 2048}
}

// HeadDim is the size of one attention head.
func (s Shape) HeadDim() int { return s.NEmbd / s.NHead }

// String names the shape in cache file names: "e2048-l22-h32-kv4-ff5632-c2048".
func (s Shape) String() string {
	return fmt.Sprintf("e%d-l%d-h%d-kv%d-ff%d-c%d", s.NEmbd, s.NLayer, s.NHead, s.NKVHead, s.NFF, s.NCtx)
}

// Params is the number of weights of the shape with a vocabulary of nVocab
// tokens (embedding and output matrices untied, as in TinyLlama).
func (s Shape) Params(nVocab int) int64 {
	e, ff, kv := int64(s.NEmbd), int64(s.NFF), int64(s.NKVHead*s.HeadDim())
	perLayer := 2*e + // attn_norm, ffn_norm
		e*e + 2*kv*e + e*e + // q, k, v, output
		3*e*ff // gate, up, down
	return 2*int64(nVocab)*e + e + int64(s.NLayer)*perLayer
}

// check returns an error for shapes llama.cpp would refuse or that the
// rows of the block types could not divide.
func (s Shape) check() error {
	switch {
	case s.NEmbd <= 0 || s.NLayer <= 0 || s.NHead <= 0 || s.NKVHead <= 0 || s.NFF <= 0 || s.NCtx <= 0:
		return fmt.Errorf("synth: shape %+v has a size that is not positive", s)
	case s.NEmbd%s.NHead != 0 || s.NHead%s.NKVHead != 0:
		return fmt.Errorf("synth: shape %+v: n_embd must be a multiple of n_head and n_head of n_kv_head", s)
	case s.HeadDim()%2 != 0:
		return fmt.Errorf("synth: shape %+v: head size %d must be even for RoPE", s, s.HeadDim())
	case s.NEmbd%32 != 0 || s.NFF%32 != 0:
		return fmt.Errorf("synth: shape %+v: n_embd and n_ff must be multiples of 32, the legacy block size", s)
	}
	return nil
}
