package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/cpu"

	"llamago/tensor"
)

// The products of the legacy formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) must
// give exactly the float32 bits that llama.cpp's x86 builds give
// (dot_legacy.go says which code that is), so these tests call that code
// in llama.cpp's own CPU libraries:
//
//   - Q8_0 and Q5_0, one token: ggml_vec_dot_q8_0_q8_0 / _q5_0_q8_0
//     (arch/x86/quants.c); several tokens: llamafile_sgemm, which runs
//     tinyBLAS_Q0_AVX;
//   - Q4_1 and Q5_1: their vec_dot for every output (no sgemm, no repack);
//   - Q4_0: the repacked q4_0_8x8 gemv (one token) and gemm (several),
//     exported as the C++ templates ggml::cpu::repack::gemv/gemm, on
//     weights repacked here into block_q4_0x8 (repackQ4_0x8), with
//     activations quantized by ggml: quantize_row_q8_0 for the gemv,
//     ggml_quantize_mat_t<8, Q8_0> (four tokens interleaved) for the gemm.
//
// Our side quantizes the same float activations with QuantizeRow, so a
// quantizer that rounded one value differently would show too.
//
// For these types llama.cpp's one-token and several-token paths compute
// the same bits per output (vec_dot and tinyBLAS add alike, so do the
// gemv and the gemm), so a product does not depend on whether it is
// computed in a prompt batch or a decode step, in llama.cpp or here; the
// test checks both paths against every set's MatMulRows and Dot, and
// TestSetsMatMulRows and TestTilesMatchDot hold MatMulRows to Dot for any
// grouping of rows and tokens.

// x86Variants are the libggml-cpu-<variant>.so builds these tests call,
// the one llama.cpp's loader picks on a Zen 4 first; each runs where the
// CPU has what its build assumes.
var x86Variants = []struct {
	name string
	ok   func() bool
}{
	{"zen4", func() bool {
		x := cpu.X86
		return x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX512CD &&
			x.HasAVX512VNNI && x.HasAVX512BF16 && x.HasAVX512VBMI && x.HasAVX512IFMA
	}},
	{"icelake", func() bool {
		x := cpu.X86
		return x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512VNNI && x.HasAVX512VBMI
	}},
	{"haswell", func() bool { return cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasBMI2 && cpu.X86.HasF16C }},
}

// ggmlMatMul holds the matrix-product entry points of one x86 build.
type ggmlMatMul struct {
	*ggmlCPU
	// bool llamafile_sgemm(const struct ggml_compute_params *, int64_t m,
	//   int64_t n, int64_t k, const void *A, int64_t lda, const void *B,
	//   int64_t ldb, void *C, int64_t ldc, int Atype, int Btype, int Ctype)
	sgemm func(params unsafe.Pointer, m, n, k int64, a unsafe.Pointer, lda int64, b unsafe.Pointer, ldb int64, c unsafe.Pointer, ldc int64, at, bt, ct int32) bool
	// void gemv/gemm(int n, float *s, size_t bs, const void *vx,
	//   const void *vy, int nr, int nc)
	gemvQ4_0, gemmQ4_0 func(n int32, s *float32, bs uintptr, vx, vy unsafe.Pointer, nr, nc int32)
	// void ggml_quantize_mat_t<8, GGML_TYPE_Q8_0>(const float *x, void *vy,
	//   int64_t nrow, int64_t n_per_row)
	quantizeMat func(x *float32, vy unsafe.Pointer, nrow, nPerRow int64)
}

// ggmlComputeParams mirrors struct ggml_compute_params (ggml-cpu-impl.h);
// tinyBLAS_Q0_AVX reads only ith and nth.
type ggmlComputeParams struct {
	ith, nth   int32
	wsize      uintptr
	wdata      unsafe.Pointer
	threadpool unsafe.Pointer
	useRef     bool
}

func openGGMLMatMul(t testing.TB, variant string) *ggmlMatMul {
	t.Helper()
	g := &ggmlMatMul{ggmlCPU: openGGMLCPU(t, variant, "")}
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil { // RegisterLibFunc panics on a missing symbol
				err = fmt.Errorf("libggml-cpu-%s.so: %v", variant, r)
			}
		}()
		purego.RegisterLibFunc(&g.sgemm, g.handle, "llamafile_sgemm")
		purego.RegisterLibFunc(&g.gemvQ4_0, g.handle, "_ZN4ggml3cpu6repack4gemvI10block_q4_0Ll8ELl8EL9ggml_type8EEEviPfmPKvS7_ii")
		purego.RegisterLibFunc(&g.gemmQ4_0, g.handle, "_ZN4ggml3cpu6repack4gemmI10block_q4_0Ll8ELl8EL9ggml_type8EEEviPfmPKvS7_ii")
		purego.RegisterLibFunc(&g.quantizeMat, g.handle, "_Z19ggml_quantize_mat_tILl8EL9ggml_type8EEvPKfPvll")
		return nil
	}()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// matMul returns ggml's products of the rows×n weight matrix w (type wt)
