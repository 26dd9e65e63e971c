package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// TestSessionOutlivesFetch: peer C opens a session with B while B is still
// fetching a root from A (B serves a fetch from its start). B finishes and
// adopts what it fetched as a share: a plain get where it was written, a
// follow after moving the staged download into DIR and removing the
// staging area. A stops sharing, so only B can serve; C then asks B for
// every chunk in its open session and gets each, verified.
func TestSessionOutlivesFetch(t *testing.T) {
	for _, how := range []string{"get", "follow"} {
		t.Run(how, func(t *testing.T) {
			bubble.Test(t, func(t *testing.T) { sessionOutlivesFetch(t, how) })
		})
	}
}

func sessionOutlivesFetch(t *testing.T, how string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, b, c := chainNodes(t) // 4 MiB from a take four seconds
	_, data := randomFile(t, t.TempDir(), "big.bin", 4<<20, 9)

	var root cid.Cid
	done := make(chan error, 1)
	var applied <-chan FollowEvent
	switch how {
	case "get":
		sh, err := a.Share(ctx, writeFile(t, "big.bin", data), ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		root = sh.Root
		go func() {
			_, err := b.Fetch(ctx, Target{Root: root, Hint: ptr(a.AddrInfo())}, filepath.Join(t.TempDir(), "big.bin"), FetchOptions{})
			done <- err
		}()
	case "follow":
		src := filepath.Join(t.TempDir(), "site")
		writeTree(t, src, map[string]string{"big.bin": string(data), "small.txt": "small"})
		pub, err := a.Publish(ctx, src, PublishOptions{Key: "site"})
		if err != nil {
			t.Fatal(err)
		}
		root = pub.Root
		applied = follow(t, ctx, b, pub.Name, filepath.Join(t.TempDir(), "b"), FollowOptions{})
	}
	// B serves root from its download once the fetch has started.
	for !b.swarm.Serving(root) {
		if ctx.Err() != nil {
			t.Fatal("B never served the root it fetches")
		}
		time.Sleep(10 * time.Millisecond) // virtual time: the fetch moves on
	}
	s := openSession(t, ctx, c, b, root)
	defer s.close()
	switch how {
	case "get":
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	case "follow":
		waitEvent(t, ctx, "B", applied, appliedRoot(root.String()))
	}
	if err := a.Unshare(root); err != nil {
		t.Fatal(err)
	}

	l := b.swarm.Source(root).Layout()
	n := l.NumChunks()
	idx := make([]uint64, n)
	for i := range idx {
		idx[i] = uint64(i)
	}
	err := s.w.Write(&wire.Want{Indices: idx})
	if err == nil {
		err = s.w.Flush()
	}
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for got < int(n) {
		var m sessMsg
		select {
		case m = <-s.msgs:
		case <-ctx.Done():
			t.Fatalf("%d of %d chunks", got, n)
		}
		if m.err != nil {
			t.Fatalf("%d of %d chunks, then: %v", got, n, m.err)
		}
		switch msg := m.m.(type) {
		case *wire.Block:
			if err := integrity.Verify(l.Chunks[msg.Index].CID, m.data); err != nil {
				t.Fatalf("chunk %d: %v", msg.Index, err)
			}
			got++
		case *wire.DontHave:
			t.Fatalf("DONT_HAVE %v from B after it adopted the root (%d of %d chunks had)", msg.Indices, got, n)
		case *wire.Error:
			t.Fatalf("ERROR %v from B (%d of %d chunks had)", msg, got, n)
		}
	}
}

// writeFile writes data to a new file name and returns its path.
func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rawSession is a wire session opened by hand; its messages are read on a
// goroutine of its own.
type rawSession struct {
	st    interface{ Reset() error }
	w     *wire.Writer
	first wire.Msg // the HAVE the session began with
	msgs  chan sessMsg
	done  chan struct{}
}

type sessMsg struct {
	m    wire.Msg
	data []byte // a BLOCK's bytes, copied: the reader reuses its own
	err  error
}

// openSession says HELLO of root from h to n and reads the first message,
// which must be a HAVE.
func openSession(t *testing.T, ctx context.Context, h host.Host, n *Node, root cid.Cid) *rawSession {
	t.Helper()
	st, err := h.NewStream(ctx, n.ID(), wire.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	s := &rawSession{st: st, w: wire.NewWriter(st), msgs: make(chan sessMsg, 1024), done: make(chan struct{})}
	r := wire.NewReader(st, 0)
	err = s.w.Write(&wire.Hello{Version: wire.Version, Root: root})
	if err == nil {
		err = s.w.Flush()
	}
	var first wire.Msg
	if err == nil {
		first, err = r.Read()
	}
	if err != nil {
		st.Reset()
		t.Fatal(err)
	}
	switch first.(type) {
	case *wire.HaveBitfield, *wire.HaveNone, *wire.HaveAll:
	default:
		st.Reset()
		t.Fatalf("first message %v, want a HAVE", first)
	}
	s.first = first
	go func() {
		defer close(s.done)
		for {
			m, err := r.Read()
			sm := sessMsg{m: m, err: err}
			if b, ok := m.(*wire.Block); ok {
				sm.data = append([]byte(nil), b.Data...)
			}
			s.msgs <- sm
			if err != nil {
				return
			}
		}
	}()
	return s
}

// close resets the stream and waits for the reader.
func (s *rawSession) close() {
	s.st.Reset()
	<-s.done
}

// TestFailedFetchKeepsShare: B fetches a root and serves it from the
// download; meanwhile B's user shares a copy of the same file, which
// serves the root from then on. The fetch then fails (cancelled): the
// share is still served.
func TestFailedFetchKeepsShare(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		link(t, mn, a, b, 1<<20) // 4 MiB take four seconds
		if _, err := mn.ConnectPeers(a.ID(), b.ID()); err != nil {
			t.Fatal(err)
		}
		_, data := randomFile(t, t.TempDir(), "big.bin", 4<<20, 10)
		sh, err := a.Share(ctx, writeFile(t, "big.bin", data), ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fctx, fcancel := context.WithCancel(ctx)
		defer fcancel()
		done := make(chan error, 1)
		go func() {
			_, err := b.Fetch(fctx, Target{Root: sh.Root, Hint: ptr(a.AddrInfo())}, filepath.Join(t.TempDir(), "big.bin"), FetchOptions{})
			done <- err
		}()
		for !b.swarm.Serving(sh.Root) {
			if ctx.Err() != nil {
				t.Fatal("B never served the root it fetches")
			}
			time.Sleep(10 * time.Millisecond) // virtual time: the fetch moves on
		}
		dl := b.swarm.Registered(sh.Root)
		own, err := b.Share(ctx, writeFile(t, "copy.bin", data), ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !own.Root.Equals(sh.Root) {
			t.Fatalf("the copy's root %s, want %s", own.Root, sh.Root)
		}
		if b.swarm.Registered(sh.Root) == dl {
			t.Fatal("the share did not replace the download as the root's source")
		}
		fcancel()
		if err := <-done; err == nil {
			t.Fatal("the cancelled fetch succeeded")
		}
		if !b.swarm.Serving(sh.Root) {
			t.Fatal("B no longer serves the root it shares, after a fetch of it failed")
		}
	})
}
