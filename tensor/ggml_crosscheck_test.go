package tensor_test

// Cross-checks against ggml itself (libggml-base of the pinned llama.cpp
// build, loaded through package llamacpp): every supported type, both
// directions, byte for byte and bit for bit.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ebitengine/purego"

	"llamago/internal/testenv"
	"llamago/llamacpp"
	"llamago/tensor"
)

// crossTypes are the types compared; Q8_K goes through q8KRef because
// ggml_quantize_chunk and the base type traits lack it.
var crossTypes = []tensor.Type{
	tensor.F32, tensor.F16, tensor.BF16,
	tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0,
	tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_K,
}

// ggmlRef is ggml's reference conversions for every crossTypes entry.
type ggmlRef struct {
	lib *llamacpp.Lib
	// Q8_K's functions, bound straight from libggml-base.
	quantizeQ8K   func(x *float32, y *byte, k int64)
	dequantizeQ8K func(x *byte, y *float32, k int64)
}

var (
	refOnce sync.Once
	refVal  *ggmlRef
	refErr  error
)

// openRef loads ggml once per test binary, or stops the test through
// testenv when the libraries are missing.
func openRef(t testing.TB) *ggmlRef {
	t.Helper()
	dir := testenv.RequireLlamaCpp(t)
	refOnce.Do(func() {
		lib, err := llamacpp.Open(dir)
		if err != nil {
			refErr = err
			return
		}
		// Already mapped by llamacpp.Open: dlopen just returns its handle.
		h, err := purego.Dlopen(filepath.Join(dir, "libggml-base.so"), purego.RTLD_NOW|purego.RTLD_GLOBAL)
		if err != nil {
			refErr = fmt.Errorf("dlopen libggml-base: %w", err)
			return
		}
		r := &ggmlRef{lib: lib}
		purego.RegisterLibFunc(&r.quantizeQ8K, h, "quantize_row_q8_K_ref")
		purego.RegisterLibFunc(&r.dequantizeQ8K, h, "dequantize_row_q8_K")
		refVal = r
	})
	if refErr != nil {
		t.Fatal(refErr)
	}
	return refVal
}

func (r *ggmlRef) quantize(t tensor.Type, src []float32, nrows, nPerRow int) ([]byte, error) {
	if t != tensor.Q8_K {
		return r.lib.Quantize(t, src, nrows, nPerRow)
	}
	// Zeroed output: ggml leaves bsums untouched for an all-zero block.
	dst := make([]byte, len(src)/tensor.QK_K*tensor.Q8_K.TypeSize())
	if len(src) > 0 {
		r.quantizeQ8K(&src[0], &dst[0], int64(len(src)))
	}
	return dst, nil
}

func (r *ggmlRef) dequantize(t tensor.Type, src []byte, n int) ([]float32, error) {
	if t != tensor.Q8_K {
		return r.lib.Dequantize(t, src, n)
	}
	dst := make([]float32, n)
	if n > 0 {
		r.dequantizeQ8K(&src[0], &dst[0], int64(n))
	}
	return dst, nil
}

// ---- inputs

// row is one named quantizer input of nrows rows of nPerRow values.
type row struct {
	name           string
	nrows, nPerRow int
	x              []float32
}

// blocksOf makes a single row of nb blocks of type t filled by f(i).
func blocksOf(t tensor.Type, name string, nb int, f func(i int) float32) row {
	n := nb * t.BlockSize()
	if t.BlockSize() == 1 {
		n = nb * 32 // plain types: use 32-value "blocks"
	}
	x := make([]float32, n)
	for i := range x {
		x[i] = f(i)
	}
	return row{name, 1, n, x}
}

