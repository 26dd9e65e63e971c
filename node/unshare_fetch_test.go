package node

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// TestUnshareDuringFetch: B fetches a root from A and serves it from the
// download; B's user shares a copy of the same file (the share serves the
// root), then unshares it while the fetch still runs. The unshare stops
// the share, not the fetch: a peer C that opens a session with B then is
// told of the chunks B's download has and gets them (it used to be told
// HAVE_NONE, then HAVE of each chunk fetched, and DONT_HAVE of each it
// asked for). The fetch ends and B seeds what it fetched.
func TestUnshareDuringFetch(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		a, b, c := chainNodes(t) // 4 MiB from a take four seconds
		_, data := randomFile(t, t.TempDir(), "big.bin", 4<<20, 11)
		sh, err := a.Share(ctx, writeFile(t, "big.bin", data), ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		root := sh.Root
		done := make(chan error, 1)
		go func() {
			_, err := b.Fetch(ctx, Target{Root: root, Hint: ptr(a.AddrInfo())}, filepath.Join(t.TempDir(), "big.bin"), FetchOptions{})
			done <- err
		}()
		// B serves the root from its download once it holds a chunk.
		have := int64(-1)
		for have < 0 {
			if dl := b.swarm.Registered(root); dl != nil {
				for i := range dl.Layout().NumChunks() {
					if dl.Has(i) {
						have = i
						break
					}
				}
			}
			if ctx.Err() != nil {
				t.Fatal("B's download never held a chunk")
			}
			time.Sleep(10 * time.Millisecond) // virtual time: the fetch moves on
		}
		dl := b.swarm.Registered(root)
		own, err := b.Share(ctx, writeFile(t, "copy.bin", data), ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !own.Root.Equals(root) {
			t.Fatalf("the copy's root %s, want %s", own.Root, root)
		}
		if err := b.Unshare(own.Root); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("the fetch ended (%v) before the test could look at it", err)
		default:
		}
		if got := b.swarm.Registered(root); got != dl {
			t.Fatalf("after the unshare, B serves the root from %T, want its download", got)
		}

		s := openSession(t, ctx, c, b, root)
		defer s.close()
		l := dl.Layout()
		var hb *wire.HaveBitfield
		switch first := s.first.(type) {
		case *wire.HaveBitfield:
			hb = first
		default:
			t.Fatalf("a session during the fetch began with %T, want HAVE_BITFIELD of the download", first)
		}
		bits, err := bitfield.FromBytes(l.NumChunks(), hb.Bits)
		if err != nil || !bits.Has(have) {
			t.Fatalf("B's bitfield lacks chunk %d, which its download holds (%v)", have, err)
		}
		err = s.w.Write(&wire.Want{Indices: []uint64{uint64(have)}})
		if err == nil {
			err = s.w.Flush()
		}
		if err != nil {
			t.Fatal(err)
		}
	read:
		for {
			var m sessMsg
			select {
			case m = <-s.msgs:
			case <-ctx.Done():
				t.Fatal("no answer to WANT")
			}
			if m.err != nil {
				t.Fatal(m.err)
			}
			switch msg := m.m.(type) {
			case *wire.Block:
				if msg.Index != uint64(have) {
					t.Fatalf("BLOCK %d, want %d", msg.Index, have)
				}
				if err := integrity.Verify(l.Chunks[have].CID, m.data); err != nil {
					t.Fatal(err)
				}
				break read
			case *wire.DontHave:
				t.Fatalf("DONT_HAVE %v from B, of a chunk its download holds", msg.Indices)
			case *wire.Error:
				t.Fatalf("ERROR %v from B", msg)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !b.swarm.Serving(root) {
			t.Fatal("B does not seed the root it fetched")
		}
	})
}
