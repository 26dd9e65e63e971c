package swarm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
)

// TestDownloadSyncsBehind writes a download from two goroutines with the
// background fsync made to run every 64 KiB, as it runs every 128 MiB in
// a large download, and closes it half-way once, as a cancelled fetch
// does: the fsyncs must not race the writes or the close (run with
// -race), finish must wait for them, and the file must be exact.
func TestDownloadSyncsBehind(t *testing.T) {
	ctx := context.Background()
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := randomData(4<<20, 9)
	root := build(t, blocks, "d.bin", data, 32<<10)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "d.bin")
	write := func(d *download, from, to int64) {
		var wg sync.WaitGroup
		for w := range int64(2) {
			wg.Go(func() {
				for i := from + w; i < to; i += 2 {
					c := l.Chunks[i]
					if _, err := d.write(i, data[c.Offset:c.Offset+int64(c.Size)]); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	n := l.NumChunks()

	d, err := openDownload(l, dest)
	if err != nil {
		t.Fatal(err)
	}
	d.saveAt = 64 << 10
	write(d, 0, n/2)
	d.closeFiles() // a cancelled fetch

	d, err = openDownload(l, dest)
	if err != nil {
		t.Fatal(err)
	}
	d.saveAt = 64 << 10
	if found, err := d.recheck(ctx); err != nil || found != n/2 {
		t.Fatalf("recheck found %d chunks (%v), want %d", found, err, n/2)
	}
	write(d, n/2, n)
	if err := d.finish(false); err != nil {
		t.Fatal(err)
	}
	d.closeFiles()
	if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the finished file differs (%v)", err)
	}
}
