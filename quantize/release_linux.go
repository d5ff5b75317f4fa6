//go:build linux

package quantize

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// releasePages tells the kernel that this process is done with the pages
// under b, input tensor data in gguf.Open's read-only file mapping. Each
// tensor is read once; without this every page read would stay resident
// until the end, and converting a model would grow the process by the
// model's whole size (llama.cpp unmaps each tensor for the same reason).
// The file's pages stay in the page cache, and reading them again would
// fault them back in. Only whole pages inside b are released; errors are
// ignored, as this is only advice.
func releasePages(b []byte) {
	if len(b) == 0 {
		return
	}
	page := uintptr(os.Getpagesize())
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	first := (start + page - 1) &^ (page - 1)      // first page boundary in b
	end := (start + uintptr(len(b))) &^ (page - 1) // last page boundary in b
	if first >= end {
		return // no whole page
	}
	_ = unix.Madvise(b[first-start:end-start], unix.MADV_DONTNEED)
}
