package kernels

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"llamago/tensor"
)

func TestVecDotType(t *testing.T) {
	// ggml-cpu.c, type_traits_cpu[...].vec_dot_type.
	tests := []struct {
		weight, want tensor.Type
	}{
		{tensor.F32, tensor.F32},
		{tensor.F16, tensor.F16},
		{tensor.BF16, tensor.BF16},
		{tensor.Q4_0, tensor.Q8_0},
		{tensor.Q5_0, tensor.Q8_0},
		{tensor.Q8_0, tensor.Q8_0},
		{tensor.Q4_1, tensor.Q8_1},
		{tensor.Q5_1, tensor.Q8_1},
		{tensor.Q2_K, tensor.Q8_K},
		{tensor.Q3_K, tensor.Q8_K},
		{tensor.Q4_K, tensor.Q8_K},
		{tensor.Q5_K, tensor.Q8_K},
		{tensor.Q6_K, tensor.Q8_K},
		{tensor.IQ4_NL, tensor.Q8_0},
		{tensor.IQ4_XS, tensor.Q8_K},
		{tensor.TQ2_0, tensor.Q8_K},
		{tensor.I32, tensor.F32},
	}
	for _, tt := range tests {
		if got := VecDotType(tt.weight); got != tt.want {
			t.Errorf("VecDotType(%s) = %s, want %s", tt.weight, got, tt.want)
		}
	}
}

func TestRowBytes(t *testing.T) {
	tests := []struct {
		typ  tensor.Type
		n    int
		want int
	}{
		{tensor.F32, 3, 12},
		{tensor.F16, 5, 10},
		{tensor.BF16, 4, 8},
		{tensor.Q4_0, 64, 36},
		{tensor.Q8_0, 32, 34},
		{tensor.Q8_1, 96, 108},
		{tensor.Q4_K, 512, 288},
		{tensor.Q6_K, 256, 210},
		{tensor.Q8_K, 256, 292},
		{tensor.Type(99), 256, 0},
	}
	for _, tt := range tests {
		if got := RowBytes(tt.typ, tt.n); got != tt.want {
			t.Errorf("RowBytes(%s, %d) = %d, want %d", tt.typ, tt.n, got, tt.want)
		}
	}
}

