package quantize

import (
	"fmt"
	"strings"

	"llamago/gguf"
	"llamago/tensor"
)

// This file holds llama.cpp's per-tensor type rules (llama-quant.cpp:
// tensor_allows_quantization, llama_tensor_get_type and its helpers), for
// the targets this package offers and without an importance matrix.

// hparams are the few model hyperparameters the rules look at.
type hparams struct {
	arch    string
	nLayer  int // block_count
	nHead   int // of layer 0
	nHeadKV int // of layer 0
	nExpert int
	is70B   bool // llama.cpp's LLM_TYPE_70B, which gives attn_v more bits
}

// maxLayers is llama.cpp's LLAMA_MAX_LAYERS.
const maxLayers = 512

// readHParams reads what the rules need from the metadata, with
// llama.cpp's defaults for the optional keys.
func readHParams(f *gguf.File) (hparams, error) {
	var h hparams
	arch, err := f.String("general.architecture")
	if err != nil {
		return h, fmt.Errorf("quantize: general.architecture: %w", err)
	}
	h.arch = arch
	key := func(k string) string { return arch + "." + k }

	n, err := f.Uint32(key("block_count"))
	if err != nil {
		return h, fmt.Errorf("quantize: %s: %w", key("block_count"), err)
	}
	if n == 0 || n > maxLayers {
		return h, fmt.Errorf("quantize: %s is %d, want 1 to %d", key("block_count"), n, maxLayers)
	}
	h.nLayer = int(n)

	if h.nHead, err = firstLayerValue(f, key("attention.head_count"), 0); err != nil {
		return h, err
	}
	if h.nHeadKV, err = firstLayerValue(f, key("attention.head_count_kv"), h.nHead); err != nil {
		return h, err
	}
	if f.Has(key("expert_count")) {
		e, err := f.Uint32(key("expert_count"))
		if err != nil {
			return h, fmt.Errorf("quantize: %s: %w", key("expert_count"), err)
		}
		h.nExpert = int(e)
	}
	h.is70B = is70B(h)
	return h, nil
}

// firstLayerValue reads a per-layer count stored either as one number or
// as an array with one per layer, and returns layer 0's (def when absent).
func firstLayerValue(f *gguf.File, key string, def int) (int, error) {
	v, ok := f.Get(key)
	if !ok {
		return def, nil
	}
	if v.Type == gguf.TypeArray {
		if v.Len() == 0 {
			return 0, fmt.Errorf("quantize: %s is an empty array", key)
		}
		v = v.Index(0)
	}
	n, err := v.Uint32()
	if err != nil {
		return 0, fmt.Errorf("quantize: %s: %w", key, err)
	}
	return int(n), nil
}

// is70B tells which models llama.cpp's loaders call LLM_TYPE_70B, the one
// model size the quantization rules single out.
func is70B(h hparams) bool {
	switch h.arch {
	case "llama":
		return h.nExpert != 8 && h.nLayer == 80 && h.nHead != h.nHeadKV
	case "qwen2", "deci", "olmo":
		return h.nLayer == 80
	case "jais2":
		return h.nLayer == 68
	}
	return false
}

// category is the role of a tensor as the rules see it, from its name.
type category int

const (
	catOther category = iota
	catTokenEmbd
	catAttnQ
	catAttnV
	catAttnK
	catAttnQKV
	catAttnKVB
	catAttnOutput
	catFFNUp
	catFFNGate
	catFFNDown
	catOutput
)

func categoryOf(name string) category {
	switch {
	case name == "output.weight":
		return catOutput
	case name == "token_embd.weight" || name == "per_layer_token_embd.weight":
		return catTokenEmbd
	case strings.Contains(name, "attn_qkv.weight"):
		return catAttnQKV
	case strings.Contains(name, "attn_kv_b.weight"):
		return catAttnKVB
	case strings.Contains(name, "attn_v.weight"):
		return catAttnV
	case strings.Contains(name, "attn_k.weight"):
		return catAttnK
	case strings.Contains(name, "attn_q.weight"):
		return catAttnQ
	case strings.Contains(name, "attn_output.weight"):
		return catAttnOutput
	case strings.Contains(name, "ffn_up"):
		return catFFNUp
	case strings.Contains(name, "ffn_gate"):
		return catFFNGate
	case strings.Contains(name, "ffn_down"):
		return catFFNDown
	}
	return catOther
}

// isAttnV covers the value projections, which are the most sensitive to
// quantization; fused QKV and MLA's kv_b count as value projections.
func (c category) isAttnV() bool {
	return c == catAttnV || c == catAttnQKV || c == catAttnKVB
}

