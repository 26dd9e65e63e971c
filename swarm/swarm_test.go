package swarm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"go.uber.org/goleak"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/unixfs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// memBlocks is a BlockStore in memory.
type memBlocks struct {
	mu sync.Mutex
	m  map[cid.Cid][]byte
}

func (b *memBlocks) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.m[c]
	if !ok {
		return nil, errors.New("not found")
	}
	return d, nil
}

func (b *memBlocks) PutBlock(c cid.Cid, d []byte) error {
	if err := integrity.Verify(c, d); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[c] = d
	return nil
}

// memSource serves a file held in memory.
type memSource struct {
	l    *Layout
	data []byte
}

func (s *memSource) Layout() *Layout { return s.l }
func (s *memSource) Has(int64) bool  { return true }
func (s *memSource) Complete() bool  { return true }
func (s *memSource) Bits() []byte    { return nil }
func (s *memSource) ReadChunk(_ context.Context, i int64, buf []byte) ([]byte, error) {
	c := s.l.Chunks[i]
	return append(buf[:0], s.data[c.Offset:c.Offset+int64(c.Size)]...), nil
}

// build makes the UnixFS DAG of data cut in chunks of size in blocks and
// returns its root (name is the file's in a folder; a root has none). A
// file of one chunk is that chunk, whose bytes blocks then holds as well.
func build(t testing.TB, blocks *memBlocks, name string, data []byte, size int) cid.Cid {
	t.Helper()
	_ = name
	b := unixfs.NewFileBuilder(func(bl unixfs.Block) error { return blocks.PutBlock(bl.CID, bl.Data) })
	for off := 0; off < len(data); off += size {
		piece := data[off:min(off+size, len(data))]
		if err := b.Add(unixfs.Leaf(integrity.Chunk(piece), len(piece))); err != nil {
			t.Fatal(err)
		}
	}
	root, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if root.CID.Prefix().Codec == cid.Raw {
		if err := blocks.PutBlock(root.CID, data); err != nil {
			t.Fatal(err)
		}
	}
	return root.CID
}

// cappedMesh returns a mocknet of n connected hosts whose links carry bw
// bytes/s each; it is closed when the test ends.
func cappedMesh(t *testing.T, n int, bw float64) mocknet.Mocknet {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	for range n {
		if _, err := mn.GenPeer(); err != nil {
			t.Fatal(err)
		}
	}
	mn.SetLinkDefaults(mocknet.LinkOptions{Bandwidth: bw})
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	return mn
}

// randomData returns n bytes drawn from seed.
func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	return data
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestFetchOverMocknet: three seeders on mocknet, each serving from
// memory, one fetcher; the seeders share the work, the file is exact, and
// nothing leaks. Each link carries 2 MiB/s, so that the fetch takes more
// than a second even from all three.
func TestFetchOverMocknet(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mn := cappedMesh(t, 4, 2<<20)
		data := randomData(8<<20+12345, 7)
		hosts := mn.Hosts()
		seedBlocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root := build(t, seedBlocks, "data.bin", data, 64<<10)
		l, err := BuildLayout(ctx, seedBlocks, root)
		if err != nil {
			t.Fatal(err)
		}
		var swarms []*Swarm
		for _, h := range hosts[:3] {
			s := New(h, seedBlocks, Config{Logger: quiet()})
			s.Serve(root, &memSource{l: l, data: data})
			swarms = append(swarms, s)
		}
		fetcher := New(hosts[3], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		swarms = append(swarms, fetcher)
		defer func() {
			for _, s := range swarms {
				s.Close()
			}
		}()
		dest := filepath.Join(t.TempDir(), "data.bin")
		res, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(dest)
		if !bytes.Equal(got, data) {
			t.Fatal("fetched file differs")
		}
		if _, err := os.Stat(PartialPath(dest, root)); !os.IsNotExist(err) {
			t.Fatalf("partial file left behind: %v", err)
		}
		// All three served: a multi-source fetch. (On the wall clock a
		// loaded machine could bring one session up so late that every
		// chunk was already asked of the other two; in virtual time the
		// sessions come up together, whatever the load.)
		served := 0
		for _, h := range hosts[:3] {
			if res.Progress.PerPeer[h.ID()] > 0 {
				served++
			}
		}
		if served < 3 {
			t.Errorf("%d of 3 seeders served: %v", served, res.Progress.PerPeer)
		}
		// A second fetch to the same place is refused before anything moves.
		if _, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest}); !errors.Is(err, ErrExists) {
			t.Fatalf("fetch onto an existing file = %v, want ErrExists", err)
		}
	})
}

// TestNoProviders: a root nobody has fails after the find timeout with a
// message that says so, and leaves no file.
func TestNoProviders(t *testing.T) {
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	a := New(mn.Hosts()[0], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
	defer a.Close()
	b := New(mn.Hosts()[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
	defer b.Close()
	dest := filepath.Join(t.TempDir(), "x")
	_, err = b.Fetch(context.Background(), integrity.Block([]byte("nobody has this")), FetchOptions{Dest: dest, FindTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrNoProviders) {
		t.Fatalf("Fetch = %v, want ErrNoProviders", err)
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatal("a destination was created")
	}
}
