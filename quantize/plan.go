package quantize

import (
	"fmt"
	"slices"
	"strings"

	"llamago/gguf"
	"llamago/tensor"
)

// TensorPlan says what Run does with one tensor.
type TensorPlan struct {
	Name     string
	Shape    []uint64    // as written: ggml's ne with trailing ones dropped, as ggml's writer does
	From     tensor.Type // type in the input
	To       tensor.Type // type in the output; From when the tensor is copied
	Fallback bool        // the rows are not whole blocks of the type the rules chose, so To is a fallback
	InSize   uint64      // bytes in the input
	OutSize  uint64      // bytes in the output

	info *gguf.TensorInfo
}

// Converts reports whether the tensor's data changes (rather than being
// copied).
func (p TensorPlan) Converts() bool { return p.From != p.To }

// Plan returns what quantizing f to target does with each tensor, in the
// order the output holds them (llama.cpp's: tensors outside the blocks
// first, then block by block, by name within each). It fails for files the
// rules cannot handle: no architecture or block count, split models, an
// MoE ffn tensor without a layer in its name.
func Plan(f *gguf.File, target Target) ([]TensorPlan, error) {
	if target.name == "" {
		return nil, fmt.Errorf("quantize: no target type")
	}
	if f.Has("split.count") {
		n, err := f.Uint64("split.count")
		if err != nil {
			return nil, fmt.Errorf("quantize: split.count: %w", err)
		}
		if n > 1 {
			return nil, fmt.Errorf("quantize: the input is one of %d parts of a split model; merge the parts first (llama-gguf-split --merge)", n)
		}
	}
	hp, err := readHParams(f)
	if err != nil {
		return nil, err
	}

	infos := make([]*gguf.TensorInfo, len(f.Tensors))
	names := make([]string, len(f.Tensors))
	for i := range f.Tensors {
		infos[i] = &f.Tensors[i]
	}
	slices.SortStableFunc(infos, func(a, b *gguf.TensorInfo) int { return compareWeightNames(a.Name, b.Name) })
	for i, ti := range infos {
		names[i] = ti.Name
	}

	chooser := newTypeChooser(target, hp, names)
	plans := make([]TensorPlan, len(infos))
	for i, ti := range infos {
		p := TensorPlan{Name: ti.Name, Shape: trimShape(ti.Shape), From: ti.Type, To: ti.Type, InSize: ti.Size, info: ti}
		if allowsQuantization(ti.Name, len(p.Shape)) {
			if p.To, p.Fallback, err = chooser.choose(ti.Name, p.Shape[0]); err != nil {
				return nil, err
			}
		}
		if p.OutSize, err = gguf.TensorSize(p.To, p.Shape); err != nil {
			return nil, fmt.Errorf("quantize: tensor %q as %s: %w", ti.Name, p.To, err)
		}
		plans[i] = p
	}
	return plans, nil
}

// trimShape drops trailing dimensions of one, keeping at least one
// dimension: ggml_n_dims, which is also how many dimensions ggml writes.
func trimShape(shape []uint64) []uint64 {
	n := len(shape)
	for n > 1 && shape[n-1] == 1 {
		n--
	}
	return slices.Clone(shape[:n])
}

// compareWeightNames orders tensors as llama.cpp's model loader does
// (weight_name_comparer): by block number, with names outside blocks
// (block -1) first, then bytewise by name.
func compareWeightNames(a, b string) int {
	la, lb := blockOf(a), blockOf(b)
	if la != lb {
		if la < lb {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}

// blockOf is the block number llama.cpp's loader reads from a name, or -1.
func blockOf(name string) int {
	if n, ok := scanLayer(name); ok {
		return n
	}
	return -1
}

// checkConvertible returns an error when Run cannot produce p.To from
// p.From: a type llamago cannot decode, or quantized input without
// allowRequantize (llama.cpp's rule: requantizing loses more than
// quantizing the original weights).
func checkConvertible(p TensorPlan, allowRequantize bool) error {
	if !p.Converts() {
		return nil
	}
	if !p.From.Supported() || !p.To.Supported() {
		return fmt.Errorf("quantize: tensor %q: cannot convert %s to %s: %w", p.Name, p.From, p.To, tensor.ErrUnsupported)
	}
	if isQuantized(p.From) && !allowRequantize {
		return fmt.Errorf("quantize: tensor %q is already quantized (%s); requantizing to %s needs AllowRequantize (better: quantize the F32/F16/BF16 model)", p.Name, p.From, p.To)
	}
	return nil
}
