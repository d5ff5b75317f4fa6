package quantize

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// benchModel is a 6-layer, 768-wide model (about 36M weights, 144 MB in
// F32) for timing Run against llama.cpp.
func benchModel(b *testing.B) string {
	b.Helper()
	c := modelConfig{arch: "llama", nLayer: 6, nEmbd: 768, nFF: 2048, nHead: 12, nHeadKV: 4, seed: 3, noVocab: true}
	return buildModel(b, b.TempDir(), c)
}

// benchTargets times quantize on benchModel for a few targets, with 2
// threads and with one per CPU; MB/s are of F32 input.
func benchTargets(b *testing.B, quantize func(in, out string, target Target, threads int)) {
	in := benchModel(b)
	st, err := os.Stat(in)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"q8_0", "q4_0", "q4_k_m", "q6_k"} {
		target := mustTarget(b, name)
		for _, threads := range []int{2, runtime.NumCPU()} {
			b.Run(fmt.Sprintf("%s/threads=%d", name, threads), func(b *testing.B) {
				out := filepath.Join(b.TempDir(), "out.gguf")
				b.SetBytes(st.Size())
				for b.Loop() {
					quantize(in, out, target, threads)
				}
			})
		}
	}
}

func BenchmarkRun(b *testing.B) {
	benchTargets(b, func(in, out string, target Target, threads int) {
		if err := Run(in, out, target, Options{Threads: threads}); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkLlamaCpp times llama.cpp's llama_model_quantize on the same
// input.
func BenchmarkLlamaCpp(b *testing.B) {
	lib := openLlamaCpp(b)
	benchTargets(b, func(in, out string, target Target, threads int) {
		llamaCppQuantizeThreads(b, lib, in, out, target, false, threads)
	})
}
