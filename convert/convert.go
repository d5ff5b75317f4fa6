// Package convert turns llama2.c checkpoints and Hugging Face llama
// directories into GGUF files, writing the tensors and metadata that
// llama.cpp's own converters write for the same inputs
// (examples/convert-llama2c-to-ggml and convert_hf_to_gguf.py), so that
// llama.cpp and llamago load and tokenize the result the same way.
//
// Every size read from an input is checked against the bytes that back it
// before anything is allocated, so a truncated or corrupt file gives an
// error, never a panic or a huge allocation.
package convert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// OutType is the element type chosen for the 2-D weights. Norms and other
// 1-D tensors stay F32 whatever the choice, as llama.cpp's converter keeps
// them (most of ggml only handles F32 norms).
type OutType int

// The output types.
const (
	// OutAuto keeps the precision of the input: F32 for llama2.c
	// checkpoints; for Hugging Face directories what llama.cpp's
	// `--outtype auto` picks: BF16 when the first 2-D tensor is BF16, F16
	// when it is F16, and F16 otherwise.
	OutAuto OutType = iota
	OutF32
	OutF16
	OutBF16
	// OutQ8_0 quantizes 2-D weights to Q8_0; a tensor whose rows are not
	// whole 32-element blocks falls back to F16, as in llama.cpp.
	OutQ8_0
)

var outTypeNames = [...]string{OutAuto: "auto", OutF32: "f32", OutF16: "f16", OutBF16: "bf16", OutQ8_0: "q8_0"}

// String returns the name ParseOutType accepts.
func (t OutType) String() string {
	if t >= 0 && int(t) < len(outTypeNames) {
		return outTypeNames[t]
	}
	return fmt.Sprintf("OutType(%d)", int(t))
}

// ParseOutType parses "auto", "f32", "f16", "bf16" or "q8_0" (any case).
func ParseOutType(s string) (OutType, error) {
	for t, name := range outTypeNames {
		if strings.EqualFold(s, name) {
			return OutType(t), nil
		}
	}
	return 0, fmt.Errorf("convert: unknown output type %q (want one of %s)", s, strings.Join(outTypeNames[:], ", "))
}

// Options tune a conversion. The zero value converts with defaults.
type Options struct {
	// OutType is the element type of the 2-D weights.
	OutType OutType
	// Tokenizer is the llama2.c tokenizer file (tokenizer.bin, tok512.bin)
	// that Run needs for a llama2.c checkpoint.
	Tokenizer string
	// Name is written as general.name; empty means the input's file name
	// without extension, or the directory's name.
	Name string
	// ContextLength overrides llama.context_length for a llama2.c
	// checkpoint, whose header holds the training sequence length (which is
	// written when this is 0). Hugging Face directories always use
	// max_position_embeddings.
	ContextLength int
}

// Run converts in to the GGUF file out: a directory holding config.json is
// a Hugging Face model; a file is a llama2.c checkpoint, whose tokenizer
// opts.Tokenizer must name.
func Run(in, out string, opts Options) error {
	st, err := os.Stat(in)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(in, "config.json")); err != nil {
			return fmt.Errorf("convert: %s is a directory without config.json, not a Hugging Face model", in)
		}
		return HuggingFace(in, out, opts)
	}
	if opts.Tokenizer == "" {
		return errors.New("convert: a llama2.c checkpoint needs its tokenizer file (Options.Tokenizer, --tokenizer)")
	}
	return Llama2C(in, opts.Tokenizer, out, opts)
}
