package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"llamago/tensor"
)

// fastSets are the sets this CPU can run other than the portable one,
// which they are all tested against.
func fastSets(t testing.TB) []*Set {
	all := Available()
	if all[len(all)-1] != Portable() {
		t.Fatalf("Available() does not end with the portable set")
	}
	names := make([]string, len(all))
	for i, s := range all {
		names[i] = s.Name()
	}
	t.Logf("paths: %s (selected: %s)", strings.Join(names, ", "), Selected().Name())
	return all[:len(all)-1]
}

// simdLengths are the row lengths every fast kernel is tested with: each
// block count from 1 to 9 and a long row for the quantized types (the
// kernels unroll over two or four blocks, so every remainder matters);
// for the float types every length up to 70 and lengths around the
// kernels' unroll and chunk sizes.
func simdLengths(wt tensor.Type) []int {
	var ns []int
	switch wt {
	case tensor.F32, tensor.F16, tensor.BF16:
		for n := 1; n <= 70; n++ {
			ns = append(ns, n)
		}
		return append(ns, 127, 128, 129, 511, 512, 513, 1000, 1024, 2048, 4099)
	}
	bs := wt.BlockSize()
	for b := 1; b <= 9; b++ {
		ns = append(ns, b*bs)
	}
	return append(ns, 16*bs, 67*bs)
}

