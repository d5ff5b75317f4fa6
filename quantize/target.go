package quantize

import (
	"fmt"
	"strings"

	"llamago/tensor"
)

// llama_ftype values (llama.h) of the targets: what general.file_type says.
const (
	ftypeAllF32 = 0
	ftypeF16    = 1
	ftypeQ4_0   = 2
	ftypeQ4_1   = 3
	ftypeQ8_0   = 7
	ftypeQ5_0   = 8
	ftypeQ5_1   = 9
	ftypeQ2_K   = 10
	ftypeQ3_K_S = 11
	ftypeQ3_K_M = 12
	ftypeQ3_K_L = 13
	ftypeQ4_K_S = 14
	ftypeQ4_K_M = 15
	ftypeQ5_K_S = 16
	ftypeQ5_K_M = 17
	ftypeQ6_K   = 18
	ftypeBF16   = 32
)

// Target is what a model is quantized to: a llama_ftype, the tensor type it
// starts from, and whether llama.cpp's per-tensor mix applies.
type Target struct {
	name  string
	ftype uint32
	base  tensor.Type
	pure  bool
}

// Targets returns every supported target, from the largest files to the
// smallest.
func Targets() []Target {
	return []Target{
		{"f32", ftypeAllF32, tensor.F32, false},
		{"f16", ftypeF16, tensor.F16, false},
		{"bf16", ftypeBF16, tensor.BF16, false},
		{"q8_0", ftypeQ8_0, tensor.Q8_0, false},
		{"q5_1", ftypeQ5_1, tensor.Q5_1, false},
		{"q5_0", ftypeQ5_0, tensor.Q5_0, false},
		{"q4_1", ftypeQ4_1, tensor.Q4_1, false},
		{"q4_0", ftypeQ4_0, tensor.Q4_0, false},
		{"q6_k", ftypeQ6_K, tensor.Q6_K, true},
		{"q5_k", ftypeQ5_K_M, tensor.Q5_K, true},
		{"q4_k", ftypeQ4_K_M, tensor.Q4_K, true},
		{"q3_k", ftypeQ3_K_M, tensor.Q3_K, true},
		{"q2_k", ftypeQ2_K, tensor.Q2_K, true},
		{"q5_k_m", ftypeQ5_K_M, tensor.Q5_K, false},
		{"q5_k_s", ftypeQ5_K_S, tensor.Q5_K, false},
		{"q4_k_m", ftypeQ4_K_M, tensor.Q4_K, false},
		{"q4_k_s", ftypeQ4_K_S, tensor.Q4_K, false},
		{"q3_k_l", ftypeQ3_K_L, tensor.Q3_K, false},
		{"q3_k_m", ftypeQ3_K_M, tensor.Q3_K, false},
		{"q3_k_s", ftypeQ3_K_S, tensor.Q3_K, false},
	}
}

// ParseTarget returns the target called s, in any case: f32, f16, bf16,
// q8_0, q5_1, q5_0, q4_1, q4_0, q6_k, q5_k, q4_k, q3_k, q2_k, q5_k_m,
// q5_k_s, q4_k_m, q4_k_s, q3_k_l, q3_k_m or q3_k_s.
func ParseTarget(s string) (Target, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	all := Targets()
	for _, t := range all {
		if t.name == name {
			return t, nil
		}
	}
	names := make([]string, len(all))
	for i, t := range all {
		names[i] = t.name
	}
	return Target{}, fmt.Errorf("quantize: unknown target type %q (want one of %s)", s, strings.Join(names, ", "))
}

// Name is the target's name as ParseTarget accepts it ("q4_k_m").
func (t Target) Name() string { return t.name }

// String is Name.
func (t Target) String() string { return t.name }

// FileType is the llama_ftype written as general.file_type.
func (t Target) FileType() uint32 { return t.ftype }

// BaseType is the type most weights get; a mix changes it for some
// tensors, and a fallback for tensors whose rows it cannot divide.
func (t Target) BaseType() tensor.Type { return t.base }

// Pure reports whether every quantizable weight gets BaseType (up to the
// fallbacks), as with llama-quantize --pure, rather than llama.cpp's mix.
func (t Target) Pure() bool { return t.pure }

// Describe says in a few words what the target does, for help texts.
func (t Target) Describe() string {
	switch {
	case !isQuantized(t.base) || t.base == tensor.Q8_0:
		return fmt.Sprintf("every weight %s", t.base)
	case t.pure:
		return fmt.Sprintf("every weight %s (llama-quantize --pure %s)", t.base, t.base)
	case t.base.BlockSize() == 32:
		return fmt.Sprintf("weights %s, output Q6_K (llama.cpp's %s)", t.base, t.base)
	default:
		return fmt.Sprintf("llama.cpp's %s mix: mostly %s, more bits for sensitive tensors", strings.ToUpper(t.name), t.base)
	}
}

// isQuantized is ggml_is_quantized: block types, not the plain float and
// integer types.
func isQuantized(t tensor.Type) bool { return t.BlockSize() > 1 }
