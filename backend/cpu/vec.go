package cpu

import (
	"math"

	"llamago/tensor"
)

// vecLoops are the inner loops of attention and SwiGLU: portable Go, or
// assembly where the CPU has the instructions. A backend picks one set
// when it is made; tests compare the sets with each other and with plain
// float64 loops.
type vecLoops struct {
	name string
	// scores sets s[j] = scale · q·keys[j*stride : j*stride+len(q)].
	scores func(s, q, keys []float32, stride int, scale float32)
	// weightedSum sets out = Σ_j w[j] · vals[j*stride : j*stride+len(out)].
	weightedSum func(out, w, vals []float32, stride int)
	// expSum sets s[j] = e^(s[j]-shift) and returns the sum of the
	// exponentials in float64, as ggml's softmax sums them.
	expSum func(s []float32, shift float32) float64
	// swiglu sets dst = silu(gate)·up with silu(x) = x/(1+e⁻ˣ).
	swiglu func(dst, gate, up []float32)
	// roundF16 rounds each value to the nearest F16, as roundF16 does.
	roundF16 func(x []float32)
	// max is the largest value of s, -Inf for none.
	max func(s []float32) float32
	// scale multiplies s by k.
	scale func(s []float32, k float32)

	// The F16 cache's loops: scoresF16 and weightedSumF16 are scores
	// and weightedSum over F16 keys and values, with the same results as
	// over the same values in float32; toF16 rounds src into dst.
	scoresF16      func(s, q []float32, keys []uint16, stride int, scale float32)
	weightedSumF16 func(out, w []float32, vals []uint16, stride int)
	toF16          func(dst []uint16, src []float32)
}

func portableLoops() vecLoops {
	return vecLoops{name: "go", scores: scoresGo, weightedSum: weightedSumGo, expSum: expSumGo, swiglu: swigluGo, roundF16: roundF16, max: maxGo, scale: scaleGo,
		scoresF16: scoresF16Go, weightedSumF16: weightedSumF16Go, toF16: toF16Go}
}

// softmax replaces s by its softmax: like ggml, the exponentials are
// summed in float64 and scaled by the float32 reciprocal of the sum.
func (l *vecLoops) softmax(s []float32) {
	l.scale(s, float32(1/l.expSum(s, l.max(s))))
}

func maxGo(s []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

func scaleGo(s []float32, k float32) {
	for i := range s {
		s[i] *= k
	}
}

func scoresGo(s, q, keys []float32, stride int, scale float32) {
	hd := len(q)
	for j := range s {
		k := keys[j*stride : j*stride+hd]
		k = k[:len(q)]
		var d0, d1, d2, d3 float32
		i := 0
		for ; i+4 <= len(q); i += 4 {
			d0 += q[i] * k[i]
			d1 += q[i+1] * k[i+1]
			d2 += q[i+2] * k[i+2]
			d3 += q[i+3] * k[i+3]
		}
		for ; i < len(q); i++ {
			d0 += q[i] * k[i]
		}
		s[j] = ((d0 + d1) + (d2 + d3)) * scale
	}
}

func weightedSumGo(out, w, vals []float32, stride int) {
	clear(out)
	hd := len(out)
	for j, wj := range w {
		v := vals[j*stride : j*stride+hd]
		v = v[:len(out)]
		for i, x := range v {
			out[i] += wj * x
		}
	}
}

func expSumGo(s []float32, shift float32) float64 {
	var sum float64
	for j, v := range s {
		e := expf(v - shift)
		s[j] = e
		sum += float64(e)
	}
	return sum
}

// span is how many values rows of width values, stride apart, cover.
func span(rows, stride, width int) int {
	if rows == 0 {
		return 0
	}
	return (rows-1)*stride + width
}

// The portable F16 loops widen each value as they go, in the order of the
// float32 loops, so that their results are the float32 loops' bit for bit.

func scoresF16Go(s, q []float32, keys []uint16, stride int, scale float32) {
	hd := len(q)
	for j := range s {
		k := keys[j*stride : j*stride+hd]
		k = k[:len(q)]
		var d0, d1, d2, d3 float32
		i := 0
		for ; i+4 <= len(q); i += 4 {
			d0 += q[i] * tensor.FP16ToFloat32(k[i])
			d1 += q[i+1] * tensor.FP16ToFloat32(k[i+1])
			d2 += q[i+2] * tensor.FP16ToFloat32(k[i+2])
			d3 += q[i+3] * tensor.FP16ToFloat32(k[i+3])
		}
		for ; i < len(q); i++ {
			d0 += q[i] * tensor.FP16ToFloat32(k[i])
		}
		s[j] = ((d0 + d1) + (d2 + d3)) * scale
	}
}

func weightedSumF16Go(out, w []float32, vals []uint16, stride int) {
	clear(out)
	hd := len(out)
	for j, wj := range w {
		v := vals[j*stride : j*stride+hd]
		v = v[:len(out)]
		for i, x := range v {
			out[i] += wj * tensor.FP16ToFloat32(x)
		}
	}
}

func toF16Go(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = tensor.Float32ToFP16(v)
	}
}
