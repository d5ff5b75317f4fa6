//go:build !linux

package membw

// adviseHugePages does nothing where madvise is not used.
func adviseHugePages(b []byte) {}
