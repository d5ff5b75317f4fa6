package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/cpu"

	"llamago/tensor"
)

// kQuantFollowsZen4 lists the weight types whose kernels compute what
// llama.cpp's x86 SIMD code computes (its zen4 build on this kind of CPU)
// rather than ggml's generic code.
var kQuantFollowsZen4 = map[tensor.Type]bool{
	tensor.Q2_K: true, tensor.Q3_K: true, tensor.Q4_K: true, tensor.Q5_K: true, tensor.Q6_K: true,
}

// kQuantReference picks the llama.cpp CPU library the k-quant kernels
// are checked against: the zen4 build, which llama.cpp loads on CPUs with
// its AVX-512 features, or else the AVX2 "haswell" build, whose
// vec_dot, gemv and gemm functions for these types compile the same AVX2
// branches (the zen4 build has no AVX-512 branch for them, except the
// gemm's 512-bit loops, which round as the AVX2 ones do). The test log
// says which one ran.
func kQuantReference(t *testing.T) *ggmlCPU {
	t.Helper()
	x := cpu.X86
	variant := ""
	switch {
	case x.HasAVX512F && x.HasAVX512BW && x.HasAVX512VL && x.HasAVX512DQ && x.HasAVX512VNNI && x.HasAVX512VBMI && x.HasAVX512BF16:
		variant = "zen4"
	case x.HasAVX2 && x.HasFMA && x.HasBMI2:
		variant = "haswell"
	default:
		t.Skip("this CPU runs neither libggml-cpu-zen4.so nor libggml-cpu-haswell.so")
	}
	t.Logf("reference: libggml-cpu-%s.so", variant)
	return openGGMLCPU(t, variant, "")
}

// TestKQuantsMatchGGMLZen4 requires every set's Q3_K, Q5_K and Q6_K
// kernels to give exactly the float32 of ggml_vec_dot_*_q8_K as
// llama.cpp's x86 build compiles it (which llama.cpp runs for these types,
// one token or many; Q4_K and Q2_K go through the repacked kernels, see
// TestRepackedMatchGGML), for random weight bits, extreme weights and
// every kind of activation row.
func TestKQuantsMatchGGMLZen4(t *testing.T) {
	g := kQuantReference(t)
	rng := rand.New(rand.NewPCG(91, 92))
	for _, wt := range []tensor.Type{tensor.Q3_K, tensor.Q5_K, tensor.Q6_K} {
		var rows, differ int
		for _, n := range []int{qkK, 2 * qkK, 3 * qkK, 8 * qkK} {
			weights := map[string][]byte{
				"w0.02":    randomWeightRow(rng, wt, n, 0.02),
				"w1":       randomWeightRow(rng, wt, n, 1),
				"wextreme": extremeWeightRow(rng, wt, n),
			}
			acts := map[string][]byte{}
			for name, x := range activationRows(rng, n) {
				acts[name] = bytesOf(t, tensor.Q8_K, x)
			}
			acts["raw±127"] = rawActivationRow(rng, tensor.Q8_K, n, func() int8 { return int8(254*rng.IntN(2) - 127) })
			acts["raw"] = rawActivationRow(rng, tensor.Q8_K, n, func() int8 { return int8(rng.IntN(255) - 127) })
			for wname, w := range weights {
				for xname, xq := range acts {
					want := g.dot(wt, w, xq, n)
					for _, s := range Available() {
						got := s.Dot(wt, w, xq, n)
						rows++
						if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
							differ++
							if differ <= 10 {
								t.Errorf("%s %s n=%d %s x=%s: %.9g (%#08x), %s %.9g (%#08x)", s.Name(), wt, n, wname, xname,
									got, math.Float32bits(got), g.symbols[wt], want, math.Float32bits(want))
							}
						}
					}
				}
			}
		}
		t.Logf("%s: %d of %d products differ from %s", wt, differ, rows, g.symbols[wt])
	}
}

