package swarm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm/wire"
)

// fileSource serves a complete file from path, verifying each chunk, as
// the node's share source does: what a finished download is adopted as.
type fileSource struct {
	l    *Layout
	path string
}

func (s *fileSource) Layout() *Layout { return s.l }
func (s *fileSource) Has(int64) bool  { return true }
func (s *fileSource) Complete() bool  { return true }
func (s *fileSource) Bits() []byte    { return nil }
func (s *fileSource) ReadChunk(_ context.Context, i int64, buf []byte) ([]byte, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := s.l.Chunks[i]
	buf = grow(buf, int(c.Size))
	if _, err := f.ReadAt(buf, c.Offset); err != nil {
		return nil, err
	}
	return buf, integrity.Verify(c.CID, buf)
}

// TestServeReplacesSessionSource: peer C opens a session with B while B is
// still fetching the root from A, so the session is served from B's
// download. B finishes, A goes away, and B serves the root from the
// finished file, as a node does when it adopts a download as a share: at
// the same place (a plain fetch) or after moving it elsewhere (a follow
// moves its staged download into the folder and removes the staging
// area). C then asks B for every chunk and gets each, verified, from the
// new source.
func TestServeReplacesSessionSource(t *testing.T) {
	for _, moved := range []bool{false, true} {
		t.Run(fmt.Sprintf("moved=%v", moved), func(t *testing.T) {
			bubble.Test(t, func(t *testing.T) { serveReplacesSessionSource(t, moved) })
		})
	}
}

