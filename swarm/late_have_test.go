package swarm

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/swarm/wire"
)

// partialSource serves the chunks of a memSource that have is set for.
type partialSource struct {
	memSource
	have *bitfield.Bitfield
}

func (s *partialSource) Has(i int64) bool { return s.have.Has(i) }
func (s *partialSource) Complete() bool   { return s.have.Full() }
func (s *partialSource) Bits() []byte     { return s.have.Bytes() }

// TestLateSourceAnnounced: a node that is fetching a root takes a peer's
// session with HAVE_NONE before it has anything to serve; when its source
// appears (a resumed download, with chunks no HAVE will announce), the peer
// hears of every chunk the source has.
func TestLateSourceAnnounced(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hs := meshHosts(t, 2)
	data := make([]byte, 10*16384)
	blocks, root, l := fileRoot(t, data, 16384)
	sw := New(hs[0], blocks, Config{Logger: quiet()})
	defer sw.Close()

	// The node fetches root from nobody: it is "fetching" from now on.
	fetchDone := make(chan error, 1)
	fctx, fcancel := context.WithCancel(ctx)
	go func() {
		_, err := sw.Fetch(fctx, root, FetchOptions{Dest: t.TempDir() + "/f", NoConnected: true, FindTimeout: time.Minute})
		fetchDone <- err
	}()
	defer func() { fcancel(); <-fetchDone }()

	// A peer asks for root: HAVE_NONE, since nothing is served yet. The
	// fetch registers itself before it looks for peers; ask until the
	// session is taken.
	var (
		r   *wire.Reader
		st  network.Stream
		err error
	)
	for {
		st, err = hs[1].NewStream(ctx, hs[0].ID(), wire.ProtocolID)
		if err != nil {
			t.Fatal(err)
		}
		w := wire.NewWriter(st)
		w.Write(&wire.Hello{Version: wire.Version, Root: root})
		w.Flush()
		r = wire.NewReader(st, 0)
		m, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := m.(*wire.HaveNone); ok {
			break
		}
		if _, ok := m.(*wire.Error); !ok || ctx.Err() != nil {
			t.Fatalf("first message %v, want HAVE_NONE", m)
		}
		st.Close()
	}

	have := bitfield.New(l.NumChunks())
	have.Set(2)
	have.Set(7)
	sw.Serve(root, &partialSource{memSource: memSource{l: l, data: data}, have: have})
	type result struct {
		got []uint64
		err error
	}
	res := make(chan result, 1)
	go func() {
		var got []uint64
		for len(got) < 2 {
			m, err := r.Read()
			if err != nil {
				res <- result{got, err}
				return
			}
			if h, ok := m.(*wire.Have); ok {
				got = append(got, h.Index)
			}
		}
		res <- result{got, nil}
	}()
	var got []uint64
	select {
	case rs := <-res:
		if rs.err != nil {
			t.Fatalf("after %v: %v", rs.got, rs.err)
		}
		got = rs.got
	case <-time.After(10 * time.Second):
		st.Reset() // ends the reader
		<-res
		t.Fatal("no HAVE for the chunks the late source has")
	}
	if got[0] != 2 || got[1] != 7 {
		t.Errorf("HAVEs %v, want [2 7]", got)
	}
}
