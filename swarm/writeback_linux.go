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
// streaming reader past the chunks the download keeps for it, see
// handoff) then come from the disk; that is what serving from a completed
// file does too.
//
// Why the whole file each time, not the range just written: in the
// kernel (mm/fadvise.c, mm/truncate.c, mm/filemap.c), DONTNEED starts the
// writeback of the dirty pages (found through the mapping's dirty tags) and
// then evicts the clean pages it finds cached (find_lock_entries visits the
// pages present and skips those under writeback); it does not walk the
// file's length. What it costs is freeing each page, which a ranged call
// pays too. Measured with perf, 1 MiB pwrites and a call every 8 MiB: about
// 1 ms a call whether the file is 1 or 4 GiB (0.16 s for 1 GiB, 0.47 s for
// 4), 23-26% of the CPU, of which freeing pages (mapping_try_invalidate)
// 17-18, starting writeback 6-7, find_lock_entries 0.5. Ranged calls (a
// write-out of the chunks just written, a DONTNEED of those written a batch
// before) took about as long, 0.09-0.15 s a GiB, and a page still being
// written back at its one call stayed cached for good: 23 to 111 MiB of a
// 128 MiB download in TestWriteBehindDropsWhatIsWritten, where the
// whole-file call leaves at most the 8 MiB written since the last.
func writeBehind(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		unix.Fadvise(int(fd), 0, 0, unix.FADV_DONTNEED)
	})
}