// ggmlRepack holds one of ggml's repacked kernel pairs (arch/x86/
// repack.cpp) and the activation quantizer of its several-token path.
type ggmlRepack struct {
	// gemv and gemm: (int n, float *s, size_t bs, const void *vx,
	// const void *vy, int nr, int nc); vx is the repacked weights
	// (block_q4_Kx8 or block_q2_Kx8), vy one block_q8_K row (gemv) or
	// nr/4 rows of block_q8_Kx4 (gemm).
	gemv, gemm func(n int32, s *float32, bs uintptr, vx, vy unsafe.Pointer, nr, nc int32)
	// quantizeMat is ggml_quantize_mat_t<8, GGML_TYPE_Q8_K> (a C++
	// template, exported under its mangled name): four rows of floats to
	// block_q8_Kx4.
	quantizeMat func(x *float32, vy unsafe.Pointer, nrow, nPerRow int64)
}

// openGGMLRepack binds ggml_gemv_<kind>_q8_K and ggml_gemm_<kind>_q8_K
// (kind "q4_K_8x8" or "q2_K_8x8").
func openGGMLRepack(t *testing.T, g *ggmlCPU, kind string) *ggmlRepack {
	t.Helper()
	r := &ggmlRepack{}
	defer func() {
		if e := recover(); e != nil {
			t.Fatalf("binding ggml's repack kernels: %v", e)
		}
	}()
	purego.RegisterLibFunc(&r.gemv, g.handle, "ggml_gemv_"+kind+"_q8_K")
	purego.RegisterLibFunc(&r.gemm, g.handle, "ggml_gemm_"+kind+"_q8_K")
	purego.RegisterLibFunc(&r.quantizeMat, g.handle, "_Z19ggml_quantize_mat_tILl8EL9ggml_type15EEvPKfPvll")
	return r
}

// repackQ4_Kx8 lays out Q4_K weight rows (a multiple of eight, nb blocks
// each, packed) as ggml's block_q4_Kx8 (repack.h, make_block_q4_Kx8 in
// repack.cpp): for each group of eight rows and each block position, the
// eight d, the eight dmin, 96 bytes of scales and mins (sub-block j's
// eight scales and eight mins in the 12-byte Q4_K packing, at 12j), and
// the quants interleaved eight bytes at a time.
func repackQ4_Kx8(w []byte, rows, nb int) []byte {
	const outBytes = 16 + 16 + 96 + 1024
	out := make([]byte, 0, rows/8*nb*outBytes)
	for g := 0; g < rows/8; g++ {
		for b := 0; b < nb; b++ {
			var blk [8][]byte
			for i := range blk {
				blk[i] = w[((8*g+i)*nb+b)*q4_KBytes:][:q4_KBytes]
			}
			var o [outBytes]byte
			var sc, mn [8][8]int32 // [sub-block][row]
			for i, x := range blk {
				copy(o[2*i:], x[0:2])
				copy(o[16+2*i:], x[2:4])
				s, m := kScalesMins(x[4:16])
				for j := 0; j < 8; j++ {
					sc[j][i], mn[j][i] = s[j], m[j]
				}
			}
			for j := 0; j < 8; j++ {
				p := o[32+12*j:]
				s, m := sc[j], mn[j]
				for i := 0; i < 4; i++ {
					p[i] = byte(s[i]&63 | (s[i+4]&48)<<2)
					p[4+i] = byte(m[i]&63 | (m[i+4]&48)<<2)
					p[8+i] = byte(s[i+4]&15 | (m[i+4]&15)<<4)
				}
			}
			for i := 0; i < 128; i++ {
				copy(o[128+8*i:128+8*i+8], blk[i%8][16+(i/8)*8:])
			}
			out = append(out, o[:]...)
		}
	}
	return out
}

