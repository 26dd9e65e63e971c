package swarm

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
)

// readBacker is how node.Open's reader reads a download it streams.
type readBacker interface {
	ReadBack(ctx context.Context, i int64, buf []byte) ([]byte, error)
}

// TestReadBackHandsOffVerifiedChunks fetches a file over mocknet with a
// streaming reader that reads each chunk as soon as the fetch says it is
// verified, the two in lockstep; just before the reader reads a chunk, the
// test overwrites it on disk with zeros. The reader must get the bytes the
// fetch verified, from memory: a ReadBack that read the file back (what it
// did before the handoff) gets the zeros.
func TestReadBackHandsOffVerifiedChunks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn, err := mocknet.FullMeshConnected(2)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	data := randomData(3<<20+777, 21)
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := build(t, blocks, "f.bin", data, 64<<10)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	seeder := New(mn.Hosts()[0], blocks, Config{Logger: quiet()})
	defer seeder.Close()
	seeder.Serve(root, &memSource{l: l, data: data})
	fetcher := New(mn.Hosts()[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 3})
	defer fetcher.Close()

	dest := filepath.Join(t.TempDir(), "f.bin")
	var rb readBacker
	next, done := make(chan int64), make(chan struct{})
	var reads int64
	reader := sync.WaitGroup{}
	reader.Go(func() {
		var buf []byte
		for i := range next {
			c := l.Chunks[i]
			got, err := rb.ReadBack(ctx, i, buf)
			switch {
			case err != nil:
				t.Errorf("ReadBack(%d): %v", i, err)
			case !bytes.Equal(got, data[c.Offset:c.Offset+int64(c.Size)]):
				t.Errorf("ReadBack(%d) is not the chunk the fetch verified (the file on disk has zeros there now)", i)
			}
			buf = got
			reads++
			done <- struct{}{}
		}
	})
	_, err = fetcher.Fetch(ctx, root, FetchOptions{
		Dest: dest,
		Started: func(_ *Layout, src Source) {
			rb = src.(readBacker)
			// A reader is there from the start: its first ReadBack (of
			// a chunk not had yet) fails, and the download keeps chunks
			// from then on.
			if _, err := rb.ReadBack(ctx, 0, nil); err == nil {
				t.Error("ReadBack of a chunk not fetched yet succeeded")
			}
		},
		Verified: func(i int64) {
			c := l.Chunks[i]
			f, err := os.OpenFile(PartialPath(dest, root), os.O_WRONLY, 0)
			if err != nil {
				t.Error(err)
				return
			}
			_, err = f.WriteAt(make([]byte, c.Size), c.Offset)
			f.Close()
			if err != nil {
				t.Error(err)
				return
			}
			next <- i
			<-done
		},
	})
	close(next)
	reader.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if reads != l.NumChunks() {
		t.Fatalf("%d chunks read, want %d", reads, l.NumChunks())
	}
}

// handoffRig is a download of a 40-chunk file of 64 KiB chunks that keeps
// at most 4 chunks for a streaming reader.
type handoffRig struct {
	t    *testing.T
	l    *Layout
	data []byte
	d    *download
}

