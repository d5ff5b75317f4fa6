package membw

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseHugePages asks for transparent huge pages on the whole 2 MiB
// blocks of b before it is first written, so that the buffer is read
// through 2 MiB pages as the weights' memory map is (from a page cache
// that holds the file in 2 MiB folios; see internal/hugecache): through
// 4 KiB pages the same reads are up to a fifth slower, which would
// understate the bound. Only advice: where the kernel gives no huge pages
// the buffer keeps 4 KiB ones.
func adviseHugePages(b []byte) {
	const huge = 2 << 20
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	skip := int((huge - start%huge) % huge)
	if skip >= len(b) {
		return
	}
	if n := (len(b) - skip) &^ (huge - 1); n > 0 {
		_ = unix.Madvise(b[skip:skip+n], unix.MADV_HUGEPAGE)
	}
}
