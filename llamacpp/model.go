package llamacpp

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
)

// ModelOptions tunes LoadModel. The zero value is what the harness wants:
// weights on the CPU, memory-mapped.
type ModelOptions struct {
	// NoMmap reads the weights into memory instead of mapping the file.
	NoMmap bool
	// VocabOnly loads only the vocabulary (for tokenizer checks).
	VocabOnly bool
	// CheckTensors makes llama.cpp validate tensor data while loading.
	CheckTensors bool
}

// Model is a model loaded by llama.cpp. Close frees it together with its
// contexts; no other method may be called after Close (they would pass
// llama.cpp a freed pointer), except Close and NewContext, which fails.
type Model struct {
	lib   *Lib
	path  string
	ptr   uintptr // struct llama_model *
	vocab uintptr // const struct llama_vocab *

	mu       sync.Mutex
	contexts map[*Context]bool
}

// llama_load_mode values of this release (enum llama_load_mode).
const (
	loadModeMmap = 1 // LLAMA_LOAD_MODE_MMAP
	loadModeNone = 0 // LLAMA_LOAD_MODE_NONE: read into memory
)

// LoadModel loads a GGUF model with all layers on the CPU.
func (l *Lib) LoadModel(path string, opts ModelOptions) (*Model, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("llamacpp: load model: %w", err)
	}
	p := l.c.llamaModelDefaultParams()
	p.NGPULayers = 0
	p.LoadMode = loadModeMmap
	if opts.NoMmap {
		p.LoadMode = loadModeNone
	}
	p.VocabOnly = opts.VocabOnly
	p.CheckTensors = opts.CheckTensors
	ptr := l.c.llamaModelLoadFromFile(path, p)
	if ptr == 0 {
		return nil, fmt.Errorf("llamacpp: llama.cpp could not load %s: %s", path, l.log.tail(6))
	}
	return &Model{lib: l, path: path, ptr: ptr, vocab: l.c.llamaModelGetVocab(ptr), contexts: map[*Context]bool{}}, nil
}

// Close frees the model and any context still open on it. It is safe to
// call twice.
func (m *Model) Close() {
	m.mu.Lock()
	ctxs := make([]*Context, 0, len(m.contexts))
	for c := range m.contexts {
		ctxs = append(ctxs, c)
	}
	m.mu.Unlock()
	for _, c := range ctxs {
		c.Close()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ptr != 0 {
		m.lib.c.llamaModelFree(m.ptr)
		m.ptr, m.vocab = 0, 0
	}
}

var errClosed = errors.New("llamacpp: model is closed")

// Path is the file the model was loaded from.
func (m *Model) Path() string { return m.path }

// NVocab is the number of tokens in the vocabulary.
func (m *Model) NVocab() int { return int(m.lib.c.llamaVocabNTokens(m.vocab)) }

// BOS, EOS and EOT are the special token ids (-1 when the model has none).
func (m *Model) BOS() int32 { return m.lib.c.llamaVocabBOS(m.vocab) }

// EOS is the end-of-sequence token id (-1 when none).
func (m *Model) EOS() int32 { return m.lib.c.llamaVocabEOS(m.vocab) }

// EOT is the end-of-turn token id (-1 when none).
func (m *Model) EOT() int32 { return m.lib.c.llamaVocabEOT(m.vocab) }

// IsEOG reports whether id ends generation (EOS, EOT and the like).
func (m *Model) IsEOG(id int32) bool { return m.lib.c.llamaVocabIsEOG(m.vocab, id) }

// NEmbd is the embedding width.
func (m *Model) NEmbd() int { return int(m.lib.c.llamaModelNEmbd(m.ptr)) }

// NLayer is the number of transformer blocks.
func (m *Model) NLayer() int { return int(m.lib.c.llamaModelNLayer(m.ptr)) }

// NHead is the number of attention heads.
func (m *Model) NHead() int { return int(m.lib.c.llamaModelNHead(m.ptr)) }

// NHeadKV is the number of key/value heads.
func (m *Model) NHeadKV() int { return int(m.lib.c.llamaModelNHeadKV(m.ptr)) }

// NCtxTrain is the context length the model was trained with.
func (m *Model) NCtxTrain() int { return int(m.lib.c.llamaModelNCtxTrain(m.ptr)) }

// NParams is the number of weights.
func (m *Model) NParams() uint64 { return m.lib.c.llamaModelNParams(m.ptr) }

// Size is the bytes taken by all tensors.
func (m *Model) Size() uint64 { return m.lib.c.llamaModelSize(m.ptr) }

// Desc is llama.cpp's one-line description ("llama ?B Q8_0").
func (m *Model) Desc() string {
	return m.sizedString(func(buf *byte, size uint64) int32 { return m.lib.c.llamaModelDesc(m.ptr, buf, size) })
}

// Meta returns the value of a GGUF metadata key as text (arrays are not
// rendered by llama.cpp), and whether the key exists.
func (m *Model) Meta(key string) (string, bool) {
	var n int32
	s := m.sizedString(func(buf *byte, size uint64) int32 {
		n = m.lib.c.llamaModelMetaValStr(m.ptr, key, buf, size)
		return n
	})
	return s, n >= 0
}

// ChatTemplate is the model's default chat template ("" when it has none).
func (m *Model) ChatTemplate() string {
	return cString(m.lib.c.llamaModelChatTemplate(m.ptr, nil))
}

// sizedString calls a snprintf-like C function (returns the full length,
// writes at most size bytes with a NUL), growing the buffer when needed.
func (m *Model) sizedString(call func(buf *byte, size uint64) int32) string {
	buf := make([]byte, 256)
	for {
		n := call(&buf[0], uint64(len(buf)))
		if n < 0 {
			return ""
		}
		if int(n) < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, int(n)+1)
	}
}

