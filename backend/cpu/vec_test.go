package cpu

import (
	"math"
	"math/rand/v2"
	"testing"

	"llamago/tensor"
)

// loopSets are the sets this machine can run: the portable one and,
// where the CPU has the instructions, the assembly ones.
func loopSets(t *testing.T) []vecLoops {
	sets := append([]vecLoops{portableLoops()}, assemblyLoops()...)
	if len(sets) == 1 {
		t.Log("no assembly loops on this CPU; testing the portable ones only")
	}
	return sets
}

func randSlice(r *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64() * scale)
	}
	return x
}

func TestExpSumMatchesVexpf(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	special := []float32{0, float32(math.Copysign(0, -1)), -1e-30, 88.7, 88.8, 88.9, 89, 100, -103.9, -104, -104.1, -200,
		float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.NaN()), 1, -1, 0.5, -87.3, 20, -20}
	for _, l := range loopSets(t) {
		for _, n := range []int{0, 1, 3, 4, 5, 8, 17, 64, 1001} {
			for _, shift := range []float32{0, 3.5, -2} {
				x := make([]float32, n)
				for i := range x {
					if r.IntN(4) == 0 {
						x[i] = special[r.IntN(len(special))]
					} else {
						x[i] = float32(r.Float64()*200 - 110)
					}
				}
				got := append([]float32(nil), x...)
				sum := l.expSum(got, shift)
				var want float64
				for i, v := range x {
					e := vexpf(v - shift)
					if math.Float32bits(got[i]) != math.Float32bits(e) && !(e != e && got[i] != got[i]) {
						t.Fatalf("%s: n %d: exp(%g - %g) = %g, want %g", l.name, n, v, shift, got[i], e)
					}
					want += float64(e)
				}
				// Groups are summed in float32 (reduce16), so the sum is
				// within float32 rounding of the exact one.
				if !(sum == want || math.Abs(sum-want) <= 1e-6*math.Abs(want) || (math.IsNaN(sum) && math.IsNaN(want))) {
					t.Fatalf("%s: n %d: sum %g, want %g", l.name, n, sum, want)
				}
				ref := append([]float32(nil), x...)
				if refSum := expSumGo(ref, shift); math.Float64bits(refSum) != math.Float64bits(sum) && !(math.IsNaN(sum) && math.IsNaN(refSum)) {
					t.Fatalf("%s: n %d: sum %g, portable loops %g", l.name, n, sum, refSum)
				}
			}
		}
	}
}

func TestRoundF16Loops(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	xs := []float32{0, 1, -1, 65504, 65519, 65520, 1e-5, 6.1e-5, 6.2e-5, -3.3e-8, 1e9, float32(math.Inf(-1)), float32(math.NaN()), 2.98e-8, 5.96e-8, 8.94e-8}
	for range 100000 {
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	for range 10000 {
		xs = append(xs, float32(r.Float64()))
	}
	for _, l := range loopSets(t) {
		for _, n := range []int{0, 3, 8, 13, len(xs)} {
			got := append([]float32(nil), xs[:n]...)
			l.roundF16(got)
			want := append([]float32(nil), xs[:n]...)
			roundF16(want)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(want[i] != want[i] && got[i] != got[i]) {
					t.Fatalf("%s: roundF16(%g) = %g, want %g", l.name, xs[i], got[i], want[i])
				}
			}
		}
	}
}

func TestMaxAndScaleLoops(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 20))
	for _, l := range loopSets(t) {
		if m := l.max(nil); !math.IsInf(float64(m), -1) {
			t.Fatalf("%s: max of nothing = %g", l.name, m)
		}
		for _, n := range []int{1, 7, 8, 9, 16, 33, 1000} {
			for _, at := range []int{0, n / 2, n - 1} {
				s := randSlice(r, n, 5)
				s[at] = 100
				if m := l.max(s); m != 100 {
					t.Fatalf("%s: n %d: max %g with 100 at %d", l.name, n, m, at)
				}
				want := append([]float32(nil), s...)
				for i := range want {
					want[i] *= 0.37
				}
				l.scale(s, 0.37)
				for i := range s {
					if s[i] != want[i] {
						t.Fatalf("%s: n %d: scaled %d = %g, want %g", l.name, n, i, s[i], want[i])
					}
				}
			}
		}
	}
}

func TestSwiGLULoops(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, l := range loopSets(t) {
		for _, n := range []int{0, 1, 4, 7, 172, 1000} {
			g, u := randSlice(r, n, 6), randSlice(r, n, 1)
			if n > 5 {
				g[0], g[1], g[2], g[3], g[4] = 120, -120, float32(math.Inf(1)), float32(math.Inf(-1)), 0
			}
			got, want := make([]float32, n), make([]float32, n)
			l.swiglu(got, g, u)
			// ggml's vector SiLU on whole groups of 16, the scalar
			// one on the rest.
			for i := range want {
				if i < n&^15 {
					want[i] = g[i] / (1 + vexpf(-g[i])) * u[i]
				} else {
					want[i] = g[i] / (1 + expf(-g[i])) * u[i]
				}
			}
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(want[i] != want[i] && got[i] != got[i]) {
					t.Fatalf("%s: silu(%g)·%g = %g, want %g", l.name, g[i], u[i], got[i], want[i])
				}
			}
		}
	}
}

