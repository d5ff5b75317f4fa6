package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// tileLengths are row lengths for the tile tests: odd and even block
// counts (the kernels take two blocks per step) and, for the float
// types, lengths around the vector width and the kernels' chunk size, and
// long rows, which the four-row float kernels hand to the one-row ones
// (several chunks, and a short group left).
func tileLengths(wt tensor.Type) []int {
	switch wt {
	case tensor.F32, tensor.F16, tensor.BF16:
		return []int{1, 7, 8, 9, 64, 172, 255, 256, 257, 600, 1024, 1025, 1279, 2048, 2305, 3333}
	}
	bs := wt.BlockSize()
	return []int{bs, 2 * bs, 3 * bs, 8 * bs}
}

// TestTilesMatchDot multiplies every shape of 1..13 rows × 1..13 tokens
// with each set's MatMulRows and checks every product against the set's
// Dot bit for bit: whole tiles, the rows and tokens left over, and the
// four-row kernels must all give the one-row kernel's bits, whatever the
// grouping. Each of those products is also checked against the portable
// kernel, to 1e-5 of Σ|w·x| (TestSetsMatchPortable does so for more
// inputs), so that a one-row kernel and tile that were wrong the same way
// would not pass. The row range starts at 0..2 so that tiles also start at rows
// that are not a multiple of their size, as a backend's worker may. A few
// larger row counts reach the paths that only pay off for many rows
// (packed tokens).
func TestTilesMatchDot(t *testing.T) {
	rng := rand.New(rand.NewPCG(71, 72))
	const maxRows, maxTok = 29, 13
	rowCounts := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17, 24, 29}
	for _, s := range Available() {
		for _, wt := range weightTypes {
			tk := s.tile[wt]
			if tk.f == nil && s != Selected() {
				continue // nothing beyond TestSetsMatMulRows to check
			}
			vt := VecDotType(wt)
			for _, n := range tileLengths(wt) {
				wRowBytes := RowBytes(wt, n) + 5 // rows need not be packed
				w := make([]byte, (maxRows+2)*wRowBytes)
				for r := 0; r < maxRows+2; r++ {
					copy(w[r*wRowBytes:], randomWeightRow(rng, wt, n, 0.1))
				}
				xRowBytes := RowBytes(vt, n) + 3
				xq := make([]byte, maxTok*xRowBytes)
				for tok := 0; tok < maxTok; tok++ {
					QuantizeRow(vt, activationRows(rng, n)["normal"], xq[tok*xRowBytes:])
				}
				// want1: one token (Dot); wantN: several, in the order
				// MatMulRows then uses (the same but for the float types).
				want1 := make([]float32, maxTok*(maxRows+2))
				wantN := make([]float32, maxTok*(maxRows+2))
				for tok := 0; tok < maxTok; tok++ {
					x := xq[tok*xRowBytes : tok*xRowBytes+RowBytes(vt, n)]
					xf := dequantizeActivation(t, vt, x, n)
					for r := 0; r < maxRows+2; r++ {
						wr := w[r*wRowBytes : r*wRowBytes+RowBytes(wt, n)]
						got := s.Dot(wt, wr, x, n)
						want1[tok*(maxRows+2)+r] = got
						wantN[tok*(maxRows+2)+r] = matMulWant(s, wt, wr, x, n, 0, 2)
						_, mag := exactDot(wt, wr, dequantizeWeight(t, wt, wr, n), x, xf)
						for _, g := range []float32{got, wantN[tok*(maxRows+2)+r]} {
							if ref := Portable().Dot(wt, wr, x, n); math.Abs(float64(g)-float64(ref)) > 1e-5*mag+1e-30 {
								t.Fatalf("%s %s n=%d: Dot %g, portable %g (Σ|w·x| %g)", s.Name(), wt, n, g, ref, mag)
							}
						}
					}
				}
				dstStride := maxRows + 3
				dst := make([]float32, maxTok*dstStride)
				const sentinel = -12345
				for _, rows := range rowCounts {
					lo := rows % 3
					hi := lo + rows
					for nTok := 1; nTok <= maxTok; nTok++ {
						for i := range dst {
							dst[i] = sentinel
						}
						s.MatMulRows(wt, w, wRowBytes, lo, hi, xq, xRowBytes, nTok, n, dst, dstStride)
						want := wantN
						if nTok == 1 {
							want = want1
						}
						want = batchWant(s, wt, want, maxRows+2, w, wRowBytes, xq, xRowBytes, nTok, n)
						if err := checkTile(dst, dstStride, want, maxRows+2, lo, hi, nTok, sentinel); err != nil {
							t.Fatalf("%s %s n=%d rows [%d,%d) nTok=%d (tile %dx%d): %v", s.Name(), wt, n, lo, hi, nTok, tk.rows, tk.toks, err)
						}
					}
				}
			}
		}
	}
}

