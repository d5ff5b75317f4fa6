package llamacpp

// Go mirrors of the C structs passed by value or read in place, written
// field by field from include/llama.h and ggml/include/ggml.h of the
// llama.cpp release that node-llama-cpp 3.21.1 ships. purego does not align
// fields, so every C padding gap is an explicit blank field; the tests
// assert the sizes the headers give.

// modelParams is struct llama_model_params (80 bytes).
type modelParams struct {
	Devices                  uintptr // ggml_backend_dev_t *
	TensorBuftOverrides      uintptr // const struct llama_model_tensor_buft_override *
	NGPULayers               int32
	SplitMode                int32 // enum llama_split_mode
	LoadMode                 int32 // enum llama_load_mode
	LazyMode                 int32 // enum llama_lazy_mode
	MainGPU                  int32
	_                        [4]byte
	TensorSplit              uintptr // const float *
	ProgressCallback         uintptr
	ProgressCallbackUserData uintptr
	KVOverrides              uintptr // const struct llama_model_kv_override *
	VocabOnly                bool
	CheckTensors             bool
	UseExtraBufts            bool
	NoHost                   bool
	NoAlloc                  bool
	LoadMTP                  bool
	_                        [2]byte
}

// contextParams is struct llama_context_params (160 bytes).
type contextParams struct {
	NCtx              uint32
	NBatch            uint32
	NUBatch           uint32
	NSeqMax           uint32
	NRsSeq            uint32
	NOutputsMax       uint32
	NOutputsMaxPerSeq uint32
	NThreads          int32
	NThreadsBatch     int32
	CtxType           int32 // enum llama_context_type
	RopeScalingType   int32 // enum llama_rope_scaling_type
	PoolingType       int32 // enum llama_pooling_type
	AttentionType     int32 // enum llama_attention_type
	FlashAttnType     int32 // enum llama_flash_attn_type
	RopeFreqBase      float32
	RopeFreqScale     float32
	YarnExtFactor     float32
	YarnAttnFactor    float32
	YarnBetaFast      float32
	YarnBetaSlow      float32
	YarnOrigCtx       uint32
	DefragThold       float32
	CbEval            uintptr // ggml_backend_sched_eval_callback
	CbEvalUserData    uintptr
	TypeK             int32 // enum ggml_type
	TypeV             int32
	AbortCallback     uintptr
	AbortCallbackData uintptr
	Embeddings        bool
	OffloadKQV        bool
	NoPerf            bool
	OpOffload         bool
	SwaFull           bool
	KVUnified         bool
	_                 [2]byte
	Samplers          uintptr // struct llama_sampler_seq_config *
	NSamplers         uint64
	CtxOther          uintptr // struct llama_context *
}

// batch is struct llama_batch (56 bytes). Its arrays are C memory from
// llama_batch_init.
type batch struct {
	NTokens int32
	_       [4]byte
	Token   *int32
	Embd    *float32
	Pos     *int32
	NSeqID  *int32
	SeqID   **int32
	Logits  *int8
}

// quantizeParams is llama_model_quantize_params (64 bytes).
type quantizeParams struct {
	NThread              int32
	FType                int32 // enum llama_ftype
	OutputTensorType     int32 // enum ggml_type
	TokenEmbeddingType   int32 // enum ggml_type
	AllowRequantize      bool
	QuantizeOutputTensor bool
	OnlyCopy             bool
	Pure                 bool
	KeepSplit            bool
	DryRun               bool
	_                    [2]byte
	Imatrix              uintptr
	KVOverrides          uintptr
	TTOverrides          uintptr
	PruneLayers          uintptr
	MaxBufSize           uint64
}

// perfContextData is struct llama_perf_context_data (48 bytes).
type perfContextData struct {
	TStartMs float64
	TLoadMs  float64
	TPEvalMs float64
	TEvalMs  float64
	NPEval   int32
	NEval    int32
	NReused  int32
	_        [4]byte
}

// typeTraits is struct ggml_type_traits (56 bytes); only read in place.
type typeTraits struct {
	TypeName           *byte
	BlckSize           int64
	BlckSizeInterleave int64
	TypeSize           uint64
	IsQuantized        bool
	_                  [7]byte
	ToFloat            uintptr // ggml_to_float_t: void (*)(const void *, float *, int64_t)
	FromFloatRef       uintptr
}

// Sizes of ggml.h's fixed arrays in struct ggml_tensor.
const (
	ggmlMaxDims     = 4
	ggmlMaxSrc      = 10
	ggmlMaxOpParams = 64
	ggmlMaxName     = 64
)

// cTensor is struct ggml_tensor (336 bytes); only read in place, inside
// the eval callback.
type cTensor struct {
	Type     int32 // enum ggml_type
	_        [4]byte
	Buffer   uintptr
	Ne       [ggmlMaxDims]int64
	Nb       [ggmlMaxDims]uint64
	Op       int32 // enum ggml_op
	OpParams [ggmlMaxOpParams / 4]int32
	Flags    int32
	Src      [ggmlMaxSrc]*cTensor
	ViewSrc  *cTensor
	ViewOffs uint64
	Data     uintptr
	Name     [ggmlMaxName]byte
	Extra    uintptr
	Padding  [8]byte
}
