package node

// What a share that lacks chunks of its root announces: a follow's share
// indexes only the files it placed, not a conflict's, so it must not say
// HAVE_ALL (peers would ask it for chunks it cannot read).

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/swarm/wire"
)

// tapHost records the wire sessions it opens: what it sent each peer and
// what each peer answered, to be decoded once the exchange is over.
type tapHost struct {
	host.Host
	mu   sync.Mutex
	taps []*tapStream
}

type tapStream struct {
	network.Stream
	to        peer.ID
	mu        sync.Mutex
	sent, got bytes.Buffer
}

func (h *tapHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	st, err := h.Host.NewStream(ctx, p, pids...)
	if err != nil || !slices.Contains(pids, wire.ProtocolID) {
		return st, err
	}
	ts := &tapStream{Stream: st, to: p}
	h.mu.Lock()
	h.taps = append(h.taps, ts)
	h.mu.Unlock()
	return ts, nil
}

func (s *tapStream) Read(b []byte) (int, error) {
	n, err := s.Stream.Read(b)
	s.mu.Lock()
	s.got.Write(b[:n])
	s.mu.Unlock()
	return n, err
}

func (s *tapStream) Write(b []byte) (int, error) {
	n, err := s.Stream.Write(b)
	s.mu.Lock()
	s.sent.Write(b[:n])
	s.mu.Unlock()
	return n, err
}

// session is one recorded wire session: the messages each way, up to the
// first that did not decode whole (a stream reset mid-message); blocks and
// nodes without their bytes.
type session struct {
	sent, got []wire.Msg
}

// sessionsWith decodes the sessions h opened to p.
func (h *tapHost) sessionsWith(p peer.ID) []session {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []session
	for _, ts := range h.taps {
		if ts.to != p {
			continue
		}
		ts.mu.Lock()
		out = append(out, session{sent: decodeAll(ts.sent.Bytes()), got: decodeAll(ts.got.Bytes())})
		ts.mu.Unlock()
	}
	return out
}

func decodeAll(b []byte) []wire.Msg {
	r := wire.NewReader(bytes.NewReader(b), 0)
	var out []wire.Msg
	for {
		m, err := r.Read()
		if err != nil {
			return out
		}
		switch m := m.(type) { // they alias the Reader's buffer
		case *wire.HaveBitfield:
			m.Bits = bytes.Clone(m.Bits)
		case *wire.Block:
			m.Data = nil
		case *wire.Node:
			m.Data = nil
		}
		out = append(out, m)
	}
}