// Tokenize converts text to token ids. addSpecial adds BOS/EOS as the model
// asks; parseSpecial lets text name special tokens ("<s>").
func (m *Model) Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error) {
	if m.vocab == 0 {
		return nil, errClosed
	}
	if len(text) > math.MaxInt32-1 {
		return nil, fmt.Errorf("llamacpp: tokenize: text of %d bytes is too long", len(text))
	}
	// A copy with a trailing NUL: llama.cpp reads text_len bytes, and the
	// buffer is never empty, so &b[0] is valid even for "".
	b := make([]byte, len(text)+1)
	copy(b, text)
	// Most tokens span several bytes; when the guess is short, llama.cpp
	// says how many it needs.
	tokens := make([]int32, len(text)/2+8)
	for range 2 {
		n := m.lib.c.llamaTokenize(m.vocab, &b[0], int32(len(text)), &tokens[0], int32(len(tokens)), addSpecial, parseSpecial)
		if n == math.MinInt32 {
			return nil, errors.New("llamacpp: tokenize: result overflows int32")
		}
		if n >= 0 {
			return tokens[:n], nil
		}
		// A negative count is the size the result needs.
		tokens = make([]int32, -n)
	}
	return nil, errors.New("llamacpp: tokenize: llama.cpp asked for more room twice")
}

// TokenToPiece is the text of one token. special renders special tokens
// ("</s>"); otherwise they give "".
func (m *Model) TokenToPiece(id int32, special bool) string {
	buf := make([]byte, 64)
	for range 2 {
		n := m.lib.c.llamaTokenToPiece(m.vocab, id, &buf[0], int32(len(buf)), 0, special)
		if n >= 0 {
			return string(buf[:n])
		}
		buf = make([]byte, -n)
	}
	return ""
}

// Detokenize converts token ids back to text. removeSpecial drops the
// BOS/EOS the model adds; unparseSpecial renders special tokens as text.
func (m *Model) Detokenize(ids []int32, removeSpecial, unparseSpecial bool) string {
	if len(ids) == 0 {
		return ""
	}
	buf := make([]byte, len(ids)*8+16)
	for range 2 {
		n := m.lib.c.llamaDetokenize(m.vocab, &ids[0], int32(len(ids)), &buf[0], int32(len(buf)), removeSpecial, unparseSpecial)
		if n >= 0 {
			return string(buf[:n])
		}
		buf = make([]byte, -n)
	}
	return ""
}

// Common llama_ftype values for QuantizeModel (enum llama_ftype).
const (
	FTypeAllF32    = 0
	FTypeMostlyF16 = 1
	FTypeQ4_0      = 2
	FTypeQ4_1      = 3
	FTypeQ8_0      = 7
	FTypeQ5_0      = 8
	FTypeQ5_1      = 9
	FTypeQ2_K      = 10
	FTypeQ3_K_S    = 11
	FTypeQ3_K_M    = 12
	FTypeQ3_K_L    = 13
	FTypeQ4_K_S    = 14
	FTypeQ4_K_M    = 15
	FTypeQ5_K_S    = 16
	FTypeQ5_K_M    = 17
	FTypeQ6_K      = 18
	FTypeBF16      = 32
)

// QuantizeModel writes in, quantized to ftype (a llama_ftype such as
// FTypeQ4_K_M), to out, as llama-quantize does without an importance
// matrix. nThreads <= 0 uses all cores.
func (l *Lib) QuantizeModel(in, out string, ftype int, nThreads int) error {
	if _, err := os.Stat(in); err != nil {
		return fmt.Errorf("llamacpp: quantize model: %w", err)
	}
	if strings.TrimSpace(out) == "" {
		return errors.New("llamacpp: quantize model: no output path")
	}
	p := l.c.llamaModelQuantizeDefaultParams()
	p.FType = int32(ftype)
	p.NThread = int32(nThreads)
	if rc := l.c.llamaModelQuantize(in, out, &p); rc != 0 {
		return fmt.Errorf("llamacpp: quantizing %s to ftype %d failed (code %d): %s", in, ftype, rc, l.log.tail(6))
	}
	return nil
}
