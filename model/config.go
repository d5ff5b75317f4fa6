// Package model holds the llama family's forward pass, written once against
// the operations of package backend: hyper-parameters read from GGUF
// metadata, weights bound by name with their shapes checked, and Forward,
// which emits a named probe after every step.
package model

import (
	"errors"
	"fmt"
	"math"

	"llamago/gguf"
)

// Config is the blueprint of a llama-family model, read from GGUF metadata.
type Config struct {
	Arch      string // general.architecture
	NEmbd     int    // hidden size
	NLayer    int    // transformer blocks
	NHead     int    // query heads
	NKVHead   int    // key/value heads (NHead for multi-head attention)
	HeadDim   int    // NEmbd / NHead
	NFF       int    // feed-forward hidden size
	NVocab    int    // rows of token_embd
	NCtxTrain int    // context length the model was trained with
	RopeDims  int    // rotated values per head
	RopeBase  float32
	RopeScale float32 // position multiplier: 1/factor for linear scaling
	RMSEps    float32
}

// KVDim is the width of one position's keys (or values) in the cache.
func (c Config) KVDim() int { return c.NKVHead * c.HeadDim }

// supportedArchs are the architectures whose forward pass is the llama one.
var supportedArchs = map[string]bool{"llama": true, "mistral": true}

// ConfigFromGGUF reads the hyper-parameters of a llama-family model.
func ConfigFromGGUF(f *gguf.File) (Config, error) {
	var c Config
	arch, err := f.String("general.architecture")
	if err != nil {
		return c, fmt.Errorf("model: %w", err)
	}
	if !supportedArchs[arch] {
		return c, fmt.Errorf("model: architecture %q is not supported (llamago runs the llama family: llama, mistral)", arch)
	}
	c.Arch = arch
	key := func(k string) string { return arch + "." + k }
	var errs []error
	u := func(k string) int {
		v, err := f.Uint32(key(k))
		if err != nil {
			errs = append(errs, err)
		}
		return int(v)
	}
	c.NEmbd = u("embedding_length")
	c.NLayer = u("block_count")
	c.NHead = u("attention.head_count")
	c.NFF = u("feed_forward_length")
	c.NCtxTrain = u("context_length")
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("model: %w", err)
	}
	c.NKVHead = c.NHead
	if f.Has(key("attention.head_count_kv")) {
		if c.NKVHead = u("attention.head_count_kv"); errs != nil {
			return c, fmt.Errorf("model: %w", errors.Join(errs...))
		}
	}
	if c.NHead <= 0 || c.NEmbd <= 0 || c.NEmbd%c.NHead != 0 {
		return c, fmt.Errorf("model: %s.embedding_length %d is not a multiple of %s.attention.head_count %d", arch, c.NEmbd, arch, c.NHead)
	}
	if c.NKVHead <= 0 || c.NHead%c.NKVHead != 0 {
		return c, fmt.Errorf("model: %s.attention.head_count %d is not a multiple of %s.attention.head_count_kv %d", arch, c.NHead, arch, c.NKVHead)
	}
	if c.NLayer <= 0 || c.NFF <= 0 {
		return c, fmt.Errorf("model: %s.block_count %d and %s.feed_forward_length %d must be positive", arch, c.NLayer, arch, c.NFF)
	}
	c.HeadDim = c.NEmbd / c.NHead
	c.RopeDims = c.HeadDim
	if f.Has(key("rope.dimension_count")) {
		if c.RopeDims = u("rope.dimension_count"); errs != nil {
			return c, fmt.Errorf("model: %w", errors.Join(errs...))
		}
		if c.RopeDims <= 0 || c.RopeDims > c.HeadDim || c.RopeDims%2 != 0 {
			return c, fmt.Errorf("model: %s.rope.dimension_count %d must be even and at most the head size %d", arch, c.RopeDims, c.HeadDim)
		}
	}
	c.RopeBase = 10000
	if f.Has(key("rope.freq_base")) {
		if c.RopeBase, err = f.Float32(key("rope.freq_base")); err != nil {
			return c, fmt.Errorf("model: %w", err)
		}
	}
	c.RopeScale = 1
	if f.Has(key("rope.scaling.type")) {
		typ, err := f.String(key("rope.scaling.type"))
		if err != nil {
			return c, fmt.Errorf("model: %w", err)
		}
		switch typ {
		case "none":
		case "linear":
			factor, err := f.Float32(key("rope.scaling.factor"))
			if err != nil {
				return c, fmt.Errorf("model: %w", err)
			}
			if factor > 0 {
				c.RopeScale = 1 / factor
			}
		default:
			return c, fmt.Errorf("model: %s.rope.scaling.type %q is not supported (none and linear are)", arch, typ)
		}
	} else if f.Has(key("rope.scale_linear")) {
		factor, err := f.Float32(key("rope.scale_linear"))
		if err != nil {
			return c, fmt.Errorf("model: %w", err)
		}
		if factor > 0 {
			c.RopeScale = 1 / factor
		}
	}
	if c.RMSEps, err = f.Float32(key("attention.layer_norm_rms_epsilon")); err != nil {
		return c, fmt.Errorf("model: %w", err)
	}
	if !(c.RMSEps > 0) || math.IsInf(float64(c.RMSEps), 0) || !(c.RopeBase > 0) {
		return c, fmt.Errorf("model: RMS epsilon %g and RoPE base %g must be positive", c.RMSEps, c.RopeBase)
	}
	return c, nil
}