// allowsQuantization reports whether llama.cpp converts a tensor at all,
// given its name and its number of dimensions (trailing ones dropped).
func allowsQuantization(name string, nDims int) bool {
	if nDims < 2 {
		return false
	}
	// llama.cpp tests "ends with weight" as rfind("weight") == size-6,
	// which a 5-byte name also passes (both sides are npos); kept so that
	// the same tensors are converted.
	if !strings.HasSuffix(name, "weight") && len(name) != 5 {
		return false
	}
	if name == "position_embd.weight" || name == "token_types.weight" {
		return false
	}
	// Name fragments of weights llama.cpp never quantizes: small, integer,
	// or too sensitive (routers, position tables, convolutions, RWKV's
	// mixing vectors, multimodal projector pieces).
	kept := [...]string{
		"_norm.weight",
		"ffn_gate_inp.weight",
		"ffn_gate_tid2eid.weight",
		"altup",
		"laurel",
		"per_layer_model_proj",
		"ssm_conv1d",
		"shortconv.conv.weight",
		"indexer.k_proj.weight",
		"indexer.q_proj.weight",
		"time_mix_first.weight",
		"time_mix_w0.weight",
		"time_mix_w1.weight",
		"time_mix_w2.weight",
		"time_mix_v0.weight",
		"time_mix_v1.weight",
		"time_mix_v2.weight",
		"time_mix_a0.weight",
		"time_mix_a1.weight",
		"time_mix_a2.weight",
		"time_mix_g1.weight",
		"time_mix_g2.weight",
		"time_mix_decay_w1.weight",
		"time_mix_decay_w2.weight",
		"time_mix_lerp_fused.weight",
		"attn_rel_b.weight",
		".position_embd",
		"sam.pos_embd",
		"sam.neck.",
		"sam.net_",
		".rel_pos",
		".patch_embd",
		".patch_merger",
		"a.rvq.codebook",
		"mm.a.code_embd",
	}
	for _, frag := range kept {
		if strings.Contains(name, frag) {
			return false
		}
	}
	return true
}

// useMoreBits picks the layers that get a larger type in the _M mixes:
// the first and last eighth, and every third layer between them.
func useMoreBits(iLayer, nLayer int) bool {
	return iLayer < nLayer/8 || iLayer >= 7*nLayer/8 || (iLayer-nLayer/8)%3 == 2
}

// typeChooser picks each tensor's type. It must see the tensors in output
// order: like llama.cpp, it counts attn_v and ffn_* tensors as they come
// and uses the count as the layer index.
type typeChooser struct {
	target Target
	hp     hparams

	tiedEmbeddings bool // no output.weight: token_embd is also the output

	nAttnV, iAttnV int
	nFFN           int // llama.cpp sets n_ffn_down = n_ffn_gate = n_ffn_up = block_count
	iFFNDown       int
	iFFNGate       int
	iFFNUp         int
}

func newTypeChooser(target Target, hp hparams, names []string) *typeChooser {
	c := &typeChooser{target: target, hp: hp, tiedEmbeddings: true, nFFN: hp.nLayer}
	for _, name := range names {
		cat := categoryOf(name)
		if cat.isAttnV() {
			c.nAttnV++
		}
		if cat == catOutput {
			c.tiedEmbeddings = false
		}
	}
	return c
}

// choose returns the type of a tensor that allowsQuantization accepts,
// and whether a fallback changed it because its rows (ncols elements) are
// not a whole number of blocks.
func (c *typeChooser) choose(name string, ncols uint64) (tensor.Type, bool, error) {
	typ := c.target.base
	if !isQuantized(typ) {
		return typ, false, nil
	}
	if !c.target.pure {
		var err error
		if typ, err = c.mix(name, ncols, typ); err != nil {
			return 0, false, err
		}
	}
	return fallback(ncols, typ)
}

