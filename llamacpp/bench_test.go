package llamacpp

import (
	"testing"

	"llamago/tensor"
)

// The benchmarks time llama.cpp itself through the harness, to compare
// llamago's numbers with (same machine, same thread count).

func BenchmarkQuantize(b *testing.B) {
	lib := openLib(b)
	const nrows, nPerRow = 64, 4096
	src := randomRows(3, nrows*nPerRow)
	for _, typ := range []tensor.Type{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K} {
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(src)))
			for b.Loop() {
				if _, err := lib.Quantize(typ, src, nrows, nPerRow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDequantize(b *testing.B) {
	lib := openLib(b)
	const n = 64 * 4096
	src := randomRows(3, n)
	for _, typ := range []tensor.Type{tensor.Q8_0, tensor.Q4_K, tensor.F16} {
		q, err := lib.Quantize(typ, src, 64, 4096)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				if _, err := lib.Dequantize(typ, q, n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeToken is one single-token decode of stories260K with
// one thread, the cache cleared every 128 tokens.
func BenchmarkDecodeToken(b *testing.B) {
	for _, withEval := range []bool{false, true} {
		name := "plain"
		opts := ContextOptions{NCtx: 256, NBatch: 8, NThreads: 1}
		if withEval {
			// Every node goes through the eval callback and is copied.
			name = "eval-all-nodes"
			opts.Eval = func(*EvalTensor) {}
		}
		b.Run(name, func(b *testing.B) {
			lib := openLib(b)
			m, err := lib.LoadModel(stories(b), ModelOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			ctx, err := m.NewContext(opts)
			if err != nil {
				b.Fatal(err)
			}
			pos := int32(0)
			for b.Loop() {
				if pos == 128 {
					ctx.ClearMemory()
					pos = 0
				}
				if err := ctx.Decode([]int32{m.BOS()}, pos, false); err != nil {
					b.Fatal(err)
				}
				pos++
			}
		})
	}
}
