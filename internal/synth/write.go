package synth

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"llamago/chat"
	"llamago/gguf"
	"llamago/quantize"
	"llamago/tensor"
)

// GeneratorVersion changes whenever the same seed, shape and scales would
// give different bytes; cache keys include it.
const GeneratorVersion = 1

// The hyper-parameters TinyLlama's GGUF files carry, which the synthetic
// files copy.
const (
	ropeBase = 10000
	rmsEps   = 1e-5
)

// Options tune Write and Cached.
type Options struct {
	// VocabPath is a GGUF file whose tokenizer.* keys are copied (the
	// shared ggml-vocab-llama-spm.gguf gives LLaMA's 32,000 tokens). It is
	// required: the vocabulary fixes the embedding and output rows.
	VocabPath string
	// Scales of the weights; the zero value means DefaultScales().
	Scales Scales
	// Threads generating and quantizing; < 1 means runtime.GOMAXPROCS(0).
	Threads int
}

func (o Options) scales() Scales {
	if o.Scales.IsZero() {
		return DefaultScales()
	}
	return o.Scales
}

func (o Options) threads() int {
	if o.Threads < 1 {
		return runtime.GOMAXPROCS(0)
	}
	return o.Threads
}

// Write writes a llama GGUF model of the given shape with deterministic
// pseudo-random weights to path (through a temporary file renamed into
// place). The weights are generated as F32 and, for any other target,
// quantized from that F32 file by package quantize, exactly as
// llama-quantize would quantize it; the F32 file is then deleted (Cached
// keeps it instead).
func Write(path string, shape Shape, target quantize.Target, seed uint64, opts Options) error {
	if target.BaseType() == tensor.F32 {
		return writeF32(path, shape, seed, opts)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".f32-*")
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath)
	if err := writeF32(tmpPath, shape, seed, opts); err != nil {
		return err
	}
	return quantizeFile(tmpPath, path, target, opts)
}

