package convert

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"llamago/gguf"
)

// hfConfig is the part of a Hugging Face config.json a llama model needs.
// Optional fields are pointers, so that "absent" (not written to GGUF, as
// llama.cpp's converter leaves it out) differs from zero.
type hfConfig struct {
	Architectures         []string        `json:"architectures"`
	HiddenSize            int             `json:"hidden_size"`
	IntermediateSize      int             `json:"intermediate_size"`
	NumHiddenLayers       int             `json:"num_hidden_layers"`
	NumAttentionHeads     int             `json:"num_attention_heads"`
	NumKeyValueHeads      *int            `json:"num_key_value_heads"`
	HeadDim               *int            `json:"head_dim"`
	RMSNormEps            *float64        `json:"rms_norm_eps"`
	RopeTheta             *float64        `json:"rope_theta"`
	RopeScaling           json.RawMessage `json:"rope_scaling"`
	RopeParameters        json.RawMessage `json:"rope_parameters"`
	MaxPositionEmbeddings *int            `json:"max_position_embeddings"`
	TieWordEmbeddings     *bool           `json:"tie_word_embeddings"`
	VocabSize             int             `json:"vocab_size"`
}

// The config.json architectures that convert_hf_to_gguf.py converts as
// plain llama (its LlamaModel).
var llamaArchitectures = map[string]bool{
	"LlamaForCausalLM":   true,
	"LLaMAForCausalLM":   true,
	"MistralForCausalLM": true,
}

func readHFConfig(dir string) (hfConfig, error) {
	var c hfConfig
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if len(c.Architectures) == 0 || !llamaArchitectures[c.Architectures[0]] {
		return c, fmt.Errorf("%s: architectures %v: only llama models (LlamaForCausalLM, MistralForCausalLM) convert", path, c.Architectures)
	}
	fields := []struct {
		name string
		val  int
	}{
		{"hidden_size", c.HiddenSize}, {"intermediate_size", c.IntermediateSize}, {"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads}, {"vocab_size", c.VocabSize},
	}
	for _, f := range fields {
		if f.val <= 0 || f.val > math.MaxInt32 {
			return c, fmt.Errorf("%s: %s = %d, want a positive 32-bit count", path, f.name, f.val)
		}
	}
	if c.NumKeyValueHeads != nil && (*c.NumKeyValueHeads <= 0 || c.NumAttentionHeads%*c.NumKeyValueHeads != 0) {
		return c, fmt.Errorf("%s: num_key_value_heads = %d does not divide num_attention_heads = %d", path, *c.NumKeyValueHeads, c.NumAttentionHeads)
	}
	if c.HeadDim != nil && *c.HeadDim <= 0 {
		return c, fmt.Errorf("%s: head_dim = %d", path, *c.HeadDim)
	}
	if c.HeadDim == nil && c.HiddenSize%c.NumAttentionHeads != 0 {
		return c, fmt.Errorf("%s: hidden_size %d is not a multiple of num_attention_heads %d", path, c.HiddenSize, c.NumAttentionHeads)
	}
	return c, nil
}

func (c hfConfig) nKVHeads() int {
	if c.NumKeyValueHeads != nil {
		return *c.NumKeyValueHeads
	}
	return c.NumAttentionHeads
}

func (c hfConfig) headDim() int {
	if c.HeadDim != nil {
		return *c.HeadDim
	}
	return c.HiddenSize / c.NumAttentionHeads
}

// ropeKVs returns the RoPE metadata convert_hf_to_gguf.py writes: the
// scaling type and its parameters, then the frequency base. The parameters
// come from rope_parameters (newer transformers) or rope_scaling, with a
// top-level rope_theta filling in the base.
func (c hfConfig) ropeKVs() ([]keyValue, error) {
	params := map[string]any{}
	for _, raw := range []json.RawMessage{c.RopeParameters, c.RopeScaling} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		if err := json.Unmarshal(raw, &params); err != nil {
			return nil, fmt.Errorf("rope parameters: %w", err)
		}
		break
	}
	if _, ok := params["rope_theta"]; !ok && c.RopeTheta != nil {
		params["rope_theta"] = *c.RopeTheta
	}
	num := func(key string) (float64, bool) {
		x, ok := params[key].(float64)
		return x, ok
	}
	ropeType, _ := params["rope_type"].(string)
	if ropeType == "" {
		ropeType, _ = params["type"].(string)
	}
	var kvs []keyValue
	add := func(key string, v gguf.Value) { kvs = append(kvs, keyValue{key, v}) }
	factor, hasFactor := num("factor")
	switch strings.ToLower(ropeType) {
	case "", "default", "none":
	case "linear":
		if hasFactor {
			add("llama.rope.scaling.type", gguf.String("linear"))
			add("llama.rope.scaling.factor", gguf.Float32(float32(factor)))
		}
	case "yarn":
		if hasFactor {
			orig, ok := num("original_max_position_embeddings")
			if !ok {
				return nil, fmt.Errorf("yarn rope scaling without original_max_position_embeddings")
			}
			add("llama.rope.scaling.type", gguf.String("yarn"))
			add("llama.rope.scaling.factor", gguf.Float32(float32(factor)))
			add("llama.rope.scaling.original_context_length", gguf.Uint32(uint32(orig)))
			for _, p := range []struct{ key, name, alt string }{
				{"llama.rope.scaling.yarn_ext_factor", "extrapolation_factor", ""},
				{"llama.rope.scaling.yarn_attn_factor", "attention_factor", "attn_factor"},
				{"llama.rope.scaling.yarn_beta_fast", "beta_fast", ""},
				{"llama.rope.scaling.yarn_beta_slow", "beta_slow", ""},
			} {
				x, ok := num(p.name)
				if !ok && p.alt != "" {
					x, ok = num(p.alt)
				}
				if ok {
					add(p.key, gguf.Float32(float32(x)))
				}
			}
		}
	default:
		// llama3 needs a generated rope_freqs tensor, dynamic and longrope
		// have no llama GGUF form.
		return nil, fmt.Errorf("rope scaling type %q is not supported (linear and yarn are)", ropeType)
	}
	if theta, ok := num("rope_theta"); ok {
		add("llama.rope.freq_base", gguf.Float32(float32(theta)))
	}
	return kvs, nil
}

