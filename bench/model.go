package bench

import (
	"fmt"
	"path/filepath"
	"strings"

	"llamago/gguf"
	"llamago/quantize"
)

// ModelInfo describes a model file the way a benchmark table names it.
type ModelInfo struct {
	Name      string // the file's base name without .gguf
	Type      string // the file type: "Q4_0", "Q4_K_M", "F16", ...
	SizeBytes int64  // bytes of all tensors
	Params    int64  // elements of all tensors
	// DecodeBytes is what one single-token decode step reads of the
	// weights: every tensor once, except the token embedding, of which
	// only one row is read.
	DecodeBytes int64
	NVocab      int
	BOS         int32
	AddBOS      bool
}

// Describe reads a model's name, file type, size and vocabulary from its
// GGUF metadata.
func Describe(path string, f *gguf.File) (ModelInfo, error) {
	info := ModelInfo{Name: strings.TrimSuffix(filepath.Base(path), ".gguf")}
	for i := range f.Tensors {
		ti := &f.Tensors[i]
		info.SizeBytes += int64(ti.Size)
		info.Params += int64(ti.Elements())
		if ti.Name == "token_embd.weight" && len(ti.Shape) == 2 && ti.Shape[1] > 0 {
			info.DecodeBytes += int64(ti.Size / ti.Shape[1])
			continue
		}
		info.DecodeBytes += int64(ti.Size)
	}
	info.Type = fileTypeName(f)
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return ModelInfo{}, fmt.Errorf("bench: %s: %w", path, err)
	}
	info.NVocab = len(tokens)
	info.BOS = -1
	if bos, err := f.Uint32("tokenizer.ggml.bos_token_id"); err == nil && int(bos) < info.NVocab {
		info.BOS = int32(bos)
	}
	// llama-style vocabularies add BOS unless the file says otherwise.
	info.AddBOS = info.BOS >= 0
	if add, err := f.Bool("tokenizer.ggml.add_bos_token"); err == nil {
		info.AddBOS = add && info.BOS >= 0
	}
	return info, nil
}

// fileTypeName names general.file_type as llama.cpp does ("Q4_K_M"),
// falling back to the type of the first layer's query weight when the key
// is missing or unknown.
func fileTypeName(f *gguf.File) string {
	if ft, err := f.Uint32("general.file_type"); err == nil {
		// Targets lists the mixes before the pure variants that share
		// their file type, so the first match is llama.cpp's name.
		var found string
		for _, t := range quantize.Targets() {
			if t.FileType() == ft && !t.Pure() {
				found = t.Name()
				break
			}
		}
		if found != "" {
			return strings.ToUpper(found)
		}
	}
	if ti, ok := f.Tensor("blk.0.attn_q.weight"); ok {
		return ti.Type.String()
	}
	return "?"
}

// DescribeFile is Describe for a file not yet open.
func DescribeFile(path string) (ModelInfo, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("bench: %s: %w", path, err)
	}
	defer f.Close()
	return Describe(path, f)
}
