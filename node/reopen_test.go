package node

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/peer-project/peer/internal/bubble"
)

// TestReopenWhileFetchStops: closing the last reader of a root not
// complete stops its fetch, which takes a moment to end; an Open of the
// same root meanwhile (a browser's seek: it drops one request and sends
// the next at once) must wait for it and fetch again, not fail with the
// swarm's "another fetch of this root to this destination is running".
func TestReopenWhileFetchStops(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		link(t, mn, a, b, 8e6) // 8 MiB takes a second: the first fetch is cut short
		path, data := randomFile(t, t.TempDir(), "video.bin", 8<<20, 5)
		sh, err := a.Share(ctx, path, ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		target := Target{Root: sh.Root, Hint: ptr(a.AddrInfo())}
		// Each Open races the end of the fetch before it; six of them
		// lost it at least once in 20 of 20 runs before the fix.
		for k := range 6 {
			r, err := b.Open(ctx, target, FetchOptions{})
			if err != nil {
				t.Fatalf("Open %d right after the last reader closed: %v", k+1, err)
			}
			off := int64(k) * 5 << 20 / 4
			if _, err := r.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 1000)
			if _, err := io.ReadFull(r, got); err != nil {
				t.Fatalf("Open %d: read at %d: %v", k+1, off, err)
			}
			if !bytes.Equal(got, data[off:off+1000]) {
				t.Fatalf("Open %d: wrong bytes at %d", k+1, off)
			}
			r.Close()
		}
	})
}
