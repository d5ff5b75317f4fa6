//go:build !amd64

package kernels

// archSets returns no SIMD sets: only amd64 has assembly kernels, other
// architectures run the portable Go code.
func archSets() []*Set { return nil }
