package node

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/peer-project/peer/internal/bubble"
)

// TestSetCaps: caps changed at run time hold for the next fetch, and for
// one already running (virtual time, on mocknet). A seeder that starts
// without a cap and is capped at 1 MB/s serves 4 MiB in about 4 s; lifting
// the cap in the middle of the same fetch ends it well before the 4 s the
// old cap would take. A negative cap is refused and changes nothing.
func TestSetCaps(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const size, capped = 4 << 20, 1e6
		path, data := randomFile(t, t.TempDir(), "f.bin", size, 40)
		mn, nodes := mockNodes(t, 3)
		seeder := nodes[0]
		link(t, mn, seeder, nodes[1], 100e6)
		link(t, mn, seeder, nodes[2], 100e6)
		sh, err := seeder.Share(ctx, path, ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := seeder.Caps(); got != (Caps{}) {
			t.Fatalf("caps at the start = %+v, want none", got)
		}
		if err := seeder.SetCaps(Caps{UploadRate: capped}); err != nil {
			t.Fatal(err)
		}
		if err := seeder.SetCaps(Caps{UploadRate: -1}); err == nil {
			t.Fatal("a negative cap was taken")
		}
		if got := seeder.Caps(); got != (Caps{UploadRate: capped}) {
			t.Fatalf("caps = %+v after SetCaps and a refused one, want an upload cap of %v", got, capped)
		}

		// fetch times a fetch from its first verified chunk (the DAG and
		// the handshake are not capped); at is called with each report.
		fetch := func(n *Node, at func(Progress)) time.Duration {
			var first, last time.Time
			var firstBytes int64
			dest := filepath.Join(t.TempDir(), "f.bin")
			_, err := n.Fetch(ctx, Target{Root: sh.Root, Hint: ptr(seeder.AddrInfo())}, dest, FetchOptions{Progress: func(p Progress) {
				if first.IsZero() && p.Bytes > 0 {
					first, firstBytes = time.Now(), p.Bytes
				}
				last = time.Now()
				if at != nil {
					at(p)
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			sameFile(t, dest, data)
			took := last.Sub(first)
			t.Logf("%d bytes in %v after the first chunk: %.2f MB/s", size-firstBytes, took, float64(size-firstBytes)/took.Seconds()/1e6)
			return took
		}
		full := time.Duration(float64(size-(1<<20)) / capped * float64(time.Second)) // at the cap, after a first chunk
		if took := fetch(nodes[1], nil); took < full*9/10 {
			t.Errorf("the fetch took %v under a cap of 1 MB/s set at run time; the cap allows no less than %v", took, full*9/10)
		}
		lifted := false
		took := fetch(nodes[2], func(p Progress) {
			if !lifted && p.Bytes >= 1<<20 {
				lifted = true
				if err := seeder.SetCaps(Caps{}); err != nil {
					t.Error(err)
				}
			}
		})
		if !lifted {
			t.Fatal("the fetch never reported a MiB")
		}
		if took > full/2 {
			t.Errorf("the fetch took %v after its cap was lifted; with the cap it takes %v", took, full)
		}
		seeder.Close()
		if err := seeder.SetCaps(Caps{}); !errors.Is(err, ErrClosed) {
			t.Errorf("SetCaps after Close = %v, want ErrClosed", err)
		}
	})
}
