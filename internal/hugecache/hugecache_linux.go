package hugecache

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Recache makes the page cache hold the file at path in huge pages where
// it does not already (see the package comment). The file is only read;
// its contents are never changed. Dropping the cached pages needs nobody
// else to have them mapped: pages that another process maps stay as they
// are, which After shows.
func Recache(path string) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("hugecache: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Report{}, fmt.Errorf("hugecache: %w", err)
	}
	r := Report{Size: st.Size()}
	if r.Size < HugePage {
		return r, nil // nothing a huge page could hold
	}
	if r.Size != int64(int(r.Size)) {
		return r, fmt.Errorf("hugecache: %s: %d bytes do not fit a map", path, r.Size)
	}
	pmd, ok, err := populate(f, int(r.Size))
	if err != nil {
		return r, fmt.Errorf("hugecache: %s: %w", path, err)
	}
	r.Before, r.After, r.Unsupported = pmd, pmd, !ok
	if !ok || !needsReread(pmd, r.Size) {
		return r, nil
	}
	// Pages not yet written back cannot be dropped: write them first
	// (a file just written; Linux syncs through a read-only descriptor).
	_ = unix.Fdatasync(int(f.Fd()))
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return r, fmt.Errorf("hugecache: %s: drop cached pages: %w", path, err)
	}
	r.Reread = true
	if r.After, _, err = populate(f, int(r.Size)); err != nil {
		return r, fmt.Errorf("hugecache: %s: %w", path, err)
	}
	return r, nil
}

// populate maps the whole file read-only, advises MADV_HUGEPAGE, reads
// every page in (MADV_POPULATE_READ, or by touching the pages where the
// kernel predates it), and returns how many bytes of the map the kernel
// mapped with huge pages. ok is false where huge pages cannot be had:
// transparent huge pages off, or the kernel placed the map off a 2 MiB
// boundary.
func populate(f *os.File, size int) (pmdBytes int64, ok bool, err error) {
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, false, fmt.Errorf("map: %w", err)
	}
	defer unix.Munmap(m)
	start := uintptr(unsafe.Pointer(&m[0]))
	if start%HugePage != 0 || unix.Madvise(m, unix.MADV_HUGEPAGE) != nil {
		return 0, false, nil
	}
	if unix.Madvise(m, unix.MADV_POPULATE_READ) != nil {
		runtime.KeepAlive(touch(m)) // the reads must happen
	}
	pmdBytes, err = filePmdMapped(start)
	return pmdBytes, true, err
}

// touch reads one byte of every 4 KiB page of m and returns their xor.
func touch(m []byte) byte {
	var x byte
	for i := 0; i < len(m); i += 4096 {
		x ^= m[i]
	}
	return x
}

// filePmdMapped returns the FilePmdMapped figure of /proc/self/smaps for
// the map that starts at start, in bytes.
func filePmdMapped(start uintptr) (int64, error) {
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	header := []byte(strconv.FormatUint(uint64(start), 16) + "-")
	sc := bufio.NewScanner(bytes.NewReader(data))
	in := false
	for sc.Scan() {
		line := sc.Bytes()
		if isMapHeader(line) {
			in = bytes.HasPrefix(line, header)
			continue
		}
		if in && bytes.HasPrefix(line, []byte("FilePmdMapped:")) {
			var kb int64
			if _, err := fmt.Sscanf(string(line), "FilePmdMapped: %d kB", &kb); err != nil {
				return 0, fmt.Errorf("smaps line %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, nil // an older kernel without the field: no huge file pages
}

// isMapHeader reports whether an smaps line starts a map's entry
// ("7f0000000000-7f0000200000 r--s ..."), not one of its "Key: value"
// lines.
func isMapHeader(line []byte) bool {
	dash := bytes.IndexByte(line, '-')
	if dash <= 0 {
		return false
	}
	for _, c := range line[:dash] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
