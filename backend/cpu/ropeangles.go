package cpu

import "llamago/backend"

// RoPEAngles writes into dst, for each position of pos, the cosines and
// sines by which RoPE rotates that row: p.Dims values per position, the
// cosine and the sine of pair i at 2i and 2i+1. They are the values the
// CPU backend's RoPE uses (glibc's cosf and sinf, sincosf.go, of ggml's
// angles), so that another backend given them rotates with the CPU's bits
// (the CUDA backend's CPU-order mode). dst must hold len(pos)·p.Dims
// values.
func RoPEAngles(dst []float32, pos []int32, p backend.RoPEParams) {
	thetaScale := ropeThetaScale(p.FreqBase, p.Dims)
	for r, ps := range pos {
		ropeRowAngles(dst[r*p.Dims:(r+1)*p.Dims], ps, p.FreqScale, thetaScale)
	}
}

// ropeRowAngles fills cache (the rotated dims of one row) with the cosine
// and sine of each pair's angle at position pos, as ggml's rope cache:
// θ_0 = pos, θ_{i+1} = θ_i·thetaScale in float32, angle freqScale·θ_i.
func ropeRowAngles(cache []float32, pos int32, freqScale, thetaScale float32) {
	theta := float32(pos)
	for i := 0; i < len(cache)/2; i++ {
		a := freqScale * theta
		cache[2*i], cache[2*i+1] = cosf(a), sinf(a)
		theta *= thetaScale
	}
}
