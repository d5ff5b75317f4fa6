//go:build !unix

package kernels

// processCPUSeconds is unavailable here; benchmarks then report wall-clock
// figures only.
func processCPUSeconds() float64 { return 0 }
