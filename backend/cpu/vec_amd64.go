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

func bestLoops() vecLoops {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C {
		return avx2Loops()
	}
	return portableLoops()
}

func avx2Loops() vecLoops {
	return vecLoops{name: "avx2", scores: scoresGo, accLanes: accLanesGo, expSum: expSumGo, swiglu: swigluGo, roundF16: roundF16Vec, max: maxVec, scale: scaleVec,
		scoresF16: scoresF16Go, accLanesF16: accLanesF16Go, toF16: toF16Vec}
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
