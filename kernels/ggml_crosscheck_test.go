package kernels

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/cpu"

	"llamago/internal/testenv"
	"llamago/tensor"
)

// ggmlCPU calls into one of llama.cpp's CPU backend libraries. The kernels
// claim to compute what ggml's generic (scalar) code computes, and that
// code is exported by every libggml-cpu-<variant>.so as
// ggml_vec_dot_<w>_<a>_generic and quantize_row_<a>_generic, so the test
// can compare bit for bit. The baseline x64 variant, built without SIMD,
// also gives the scalar float dot products.
type ggmlCPU struct {
	handle uintptr
	// vecDot[wt] is the vec_dot function for weight type wt:
	// void (int n, float *s, size_t bs, const void *x, size_t bx,
	//       const void *y, size_t by, int nrc)
	vecDot  map[tensor.Type]func(n int32, s *float32, bs uintptr, x unsafe.Pointer, bx uintptr, y unsafe.Pointer, by uintptr, nrc int32)
	fromFlt map[tensor.Type]func(x *float32, y unsafe.Pointer, k int64)
	symbols map[tensor.Type]string
	cpuInit func()
}

var ggmlCache sync.Map // variant -> *ggmlCPU or error

// vecDotSymbols names ggml's dot product for each weight type; suffix is
// "_generic" for the scalar reference or "" for the variant's own (SIMD)
// version.
func vecDotSymbols(suffix string) map[tensor.Type]string {
	m := map[tensor.Type]string{
		tensor.Q4_0: "ggml_vec_dot_q4_0_q8_0",
		tensor.Q4_1: "ggml_vec_dot_q4_1_q8_1",
		tensor.Q5_0: "ggml_vec_dot_q5_0_q8_0",
		tensor.Q5_1: "ggml_vec_dot_q5_1_q8_1",
		tensor.Q8_0: "ggml_vec_dot_q8_0_q8_0",
		tensor.Q2_K: "ggml_vec_dot_q2_K_q8_K",
		tensor.Q3_K: "ggml_vec_dot_q3_K_q8_K",
		tensor.Q4_K: "ggml_vec_dot_q4_K_q8_K",
		tensor.Q5_K: "ggml_vec_dot_q5_K_q8_K",
		tensor.Q6_K: "ggml_vec_dot_q6_K_q8_K",
	}
	for k, v := range m {
		m[k] = v + suffix
	}
	// The float dot products have no _generic twin.
	m[tensor.F32] = "ggml_vec_dot_f32"
	m[tensor.F16] = "ggml_vec_dot_f16"
	m[tensor.BF16] = "ggml_vec_dot_bf16"
	return m
}

// openGGMLCPU loads libggml-cpu-<variant>.so (with RTLD_LOCAL, so that two
// variants in one process keep their own symbols) and binds the functions
// the tests need.
func openGGMLCPU(t testing.TB, variant, suffix string) *ggmlCPU {
	t.Helper()
	dir := testenv.RequireLlamaCpp(t)
	key := variant + suffix
	if v, ok := ggmlCache.Load(key); ok {
		if err, bad := v.(error); bad {
			t.Fatal(err)
		}
		return v.(*ggmlCPU)
	}
	g, err := loadGGMLCPU(filepath.Join(dir, "libggml-cpu-"+variant+".so"), suffix)
	if err != nil {
		ggmlCache.Store(key, err)
		t.Fatal(err)
	}
	ggmlCache.Store(key, g)
	return g
}

