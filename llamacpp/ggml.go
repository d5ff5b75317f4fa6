package llamacpp

import (
	"encoding/binary"
	"fmt"
	"math"
	"unsafe"

	"github.com/ebitengine/purego"

	"llamago/tensor"
)

// ggmlTypeCount is GGML_TYPE_COUNT of this release: type ids at or above
// it would index past ggml's trait table.
const ggmlTypeCount = 43

// quantizable lists the types ggml_quantize_chunk has a case for; any other
// type hits an assert inside ggml, so it is refused here first.
var quantizable = map[tensor.Type]bool{
	tensor.F32: true, tensor.F16: true, tensor.BF16: true,
	tensor.Q1_0: true, tensor.Q2_0: true,
	tensor.Q4_0: true, tensor.Q4_1: true, tensor.Q5_0: true, tensor.Q5_1: true, tensor.Q8_0: true,
	tensor.MXFP4: true, tensor.NVFP4: true,
	tensor.Q2_K: true, tensor.Q3_K: true, tensor.Q4_K: true, tensor.Q5_K: true, tensor.Q6_K: true,
	tensor.TQ1_0: true, tensor.TQ2_0: true,
	tensor.IQ2_XXS: true, tensor.IQ2_XS: true, tensor.IQ3_XXS: true, tensor.IQ3_S: true, tensor.IQ2_S: true,
	tensor.IQ1_S: true, tensor.IQ1_M: true, tensor.IQ4_NL: true, tensor.IQ4_XS: true,
}

// traits returns ggml's trait record of t, or an error for an id ggml
// does not define.
func (l *Lib) traits(t tensor.Type) (*typeTraits, error) {
	if uint32(t) >= ggmlTypeCount {
		return nil, fmt.Errorf("llamacpp: type id %d is not a ggml type", uint32(t))
	}
	tr := l.c.ggmlGetTypeTraits(int32(t))
	if tr == nil || tr.BlckSize <= 0 {
		return nil, fmt.Errorf("llamacpp: type id %d is not a ggml type (removed id)", uint32(t))
	}
	return tr, nil
}

// TypeName is ggml's own name of t ("q4_K"), for messages and checks.
func (l *Lib) TypeName(t tensor.Type) (string, error) {
	if _, err := l.traits(t); err != nil {
		return "", err
	}
	return cString(l.c.ggmlTypeName(int32(t))), nil
}

// RowSize is ggml_row_size: the bytes of n elements of type t.
func (l *Lib) RowSize(t tensor.Type, n int64) (int64, error) {
	tr, err := l.traits(t)
	if err != nil {
		return 0, err
	}
	if n < 0 || n%tr.BlckSize != 0 {
		return 0, fmt.Errorf("llamacpp: %d elements of %s are not a whole number of %d-element blocks", n, t, tr.BlckSize)
	}
	return int64(l.c.ggmlRowSize(int32(t), n)), nil
}

// Quantize converts nrows rows of nPerRow floats to type t with ggml's
// quantize_chunk and no importance matrix, which is ggml's reference
// quantizer (quantize_row_*_ref) for the types that have one. Types that
// cannot work without an importance matrix (IQ2_XXS, IQ2_XS, IQ1_S) fail;
// use QuantizeImatrix.
func (l *Lib) Quantize(t tensor.Type, src []float32, nrows, nPerRow int) ([]byte, error) {
	return l.QuantizeImatrix(t, src, nrows, nPerRow, nil)
}

