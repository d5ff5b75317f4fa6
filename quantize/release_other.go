//go:build !linux

package quantize

// releasePages does nothing where madvise's MADV_DONTNEED is not known to
// leave file-backed read-only mappings intact.
func releasePages([]byte) {}
