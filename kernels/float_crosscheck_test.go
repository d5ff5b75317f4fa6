package kernels

import (
	"encoding/binary"
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

// The float kernels claim the bits of llama.cpp's AVX-512 "zen4" CPU build
// (dot_float.go): ggml_vec_dot_f32/_f16/_bf16 for one token, llamafile's
// tinyBLAS for several. Both are checked here against that build itself:
// the vec_dot functions are exported, and tinyBLAS runs inside a ggml
// graph of one mul_mat computed by ggml_graph_compute_with_ctx.

// zen4Usable reports whether this CPU runs libggml-cpu-zen4.so (its build
// flags: AVX-512 F, BW, DQ, VL, VBMI, VNNI and BF16). No other build
// computes the same float order (haswell's vectors have 8 lanes), so on
// other CPUs the tests skip, saying so.
func zen4Usable() bool {
	x := cpu.X86
	return x.HasAVX2 && x.HasFMA && x.HasBMI2 && x.HasAVX512F && x.HasAVX512BW && x.HasAVX512DQ &&
		x.HasAVX512VL && x.HasAVX512VBMI && x.HasAVX512VNNI && x.HasAVX512BF16
}

func requireZen4(t *testing.T) *ggmlCPU {
	t.Helper()
	if !zen4Usable() {
		t.Skip("this CPU cannot run libggml-cpu-zen4.so, the only build whose float order the kernels follow")
	}
	t.Log("reference: libggml-cpu-zen4.so")
	return openGGMLCPU(t, "zen4", "")
}

// floatLengths covers whole and partial groups of 16, 32 and 64 elements
// and the model's row lengths.
var floatLengths = []int{1, 7, 15, 16, 17, 31, 32, 48, 63, 64, 65, 96, 127, 128, 200, 256, 1000, 2048, 2049, 2080, 5632}

// floatRow returns n random elements of wt (F32, F16 or BF16) from x
// scaled by scale, as raw bytes, rounded as QuantizeRow does.
func floatRow(t *testing.T, wt tensor.Type, x []float32, scale float32) []byte {
	y := make([]float32, len(x))
	for i, v := range x {
		y[i] = v * scale
	}
	return bytesOf(t, wt, y)
}

func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

// TestFloatDotMatchesGGMLZen4 requires every set's float dot product (the
// one-token order) to give exactly the float32 of the zen4 build's
// ggml_vec_dot_f32 / _f16 / _bf16, on random and adversarial rows of many
// lengths.
func TestFloatDotMatchesGGMLZen4(t *testing.T) {
	g := requireZen4(t)
	rng := rand.New(rand.NewPCG(91, 92))
	for _, wt := range []tensor.Type{tensor.F32, tensor.F16, tensor.BF16} {
		for _, n := range floatLengths {
			for _, wscale := range []float32{0.02, 1} {
				for name, x := range activationRows(rng, n) {
					w := floatRow(t, wt, activationRows(rng, n)["wide"], wscale)
					xq := bytesOf(t, wt, x)
					want := g.dot(wt, w, xq, n)
					for _, s := range Available() {
						if got := s.Dot(wt, w, xq, n); !sameBits(got, want) {
							t.Errorf("%s %s n=%d wscale=%g x=%s: Dot = %.9g (%#08x), ggml %.9g (%#08x)",
								s.Name(), wt, n, wscale, name, got, math.Float32bits(got), want, math.Float32bits(want))
						}
					}
				}
			}
		}
	}
}

// ggmlGraph binds the few ggml functions that build and compute a graph of
// one mul_mat: ggml_init and the tensor constructors from libggml-base.so,
// ggml_graph_compute_with_ctx from the CPU build.
type ggmlGraph struct {
	init        func(ggmlInitParams) unsafe.Pointer
	free        func(ctx unsafe.Pointer)
	newTensor2D func(ctx unsafe.Pointer, typ int32, ne0, ne1 int64) unsafe.Pointer
	mulMatOp    func(ctx, a, b unsafe.Pointer) unsafe.Pointer
	newGraph    func(ctx unsafe.Pointer) unsafe.Pointer
	expand      func(graph, tensor unsafe.Pointer)
	getData     func(tensor unsafe.Pointer) unsafe.Pointer
	compute     func(ctx, graph unsafe.Pointer, nThreads int32) int32
}

// ggmlInitParams is struct ggml_init_params.
type ggmlInitParams struct {
	memSize uintptr
	_       unsafe.Pointer // mem_buffer: nil, ggml allocates
	_       bool           // no_alloc: false
}

var ggmlGraphs sync.Map // CPU variant -> *ggmlGraph or error

func openGGMLGraph(t *testing.T, variant string) *ggmlGraph {
	t.Helper()
	openGGMLCPU(t, variant, "") // loads the variant (and ggml_cpu_init)
	if v, ok := ggmlGraphs.Load(variant); ok {
		if err, bad := v.(error); bad {
			t.Fatal(err)
		}
		return v.(*ggmlGraph)
	}
	gr, err := loadGGMLGraph(testenv.RequireLlamaCpp(t), variant)
	if err != nil {
		ggmlGraphs.Store(variant, err)
		t.Fatal(err)
	}
	ggmlGraphs.Store(variant, gr)
	return gr
}

func loadGGMLGraph(dir, variant string) (gr *ggmlGraph, err error) {
	// The CPU build's own copy: dlopen returns the library already loaded
	// as its dependency.
	base, err := purego.Dlopen(filepath.Join(dir, "libggml-base.so"), purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	cpuLib, err := purego.Dlopen(filepath.Join(dir, "libggml-cpu-"+variant+".so"), purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil { // RegisterLibFunc panics on a missing symbol
			err = fmt.Errorf("ggml graph functions: %v", r)
		}
	}()
	gr = &ggmlGraph{}
	purego.RegisterLibFunc(&gr.init, base, "ggml_init")
	purego.RegisterLibFunc(&gr.free, base, "ggml_free")
	purego.RegisterLibFunc(&gr.newTensor2D, base, "ggml_new_tensor_2d")
	purego.RegisterLibFunc(&gr.mulMatOp, base, "ggml_mul_mat")
	purego.RegisterLibFunc(&gr.newGraph, base, "ggml_new_graph")
	purego.RegisterLibFunc(&gr.expand, base, "ggml_build_forward_expand")
	purego.RegisterLibFunc(&gr.getData, base, "ggml_get_data")
	purego.RegisterLibFunc(&gr.compute, cpuLib, "ggml_graph_compute_with_ctx")
	return gr, nil
}

// mulMat computes, in a ggml graph, the m×k weight matrix w (type wt, raw
// rows) times the nTok activation rows x (float32, k each), with threads
// threads, and returns dst[t*m+r].
func (gr *ggmlGraph) mulMat(t *testing.T, wt tensor.Type, w []byte, m, k int, x []float32, nTok, threads int) []float32 {
	t.Helper()
	ctx := gr.init(ggmlInitParams{memSize: uintptr(len(w) + 4*len(x) + 4*m*nTok + 1<<22)})
	if ctx == nil {
		t.Fatal("ggml_init failed")
	}
	defer gr.free(ctx)
	a := gr.newTensor2D(ctx, int32(wt), int64(k), int64(m))
	b := gr.newTensor2D(ctx, int32(tensor.F32), int64(k), int64(nTok))
	copy(unsafe.Slice((*byte)(gr.getData(a)), len(w)), w)
	copy(unsafe.Slice((*float32)(gr.getData(b)), len(x)), x)
	c := gr.mulMatOp(ctx, a, b)
	graph := gr.newGraph(ctx)
	gr.expand(graph, c)
	if st := gr.compute(ctx, graph, int32(threads)); st != 0 {
		t.Fatalf("ggml_graph_compute_with_ctx: status %d", st)
	}
	return append([]float32(nil), unsafe.Slice((*float32)(gr.getData(c)), m*nTok)...)
}

// TestFloatMatMulMatchesGGMLZen4 multiplies F32, F16 and BF16 matrices by
// 1 to 9 tokens in a ggml graph of the zen4 build (one token: ggml_vec_dot;
// two or more: tinyBLAS where the row length allows it, else ggml_vec_dot
// again) and requires MatMulRows of every set to give the same bits, with
// the activations converted by QuantizeRow as the backend does (ggml
// converts them to F16 or BF16 itself). The row counts are multiples of 4,
// as tinyBLAS needs (see MatMulRows).
func TestFloatMatMulMatchesGGMLZen4(t *testing.T) {
	requireZen4(t)
	gr := openGGMLGraph(t, "zen4")
	rng := rand.New(rand.NewPCG(93, 94))
	for _, wt := range []tensor.Type{tensor.F32, tensor.F16, tensor.BF16} {
		for _, k := range []int{16, 32, 40, 64, 80, 96, 200, 256, 2048} {
			for _, m := range []int{4, 12, 20} {
				rowBytes := RowBytes(wt, k)
				w := make([]byte, 0, m*rowBytes)
				for range m {
					w = append(w, floatRow(t, wt, activationRows(rng, k)["normal"], 0.05)...)
				}
				for _, nTok := range []int{1, 2, 3, 4, 5, 7, 9} {
					x := make([]float32, 0, nTok*k)
					for range nTok {
						x = append(x, activationRows(rng, k)["wide"]...)
					}
					want := gr.mulMat(t, wt, w, m, k, x, nTok, 2)
					vt := VecDotType(wt)
					xqRow := RowBytes(vt, k)
					xq := make([]byte, nTok*xqRow)
					for j := range nTok {
						QuantizeRow(vt, x[j*k:(j+1)*k], xq[j*xqRow:])
					}
					for _, s := range Available() {
						got := make([]float32, m*nTok)
						s.MatMulRows(wt, w, rowBytes, 0, m, xq, xqRow, nTok, k, got, m)
						for i := range got {
							if !sameBits(got[i], want[i]) {
								t.Errorf("%s %s k=%d m=%d nTok=%d: token %d row %d = %.9g (%#08x), ggml %.9g (%#08x)",
									s.Name(), wt, k, m, nTok, i/m, i%m, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
								break
							}
						}
					}
				}
			}
		}
	}
}

// TestDPBF16Emulation checks the portable emulation of one VDPBF16PS lane
// (dpbf16) against ggml_vec_dot_bf16 of the zen4 build on rows of 64
// elements built to expose the order of its two roundings and its
// handling of subnormals: pairs of large products that cancel, tiny
// products, subnormal inputs and results near the subnormal range.
func TestDPBF16Emulation(t *testing.T) {
	g := requireZen4(t)
	rng := rand.New(rand.NewPCG(95, 96))
	pick := func() uint16 {
		switch rng.IntN(6) {
		case 0:
			return uint16(rng.Uint32()) & 0x807f // zero or subnormal
		case 1:
			return 0x0080 | uint16(rng.IntN(0x100)) | uint16(rng.IntN(2))<<15 // smallest normals
		case 2:
			return 0x3f80 | uint16(rng.IntN(0x80)) | uint16(rng.IntN(2))<<15 // near ±1
		case 3:
			return 0x4b00 | uint16(rng.IntN(0x80)) | uint16(rng.IntN(2))<<15 // near ±2^23
		case 4:
			return 0x2000 | uint16(rng.IntN(0x400)) | uint16(rng.IntN(2))<<15 // ~2^-60: tiny products
		}
		return tensor.Float32ToBF16(float32(rng.NormFloat64()))
	}
	const n = 64
	w, x := make([]byte, 2*n), make([]byte, 2*n)
	for trial := 0; trial < 20000; trial++ {
		for i := range n {
			binary.LittleEndian.PutUint16(w[2*i:], pick())
			binary.LittleEndian.PutUint16(x[2*i:], pick())
		}
		got, want := dotBF16(w, x, n), g.dot(tensor.BF16, w, x, n)
		if !sameBits(got, want) {
			t.Fatalf("trial %d: dotBF16 = %g (%#08x), ggml %g (%#08x)\nw % x\nx % x",
				trial, got, math.Float32bits(got), want, math.Float32bits(want), w, x)
		}
	}
}

// isFloatType reports whether wt is one of the float formats.
func isFloatType(wt tensor.Type) bool {
	return wt == tensor.F32 || wt == tensor.F16 || wt == tensor.BF16
}

// TestFloatActivationsMatchGGMLZen4 requires every set's F16 and BF16
// activation conversion to write the bytes the zen4 build's from_float
// functions write (ggml_cpu_fp32_to_fp16: VCVTPS2PH, rounding to nearest
// even; ggml_cpu_fp32_to_bf16), on rows of every length up to 40 and on
// values at the edges: ties, overflow, subnormals, infinities and NaNs
// with payloads.
func TestFloatActivationsMatchGGMLZen4(t *testing.T) {
	g := requireZen4(t)
	rng := rand.New(rand.NewPCG(97, 98))
	special := []float32{
		0, float32(math.Copysign(0, -1)), 1, -1, 65504, -65504, 65519.99, 65520, 1e5, -1e9,
		0x1p-14, 0x1p-24, 0x1p-25, 0x1.8p-25, 0x1p-26, 1e-30, 0x1p-126, 0x1p-149,
		float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00000), math.Float32frombits(0xffc00001), math.Float32frombits(0x7f800001),
		math.Float32frombits(0x7fbfffff), math.Float32frombits(0x7f80ffff),
		1 + 0x1p-11, 1 + 0x3p-11, 1 + 0x1p-8, 1 + 0x3p-8, 1 + 0x1p-23, // fp16 and bf16 ties and near-ties
	}
	pick := func() float32 {
		if rng.IntN(3) == 0 {
			return special[rng.IntN(len(special))]
		}
		return math.Float32frombits(rng.Uint32())
	}
	for _, vt := range []tensor.Type{tensor.F16, tensor.BF16} {
		for trial := 0; trial < 400; trial++ {
			x := make([]float32, 1+trial%40)
			for i := range x {
				x[i] = pick()
			}
			want := g.quantize(vt, x)
			for _, s := range Available() {
				got := make([]byte, len(want))
				s.QuantizeRow(vt, x, got)
				if i := firstDiff(got, want); i >= 0 {
					e := i / 2
					t.Fatalf("%s %s: element %d (%#08x): %#04x, ggml %#04x", s.Name(), vt, e, math.Float32bits(x[e]),
						binary.LittleEndian.Uint16(got[2*e:]), binary.LittleEndian.Uint16(want[2*e:]))
				}
			}
		}
	}
}

// TestFloatOrderByTokens states what holds between one-token and
// several-token products of the float types, in every set: one token gives
// Dot (ggml_vec_dot's order); two or more give the portable tinyBLAS-order
// kernel's bits where n is a multiple of its step, else Dot's again (ggml
// falls back to ggml_vec_dot). The two orders really differ: some of the
// products must differ in their last bits.
func TestFloatOrderByTokens(t *testing.T) {
	rng := rand.New(rand.NewPCG(99, 100))
	tiled := map[tensor.Type]RowDot{tensor.F32: dotF32Tiled, tensor.F16: dotF16Tiled, tensor.BF16: dotBF16Tiled}
	for _, wt := range []tensor.Type{tensor.F32, tensor.F16, tensor.BF16} {
		for _, n := range []int{2048, 2048 + 8} {
			const rows, nTok = 16, 3
			rb := RowBytes(wt, n)
			w := make([]byte, 0, rows*rb)
			for range rows {
				w = append(w, floatRow(t, wt, activationRows(rng, n)["normal"], 0.05)...)
			}
			xq := make([]byte, 0, nTok*rb)
			for range nTok {
				xq = append(xq, bytesOf(t, wt, activationRows(rng, n)["wide"])...)
			}
			step := tiledStep
			if wt == tensor.BF16 {
				step = bf16TiledStep
			}
			for _, s := range Available() {
				one, many := make([]float32, rows), make([]float32, rows*nTok)
				s.MatMulRows(wt, w, rb, 0, rows, xq, rb, 1, n, one, rows)
				s.MatMulRows(wt, w, rb, 0, rows, xq, rb, nTok, n, many, rows)
				differ := 0
				for r := range rows {
					wr := w[r*rb : (r+1)*rb]
					if want := Portable().Dot(wt, wr, xq[:rb], n); !sameBits(one[r], want) {
						t.Fatalf("%s %s n=%d row %d, one token: %g, Dot %g", s.Name(), wt, n, r, one[r], want)
					}
					for j := range nTok {
						x := xq[j*rb : (j+1)*rb]
						want := Portable().Dot(wt, wr, x, n)
						if n%step == 0 {
							want = tiled[wt](wr, x, n)
						}
						if got := many[j*rows+r]; !sameBits(got, want) {
							t.Fatalf("%s %s n=%d row %d token %d of %d: %g, want %g", s.Name(), wt, n, r, j, nTok, got, want)
						}
						if j == 0 && !sameBits(many[r], one[r]) {
							differ++
						}
					}
				}
				if n%step == 0 && differ == 0 {
					t.Errorf("%s %s n=%d: no product differs between one token and %d: are the two orders the same?", s.Name(), wt, n, nTok)
				}
				if n%step != 0 && differ != 0 {
					t.Errorf("%s %s n=%d: %d products differ between one token and %d", s.Name(), wt, n, differ, nTok)
				}
			}
		}
	}
}