// TestQuantizeRowMatchesTensor checks the activation formats whose x86
// quantizer in ggml is the reference one package tensor implements, so the
// bytes must be identical. (Q8_0 follows ggml's x86 SIMD quantizer instead;
// see TestQuantizeRowMatchesGGMLSIMD.)
func TestQuantizeRowMatchesTensor(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, vt := range []tensor.Type{tensor.Q8_K, tensor.F16, tensor.BF16, tensor.F32} {
		for _, n := range []int{256, 512, 2048} {
			for name, x := range activationRows(rng, n) {
				got := bytesOf(t, vt, x)
				want := make([]byte, len(got))
				if err := tensor.Quantize(vt, x, want); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					i := firstDiff(got, want)
					t.Errorf("%s n=%d %s: QuantizeRow differs from tensor.Quantize at byte %d: %#x vs %#x",
						vt, n, name, i, got[i], want[i])
				}
			}
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestQuantizeRowQ8_1 checks Q8_1, which package tensor does not produce:
// its d and quants are those of Q8_0, and s is d times the sum of the
// quants, with the unrounded float32 d, stored as fp16.
func TestQuantizeRowQ8_1(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for name, x := range activationRows(rng, 128) {
		q81 := bytesOf(t, tensor.Q8_1, x)
		q80 := bytesOf(t, tensor.Q8_0, x)
		for b := 0; b < len(x)/32; b++ {
			blk1, blk0 := q81[b*36:b*36+36], q80[b*34:b*34+34]
			if !bytes.Equal(blk1[0:2], blk0[0:2]) || !bytes.Equal(blk1[4:], blk0[2:]) {
				t.Fatalf("%s block %d: Q8_1 d/qs %x differ from Q8_0 %x", name, b, blk1, blk0)
			}
			var amax float32
			var sum int
			for j := 0; j < 32; j++ {
				amax = max(amax, float32(math.Abs(float64(x[b*32+j]))))
				sum += int(int8(blk1[4+j]))
			}
			d := amax / 127
			wantS := tensor.Float32ToFP16(float32(sum) * d)
			if gotS := uint16(blk1[2]) | uint16(blk1[3])<<8; gotS != wantS {
				t.Errorf("%s block %d: s = %#04x, want %#04x (sum %d, d %g)", name, b, gotS, wantS, sum, d)
			}
		}
	}
}

func TestQuantizeRowQ8_KBsums(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for name, x := range activationRows(rng, 512) {
		q := bytesOf(t, tensor.Q8_K, x)
		for b := 0; b < 2; b++ {
			blk := q[b*292 : b*292+292]
			for g := 0; g < 16; g++ {
				var want int
				for _, v := range blk[4+16*g : 4+16*g+16] {
					want += int(int8(v))
				}
				got := int(int16(uint16(blk[260+2*g]) | uint16(blk[261+2*g])<<8))
				if got != want {
					t.Errorf("%s block %d group %d: bsum %d, want %d", name, b, g, got, want)
				}
			}
		}
	}
}

// TestDot compares every kernel with two float64 computations on the
// dequantized weights:
//
//   - with the activation dequantized from its quantized row, the sums
//     must agree to float32 rounding: this catches any layout or scale
//     error, since both sides see exactly the same numbers;
//   - with the original activation, the difference must be within what
//     quantizing the activation can explain, bounded from the format.
func TestDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	worst := map[tensor.Type]float64{}
	for _, wt := range weightTypes {
		vt := VecDotType(wt)
		dot, err := Portable().DotFunc(wt)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range lengthsFor(wt) {
			for _, wscale := range []float32{0.02, 1} {
				w := randomWeightRow(rng, wt, n, wscale)
				wf := dequantizeWeight(t, wt, w, n)
				for name, x := range activationRows(rng, n) {
					xq := bytesOf(t, vt, x)
					xf := dequantizeActivation(t, vt, xq, n)
					xErr := activationErr(vt, x)
					got := float64(dot(w, xq, n))

					var orig, quantBound float64
					for i := range wf {
						orig += float64(wf[i]) * float64(x[i])
						quantBound += math.Abs(float64(wf[i])) * xErr[i]
					}
					exact, mag := exactDot(wt, w, wf, xq, xf)
					quantBound += offsetSumErr(wt, w, x)
					// Rounding: the kernels scale integer sums in float32,
					// a few roundings of 2^-24 per term at most.
					roundTol := 1e-5*mag + 1e-35
					where := fmt.Sprintf("%s n=%d wscale=%g x=%s", wt, n, wscale, name)
					if math.IsInf(exact, 0) || math.IsNaN(exact) {
						// Only Q8_1's s field can overflow (see exactDot);
						// opposite infinities in two blocks make a NaN.
						if vt != tensor.Q8_1 || got != exact && !(math.IsNaN(got) && math.IsNaN(exact)) {
							t.Errorf("%s: Dot = %g, want %g", where, got, exact)
						}
						continue
					}
					if math.IsNaN(got) || math.Abs(got-exact) > roundTol {
						t.Errorf("%s: Dot = %.9g, dequantized sum = %.9g (diff %.3g > %.3g)",
							where, got, exact, math.Abs(got-exact), roundTol)
					}
					if mag > 0 {
						worst[wt] = max(worst[wt], math.Abs(got-exact)/mag)
					}
					if diff := math.Abs(got - orig); diff > quantBound+roundTol {
						t.Errorf("%s: Dot = %.9g, float64 sum = %.9g (diff %.3g > bound %.3g)",
							where, got, orig, diff, quantBound+roundTol)
					}
				}
			}
		}
	}
	for _, wt := range weightTypes {
		t.Logf("%-5s worst |Dot - exact| / Σ|w·x| = %.2g", wt, worst[wt])
	}
}

// exactDot is the float64 dot product of the dequantized weights wf and
// the dequantized activation xf, and the sum of the magnitudes of its
// terms.
//
// For the weight types with an offset m (Q4_1, Q5_1), ggml does not
// multiply m with the dequantized activations but with the block's s
// field of Q8_1, d·Σq computed from the unrounded float32 d and then
// rounded to fp16 (where it overflows to infinity once |d·Σq| > 65504).
// The result is corrected by m·(s - fp16(d)·Σq) per block to compute
// what ggml computes.
func exactDot(wt tensor.Type, w []byte, wf []float32, xq []byte, xf []float32) (exact, mag float64) {
	for i := range wf {
		exact += float64(wf[i]) * float64(xf[i])
		mag += math.Abs(float64(wf[i]) * float64(xf[i]))
	}
	if VecDotType(wt) != tensor.Q8_1 {
		return exact, mag
	}
	ts := wt.TypeSize()
	for b := 0; b < len(wf)/32; b++ {
		m := float64(tensor.FP16ToFloat32(binary.LittleEndian.Uint16(w[b*ts+2:])))
		s := float64(tensor.FP16ToFloat32(binary.LittleEndian.Uint16(xq[b*36+2:])))
		var xsum float64
		for _, v := range xf[b*32 : b*32+32] {
			xsum += float64(v)
		}
		exact += m * (s - xsum)
		mag += math.Abs(m * s)
	}
	return exact, mag
}

// offsetSumErr bounds, for weights with an offset m, the error m·s adds
// beyond the per-element activation errors: s = fp16(d·Σq) differs from
// Σx by at most 16 quantization steps (d/2 per element, and d·Σq uses the
// exact float32 d) plus its own fp16 rounding.
func offsetSumErr(wt tensor.Type, w []byte, x []float32) float64 {
	if VecDotType(wt) != tensor.Q8_1 {
		return 0
	}
	ts := wt.TypeSize()
	var e float64
	for b := 0; b < len(x)/32; b++ {
		m := math.Abs(float64(tensor.FP16ToFloat32(binary.LittleEndian.Uint16(w[b*ts+2:]))))
		var amax, xsum float64
		for _, v := range x[b*32 : b*32+32] {
			amax = math.Max(amax, math.Abs(float64(v)))
			xsum += float64(v)
		}
		step := amax / 127
		e += m * (16*step*(1+1e-6) + fp16Err(math.Abs(xsum)+16*step))
	}
	return e
}

// TestDotFromQuantizedWeights repeats the exact comparison with weights
// produced by ggml's own quantizers (through package tensor) rather than
// random bits.
func TestDotFromQuantizedWeights(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	const n = 512
	for _, wt := range weightTypes {
		vt := VecDotType(wt)
		src := make([]float32, n)
		for i := range src {
			src[i] = float32(rng.NormFloat64() * 0.05)
		}
		w := make([]byte, RowBytes(wt, n))
		if err := tensor.Quantize(wt, src, w); err != nil {
			t.Fatal(err)
		}
		wf := dequantizeWeight(t, wt, w, n)
		for name, x := range activationRows(rng, n) {
			xq := bytesOf(t, vt, x)
			xf := dequantizeActivation(t, vt, xq, n)
			exact, mag := exactDot(wt, w, wf, xq, xf)
			got := float64(Portable().Dot(wt, w, xq, n))
			if math.Abs(got-exact) > 1e-5*mag+1e-35 {
				t.Errorf("%s x=%s: Dot = %.9g, dequantized sum = %.9g", wt, name, got, exact)
			}
		}
	}
}

// TestDotSpecialValues feeds non-finite activations and weights: the
// kernels must return (some) number, not panic.
func TestDotSpecialValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32, 1e-45}
	for _, wt := range weightTypes {
		vt := VecDotType(wt)
		n := 2 * max(wt.BlockSize(), 32)
		x := make([]float32, n)
		for i := range x {
			x[i] = specials[i%len(specials)]
		}
		xq := bytesOf(t, vt, x)
		w := make([]byte, RowBytes(wt, n))
		for i := range w {
			w[i] = byte(rng.Uint32()) // scales may be NaN or infinite too
		}
		_ = Portable().Dot(wt, w, xq, n)
	}
}

func TestMatMulRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const rows, pad, dstStride = 8, 5, 9
	// One token takes the one-token paths (span kernels), three the
	// others; five rows give span kernels an odd row left over.
	for _, c := range []struct{ nTok, lo, hi int }{{1, 2, 7}, {3, 2, 6}} {
		nTok, lo, hi := c.nTok, c.lo, c.hi
		for _, wt := range weightTypes {
			vt := VecDotType(wt)
			n := 2 * max(wt.BlockSize(), 32)
			wRowBytes := RowBytes(wt, n) + pad // rows need not be packed
			w := make([]byte, rows*wRowBytes)
			for r := 0; r < rows; r++ {
				copy(w[r*wRowBytes:], randomWeightRow(rng, wt, n, 0.1))
			}
			xRowBytes := RowBytes(vt, n) + 3
			xq := make([]byte, nTok*xRowBytes)
			for tok := 0; tok < nTok; tok++ {
				x := activationRows(rng, n)["normal"]
				QuantizeRow(vt, x, xq[tok*xRowBytes:])
			}
			const sentinel = -12345
			dst := make([]float32, nTok*dstStride)
			for i := range dst {
				dst[i] = sentinel
			}
			MatMulRows(wt, w, wRowBytes, lo, hi, xq, xRowBytes, nTok, n, dst, dstStride)
			for tok := 0; tok < nTok; tok++ {
				for r := 0; r < dstStride; r++ {
					got := dst[tok*dstStride+r]
					if r < lo || r >= hi {
						if got != sentinel {
							t.Errorf("%s: dst[%d][%d] = %g written outside rows [%d,%d)", wt, tok, r, got, lo, hi)
						}
						continue
					}
					want := matMulWant(Selected(), wt, w[r*wRowBytes:r*wRowBytes+RowBytes(wt, n)], xq[tok*xRowBytes:tok*xRowBytes+RowBytes(vt, n)], n, tok, nTok)
					if math.Float32bits(got) != math.Float32bits(want) {
						t.Errorf("%s: dst[%d][%d] = %g, Dot (in MatMulRows' order) gives %g", wt, tok, r, got, want)
					}
				}
			}
		}
	}
}

func TestNoAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, wt := range weightTypes {
		vt := VecDotType(wt)
		n := 512
		w := randomWeightRow(rng, wt, n, 0.1)
		xq := bytesOf(t, vt, activationRows(rng, n)["normal"])
		if a := testing.AllocsPerRun(20, func() { Dot(wt, w, xq, n) }); a != 0 {
			t.Errorf("%s: Dot allocates %v times", wt, a)
		}
		rb := RowBytes(wt, n)
		ws := append(append([]byte{}, w...), w...)
		dst := make([]float32, 4)
		xs := append(append([]byte{}, xq...), xq...)
		for _, nTok := range []int{1, 2} { // one token: the span kernels
			if a := testing.AllocsPerRun(20, func() {
				MatMulRows(wt, ws, rb, 0, 2, xs, len(xq), nTok, n, dst, 2)
			}); a != 0 {
				t.Errorf("%s: MatMulRows of %d tokens allocates %v times", wt, nTok, a)
			}
		}
		x := activationRows(rng, n)["normal"]
		if a := testing.AllocsPerRun(20, func() { QuantizeRow(vt, x, xq) }); a != 0 {
			t.Errorf("%s: QuantizeRow allocates %v times", vt, a)
		}
	}
}

func TestDotFuncUnsupported(t *testing.T) {
	for _, wt := range []tensor.Type{tensor.Q8_1, tensor.Q8_K, tensor.IQ2_XXS, tensor.I32, tensor.Type(63), tensor.Type(1000)} {
		f, err := DotFunc(wt)
		if err == nil || f != nil {
			t.Errorf("DotFunc(%s) = %v, %v; want an error", wt, f != nil, err)
		} else if !strings.Contains(err.Error(), wt.String()) {
			t.Errorf("DotFunc(%s) error %q does not name the type", wt, err)
		}
	}
	for _, wt := range weightTypes {
		if _, err := DotFunc(wt); err != nil {
			t.Errorf("DotFunc(%s): %v", wt, err)
		}
	}
}