func loadGGMLCPU(path, suffix string) (g *ggmlCPU, err error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("dlopen %s: %w", path, err)
	}
	defer func() {
		// RegisterLibFunc panics on a missing symbol.
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %v", path, r)
		}
	}()
	g = &ggmlCPU{
		handle:  h,
		vecDot:  map[tensor.Type]func(int32, *float32, uintptr, unsafe.Pointer, uintptr, unsafe.Pointer, uintptr, int32){},
		fromFlt: map[tensor.Type]func(*float32, unsafe.Pointer, int64){},
		symbols: vecDotSymbols(suffix),
	}
	purego.RegisterLibFunc(&g.cpuInit, h, "ggml_cpu_init")
	for wt, name := range g.symbols {
		var f func(int32, *float32, uintptr, unsafe.Pointer, uintptr, unsafe.Pointer, uintptr, int32)
		purego.RegisterLibFunc(&f, h, name)
		g.vecDot[wt] = f
	}
	from := map[tensor.Type]string{
		tensor.Q8_0: "quantize_row_q8_0" + suffix,
		tensor.Q8_1: "quantize_row_q8_1" + suffix,
		tensor.Q8_K: "quantize_row_q8_K" + suffix,
		tensor.F16:  "ggml_cpu_fp32_to_fp16",
		tensor.BF16: "ggml_cpu_fp32_to_bf16",
	}
	for vt, name := range from {
		var f func(*float32, unsafe.Pointer, int64)
		purego.RegisterLibFunc(&f, h, name)
		g.fromFlt[vt] = f
	}
	// Fills the fp16 table the scalar code reads.
	g.cpuInit()
	return g, nil
}

func (g *ggmlCPU) dot(wt tensor.Type, w, xq []byte, n int) float32 {
	var s float32
	g.vecDot[wt](int32(n), &s, 0, unsafe.Pointer(&w[0]), 0, unsafe.Pointer(&xq[0]), 0, 1)
	return s
}

func (g *ggmlCPU) quantize(vt tensor.Type, x []float32) []byte {
	dst := make([]byte, RowBytes(vt, len(x)))
	if vt == tensor.F32 {
		QuantizeRow(vt, x, dst) // ggml copies the floats
		return dst
	}
	g.fromFlt[vt](&x[0], unsafe.Pointer(&dst[0]), int64(len(x)))
	return dst
}

// TestQuantizeRowMatchesGGML compares QuantizeRow byte for byte with
// ggml's generic quantize_row_q8_K (which x86 builds use too) and its
// fp16/bf16 conversion; Q8_0 and Q8_1 follow ggml's x86 SIMD quantizers
// (TestQuantizeRowMatchesGGMLSIMD).
func TestQuantizeRowMatchesGGML(t *testing.T) {
	g := openGGMLCPU(t, "x64", "_generic")
	rng := rand.New(rand.NewPCG(21, 22))
	for _, vt := range []tensor.Type{tensor.Q8_K, tensor.F16, tensor.BF16} {
		for _, n := range []int{256, 768} {
			for name, x := range activationRows(rng, n) {
				got, want := bytesOf(t, vt, x), g.quantize(vt, x)
				if i := firstDiff(got, want); i >= 0 {
					t.Errorf("%s n=%d %s: byte %d is %#x, ggml wrote %#x", vt, n, name, i, got[i], want[i])
				}
			}
		}
	}
}

// TestDotMatchesGGMLGeneric requires the kernels to give exactly the
// float32 that ggml's scalar code gives, for random bits and for weights
// from ggml's quantizers, on every adversarial activation. The legacy
// formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) follow llama.cpp's x86 SIMD code
// instead (TestLegacyMatchGGMLX86).
func TestDotMatchesGGMLGeneric(t *testing.T) {
	g := openGGMLCPU(t, "x64", "_generic")
	rng := rand.New(rand.NewPCG(23, 24))
	for _, wt := range weightTypes {
		if followsX86[wt] || kQuantFollowsZen4[wt] || isFloatType(wt) {
			continue // the x86 and zen4 cross-checks compare these with the SIMD build
		}
		vt := VecDotType(wt)
		for _, n := range lengthsFor(wt) {
			for _, wscale := range []float32{0.02, 1} {
				w := randomWeightRow(rng, wt, n, wscale)
				for name, x := range activationRows(rng, n) {
					xq := bytesOf(t, vt, x)
					got, want := Portable().Dot(wt, w, xq, n), g.dot(wt, w, xq, n)
					if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
						t.Errorf("%s n=%d wscale=%g x=%s: Dot = %.9g (%#08x), %s = %.9g (%#08x)",
							wt, n, wscale, name, got, math.Float32bits(got), g.symbols[wt], want, math.Float32bits(want))
					}
				}
			}
		}
	}
}

