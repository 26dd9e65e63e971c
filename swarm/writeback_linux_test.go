package swarm

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/ipfs/go-cid"
	"golang.org/x/sys/unix"
)

// residentBytes returns how many bytes of the file at path are in the page
// cache (mincore over a mapping of it, which faults nothing in).
func residentBytes(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() == 0 {
		return 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (st.Size()+page-1)/page)
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	var n int64
	for _, v := range vec {
		n += int64(v & 1)
	}
	return n * page
}

// TestWriteBehindDropsWhatIsWritten: what writeBehind exists for, a
// download's bounded footprint in the page cache, however large the file.
// A 128 MiB download is written in random order, as a fetch from seeders
// writes it; once every page is on disk (an fsync), the next writeBehind
// must drop every page written before it, wherever in the file, so at most
// the last writeBehindEvery bytes stay cached, not the file. (Each call
// covers the whole file, so a page still being written back at one call
// is dropped at the next; a call on the range just written would leave
// such pages cached for good.) Skipped on a file system that keeps pages
// whatever the advice (tmpfs).
func TestWriteBehindDropsWhatIsWritten(t *testing.T) {
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, bytes.Repeat([]byte{1}, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	pf, err := os.OpenFile(probe, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.Sync(); err != nil {
		t.Fatal(err)
	}
	err = unix.Fadvise(int(pf.Fd()), 0, 0, unix.FADV_DONTNEED)
	pf.Close()
	if err != nil {
		t.Skipf("fadvise in %s: %v", dir, err)
	}
	if n := residentBytes(t, probe); n > 0 {
		t.Skipf("the file system of %s keeps pages that fadvise DONTNEED drops elsewhere (%d bytes of a synced 1 MiB file still cached): nothing to bound", dir, n)
	}

	const chunk, chunks = 1 << 20, 128
	ctx := context.Background()
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	piece := randomData(chunk, 4)
	data := bytes.Repeat(piece, chunks)
	root := build(t, blocks, "big.bin", data, chunk)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	d, err := openDownload(l, filepath.Join(dir, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.closeFiles()
	order := rand.New(rand.NewPCG(1, 2)).Perm(chunks)
	last := chunks - writeBehindEvery/chunk // the chunks written after the fsync
	var most int64
	for k, i := range order {
		if k == last {
			d.mu.Lock()
			err := d.syncFileLocked(0) // every page so far on disk
			d.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.write(int64(i), piece); err != nil {
			t.Fatal(err)
		}
		if k%16 == 15 {
			most = max(most, residentBytes(t, d.partial))
		}
	}
	got := residentBytes(t, d.partial)
	t.Logf("cached: %d MiB at most while writing (sampled every 16 MiB), %d MiB at the end, of %d MiB", most>>20, got>>20, len(data)>>20)
	if got > writeBehindEvery {
		t.Fatalf("%d MiB of a %d MiB download still in the page cache after it was all on disk and writeBehind ran: want at most the %d MiB written since", got>>20, len(data)>>20, writeBehindEvery>>20)
	}
}
