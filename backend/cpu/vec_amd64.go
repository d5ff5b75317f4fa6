package cpu

import (
	"math"

	"golang.org/x/sys/cpu"
)

// The assembly loops of vec_amd64.s. They take pointers and counts; the Go
// wrappers below check the slices' lengths first, so that the loops never
// read or write outside them.

//go:noescape
func expSumAVX2(s *float32, n int, shift float32) float64

//go:noescape
func swigluAVX2(dst, gate, up *float32, n int)

//go:noescape
func scoresAVX2(s, q, keys *float32, n, stride, hd int, scale float32)

//go:noescape
func maxAVX2(s *float32, n int) float32

//go:noescape
func scaleAVX2(s *float32, n int, k float32)

//go:noescape
func roundF16F16C(x *float32, n int)

//go:noescape
func toF16F16C(dst *uint16, src *float32, n int)

//go:noescape
func scoresF16AVX2(s, q *float32, keys *uint16, n, stride, hd int, scale float32)

//go:noescape
func wsumF16x1AVX2(out, w *float32, vals *uint16, n, stride int)

//go:noescape
func wsumF16x2AVX2(out, w *float32, vals *uint16, n, stride int)

//go:noescape
func wsumF16x4AVX2(out, w *float32, vals *uint16, n, stride int)

//go:noescape
func wsum1AVX2(out, w, vals *float32, n, stride int)

//go:noescape
func wsum2AVX2(out, w, vals *float32, n, stride int)

//go:noescape
func wsum4AVX2(out, w, vals *float32, n, stride int)

func bestLoops() vecLoops {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C {
		return avx2Loops()
	}
	return portableLoops()
}

func avx2Loops() vecLoops {
	return vecLoops{name: "avx2", scores: scoresVec, weightedSum: weightedSumVec, expSum: expSumVec, swiglu: swigluVec, roundF16: roundF16Vec, max: maxVec, scale: scaleVec,
		scoresF16: scoresF16Vec, weightedSumF16: weightedSumF16Vec, toF16: toF16Vec}
}

func expSumVec(s []float32, shift float32) float64 {
	n4 := len(s) &^ 3
	var sum float64
	if n4 > 0 {
		sum = expSumAVX2(&s[0], n4, shift)
	}
	for j := n4; j < len(s); j++ {
		e := expf(s[j] - shift)
		s[j] = e
		sum += float64(e)
	}
	return sum
}

func swigluVec(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	n4 := len(dst) &^ 3
	if n4 > 0 {
		swigluAVX2(&dst[0], &gate[0], &up[0], n4)
	}
	swigluGo(dst[n4:], gate[n4:], up[n4:])
}

func scoresVec(s, q, keys []float32, stride int, scale float32) {
	hd := len(q)
	if hd%8 != 0 || len(s) == 0 {
		scoresGo(s, q, keys, stride, scale)
		return
	}
	_ = keys[span(len(s), stride, hd)-1]
	scoresAVX2(&s[0], &q[0], &keys[0], len(s), stride, hd, scale)
}

func weightedSumVec(out, w, vals []float32, stride int) {
	hd := len(out)
	if hd%8 != 0 || len(w) == 0 {
		weightedSumGo(out, w, vals, stride)
		return
	}
	_ = vals[span(len(w), stride, hd)-1]
	for col := 0; col < hd; {
		switch left := hd - col; {
		case left >= 32:
			wsum4AVX2(&out[col], &w[0], &vals[col], len(w), stride)
			col += 32
		case left >= 16:
			wsum2AVX2(&out[col], &w[0], &vals[col], len(w), stride)
			col += 16
		default:
			wsum1AVX2(&out[col], &w[0], &vals[col], len(w), stride)
			col += 8
		}
	}
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

func scoresF16Vec(s, q []float32, keys []uint16, stride int, scale float32) {
	hd := len(q)
	if hd%8 != 0 || len(s) == 0 {
		scoresF16Go(s, q, keys, stride, scale)
		return
	}
	_ = keys[span(len(s), stride, hd)-1]
	scoresF16AVX2(&s[0], &q[0], &keys[0], len(s), stride, hd, scale)
}

func weightedSumF16Vec(out, w []float32, vals []uint16, stride int) {
	hd := len(out)
	if hd%8 != 0 || len(w) == 0 {
		weightedSumF16Go(out, w, vals, stride)
		return
	}
	_ = vals[span(len(w), stride, hd)-1]
	for col := 0; col < hd; {
		switch left := hd - col; {
		case left >= 32:
			wsumF16x4AVX2(&out[col], &w[0], &vals[col], len(w), stride)
			col += 32
		case left >= 16:
			wsumF16x2AVX2(&out[col], &w[0], &vals[col], len(w), stride)
			col += 16
		default:
			wsumF16x1AVX2(&out[col], &w[0], &vals[col], len(w), stride)
			col += 8
		}
	}
}
