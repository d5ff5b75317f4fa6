package llamacpp

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/ebitengine/purego"
)

// cFuncs are the C functions used, bound by purego. Handles (models,
// contexts, vocabularies, memories) stay uintptr: Go never looks inside
// them. The `c` tag is the C symbol.
type cFuncs struct {
	// ggml-base
	ggmlQuantizeChunk           func(typ int32, src *float32, dst *byte, start, nrows, nPerRow int64, imatrix *float32) uint64 `c:"ggml_quantize_chunk"`
	ggmlQuantizeRequiresImatrix func(typ int32) bool                                                                           `c:"ggml_quantize_requires_imatrix"`
	ggmlRowSize                 func(typ int32, ne int64) uint64                                                               `c:"ggml_row_size"`
	ggmlGetTypeTraits           func(typ int32) *typeTraits                                                                    `c:"ggml_get_type_traits"`
	ggmlTypeName                func(typ int32) *byte                                                                          `c:"ggml_type_name"`
	ggmlFP16ToFP32              func(h uint16) float32                                                                         `c:"ggml_fp16_to_fp32"`
	ggmlFP32ToFP16              func(f float32) uint16                                                                         `c:"ggml_fp32_to_fp16"`
	ggmlBF16ToFP32              func(h uint16) float32                                                                         `c:"ggml_bf16_to_fp32"`
	ggmlFP32ToBF16              func(f float32) uint16                                                                         `c:"ggml_fp32_to_bf16"`
	ggmlGetName                 func(t *cTensor) *byte                                                                         `c:"ggml_get_name"`
	ggmlNDims                   func(t *cTensor) int32                                                                         `c:"ggml_n_dims"`
	ggmlNBytes                  func(t *cTensor) uint64                                                                        `c:"ggml_nbytes"`
	ggmlOpDesc                  func(t *cTensor) *byte                                                                         `c:"ggml_op_desc"`
	ggmlBackendTensorGet        func(t *cTensor, dst unsafe.Pointer, offset, size uint64)                                      `c:"ggml_backend_tensor_get"`
	ggmlBackendDevCount         func() uint64                                                                                  `c:"ggml_backend_dev_count"`

	// ggml
	ggmlBackendLoad            func(path string) uintptr `c:"ggml_backend_load"`
	ggmlBackendLoadAllFromPath func(dir string)          `c:"ggml_backend_load_all_from_path"`

	// llama
	llamaLogSet                     func(cb, userData uintptr)                                                                                      `c:"llama_log_set"`
	llamaBackendInit                func()                                                                                                          `c:"llama_backend_init"`
	llamaModelDefaultParams         func() modelParams                                                                                              `c:"llama_model_default_params"`
	llamaModelLoadFromFile          func(path string, p modelParams) uintptr                                                                        `c:"llama_model_load_from_file"`
	llamaModelFree                  func(model uintptr)                                                                                             `c:"llama_model_free"`
	llamaModelGetVocab              func(model uintptr) uintptr                                                                                     `c:"llama_model_get_vocab"`
	llamaModelNEmbd                 func(model uintptr) int32                                                                                       `c:"llama_model_n_embd"`
	llamaModelNLayer                func(model uintptr) int32                                                                                       `c:"llama_model_n_layer"`
	llamaModelNHead                 func(model uintptr) int32                                                                                       `c:"llama_model_n_head"`
	llamaModelNHeadKV               func(model uintptr) int32                                                                                       `c:"llama_model_n_head_kv"`
	llamaModelNCtxTrain             func(model uintptr) int32                                                                                       `c:"llama_model_n_ctx_train"`
	llamaModelNParams               func(model uintptr) uint64                                                                                      `c:"llama_model_n_params"`
	llamaModelSize                  func(model uintptr) uint64                                                                                      `c:"llama_model_size"`
	llamaModelDesc                  func(model uintptr, buf *byte, size uint64) int32                                                               `c:"llama_model_desc"`
	llamaModelMetaValStr            func(model uintptr, key string, buf *byte, size uint64) int32                                                   `c:"llama_model_meta_val_str"`
	llamaModelChatTemplate          func(model uintptr, name *byte) *byte                                                                           `c:"llama_model_chat_template"`
	llamaVocabNTokens               func(vocab uintptr) int32                                                                                       `c:"llama_vocab_n_tokens"`
	llamaVocabBOS                   func(vocab uintptr) int32                                                                                       `c:"llama_vocab_bos"`
	llamaVocabEOS                   func(vocab uintptr) int32                                                                                       `c:"llama_vocab_eos"`
	llamaVocabEOT                   func(vocab uintptr) int32                                                                                       `c:"llama_vocab_eot"`
	llamaVocabIsEOG                 func(vocab uintptr, tok int32) bool                                                                             `c:"llama_vocab_is_eog"`
	llamaTokenize                   func(vocab uintptr, text *byte, textLen int32, tokens *int32, nMax int32, addSpecial, parseSpecial bool) int32  `c:"llama_tokenize"`
	llamaTokenToPiece               func(vocab uintptr, tok int32, buf *byte, length, lstrip int32, special bool) int32                             `c:"llama_token_to_piece"`
	llamaDetokenize                 func(vocab uintptr, tokens *int32, n int32, text *byte, maxLen int32, removeSpecial, unparseSpecial bool) int32 `c:"llama_detokenize"`
	llamaContextDefaultParams       func() contextParams                                                                                            `c:"llama_context_default_params"`
	llamaInitFromModel              func(model uintptr, p contextParams) uintptr                                                                    `c:"llama_init_from_model"`
	llamaFree                       func(ctx uintptr)                                                                                               `c:"llama_free"`
	llamaNCtx                       func(ctx uintptr) uint32                                                                                        `c:"llama_n_ctx"`
	llamaBatchInit                  func(nTokens, embd, nSeqMax int32) batch                                                                        `c:"llama_batch_init"`
	llamaBatchFree                  func(b batch)                                                                                                   `c:"llama_batch_free"`
	llamaDecode                     func(ctx uintptr, b batch) int32                                                                                `c:"llama_decode"`
	llamaGetLogitsIth               func(ctx uintptr, i int32) *float32                                                                             `c:"llama_get_logits_ith"`
	llamaGetMemory                  func(ctx uintptr) uintptr                                                                                       `c:"llama_get_memory"`
	llamaMemoryClear                func(mem uintptr, data bool)                                                                                    `c:"llama_memory_clear"`
	llamaSetNThreads                func(ctx uintptr, n, nBatch int32)                                                                              `c:"llama_set_n_threads"`
	llamaPerfContext                func(ctx uintptr) perfContextData                                                                               `c:"llama_perf_context"`
	llamaPerfContextReset           func(ctx uintptr)                                                                                               `c:"llama_perf_context_reset"`
	llamaModelQuantizeDefaultParams func() quantizeParams                                                                                           `c:"llama_model_quantize_default_params"`
	llamaModelQuantize              func(in, out string, p *quantizeParams) uint32                                                                  `c:"llama_model_quantize"`
}

// register binds every field of c to its symbol, looked up in the handles
// in order. A missing symbol is an error (a different library version).
func (c *cFuncs) register(handles []uintptr) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		name := f.Tag.Get("c")
		var sym uintptr
		var lastErr error
		for _, h := range handles {
			s, err := purego.Dlsym(h, name)
			if err == nil && s != 0 {
				sym = s
				break
			}
			lastErr = err
		}
		if sym == 0 {
			return fmt.Errorf("llamacpp: symbol %s not found (not the llama.cpp release this package was written for?): %v", name, lastErr)
		}
		// The fields are unexported; reach them through their address.
		fp := reflect.NewAt(f.Type, unsafe.Pointer(v.Field(i).UnsafeAddr())).Interface()
		purego.RegisterFunc(fp, sym)
	}
	return nil
}
