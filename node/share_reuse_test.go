package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/peer-project/peer/store"
)

// countingReader counts the bytes read through it.
type countingReader struct {
	*os.File
	n *atomic.Int64
}

func (r countingReader) Read(p []byte) (int, error) {
	k, err := r.File.Read(p)
	r.n.Add(int64(k))
	return k, err
}

// countReads returns ShareOptions whose import counts the bytes it reads
// into n, and the files it opens into files.
func countReads(n *atomic.Int64, files *[]string) ShareOptions {
	return ShareOptions{read: func(name string, f *os.File) io.ReadCloser {
		*files = append(*files, name)
		return countingReader{f, n}
	}}
}

// TestShareAgainReadsOnlyChanged: a share of a 100-file folder again,
// after one file changed, reads that file and nothing else, and gives the
// root a node that never saw the folder computes; so does one after a
// file was edited with its mtime set back, which is read again.
func TestShareAgainReadsOnlyChanged(t *testing.T) {
	tmp := t.TempDir()
	if !store.KeepsStamps(tmp) {
		t.Skipf("%s lies on a file system that keeps no stamps (tmpfs, overlayfs..., or not Linux: store.KeepsStamps), where every share reads every file; set TMPDIR to a folder on ext4, xfs, btrfs... to run this test", tmp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.NoDHT = true
	// The clock runs a second ahead: the files written just now are a
	// second older than each share's start (racyAge is 50 ms), as files
	// written before a publish usually are.
	cfg.Now = func() time.Time { return time.Now().Add(time.Second) }
	n := startNode(t, cfg)
	dir := filepath.Join(tmp, "folder")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var total int64
	for i := range 100 {
		size := (i%7)*100<<10 + i // 0 to 600 KiB: 0 to 3 chunks of 256 KiB
		data := make([]byte, size)
		for k := range data {
			data[k] = byte(i*131 + k*7 + k/1000)
		}
		writeTestFile(t, filepath.Join(dir, fmt.Sprintf("f%03d", i)), data)
		total += int64(size)
	}
	share := func(want int64, wantFiles []string) *ShareResult {
		t.Helper()
		var read atomic.Int64
		var opened []string
		res, err := n.Share(ctx, dir, countReads(&read, &opened))
		if err != nil {
			t.Fatal(err)
		}
		if read.Load() != want || (wantFiles != nil && fmt.Sprint(opened) != fmt.Sprint(wantFiles)) {
			t.Fatalf("the share read %d bytes of %d files %v; want %d bytes of %v", read.Load(), len(opened), opened[:min(len(opened), 3)], want, wantFiles)
		}
		fresh := startNode(t, testConfig(t))
		f, err := fresh.Share(ctx, dir, ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if f.Root != res.Root {
			t.Fatalf("root %s; a fresh node's is %s", res.Root, f.Root)
		}
		return res
	}
	first := share(total, nil)
	if first.Reused != 0 {
		t.Fatalf("first share reused %d files", first.Reused)
	}

	// One file changed in place, same size.
	changed := filepath.Join(dir, "f013")
	data, err := os.ReadFile(changed)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	writeTestFile(t, changed, data)
	second := share(int64(len(data)), []string{changed})
	if second.Root == first.Root || second.Reused != 99 || second.ReusedBytes != total-int64(len(data)) {
		t.Fatalf("second share: root %s (first %s), %d files (%d bytes) reused; want a new root, 99 files, %d bytes",
			second.Root, first.Root, second.Reused, second.ReusedBytes, total-int64(len(data)))
	}

	// Another edited with its mtime set back: its ctime moved.
	back := filepath.Join(dir, "f020")
	fi, err := os.Stat(back)
	if err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 0xff
	writeTestFile(t, back, data)
	if err := os.Chtimes(back, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	third := share(int64(len(data)), []string{back})
	if third.Root == second.Root {
		t.Fatal("a file edited with its mtime set back kept the old root")
	}
}

func writeTestFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