func TestScoresAndWeightedSumLoops(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	for _, l := range loopSets(t) {
		for _, hd := range []int{5, 8, 16, 24, 40, 64, 72, 128, 200} {
			for _, n := range []int{0, 1, 2, 3, 4, 5, 7, 8, 13, 100} {
				stride := hd * 3
				keys := randSlice(r, span(n, stride, hd), 1)
				q := randSlice(r, hd, 1)
				s := make([]float32, n)
				l.scores(s, q, keys, stride, 0.25)
				ref := make([]float32, n)
				scoresGo(ref, q, keys, stride, 0.25)
				for j := range n {
					if math.Float32bits(s[j]) != math.Float32bits(ref[j]) {
						t.Fatalf("%s: hd %d n %d: score %d = %g, portable loops %g", l.name, hd, n, j, s[j], ref[j])
					}
				}
				for j := range n {
					var want, mag float64
					for i := range hd {
						want += float64(q[i]) * float64(keys[j*stride+i])
						mag += math.Abs(float64(q[i]) * float64(keys[j*stride+i]))
					}
					want *= 0.25
					if d := math.Abs(float64(s[j]) - want); d > 1e-6*mag {
						t.Fatalf("%s: hd %d n %d: score %d = %g, want %g", l.name, hd, n, j, s[j], want)
					}
					// A position's score must not depend on how many
					// positions are scored with it.
					one := []float32{0}
					l.scores(one, q, keys[j*stride:], stride, 0.25)
					if math.Float32bits(one[0]) != math.Float32bits(s[j]) {
						t.Fatalf("%s: hd %d: score %d is %g alone and %g among %d", l.name, hd, j, one[0], s[j], n)
					}
				}

				w := randSlice(r, n, 1)
				for _, lanes := range []int{tiledLanes, vecLanes} {
					out := randSlice(r, hd, 1) // overwritten
					l.weightedSum(out, w, keys, nil, stride, lanes, make([]float32, lanes*hd))
					ref := make([]float32, hd)
					pl := portableLoops()
					pl.weightedSum(ref, w, keys, nil, stride, lanes, make([]float32, lanes*hd))
					for i := range hd {
						if math.Float32bits(out[i]) != math.Float32bits(ref[i]) {
							t.Fatalf("%s: hd %d n %d lanes %d: sum %d = %g, portable loops %g", l.name, hd, n, lanes, i, out[i], ref[i])
						}
					}
					for i := range hd {
						var want, mag float64
						for j := range n {
							want += float64(w[j]) * float64(keys[j*stride+i])
							mag += math.Abs(float64(w[j]) * float64(keys[j*stride+i]))
						}
						if d := math.Abs(float64(out[i]) - want); d > 1e-6*mag {
							t.Fatalf("%s: hd %d n %d: sum %d = %g, want %g", l.name, hd, n, i, out[i], want)
						}
					}
				}
			}
		}
	}
}

