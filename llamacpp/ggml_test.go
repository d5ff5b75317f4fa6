package llamacpp

import (
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"llamago/internal/testenv"
	"llamago/tensor"
)

// openLib loads the libraries or stops the test through testenv.
func openLib(t testing.TB) *Lib {
	t.Helper()
	lib, err := Open(testenv.RequireLlamaCpp(t))
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func TestStructSizes(t *testing.T) {
	// Sizes from the C headers of this release (x86-64 System V).
	tests := []struct {
		name string
		got  uintptr
		want uintptr
	}{
		{"llama_model_params", unsafe.Sizeof(modelParams{}), 80},
		{"llama_context_params", unsafe.Sizeof(contextParams{}), 160},
		{"llama_batch", unsafe.Sizeof(batch{}), 56},
		{"llama_model_quantize_params", unsafe.Sizeof(quantizeParams{}), 64},
		{"llama_perf_context_data", unsafe.Sizeof(perfContextData{}), 48},
		{"ggml_type_traits", unsafe.Sizeof(typeTraits{}), 56},
		{"ggml_tensor", unsafe.Sizeof(cTensor{}), 336},
		{"ggml_type_traits.to_float offset", unsafe.Offsetof(typeTraits{}.ToFloat), 40},
		{"ggml_tensor.name offset", unsafe.Offsetof(cTensor{}.Name), 256},
		{"llama_context_params.cb_eval offset", unsafe.Offsetof(contextParams{}.CbEval), 88},
		{"llama_context_params.embeddings offset", unsafe.Offsetof(contextParams{}.Embeddings), 128},
		{"llama_model_params.vocab_only offset", unsafe.Offsetof(modelParams{}.VocabOnly), 72},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

// TestDefaultParams reads llama.cpp's default structs (returned by value)
// and checks fields whose defaults llama.h documents: a layout mistake
// shifts them.
func TestDefaultParams(t *testing.T) {
	lib := openLib(t)
	mp := lib.c.llamaModelDefaultParams()
	if mp.NGPULayers != -1 || mp.LoadMode != -1 || mp.LazyMode != 1 || !mp.UseExtraBufts || mp.VocabOnly || mp.LoadMTP {
		t.Errorf("model defaults look shifted: %+v", mp)
	}
	cp := lib.c.llamaContextDefaultParams()
	if cp.NCtx != 512 || cp.NBatch != 2048 || cp.NUBatch != 512 || cp.NSeqMax != 1 || cp.NOutputsMaxPerSeq != 1 ||
		cp.FlashAttnType != FlashAttnAuto || cp.YarnExtFactor != -1 || cp.DefragThold != -1 || cp.CbEval != 0 ||
		cp.TypeK != int32(tensor.F16) || cp.TypeV != int32(tensor.F16) ||
		cp.Embeddings || !cp.OffloadKQV || !cp.NoPerf || !cp.OpOffload || !cp.SwaFull || cp.KVUnified || cp.CtxOther != 0 {
		t.Errorf("context defaults look shifted: %+v", cp)
	}
	qp := lib.c.llamaModelQuantizeDefaultParams()
	if qp.FType != FTypeQ8_0 || qp.OutputTensorType != ggmlTypeCount || qp.TokenEmbeddingType != ggmlTypeCount ||
		!qp.QuantizeOutputTensor || qp.OnlyCopy || qp.DryRun || qp.Imatrix != 0 || qp.PruneLayers != 0 || qp.MaxBufSize == 0 {
		t.Errorf("quantize defaults look shifted: %+v", qp)
	}
}

func randomRows(seed uint64, n int) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	xs := make([]float32, n)
	for i := range xs {
		xs[i] = float32(r.NormFloat64())
	}
	return xs
}

func TestQuantizeRoundTrip(t *testing.T) {
	lib := openLib(t)
	const nrows, nPerRow = 3, 512
	src := randomRows(7, nrows*nPerRow)
	tests := []struct {
		typ tensor.Type
		tol float64 // largest error allowed, relative to the row's absmax
	}{
		{tensor.F32, 0},
		{tensor.F16, 1e-3},
		{tensor.BF16, 8e-3},
		{tensor.Q8_0, 1.0 / 127},
		{tensor.Q4_0, 1.0 / 7},
		{tensor.Q5_1, 1.0 / 15},
		{tensor.Q4_K, 0.2},
		{tensor.Q6_K, 0.05},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			q, err := lib.Quantize(tt.typ, src, nrows, nPerRow)
			if err != nil {
				t.Fatal(err)
			}
			rowSize, err := lib.RowSize(tt.typ, nPerRow)
			if err != nil {
				t.Fatal(err)
			}
			if len(q) != nrows*int(rowSize) {
				t.Fatalf("%d bytes, want %d", len(q), nrows*int(rowSize))
			}
			back, err := lib.Dequantize(tt.typ, q, len(src))
			if err != nil {
				t.Fatal(err)
			}
			for r := range nrows {
				row, got := src[r*nPerRow:(r+1)*nPerRow], back[r*nPerRow:(r+1)*nPerRow]
				absmax := 0.0
				for _, x := range row {
					absmax = math.Max(absmax, math.Abs(float64(x)))
				}
				for i := range row {
					if e := math.Abs(float64(row[i] - got[i])); e > tt.tol*absmax {
						t.Fatalf("row %d [%d]: %v back as %v (error %.3g > %.3g)", r, i, row[i], got[i], e, tt.tol*absmax)
					}
				}
			}
		})
	}
}