func serveReplacesSessionSource(t *testing.T, moved bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn := cappedMesh(t, 3, 1<<20)
	hs := mn.Hosts()
	const size, chunk = 16 * 16384, 16384
	data := randomData(size, 11)
	aBlocks, root, l := fileRoot(t, data, chunk)
	a := New(hs[0], aBlocks, Config{Logger: quiet()})
	defer a.Close()
	a.Serve(root, &memSource{l: l, data: data})
	b := New(hs[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
	defer b.Close()

	// C's session with B begins while B's fetch has just started: B
	// serves it from the download (node.fetch's Started does the same).
	var c *rawSess
	defer func() {
		if c != nil {
			c.close()
		}
	}()
	open := func() error {
		var err error
		if c, err = openRaw(ctx, hs[2], hs[1].ID(), root); err != nil {
			return err
		}
		if _, ok := c.first.(*wire.HaveBitfield); !ok {
			return fmt.Errorf("first message %v, want HAVE_BITFIELD (served from the download)", c.first)
		}
		return nil
	}
	opened := make(chan error, 1)
	dest := filepath.Join(t.TempDir(), "f")
	res, err := b.Fetch(ctx, root, FetchOptions{
		Dest:        dest,
		Hints:       []peer.AddrInfo{{ID: hs[0].ID()}},
		NoConnected: true,
		Started: func(_ *Layout, src Source) {
			b.Serve(root, src)
			opened <- open()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	a.Close() // only B can serve now

	path := dest
	if moved {
		// A follow moves the staged download into place and removes the
		// staging folder.
		path = filepath.Join(t.TempDir(), "placed")
		if err := os.Rename(dest, path); err != nil {
			t.Fatal(err)
		}
	}
	if res.Source == nil {
		t.Fatal("no source in the result")
	}
	b.Serve(root, &fileSource{l: l, path: path})

	n := l.NumChunks()
	idx := make([]uint64, n)
	for i := range idx {
		idx[i] = uint64(i)
	}
	c.send(t, &wire.Want{Indices: idx})
	got := map[uint64]bool{}
	for len(got) < int(n) {
		m, err := c.next(ctx)
		if err != nil {
			t.Fatalf("%d of %d chunks, then: %v", len(got), n, err)
		}
		switch m := m.(type) {
		case *wire.Block:
			if err := integrity.Verify(l.Chunks[m.Index].CID, m.Data); err != nil {
				t.Fatalf("chunk %d: %v", m.Index, err)
			}
			got[m.Index] = true
		case *wire.DontHave:
			t.Fatalf("DONT_HAVE %v after B served the finished file (%d of %d chunks had)", m.Indices, len(got), n)
		}
	}
}

// rawSess is a session opened with HELLO by a test that speaks the wire
// protocol itself; its messages are read on a goroutine of its own.
type rawSess struct {
	st    interface{ Reset() error }
	w     *wire.Writer
	first wire.Msg
	msgs  chan rawMsg
	done  chan struct{}
}

type rawMsg struct {
	m   wire.Msg
	err error
}

// openRaw opens a session from h to p for root and reads its first message.
func openRaw(ctx context.Context, h host.Host, p peer.ID, root cid.Cid) (*rawSess, error) {
	st, err := h.NewStream(ctx, p, wire.ProtocolID)
	if err != nil {
		return nil, err
	}
	s := &rawSess{st: st, w: wire.NewWriter(st), msgs: make(chan rawMsg, 1024), done: make(chan struct{})}
	if err = s.w.Write(&wire.Hello{Version: wire.Version, Root: root}); err == nil {
		err = s.w.Flush()
	}
	r := wire.NewReader(st, 0)
	if err == nil {
		s.first, err = r.Read()
	}
	if err != nil {
		st.Reset()
		return nil, err
	}
	go func() {
		defer close(s.done)
		for {
			m, err := r.Read()
			if b, ok := m.(*wire.Block); ok { // its bytes are the reader's until the next Read
				m = &wire.Block{Index: b.Index, Data: append([]byte(nil), b.Data...)}
			}
			s.msgs <- rawMsg{m, err}
			if err != nil {
				return
			}
		}
	}()
	return s, nil
}

func (s *rawSess) send(t *testing.T, m wire.Msg) {
	t.Helper()
	if err := s.w.Write(m); err != nil {
		t.Fatal(err)
	}
	if err := s.w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// next returns the next message, or an error when the stream ends or ctx
// is done first.
func (s *rawSess) next(ctx context.Context) (wire.Msg, error) {
	select {
	case m := <-s.msgs:
		return m.m, m.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// close resets the stream and waits for the reader.
func (s *rawSess) close() {
	s.st.Reset()
	<-s.done
}

// TestServeAnnouncesWhatTheNewSourceAdds: a session that began with a
// bitfield hears, when Serve replaces the root's source, a HAVE for each
// chunk the new source has and the session was not told of yet: none
// twice, none withdrawn; and is served from the new source.
func TestServeAnnouncesWhatTheNewSourceAdds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, blocks, data, root, l := replaceRig(t, 12, 3)
	n := l.NumChunks()
	partial := func(upTo int64) Source {
		have := bitfield.New(n)
		for i := range upTo {
			have.Set(i)
		}
		return &partialSource{memSource: memSource{l: l, data: data}, have: have}
	}
	sw := New(hs[0], blocks, Config{Logger: quiet()})
	defer sw.Close()
	sw.Serve(root, partial(3))

	c, err := openRaw(ctx, hs[1], hs[0].ID(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if bf, ok := c.first.(*wire.HaveBitfield); !ok || len(bf.Bits) != 2 || bf.Bits[0] != 0xe0 || bf.Bits[1] != 0 {
		t.Fatalf("first message %v, want HAVE_BITFIELD e0 00", c.first)
	}
	// haves reads HAVEs up to the BLOCK of chunk i (which the session
	// was asked for after them) and returns them.
	haves := func(i uint64) []uint64 {
		t.Helper()
		c.send(t, &wire.Want{Indices: []uint64{i}})
		var got []uint64
		for {
			m, err := c.next(ctx)
			if err != nil {
				t.Fatalf("after HAVEs %v: %v", got, err)
			}
			switch m := m.(type) {
			case *wire.Have:
				got = append(got, m.Index)
			case *wire.Block:
				if m.Index != i {
					t.Fatalf("BLOCK %d, want %d", m.Index, i)
				}
				if err := integrity.Verify(l.Chunks[i].CID, m.Data); err != nil {
					t.Fatal(err)
				}
				return got
			default:
				t.Fatalf("after HAVEs %v: %v, want HAVE or BLOCK %d", got, m, i)
			}
		}
	}
	sw.Announce(root, 3) // a fetch of root verified chunk 3
	sw.Serve(root, partial(8))
	if got, want := haves(0), []uint64{3, 4, 5, 6, 7}; !slices.Equal(got, want) {
		t.Fatalf("HAVEs %v after a source with chunks 0-7, want %v", got, want)
	}
	sw.Serve(root, &memSource{l: l, data: data})
	if got, want := haves(11), []uint64{8, 9, 10, 11}; !slices.Equal(got, want) {
		t.Fatalf("HAVEs %v after a complete source, want %v", got, want)
	}
	// A smaller source takes nothing back (the wire has no way to): a
	// chunk it lacks is answered DONT_HAVE.
	sw.Serve(root, partial(2))
	c.send(t, &wire.Want{Indices: []uint64{9}})
	m, err := c.next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dh, ok := m.(*wire.DontHave); !ok || !slices.Equal(dh.Indices, []uint64{9}) {
		t.Fatalf("%v, want DONT_HAVE [9]", m)
	}
	if got := haves(1); len(got) != 0 {
		t.Fatalf("HAVEs %v from a smaller source", got)
	}
}

// goneSource has every chunk, but each read waits for release and then
// fails, as a read of a download whose files were moved away does.
type goneSource struct {
	memSource
	reading chan int64    // each read says which chunk it is at
	release chan struct{} // closed: reads fail
}

func (s *goneSource) ReadChunk(_ context.Context, i int64, _ []byte) ([]byte, error) {
	s.reading <- i
	<-s.release
	return nil, os.ErrNotExist
}

// TestServeMidRead: Serve replaces the source while a session reads a
// chunk from the old one, which then fails: the chunk is read again from
// the new source and sent, not answered DONT_HAVE.
func TestServeMidRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, blocks, data, root, l := replaceRig(t, 4, 5)
	old := &goneSource{memSource: memSource{l: l, data: data}, reading: make(chan int64, 8), release: make(chan struct{})}
	sw := New(hs[0], blocks, Config{Logger: quiet()})
	defer sw.Close()
	sw.Serve(root, old)
	c, err := openRaw(ctx, hs[1], hs[0].ID(), root)
	if err != nil {
		close(old.release)
		t.Fatal(err)
	}
	defer c.close()
	c.send(t, &wire.Want{Indices: []uint64{2}})
	select {
	case <-old.reading:
	case <-ctx.Done():
		close(old.release)
		t.Fatal("the old source was never read")
	}
	sw.Serve(root, &memSource{l: l, data: data})
	close(old.release)
	m, err := c.next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := m.(*wire.Block)
	if !ok || b.Index != 2 {
		t.Fatalf("%v, want BLOCK 2", m)
	}
	if err := integrity.Verify(l.Chunks[2].CID, b.Data); err != nil {
		t.Fatal(err)
	}
}

// failSource has every chunk, but no read of it succeeds.
type failSource struct{ memSource }

func (s *failSource) ReadChunk(context.Context, int64, []byte) ([]byte, error) {
	return nil, os.ErrNotExist
}

// TestServeDuringAdmit: a session whose source is being looked up when
// Serve registers the root is served from what Serve registered, not from
// what the lookup found before it.
func TestServeDuringAdmit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, blocks, data, root, l := replaceRig(t, 4, 6)
	looking, release := make(chan struct{}), make(chan struct{})
	sw := New(hs[0], blocks, Config{Logger: quiet(), Lookup: func(context.Context, cid.Cid) Source {
		close(looking)
		<-release
		return &failSource{memSource{l: l, data: data}}
	}})
	defer sw.Close()
	ch := openRawLater(ctx, hs[1], hs[0].ID(), root)
	select {
	case <-looking:
	case <-ctx.Done():
		t.Fatal("no lookup")
	}
	sw.Serve(root, &memSource{l: l, data: data})
	close(release)
	o := <-ch
	if o.err != nil {
		t.Fatal(o.err)
	}
	c := o.c
	defer c.close()
	c.send(t, &wire.Want{Indices: []uint64{1}})
	m, err := c.next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := m.(*wire.Block); !ok || b.Index != 1 {
		t.Fatalf("%v, want BLOCK 1", m)
	}
}

// TestStopServingFrom: a source that was replaced is not withdrawn by
// StopServingFrom, and does not end what replaced it; the source that
// serves the root is.
func TestStopServingFrom(t *testing.T) {
	data := randomData(2*16384, 8)
	blocks, root, l := fileRoot(t, data, 16384)
	sw := New(meshHosts(t, 1)[0], blocks, Config{Logger: quiet()})
	defer sw.Close()
	dl, share := &memSource{l: l, data: data}, &memSource{l: l, data: data}
	sw.Serve(root, dl)
	sw.Serve(root, share)
	if sw.StopServingFrom(root, dl) || sw.Registered(root) != share {
		t.Fatal("StopServingFrom of a replaced source withdrew what replaced it")
	}
	if !sw.StopServingFrom(root, share) || sw.Serving(root) {
		t.Fatal("StopServingFrom of the root's source left it served")
	}
}

// TestStopThenServeAgain: unshare then share again (StopServing, then
// Serve with a source reading from elsewhere). The session open at the
// unshare is ended with ERROR not found; one opened after the new share
// is served from the new source, not from anything of the old.
func TestStopThenServeAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs, blocks, data, root, l := replaceRig(t, 4, 9)
	sw := New(hs[0], blocks, Config{Logger: quiet()})
	defer sw.Close()
	sw.Serve(root, &failSource{memSource{l: l, data: data}}) // its files are gone by the time it is asked
	c1, err := openRaw(ctx, hs[1], hs[0].ID(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer c1.close()
	sw.StopServing(root)
	m, err := c1.next(ctx)
	if e, ok := m.(*wire.Error); err != nil || !ok || e.Code != wire.CodeNotFound {
		t.Fatalf("the open session after StopServing: %v, %v; want ERROR not found", m, err)
	}
	sw.Serve(root, &memSource{l: l, data: data})
	c2, err := openRaw(ctx, hs[1], hs[0].ID(), root)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.close()
	if _, ok := c2.first.(*wire.HaveAll); !ok {
		t.Fatalf("first message %v, want HAVE_ALL", c2.first)
	}
	c2.send(t, &wire.Want{Indices: []uint64{0, 3}})
	for range 2 {
		m, err := c2.next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*wire.Block); !ok {
			t.Fatalf("%v, want a BLOCK", m)
		}
	}
}

// replaceRig returns two connected mocknet hosts (closed when the test
// ends), and a file of chunks chunks of 16 KiB, random bytes from seed, in
// blocks under root, with its layout.
func replaceRig(t *testing.T, chunks, seed int) ([]host.Host, *memBlocks, []byte, cid.Cid, *Layout) {
	t.Helper()
	hs := meshHosts(t, 2)
	data := randomData(chunks*16384, uint64(seed))
	blocks, root, l := fileRoot(t, data, 16384)
	return hs, blocks, data, root, l
}
