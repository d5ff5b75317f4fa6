package quantize

import (
	"encoding/binary"
	"fmt"
	"math"

	"llamago/tensor"
)

// This file checks tensor data the way ggml_validate_row_data does:
// llama.cpp refuses input with a NaN or an infinity, and output whose fp16
// scales overflowed, and so does this package.

// scaleOffsets returns the byte offsets, inside one block, of the fp16
// scales of a quantized type (d, and m or dmin where the type has one),
// from ggml-common.h's block layouts.
func scaleOffsets(t tensor.Type) []int {
	switch t {
	case tensor.Q4_0, tensor.Q5_0, tensor.Q8_0:
		return []int{0}
	case tensor.Q4_1, tensor.Q5_1, tensor.Q4_K, tensor.Q5_K:
		return []int{0, 2}
	case tensor.Q2_K:
		return []int{80, 82} // after scales[16] and qs[64]
	case tensor.Q3_K:
		return []int{108} // after hmask[32], qs[64] and scales[12]
	case tensor.Q6_K:
		return []int{208} // after ql[128], qh[64] and scales[16]
	}
	return nil
}

// fp16Finite reports whether fp16 bits are neither infinite nor NaN.
func fp16Finite(h uint16) bool { return h&0x7c00 != 0x7c00 }

// checkData returns an error naming the first element (for plain types) or
// block (for quantized ones) of data, of type t, that is a NaN or an
// infinity; first is the index of data's first element or block in the
// tensor. Types ggml does not check (integers, and quantized types whose
// layout this package does not know) pass.
func checkData(t tensor.Type, data []byte, first int) error {
	le := binary.LittleEndian
	switch t {
	case tensor.F32:
		for i := 0; i+4 <= len(data); i += 4 {
			if le.Uint32(data[i:])&0x7f800000 == 0x7f800000 {
				return fmt.Errorf("element %d is %v", first+i/4, math.Float32frombits(le.Uint32(data[i:])))
			}
		}
		return nil
	case tensor.F16:
		for i := 0; i+2 <= len(data); i += 2 {
			if !fp16Finite(le.Uint16(data[i:])) {
				return fmt.Errorf("element %d is %v", first+i/2, tensor.FP16ToFloat32(le.Uint16(data[i:])))
			}
		}
		return nil
	case tensor.BF16:
		for i := 0; i+2 <= len(data); i += 2 {
			if le.Uint16(data[i:])&0x7f80 == 0x7f80 {
				return fmt.Errorf("element %d is %v", first+i/2, tensor.BF16ToFloat32(le.Uint16(data[i:])))
			}
		}
		return nil
	case tensor.F64:
		for i := 0; i+8 <= len(data); i += 8 {
			if le.Uint64(data[i:])&0x7ff0000000000000 == 0x7ff0000000000000 {
				return fmt.Errorf("element %d is %v", first+i/8, math.Float64frombits(le.Uint64(data[i:])))
			}
		}
		return nil
	}
	offsets := scaleOffsets(t)
	size := t.TypeSize()
	if len(offsets) == 0 || size == 0 {
		return nil
	}
	for b := 0; b+size <= len(data); b += size {
		for _, off := range offsets {
			if h := le.Uint16(data[b+off:]); !fp16Finite(h) {
				return fmt.Errorf("block %d has scale %v", first+b/size, tensor.FP16ToFloat32(h))
			}
		}
	}
	return nil
}