// TestQ8_0KnownBlock checks one block against the format by hand: the
// scale is absmax/127 as FP16, each value round(x/scale).
func TestQ8_0KnownBlock(t *testing.T) {
	lib := openLib(t)
	src := make([]float32, 32)
	for i := range src {
		src[i] = float32(i-16) / 4 // -4 .. 3.75
	}
	q, err := lib.Quantize(tensor.Q8_0, src, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	if len(q) != 34 {
		t.Fatalf("%d bytes, want 34", len(q))
	}
	d := lib.FP16ToFP32(uint16(q[0]) | uint16(q[1])<<8)
	if want := lib.FP16ToFP32(lib.FP32ToFP16(4.0 / 127)); d != want {
		t.Errorf("scale %v, want %v", d, want)
	}
	for i, x := range src {
		want := int8(math.Round(float64(x) / (4.0 / 127)))
		if got := int8(q[2+i]); got != want {
			t.Errorf("q[%d] = %d, want %d", i, got, want)
		}
	}
}

func TestHalfConversions(t *testing.T) {
	lib := openLib(t)
	tests := []struct {
		f    float32
		fp16 uint16
		bf16 uint16
	}{
		{0, 0x0000, 0x0000},
		{1, 0x3c00, 0x3f80},
		{-2, 0xc000, 0xc000},
		{65504, 0x7bff, 0x4780}, // bf16 rounds 0x477fe000 up,
		{float32(math.Inf(1)), 0x7c00, 0x7f80},
		{1.0 / 3, 0x3555, 0x3eab},
	}
	for _, tt := range tests {
		if got := lib.FP32ToFP16(tt.f); got != tt.fp16 {
			t.Errorf("FP32ToFP16(%v) = %#04x, want %#04x", tt.f, got, tt.fp16)
		}
		if got := lib.FP32ToBF16(tt.f); got != tt.bf16 {
			t.Errorf("FP32ToBF16(%v) = %#04x, want %#04x", tt.f, got, tt.bf16)
		}
		if got := lib.FP16ToFP32(0x3c00); got != 1 {
			t.Errorf("FP16ToFP32(0x3c00) = %v", got)
		}
		if got := lib.BF16ToFP32(0x3f80); got != 1 {
			t.Errorf("BF16ToFP32(0x3f80) = %v", got)
		}
	}
}

func TestQuantizeRejectsBadInput(t *testing.T) {
	lib := openLib(t)
	tests := []struct {
		name          string
		typ           tensor.Type
		n, nrows, per int
	}{
		{"partial block", tensor.Q8_0, 48, 1, 48},
		{"wrong length", tensor.Q8_0, 60, 2, 32},
		{"needs imatrix", tensor.IQ2_XXS, 256, 1, 256},
		{"not quantizable", tensor.Q8_K, 256, 1, 256},
		{"unknown id", tensor.Type(4), 32, 1, 32},
		{"id past the table", tensor.Type(999), 32, 1, 32},
		{"no rows", tensor.Q8_0, 0, 0, 32},
	}
	for _, tt := range tests {
		if _, err := lib.Quantize(tt.typ, make([]float32, tt.n), tt.nrows, tt.per); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
	if _, err := lib.Dequantize(tensor.Q8_0, make([]byte, 33), 32); err == nil {
		t.Error("Dequantize of a short buffer: no error")
	}
	if _, err := lib.Dequantize(tensor.Q4_K, make([]byte, 144), 128); err == nil {
		t.Error("Dequantize of half a block: no error")
	}
}