func TestChooseSet(t *testing.T) {
	if chooseSet("portable") != Portable() {
		t.Error(`chooseSet("portable") is not the portable set`)
	}
	if s := Selected(); s == nil || s.Name() == "" {
		t.Errorf("Selected() = %v", s)
	}
	// Every set must cover every type the portable set covers.
	for _, s := range []*Set{chooseSet(""), Selected()} {
		for _, wt := range weightTypes {
			if _, err := s.DotFunc(wt); err != nil {
				t.Errorf("set %s: %v", s.Name(), err)
			}
		}
	}
}

func TestQuantizeRowBadSizes(t *testing.T) {
	tests := []struct {
		vt   tensor.Type
		n    int
		dstN int
	}{
		{tensor.Q8_0, 31, 100},
		{tensor.Q8_0, 32, 33},
		{tensor.Q8_K, 128, 1000},
		{tensor.Q4_0, 32, 100}, // not an activation type
		{tensor.Type(99), 32, 100},
	}
	for _, tt := range tests {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("QuantizeRow(%s, %d values, %d bytes) did not panic", tt.vt, tt.n, tt.dstN)
				}
			}()
			QuantizeRow(tt.vt, make([]float32, tt.n), make([]byte, tt.dstN))
		}()
	}
}

// TestQuantizeRowLongerDst checks that only RowBytes bytes are written.
func TestQuantizeRowLongerDst(t *testing.T) {
	dst := bytes.Repeat([]byte{0xAA}, 40)
	QuantizeRow(tensor.Q8_0, make([]float32, 32), dst)
	if !bytes.Equal(dst[34:], bytes.Repeat([]byte{0xAA}, 6)) {
		t.Errorf("QuantizeRow wrote past RowBytes: % x", dst[34:])
	}
}

// TestMatMulRowsConcurrent runs workers on disjoint row ranges of one
// output, as a backend does, and checks they match one sequential call
// (run with -race to check the kernels share no mutable state).
func TestMatMulRowsConcurrent(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	const rows, nTok, n, workers = 64, 4, 256, 4
	for _, wt := range []tensor.Type{tensor.F16, tensor.Q4_0, tensor.Q4_K} {
		vt := VecDotType(wt)
		rb, xb := RowBytes(wt, n), RowBytes(vt, n)
		var w []byte
		for r := 0; r < rows; r++ {
			w = append(w, randomWeightRow(rng, wt, n, 0.1)...)
		}
		xq := make([]byte, nTok*xb)
		for tok := 0; tok < nTok; tok++ {
			QuantizeRow(vt, activationRows(rng, n)["uniform"], xq[tok*xb:])
		}
		want := make([]float32, nTok*rows)
		MatMulRows(wt, w, rb, 0, rows, xq, xb, nTok, n, want, rows)
		got := make([]float32, nTok*rows)
		done := make(chan struct{})
		for k := 0; k < workers; k++ {
			go func(lo, hi int) {
				defer func() { done <- struct{}{} }()
				MatMulRows(wt, w, rb, lo, hi, xq, xb, nTok, n, got, rows)
			}(k*rows/workers, (k+1)*rows/workers)
		}
		for k := 0; k < workers; k++ {
			<-done
		}
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s: element %d is %g with %d workers, %g alone", wt, i, got[i], workers, want[i])
			}
		}
	}
}

func TestDotBadLength(t *testing.T) {
	tests := []struct {
		wt tensor.Type
		n  int
	}{
		{tensor.Q4_0, 40},
		{tensor.Q4_K, 288},
		{tensor.Q8_0, -32},
		{tensor.Q2_K, 32},
	}
	for _, tt := range tests {
		buf := make([]byte, 4096)
		for name, call := range map[string]func(){
			"Dot":        func() { Dot(tt.wt, buf, buf, tt.n) },
			"MatMulRows": func() { MatMulRows(tt.wt, buf, 1024, 0, 1, buf, 1024, 1, tt.n, make([]float32, 1), 1) },
		} {
			func() {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(%s, n=%d) did not panic", name, tt.wt, tt.n)
					}
				}()
				call()
			}()
		}
	}
}
