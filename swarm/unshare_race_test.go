package swarm

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/swarm/wire"
)

// unshares are the two ways a node stops serving a root: StopServing (an
// unshare of the root) and ForgetLookups (an unshare of the share that
// held a folder served on its own).
var unshares = []struct {
	name string
	do   func(sw *Swarm, root cid.Cid)
}{
	{"StopServing", func(sw *Swarm, root cid.Cid) { sw.StopServing(root) }},
	{"ForgetLookups", func(sw *Swarm, _ cid.Cid) {
		sw.ForgetLookups(func(cid.Cid, Source) bool { return false })
	}},
}

// TestLookupDuringUnshare: a lookup that is running when its root stops
// being served (the share that held it is unshared) keeps nothing: the
// source it found is of a share that is gone. Asked again, Lookup finds
// nothing, and the root is not served.
func TestLookupDuringUnshare(t *testing.T) {
	for _, u := range unshares {
		t.Run(u.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hs := meshHosts(t, 2)
			blocks, root, l, data := hostileRoot(t)
			var calls atomic.Int32
			looking, release := make(chan struct{}), make(chan struct{})
			sw := New(hs[0], blocks, Config{Logger: quiet(), Lookup: func(ctx context.Context, _ cid.Cid) Source {
				if calls.Add(1) > 1 {
					return nil // the share is gone
				}
				close(looking)
				select {
				case <-release:
				case <-ctx.Done():
					return nil
				}
				return &memSource{l: l, data: data} // found before the unshare
			}})
			defer sw.Close()
			found := make(chan Source, 1)
			go func() { found <- sw.Source(root) }()
			select {
			case <-looking:
			case <-ctx.Done():
				t.Fatal("no lookup")
			}
			u.do(sw, root)
			close(release)
			if src := <-found; src != nil {
				t.Error("a lookup that ran across the unshare returned what it found before it")
			}
			if sw.Registered(root) != nil {
				t.Fatal("a lookup that ran across the unshare kept what it found: the unshared root is served from the cache")
			}
			if m := hello(t, ctx, hs[1], hs[0], root); m.Type() != wire.TypeError {
				t.Fatalf("a session for the unshared root is answered %v, want ERROR", m.Type())
			}
		})
	}
}

// TestAdmitDuringUnshare: a session whose source was found just before its
// root stopped being served, and that was not registered yet when the
// sessions of the root were ended, is refused: it does not keep the
// unshared source.
func TestAdmitDuringUnshare(t *testing.T) {
	for _, u := range unshares {
		t.Run(u.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hs := meshHosts(t, 2)
			blocks, root, l, data := hostileRoot(t)
			cfg := Config{Logger: quiet()}
			if u.name == "ForgetLookups" { // a folder inside a share
				cfg.Lookup = func(context.Context, cid.Cid) Source { return &memSource{l: l, data: data} }
			}
			sw := New(hs[0], blocks, cfg)
			defer sw.Close()
			if cfg.Lookup == nil {
				sw.Serve(root, &memSource{l: l, data: data})
			}
			at, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			sw.admitting = func(cid.Cid) {
				once.Do(func() {
					close(at)
					<-release
				})
			}
			ch := openRawLater(ctx, hs[1], hs[0].ID(), root)
			select {
			case <-at:
			case <-ctx.Done():
				t.Fatal("no session admitted")
			}
			u.do(sw, root)
			close(release)
			o := <-ch
			if o.err != nil {
				return // refused: the stream ended
			}
			defer o.c.close()
			if e, ok := o.c.first.(*wire.Error); ok && e.Code == wire.CodeNotFound {
				return
			}
			o.c.send(t, &wire.Want{Indices: []uint64{0}})
			m, _ := o.c.next(ctx)
			t.Fatalf("a session admitted across the unshare was answered %T, then %T to a WANT; want ERROR not found", o.c.first, m)
		})
	}
}

// gateSource serves a file held in memory, but holds every read after the
// first until open is closed or the read's context ends.
type gateSource struct {
	memSource
	open  chan struct{}
	reads atomic.Int32
}

func (s *gateSource) ReadChunk(ctx context.Context, i int64, buf []byte) ([]byte, error) {
	if s.reads.Add(1) > 1 {
		select {
		case <-s.open:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.memSource.ReadChunk(ctx, i, buf)
}

// TestUnshareDuringFetch: A shares a root and fetches it too (to another
// place), from B, which sends one chunk and holds the rest. A's user
// unshares the root: the share is no longer served, but the fetch goes on
// and serves what it has, as a fetch does: a new session is told of
// the chunk fetched and gets it, where it used to be told HAVE_NONE, then HAVE of
// each chunk verified, then DONT_HAVE of what it asked for. When the fetch
// fails, its download is no longer served.
func TestUnshareDuringFetch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := meshHosts(t, 3)
	blocks, root, l, data := hostileRoot(t)
	gate := &gateSource{memSource: memSource{l: l, data: data}, open: make(chan struct{})}
	b := New(hs[1], blocks, Config{Logger: quiet()})
	defer b.Close()
	defer close(gate.open) // before b.Close: B's sessions wait on it
	b.Serve(root, gate)
	a := New(hs[0], blocks, Config{Logger: quiet()})
	defer a.Close()
	a.Serve(root, &memSource{l: l, data: data}) // the share

	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	verified := make(chan int64, l.NumChunks())
	done := make(chan error, 1)
	go func() {
		_, err := a.Fetch(fctx, root, FetchOptions{
			Dest:  filepath.Join(t.TempDir(), "f.bin"),
			Hints: []peer.AddrInfo{{ID: hs[1].ID(), Addrs: hs[1].Addrs()}},
			Started: func(_ *Layout, src Source) {
				if !a.Serving(root) { // as a node does
					a.Serve(root, src)
				}
			},
			Verified: func(i int64) { verified <- i },
		})
		done <- err
	}()
	var have int64
	select {
	case have = <-verified:
	case <-ctx.Done():
		t.Fatal("the fetch verified nothing")
	}
	a.StopServing(root) // the unshare

	c, err := openRaw(ctx, hs[2], hs[0].ID(), root)
	if err != nil {
		t.Fatal(err)
	}
	bf, ok := c.first.(*wire.HaveBitfield)
	if !ok {
		c.close()
		t.Fatalf("a session during the fetch began with %T, want HAVE_BITFIELD of the download", c.first)
	}
	bits, err := bitfield.FromBytes(l.NumChunks(), bf.Bits)
	if err != nil || !bits.Has(have) {
		c.close()
		t.Fatalf("the download's bitfield does not have chunk %d, which it verified (%v)", have, err)
	}
	c.send(t, &wire.Want{Indices: []uint64{uint64(have)}})
	m, err := c.next(ctx)
	if blk, ok := m.(*wire.Block); !ok || blk.Index != uint64(have) {
		c.close()
		t.Fatalf("WANT %d answered %T (%v), want its BLOCK", have, m, err)
	}

	// The fetch fails: what it fetched is no longer served.
	fcancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled fetch succeeded")
	}
	for {
		m, err := c.next(ctx)
		if err != nil {
			break // the session ended
		}
		if e, ok := m.(*wire.Error); ok {
			if e.Code != wire.CodeNotFound {
				t.Errorf("the session ended with %v, want not found", e)
			}
			break
		}
	}
	c.close()
	if a.Serving(root) {
		t.Fatal("A serves the download of a fetch that failed")
	}
}
