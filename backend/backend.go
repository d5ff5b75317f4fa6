// Package backend defines the operations the llama forward pass is written
// against. The model code (package model) is written once; the CPU backend,
// the float64 oracle and the CUDA backend each implement these operations.
//
// Axis order is row-major with tokens as rows: an activation matrix of
// shape (rows, cols) holds one token per row. Weight matrices keep GGUF's
// storage: a PyTorch [out, in] matrix is stored with ne[0] = in, so a weight
// has Rows() = out and Cols() = in, and MatMul computes dst = x · Wᵀ.
//
// Operations do not return errors: every shape is fixed when the model is
// bound and checked there. A shape mismatch inside an operation is a bug in
// llamago; operations panic with a *ShapeError, which the model's Forward
// recovers into an error naming the operation and both shapes.
package backend

import (
	"fmt"

	"llamago/tensor"
)

// Mat is an activation matrix owned by a backend: Rows() tokens of Cols()
// values each. Its contents are reached through Backend.Read and Write.
type Mat interface {
	Rows() int
	Cols() int
}

// Weight is a weight tensor bound to a backend, in its file format where
// the backend can compute on that format directly.
type Weight interface {
	// Name is the GGUF tensor name, for error messages.
	Name() string
	Type() tensor.Type
	// Rows is the number of output features (ne[1]), Cols the number of
	// input features (ne[0]). A 1-D tensor (a norm weight) has Rows 1.
	Rows() int
	Cols() int
}

// WeightSpec describes a tensor to bind: its bytes stay owned by the
// caller (usually a read-only memory map) and must outlive the backend.
type WeightSpec struct {
	Name string
	Type tensor.Type
	Rows int // ne[1], 1 for vectors
	Cols int // ne[0]
	Data []byte
}

// RoPEParams are the rotary position embedding's parameters.
type RoPEParams struct {
	Heads    int     // heads in the matrix (query or key/value heads)
	HeadDim  int     // values per head
	Dims     int     // rotated values per head (rope.dimension_count), <= HeadDim
	FreqBase float32 // theta base, 10000 for Llama 2
	// FreqScale multiplies the position (linear RoPE scaling: 1/factor).
	FreqScale float32
	// NeoX selects the half-split pairing (i, i+Dims/2) used by GPT-NeoX
	// style checkpoints; false is GGUF llama's adjacent pairs (2i, 2i+1).
	NeoX bool
}

// AttnParams describe grouped-query attention over the KV cache.
type AttnParams struct {
	Heads   int     // query heads
	KVHeads int     // key/value heads; Heads is a multiple of it
	HeadDim int     // values per head
	Scale   float32 // usually 1/sqrt(HeadDim)
}

// KVConfig sizes a KV cache: Slots independent sequences of up to Ctx
// positions, Layers layers of KVDim values (KV heads × head dim) per position.
type KVConfig struct {
	Slots  int
	Layers int
	Ctx    int
	KVDim  int
	// F32 keeps keys and values in float32; otherwise they are rounded to
	// F16 as in llama.cpp's default cache, and attention rounds its query
	// and probabilities to F16 too, as ggml's F16 products do.
	F32 bool
}

// KVCache holds the keys and values of every layer for every slot.
type KVCache interface {
	Config() KVConfig
}

// Batch names, for each row of an activation matrix, its sequence slot in
// the KV cache and its position in that sequence. Rows of one slot must
// come in increasing position order.
type Batch struct {
	Slot []int32
	Pos  []int32
}

// Len is the number of rows in the batch.
func (b Batch) Len() int { return len(b.Pos) }