// extremeWeightRow is a weight row that pushes every kernel to the edge
// of its integer ranges: quant bytes taken only from 0x00, 0xff, 0x80 and
// 0x7f (all-zero and all-one nibbles and bit fields, int8 -128 and 127)
// and scales of the largest fp16 magnitude, with random signs where a
// scale may be negative. Float rows get values of large magnitude.
func extremeWeightRow(rng *rand.Rand, wt tensor.Type, n int) []byte {
	picks := []byte{0x00, 0xff, 0x80, 0x7f}
	switch wt {
	case tensor.F32:
		b := make([]byte, 4*n)
		for i := 0; i < n; i++ {
			v := float32(1e18) * float32(rng.IntN(3)-1)
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		return b
	case tensor.F16, tensor.BF16:
		b := make([]byte, 2*n)
		for i := 0; i < n; i++ {
			v := float32(65504) * float32(rng.IntN(3)-1)
			h := tensor.Float32ToFP16(v)
			if wt == tensor.BF16 {
				h = tensor.Float32ToBF16(v * 1e12)
			}
			binary.LittleEndian.PutUint16(b[2*i:], h)
		}
		return b
	}
	bs, ts := wt.BlockSize(), wt.TypeSize()
	b := make([]byte, n/bs*ts)
	for i := range b {
		b[i] = picks[rng.IntN(len(picks))]
	}
	for blk := 0; blk < n/bs; blk++ {
		for _, off := range scaleOffsets[wt] {
			v := float32(65504)
			if rng.IntN(2) == 0 {
				v = -v
			}
			binary.LittleEndian.PutUint16(b[blk*ts+off:], tensor.Float32ToFP16(v))
		}
	}
	return b
}

// rawActivationRow builds an activation row of type vt directly rather
// than through QuantizeRow: quants drawn from pick (which must stay in
// [-127, 127], the range QuantizeRow produces), random finite scales, and
// for Q8_K the group sums that belong to the quants.
func rawActivationRow(rng *rand.Rand, vt tensor.Type, n int, pick func() int8) []byte {
	b := make([]byte, RowBytes(vt, n))
	scale := func() float32 { return float32(math.Ldexp(rng.Float64()+0.5, rng.IntN(20)-10)) }
	switch vt {
	case tensor.Q8_0, tensor.Q8_1:
		ts, off := q8_0Bytes, 2
		if vt == tensor.Q8_1 {
			ts, off = q8_1Bytes, 4
		}
		for blk := 0; blk < n/qk; blk++ {
			y := b[blk*ts:]
			binary.LittleEndian.PutUint16(y, tensor.Float32ToFP16(scale()))
			if vt == tensor.Q8_1 {
				binary.LittleEndian.PutUint16(y[2:], tensor.Float32ToFP16(scale()*float32(rng.IntN(64)-32)))
			}
			for j := 0; j < qk; j++ {
				y[off+j] = byte(pick())
			}
		}
	case tensor.Q8_K:
		for blk := 0; blk < n/qkK; blk++ {
			y := b[blk*q8_KBytes:]
			binary.LittleEndian.PutUint32(y, math.Float32bits(scale()))
			for g := 0; g < 16; g++ {
				var sum int
				for j := 0; j < 16; j++ {
					q := pick()
					y[4+16*g+j] = byte(q)
					sum += int(q)
				}
				binary.LittleEndian.PutUint16(y[4+qkK+2*g:], uint16(int16(sum)))
			}
		}
	default:
		return nil
	}
	return b
}

// TestSetsMatchPortable runs every kernel of every set this CPU can run
// on random and adversarial rows and compares it with the portable
// kernel: integer block sums are exact in both, only the float32
// accumulation order differs, so they must agree to 1e-5 of Σ|w·x|.
func TestSetsMatchPortable(t *testing.T) {
	sets := fastSets(t)
	if len(sets) == 0 {
		t.Skip("no SIMD kernels on this CPU")
	}
	rng := rand.New(rand.NewPCG(41, 42))
	for _, s := range sets {
		for _, wt := range weightTypes {
			fast, err := s.DotFunc(wt)
			if err != nil {
				t.Fatal(err)
			}
			ref, _ := Portable().DotFunc(wt)
			vt := VecDotType(wt)
			var worst float64
			var cases int
			for _, n := range simdLengths(wt) {
				weights := map[string][]byte{
					"w0.02":    randomWeightRow(rng, wt, n, 0.02),
					"w1":       randomWeightRow(rng, wt, n, 1),
					"wextreme": extremeWeightRow(rng, wt, n),
				}
				acts := map[string][]byte{}
				for name, x := range activationRows(rng, n) {
					acts[name] = bytesOf(t, vt, x)
				}
				for name, pick := range map[string]func() int8{
					"raw":      func() int8 { return int8(rng.IntN(255) - 127) },
					"raw+127":  func() int8 { return 127 },
					"raw-127":  func() int8 { return -127 },
					"raw±127":  func() int8 { return int8(254*rng.IntN(2) - 127) },
					"raw_zero": func() int8 { return 0 },
				} {
					if xq := rawActivationRow(rng, vt, n, pick); xq != nil {
						acts[name] = xq
					}
				}
				for wname, w := range weights {
					wf := dequantizeWeight(t, wt, w, n)
					for xname, xq := range acts {
						xf := dequantizeActivation(t, vt, xq, n)
						_, mag := exactDot(wt, w, wf, xq, xf)
						want := float64(ref(w, xq, n))
						got := float64(fast(w, xq, n))
						cases++
						if math.IsInf(want, 0) || math.IsNaN(want) || math.IsInf(mag, 0) {
							continue // overflow: only "no panic" is asked
						}
						diff := math.Abs(got - want)
						if math.IsNaN(got) || diff > 1e-5*mag+1e-30 {
							t.Errorf("%s %s n=%d %s x=%s: %.9g, portable %.9g (diff %.3g, Σ|w·x| %.3g)",
								s.Name(), wt, n, wname, xname, got, want, diff, mag)
						}
						if mag > 0 {
							worst = max(worst, diff/mag)
						}
					}
				}
			}
			t.Logf("%-10s %-5s %4d rows: worst |fast - portable| / Σ|w·x| = %.2g", s.Name(), wt, cases, worst)
		}
	}
}

// TestSetsSpecialValues feeds every set non-finite activations and weights
// with arbitrary scale bits: the result may be anything, but no kernel may
// panic or read outside the rows.
func TestSetsSpecialValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.MaxFloat32, -math.MaxFloat32, 1e-45}
	for _, s := range fastSets(t) {
		for _, wt := range weightTypes {
			vt := VecDotType(wt)
			n := 3 * max(wt.BlockSize(), 32)
			x := make([]float32, n)
			for i := range x {
				x[i] = specials[i%len(specials)]
			}
			xq := bytesOf(t, vt, x)
			w := make([]byte, RowBytes(wt, n))
			for i := range w {
				w[i] = byte(rng.Uint32())
			}
			_ = s.Dot(wt, w, xq, n)
		}
	}
}

// TestSetsMatMulRows checks each set's MatMulRows against its own Dot,
// bit for bit: rows taken four at a time by a four-row kernel must give
// what the one-row kernel gives (row counts 1..13 cover groups of four
// and every remainder).
func TestSetsMatMulRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, s := range fastSets(t) {
		for _, wt := range weightTypes {
			for _, shape := range []struct{ rows, nTok int }{{1, 1}, {4, 1}, {6, 1}, {9, 1}, {7, 3}, {10, 2}, {13, 5}} {
				checkMatMulRows(t, rng, s, wt, shape.rows, shape.nTok)
			}
		}
	}
}