// hfLayerTensor maps the part of a layer tensor's name after
// "model.layers.N." to GGUF's name after "blk.N." (tensor_mapping.py).
var hfLayerTensor = map[string]string{
	"input_layernorm":          "attn_norm",
	"self_attn.q_proj":         "attn_q",
	"self_attn.k_proj":         "attn_k",
	"self_attn.v_proj":         "attn_v",
	"self_attn.o_proj":         "attn_output",
	"post_attention_layernorm": "ffn_norm",
	"mlp.gate_proj":            "ffn_gate",
	"mlp.up_proj":              "ffn_up",
	"mlp.down_proj":            "ffn_down",
}

var hfLayerName = regexp.MustCompile(`^model\.layers\.(\d+)\.(.+)\.(weight|bias)$`)

// ggufTensorName maps a Hugging Face llama tensor name to GGUF's, for a
// model of nLayers layers.
func ggufTensorName(name string, nLayers int) (string, error) {
	switch name {
	case "model.embed_tokens.weight":
		return "token_embd.weight", nil
	case "model.norm.weight":
		return "output_norm.weight", nil
	case "lm_head.weight":
		return "output.weight", nil
	}
	if m := hfLayerName.FindStringSubmatch(name); m != nil {
		layer, err := strconv.Atoi(m[1])
		if sub, ok := hfLayerTensor[m[2]]; ok && err == nil && layer < nLayers {
			return fmt.Sprintf("blk.%d.%s.%s", layer, sub, m[3]), nil
		}
	}
	return "", fmt.Errorf("cannot map tensor %q to a GGUF llama tensor", name)
}