func newHandoffRig(t *testing.T) *handoffRig {
	t.Helper()
	ctx := context.Background()
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	data := randomData(40<<16-100, 5)
	root := build(t, blocks, "h.bin", data, 64<<10)
	l, err := BuildLayout(ctx, blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	d, err := openDownload(l, filepath.Join(t.TempDir(), "h.bin"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.closeFiles)
	d.handoff.max = 4 << 16
	return &handoffRig{t: t, l: l, data: data, d: d}
}

func (r *handoffRig) chunk(i int64) []byte {
	c := r.l.Chunks[i]
	return r.data[c.Offset : c.Offset+int64(c.Size)]
}

// write writes chunk i as a session does: from a pool buffer that it gives
// back unless the download kept it.
func (r *handoffRig) write(i int64) {
	buf := getBuf(len(r.chunk(i)))
	copy(buf, r.chunk(i))
	_, kept, err := r.d.writeOwned(i, buf)
	if err != nil {
		r.t.Error(err)
	}
	if !kept {
		putBuf(buf)
	}
}

// enable is the first ReadBack of a reader that starts before chunk 0
// is had: it fails, and the download keeps chunks from then on.
func (r *handoffRig) enable() {
	if _, err := r.d.ReadBack(context.Background(), 0, nil); err == nil {
		r.t.Error("ReadBack of a chunk not written yet succeeded")
	}
}

// read reads chunk i back and checks its bytes.
func (r *handoffRig) read(i int64, buf []byte) []byte {
	got, err := r.d.ReadBack(context.Background(), i, buf)
	if err != nil {
		r.t.Errorf("ReadBack(%d): %v", i, err)
		return buf
	}
	if !bytes.Equal(got, r.chunk(i)) {
		r.t.Errorf("ReadBack(%d) differs from the chunk", i)
	}
	return got
}

func (r *handoffRig) state() (kept int, bytes int, hits int64) {
	r.d.mu.Lock()
	defer r.d.mu.Unlock()
	return len(r.d.handoff.kept), r.d.handoff.bytes, r.d.handoff.hits
}

// TestHandoffReaders: a reader faster than the fetch gets every chunk
// from memory; one slower than the fetch gets the last four from memory
// and the rest from the file; seeks back and forth read from the file
// what is no longer kept. Every byte matches, memory stays within the
// bound, and nothing is kept once the download is closed, or when no one
// reads.
func TestHandoffReaders(t *testing.T) {
	t.Run("nobody reads", func(t *testing.T) {
		r := newHandoffRig(t)
		for i := range r.l.NumChunks() {
			r.write(i)
		}
		if kept, _, _ := r.state(); kept != 0 {
			t.Fatalf("a download no one reads keeps %d chunks", kept)
		}
	})
	t.Run("faster reader", func(t *testing.T) {
		r := newHandoffRig(t)
		var buf []byte
		r.write(0)
		buf = r.read(0, buf) // the first ReadBack: from the file
		for i := int64(1); i < r.l.NumChunks(); i++ {
			r.write(i)
			buf = r.read(i, buf)
		}
		kept, n, hits := r.state()
		if want := r.l.NumChunks() - 1; hits != want || kept != 0 || n != 0 {
			t.Fatalf("%d chunks from memory (want %d), %d kept (%d bytes) after all were read", hits, want, kept, n)
		}
	})
	t.Run("slower reader", func(t *testing.T) {
		r := newHandoffRig(t)
		r.enable()
		n := r.l.NumChunks()
		for i := range n {
			r.write(i)
			if _, b, _ := r.state(); b > r.d.handoff.max {
				t.Fatalf("%d bytes kept, over the bound of %d", b, r.d.handoff.max)
			}
		}
		var buf []byte
		for i := range n {
			buf = r.read(i, buf)
		}
		if kept, _, hits := r.state(); hits != 4 || kept != 0 {
			t.Fatalf("%d chunks from memory, want the last 4; %d kept after all were read", hits, kept)
		}
	})
	t.Run("seeks", func(t *testing.T) {
		r := newHandoffRig(t)
		r.enable()
		for i := range int64(10) {
			r.write(i)
		}
		// Kept: 6, 7, 8, 9.
		var buf []byte
		for _, step := range []struct {
			i   int64
			hit bool
		}{{9, true}, {2, false}, {7, true}, {7, false}, {0, false}, {8, true}, {5, false}, {6, true}} {
			_, _, before := r.state()
			buf = r.read(step.i, buf)
			if _, _, after := r.state(); (after > before) != step.hit {
				t.Errorf("ReadBack(%d) from memory: %v, want %v", step.i, after > before, step.hit)
			}
		}
		r.write(10)
		r.write(11)
		r.d.closeFiles()
		if kept, n, _ := r.state(); kept != 0 || n != 0 {
			t.Fatalf("%d chunks (%d bytes) kept after closeFiles", kept, n)
		}
		buf = r.read(10, buf) // from the file, which is still there
		r.read(11, buf)
	})
}

// TestHandoffConcurrent writes a download from three goroutines, as three
// sessions do, with pool buffers, while one reader reads every chunk in
// order as soon as it is had and another reads chunks at random: every
// byte must be the chunk's, with no race on a buffer (run with -race: a
// buffer given back to the pool while a reader copies it, and taken by a
// writer, is a race), and nothing kept once closed.
func TestHandoffConcurrent(t *testing.T) {
	r := newHandoffRig(t)
	n := r.l.NumChunks()
	had := make([]chan struct{}, n)
	for i := range had {
		had[i] = make(chan struct{})
	}
	r.enable()
	var wg sync.WaitGroup
	for w := range int64(3) {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			var mine []int64
			for i := w; i < n; i += 3 {
				mine = append(mine, i)
			}
			// Mostly in order, as a streaming fetch asks: swap a few.
			for range 3 {
				a, b := rng.IntN(len(mine)), rng.IntN(len(mine))
				mine[a], mine[b] = mine[b], mine[a]
			}
			for _, i := range mine {
				r.write(i)
				close(had[i])
			}
		})
	}
	wg.Go(func() { // in order, waiting for each chunk
		var buf []byte
		for i := range n {
			<-had[i]
			buf = r.read(i, buf)
		}
	})
	wg.Go(func() { // seeks at random among the chunks had
		rng := rand.New(rand.NewPCG(9, 9))
		var buf []byte
		for range 200 {
			i := rng.Int64N(n)
			<-had[i]
			buf = r.read(i, buf)
		}
	})
	wg.Wait()
	if _, b, _ := r.state(); b > r.d.handoff.max {
		t.Fatalf("%d bytes kept, over the bound of %d", b, r.d.handoff.max)
	}
	r.d.closeFiles()
	if kept, b, _ := r.state(); kept != 0 || b != 0 {
		t.Fatalf("%d chunks (%d bytes) kept after closeFiles", kept, b)
	}
}
