package cpu

// pageRange widens [addr, addr+n) to whole pages of size page (a power of
// two), as madvise requires a page-aligned start.
func pageRange(addr uintptr, n, page int) (start uintptr, length int) {
	start = addr &^ uintptr(page-1)
	end := (addr + uintptr(n) + uintptr(page-1)) &^ uintptr(page-1)
	return start, int(end - start)
}