// hello opens a session with p for root through h and returns p's first
// answer (a HAVE, or an ERROR).
func hello(t *testing.T, ctx context.Context, h host.Host, p peer.ID, root cid.Cid) wire.Msg {
	t.Helper()
	st, err := h.NewStream(ctx, p, wire.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	w := wire.NewWriter(st)
	if err := w.Write(&wire.Hello{Version: wire.Version, Root: root}); err != nil || w.Flush() != nil {
		t.Fatalf("hello: %v", err)
	}
	m, err := wire.NewReader(st, 0).Read()
	if err != nil {
		t.Fatalf("first message of %s for %s: %v", p, root, err)
	}
	return m
}

// fileChunks returns the chunk indices of the file at path in l.
func fileChunks(t *testing.T, l *swarm.Layout, path string) (first, end int64) {
	t.Helper()
	for _, f := range l.Files {
		if f.Path == path {
			return f.First, f.First + f.Count
		}
	}
	t.Fatalf("no file %s in the layout", path)
	return 0, 0
}

func describeHave(m wire.Msg, n int64) string {
	hb, ok := m.(*wire.HaveBitfield)
	if !ok {
		return fmt.Sprintf("%T", m)
	}
	bf, err := bitfield.FromBytes(n, hb.Bits)
	if err != nil {
		return fmt.Sprintf("HAVE_BITFIELD (bad: %v)", err)
	}
	var held []int64
	for i := range n {
		if bf.Has(i) {
			held = append(held, i)
		}
	}
	return fmt.Sprintf("HAVE_BITFIELD %v", held)
}

// TestPartialShareAnnouncesWhatItHolds: B follows A's name; B's user edits
// a.bin, so that the next version's a.bin is a conflict, left alone and not
// indexed. C fetches that version from B and A (A over a slow link, so
// that B is the one C would rather ask). C must get a.bin's chunks from A
// alone: B announces a bitfield of b.bin's chunks, never HAVE_ALL, and is
// asked for none of a.bin's (so answers no DONT_HAVE). a.bin's own root is
// not served by B at all; b.bin's is, whole. Started again, B still
// serves the version in part, and its own Open of a.bin fetches it rather
// than read it from the share.
func TestPartialShareAnnouncesWhatItHolds(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		mn := mocknet.New()
		t.Cleanup(func() { mn.Close() })
		var (
			nodes []*Node
			cfgs  []Config
			tap   *tapHost
		)
		for i := range 3 {
			h, err := mn.GenPeer()
			if err != nil {
				t.Fatal(err)
			}
			cfg := testConfig(t)
			cfg.Host, cfg.NoDHT = h, true
			if i == 2 {
				tap = &tapHost{Host: h}
				cfg.Host = tap
			}
			cfgs = append(cfgs, cfg)
			nodes = append(nodes, startNode(t, cfg))
		}
		a, b, c := nodes[0], nodes[1], nodes[2]
		connectMock(t, mn, a, b)
		link(t, mn, c, b, 0)
		link(t, mn, c, a, 256<<10) // a chunk a second

		src := filepath.Join(t.TempDir(), "site")
		_, a1 := randomFile(t, t.TempDir(), "a1", 2<<20, 1) // 8 chunks of 256 KiB
		_, bb := randomFile(t, t.TempDir(), "b", 2<<20, 2)
		writeTree(t, src, map[string]string{"a.bin": string(a1), "b.bin": string(bb)})
		pub1, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "b")
		if _, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{Peers: []peer.AddrInfo{a.AddrInfo()}}); err != nil {
			t.Fatal(err)
		}
		_, a2 := randomFile(t, t.TempDir(), "a2", 2<<20, 3)
		writeTree(t, dir, map[string]string{"a.bin": "mine"})
		writeTree(t, src, map[string]string{"a.bin": string(a2)})
		pub2, err := a.Publish(ctx, src, PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e, err := b.SyncName(ctx, pub1.Name, dir, FollowOptions{Peers: []peer.AddrInfo{a.AddrInfo()}})
		if err != nil {
			t.Fatal(err)
		}
		if e.Root != pub2.Root || len(e.Conflicts) != 1 || e.Conflicts[0].Path != "a.bin" {
			t.Fatalf("B's sync: %+v; want version 2 with a.bin a conflict", e)
		}

		dest := filepath.Join(t.TempDir(), "c")
		res, err := c.Fetch(ctx, Target{Root: pub2.Root}, dest, FetchOptions{Peers: []peer.AddrInfo{b.AddrInfo(), a.AddrInfo()}})
		if err != nil {
			t.Fatal(err)
		}
		sameTree(t, "C", dest, map[string]string{"a.bin": string(a2), "b.bin": string(bb)})

		l := c.swarm.Registered(res.Root).Layout()
		n := l.NumChunks()
		aFirst, aEnd := fileChunks(t, l, "a.bin")
		bFirst, bEnd := fileChunks(t, l, "b.bin")
		want := bitfield.New(n)
		for i := bFirst; i < bEnd; i++ {
			want.Set(i)
		}
		sessions := tap.sessionsWith(b.ID())
		if len(sessions) == 0 {
			t.Fatal("C opened no session with B")
		}
		asked := 0
		for k, s := range sessions {
			if len(s.sent) == 0 || len(s.got) == 0 {
				continue
			}
			if h, ok := s.sent[0].(*wire.Hello); !ok || !h.Root.Equals(pub2.Root) {
				continue // a session of another root
			}
			if hb, ok := s.got[0].(*wire.HaveBitfield); !ok || !bytes.Equal(hb.Bits, want.Bytes()) {
				t.Errorf("session %d: B's first message is %s; want HAVE_BITFIELD of b.bin's chunks [%d, %d)", k, describeHave(s.got[0], n), bFirst, bEnd)
			}
			for _, m := range s.got {
				switch m := m.(type) {
				case *wire.HaveAll:
					t.Errorf("session %d: B announced HAVE_ALL", k)
				case *wire.DontHave:
					t.Errorf("session %d: B answered DONT_HAVE %v", k, m.Indices)
				}
			}
			for _, m := range s.sent {
				w, ok := m.(*wire.Want)
				if !ok {
					continue
				}
				for _, i := range w.Indices {
					asked++
					if int64(i) >= aFirst && int64(i) < aEnd {
						t.Errorf("session %d: C asked B for chunk %d of a.bin (chunks [%d, %d)), which B does not hold", k, i, aFirst, aEnd)
					}
				}
			}
		}
		if asked == 0 {
			t.Errorf("C asked B for no chunk: the test shows nothing")
		}

		// The files inside the share, served on their own: a.bin's root
		// (which B holds nothing of) is not; b.bin's is, whole.
		for _, f := range l.Files {
			m := hello(t, ctx, tap.Host, b.ID(), f.CID)
			switch f.Path {
			case "a.bin":
				if e, ok := m.(*wire.Error); !ok || e.Code != wire.CodeNotFound {
					t.Errorf("B answered %s for a.bin's root %s; want ERROR not found", describeHave(m, f.Count), f.CID)
				}
			case "b.bin":
				if _, ok := m.(*wire.HaveAll); !ok {
					t.Errorf("B answered %s for b.bin's root %s; want HAVE_ALL", describeHave(m, f.Count), f.CID)
				}
			}
		}

		// B started again: the share is served as partial from the
		// store's index, as before.
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		h, err := mn.GenPeer()
		if err != nil {
			t.Fatal(err)
		}
		cfgs[1].Host = h
		b2 := startNode(t, cfgs[1])
		link(t, mn, b2, a, 0)
		if src := b2.swarm.Registered(pub2.Root); src == nil || src.Complete() || !bytes.Equal(src.Bits(), want.Bytes()) {
			t.Errorf("B, started again, serves version 2 from %T; want the chunks of b.bin only", src)
		}

		// B reads a.bin of version 2, which it does not hold: from A, not
		// from its own share.
		r, err := b2.Open(ctx, Target{Root: pub2.Root, Path: "a.bin"}, FetchOptions{Peers: []peer.AddrInfo{a.AddrInfo()}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, a2) {
			t.Errorf("B's Open of a.bin: %d bytes, %v; want version 2's %d bytes", len(got), err, len(a2))
		}
		cancel()
	})
}

