// Package hugecache makes the page cache hold a file in 2 MiB pieces
// ("folios"), so that memory maps of it use huge pages.
//
// llamago reads its weights in place from a memory map of the model file.
// Whether that map uses 4 KiB pages or 2 MiB ones depends on how the
// kernel's page cache holds the file, which in turn depends on how the
// file got there: Linux (6.x, ext4 and others with large folios) reads a
// file from disk in large folios, which a 2 MiB-aligned read-only map then
// maps as huge pages (/proc/self/smaps: FilePmdMapped), but a file that was
// just written (downloaded, converted, copied, or made by package synth)
// stays cached in the 4 KiB pages of its writes until the kernel drops
// them. Streaming the weights through 4 KiB pages costs decode speed (TLB
// misses, and physical pages scattered over memory; docs/PERFORMANCE.md).
// Linux cannot collapse a read-only file's cached pages into huge ones
// (MADV_COLLAPSE needs CONFIG_READ_ONLY_THP_FOR_FS), so Recache drops the
// file's cached pages and reads it again through a map advised
// MADV_HUGEPAGE: a one-time disk read that leaves the file cached the way
// any file read from disk would be.
package hugecache

// HugePage is the size of the huge pages Recache aims for.
const HugePage = 2 << 20

// Report says what Recache found and did.
type Report struct {
	Size int64 // the file's size in bytes
	// Before and After are the bytes of a read-only map of the whole file
	// that the kernel mapped with huge pages, before and after Recache;
	// After equals Before when the file was not read again.
	Before, After int64
	// Reread is whether the file's cached pages were dropped and read
	// again.
	Reread bool
	// Unsupported is set, with no other action, where the kernel (or the
	// operating system) gives files no huge pages: no transparent huge
	// pages, or a map that is not 2 MiB-aligned.
	Unsupported bool
}

// goodEnough is the fraction of a file's whole huge pages that already
// being mapped huge makes Recache leave the file alone (the last partial
// one cannot be, nor can pieces the page cache was short of 2 MiB blocks
// for).
const goodEnough = 0.9

// needsReread reports whether a map with pmdBytes of size bytes mapped
// huge would gain from reading the file again.
func needsReread(pmdBytes, size int64) bool {
	whole := size &^ (HugePage - 1)
	return whole > 0 && float64(pmdBytes) < goodEnough*float64(whole)
}