func BenchmarkLoops(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	sets := append([]vecLoops{portableLoops()}, assemblyLoops()...)
	for _, l := range sets {
		x := randSlice(r, 4096, 3)
		y := randSlice(r, 4096, 3)
		b.Run(l.name+"/expSum4096", func(b *testing.B) {
			for b.Loop() {
				copy(y, x)
				l.expSum(y, 5)
			}
		})
		b.Run(l.name+"/swiglu4096", func(b *testing.B) {
			for b.Loop() {
				l.swiglu(y, x, x)
			}
		})
		for _, hd := range []int{8, 64} {
			keys := randSlice(r, 512*hd*4, 1)
			s := make([]float32, 512)
			out := make([]float32, hd)
			acc := make([]float32, vecLanes*hd)
			b.Run(l.name+"/scores512/hd"+itoa(hd), func(b *testing.B) {
				for b.Loop() {
					l.scores(s, x[:hd], keys, hd*4, 0.1)
				}
			})
			b.Run(l.name+"/weightedSum512/hd"+itoa(hd), func(b *testing.B) {
				for b.Loop() {
					l.weightedSum(out, s, keys, nil, hd*4, tiledLanes, acc)
				}
			})
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

// TestF16LoopsMatchFloat32Loops checks that the F16 cache's weighted sums
// give, bit for bit, what the float32 ones give on the widened values, that
// its scores equal the portable loops' and are accurate, and that toF16
// rounds as roundF16 does.
func TestF16LoopsMatchFloat32Loops(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	widen := func(h []uint16) []float32 {
		f := make([]float32, len(h))
		for i, v := range h {
			f[i] = tensor.FP16ToFloat32(v)
		}
		return f
	}
	for _, l := range loopSets(t) {
		for _, n := range []int{0, 1, 7, 8, 9, 100} {
			src := randSlice(r, n, 300)
			h := make([]uint16, n)
			l.toF16(h, src)
			rounded := append([]float32(nil), src...)
			roundF16(rounded)
			for i, v := range widen(h) {
				if math.Float32bits(v) != math.Float32bits(rounded[i]) {
					t.Fatalf("%s: toF16(%g) widens to %g, want %g", l.name, src[i], v, rounded[i])
				}
			}
		}
		for _, hd := range []int{5, 8, 16, 24, 64, 72, 128, 144} {
			for _, n := range []int{1, 3, 4, 5, 13, 64} {
				stride := hd * 2
				vals := make([]uint16, span(n, stride, hd))
				l.toF16(vals, randSlice(r, len(vals), 1))
				wide := widen(vals)
				q := randSlice(r, hd, 1)
				for _, tiled := range []bool{false, true} {
					got, want := make([]float32, n), make([]float32, n)
					l.scoresF16(got, q, vals, stride, 0.3, tiled)
					scoresF16Go(want, q, vals, stride, 0.3, tiled)
					for j := range want {
						if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
							t.Fatalf("%s: hd %d n %d tiled %v: F16 score %d = %g, portable %g", l.name, hd, n, tiled, j, got[j], want[j])
						}
						var ref, mag float64
						for i := range hd {
							ref += float64(q[i]) * float64(wide[j*stride+i])
							mag += math.Abs(float64(q[i]) * float64(wide[j*stride+i]))
						}
						if d := math.Abs(float64(got[j]) - 0.3*ref); d > 1e-6*mag {
							t.Fatalf("%s: hd %d n %d: F16 score %d = %g, want %g", l.name, hd, n, j, got[j], 0.3*ref)
						}
					}
				}
				w := randSlice(r, n, 1)
				for _, lanes := range []int{tiledLanes, vecLanes} {
					gotOut, wantOut := make([]float32, hd), make([]float32, hd)
					l.weightedSum(gotOut, w, nil, vals, stride, lanes, make([]float32, lanes*hd))
					l.weightedSum(wantOut, w, wide, nil, stride, lanes, make([]float32, lanes*hd))
					for i := range wantOut {
						if math.Float32bits(gotOut[i]) != math.Float32bits(wantOut[i]) {
							t.Fatalf("%s: hd %d n %d: F16 sum %d = %g, float32 %g", l.name, hd, n, i, gotOut[i], wantOut[i])
						}
					}
				}
			}
		}
	}
}

// TestRoPELoops checks every set's rotation against the portable one bit
// for bit, over head sizes, rotated widths and both pairings.
func TestRoPELoops(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	for _, l := range loopSets(t) {
		for _, shape := range []struct{ heads, headDim, dims int }{{1, 8, 8}, {4, 16, 12}, {32, 64, 64}, {3, 128, 128}, {2, 80, 64}, {5, 6, 4}} {
			for _, neoX := range []bool{false, true} {
				x := randSlice(r, shape.heads*shape.headDim, 3)
				cache := make([]float32, shape.dims)
				for i := 0; i < shape.dims; i += 2 {
					a := r.Float64() * 1000
					cache[i], cache[i+1] = float32(math.Cos(a)), float32(math.Sin(a))
				}
				got, want := append([]float32(nil), x...), append([]float32(nil), x...)
				l.rope(got, cache, shape.heads, shape.headDim, shape.dims, neoX)
				ropeGo(want, cache, shape.heads, shape.headDim, shape.dims, neoX)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s: %+v neoX %v: value %d = %g, portable %g", l.name, shape, neoX, i, got[i], want[i])
					}
				}
			}
		}
	}
}

// TestExpLoopsDense compares every set's exponential (through expSum) and
// SiLU (through swiglu) with the portable lane functions on a dense sweep
// of the range where e^x goes from 0 through subnormals to overflow, and
// on random bit patterns (NaNs, infinities, huge values).
func TestExpLoopsDense(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	var xs []float32
	for x := float32(-110); x < 95; x += 0.00137 {
		xs = append(xs, x)
	}
	for range 100000 {
		xs = append(xs, math.Float32frombits(r.Uint32()))
	}
	xs = xs[:len(xs)&^15]
	ones := make([]float32, len(xs))
	for i := range ones {
		ones[i] = 1
	}
	for _, l := range loopSets(t) {
		got := append([]float32(nil), xs...)
		l.expSum(got, 0)
		silu := make([]float32, len(xs))
		l.swiglu(silu, xs, ones)
		for i, x := range xs {
			if want := vexpf(x); math.Float32bits(got[i]) != math.Float32bits(want) && !(want != want && got[i] != got[i]) {
				t.Fatalf("%s: exp(%g = %#x) = %g, want %g", l.name, x, math.Float32bits(x), got[i], want)
			}
			if want := vsilu(x); math.Float32bits(silu[i]) != math.Float32bits(want) && !(want != want && silu[i] != silu[i]) {
				t.Fatalf("%s: silu(%g = %#x) = %g, want %g", l.name, x, math.Float32bits(x), silu[i], want)
			}
		}
	}
}