func checkMatMulRows(t *testing.T, rng *rand.Rand, s *Set, wt tensor.Type, rows, nTok int) {
	t.Helper()
	vt := VecDotType(wt)
	n := 3 * max(wt.BlockSize(), 32)
	wRowBytes := RowBytes(wt, n) + 3
	w := make([]byte, rows*wRowBytes)
	for r := 0; r < rows; r++ {
		copy(w[r*wRowBytes:], randomWeightRow(rng, wt, n, 0.1))
	}
	xRowBytes := RowBytes(vt, n) + 5
	xq := make([]byte, nTok*xRowBytes)
	for tok := 0; tok < nTok; tok++ {
		QuantizeRow(vt, activationRows(rng, n)["normal"], xq[tok*xRowBytes:])
	}
	dstStride := rows + 2
	const sentinel = -12345
	dst := make([]float32, nTok*dstStride)
	for i := range dst {
		dst[i] = sentinel
	}
	lo, hi := 0, rows
	if rows > 2 {
		lo, hi = 1, rows-1
	}
	s.MatMulRows(wt, w, wRowBytes, lo, hi, xq, xRowBytes, nTok, n, dst, dstStride)
	for tok := 0; tok < nTok; tok++ {
		for r := 0; r < dstStride; r++ {
			got := dst[tok*dstStride+r]
			if r < lo || r >= hi {
				if got != sentinel {
					t.Errorf("%s %s: dst[%d][%d] written outside rows [%d,%d)", s.Name(), wt, tok, r, lo, hi)
				}
				continue
			}
			want := matMulWant(s, wt, w[r*wRowBytes:], xq[tok*xRowBytes:], n, nTok)
			if math.Float32bits(got) != math.Float32bits(want) {
				t.Errorf("%s %s rows=%d nTok=%d: dst[%d][%d] = %g, Dot gives %g", s.Name(), wt, rows, nTok, tok, r, got, want)
			}
		}
	}
}

func TestSetsNoAllocations(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	for _, s := range fastSets(t) {
		for _, wt := range weightTypes {
			vt := VecDotType(wt)
			n := 512
			w := randomWeightRow(rng, wt, n, 0.1)
			xq := bytesOf(t, vt, activationRows(rng, n)["normal"])
			if a := testing.AllocsPerRun(20, func() { s.Dot(wt, w, xq, n) }); a != 0 {
				t.Errorf("%s %s: Dot allocates %v times", s.Name(), wt, a)
			}
			rb := RowBytes(wt, n)
			ws := append(append([]byte{}, w...), w...)
			dst := make([]float32, 4)
			xs := append(append([]byte{}, xq...), xq...)
			if a := testing.AllocsPerRun(20, func() {
				s.MatMulRows(wt, ws, rb, 0, 2, xs, len(xq), 2, n, dst, 2)
			}); a != 0 {
				t.Errorf("%s %s: MatMulRows allocates %v times", s.Name(), wt, a)
			}
		}
	}
}

func TestChooseSetByName(t *testing.T) {
	for _, s := range Available() {
		if got := chooseSet(s.Name()); got != s {
			t.Errorf("chooseSet(%q) = %s", s.Name(), got.Name())
		}
	}
	if got := chooseSet("no-such-set"); got != Available()[0] {
		t.Errorf("chooseSet of an unknown name = %s, want the fastest, %s", got.Name(), Available()[0].Name())
	}
}

