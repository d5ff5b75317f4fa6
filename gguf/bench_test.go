package gguf_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"llamago/gguf"
	"llamago/internal/testenv"
	"llamago/tensor"
)

// tinyLlamaFile writes a file shaped like TinyLlama 1.1B in F16 (201
// tensors, 32000 tokens, about 2.2 GB) whose data section is a hole: the
// metadata is written and the file extended with Truncate.
func tinyLlamaFile(b *testing.B) string {
	const (
		nEmbd, nFF, nKV, nLayer, nVocab = 2048, 5632, 256, 22, 32000
	)
	w := gguf.NewWriter()
	w.Set("general.architecture", gguf.String("llama"))
	w.Set("llama.block_count", gguf.Uint32(nLayer))
	w.Set("llama.embedding_length", gguf.Uint32(nEmbd))
	tokens := make([]string, nVocab)
	scores := make([]float32, nVocab)
	types := make([]int32, nVocab)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("▁tok%d", i)
		scores[i] = -float32(i)
		types[i] = 1
	}
	w.Set("tokenizer.ggml.tokens", gguf.Strings(tokens))
	w.Set("tokenizer.ggml.scores", gguf.Float32s(scores))
	w.Set("tokenizer.ggml.token_type", gguf.Int32s(types))

	var dataSize uint64
	add := func(name string, shape ...uint64) {
		size, err := gguf.TensorSize(tensor.F16, shape)
		if err != nil {
			b.Fatal(err)
		}
		// Only the metadata is written, so the data is never asked for.
		noData := func(io.Writer) error { return errors.New("not written") }
		if err := w.AddTensorFunc(name, tensor.F16, shape, noData); err != nil {
			b.Fatal(err)
		}
		dataSize += (size + 31) &^ 31
	}
	add("token_embd.weight", nEmbd, nVocab)
	add("output_norm.weight", nEmbd)
	add("output.weight", nEmbd, nVocab)
	for i := range nLayer {
		add(fmt.Sprintf("blk.%d.attn_norm.weight", i), nEmbd)
		add(fmt.Sprintf("blk.%d.attn_q.weight", i), nEmbd, nEmbd)
		add(fmt.Sprintf("blk.%d.attn_k.weight", i), nEmbd, nKV)
		add(fmt.Sprintf("blk.%d.attn_v.weight", i), nEmbd, nKV)
		add(fmt.Sprintf("blk.%d.attn_output.weight", i), nEmbd, nEmbd)
		add(fmt.Sprintf("blk.%d.ffn_norm.weight", i), nEmbd)
		add(fmt.Sprintf("blk.%d.ffn_gate.weight", i), nEmbd, nFF)
		add(fmt.Sprintf("blk.%d.ffn_up.weight", i), nEmbd, nFF)
		add(fmt.Sprintf("blk.%d.ffn_down.weight", i), nFF, nEmbd)
	}

	path := filepath.Join(b.TempDir(), "tinyllama-f16.gguf")
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	n, err := w.WriteMetadataTo(out)
	if err != nil {
		b.Fatal(err)
	}
	if err := out.Truncate(n + int64(dataSize)); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkOpenMetadata opens a 2.2 GB model and reads its metadata; the
// tensor data is mapped, never read or copied.
func BenchmarkOpenMetadata(b *testing.B) {
	path := tinyLlamaFile(b)
	b.ResetTimer()
	for b.Loop() {
		f, err := gguf.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		tokens, err := f.Strings("tokenizer.ggml.tokens")
		if err != nil || len(tokens) != 32000 || len(f.Tensors) != 201 {
			b.Fatalf("%d tokens, %d tensors, %v", len(tokens), len(f.Tensors), err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	st, _ := os.Stat(path)
	b.ReportMetric(float64(st.Size())/1e9, "GB")
}

// BenchmarkOpenVocab opens the 32000-token Llama vocabulary (723 KB).
func BenchmarkOpenVocab(b *testing.B) {
	path := testenv.Path(b, testenv.LlamaSPMVocab)
	for b.Loop() {
		f, err := gguf.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