// repackQ2_Kx8 lays out Q2_K weight rows (a multiple of eight, nb blocks
// each, packed) as ggml's block_q2_Kx8 (make_block_q2_Kx8): for each group
// of eight rows and each block position, the eight d, the eight dmin, 128
// bytes of scale/min bytes (byte i is byte 2(i/16) + i%2 of row (i%16)/2:
// two groups of each row in turn), and the quants interleaved eight bytes
// at a time.
func repackQ2_Kx8(w []byte, rows, nb int) []byte {
	const outBytes = 16 + 16 + 128 + 512
	out := make([]byte, 0, rows/8*nb*outBytes)
	for g := 0; g < rows/8; g++ {
		for b := 0; b < nb; b++ {
			var blk [8][]byte
			for i := range blk {
				blk[i] = w[((8*g+i)*nb+b)*q2_KBytes:][:q2_KBytes]
			}
			var o [outBytes]byte
			for i, x := range blk {
				copy(o[2*i:], x[80:82])
				copy(o[16+2*i:], x[82:84])
			}
			for i := 0; i < 128; i++ {
				o[32+i] = blk[(i%16)/2][(i/16)*2+i%2]
			}
			for i := 0; i < 64; i++ {
				copy(o[160+8*i:160+8*i+8], blk[i%8][16+(i/8)*8:])
			}
			out = append(out, o[:]...)
		}
	}
	return out
}

// TestRepackedMatchGGML requires every set's MatMulRows on Q4_K and
// Q2_K weights to give exactly what llama.cpp's x86 build gives for the
// same float activations: it repacks the weights eight rows at a time and,
// for a batch of nTok tokens, runs ggml's gemm on the first nTok - nTok%4
// tokens (activations quantized four rows at a time by
// ggml_quantize_mat_q8_K_4x8) and its gemv on the others
// (quantize_row_q8_K), as repack.cpp's forward_mul_mat does. 24 weight
// rows and 16+4 tokens reach the gemm's 512-bit loops and its 256-bit
// ones for the columns and rows they leave.
func TestRepackedMatchGGML(t *testing.T) {
	g := kQuantReference(t)
	for _, c := range []struct {
		wt     tensor.Type
		kind   string
		repack func(w []byte, rows, nb int) []byte
	}{
		{tensor.Q4_K, "q4_K_8x8", repackQ4_Kx8},
		{tensor.Q2_K, "q2_K_8x8", repackQ2_Kx8},
	} {
		t.Run(c.wt.String(), func(t *testing.T) {
			checkRepacked(t, g, openGGMLRepack(t, g, c.kind), c.wt, c.repack)
		})
	}
}