// quantizeRows are activation rows that probe the quantizers' edges, on
// top of activationRows: values exactly half-way between two quants (Q8_0
// rounds them away from zero, Q8_K to even), the float32 values just
// below such halves, magnitude ties between +amax and -amax (Q8_K keeps
// the sign of the first), scales that round to fp16 subnormals or
// overflow when inverted (tiny and subnormal values), and blocks with NaN
// or infinities between finite ones (which the SIMD code hands back to the
// portable code mid-row).
func quantizeRows(rng *rand.Rand, n int) map[string][]float32 {
	rows := activationRows(rng, n)
	gen := func(f func(i int) float32) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	rows["halves"] = gen(func(i int) float32 {
		if i%32 == 0 {
			return 127 // amax 127: id = 1, so v·id = v exactly
		}
		return float32(i%64-32) + 0.5
	})
	rows["below-halves"] = gen(func(i int) float32 {
		if i%32 == 0 {
			return -127
		}
		return math.Nextafter32(float32(i%64-32)+0.5, 0)
	})
	rows["ties"] = gen(func(i int) float32 {
		switch i % 16 {
		case 3:
			return -2
		case 9:
			return 2
		}
		return float32(rng.Float64())
	})
	rows["tiny"] = gen(func(int) float32 { return float32(rng.NormFloat64() * 1e-40) })
	rows["fp16-subnormal-d"] = gen(func(int) float32 { return float32(rng.NormFloat64() * 1e-5) })
	rows["nonfinite"] = gen(func(i int) float32 {
		switch {
		case i == n/2:
			return float32(math.NaN())
		case i == n/3:
			return float32(math.Inf(-1))
		case i == n-1:
			return float32(math.Inf(1))
		case i == n/5:
			return math.Float32frombits(0x7fffffff) // a NaN with payload bits
		case i == n/7:
			return 65520 // rounds up to the fp16 infinity
		}
		return float32(rng.NormFloat64())
	})
	return rows
}

// TestSetsQuantizeRow requires every set's quantizers to write exactly
// the portable bytes.
func TestSetsQuantizeRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	for _, s := range fastSets(t) {
		for _, vt := range []tensor.Type{tensor.Q8_0, tensor.Q8_1, tensor.Q8_K, tensor.F16, tensor.BF16, tensor.F32} {
			ns := []int{256, 512, 2304}
			if vt.BlockSize() == 1 {
				ns = append(ns, 1, 7, 77)
			}
			for _, n := range ns {
				for name, x := range quantizeRows(rng, n) {
					want := make([]byte, RowBytes(vt, n))
					Portable().QuantizeRow(vt, x, want)
					got := make([]byte, len(want)+7)
					for i := range got {
						got[i] = 0xA5
					}
					s.QuantizeRow(vt, x, got)
					if i := firstDiff(got[:len(want)], want); i >= 0 {
						t.Errorf("%s %s n=%d %s: byte %d is %#x, portable %#x", s.Name(), vt, n, name, i, got[i], want[i])
					}
					for i := len(want); i < len(got); i++ {
						if got[i] != 0xA5 {
							t.Fatalf("%s %s n=%d %s: wrote byte %d past the row", s.Name(), vt, n, name, i)
						}
					}
				}
			}
		}
	}
}

// FuzzSetsMatchPortable compares every set's kernels with the portable
// ones on weight rows made of the fuzzer's bytes (any bits, including
// non-finite scales: then only "no panic" is checked) and activations
// quantized from values drawn from them.
func FuzzSetsMatchPortable(f *testing.F) {
	f.Add(byte(3), byte(2), []byte{0x80, 0x7f, 0xff, 0x00, 0x3c, 0x12})
	f.Add(byte(10), byte(0), []byte{0xff})
	f.Add(byte(1), byte(5), []byte{0x00, 0x3c, 0x00, 0xbc})
	sets := Available()
	f.Fuzz(func(t *testing.T, typ, blocks byte, data []byte) {
		if len(data) == 0 {
			return
		}
		wt := weightTypes[int(typ)%len(weightTypes)]
		vt := VecDotType(wt)
		n := (int(blocks)%9 + 1) * max(wt.BlockSize(), VecDotType(wt).BlockSize())
		w := make([]byte, RowBytes(wt, n))
		for i := range w {
			w[i] = data[i%len(data)] ^ byte(i/len(data))
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(int8(data[(i*7+3)%len(data)])) * 0.37
		}
		xq := make([]byte, RowBytes(vt, n))
		QuantizeRow(vt, x, xq)
		want := Portable().Dot(wt, w, xq, n)
		wf := make([]float32, n)
		if err := tensor.Dequantize(wt, w, wf); err != nil {
			t.Fatal(err)
		}
		_, mag := exactDot(wt, w, wf, xq, dequantizeActivation(t, vt, xq, n))
		for _, s := range sets[:len(sets)-1] {
			got := s.Dot(wt, w, xq, n)
			if math.IsInf(float64(want), 0) || math.IsNaN(float64(want)) || math.IsInf(mag, 0) || math.IsNaN(mag) {
				continue
			}
			if diff := math.Abs(float64(got) - float64(want)); !(diff <= 1e-5*mag+1e-30) {
				t.Errorf("%s %s n=%d: %g, portable %g (Σ|w·x| %g)", s.Name(), wt, n, got, want, mag)
			}
		}
	})
}