// TestWholeShareNeedsNoChunkLookups: a share that indexes every file of its
// root, whichever way it was made (a folder with an empty file, a folder
// inside and a symbolic link; a single file; a fetch adopted; a CAR
// imported), is known whole by its counts alone (shareHolds), with no
// lookup per chunk, and announces HAVE_ALL.
func TestWholeShareNeedsNoChunkLookups(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		a, b := nodes[0], nodes[1]
		connectMock(t, mn, a, b)
		src := filepath.Join(t.TempDir(), "site")
		_, big := randomFile(t, t.TempDir(), "big", 600<<10, 4)
		writeTree(t, src, map[string]string{"a.txt": "alpha", "empty": "", "sub/big.bin": string(big)})
		if err := os.Symlink("a.txt", filepath.Join(src, "link")); err != nil {
			t.Fatal(err)
		}
		whole := func(who string, n *Node, root cid.Cid) {
			t.Helper()
			s := n.swarm.Registered(root)
			if s == nil || !s.Complete() {
				t.Errorf("%s: %s is served by %T, not whole", who, root, s)
				return
			}
			if !shareHolds(n.store, root, s.Layout()) {
				sh, err := n.store.Share(root)
				l := s.Layout()
				t.Errorf("%s: the share of %s counts %d files, %d bytes (%v); its root %d, %d: whole only after a lookup per chunk",
					who, root, sh.Files, sh.Size, err, len(l.Files), l.Size)
			}
		}
		dirShare, err := a.Share(ctx, src, ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		whole("a folder", a, dirShare.Root)
		fileShare, err := a.Share(ctx, filepath.Join(src, "sub", "big.bin"), ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		whole("a file", a, fileShare.Root)
		if _, err := b.Fetch(ctx, Target{Root: dirShare.Root}, filepath.Join(t.TempDir(), "got"), FetchOptions{Peers: []peer.AddrInfo{a.AddrInfo()}}); err != nil {
			t.Fatal(err)
		}
		whole("a fetch", b, dirShare.Root)
		var car bytes.Buffer
		if _, err := a.Export(ctx, Target{Root: fileShare.Root}, &car, ExportOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Import(ctx, &car); err != nil {
			t.Fatal(err)
		}
		whole("a CAR", b, fileShare.Root)
		cancel()
	})
}

// TestHeldChunks: which chunks of a root the node holds, file by file
// where its share indexes the file, chunk by chunk where not: a file that
// another share indexes is held, one that no share indexes is not.
func TestHeldChunks(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.NoDHT = true
	n := startNode(t, cfg)
	_, x := randomFile(t, t.TempDir(), "x", 600<<10, 5) // 3 chunks
	_, z := randomFile(t, t.TempDir(), "z", 300<<10, 6) // 2 chunks
	one, two := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two")
	writeTree(t, one, map[string]string{"x": string(x)})
	writeTree(t, two, map[string]string{"x": string(x), "z": string(z)})
	sh1, err := n.Share(ctx, one, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sh2, err := n.Share(ctx, two, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := n.swarm.Registered(sh2.Root).Layout()
	check := func(what string, share cid.Cid, want ...string) {
		t.Helper()
		have, err := heldChunks(ctx, n.store, share, l)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range l.Files {
			for i := f.First; i < f.First+f.Count; i++ {
				if have.Has(i) {
					got = append(got, fmt.Sprintf("%s#%d", f.Path, i-f.First))
				}
			}
		}
		var exp []string
		for _, p := range want {
			i := slices.IndexFunc(l.Files, func(f swarm.FileSpan) bool { return f.Path == p })
			for k := range l.Files[i].Count {
				exp = append(exp, fmt.Sprintf("%s#%d", p, k))
			}
		}
		if !slices.Equal(got, exp) {
			t.Errorf("%s: held %v; want %v", what, got, exp)
		}
	}
	check("in its own share", sh2.Root, "x", "z")
	check("as another share's", sh1.Root, "x", "z")
	if err := n.Unshare(sh2.Root); err != nil {
		t.Fatal(err)
	}
	check("once two is unshared", sh2.Root, "x")
	if err := n.Unshare(sh1.Root); err != nil {
		t.Fatal(err)
	}
	check("once both are", sh1.Root)
}
