package cpu

import (
	"math"

	"llamago/tensor"
)

// vecLoops are the inner loops of attention and SwiGLU: portable Go, or
// assembly where the CPU has the instructions. A backend picks one set
// when it is made; tests compare the sets with each other bit for bit, and
// the portable loops with llama.cpp's own results (llamacpp_ops_test.go).
//
// Every loop computes in the order of llama.cpp's CPU build for AVX-512
// (the zen4 variant, which this project's reference machine runs), so that
// its float32 roundings are ggml's: see docs/DESIGN.md, "Bit-exactness with
// llama.cpp's CPU build".
type vecLoops struct {
	name string
	// scores sets s[j] = scale · q·keys[j*stride : j*stride+len(q)], each
	// dot product in the order of ggml_vec_dot_f32 (dotVecF32).
	scores func(s, q, keys []float32, stride int, scale float32)
	// accLanes adds the terms of a weighted sum of rows to lane
	// accumulators: for each j, acc[(j%lanes)*hd+d] = fma(w[j],
	// vals[j*stride+d], acc[(j%lanes)*hd+d]) for d < hd = len(acc)/lanes.
	// weightedSum then reduces the lanes in ggml's order (reduceLanes).
	accLanes    func(acc, w, vals []float32, stride, lanes int)
	reduceLanes func(out, acc []float32, lanes int)
	// rope rotates the first dims values of each of heads heads (headDim
	// apart) of x by the angles whose cosines and sines alternate in cache,
	// as RoPE describes.
	rope func(x, cache []float32, heads, headDim, dims int, neoX bool)
	// expSum sets s[j] = e^(s[j]-shift) as ggml_vec_soft_max_f32 does and
	// returns the sum of the exponentials in float64 in its order.
	expSum func(s []float32, shift float32) float64
	// swiglu sets dst = silu(gate)·up as ggml_vec_swiglu_f32 does.
	swiglu func(dst, gate, up []float32)
	// roundF16 rounds each value to the nearest F16, as roundF16 does.
	roundF16 func(x []float32)
	// max is the largest value of s, -Inf for none.
	max func(s []float32) float32
	// scale multiplies s by k.
	scale func(s []float32, k float32)

	// The F16 cache's loops: scoresF16 and accLanesF16 are scores and
	// accLanes over F16 keys and values (tiled: the order of llamafile's
	// tinyBLAS, which ggml uses for a batch of tokens; else that of
	// ggml_vec_dot_f16); toF16 rounds src into dst.
	scoresF16   func(s, q []float32, keys []uint16, stride int, scale float32, tiled bool)
	accLanesF16 func(acc, w []float32, vals []uint16, stride, lanes int)
	toF16       func(dst []uint16, src []float32)
}

func portableLoops() vecLoops {
	return vecLoops{name: "go", scores: scoresGo, accLanes: accLanesGo, reduceLanes: reduceLanesGo, rope: ropeGo, expSum: expSumGo, swiglu: swigluGo, roundF16: roundF16, max: maxGo, scale: scaleGo,
		scoresF16: scoresF16Go, accLanesF16: accLanesF16Go, toF16: toF16Go}
}

// softmax replaces s by its softmax as ggml's soft_max does: the maximum,
// the exponentials summed in float64 (softmaxExp's order), then every
// value scaled by the float32 reciprocal of the sum.
func (l *vecLoops) softmax(s []float32) {
	l.scale(s, float32(1/l.expSum(s, l.max(s))))
}

// Lane counts of ggml's dot products: llamafile's tinyBLAS keeps one
// 16-lane accumulator per output; ggml_vec_dot_f32/f16 keep four (64
// lanes), added pairwise at the end.
const (
	tiledLanes = 16
	vecLanes   = 64
)

