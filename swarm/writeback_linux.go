package swarm

import (
	"os"

	"golang.org/x/sys/unix"
)

// writeBehind asks the kernel to start writing f's dirty pages to disk now,
// without waiting for them, and to drop from its cache the pages of f
// already written (POSIX_FADV_DONTNEED does both). Called every
// writeBehindEvery bytes, it keeps a download's footprint in the page
// cache to a few times that, however large the file:
//   - a download of many gigabytes does not push the user's working set
//     out of the cache, and the fsync that ends it finds little to do;
//   - the next writes land in pages just freed, which are cheap. Pages the
//     kernel has not touched for a while can cost much more: on the
//     virtual machines we measure on, a pwrite into fresh page-cache pages
//     took 1.2 ns a byte and into recycled ones 0.17 (the 1 GiB transfer
//     benchmark's fetcher spent more CPU in pwrite than in SHA-256).
//
// Chunks read back (a peer fetching from this partial download, a
// streaming reader) then come from the disk; that is what serving from a
// completed file does too.
func writeBehind(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED)
	})
}