// checkTile compares dst (rows [lo,hi) of nTok tokens) with want, and
// checks that nothing else in dst was written.
func checkTile(dst []float32, dstStride int, want []float32, wantStride, lo, hi, nTok int, sentinel float32) error {
	for tok := 0; tok*dstStride < len(dst); tok++ {
		for r := 0; r < dstStride; r++ {
			got := dst[tok*dstStride+r]
			if tok >= nTok || r < lo || r >= hi {
				if got != sentinel {
					return fmt.Errorf("dst[%d][%d] = %g written outside the rows and tokens asked for", tok, r, got)
				}
				continue
			}
			if w := want[tok*wantStride+r]; math.Float32bits(got) != math.Float32bits(w) {
				return fmt.Errorf("dst[%d][%d] = %g, Dot gives %g", tok, r, got, w)
			}
		}
	}
	return nil
}

// TestTilesNoAllocations checks that MatMulRows does not allocate when
// it goes through the tile kernels.
func TestTilesNoAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(73, 74))
	const rows, nTok, n = 9, 9, 512
	for _, s := range Available() {
		for _, wt := range weightTypes {
			w, rb, xq, xb := randomProduct(rng, s, wt, n, rows, nTok)
			dst := make([]float32, rows*nTok)
			if a := testing.AllocsPerRun(10, func() {
				s.MatMulRows(wt, w, rb, 0, rows, xq, xb, nTok, n, dst, rows)
			}); a != 0 {
				t.Errorf("%s %s: MatMulRows with %d tokens allocates %v times", s.Name(), wt, nTok, a)
			}
		}
	}
}

// FuzzTilesMatchDot fills weights and activations with arbitrary bytes
// (NaN and infinite scales included) and checks that MatMulRows gives
// Dot's bits for every product, in every set (the batch kernel's for the
// tokens that take it, and for the float types with several tokens those
// of the tinyBLAS-order kernel: see matMulWant).
func FuzzTilesMatchDot(f *testing.F) {
	f.Add(byte(3), byte(2), byte(9), byte(8), []byte{0x80, 0x7f, 0xff, 0x00, 0x3c, 0x12})
	f.Add(byte(0), byte(7), byte(8), byte(5), []byte{0x00, 0x7c, 0x01, 0xff, 0x7f})
	f.Add(byte(12), byte(1), byte(4), byte(4), []byte{0xfe, 0x7b})
	f.Fuzz(func(t *testing.T, typ, blocks, rowsB, toksB byte, data []byte) {
		if len(data) == 0 {
			return
		}
		wt := weightTypes[int(typ)%len(weightTypes)]
		vt := VecDotType(wt)
		n := (int(blocks)%9 + 1) * max(wt.BlockSize(), vt.BlockSize())
		if wt.BlockSize() == 1 {
			n = int(blocks)%300 + 1
		}
		rows, nTok := int(rowsB)%12+1, int(toksB)%10+1
		fill := func(b []byte, salt int) {
			for i := range b {
				b[i] = data[(i+salt)%len(data)] ^ byte((i+salt)/len(data))
			}
		}
		rb, xb := RowBytes(wt, n), RowBytes(vt, n)
		w := make([]byte, rows*rb)
		fill(w, 0)
		xq := make([]byte, nTok*xb)
		fill(xq, 7)
		if vt == tensor.Q8_0 || vt == tensor.Q8_1 || vt == tensor.Q8_K {
			// Keep the activation quants the quantizers can write: real
			// ones (a Q8_K block's group sums must match its quants).
			for tok := 0; tok < nTok; tok++ {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(int8(data[(i*7+tok)%len(data)])) * 0.37
				}
				QuantizeRow(vt, x, xq[tok*xb:])
			}
		}
		for _, s := range Available() {
			dst := make([]float32, rows*nTok)
			s.MatMulRows(wt, w, rb, 0, rows, xq, xb, nTok, n, dst, rows)
			for tok := 0; tok < nTok; tok++ {
				for r := 0; r < rows; r++ {
					want := matMulWant(s, wt, w[r*rb:], xq[tok*xb:], n, tok, nTok)
					if got := dst[tok*rows+r]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%s %s n=%d %dx%d: dst[%d][%d] = %g, Dot gives %g", s.Name(), wt, n, rows, nTok, tok, r, got, want)
					}
				}
			}
		}
	})
}