// inputs returns the quantizer inputs for type t: random rows of several
// distributions, scales and shapes, and hand-made awkward ones.
func inputs(t tensor.Type) []row {
	var rows []row
	bs := t.BlockSize()
	if bs == 1 {
		bs = 32
	}
	for seed := uint64(1); seed <= 3; seed++ {
		r := rand.New(rand.NewPCG(seed, uint64(t)))
		for _, scale := range []float64{1e-3, 1, 100} {
			for _, nb := range []int{1, 2, 7} {
				rows = append(rows,
					blocksOf(t, fmt.Sprintf("normal/seed%d/scale%g/%dblocks", seed, scale, nb), nb,
						func(int) float32 { return float32(r.NormFloat64() * scale) }),
					blocksOf(t, fmt.Sprintf("uniform/seed%d/scale%g/%dblocks", seed, scale, nb), nb,
						func(int) float32 { return float32((2*r.Float64() - 1) * scale) }),
				)
			}
		}
		// Many blocks, so that rarely taken branches of the k-quant scale
		// searches get exercised: the fifth refinement pass of
		// make_q3_quants changes about one block in a hundred of uniform
		// or near-integer data.
		rows = append(rows,
			blocksOf(t, fmt.Sprintf("normal-many/seed%d", seed), 64, func(int) float32 { return float32(r.NormFloat64()) }),
			blocksOf(t, fmt.Sprintf("uniform-many/seed%d", seed), 256, func(int) float32 { return float32(2*r.Float64() - 1) }),
			blocksOf(t, fmt.Sprintf("cubed-normal-many/seed%d", seed), 64, func(int) float32 { return float32(math.Pow(r.NormFloat64(), 3)) }),
			blocksOf(t, fmt.Sprintf("near-integers-many/seed%d", seed), 256, func(int) float32 {
				return float32(r.IntN(9)-4) + float32(r.NormFloat64()*0.3)
			}),
		)
		// Several rows at once, quantized in one ggml_quantize_chunk call.
		for _, shape := range [][2]int{{3, 2 * bs}, {4, 5 * bs}} {
			x := make([]float32, shape[0]*shape[1])
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			rows = append(rows, row{fmt.Sprintf("rows%dx%d/seed%d", shape[0], shape[1], seed), shape[0], shape[1], x})
		}
		// Weight-like data: mostly small with heavy tails.
		rows = append(rows, blocksOf(t, fmt.Sprintf("heavytail/seed%d", seed), 4, func(int) float32 {
			v := r.NormFloat64() * 0.02
			if r.IntN(50) == 0 {
				v *= 40
			}
			return float32(v)
		}))
		// Positive only and negative only (the min/offset paths).
		rows = append(rows,
			blocksOf(t, fmt.Sprintf("positive/seed%d", seed), 2, func(int) float32 { return float32(r.Float64() + 0.5) }),
			blocksOf(t, fmt.Sprintf("negative/seed%d", seed), 2, func(int) float32 { return float32(-r.Float64() - 0.5) }),
			// Sparse: most values exactly zero.
			blocksOf(t, fmt.Sprintf("sparse/seed%d", seed), 2, func(int) float32 {
				if r.IntN(8) != 0 {
					return 0
				}
				return float32(r.NormFloat64())
			}),
		)
	}

	r := rand.New(rand.NewPCG(99, uint64(t)))
	sign := func() float32 {
		if r.IntN(2) == 0 {
			return -1
		}
		return 1
	}
	adversarial := []struct {
		name string
		f    func(i int) float32
	}{
		{"zeros", func(int) float32 { return 0 }},
		{"negzeros", func(int) float32 { return float32(math.Copysign(0, -1)) }},
		{"const+", func(int) float32 { return 3.5 }},
		{"const-", func(int) float32 { return -2.25 }},
		{"const-tiny", func(int) float32 { return 1e-20 }},
		{"huge1e30", func(int) float32 { return sign() * float32(r.Float64()) * 1e30 }},
		{"huge-const", func(int) float32 { return 1e30 }},
		{"near-max", func(int) float32 { return sign() * float32(3e38+r.Float64()*0.4e38) }},
		{"max-and-min", func(i int) float32 { return float32(math.MaxFloat32) * float32(1-2*(i%2)) }},
		{"fp16-edge", func(i int) float32 { return sign() * float32(65504+float64(i%40)) }},
		{"tiny1e-30", func(int) float32 { return sign() * float32(r.Float64()) * 1e-30 }},
		{"tiny1e-10", func(int) float32 { return sign() * float32(r.Float64()) * 1e-10 }},
		{"subnormal", func(int) float32 { return sign() * math.Float32frombits(uint32(r.IntN(0x7fffff)+1)) }},
		{"fp16-subnormal", func(int) float32 { return sign() * float32(r.Float64()) * 6e-5 }},
		{"outlier", func(i int) float32 {
			if i%bs == 7 {
				return 1000
			}
			return float32(r.NormFloat64() * 1e-3)
		}},
		{"neg-outlier", func(i int) float32 {
			if i%bs == 3 {
				return -500
			}
			return float32(r.NormFloat64() * 1e-2)
		}},
		{"alternating", func(i int) float32 { return float32(1 - 2*(i%2)) }},
		{"alternating-ramp", func(i int) float32 { return float32(1-2*(i%2)) * float32(i%bs+1) }},
		{"ramp", func(i int) float32 { return float32(i%bs) * 0.01 }},
		{"integers", func(i int) float32 { return float32(i%17 - 8) }},
		{"halves", func(i int) float32 { return float32(i%33-16) * 0.5 }},
		{"one-nonzero", func(i int) float32 {
			if i == bs+5 {
				return -1.5
			}
			return 0
		}},
		{"two-levels", func(i int) float32 {
			if i%3 == 0 {
				return 1
			}
			return -1
		}},
		{"mixed-magnitudes", func(i int) float32 {
			return sign() * float32(math.Pow(10, float64(i%bs%13-6)))
		}},
	}
	for _, a := range adversarial {
		for _, nb := range []int{1, 2, 7} {
			rows = append(rows, blocksOf(t, fmt.Sprintf("%s/%dblocks", a.name, nb), nb, a.f))
		}
	}
	// Blocks of wildly different scale side by side.
	rows = append(rows, blocksOf(t, "scale-per-block", 6, func(i int) float32 {
		return float32(r.NormFloat64() * math.Pow(10, float64(i/bs)*3-6))
	}))
	return rows
}