// skippedTensor reports tensors llama.cpp's converter drops: buffers that
// some checkpoints save but inference recomputes.
func skippedTensor(name string) bool {
	for _, suffix := range []string{".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// permuteRoPE reorders the rows of a query or key projection (or bias)
// from Hugging Face's rotate-half layout, where a head's first half of
// dimensions pairs with its second half, to GGUF's layout, where
// dimensions pair with their neighbour: within each of nHead heads, row
// j*half+i moves to 2*i+j. This is convert_hf_to_gguf.py's permute
// (reshape to heads × 2 × half, swap the middle axes).
func permuteRoPE(data []byte, rows, nHead int) ([]byte, error) {
	if rows <= 0 || rows%(2*nHead) != 0 || len(data)%rows != 0 {
		return nil, fmt.Errorf("%d rows cannot be split into %d heads of pairs", rows, nHead)
	}
	rowBytes := len(data) / rows
	headRows := rows / nHead
	half := headRows / 2
	out := make([]byte, len(data))
	for h := 0; h < nHead; h++ {
		for j := 0; j < 2; j++ {
			for i := 0; i < half; i++ {
				src := (h*headRows + j*half + i) * rowBytes
				dst := (h*headRows + 2*i + j) * rowBytes
				copy(out[dst:dst+rowBytes], data[src:src+rowBytes])
			}
		}
	}
	return out, nil
}

// HuggingFace converts a Hugging Face llama directory (config.json,
// model*.safetensors with F32, F16 or BF16 tensors, tokenizer.model or a
// tokenizer.json with byte fallback) to a GGUF file, as
// convert_hf_to_gguf.py does: the same metadata, tensor names and types,
// and query and key rows permuted from rotate-half to adjacent pairs. With
// tied embeddings the directory holds no lm_head.weight, so no
// output.weight is written and llama.cpp uses token_embd.weight.
func HuggingFace(dir, outPath string, opts Options) error {
	out, err := buildHuggingFace(dir, opts)
	if err != nil {
		return fmt.Errorf("convert: %s: %w", dir, err)
	}
	return out.write(outPath)
}

func buildHuggingFace(dir string, opts Options) (*ggufFile, error) {
	cfg, err := readHFConfig(dir)
	if err != nil {
		return nil, err
	}
	ropeKVs, err := cfg.ropeKVs()
	if err != nil {
		return nil, err
	}
	tensors, err := modelTensors(dir)
	if err != nil {
		return nil, err
	}
	outType := opts.OutType
	if outType == OutAuto {
		outType = autoOutType(tensors)
	}
	name := opts.Name
	if name == "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, err
		}
		name = filepath.Base(abs)
	}

	out := &ggufFile{}
	out.set("general.architecture", gguf.String("llama"))
	out.set("general.type", gguf.String("model"))
	out.set("general.name", gguf.String(name))
	out.set("llama.block_count", gguf.Uint32(uint32(cfg.NumHiddenLayers)))
	if cfg.MaxPositionEmbeddings != nil {
		out.set("llama.context_length", gguf.Uint32(uint32(*cfg.MaxPositionEmbeddings)))
	}
	out.set("llama.embedding_length", gguf.Uint32(uint32(cfg.HiddenSize)))
	out.set("llama.feed_forward_length", gguf.Uint32(uint32(cfg.IntermediateSize)))
	out.set("llama.attention.head_count", gguf.Uint32(uint32(cfg.NumAttentionHeads)))
	if cfg.NumKeyValueHeads != nil {
		out.set("llama.attention.head_count_kv", gguf.Uint32(uint32(*cfg.NumKeyValueHeads)))
	}
	for _, kv := range ropeKVs {
		out.set(kv.key, kv.val)
	}
	if cfg.RMSNormEps != nil {
		out.set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(float32(*cfg.RMSNormEps)))
	}
	if cfg.HeadDim != nil {
		out.set("llama.attention.key_length", gguf.Uint32(uint32(*cfg.HeadDim)))
		out.set("llama.attention.value_length", gguf.Uint32(uint32(*cfg.HeadDim)))
	}
	out.set("general.file_type", gguf.Uint32(fileType(outType)))
	out.set("llama.vocab_size", gguf.Uint32(uint32(cfg.VocabSize)))
	out.set("llama.rope.dimension_count", gguf.Uint32(uint32(cfg.headDim())))
	out.set("general.quantization_version", gguf.Uint32(2))

	if err := addHFVocab(out, dir, cfg.VocabSize); err != nil {
		return nil, err
	}

	for _, t := range tensors {
		if skippedTensor(t.name) {
			continue
		}
		gname, err := ggufTensorName(t.name, cfg.NumHiddenLayers)
		if err != nil {
			return nil, err
		}
		if len(t.shape) == 0 || len(t.shape) > gguf.MaxDims {
			return nil, fmt.Errorf("tensor %s has %d dimensions", t.name, len(t.shape))
		}
		// Heads to permute over: K has the key/value heads.
		permuteHeads := 0
		switch {
		case strings.Contains(t.name, ".self_attn.q_proj."):
			permuteHeads = cfg.NumAttentionHeads
		case strings.Contains(t.name, ".self_attn.k_proj."):
			permuteHeads = cfg.nKVHeads()
		}
		if permuteHeads > 0 && t.shape[0]%uint64(2*permuteHeads) != 0 {
			return nil, fmt.Errorf("tensor %s: %d rows cannot be split into %d heads of pairs", t.name, t.shape[0], permuteHeads)
		}
		shape := make([]uint64, len(t.shape))
		for i, d := range t.shape {
			shape[len(shape)-1-i] = d
		}
		out.addTensor(gname, shape, outType, func() (srcTensor, error) {
			src, err := t.read()
			if err != nil {
				return src, err
			}
			if permuteHeads > 0 {
				src.data, err = permuteRoPE(src.data, int(t.shape[0]), permuteHeads)
				if err != nil {
					return src, fmt.Errorf("tensor %s: %w", t.name, err)
				}
			}
			return src, nil
		})
	}
	return out, nil
}

// autoOutType is convert_hf_to_gguf.py's --outtype auto: the type of the
// first BF16 or F16 tensor of two or more dimensions, else F16.
func autoOutType(tensors []stTensor) OutType {
	for _, t := range tensors {
		if len(t.shape) < 2 {
			continue
		}
		switch t.dtype {
		case "BF16":
			return OutBF16
		case "F16":
			return OutF16
		}
	}
	return OutF16
}
