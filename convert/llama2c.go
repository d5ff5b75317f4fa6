package convert

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"strings"

	"llamago/gguf"
	"llamago/tensor"
)

// llama2.c's "ak42" magic, as the little-endian uint32 its export.py
// writes at the start of version 1 and 2 checkpoints.
const llama2cMagic = 0x616b3432

// llama2cConfig is a checkpoint's header.
type llama2cConfig struct {
	version    int // 0 (legacy, no magic) or 1
	dim        int
	hiddenDim  int
	nLayers    int
	nHeads     int
	nKVHeads   int
	vocabSize  int
	seqLen     int
	shared     bool  // the classifier is the token embedding
	headerSize int64 // bytes before the first weight
}

// Bounds on header fields: far beyond any real model, small enough that
// products of a few of them cannot overflow before they are checked.
const (
	maxDim    = 1 << 20
	maxLayers = 1 << 12
	maxVocab  = 1 << 24
	maxSeqLen = 1 << 24
)

// parseLlama2CHeader reads the header from the start of a checkpoint of
// fileSize bytes.
func parseLlama2CHeader(r io.ReaderAt, fileSize int64) (llama2cConfig, error) {
	var c llama2cConfig
	var head [256]byte
	n, err := r.ReadAt(head[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("reading header: %w", err)
	}
	if n < 28 {
		return c, fmt.Errorf("file is %d bytes, too short for a llama2.c header (28 bytes)", fileSize)
	}
	i32 := func(off int) int { return int(int32(binary.LittleEndian.Uint32(head[off:]))) }
	params := head[:28]
	if binary.LittleEndian.Uint32(head[:]) == llama2cMagic {
		c.version = i32(4)
		switch c.version {
		case 1:
		case 2:
			return c, errors.New("llama2.c version 2 checkpoints (int8, group-quantized) are not supported: export the model with --version 0 or 1")
		default:
			return c, fmt.Errorf("unknown llama2.c checkpoint version %d after the ak42 magic (only 0 and 1 are supported)", c.version)
		}
		if n < 256 {
			return c, fmt.Errorf("file is %d bytes, too short for a version 1 header (256 bytes)", fileSize)
		}
		params = head[8:36]
		c.shared = head[36] != 0
		c.headerSize = 256
	} else {
		c.headerSize = 28
	}
	p := func(k int) int { return int(int32(binary.LittleEndian.Uint32(params[4*k:]))) }
	c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKVHeads, c.vocabSize, c.seqLen = p(0), p(1), p(2), p(3), p(4), p(5), p(6)
	if c.version == 0 {
		// The legacy format flags an unshared classifier by a negative
		// vocabulary size.
		c.shared = c.vocabSize > 0
		if c.vocabSize < 0 {
			c.vocabSize = -c.vocabSize
		}
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	if want := c.fileSize(); want != fileSize {
		return c, fmt.Errorf("file is %d bytes but its header (%s) implies %d: truncated, or not a llama2.c version %d checkpoint", fileSize, c, want, c.version)
	}
	return c, nil
}

func (c llama2cConfig) String() string {
	return fmt.Sprintf("dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d, seq_len %d, shared classifier %t",
		c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKVHeads, c.vocabSize, c.seqLen, c.shared)
}

func (c llama2cConfig) validate() error {
	fields := []struct {
		name     string
		val, max int
	}{
		{"dim", c.dim, maxDim}, {"hidden_dim", c.hiddenDim, maxDim}, {"n_layers", c.nLayers, maxLayers},
		{"n_heads", c.nHeads, maxDim}, {"n_kv_heads", c.nKVHeads, maxDim}, {"vocab_size", c.vocabSize, maxVocab},
		{"seq_len", c.seqLen, maxSeqLen},
	}
	for _, f := range fields {
		if f.val <= 0 || f.val > f.max {
			return fmt.Errorf("header field %s = %d is out of range (1..%d): not a llama2.c checkpoint, or a corrupt one", f.name, f.val, f.max)
		}
	}
	if c.dim%c.nHeads != 0 {
		return fmt.Errorf("dim %d is not a multiple of n_heads %d", c.dim, c.nHeads)
	}
	if c.nKVHeads > c.nHeads || c.nHeads%c.nKVHeads != 0 {
		return fmt.Errorf("n_heads %d is not a multiple of n_kv_heads %d", c.nHeads, c.nKVHeads)
	}
	if c.headSize()%2 != 0 {
		return fmt.Errorf("head size %d is odd: RoPE rotates pairs", c.headSize())
	}
	return nil
}

func (c llama2cConfig) headSize() int { return c.dim / c.nHeads }
func (c llama2cConfig) kvDim() int    { return c.dim / c.nHeads * c.nKVHeads }

// llama2cArray is one of the float32 arrays of a checkpoint: per-layer
// arrays hold n_layers slices of perLayer elements each.
type llama2cArray struct {
	name     string
	layers   int // 1 for global arrays
	perLayer uint64
	offset   int64 // bytes from the start of the file
}

func (a llama2cArray) bytes() uint64 { return uint64(a.layers) * a.perLayer * 4 }

// arrays lists the checkpoint's arrays in file order with their offsets.
// The sizes cannot overflow: validate bounds every factor.
func (c llama2cConfig) arrays() []llama2cArray {
	d, h, v, l := uint64(c.dim), uint64(c.hiddenDim), uint64(c.vocabSize), c.nLayers
	kv := uint64(c.kvDim())
	freq := uint64(c.seqLen) * uint64(c.headSize()) / 2
	var list []llama2cArray
	add := func(name string, layers int, perLayer uint64) {
		list = append(list, llama2cArray{name: name, layers: layers, perLayer: perLayer})
	}
	if c.version == 0 {
		// run.c's order, with the unused RoPE tables before the classifier.
		add("token_embedding_table", 1, v*d)
		add("rms_att_weight", l, d)
		add("wq", l, d*d)
		add("wk", l, d*kv)
		add("wv", l, d*kv)
		add("wo", l, d*d)
		add("rms_ffn_weight", l, d)
		add("w1", l, h*d)
		add("w2", l, d*h)
		add("w3", l, h*d)
		add("rms_final_weight", 1, d)
		add("freq_cis_real", 1, freq)
		add("freq_cis_imag", 1, freq)
	} else {
		// export.py's version1_export: norms first, no RoPE tables.
		add("rms_att_weight", l, d)
		add("rms_ffn_weight", l, d)
		add("rms_final_weight", 1, d)
		add("token_embedding_table", 1, v*d)
		add("wq", l, d*d)
		add("wk", l, d*kv)
		add("wv", l, d*kv)
		add("wo", l, d*d)
		add("w1", l, h*d)
		add("w2", l, d*h)
		add("w3", l, h*d)
	}
	if !c.shared {
		add("wcls", 1, v*d)
	}
	off := c.headerSize
	for i := range list {
		list[i].offset = off
		off += int64(list[i].bytes())
	}
	return list
}

// fileSize is the size a checkpoint with this header has, or -1 when it
// does not fit in an int64.
func (c llama2cConfig) fileSize() int64 {
	total := uint64(c.headerSize)
	for _, a := range c.arrays() {
		var carry uint64
		total, carry = bits.Add64(total, a.bytes(), 0)
		if carry != 0 || total > math.MaxInt64 {
			return -1
		}
	}
	return int64(total)
}

// llama.cpp's token types (enum llama_token_type), as GGUF stores them.
const (
	tokenNormal      = 1
	tokenUnknown     = 2
	tokenControl     = 3
	tokenUserDefined = 4
	tokenUnused      = 5
	tokenByte        = 6
)

// vocab is a tokenizer's tokens as GGUF stores them.
type vocab struct {
	tokens []string
	scores []float32
	types  []int32
}

// maxTokenizerFile bounds the llama2.c tokenizer file read into memory
// (llama2.c's own 32000-token tokenizer.bin is 424 KB).
const maxTokenizerFile = 256 << 20

// readLlama2CTokenizer reads a llama2.c tokenizer file: a uint32 maximum
// token length, then for each of nVocab tokens a float32 score, an int32
// length and that many bytes.
func readLlama2CTokenizer(path string, nVocab int) (vocab, error) {
	var v vocab
	st, err := os.Stat(path)
	if err != nil {
		return v, err
	}
	if st.Size() > maxTokenizerFile {
		return v, fmt.Errorf("tokenizer %s is %d bytes, more than a llama2.c tokenizer can be (%d)", path, st.Size(), maxTokenizerFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return v, err
	}
	return parseLlama2CTokenizer(data, nVocab)
}

func parseLlama2CTokenizer(data []byte, nVocab int) (vocab, error) {
	var v vocab
	if len(data) < 4 {
		return v, fmt.Errorf("tokenizer is %d bytes, too short for its header", len(data))
	}
	// Each token takes at least 8 bytes, which bounds nVocab before the
	// slices are allocated.
	if uint64(nVocab)*8 > uint64(len(data)-4) {
		return v, fmt.Errorf("tokenizer is %d bytes, too short for the checkpoint's %d tokens", len(data), nVocab)
	}
	off := 4
	v.tokens = make([]string, nVocab)
	v.scores = make([]float32, nVocab)
	v.types = make([]int32, nVocab)
	for id := 0; id < nVocab; id++ {
		if len(data)-off < 8 {
			return v, fmt.Errorf("tokenizer ends inside token %d of %d", id, nVocab)
		}
		score := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		n := int32(binary.LittleEndian.Uint32(data[off+4:]))
		off += 8
		if n < 0 || int64(n) > int64(len(data)-off) {
			return v, fmt.Errorf("token %d has length %d, but %d bytes are left in the tokenizer", id, n, len(data)-off)
		}
		text := string(data[off : off+int(n)])
		off += int(n)
		v.tokens[id], v.types[id] = llama2cToken(id, text)
		v.scores[id] = score
	}
	if off != len(data) {
		return v, fmt.Errorf("tokenizer has %d bytes after the checkpoint's %d tokens: it belongs to a model with a larger vocabulary", len(data)-off, nVocab)
	}
	return v, nil
}

// llama2cToken gives a token's text and type as llama.cpp's llama2.c
// converter does: ids 0, 1, 2 are <unk>, <s>, </s> whatever the file says
// (llama2.c's files say "\n<s>\n"), an empty token is a control token,
// "<0x..>" tokens are bytes, and spaces become SentencePiece's "▁".
func llama2cToken(id int, text string) (string, int32) {
	switch {
	case id == 0:
		return "<unk>", tokenUnknown
	case id == 1:
		return "<s>", tokenControl
	case id == 2:
		return "</s>", tokenControl
	case text == "":
		return text, tokenControl
	case isByteTokenPrefix(text):
		return strings.ReplaceAll(text, " ", "▁"), tokenByte
	}
	return strings.ReplaceAll(text, " ", "▁"), tokenNormal
}

// isByteTokenPrefix reports whether text starts like "<0xAB>": llama.cpp
// tests it with sscanf("<0x%02hhX>"), which needs "<0x" and a hex digit.
func isByteTokenPrefix(text string) bool {
	if !strings.HasPrefix(text, "<0x") || len(text) < 4 {
		return false
	}
	c := text[3]
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// Llama2C converts a llama2.c checkpoint (legacy version 0, or version 1)
// and its tokenizer to a GGUF file. llama2.c's run.c rotates adjacent
// pairs of each head, as GGUF's (non-NeoX) llama RoPE does, so the query
// and key weights are written as they are, without permutation.
func Llama2C(ckptPath, tokenizerPath, outPath string, opts Options) error {
	f, err := os.Open(ckptPath)
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("convert: %w", err)
	}
	cfg, err := parseLlama2CHeader(f, st.Size())
	if err != nil {
		return fmt.Errorf("convert: llama2.c checkpoint %s: %w", ckptPath, err)
	}
	voc, err := readLlama2CTokenizer(tokenizerPath, cfg.vocabSize)
	if err != nil {
		return fmt.Errorf("convert: llama2.c tokenizer %s: %w", tokenizerPath, err)
	}
	return buildLlama2C(f, cfg, voc, opts, ckptPath).write(outPath)
}

// buildLlama2C lays out the GGUF file: metadata as llama.cpp's converter
// writes it (in its order), then the tensors in its order.
func buildLlama2C(r io.ReaderAt, cfg llama2cConfig, voc vocab, opts Options, ckptPath string) *ggufFile {
	outType := opts.OutType
	if outType == OutAuto {
		outType = OutF32
	}
	name := opts.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(ckptPath), filepath.Ext(ckptPath))
	}
	ctxLen := cfg.seqLen
	if opts.ContextLength > 0 {
		ctxLen = opts.ContextLength
	}
	// llama.cpp's converter writes no separator or padding token as
	// LLAMA_TOKEN_NULL (-1) stored in a uint32.
	const noToken = math.MaxUint32

	out := &ggufFile{}
	out.set("tokenizer.ggml.tokens", gguf.Strings(voc.tokens))
	out.set("tokenizer.ggml.scores", gguf.Float32s(voc.scores))
	out.set("tokenizer.ggml.token_type", gguf.Int32s(voc.types))
	out.set("tokenizer.ggml.model", gguf.String("llama"))
	out.set("general.architecture", gguf.String("llama"))
	out.set("general.name", gguf.String(name))
	out.set("tokenizer.ggml.unknown_token_id", gguf.Uint32(0))
	out.set("tokenizer.ggml.bos_token_id", gguf.Uint32(1))
	out.set("tokenizer.ggml.eos_token_id", gguf.Uint32(2))
	out.set("tokenizer.ggml.seperator_token_id", gguf.Uint32(noToken))
	out.set("tokenizer.ggml.padding_token_id", gguf.Uint32(noToken))
	out.set("llama.context_length", gguf.Uint32(uint32(ctxLen)))
	out.set("llama.embedding_length", gguf.Uint32(uint32(cfg.dim)))
	out.set("llama.feed_forward_length", gguf.Uint32(uint32(cfg.hiddenDim)))
	out.set("llama.attention.head_count", gguf.Uint32(uint32(cfg.nHeads)))
	out.set("llama.attention.head_count_kv", gguf.Uint32(uint32(cfg.nKVHeads)))
	out.set("llama.block_count", gguf.Uint32(uint32(cfg.nLayers)))
	// run.c rotates whole heads. (llama.cpp's converter caps this at 64,
	// which no llama2.c model exceeds.)
	out.set("llama.rope.dimension_count", gguf.Uint32(uint32(cfg.headSize())))
	// llama2.c's rmsnorm hard-codes 1e-5.
	out.set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(1e-5))
	out.set("general.file_type", gguf.Uint32(fileType(outType)))
	out.set("general.quantization_version", gguf.Uint32(2))

	arrays := map[string]llama2cArray{}
	for _, a := range cfg.arrays() {
		arrays[a.name] = a
	}
	d, h, v := uint64(cfg.dim), uint64(cfg.hiddenDim), uint64(cfg.vocabSize)
	kv := uint64(cfg.kvDim())
	// Each tensor is one layer's slice of one array, read when written.
	add := func(name, array string, layer int, shape ...uint64) {
		a := arrays[array]
		off := a.offset + int64(layer)*int64(a.perLayer*4)
		out.addTensor(name, shape, outType, func() (srcTensor, error) {
			data := make([]byte, a.perLayer*4)
			if _, err := r.ReadAt(data, off); err != nil {
				return srcTensor{}, fmt.Errorf("reading %s: %w", array, err)
			}
			return srcTensor{typ: tensor.F32, shape: shape, data: data}, nil
		})
	}
	classifier := "wcls"
	if cfg.shared {
		// Written as a copy, as llama.cpp's converter does.
		classifier = "token_embedding_table"
	}
	add("token_embd.weight", "token_embedding_table", 0, d, v)
	add("output_norm.weight", "rms_final_weight", 0, d)
	add("output.weight", classifier, 0, d, v)
	for i := 0; i < cfg.nLayers; i++ {
		blk := func(s string) string { return fmt.Sprintf("blk.%d.%s.weight", i, s) }
		layer := []struct {
			name, array string
			shape       []uint64
		}{
			{blk("attn_q"), "wq", []uint64{d, d}},
			{blk("attn_k"), "wk", []uint64{d, kv}},
			{blk("attn_v"), "wv", []uint64{d, kv}},
			{blk("attn_output"), "wo", []uint64{d, d}},
			{blk("attn_norm"), "rms_att_weight", []uint64{d}},
			{blk("ffn_gate"), "w1", []uint64{d, h}},
			{blk("ffn_down"), "w2", []uint64{h, d}},
			{blk("ffn_up"), "w3", []uint64{d, h}},
			{blk("ffn_norm"), "rms_ffn_weight", []uint64{d}},
		}
		for _, t := range layer {
			add(t.name, t.array, i, t.shape...)
		}
	}
	return out
}
