package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/gateway"
	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/unixfs"
)

// memBlocks is a swarm.BlockStore in memory.
type memBlocks struct {
	mu sync.Mutex
	m  map[cid.Cid][]byte
}

func (b *memBlocks) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d, ok := b.m[c]; ok {
		return d, nil
	}
	return nil, errors.New("no such block")
}

func (b *memBlocks) PutBlock(c cid.Cid, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[c] = data
	return nil
}

// countingSource serves data's chunks but those in missing, and counts
// the reads of each chunk (one per BLOCK sent to a peer).
type countingSource struct {
	l       *swarm.Layout
	data    []byte
	missing map[int64]bool

	mu    sync.Mutex
	reads map[int64]int
}

func (s *countingSource) Layout() *swarm.Layout { return s.l }
func (s *countingSource) Has(i int64) bool {
	return i >= 0 && i < s.l.NumChunks() && !s.missing[i]
}
func (s *countingSource) Complete() bool { return len(s.missing) == 0 }
func (s *countingSource) Bits() []byte {
	bf := bitfield.New(s.l.NumChunks())
	for i := range s.l.NumChunks() {
		if s.Has(i) {
			bf.Set(i)
		}
	}
	return bf.Bytes()
}

func (s *countingSource) ReadChunk(_ context.Context, i int64, buf []byte) ([]byte, error) {
	if !s.Has(i) {
		return nil, fmt.Errorf("chunk %d is not here", i)
	}
	s.mu.Lock()
	s.reads[i]++
	s.mu.Unlock()
	c := s.l.Chunks[i]
	return append(buf[:0], s.data[c.Offset:c.Offset+int64(c.Size)]...), nil
}

func (s *countingSource) read(i int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[i]
}

// rangeRig is a gateway on a node that has nothing, on a mocknet, and a
// seed (a bare swarm) that serves a file root of 8 chunks and a bit to it,
// but the chunks in missing. The file starts with a GIF header, so that
// sniffing it says image/gif.
type rangeRig struct {
	gw   *gateway.Gateway
	root cid.Cid
	data []byte
	src  *countingSource
}

func newRangeRig(t *testing.T, missing ...int64) *rangeRig {
	t.Helper()
	const chunk = 256 << 10
	data := randomBytes(8*chunk+777, 9)
	copy(data, "GIF89a")
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	fb := unixfs.NewFileBuilder(func(b unixfs.Block) error { return blocks.PutBlock(b.CID, b.Data) })
	for off := 0; off < len(data); off += chunk {
		piece := data[off:min(off+chunk, len(data))]
		if err := fb.Add(unixfs.Leaf(integrity.Chunk(piece), len(piece))); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	l, err := swarm.BuildLayout(context.Background(), blocks, root.CID)
	if err != nil {
		t.Fatal(err)
	}
	src := &countingSource{l: l, data: data, missing: map[int64]bool{}, reads: map[int64]int{}}
	for _, i := range missing {
		src.missing[i] = true
	}

	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() }) // after the nodes: cleanups run last-in first-out
	hs, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	hb, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	seed := swarm.New(hs, blocks, swarm.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	t.Cleanup(func() { seed.Close() })
	seed.Serve(root.CID, src)
	b := startNodeWith(t, func(c *node.Config) {
		c.Host, c.Listen, c.NoDHT = hb, nil, true
	})
	if err := mn.ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Node: b, Loopback: true, Fetch: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &rangeRig{gw: gw, root: root.CID, data: data, src: src}
}

// get asks the gateway for the root, with the query (after "?", "" for
// none) and the Range rng ("" for none), giving up after a minute.
func (rr *rangeRig) get(t *testing.T, query, rng string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	u := "http://127.0.0.1/ipfs/" + rr.root.String()
	if query != "" {
		u += "?" + query
	}
	req := httptest.NewRequestWithContext(ctx, "GET", u, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	rec := httptest.NewRecorder()
	rr.gw.ServeHTTP(rec, req)
	return rec.Result()
}

// checkRange checks that resp is the 206 of bytes from- of the file, with
// Content-Type ctype.
func (rr *rangeRig) checkRange(t *testing.T, resp *http.Response, from int, ctype string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusPartialContent {
		t.Fatalf("Range bytes=%d- = %d %q, want 206 and its bytes", from, resp.StatusCode, body[:min(len(body), 200)])
	}
	if !bytes.Equal(body, rr.data[from:]) {
		t.Fatalf("Range bytes=%d-: %d bytes, want the file's %d from there", from, len(body), len(rr.data)-from)
	}
	if got := resp.Header.Get("Content-Type"); got != ctype {
		t.Errorf("Range bytes=%d-: Content-Type %q, want %q", from, got, ctype)
	}
}

// TestRangeWithoutFirstChunk: a Range past the first chunk of a file root
// (no name, so no type from an extension) on a node that has nothing is
// answered without the first chunk: sniffing the type would wait for it.
// The seed cannot give chunk 0 at all, so the answer shows that it never
// waited for it, and the seed's reads that it was never fetched; its type
// is application/octet-stream, not known yet, and no cache may keep it
// (the same URL is typed by its bytes once the first chunk is here).
func TestRangeWithoutFirstChunk(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		rr := newRangeRig(t, 0)
		from := len(rr.data) - 300<<10
		resp := rr.get(t, "", fmt.Sprintf("bytes=%d-", from))
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("a Range typed before the first chunk is here: Cache-Control %q, want no-store", cc)
		}
		rr.checkRange(t, resp, from, "application/octet-stream")
		served := 0
		for i := range rr.src.l.NumChunks() {
			served += rr.src.read(i)
		}
		t.Logf("the seed sent %d chunks of %d for the range's 2", served, rr.src.l.NumChunks())
		if n := rr.src.read(0); n != 0 {
			t.Errorf("the seed sent chunk 0 %d times", n)
		}
	})
}

// TestRangeSniffedOnceHere: once the first chunk is here (the first
// request of a browser reads from the start, and is sniffed), a Range
// past it gets the sniffed type too, so that every answer of one file
// says the same.
func TestRangeSniffedOnceHere(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		rr := newRangeRig(t)
		resp := rr.get(t, "", "bytes=0-99")
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, rr.data[:100]) {
			t.Fatalf("Range bytes=0-99 = %d, %d bytes", resp.StatusCode, len(body))
		}
		if got := resp.Header.Get("Content-Type"); got != "image/gif" {
			t.Fatalf("Range bytes=0-99: Content-Type %q, want image/gif (sniffed)", got)
		}
		from := len(rr.data) - 300<<10
		rr.checkRange(t, rr.get(t, "", fmt.Sprintf("bytes=%d-", from)), from, "image/gif")
	})
}

// TestRangeTypeFromFilename: a file root named by ?filename= takes its
// type from the name's extension, so a Range past the first chunk on a
// node that has nothing needs no sniffing: the type is the name's, and the
// first chunk (which no peer has here) is never waited for.
func TestRangeTypeFromFilename(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		rr := newRangeRig(t, 0)
		from := len(rr.data) - 300<<10
		resp := rr.get(t, "filename=clip.pdf", fmt.Sprintf("bytes=%d-", from))
		rr.checkRange(t, resp, from, "application/pdf")
		if cd, want := resp.Header.Get("Content-Disposition"), `inline; filename="clip.pdf"; filename*=UTF-8''clip.pdf`; cd != want {
			t.Errorf("Content-Disposition %q, want %q", cd, want)
		}
		if n := rr.src.read(0); n != 0 {
			t.Errorf("the seed sent chunk 0 %d times", n)
		}
	})
}
