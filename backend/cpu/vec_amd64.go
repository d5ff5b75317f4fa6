package cpu

import (
	"math"

	"golang.org/x/sys/cpu"
)

// The assembly loops of vec_amd64.s. They take pointers and counts; the Go
// wrappers below check the slices' lengths first, so that the loops never
// read or write outside them.

//go:noescape
func maxAVX2(s *float32, n int) float32

//go:noescape
func scaleAVX2(s *float32, n int, k float32)

//go:noescape
func roundF16F16C(x *float32, n int)

//go:noescape
func toF16F16C(dst *uint16, src *float32, n int)

//go:noescape
func accLanes64AVX2(acc, w, vals *float32, n, stride, lanes, hd int)

//go:noescape
func accLanes8AVX2(acc, w, vals *float32, n, stride, lanes, hd int)

//go:noescape
func accLanes64F16AVX2(acc, w *float32, vals *uint16, n, stride, lanes, hd int)

//go:noescape
func accLanes8F16AVX2(acc, w *float32, vals *uint16, n, stride, lanes, hd int)

//go:noescape
func dotsVecAVX2(s, q, keys *float32, n, stride, np, hd int)

//go:noescape
func dotsTiledF16AVX2(s, q *float32, keys *uint16, n, stride, hd int)

//go:noescape
func dotsVecF16AVX2(s, q *float32, keys *uint16, n, stride, np, hd int)

//go:noescape
func reduceLanesAVX2(out, acc *float32, hd, lanes int)

//go:noescape
func ropeAVX2(x, cache *float32, heads, headDim, dims int)

//go:noescape
func dotsVecAVX512(s, q, keys *float32, n, stride, np, hd int)

//go:noescape
func dotsVecF16AVX512(s, q *float32, keys *uint16, n, stride, np, hd int)

//go:noescape
func dotsTiledF16AVX512(s, q *float32, keys *uint16, n, stride, hd int)

//go:noescape
func expSumAVX2(s *float32, n int, shift float32) float64

//go:noescape
func swigluAVX2(dst, gate, up *float32, n int)

//go:noescape
func expSumAVX512(s *float32, n int, shift float32) float64

//go:noescape
func swigluAVX512(dst, gate, up *float32, n int)

// bestLoops picks the fastest set this CPU runs: AVX-512 where it has it,
// else AVX2 with FMA and F16C, else the portable loops. All give the same
// bits: those of llama.cpp's AVX-512 build.
func bestLoops() vecLoops {
	sets := assemblyLoops()
	if len(sets) == 0 {
		return portableLoops()
	}
	return sets[len(sets)-1]
}

// assemblyLoops are the assembly sets this CPU can run, slowest first.
func assemblyLoops() []vecLoops {
	var sets []vecLoops
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C {
		sets = append(sets, avx2Loops())
		if cpu.X86.HasAVX512F {
			sets = append(sets, avx512Loops())
		}
	}
	return sets
}

func avx2Loops() vecLoops {
	return vecLoops{name: "avx2", scores: scoresWith(dotsVecAVX2), accLanes: accLanesVec, reduceLanes: reduceLanesVec, rope: ropeVec, expSum: expSumAVX2Vec, swiglu: swigluAVX2Vec, roundF16: roundF16Vec, max: maxVec, scale: scaleVec,
		scoresF16: scoresF16With(dotsVecF16AVX2, dotsTiledF16AVX2), accLanesF16: accLanesF16Vec, toF16: toF16Vec}
}

// avx512Loops are the AVX2 loops with the exponential's and the KQ dot
// products in AVX-512.
func avx512Loops() vecLoops {
	l := avx2Loops()
	l.name, l.expSum, l.swiglu = "avx512", expSumVec, swigluVec
	l.scores, l.scoresF16 = scoresWith(dotsVecAVX512), scoresF16With(dotsVecF16AVX512, dotsTiledF16AVX512)
	return l
}

// accLanesVec is accLanesGo a lane at a time, each lane's chains of
// FMAs in registers, 64 or 8 columns per pass.
func accLanesVec(acc, w, vals []float32, stride, lanes int) {
	hd := len(acc) / lanes
	if hd%8 != 0 || len(w) == 0 {
		accLanesGo(acc, w, vals, stride, lanes)
		return
	}
	_ = vals[span(len(w), stride, hd)-1]
	_ = acc[lanes*hd-1]
	for c := 0; c < hd; {
		if hd-c >= 64 {
			accLanes64AVX2(&acc[c], &w[0], &vals[c], len(w), stride, lanes, hd)
			c += 64
		} else {
			accLanes8AVX2(&acc[c], &w[0], &vals[c], len(w), stride, lanes, hd)
			c += 8
		}
	}
}

func accLanesF16Vec(acc, w []float32, vals []uint16, stride, lanes int) {
	hd := len(acc) / lanes
	if hd%8 != 0 || len(w) == 0 {
		accLanesF16Go(acc, w, vals, stride, lanes)
		return
	}
	_ = vals[span(len(w), stride, hd)-1]
	_ = acc[lanes*hd-1]
	for c := 0; c < hd; {
		if hd-c >= 64 {
			accLanes64F16AVX2(&acc[c], &w[0], &vals[c], len(w), stride, lanes, hd)
			c += 64
		} else {
			accLanes8F16AVX2(&acc[c], &w[0], &vals[c], len(w), stride, lanes, hd)
			c += 8
		}
	}
}