// weightedSum sets out[d] = Σ_j w[j]·vals[j*stride+d] in the order of
// ggml's product of the V view and the probabilities: lanes = tiledLanes
// for a batch of tokens (tinyBLAS), vecLanes for one token (vec_dot). acc
// is scratch of at least lanes·len(out) values. With F16 values, vals16
// replaces vals.
func (l *vecLoops) weightedSum(out, w, vals []float32, vals16 []uint16, stride, lanes int, acc []float32) {
	hd := len(out)
	acc = acc[:lanes*hd]
	clear(acc)
	if vals16 != nil {
		l.accLanesF16(acc, w, vals16, stride, lanes)
	} else {
		l.accLanes(acc, w, vals, stride, lanes)
	}
	l.reduceLanes(out, acc, lanes)
}

// reduceLanesGo sets out[d] to the horizontal sum of lane accumulators
// acc[lane*len(out)+d] as ggml adds them: for 64 lanes, the four 16-lane
// registers pairwise ((r0+r2)+(r1+r3)), then reduce16.
func reduceLanesGo(out, acc []float32, lanes int) {
	hd := len(out)
	var v [16]float32
	for d := range out {
		for l := range 16 {
			v[l] = acc[l*hd+d]
		}
		if lanes == vecLanes {
			for l := range 16 {
				r0, r1, r2, r3 := v[l], acc[(16+l)*hd+d], acc[(32+l)*hd+d], acc[(48+l)*hd+d]
				v[l] = (r0 + r2) + (r1 + r3)
			}
		}
		out[d] = reduce16(&v)
	}
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

// dotVecF32 is ggml_vec_dot_f32 of the AVX-512 build: four 16-lane FMA
// accumulators over whole groups of 64 values, added pairwise and reduced,
// then the leftover products added one by one in float32 (not fused).
func dotVecF32(x, y []float32) float32 {
	y = y[:len(x)]
	np := len(x) &^ 63
	var sum float32 // the reduction of four zero registers, +0
	if np > 0 {
		sum = dotVecF32Groups(x[:np], y[:np])
	}
	for i := np; i < len(x); i++ {
		sum += float32(x[i] * y[i])
	}
	return sum
}

// dotVecF32Groups is dotVecF32's SIMD part over whole groups of 64.
func dotVecF32Groups(x, y []float32) float32 {
	np := len(x)
	var acc [4][16]float32
	for i := 0; i < np; i += 64 {
		for k := range 4 {
			for l := range 16 {
				acc[k][l] = fma32(x[i+16*k+l], y[i+16*k+l], acc[k][l])
			}
		}
	}
	var v [16]float32
	for l := range 16 {
		v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l])
	}
	return reduce16(&v)
}

func scoresGo(s, q, keys []float32, stride int, scale float32) {
	hd := len(q)
	for j := range s {
		s[j] = dotVecF32(q, keys[j*stride:j*stride+hd]) * scale
	}
}

// dotTiledF16 is one output of tinyBLAS on F16 rows (k a multiple of 16):
// one 16-lane FMA accumulator over the widened values, then reduce16.
func dotTiledF16(q []float32, k []uint16) float32 {
	k = k[:len(q)]
	var acc [16]float32
	for i := 0; i < len(q); i += 16 {
		for l := range 16 {
			acc[l] = fma32(q[i+l], tensor.FP16ToFloat32(k[i+l]), acc[l])
		}
	}
	return reduce16(&acc)
}

// dotVecF16 is ggml_vec_dot_f16 of the AVX-512 build (without AVX512-FP16):
// dotVecF32's order on widened values, except that the leftover products
// (exact in float32) are added in float64 and the sum rounded once.
func dotVecF16(q []float32, k []uint16) float32 {
	k = k[:len(q)]
	np := len(q) &^ 63
	var acc [4][16]float32
	for i := 0; i < np; i += 64 {
		for c := range 4 {
			for l := range 16 {
				acc[c][l] = fma32(q[i+16*c+l], tensor.FP16ToFloat32(k[i+16*c+l]), acc[c][l])
			}
		}
	}
	var v [16]float32
	for l := range 16 {
		v[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l])
	}
	sum := float64(reduce16(&v))
	for i := np; i < len(q); i++ {
		sum += float64(q[i] * tensor.FP16ToFloat32(k[i]))
	}
	return float32(sum)
}