func checkRepacked(t *testing.T, g *ggmlCPU, rp *ggmlRepack, wt tensor.Type, repack func(w []byte, rows, nb int) []byte) {
	rng := rand.New(rand.NewPCG(93, 94))
	const rows = 24
	const q8Kx4Bytes = 4*4 + 4*qkK + 4*16*2
	blockBytes := wt.TypeSize()
	kinds := []string{"normal", "wide", "uniform", "outlier", "large", "small", "alternate", "positive"}
	var products, differ int
	for _, n := range []int{qkK, 2 * qkK, 3 * qkK, 8 * qkK} {
		nb := n / qkK
		for _, wscale := range []float32{0.02, 1} {
			w := make([]byte, 0, rows*nb*blockBytes)
			for r := 0; r < rows; r++ {
				w = append(w, randomWeightRow(rng, wt, n, wscale)...)
			}
			packed := repack(w, rows, nb)
			for _, nTok := range []int{1, 3, 4, 7, 20, 23} {
				x := make([]float32, nTok*n)
				for tok := 0; tok < nTok; tok++ {
					copy(x[tok*n:], activationRows(rng, n)[kinds[rng.IntN(len(kinds))]])
				}
				want := make([]float32, nTok*rows)
				gemmTok := 0
				if nTok >= 4 {
					gemmTok = nTok &^ 3
					vy := make([]byte, gemmTok/4*nb*q8Kx4Bytes)
					for g4 := 0; g4 < gemmTok/4; g4++ {
						rp.quantizeMat(&x[4*g4*n], unsafe.Pointer(&vy[g4*nb*q8Kx4Bytes]), 4, int64(n))
					}
					rp.gemm(int32(n), &want[0], rows, unsafe.Pointer(&packed[0]), unsafe.Pointer(&vy[0]), int32(gemmTok), rows)
				}
				for tok := gemmTok; tok < nTok; tok++ {
					vy := g.quantize(tensor.Q8_K, x[tok*n:(tok+1)*n])
					rp.gemv(int32(n), &want[tok*rows], rows, unsafe.Pointer(&packed[0]), unsafe.Pointer(&vy[0]), 1, rows)
				}

				stride := RowBytes(tensor.Q8_K, n)
				xq := make([]byte, nTok*stride)
				for tok := 0; tok < nTok; tok++ {
					QuantizeRow(tensor.Q8_K, x[tok*n:(tok+1)*n], xq[tok*stride:])
				}
				for _, s := range Available() {
					got := make([]float32, nTok*rows)
					s.MatMulRows(wt, w, nb*blockBytes, 0, rows, xq, stride, nTok, n, got, rows)
					for i := range got {
						products++
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							differ++
							if differ <= 10 {
								t.Errorf("%s %s n=%d wscale=%g nTok=%d token %d row %d: %.9g (%#08x), ggml's %s %.9g (%#08x)",
									s.Name(), wt, n, wscale, nTok, i/rows, i%rows, got[i], math.Float32bits(got[i]),
									map[bool]string{true: "gemm", false: "gemv"}[i/rows < gemmTok], want[i], math.Float32bits(want[i]))
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%s: %d of %d products differ from ggml's repacked gemv/gemm", wt, differ, products)
}

// TestQ4_KRepackLayout checks repackQ4_Kx8 itself, so that a wrong
// layout is not mistaken for a wrong kernel: ggml's gemv on the repacked
// rows must give, row by row, what ggml's own gemv gives on the same rows
// repacked by hand in another order (rows 8..15 first). It also pins
// the block size the test assumes.
func TestQ4_KRepackLayout(t *testing.T) {
	g := kQuantReference(t)
	rp := openGGMLRepack(t, g, "q4_K_8x8")
	rng := rand.New(rand.NewPCG(95, 96))
	const rows, n = 16, 2 * qkK
	w := make([]byte, 0, rows*2*q4_KBytes)
	for r := 0; r < rows; r++ {
		w = append(w, randomWeightRow(rng, tensor.Q4_K, n, 0.1)...)
	}
	if got := len(repackQ4_Kx8(w, rows, 2)); got != rows/8*2*1152 {
		t.Fatalf("repacked %d bytes, want %d (sizeof(block_q4_Kx8) = 1152)", got, rows/8*2*1152)
	}
	swapped := append(append([]byte(nil), w[8*2*q4_KBytes:]...), w[:8*2*q4_KBytes]...)
	xq := g.quantize(tensor.Q8_K, activationRows(rng, n)["normal"])
	a, b := make([]float32, rows), make([]float32, rows)
	pa, pb := repackQ4_Kx8(w, rows, 2), repackQ4_Kx8(swapped, rows, 2)
	rp.gemv(n, &a[0], rows, unsafe.Pointer(&pa[0]), unsafe.Pointer(&xq[0]), 1, rows)
	rp.gemv(n, &b[0], rows, unsafe.Pointer(&pb[0]), unsafe.Pointer(&xq[0]), 1, rows)
	for r := 0; r < rows; r++ {
		if a[r] != b[(r+8)%rows] {
			t.Errorf("row %d: %g, %g after swapping the groups", r, a[r], b[(r+8)%rows])
		}
		// A product of the right magnitude: the float64 value of the row.
		wf := dequantizeWeight(t, tensor.Q4_K, w[r*2*q4_KBytes:(r+1)*2*q4_KBytes], n)
		xf := dequantizeActivation(t, tensor.Q8_K, xq, n)
		var exact, mag float64
		for i := range wf {
			exact += float64(wf[i]) * float64(xf[i])
			mag += math.Abs(float64(wf[i]) * float64(xf[i]))
		}
		if math.Abs(float64(a[r])-exact) > 1e-5*mag {
			t.Errorf("row %d: ggml's gemv on the repacked row gives %g, the row's value is %g", r, a[r], exact)
		}
	}
}

// TestQuantizeMatQ8_KMatchesQuantizeRow checks the activation side of
// ggml's repacked gemm: ggml_quantize_mat_q8_K_4x8, which quantizes four
// rows into one interleaved block_q8_Kx4 (d[4] | qs: eight values of each
// row in turn | bsums: row r's group 4k+g at 16k+4r+g), must give, per
// row and block, QuantizeRow's scale and quants and group sums, or all of
// them negated: it takes the sign of the scale from a positive element of
// largest magnitude where the reference takes the first such element, and
// a negated block gives every product the same bits (integer sums and
// scale both change sign, exactly). The test logs how often that happens.
func TestQuantizeMatQ8_KMatchesQuantizeRow(t *testing.T) {
	g := kQuantReference(t)
	rp := openGGMLRepack(t, g, "q4_K_8x8")
	rng := rand.New(rand.NewPCG(97, 98))
	const n, nb = 4 * qkK, 4
	const blockBytes = 16 + 4*qkK + 2*64
	var blocks, negated int
	for trial := 0; trial < 50; trial++ {
		x := make([]float32, 4*n)
		kinds := []string{"normal", "wide", "alternate", "constant", "outlier", "zeros", "positive"}
		for r := 0; r < 4; r++ {
			copy(x[r*n:], activationRows(rng, n)[kinds[rng.IntN(len(kinds))]])
		}
		if trial%5 == 0 {
			// Ties for the largest magnitude with both signs.
			x[3], x[100] = -2.5, 2.5
		}
		mat := make([]byte, nb*blockBytes)
		rp.quantizeMat(&x[0], unsafe.Pointer(&mat[0]), 4, n)
		for r := 0; r < 4; r++ {
			row := bytesOf(t, tensor.Q8_K, x[r*n:(r+1)*n])
			for b := 0; b < nb; b++ {
				blk := mat[b*blockBytes:]
				dm := math.Float32frombits(binary.LittleEndian.Uint32(blk[4*r:]))
				yd, q8, bsums := q8K((*[q8_KBytes]byte)(row[b*q8_KBytes:]))
				sign := int32(1)
				if dm != yd {
					sign = -1
					if dm != -yd {
						t.Fatalf("row %d block %d: d %g, QuantizeRow's %g", r, b, dm, yd)
					}
				}
				blocks++
				if sign < 0 {
					negated++
				}
				for i := 0; i < qkK; i++ {
					qm := int32(int8(blk[16+32*(i/8)+8*r+i%8]))
					if qm != sign*int32(int8(q8[i])) {
						t.Fatalf("row %d block %d value %d: %d, QuantizeRow's %d (sign %d)", r, b, i, qm, int8(q8[i]), sign)
					}
				}
				for grp := 0; grp < 16; grp++ {
					k, gg := grp/4, grp%4
					bm := int32(int16(binary.LittleEndian.Uint16(blk[16+4*qkK+2*(16*k+4*r+gg):])))
					if bm != sign*bsum(bsums, grp) {
						t.Fatalf("row %d block %d group %d: sum %d, QuantizeRow's %d (sign %d)", r, b, grp, bm, bsum(bsums, grp), sign)
					}
				}
			}
		}
	}
	t.Logf("%d blocks: %d negated, the others identical", blocks, negated)
}
