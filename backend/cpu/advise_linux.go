package cpu

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// adviseWillNeed asks the kernel to start reading data's pages in now.
// Weights are used in place from a memory map; without the hint the first
// tokens fault them in page by page. It is only a hint: errors (data on
// the heap, an old kernel) are ignored.
func adviseWillNeed(data []byte) {
	if len(data) == 0 {
		return
	}
	start, length := pageRange(uintptr(unsafe.Pointer(&data[0])), len(data), os.Getpagesize())
	// The raw call takes addresses, so no pointer is made from a uintptr.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, start, uintptr(length), unix.MADV_WILLNEED)
}