// mix is llama_tensor_get_type_impl for this package's targets.
func (c *typeChooser) mix(name string, ncols uint64, typ tensor.Type) (tensor.Type, error) {
	ftype := c.target.ftype
	falcon := c.hp.arch == "falcon"
	cat := categoryOf(name)

	switch {
	case cat == catOutput || (c.tiedEmbeddings && cat == catTokenEmbd):
		if falcon || ncols%uint64(typ.BlockSize()) != 0 {
			typ = tensor.Q8_0
		} else if typ != tensor.Q8_0 {
			typ = tensor.Q6_K
		}

	case cat == catTokenEmbd:
		// Only targets this package does not offer (IQ, TQ) change it.

	case cat.isAttnV():
		switch {
		case ftype == ftypeQ3_K_M:
			if c.iAttnV < 2 {
				typ = tensor.Q5_K
			} else {
				typ = tensor.Q4_K
			}
		case ftype == ftypeQ3_K_L:
			typ = tensor.Q5_K
		case (ftype == ftypeQ4_K_M || ftype == ftypeQ5_K_M) && useMoreBits(c.iAttnV, c.nAttnV):
			typ = tensor.Q6_K
		case ftype == ftypeQ4_K_S && c.iAttnV < 4:
			typ = tensor.Q5_K
		}
		// A 70B model's attn_v is 8 times smaller than its attn_q (8 query
		// heads share each value head), so more bits there cost little.
		if c.hp.is70B && (typ == tensor.Q3_K || typ == tensor.Q4_K) {
			typ = tensor.Q5_K
		}
		if c.hp.nExpert == 8 {
			typ = tensor.Q8_0
		}
		c.iAttnV++

	case cat == catAttnK:
		if c.hp.nExpert == 8 {
			typ = tensor.Q8_0
		}

	case cat == catFFNDown:
		iLayer, nLayer, err := c.layer(c.iFFNDown, name)
		if err != nil {
			return 0, err
		}
		switch ftype {
		case ftypeQ3_K_M:
			switch {
			case iLayer < nLayer/16:
				typ = tensor.Q5_K
			case !falcon || useMoreBits(iLayer, nLayer):
				typ = tensor.Q4_K
			default:
				typ = tensor.Q3_K
			}
		case ftypeQ3_K_L:
			if falcon {
				typ = tensor.Q4_K
			} else {
				typ = tensor.Q5_K
			}
		case ftypeQ4_K_M:
			switch {
			case !falcon:
				if useMoreBits(iLayer, nLayer) {
					typ = tensor.Q6_K
				}
			case iLayer < nLayer/16:
				typ = tensor.Q6_K
			case useMoreBits(iLayer, nLayer):
				typ = tensor.Q5_K
			default:
				typ = tensor.Q4_K
			}
		case ftypeQ5_K_M:
			if useMoreBits(iLayer, nLayer) {
				typ = tensor.Q6_K
			}
		case ftypeQ4_K_S:
			if !falcon && iLayer < nLayer/8 {
				typ = tensor.Q5_K
			}
		}
		c.iFFNDown++

	case cat == catAttnOutput:
		switch {
		case falcon:
			if ftype == ftypeQ3_K_L {
				typ = tensor.Q4_K
			}
		case c.hp.nExpert == 8:
			if ftype == ftypeQ3_K_S || ftype == ftypeQ3_K_M || ftype == ftypeQ4_K_S || ftype == ftypeQ4_K_M {
				typ = tensor.Q5_K
			}
		case ftype == ftypeQ3_K_M:
			typ = tensor.Q4_K
		case ftype == ftypeQ3_K_L:
			typ = tensor.Q5_K
		}

	case cat == catFFNGate:
		// No offered target changes ffn_gate, but llama.cpp still resolves
		// the layer (and fails on an MoE tensor without one).
		if _, _, err := c.layer(c.iFFNGate, name); err != nil {
			return 0, err
		}
		c.iFFNGate++

	case cat == catFFNUp:
		if _, _, err := c.layer(c.iFFNUp, name); err != nil {
			return 0, err
		}
		c.iFFNUp++
	}
	return typ, nil
}

// layer returns the layer index of an ffn tensor and the layer count. In a
// dense model the tensors come one per layer in order, so the running
// count is the layer; in an MoE model (more than one expert) llama.cpp
// reads the layer from the name instead.
func (c *typeChooser) layer(count int, name string) (int, int, error) {
	if c.hp.nExpert <= 1 {
		return count, c.nFFN, nil
	}
	i, ok := scanLayer(name)
	if !ok {
		return 0, 0, fmt.Errorf("quantize: tensor %q: cannot tell its layer (want a name starting blk.N.)", name)
	}
	if i < 0 || i >= c.nFFN {
		return 0, 0, fmt.Errorf("quantize: tensor %q: layer %d is not in [0, %d)", name, i, c.nFFN)
	}
	return i, c.nFFN, nil
}

// fallback is tensor_type_fallback: when ncols is not a whole number of
// typ's blocks, a k-type steps down to a 32-element legacy type of about
// as many bits, and to F16 when even that does not fit.
func fallback(ncols uint64, typ tensor.Type) (tensor.Type, bool, error) {
	bs := uint64(typ.BlockSize())
	if ncols%bs == 0 {
		return typ, false, nil
	}
	out := typ
	switch typ {
	case tensor.Q2_K, tensor.Q3_K:
		out = tensor.Q4_0
	case tensor.Q4_K:
		out = tensor.Q5_0
	case tensor.Q5_K:
		out = tensor.Q5_1
	case tensor.Q6_K:
		out = tensor.Q8_0
	default:
		if bs > 32 {
			return 0, false, fmt.Errorf("quantize: no fallback type for %s with rows of %d elements", typ, ncols)
		}
	}
	if ncols%uint64(out.BlockSize()) != 0 {
		out = tensor.F16
	}
	return out, true, nil
}

// scanLayer reads the layer number of a "blk.N." name the way llama.cpp's
// sscanf(name, "blk.%d.", ...) does: the number is taken even when the dot
// after it is missing, and may have leading spaces and a sign.
func scanLayer(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, "blk.")
	if !ok {
		return 0, false
	}
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	n, digits := 0, 0
	for ; digits < len(s) && s[digits] >= '0' && s[digits] <= '9'; digits++ {
		if n < 1<<30 { // beyond any layer count; keeps n from overflowing
			n = n*10 + int(s[digits]-'0')
		}
	}
	if digits == 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}