// ---- comparison helpers

// firstByteDiff describes where two encodings first differ, by block.
func firstByteDiff(t tensor.Type, got, want []byte) string {
	ts := t.TypeSize()
	for i := range got {
		if got[i] != want[i] {
			blk := i / ts
			lo, hi := blk*ts, min((blk+1)*ts, len(got))
			return fmt.Sprintf("block %d byte %d: got %02x want %02x\n got block  %x\n want block %x",
				blk, i-lo, got[i], want[i], got[lo:hi], want[lo:hi])
		}
	}
	return "equal"
}

// compareFloats fails unless got and want are the same float32 bit
// patterns.
func compareFloats(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Errorf("%s: value %d is %g (%08x), ggml has %g (%08x)", what, i,
				got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
			return
		}
	}
}

// ---- tests

func TestGGMLQuantize(t *testing.T) {
	ref := openRef(t)
	for _, typ := range crossTypes {
		t.Run(typ.String(), func(t *testing.T) {
			failures := 0
			for _, in := range inputs(typ) {
				want, err := ref.quantize(typ, in.x, in.nrows, in.nPerRow)
				if err != nil {
					t.Fatalf("%s: ggml: %v", in.name, err)
				}
				got := make([]byte, len(want))
				if err := tensor.Quantize(typ, in.x, got); err != nil {
					t.Fatalf("%s: %v", in.name, err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s (%d rows x %d): %s", in.name, in.nrows, in.nPerRow, firstByteDiff(typ, got, want))
					if failures++; failures > 5 {
						t.Fatal("too many differences")
					}
					continue
				}
				// And back: ggml's bytes decode the same with both.
				wantF, err := ref.dequantize(typ, want, len(in.x))
				if err != nil {
					t.Fatalf("%s: ggml dequantize: %v", in.name, err)
				}
				gotF := make([]float32, len(in.x))
				if err := tensor.Dequantize(typ, want, gotF); err != nil {
					t.Fatalf("%s: %v", in.name, err)
				}
				compareFloats(t, in.name+" round trip", gotF, wantF)
			}
		})
	}
}

// scaleFields lists the byte offsets, within a block, of each type's fp16
// scale fields (F16 and BF16: the element itself).
var scaleFields = map[tensor.Type][]int{
	tensor.F16: {0}, tensor.BF16: {0},
	tensor.Q4_0: {0}, tensor.Q4_1: {0, 2}, tensor.Q5_0: {0}, tensor.Q5_1: {0, 2}, tensor.Q8_0: {0},
	tensor.Q2_K: {80, 82}, tensor.Q3_K: {108}, tensor.Q4_K: {0, 2}, tensor.Q5_K: {0, 2}, tensor.Q6_K: {208},
}

// finiteRandomBlocks returns nb random blocks of t whose scale fields hold
// finite values, so every decoded value is a finite number.
func finiteRandomBlocks(r *rand.Rand, t tensor.Type, nb int) []byte {
	ts := t.TypeSize()
	b := make([]byte, nb*ts)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	for blk := 0; blk < nb; blk++ {
		p := b[blk*ts:]
		switch t {
		case tensor.F32:
			v := float32(r.NormFloat64() * math.Pow(10, float64(r.IntN(20)-10)))
			binary.LittleEndian.PutUint32(p, math.Float32bits(v))
		case tensor.Q8_K:
			binary.LittleEndian.PutUint32(p, math.Float32bits(float32(r.NormFloat64())))
		case tensor.BF16:
			h := binary.LittleEndian.Uint16(p)
			if h&0x7f80 == 0x7f80 { // all-ones exponent: clear one bit
				h &^= 0x0080
			}
			binary.LittleEndian.PutUint16(p, h)
		default:
			for _, off := range scaleFields[t] {
				// Clearing the top exponent bit makes the value finite;
				// half the time do it anyway to keep magnitudes moderate.
				h := binary.LittleEndian.Uint16(p[off:])
				if h&0x7c00 == 0x7c00 || r.IntN(2) == 0 {
					h &^= 0x4000
				}
				binary.LittleEndian.PutUint16(p[off:], h)
			}
		}
	}
	return b
}

func TestGGMLDequantize(t *testing.T) {
	ref := openRef(t)
	for _, typ := range crossTypes {
		t.Run(typ.String(), func(t *testing.T) {
			bs, ts := typ.BlockSize(), typ.TypeSize()
			r := rand.New(rand.NewPCG(7, uint64(typ)))
			for trial := 0; trial < 20; trial++ {
				nb := []int{1, 2, 7, 64}[trial%4]
				if bs == 1 {
					nb *= 256
				}
				// Blocks with finite scales: exact equality of bits.
				src := finiteRandomBlocks(r, typ, nb)
				want, err := ref.dequantize(typ, src, nb*bs)
				if err != nil {
					t.Fatal(err)
				}
				got := make([]float32, nb*bs)
				if err := tensor.Dequantize(typ, src, got); err != nil {
					t.Fatal(err)
				}
				compareFloats(t, fmt.Sprintf("finite trial %d", trial), got, want)

				// Raw random bytes: infinities and NaNs appear, and still
				// every bit matches (NaN payloads included: both sides run
				// the same SSE arithmetic).
				raw := make([]byte, nb*ts)
				for i := range raw {
					raw[i] = byte(r.Uint32())
				}
				want, err = ref.dequantize(typ, raw, nb*bs)
				if err != nil {
					t.Fatal(err)
				}
				if err := tensor.Dequantize(typ, raw, got); err != nil {
					t.Fatal(err)
				}
				compareFloats(t, fmt.Sprintf("raw trial %d", trial), got, want)
			}
		})
	}
}

// TestGGMLHalfAll compares the conversions of all 65536 fp16 and bf16
// values with ggml, bit for bit (NaN payloads included).
func TestGGMLHalfAll(t *testing.T) {
	ref := openRef(t)
	src := make([]byte, 2*65536)
	for h := 0; h < 65536; h++ {
		binary.LittleEndian.PutUint16(src[2*h:], uint16(h))
	}
	for _, typ := range []tensor.Type{tensor.F16, tensor.BF16} {
		want, err := ref.dequantize(typ, src, 65536)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, 65536)
		if err := tensor.Dequantize(typ, src, got); err != nil {
			t.Fatal(err)
		}
		compareFloats(t, typ.String()+" to float32", got, want)
	}
	for _, h := range []uint16{0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xfe01} {
		if got, want := tensor.FP16ToFloat32(h), ref.lib.FP16ToFP32(h); math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("FP16ToFloat32(%04x) = %08x, ggml_fp16_to_fp32 %08x", h, math.Float32bits(got), math.Float32bits(want))
		}
		if got, want := tensor.BF16ToFloat32(h), ref.lib.BF16ToFP32(h); math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("BF16ToFloat32(%04x) = %08x, ggml_bf16_to_fp32 %08x", h, math.Float32bits(got), math.Float32bits(want))
		}
	}
}