// Backend computes the llama forward pass's operations.
type Backend interface {
	// Name is a short identifier such as "cpu" or "oracle".
	Name() string
	// LoadWeight binds a tensor. It fails for types the backend cannot
	// compute with, naming the tensor and the type.
	LoadWeight(spec WeightSpec) (Weight, error)
	// NewMat allocates an activation matrix, zeroed.
	NewMat(rows, cols int) Mat
	// View is the first rows rows of m, sharing its storage.
	View(m Mat, rows int) Mat
	// Read copies m to dst (len rows*cols, row-major) as float32.
	Read(m Mat, dst []float32)
	// Write copies src (len rows*cols) into m.
	Write(m Mat, src []float32)
	// NewKVCache allocates a zeroed cache.
	NewKVCache(cfg KVConfig) KVCache
	// Close releases what the backend holds.
	Close() error

	// GetRows sets dst's row r to row ids[r] of table (dequantized).
	GetRows(dst Mat, table Weight, ids []int32)
	// CopyRows sets dst's row i to src's row rows[i].
	CopyRows(dst, src Mat, rows []int32)
	// RMSNorm sets each row of dst to x/rms(x)·w with rms(x) = sqrt(mean(x²)+eps).
	RMSNorm(dst, x Mat, w Weight, eps float32)
	// MatMul sets dst = x · wᵀ: (rows, w.Rows) from (rows, w.Cols).
	MatMul(dst, x Mat, w Weight)
	// Add sets dst = a + b, element-wise; dst may be a or b.
	Add(dst, a, b Mat)
	// SwiGLU sets dst = silu(gate) ⊙ up; dst may be gate or up.
	SwiGLU(dst, gate, up Mat)
	// RoPE rotates x in place; row r is at position pos[r].
	RoPE(x Mat, pos []int32, p RoPEParams)
	// StoreKV writes row r of k and v at position b.Pos[r] of slot
	// b.Slot[r] in layer's cache.
	StoreKV(c KVCache, layer int, b Batch, k, v Mat)
	// Attention sets dst's row r to causal softmax attention of q's row r
	// over positions 0..b.Pos[r] of slot b.Slot[r] of layer's cache.
	// When scores or probs is not nil (shape rows × Heads·n, with n at
	// least max(Pos)+1), row r receives the scaled scores q·k (before the
	// softmax) and the probabilities of each head over its n positions,
	// head after head, positions past b.Pos[r] zero.
	Attention(dst, q Mat, c KVCache, layer int, b Batch, p AttnParams, scores, probs Mat)
}

// ArgMaxer is a backend that finds greedy sampling's pick in each row of
// a logits matrix where the logits are, so that a few bytes a row come
// back instead of the row (NVocab floats). It is optional: the model reads
// the logits and applies FindPick itself on other backends.
type ArgMaxer interface {
	// ArgMax sets dst[r] to FindPick of m's row r, bit for bit
	// (the NaN or +Inf logit included); len(dst) must be m.Rows(). Like
	// Read, it waits for the operations before it.
	ArgMax(m Mat, dst []Pick)
}

// HostAllocator is a backend whose Read fills some host memory faster
// than the rest: page-locked memory that a GPU copies into directly,
// where other memory takes a copy through a staging buffer. It is
// optional; the model keeps its logits buffer there when the backend has
// it, so that decode's logits cross once.
type HostAllocator interface {
	// HostFloats returns n zeroed float32s of such memory, or nil when it
	// has none to give for n (the caller then makes its own). The memory
	// belongs to the backend and is freed by Close.
	HostFloats(n int) []float32
}

// ShapeError reports operands whose shapes do not fit an operation.
type ShapeError struct {
	Op     string
	Detail string
}

func (e *ShapeError) Error() string { return "backend: " + e.Op + ": " + e.Detail }

// ShapeFail panics with a *ShapeError. Backends call it at the top of an
// operation whose operands do not fit, as
//
//	if !(x.Cols() == w.Cols()) {
//		backend.ShapeFail("MatMul", "x %s · w %s", backend.Shape(x), ...)
//	}
//
// so that the message is built only when it is needed: operations run
// hundreds of times per token.
func ShapeFail(op, format string, args ...any) {
	panic(&ShapeError{Op: op, Detail: fmt.Sprintf(format, args...)})
}

// Shape formats a matrix's shape for errors.
func Shape(m Mat) string { return fmt.Sprintf("(%d, %d)", m.Rows(), m.Cols()) }
