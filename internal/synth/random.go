package synth

import (
	"encoding/binary"
	"hash/fnv"
	"math"
)

// splitMixGamma is SplitMix64's increment (2⁶⁴/φ, odd).
const splitMixGamma = 0x9e3779b97f4a7c15

// The weights come from a SplitMix64 generator, one stream per tensor row:
// row r of a tensor starts at mix64(tensorKey ^ mix64(r)), so a row's
// values depend only on the seed, the tensor's name and r. Rows can then be
// generated in any order and on any number of goroutines with the same
// result, and a change to one tensor's shape leaves the others alone.

// mix64 is a strong 64-bit finalizer (splitmix64's), used to turn the seed
// and a name hash into well-spread generator keys.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	return z ^ z>>31
}

// tensorKey is the generator key of the named tensor under seed.
func tensorKey(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return mix64(seed ^ mix64(h.Sum64()))
}

// The normal approximation sums four independent uniform 16-bit integers
// (Irwin–Hall with n = 4): one 64-bit draw per value, no logarithms, no
// rejection. Its variance is 4·(2¹⁶²−1)/12 and it is bounded at ±3.46σ,
// which is close enough to a Gaussian for weights and keeps outliers, which
// would only make the quantized types' block scales erratic, away.
const (
	irwinHallMean = 2 * 65535
)

var irwinHallInvStd = 1 / math.Sqrt(4*(65536*65536-1)/12.0)

// standardNormal turns one 64-bit draw into an approximately standard
// normal value.
func standardNormal(u uint64) float64 {
	s := (u & 0xffff) + (u >> 16 & 0xffff) + (u >> 32 & 0xffff) + (u >> 48)
	return (float64(s) - irwinHallMean) * irwinHallInvStd
}

// fillRow writes n values mean + std·z (z approximately standard normal,
// from row r's stream under key) as little-endian float32 to dst.
func fillRow(dst []byte, key, row uint64, mean, std float64) {
	// SplitMix64 rather than math/rand/v2's PCG: it inlines, and at a
	// billion values per TinyLlama-shaped file the difference is seconds.
	state := mix64(key ^ mix64(row+1))
	for i := 0; i+4 <= len(dst); i += 4 {
		state += splitMixGamma
		v := float32(mean + std*standardNormal(mix64(state)))
		binary.LittleEndian.PutUint32(dst[i:], math.Float32bits(v))
	}
}