// halfProbes are float32 bit patterns around every place fp16 and bf16
// rounding can go wrong: each half value, the midpoints between
// neighbours and one ulp either side of them, plus random patterns
// (NaNs, infinities and subnormals included).
func halfProbes() []float32 {
	var xs []float32
	add := func(b uint32) { xs = append(xs, math.Float32frombits(b)) }
	for h := 0; h < 0x7c00; h++ {
		lo := math.Float32bits(tensor.FP16ToFloat32(uint16(h)))
		hi := math.Float32bits(tensor.FP16ToFloat32(uint16(h + 1)))
		mid := math.Float32bits((math.Float32frombits(lo) + math.Float32frombits(hi)) / 2)
		for _, s := range []uint32{0, 1 << 31} {
			add(s | lo)
			add(s | mid)
			add(s | (mid - 1))
			add(s | (mid + 1))
		}
	}
	for b := uint32(0); b < 1<<16; b++ { // bf16 neighbourhoods: low halves 0x7fff, 0x8000, 0x8001
		add(b<<16 | 0x7fff)
		add(b<<16 | 0x8000)
		add(b<<16 | 0x8001)
	}
	r := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < 200000; i++ {
		add(r.Uint32())
	}
	return xs
}

func TestGGMLHalfQuantize(t *testing.T) {
	ref := openRef(t)
	xs := halfProbes()
	for _, typ := range []tensor.Type{tensor.F16, tensor.BF16} {
		want, err := ref.quantize(typ, xs, 1, len(xs))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if err := tensor.Quantize(typ, xs, got); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(xs); i++ {
			g, w := binary.LittleEndian.Uint16(got[2*i:]), binary.LittleEndian.Uint16(want[2*i:])
			if g != w {
				t.Errorf("%s of %g (%08x): %04x, ggml %04x", typ, xs[i], math.Float32bits(xs[i]), g, w)
				break
			}
		}
	}
	// The single-value entry points agree too.
	for _, x := range xs[:2000] {
		if got, want := tensor.Float32ToFP16(x), ref.lib.FP32ToFP16(x); got != want {
			t.Fatalf("Float32ToFP16(%08x) = %04x, ggml %04x", math.Float32bits(x), got, want)
		}
		if got, want := tensor.Float32ToBF16(x), ref.lib.FP32ToBF16(x); got != want {
			t.Fatalf("Float32ToBF16(%08x) = %04x, ggml %04x", math.Float32bits(x), got, want)
		}
	}
}

