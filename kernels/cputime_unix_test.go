//go:build unix

package kernels

import "syscall"

// processCPUSeconds is the CPU time the process has used. Benchmarks
// report speed from it too, because the machines they run on are shared
// and wall-clock time then mostly measures the neighbours.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