// TestLongFloatRowsSpecialValues checks, for long F32 and F16 rows (which
// the four-row kernels hand to the one-row ones), that the one-row,
// four-row and tile paths agree bit for bit also on rows of zeros and on
// rows holding a NaN, an infinity or a negative zero, where the order of
// the float operations shows in the sign of a zero or in which NaN comes
// out.
func TestLongFloatRowsSpecialValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	rowsOf := func(n int) map[string][]float32 {
		normal := func() []float32 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			return x
		}
		nan, inf, negZero, lastNaN := normal(), normal(), make([]float32, n), normal()
		nan[n/3] = float32(math.NaN())
		inf[n-1] = float32(math.Inf(-1))
		for i := range negZero {
			negZero[i] = float32(math.Copysign(0, -1))
		}
		lastNaN[n-1] = float32(math.NaN())
		return map[string][]float32{"zeros": make([]float32, n), "nan": nan, "inf": inf, "-0": negZero, "last nan": lastNaN}
	}
	for _, s := range Available() {
		for _, wt := range []tensor.Type{tensor.F32, tensor.F16} {
			for _, n := range []int{1024, 1027, 1032, 2048, 2053, 4096 + 300} {
				names := []string{"zeros", "nan", "inf", "-0", "last nan"}
				rows := rowsOf(n)
				rb := RowBytes(wt, n)
				w := make([]byte, 4*rb)
				xq := make([]byte, 4*rb)
				for tok, name := range names[:4] {
					s.QuantizeRow(wt, rows[name], w[tok*rb:])
				}
				x := activationRows(rng, n)["normal"]
				for tok := range 4 {
					s.QuantizeRow(wt, x, xq[tok*rb:])
				}
				s.QuantizeRow(wt, rows[names[4]], xq[3*rb:])
				for _, nTok := range []int{1, 4} {
					dst := make([]float32, 4*nTok)
					s.MatMulRows(wt, w, rb, 0, 4, xq, rb, nTok, n, dst, 4)
					for tok := range nTok {
						for r := range 4 {
							want := s.Dot(wt, w[r*rb:(r+1)*rb], xq[tok*rb:(tok+1)*rb], n)
							if got := dst[tok*4+r]; math.Float32bits(got) != math.Float32bits(want) {
								t.Errorf("%s %s n=%d nTok=%d: row %q × token %d gives %g (%#x), Dot %g (%#x)",
									s.Name(), wt, n, nTok, names[r], tok, got, math.Float32bits(got), want, math.Float32bits(want))
							}
						}
					}
				}
			}
		}
	}
}