func scoresF16Go(s, q []float32, keys []uint16, stride int, scale float32, tiled bool) {
	hd := len(q)
	for j := range s {
		k := keys[j*stride : j*stride+hd]
		if tiled && hd%16 == 0 {
			s[j] = dotTiledF16(q, k) * scale
		} else {
			s[j] = dotVecF16(q, k) * scale
		}
	}
}

func accLanesGo(acc, w, vals []float32, stride, lanes int) {
	hd := len(acc) / lanes
	for j, wj := range w {
		a := acc[(j%lanes)*hd : (j%lanes+1)*hd]
		v := vals[j*stride : j*stride+hd]
		for d := range a {
			a[d] = fma32(wj, v[d], a[d])
		}
	}
}

func accLanesF16Go(acc, w []float32, vals []uint16, stride, lanes int) {
	hd := len(acc) / lanes
	for j, wj := range w {
		a := acc[(j%lanes)*hd : (j%lanes+1)*hd]
		v := vals[j*stride : j*stride+hd]
		for d := range a {
			a[d] = fma32(wj, tensor.FP16ToFloat32(v[d]), a[d])
		}
	}
}

// expSumGo is ggml_vec_soft_max_f32 of the AVX-512 build: groups of 16
// through ggml's vector exponential, each group's sum (reduce16) added in
// float64. ggml runs it over a row of the cache's n_kv cells, a multiple
// of 256, whose cells past the query's position are masked to -Inf: their
// exponentials are 0, so a last partial group here is a whole group with
// zero lanes there, and the values past a multiple of 16 that ggml sends
// through the C library's expf never occur in attention.
func expSumGo(s []float32, shift float32) float64 {
	var sum float64
	for b := 0; b < len(s); b += 16 {
		var v [16]float32
		blk := s[b:min(b+16, len(s))]
		for i, x := range blk {
			v[i] = vexpf(x - shift)
			blk[i] = v[i]
		}
		sum += float64(reduce16(&v))
	}
	return sum
}

// swigluGo is ggml_vec_swiglu_f32 of the AVX-512 build: ggml's vector SiLU
// on groups of 16, the scalar x/(1+expf(-x)) on the rest (expf within an
// ulp of glibc's: the rest is empty for every model width that is a
// multiple of 16).
func swigluGo(dst, gate, up []float32) {
	gate, up = gate[:len(dst)], up[:len(dst)]
	n16 := len(dst) &^ 15
	for i := 0; i < n16; i++ {
		dst[i] = vsilu(gate[i]) * up[i]
	}
	for i := n16; i < len(dst); i++ {
		x := gate[i]
		dst[i] = x / (1 + expf(-x)) * up[i]
	}
}

// span is how many values rows of width values, stride apart, cover.
func span(rows, stride, width int) int {
	if rows == 0 {
		return 0
	}
	return (rows-1)*stride + width
}

func toF16Go(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = tensor.Float32ToFP16(v)
	}
}

// ropeGo rotates pairs as ggml's rope: (x0, x1) → (x0·cos − x1·sin,
// x0·sin + x1·cos), each one fused multiply-add of the first product with
// the second rounded, as GCC compiles ggml's expressions. The pairs are
// adjacent (2i, 2i+1), or (i, i+dims/2) for NeoX.
func ropeGo(x, cache []float32, heads, headDim, dims int, neoX bool) {
	half := dims / 2
	for h := 0; h < heads; h++ {
		head := x[h*headDim : h*headDim+dims]
		for i := 0; i < half; i++ {
			c, s := cache[2*i], cache[2*i+1]
			i0, i1 := 2*i, 2*i+1
			if neoX {
				i0, i1 = i, i+half
			}
			x0, x1 := head[i0], head[i1]
			head[i0] = fma32(x0, c, -float32(x1*s))
			head[i1] = fma32(x0, s, float32(x1*c))
		}
	}
}