// with the nTok activation rows x (n floats each), token-major: out[t*rows+r].
func (g *ggmlMatMul) matMul(t testing.TB, wt tensor.Type, w []byte, rows int, x []float32, nTok, n int) []float32 {
	t.Helper()
	out := make([]float32, nTok*rows)
	g.prepare(t, wt, w, rows, x, nTok, n)(out)
	return out
}

// prepare does what llama.cpp does once per matrix product before the
// kernels run (repack the Q4_0 weights, quantize the activations) and
// returns the kernel calls, which write the products into out
// (token-major, out[t*rows+r]).
func (g *ggmlMatMul) prepare(t testing.TB, wt tensor.Type, w []byte, rows int, x []float32, nTok, n int) func(out []float32) {
	t.Helper()
	xrb := RowBytes(tensor.Q8_0, n)
	switch wt {
	case tensor.Q8_0, tensor.Q5_0:
		rb := RowBytes(wt, n)
		xq := make([]byte, nTok*xrb)
		for tok := 0; tok < nTok; tok++ {
			copy(xq[tok*xrb:], g.quantize(tensor.Q8_0, x[tok*n:(tok+1)*n]))
		}
		if nTok == 1 {
			// ggml_compute_forward_mul_mat: one column goes to vec_dot.
			return func(out []float32) {
				for r := 0; r < rows; r++ {
					out[r] = g.dot(wt, w[r*rb:], xq, n)
				}
			}
		}
		return func(out []float32) {
			params := ggmlComputeParams{ith: 0, nth: 1}
			nb := int64(n / qk)
			if !g.sgemm(unsafe.Pointer(&params), int64(rows), int64(nTok), nb, unsafe.Pointer(&w[0]), nb,
				unsafe.Pointer(&xq[0]), nb, unsafe.Pointer(&out[0]), int64(rows), int32(wt), int32(tensor.Q8_0), int32(tensor.F32)) {
				t.Fatalf("llamafile_sgemm declined %s × Q8_0 with %d tokens", wt, nTok)
			}
		}
	case tensor.Q4_1, tensor.Q5_1:
		// No sgemm nor repack for these: vec_dot for every output.
		rb, xrb := RowBytes(wt, n), RowBytes(tensor.Q8_1, n)
		xq := make([]byte, nTok*xrb)
		for tok := 0; tok < nTok; tok++ {
			copy(xq[tok*xrb:], g.quantize(tensor.Q8_1, x[tok*n:(tok+1)*n]))
		}
		return func(out []float32) {
			for tok := 0; tok < nTok; tok++ {
				for r := 0; r < rows; r++ {
					out[tok*rows+r] = g.dot(wt, w[r*rb:], xq[tok*xrb:], n)
				}
			}
		}
	case tensor.Q4_0:
		packed := repackQ4_0x8(w, rows, n)
		// As the repack's forward_mul_mat: tokens in groups of four go to
		// the gemm, the rest one by one to the gemv.
		nGemm := nTok - nTok%4
		xq := make([]byte, nTok*xrb)
		for tok := 0; tok < nGemm; tok += 4 {
			g.quantizeMat(&x[tok*n], unsafe.Pointer(&xq[tok*xrb]), 4, int64(n))
		}
		for tok := nGemm; tok < nTok; tok++ {
			copy(xq[tok*xrb:], g.quantize(tensor.Q8_0, x[tok*n:(tok+1)*n]))
		}
		return func(out []float32) {
			if nGemm > 0 {
				g.gemmQ4_0(int32(n), &out[0], uintptr(rows), unsafe.Pointer(&packed[0]), unsafe.Pointer(&xq[0]), int32(nGemm), int32(rows))
			}
			for tok := nGemm; tok < nTok; tok++ {
				g.gemvQ4_0(int32(n), &out[tok*rows], 0, unsafe.Pointer(&packed[0]), unsafe.Pointer(&xq[tok*xrb]), 1, int32(rows))
			}
		}
	}
	t.Fatalf("no ggml matrix product for %s", wt)
	return nil
}