func quantizeFile(in, out string, target quantize.Target, opts Options) error {
	if err := quantize.Run(in, out, target, quantize.Options{Threads: opts.threads()}); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

// tensorSpec is one tensor to generate: rows × cols values mean + std·z.
type tensorSpec struct {
	name       string
	rows, cols int // a vector has rows 1 and is written with shape {cols}
	mean, std  float64
}

// tensorSpecs lists the tensors of a llama model in the order
// convert_hf_to_gguf.py writes them.
func tensorSpecs(s Shape, nVocab int, sc Scales) []tensorSpec {
	e, ff, kv := s.NEmbd, s.NFF, s.NKVHead*s.HeadDim()
	gain := func(g float64, fanIn int) float64 { return g / math.Sqrt(float64(fanIn)) }
	specs := []tensorSpec{{"token_embd.weight", nVocab, e, 0, sc.Embd}}
	for l := range s.NLayer {
		blk := func(n string) string { return fmt.Sprintf("blk.%d.%s.weight", l, n) }
		specs = append(specs,
			tensorSpec{blk("attn_norm"), 1, e, 1, sc.Norm},
			tensorSpec{blk("attn_q"), e, e, 0, gain(sc.QK, e)},
			tensorSpec{blk("attn_k"), kv, e, 0, gain(sc.QK, e)},
			tensorSpec{blk("attn_v"), kv, e, 0, gain(sc.V, e)},
			tensorSpec{blk("attn_output"), e, e, 0, gain(sc.AttnOut, e)},
			tensorSpec{blk("ffn_norm"), 1, e, 1, sc.Norm},
			tensorSpec{blk("ffn_gate"), ff, e, 0, gain(sc.GateUp, e)},
			tensorSpec{blk("ffn_up"), ff, e, 0, gain(sc.GateUp, e)},
			tensorSpec{blk("ffn_down"), e, ff, 0, gain(sc.Down, ff)},
		)
	}
	return append(specs,
		tensorSpec{"output_norm.weight", 1, e, 1, sc.Norm},
		tensorSpec{"output.weight", nVocab, e, 0, gain(sc.Output, e)},
	)
}

// vocabulary reads the tokenizer.* metadata of the vocabulary file.
func vocabulary(path string) ([]gguf.KV, int, error) {
	if path == "" {
		return nil, 0, errors.New("synth: no vocabulary file given (Options.VocabPath)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("synth: reading the vocabulary: %w", err)
	}
	f, err := gguf.Parse(data)
	if err != nil {
		return nil, 0, fmt.Errorf("synth: vocabulary %s: %w", path, err)
	}
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, 0, fmt.Errorf("synth: vocabulary %s: %w", path, err)
	}
	var kvs []gguf.KV
	for _, kv := range f.KV {
		// The template is TinyLlama's, set after the vocabulary.
		if strings.HasPrefix(kv.Key, "tokenizer.") && kv.Key != "tokenizer.chat_template" {
			kvs = append(kvs, kv)
		}
	}
	return kvs, len(tokens), nil
}

// writeF32 writes the F32 model, streaming one tensor at a time.
func writeF32(path string, shape Shape, seed uint64, opts Options) error {
	if err := shape.check(); err != nil {
		return err
	}
	sc := opts.scales()
	if err := sc.check(); err != nil {
		return err
	}
	vocab, nVocab, err := vocabulary(opts.VocabPath)
	if err != nil {
		return err
	}

	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("general.name", gguf.String("synthetic "+shape.String()))
	w.Set("general.description", gguf.String(fmt.Sprintf(
		"llamago synthetic model, not trained: pseudo-random weights from generator v%d, seed %d, scales %s", GeneratorVersion, seed, sc)))
	w.Set("llama.context_length", gguf.Uint32(uint32(shape.NCtx)))
	w.Set("llama.embedding_length", gguf.Uint32(uint32(shape.NEmbd)))
	w.Set("llama.block_count", gguf.Uint32(uint32(shape.NLayer)))
	w.Set("llama.feed_forward_length", gguf.Uint32(uint32(shape.NFF)))
	w.Set("llama.rope.dimension_count", gguf.Uint32(uint32(shape.HeadDim())))
	w.Set("llama.attention.head_count", gguf.Uint32(uint32(shape.NHead)))
	w.Set("llama.attention.head_count_kv", gguf.Uint32(uint32(shape.NKVHead)))
	w.Set("llama.attention.layer_norm_rms_epsilon", gguf.Float32(rmsEps))
	w.Set("llama.rope.freq_base", gguf.Float32(ropeBase))
	w.Set("general.file_type", gguf.Uint32(0)) // LLAMA_FTYPE_ALL_F32
	for _, kv := range vocab {
		w.Set(kv.Key, kv.Value)
	}
	w.Set("tokenizer.chat_template", gguf.String(chat.TinyLlamaTemplate))

	g := &generator{threads: opts.threads()}
	for _, spec := range tensorSpecs(shape, nVocab, sc) {
		tshape := []uint64{uint64(spec.cols)}
		if spec.rows > 1 {
			tshape = append(tshape, uint64(spec.rows))
		}
		key := tensorKey(seed, spec.name)
		err := w.AddTensorFunc(spec.name, tensor.F32, tshape, func(out io.Writer) error {
			return g.write(out, spec, key)
		})
		if err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	if err := w.WriteFile(path); err != nil {
		return fmt.Errorf("synth: writing %s: %w", path, err)
	}
	return nil
}

// slabBytes bounds the F32 bytes generated before they are written.
const slabBytes = 16 << 20

// generator fills tensors slab by slab on several goroutines, keeping its
// buffer between tensors.
type generator struct {
	threads int
	buf     []byte
}

func (g *generator) write(out io.Writer, spec tensorSpec, key uint64) error {
	rowBytes := 4 * spec.cols
	slabRows := max(1, min(spec.rows, slabBytes/rowBytes))
	if need := slabRows * rowBytes; len(g.buf) < need {
		g.buf = make([]byte, need)
	}
	for r0 := 0; r0 < spec.rows; r0 += slabRows {
		n := min(slabRows, spec.rows-r0)
		workers := min(g.threads, n)
		var wg sync.WaitGroup
		for wk := range workers {
			lo, hi := n*wk/workers, n*(wk+1)/workers
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := lo; r < hi; r++ {
					fillRow(g.buf[r*rowBytes:(r+1)*rowBytes], key, uint64(r0+r), spec.mean, spec.std)
				}
			}()
		}
		wg.Wait()
		if _, err := out.Write(g.buf[:n*rowBytes]); err != nil {
			return err
		}
	}
	return nil
}