// TestGGMLHalfExhaustive converts every float32 bit pattern to fp16 and
// bf16 with both implementations, on all CPUs. It takes minutes on a small
// machine, so it runs only with LLAMAGO_EXHAUSTIVE=1.
func TestGGMLHalfExhaustive(t *testing.T) {
	if os.Getenv("LLAMAGO_EXHAUSTIVE") != "1" {
		t.Skip("set LLAMAGO_EXHAUSTIVE=1 to run")
	}
	ref := openRef(t)
	const chunk = 1 << 20
	for _, typ := range []tensor.Type{tensor.F16, tensor.BF16} {
		var (
			next   atomic.Uint64 // next chunk's first bit pattern
			failed atomic.Bool
			wg     sync.WaitGroup
		)
		for w := 0; w < runtime.GOMAXPROCS(0); w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				xs := make([]float32, chunk)
				got := make([]byte, 2*chunk)
				for !failed.Load() {
					base := next.Add(chunk) - chunk
					if base >= 1<<32 {
						return
					}
					for i := range xs {
						xs[i] = math.Float32frombits(uint32(base) + uint32(i))
					}
					want, err := ref.quantize(typ, xs, 1, chunk)
					if err == nil {
						err = tensor.Quantize(typ, xs, got)
					}
					if err != nil {
						t.Error(err)
						failed.Store(true)
						return
					}
					if bytes.Equal(got, want) {
						continue
					}
					for i := 0; i < chunk; i++ {
						if got[2*i] != want[2*i] || got[2*i+1] != want[2*i+1] {
							t.Errorf("%s of %08x: %04x, ggml %04x", typ, uint32(base)+uint32(i),
								binary.LittleEndian.Uint16(got[2*i:]), binary.LittleEndian.Uint16(want[2*i:]))
							failed.Store(true)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	}
}

// TestGGMLNonFinite feeds NaN and infinities, which ggml does not promise
// anything about; we still reproduce whatever its reference code does.
func TestGGMLNonFinite(t *testing.T) {
	ref := openRef(t)
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))}
	for _, typ := range crossTypes {
		t.Run(typ.String(), func(t *testing.T) {
			bs := typ.BlockSize()
			if bs == 1 {
				bs = 32
			}
			r := rand.New(rand.NewPCG(11, uint64(typ)))
			for trial := 0; trial < 12; trial++ {
				x := make([]float32, 2*bs)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				for k := 0; k <= trial%4; k++ {
					x[r.IntN(len(x))] = specials[(trial+k)%len(specials)]
				}
				if trial >= 9 { // a block entirely of one special value
					for i := 0; i < bs; i++ {
						x[i] = specials[trial-9]
					}
				}
				want, err := ref.quantize(typ, x, 1, len(x))
				if err != nil {
					t.Fatal(err)
				}
				got := make([]byte, len(want))
				if err := tensor.Quantize(typ, x, got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("trial %d: %s", trial, firstByteDiff(typ, got, want))
				}
			}
		})
	}
}