// TestDotVersusGGMLSIMD measures how far the portable kernels are from
// the SIMD code llama.cpp actually runs on this CPU (the AVX2 "haswell"
// build and, where the CPU has AVX-512, the "icelake" build). They sum in
// other orders, so only closeness is required; the numbers are logged.
func TestDotVersusGGMLSIMD(t *testing.T) {
	variants := []struct {
		name string
		ok   bool
	}{
		{"haswell", cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasBMI2},
		{"icelake", cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512VNNI && cpu.X86.HasAVX512VBMI},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			if !v.ok {
				t.Skipf("this CPU cannot run libggml-cpu-%s.so", v.name)
			}
			g := openGGMLCPU(t, v.name, "")
			rng := rand.New(rand.NewPCG(25, 26))
			const n = 2048
			for _, wt := range weightTypes {
				vt := VecDotType(wt)
				var worst float64
				for trial := 0; trial < 20; trial++ {
					w := randomWeightRow(rng, wt, n, 0.05)
					x := activationRows(rng, n)["normal"]
					// ggml's SIMD quantizers may round differently; feed
					// both the same activation bytes.
					xq := bytesOf(t, vt, x)
					wf := dequantizeWeight(t, wt, w, n)
					xf := dequantizeActivation(t, vt, xq, n)
					_, mag := exactDot(wt, w, wf, xq, xf)
					got, want := float64(Portable().Dot(wt, w, xq, n)), float64(g.dot(wt, w, xq, n))
					rel := math.Abs(got-want) / mag
					worst = max(worst, rel)
					if rel > 1e-5 {
						t.Errorf("%s: Dot = %.9g, %s = %.9g", wt, got, g.symbols[wt], want)
					}
				}
				t.Logf("%-5s worst |portable - %s| / Σ|w·x| = %.2g", wt, g.symbols[wt], worst)
			}
		})
	}
}

// TestQuantizeRowMatchesGGMLSIMD requires QuantizeRow to write exactly the
// bytes of the activation quantizers llama.cpp runs on x86 (its AVX2
// "haswell" build): for Q8_0 and Q8_1 they scale by 127/amax instead of the
// reference's 1/(amax/127) and round halves to even instead of away from
// zero; Q8_K is the reference on x86.
func TestQuantizeRowMatchesGGMLSIMD(t *testing.T) {
	if !(cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasBMI2) {
		t.Skip("this CPU cannot run libggml-cpu-haswell.so")
	}
	g := openGGMLCPU(t, "haswell", "")
	rng := rand.New(rand.NewPCG(27, 28))
	// Where the scale d and the quants lie in each block (Q8_1's s, which
	// follows from the quants, is not compared).
	layouts := []struct {
		vt         tensor.Type
		dLen, qOff int
	}{
		{tensor.Q8_0, 2, 2},
		{tensor.Q8_1, 2, 4},
		{tensor.Q8_K, 4, 4},
	}
	for _, l := range layouts {
		vt := l.vt
		bs, ts := vt.BlockSize(), vt.TypeSize()
		var quants, differing int
		for trial := 0; trial < 50; trial++ {
			x := activationRows(rng, 2048)["normal"]
			got, want := bytesOf(t, vt, x), g.quantize(vt, x)
			for b := 0; b < len(x)/bs; b++ {
				gb, wb := got[b*ts:(b+1)*ts], want[b*ts:(b+1)*ts]
				if !bytes.Equal(gb[:l.dLen], wb[:l.dLen]) {
					t.Fatalf("%s block %d: scale bytes % x, ggml % x", vt, b, gb[:l.dLen], wb[:l.dLen])
				}
				for j := 0; j < bs; j++ {
					q, qg := int(int8(gb[l.qOff+j])), int(int8(wb[l.qOff+j]))
					quants++
					if q != qg {
						differing++
					}
				}
			}
		}
		if differing > 0 {
			t.Errorf("%s: %d of %d quants differ from ggml's SIMD quantizer", vt, differing, quants)
		}
	}
}