// dotsKernel and dotsF16Kernel are the assembly KQ loops: s[j] = q·key j
// for n keys stride apart, in ggml_vec_dot_f32's order (np = the head
// size rounded down to its groups of 64) or, with F16 keys, in
// ggml_vec_dot_f16's (np) or tinyBLAS's order.
type (
	dotsKernel      func(s, q, keys *float32, n, stride, np, hd int)
	dotsF16Kernel   func(s, q *float32, keys *uint16, n, stride, np, hd int)
	dotsTiledKernel func(s, q *float32, keys *uint16, n, stride, hd int)
)

// scoresWith returns scoresGo in assembly with the loop dots (head sizes
// that are multiples of 8; others take the portable loop).
func scoresWith(dots dotsKernel) func(s, q, keys []float32, stride int, scale float32) {
	return func(s, q, keys []float32, stride int, scale float32) {
		hd := len(q)
		if hd%8 != 0 || len(s) == 0 {
			scoresGo(s, q, keys, stride, scale)
			return
		}
		_ = keys[span(len(s), stride, hd)-1]
		dots(&s[0], &q[0], &keys[0], len(s), stride, hd&^63, hd)
		for j := range s {
			s[j] *= scale
		}
	}
}

// scoresF16With returns scoresF16Go in assembly with the loops vec (one
// token's order) and tiled (a batch's, head sizes that are multiples of
// 16).
func scoresF16With(vec dotsF16Kernel, tiled dotsTiledKernel) func(s, q []float32, keys []uint16, stride int, scale float32, tiledOrder bool) {
	return func(s, q []float32, keys []uint16, stride int, scale float32, tiledOrder bool) {
		hd := len(q)
		if hd%8 != 0 || len(s) == 0 {
			scoresF16Go(s, q, keys, stride, scale, tiledOrder)
			return
		}
		_ = keys[span(len(s), stride, hd)-1]
		if tiledOrder && hd%16 == 0 {
			tiled(&s[0], &q[0], &keys[0], len(s), stride, hd)
		} else {
			vec(&s[0], &q[0], &keys[0], len(s), stride, hd&^63, hd)
		}
		for j := range s {
			s[j] *= scale
		}
	}
}

func expSumAVX2Vec(s []float32, shift float32) float64 {
	n16 := len(s) &^ 15
	var sum float64
	if n16 > 0 {
		sum = expSumAVX2(&s[0], n16, shift)
	}
	if n16 < len(s) {
		sum += expSumGo(s[n16:], shift)
	}
	return sum
}

func swigluAVX2Vec(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	n16 := len(dst) &^ 15
	if n16 > 0 {
		swigluAVX2(&dst[0], &gate[0], &up[0], n16)
	}
	swigluGo(dst[n16:], gate[n16:], up[n16:])
}

func expSumVec(s []float32, shift float32) float64 {
	if len(s) == 0 {
		return 0
	}
	return expSumAVX512(&s[0], len(s), shift)
}

func reduceLanesVec(out, acc []float32, lanes int) {
	hd := len(out)
	if hd%8 != 0 || hd == 0 {
		reduceLanesGo(out, acc, lanes)
		return
	}
	_ = acc[lanes*hd-1]
	reduceLanesAVX2(&out[0], &acc[0], hd, lanes)
}

func ropeVec(x, cache []float32, heads, headDim, dims int, neoX bool) {
	if neoX || dims%8 != 0 || heads == 0 {
		ropeGo(x, cache, heads, headDim, dims, neoX)
		return
	}
	_ = x[span(heads, headDim, dims)-1]
	_ = cache[dims-1]
	ropeAVX2(&x[0], &cache[0], heads, headDim, dims)
}

func swigluVec(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	n16 := len(dst) &^ 15
	if n16 > 0 {
		swigluAVX512(&dst[0], &gate[0], &up[0], n16)
	}
	swigluGo(dst[n16:], gate[n16:], up[n16:])
}

func roundF16Vec(x []float32) {
	n8 := len(x) &^ 7
	if n8 > 0 {
		roundF16F16C(&x[0], n8)
	}
	roundF16(x[n8:])
}

func maxVec(s []float32) float32 {
	n8 := len(s) &^ 7
	m := float32(math.Inf(-1))
	if n8 > 0 {
		m = maxAVX2(&s[0], n8)
	}
	for _, v := range s[n8:] {
		m = max(m, v)
	}
	return m
}

func scaleVec(s []float32, k float32) {
	n8 := len(s) &^ 7
	if n8 > 0 {
		scaleAVX2(&s[0], n8, k)
	}
	for i := n8; i < len(s); i++ {
		s[i] *= k
	}
}

func toF16Vec(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	n8 := len(src) &^ 7
	if n8 > 0 {
		toF16F16C(&dst[0], &src[0], n8)
	}
	toF16Go(dst[n8:], src[n8:])
}
