//go:build !linux

package cpu

// adviseWillNeed is a no-op where madvise is not used.
func adviseWillNeed(data []byte) { _ = pageRange }