// QuantizeImatrix is Quantize with an importance matrix (nPerRow weights,
// one per column), or nil for none.
func (l *Lib) QuantizeImatrix(t tensor.Type, src []float32, nrows, nPerRow int, imatrix []float32) ([]byte, error) {
	if !quantizable[t] {
		return nil, fmt.Errorf("llamacpp: ggml cannot quantize to %s", t)
	}
	tr, err := l.traits(t)
	if err != nil {
		return nil, err
	}
	if nrows <= 0 || nPerRow <= 0 {
		return nil, fmt.Errorf("llamacpp: quantize %s: bad shape %d rows x %d", t, nrows, nPerRow)
	}
	if int64(nPerRow)%tr.BlckSize != 0 {
		return nil, fmt.Errorf("llamacpp: quantize %s: row of %d is not a whole number of %d-element blocks", t, nPerRow, tr.BlckSize)
	}
	if len(src) != nrows*nPerRow {
		return nil, fmt.Errorf("llamacpp: quantize %s: %d values for %d rows x %d", t, len(src), nrows, nPerRow)
	}
	var im *float32
	if imatrix != nil {
		if len(imatrix) != nPerRow {
			return nil, fmt.Errorf("llamacpp: quantize %s: importance matrix of %d for rows of %d", t, len(imatrix), nPerRow)
		}
		im = &imatrix[0]
	} else if l.c.ggmlQuantizeRequiresImatrix(int32(t)) {
		return nil, fmt.Errorf("llamacpp: quantize %s: ggml requires an importance matrix for this type", t)
	}
	rowSize := l.c.ggmlRowSize(int32(t), int64(nPerRow))
	dst := make([]byte, uint64(nrows)*rowSize)
	n := l.c.ggmlQuantizeChunk(int32(t), &src[0], &dst[0], 0, int64(nrows), int64(nPerRow), im)
	if n != uint64(len(dst)) {
		return nil, fmt.Errorf("llamacpp: quantize %s: ggml wrote %d bytes, want %d", t, n, len(dst))
	}
	return dst, nil
}

// Dequantize converts n elements of type t, stored in src, to float32 with
// ggml's to_float for the type (dequantize_row_*).
func (l *Lib) Dequantize(t tensor.Type, src []byte, n int) ([]float32, error) {
	tr, err := l.traits(t)
	if err != nil {
		return nil, err
	}
	if tr.ToFloat == 0 && t != tensor.F32 {
		return nil, fmt.Errorf("llamacpp: ggml has no conversion from %s to float", t)
	}
	if n < 0 || int64(n)%tr.BlckSize != 0 {
		return nil, fmt.Errorf("llamacpp: dequantize %s: %d elements are not a whole number of %d-element blocks", t, n, tr.BlckSize)
	}
	need := uint64(n) / uint64(tr.BlckSize) * tr.TypeSize
	if uint64(len(src)) < need {
		return nil, fmt.Errorf("llamacpp: dequantize %s: %d bytes for %d elements, want %d", t, len(src), n, need)
	}
	out := make([]float32, n)
	if n == 0 {
		return out, nil
	}
	if t == tensor.F32 {
		// ggml has no to_float for F32: it is the identity.
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
		return out, nil
	}
	l.toFloat(tr, unsafe.Pointer(&src[0]), out)
	return out, nil
}

// toFloatFunc is the Go form of ggml_to_float_t.
type toFloatFunc func(src unsafe.Pointer, dst *float32, n int64)

// toFloat calls the type's ggml_to_float_t function pointer, binding it
// once per pointer (binding builds a reflect function, so it is cached).
func (l *Lib) toFloat(tr *typeTraits, src unsafe.Pointer, dst []float32) {
	l.toFloatMu.Lock()
	f, ok := l.toFloatFns[tr.ToFloat]
	if !ok {
		purego.RegisterFunc(&f, tr.ToFloat)
		l.toFloatFns[tr.ToFloat] = f
	}
	l.toFloatMu.Unlock()
	f(src, &dst[0], int64(len(dst)))
}

// FP32ToFP16 is ggml_fp32_to_fp16: float32 to IEEE half bits.
func (l *Lib) FP32ToFP16(f float32) uint16 { return l.c.ggmlFP32ToFP16(f) }

// FP16ToFP32 is ggml_fp16_to_fp32.
func (l *Lib) FP16ToFP32(h uint16) float32 { return l.c.ggmlFP16ToFP32(h) }

// FP32ToBF16 is ggml_fp32_to_bf16: float32 to bfloat16 bits, rounding to
// nearest even (NaNs stay quiet NaNs).
func (l *Lib) FP32ToBF16(f float32) uint16 { return l.c.ggmlFP32ToBF16(f) }

// BF16ToFP32 is ggml_bf16_to_fp32.
func (l *Lib) BF16ToFP32(h uint16) float32 { return l.c.ggmlBF16ToFP32(h) }

// allFinite reports whether every value is a finite number.
func allFinite(xs []float32) bool {
	for _, x := range xs {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}