// FuzzGGMLQuantize quantizes fuzzer-chosen values (one block of 256, from
// the input's bytes read as float32) with both implementations.
func FuzzGGMLQuantize(f *testing.F) {
	f.Add(uint8(0), bytes.Repeat([]byte{0, 0, 0x80, 0x3f}, 256))
	f.Add(uint8(9), bytes.Repeat([]byte{1, 0, 0, 0}, 256))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		ref := openRef(t)
		typ := crossTypes[int(which)%len(crossTypes)]
		x := make([]float32, tensor.QK_K)
		for i := range x {
			var b [4]byte
			copy(b[:], data[min(4*i, len(data)):])
			x[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[:]))
		}
		want, err := ref.quantize(typ, x, 1, len(x))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if err := tensor.Quantize(typ, x, got); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(x, func(v float32) bool { return v != v }) {
			// A block with NaNs: which NaN payload
			// a product or sum of them keeps depends on the order of its
			// operands, which GCC fixes in ggml but Go's compiler does not
			// (the fuzzing build, instrumented, orders some the other way
			// than the test build), and the k-quants round such values
			// through their bits. Quantizing must still not fail.
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: %s", typ, firstByteDiff(typ, got, want))
		}
	})
}

// BenchmarkGGMLDequantize and BenchmarkGGMLQuantize time ggml's own
// reference code on the same matrix as BenchmarkDequantize and
// BenchmarkQuantize, for comparison (single-threaded, plus one purego
// call per op).
func BenchmarkGGMLDequantize(b *testing.B) {
	ref := openRef(b)
	x := benchMatrix()
	for _, typ := range crossTypes {
		b.Run(typ.String(), func(b *testing.B) {
			q, err := ref.quantize(typ, x, 64, 4096)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(4 * len(x)))
			b.ResetTimer()
			for b.Loop() {
				if _, err := ref.dequantize(typ, q, len(x)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
		})
	}
}

func BenchmarkGGMLQuantize(b *testing.B) {
	ref := openRef(b)
	x := benchMatrix()
	for _, typ := range crossTypes {
		b.Run(typ.String(), func(b *testing.B) {
			b.SetBytes(int64(4 * len(x)))
			for b.Loop() {
				if _, err := ref.quantize(typ, x, 64, 4096); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Melem/s")
		})
	}
}
