package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/store"
)

// TestShareAgainTmpfsMapped: on tmpfs a write through a shared mapping
// leaves the file's stamp (inode, size, mtime, ctime) as it was. A file
// shared there under a clock two minutes ahead (old enough for the age
// rule, were it sound there), then changed through such a mapping, is not
// served with the changed bytes, and a share of it again reads it again
// and gives the root a fresh node computes, not the old one.
func TestShareAgainTmpfsMapped(t *testing.T) {
	var sfs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &sfs); err != nil || uint32(sfs.Type) != unix.TMPFS_MAGIC {
		t.Skip("no tmpfs at /dev/shm")
	}
	dir, err := os.MkdirTemp("/dev/shm", "peer-node-test-")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.NoDHT = true
	cfg.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	n := startNode(t, cfg)
	const chunk = 256 << 10 // testConfig's
	data := make([]byte, 4*chunk+5)
	for i := range data {
		data[i] = byte(i*7 + i/1000)
	}
	p := filepath.Join(dir, "f.bin")
	writeTestFile(t, p, data)
	first, err := n.Share(ctx, p, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := integrity.Chunk(data[2*chunk : 3*chunk])
	if _, err := n.store.ReadChunk(ctx, old, nil); err != nil {
		t.Fatal(err)
	}

	// A byte of chunk 2 changed through a shared mapping, made with
	// MAP_POPULATE, its descriptor closed.
	stampOf := func() [4]int64 {
		t.Helper()
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		return [4]int64{int64(st.Ino), st.Size, st.Mtim.Nano(), st.Ctim.Nano()}
	}
	w, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(w.Fd()), 0, len(data), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	before := stampOf()
	m[2*chunk+9] ^= 0xff
	data[2*chunk+9] ^= 0xff
	if after := stampOf(); after != before {
		t.Skipf("on this kernel a write through a mapping on tmpfs moved the stamp (%v → %v): nothing to test", before, after)
	}

	if got, err := n.store.ReadChunk(ctx, old, nil); !errors.Is(err, store.ErrStale) {
		t.Fatalf("ReadChunk of the chunk the mapping changed = %d bytes, %v; want store.ErrStale", len(got), err)
	}
	var read atomic.Int64
	var opened []string
	second, err := n.Share(ctx, p, countReads(&read, &opened))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := startNode(t, testConfig(t)).Share(ctx, p, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Reused != 0 || read.Load() != int64(len(data)) || second.Root == first.Root || second.Root != fresh.Root {
		t.Fatalf("share again: %d files reused, %d bytes read, root %s (first %s); want none reused, %d bytes read, a fresh node's root %s",
			second.Reused, read.Load(), second.Root, first.Root, len(data), fresh.Root)
	}
}