// repackQ4_0x8 lays out Q4_0 weights (rows a multiple of 8) as ggml's
// repack does for q4_0_8x8 (repack.cpp, make_block_q4_0x8 with an
// interleave of 8): for each group of 8 rows and each block column, one
// block_q4_0x8 of the 8 rows' fp16 scales followed by 128 quant bytes,
// 8 bytes at a time from rows 0..7 in turn, each byte XORed with 0x88 (so
// that a nibble read as signed is q-8).
func repackQ4_0x8(w []byte, rows, n int) []byte {
	nb := n / qk
	rb := nb * q4_0Bytes
	const outBytes = 8*2 + 128
	out := make([]byte, 0, rows/8*nb*outBytes)
	for g := 0; g < rows; g += 8 {
		for b := 0; b < nb; b++ {
			var blk [outBytes]byte
			for i := 0; i < 8; i++ {
				copy(blk[2*i:], w[(g+i)*rb+b*q4_0Bytes:][:2])
			}
			for i := 0; i < 16; i++ {
				src := w[(g+i%8)*rb+b*q4_0Bytes+2+(i/8)*8:][:8]
				v := binary.LittleEndian.Uint64(src) ^ 0x8888888888888888
				binary.LittleEndian.PutUint64(blk[16+8*i:], v)
			}
			out = append(out, blk[:]...)
		}
	}
	return out
}

// extremeScaleRow is a weight row of random quants whose block scales
// jump between the fp16 extremes (largest, smallest normal, subnormal)
// and ordinary values, so that the sums mix magnitudes that round away.
func extremeScaleRow(rng *rand.Rand, wt tensor.Type, n int) []byte {
	b := randomWeightRow(rng, wt, n, 1)
	ts := wt.TypeSize()
	scales := []float32{65504, 6.1e-5, 6e-8, 1, 0.001, 300}
	for blk := 0; blk < n/wt.BlockSize(); blk++ {
		v := scales[rng.IntN(len(scales))]
		if rng.IntN(2) == 0 {
			v = -v
		}
		binary.LittleEndian.PutUint16(b[blk*ts:], tensor.Float32ToFP16(v))
	}
	return b
}

// TestLegacyMatchGGMLX86 requires the portable kernels and every set's
// Dot and MatMulRows to give, for Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1
// weights, exactly the bits of llama.cpp's x86 code, at one token
// (vec_dot, gemv) and several (tinyBLAS, gemm: for Q4_0, 4 tokens take
// its AVX2 path, 16 its AVX-512 one where the build has it, 7 and 21 mix
// them with single tokens), on rows of random quants with ordinary,
// extreme (fp16 max, subnormal) and extreme-quant blocks.
func TestLegacyMatchGGMLX86(t *testing.T) {
	ran := 0
	for _, v := range x86Variants {
		t.Run(v.name, func(t *testing.T) {
			if !v.ok() {
				t.Skipf("this CPU cannot run libggml-cpu-%s.so", v.name)
			}
			ran++
			g := openGGMLMatMul(t, v.name)
			rng := rand.New(rand.NewPCG(71, 72))
			sets := Available()
			for _, wt := range []tensor.Type{tensor.Q8_0, tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1} {
				vt := VecDotType(wt)
				var checked int
				for _, n := range []int{32, 64, 96, 256, 2048} {
					for _, shape := range []struct{ rows, nTok int }{{16, 1}, {24, 4}, {16, 16}, {8, 7}, {32, 21}} {
						if n >= 2048 && shape.nTok > 4 {
							continue // long rows: one and four tokens suffice
						}
						w := make([]byte, 0, shape.rows*RowBytes(wt, n))
						for r := 0; r < shape.rows; r++ {
							switch r % 3 {
							case 0:
								w = append(w, randomWeightRow(rng, wt, n, 0.02)...)
							case 1:
								w = append(w, extremeScaleRow(rng, wt, n)...)
							default:
								w = append(w, extremeWeightRow(rng, wt, n)...)
							}
						}
						x := make([]float32, 0, shape.nTok*n)
						names := make([]string, 0, shape.nTok)
						for tok := 0; len(names) < shape.nTok; tok++ {
							for name, row := range activationRows(rng, n) {
								if len(names) < shape.nTok {
									x, names = append(x, row...), append(names, name)
								}
							}
						}
						want := g.matMul(t, wt, w, shape.rows, x, shape.nTok, n)
						checked += len(want)
						xrb := RowBytes(vt, n)
						xq := make([]byte, shape.nTok*xrb)
						for tok := 0; tok < shape.nTok; tok++ {
							QuantizeRow(vt, x[tok*n:(tok+1)*n], xq[tok*xrb:(tok+1)*xrb])
						}
						rb := RowBytes(wt, n)
						for _, s := range sets {
							got := make([]float32, shape.nTok*shape.rows)
							s.MatMulRows(wt, w, rb, 0, shape.rows, xq, xrb, shape.nTok, n, got, shape.rows)
							for tok := 0; tok < shape.nTok; tok++ {
								for r := 0; r < shape.rows; r++ {
									wv := want[tok*shape.rows+r]
									one := s.Dot(wt, w[r*rb:(r+1)*rb], xq[tok*xrb:(tok+1)*xrb], n)
									for _, c := range []struct {
										what string
										v    float32
									}{{"MatMulRows", got[tok*shape.rows+r]}, {"Dot", one}} {
										if !sameFloat(c.v, wv) {
											t.Errorf("%s %s %s n=%d rows=%d tokens=%d: row %d, token %d (%s) = %.9g (%#08x), ggml %.9g (%#08x)",
												s.Name(), c.what, wt, n, shape.rows, shape.nTok, r, tok, names[tok],
												c.v, math.Float32bits(c.v), wv, math.Float32bits(wv))
										}
									}
								}
							}
						}
					}
				}
				t.Logf("%s: %d products of libggml-cpu-%s.so matched bit for bit by the sets %v", wt, checked, v.name, setNames(sets))
			}
		})
	}
	if ran == 0 {
		t.Skip("no x86 build of llama.cpp's CPU backend runs on this CPU")
	}
}

