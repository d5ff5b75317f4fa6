// Package tensor describes ggml's element types and block formats and
// converts between them and float32, bit for bit as ggml's reference code
// does (quantize_row_*_ref and dequantize_row_*).
//
// Every ggml type id is known by name and block geometry, so that a GGUF
// reader can size and validate any tensor; only the types listed as
// supported can be converted.
package tensor

import "fmt"

// Type is a ggml element type id, as stored in GGUF tensor infos.
type Type uint32

// The ggml type ids (ggml.h, enum ggml_type). Gaps are ids ggml removed.
const (
	F32     Type = 0
	F16     Type = 1
	Q4_0    Type = 2
	Q4_1    Type = 3
	Q5_0    Type = 6
	Q5_1    Type = 7
	Q8_0    Type = 8
	Q8_1    Type = 9
	Q2_K    Type = 10
	Q3_K    Type = 11
	Q4_K    Type = 12
	Q5_K    Type = 13
	Q6_K    Type = 14
	Q8_K    Type = 15
	IQ2_XXS Type = 16
	IQ2_XS  Type = 17
	IQ3_XXS Type = 18
	IQ1_S   Type = 19
	IQ4_NL  Type = 20
	IQ3_S   Type = 21
	IQ2_S   Type = 22
	IQ4_XS  Type = 23
	I8      Type = 24
	I16     Type = 25
	I32     Type = 26
	I64     Type = 27
	F64     Type = 28
	IQ1_M   Type = 29
	BF16    Type = 30
	TQ1_0   Type = 34
	TQ2_0   Type = 35
	MXFP4   Type = 39
	NVFP4   Type = 40
	Q1_0    Type = 41
	Q2_0    Type = 42
)

// QK_K is the super-block size of the k-quants.
const QK_K = 256

// traits holds the geometry of one type: blockSize elements are stored in
// typeSize bytes.
type traits struct {
	name      string
	blockSize int
	typeSize  int
	supported bool // llamago can convert it to and from float32
}

var typeTraits = map[Type]traits{
	F32:     {"F32", 1, 4, true},
	F16:     {"F16", 1, 2, true},
	BF16:    {"BF16", 1, 2, true},
	Q4_0:    {"Q4_0", 32, 18, true},
	Q4_1:    {"Q4_1", 32, 20, true},
	Q5_0:    {"Q5_0", 32, 22, true},
	Q5_1:    {"Q5_1", 32, 24, true},
	Q8_0:    {"Q8_0", 32, 34, true},
	Q8_1:    {"Q8_1", 32, 36, false},
	Q2_K:    {"Q2_K", QK_K, 84, true},
	Q3_K:    {"Q3_K", QK_K, 110, true},
	Q4_K:    {"Q4_K", QK_K, 144, true},
	Q5_K:    {"Q5_K", QK_K, 176, true},
	Q6_K:    {"Q6_K", QK_K, 210, true},
	Q8_K:    {"Q8_K", QK_K, 292, true},
	IQ2_XXS: {"IQ2_XXS", QK_K, 66, false},
	IQ2_XS:  {"IQ2_XS", QK_K, 74, false},
	IQ3_XXS: {"IQ3_XXS", QK_K, 98, false},
	IQ1_S:   {"IQ1_S", QK_K, 50, false},
	IQ4_NL:  {"IQ4_NL", 32, 18, false},
	IQ3_S:   {"IQ3_S", QK_K, 110, false},
	IQ2_S:   {"IQ2_S", QK_K, 82, false},
	IQ4_XS:  {"IQ4_XS", QK_K, 136, false},
	I8:      {"I8", 1, 1, false},
	I16:     {"I16", 1, 2, false},
	I32:     {"I32", 1, 4, false},
	I64:     {"I64", 1, 8, false},
	F64:     {"F64", 1, 8, false},
	IQ1_M:   {"IQ1_M", QK_K, 56, false},
	TQ1_0:   {"TQ1_0", QK_K, 54, false},
	TQ2_0:   {"TQ2_0", QK_K, 66, false},
	MXFP4:   {"MXFP4", 32, 17, false},
	NVFP4:   {"NVFP4", 64, 36, false},
	Q1_0:    {"Q1_0", 128, 18, false},
	Q2_0:    {"Q2_0", 64, 18, false},
}

// String returns ggml's name of the type in upper case ("Q4_K"), or
// "type(N)" for an id ggml does not define.
func (t Type) String() string {
	if tr, ok := typeTraits[t]; ok {
		return tr.name
	}
	return fmt.Sprintf("type(%d)", uint32(t))
}

// Known reports whether t is a type id that ggml defines.
func (t Type) Known() bool { _, ok := typeTraits[t]; return ok }

// Supported reports whether llamago can convert t to and from float32.
func (t Type) Supported() bool { return typeTraits[t].supported }

// BlockSize is the number of elements in one block (1 for plain types),
// or 0 for an unknown type.
func (t Type) BlockSize() int { return typeTraits[t].blockSize }

// TypeSize is the number of bytes of one block, or 0 for an unknown type.
func (t Type) TypeSize() int { return typeTraits[t].typeSize }

// RowSize returns the bytes taken by n elements of type t. It fails when t
// is unknown or n is not a whole number of blocks.
func (t Type) RowSize(n int64) (int64, error) {
	tr, ok := typeTraits[t]
	if !ok {
		return 0, fmt.Errorf("tensor: unknown type id %d", uint32(t))
	}
	if n < 0 || n%int64(tr.blockSize) != 0 {
		return 0, fmt.Errorf("tensor: %d elements of %s are not a whole number of %d-element blocks", n, tr.name, tr.blockSize)
	}
	return n / int64(tr.blockSize) * int64(tr.typeSize), nil
}

// ParseType returns the type whose name is s, in any case ("q4_k", "F16").
func ParseType(s string) (Type, error) {
	for t, tr := range typeTraits {
		if equalFold(tr.name, s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("tensor: unknown type name %q", s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ErrUnsupported is wrapped by errors about types llamago cannot convert.
var ErrUnsupported = fmt.Errorf("tensor: type not supported")