// sameFloat reports whether a and b have the same bits, or are both NaN.
func sameFloat(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

func setNames(sets []*Set) []string {
	var names []string
	for _, s := range sets {
		names = append(names, s.Name())
	}
	return names
}

// followsX86 are the weight types whose kernels, portable and SIMD, all
// compute the bits of llama.cpp's x86 code (TestLegacyMatchGGMLX86)
// rather than its generic code's, and so agree with each other exactly.
var followsX86 = map[tensor.Type]bool{tensor.Q8_0: true, tensor.Q4_0: true, tensor.Q4_1: true, tensor.Q5_0: true, tensor.Q5_1: true}

// BenchmarkQ8_0Q4_0VsGGML/<type>/<rows>x<n>/tok=<k>/<who> times, in one
// process and on one thread, our MatMulRows (the selected set) and the
// llama.cpp x86 kernels that compute the same bits, on the same matrix:
// 64 rows stay in the L2 cache (the kernels' own speed), 2048 rows are
// an attention matrix of a 1B model, 65536 rows (75 MB of Q4_0, more than
// the L3 caches here) come from memory, as in decoding. ggml's kernels get the weights
// repacked and the activations quantized beforehand, as llama.cpp
// prepares them outside the timed kernels too. Q8_0 at one token calls
// ggml's vec_dot once per row through purego, whose call overhead (tens
// of ns) counts against ggml there.
func BenchmarkQ8_0Q4_0VsGGML(b *testing.B) {
	var variant string
	for _, v := range x86Variants {
		if v.ok() {
			variant = v.name
			break
		}
	}
	if variant == "" {
		b.Skip("no x86 build of llama.cpp's CPU backend runs on this CPU")
	}
	g := openGGMLMatMul(b, variant)
	rng := rand.New(rand.NewPCG(73, 74))
	for _, wt := range []tensor.Type{tensor.Q4_0, tensor.Q8_0} {
		for _, shape := range []struct{ rows, n int }{{64, 2048}, {2048, 2048}, {65536, 2048}} {
			rb := RowBytes(wt, shape.n)
			w := make([]byte, 0, shape.rows*rb)
			for r := 0; r < shape.rows; r++ {
				if r < 64 {
					w = append(w, randomWeightRow(rng, wt, shape.n, 0.05)...)
				} else {
					w = append(w, w[(r%64)*rb:(r%64+1)*rb]...)
				}
			}
			for _, nTok := range []int{1, 32} {
				if shape.rows > 2048 && nTok > 1 {
					continue
				}
				x := make([]float32, 0, nTok*shape.n)
				for len(x) < nTok*shape.n {
					x = append(x, activationRows(rng, shape.n)["normal"]...)
				}
				xrb := RowBytes(tensor.Q8_0, shape.n)
				xq := make([]byte, nTok*xrb)
				for tok := 0; tok < nTok; tok++ {
					QuantizeRow(tensor.Q8_0, x[tok*shape.n:(tok+1)*shape.n], xq[tok*xrb:(tok+1)*xrb])
				}
				out := make([]float32, nTok*shape.rows)
				name := fmt.Sprintf("%s/%dx%d/tok=%d", wt, shape.rows, shape.n, nTok)
				b.Run(name+"/llamago-"+Selected().Name(), func(b *testing.B) {
					runtime.GC() // not during the timing: CPU time counts the collector's
					cpu0 := processCPUSeconds()
					for b.Loop() {
						MatMulRows(wt, w, rb, 0, shape.rows, xq, xrb, nTok, shape.n, out, shape.rows)
					}
					reportWeightGBs(b, len(w), cpu0)
				})
				run := g.prepare(b, wt, w, shape.rows, x, nTok, shape.n)
				b.Run(name+"/ggml-"+variant, func(b *testing.B) {
					runtime.GC()
					cpu0 := processCPUSeconds()
					for b.Loop() {
						run(out)
					}
					reportWeightGBs(b, len(w), cpu0)
				})
			}
		}
	}
}
