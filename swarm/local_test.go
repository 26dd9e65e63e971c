package swarm

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
)

// fromPeers is what a fetch received from peers, by its PerPeer counts.
func fromPeers(p Progress) int64 {
	var n int64
	for _, b := range p.PerPeer {
		n += b
	}
	return n
}

// TestFetchLocalCopies: a fetch of v2 of a file copies from this machine
// every chunk it already has (through Local, or in the previous version at
// Dest with Force) and asks the peer only for the rest; a local copy whose
// bytes changed since it was indexed (truncated, rewritten, replaced by a
// folder) is never written: that chunk comes from the network, and the
// file is exact.
func TestFetchLocalCopies(t *testing.T) {
	const chunk = 64 << 10
	const chunks = 8
	v1 := randomData(chunks*chunk, 11)
	v2 := bytes.Clone(v1)
	copy(v2[3*chunk+100:], randomData(1000, 12)) // one chunk changed in place
	// Where v1's chunks sit in a file indexed elsewhere on this machine.
	places := func(path string) func(cid.Cid) []LocalCopy {
		at := map[cid.Cid][]LocalCopy{}
		for off := 0; off < len(v1); off += chunk {
			c := integrity.Chunk(v1[off : off+chunk])
			at[c] = append(at[c], LocalCopy{Path: path, Offset: int64(off), Size: chunk})
		}
		return func(c cid.Cid) []LocalCopy { return at[c] }
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string, opts *FetchOptions)
		// the chunks of v2 the fetch must get from the peer
		network int
	}{
		{"indexed copy", func(t *testing.T, dir string, opts *FetchOptions) {
			p := filepath.Join(dir, "shared", "old.bin")
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, v1, 0o644)
			opts.Local = places(p)
		}, 1},
		{"previous version at dest", func(t *testing.T, dir string, opts *FetchOptions) {
			os.WriteFile(opts.Dest, v1, 0o644)
			opts.Force = true
		}, 1},
		{"indexed copy truncated since", func(t *testing.T, dir string, opts *FetchOptions) {
			p := filepath.Join(dir, "old.bin")
			os.WriteFile(p, v1[:2*chunk+5], 0o644)
			opts.Local = places(p)
		}, chunks - 2},
		{"indexed copy rewritten since, same size", func(t *testing.T, dir string, opts *FetchOptions) {
			p := filepath.Join(dir, "old.bin")
			bad := bytes.Clone(v1)
			bad[5*chunk] ^= 1
			bad[6*chunk+chunk-1] ^= 1
			os.WriteFile(p, bad, 0o644)
			opts.Local = places(p)
		}, 3},
		{"indexed copy replaced by a folder", func(t *testing.T, dir string, opts *FetchOptions) {
			p := filepath.Join(dir, "old.bin")
			os.Mkdir(p, 0o755)
			opts.Local = places(p)
		}, chunks},
		{"previous version at dest rewritten", func(t *testing.T, dir string, opts *FetchOptions) {
			bad := bytes.Clone(v1)
			bad[0] ^= 1
			os.WriteFile(opts.Dest, bad, 0o644)
			opts.Force = true
		}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bubble.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				mn := cappedMesh(t, 2, 4<<20)
				hosts := mn.Hosts()
				blocks := &memBlocks{m: map[cid.Cid][]byte{}}
				root := build(t, blocks, "v2.bin", v2, chunk)
				l := layoutOf(t, blocks, root)
				seeder := New(hosts[0], blocks, Config{Logger: quiet()})
				defer seeder.Close()
				seeder.Serve(root, &memSource{l: l, data: v2})
				fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
				defer fetcher.Close()
				dir := t.TempDir()
				opts := FetchOptions{Dest: filepath.Join(dir, "v2.bin")}
				tt.setup(t, dir, &opts)
				res, err := fetcher.Fetch(ctx, root, opts)
				if err != nil {
					t.Fatal(err)
				}
				got, _ := os.ReadFile(opts.Dest)
				if !bytes.Equal(got, v2) {
					t.Fatal("fetched file differs from v2")
				}
				p := res.Progress
				if net := fromPeers(p); net != int64(tt.network*chunk) {
					t.Fatalf("received %d bytes from the peer, want %d (%d chunks)", net, tt.network*chunk, tt.network)
				}
				if p.Received != fromPeers(p) || p.Local != int64(len(v2))-p.Received {
					t.Fatalf("Progress says %d bytes local, %d received; want %d and %d", p.Local, p.Received, int64(len(v2))-fromPeers(p), fromPeers(p))
				}
			})
		})
	}
}

// TestFetchLocalCopiesTakeTime: a local copy that takes longer than
// StallTimeout and FindTimeout (a big folder on a slow disk; here a clock
// that jumps ahead 10 minutes at each lookup) does not count against the
// network part of the fetch: it goes on and ends with the file.
func TestFetchLocalCopiesTakeTime(t *testing.T) {
	const chunk = 64 << 10
	data := randomData(8*chunk, 21)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mn := cappedMesh(t, 2, 512<<10) // the 4 chunks from the peer take half a second
	hosts := mn.Hosts()
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := build(t, blocks, "f.bin", data, chunk)
	seeder := New(hosts[0], blocks, Config{Logger: quiet()})
	defer seeder.Close()
	seeder.Serve(root, &memSource{l: layoutOf(t, blocks, root), data: data})
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1, Now: now})
	defer fetcher.Close()
	dir := t.TempDir()
	local := filepath.Join(dir, "old.bin")
	os.WriteFile(local, data[:4*chunk], 0o644)
	dest := filepath.Join(dir, "f.bin")
	res, err := fetcher.Fetch(ctx, root, FetchOptions{Dest: dest, StallTimeout: time.Minute, FindTimeout: time.Minute,
		Local: func(c cid.Cid) []LocalCopy {
			skew.Add(int64(10 * time.Minute))
			for off := 0; off < 4*chunk; off += chunk {
				if integrity.Chunk(data[off : off+chunk]).Equals(c) {
					return []LocalCopy{{Path: local, Offset: int64(off), Size: chunk}}
				}
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("fetched file differs")
	}
	if res.Progress.Local != 4*chunk || res.Progress.Received != 4*chunk {
		t.Fatalf("copied %d bytes, received %d; want %d each", res.Progress.Local, res.Progress.Received, 4*chunk)
	}
}

// TestFetchCopiesFromRunningDownload: a fetch copies the chunks that
// another download of the same swarm, still running, has verified (here
// the first version of a file, half fetched, while the second starts).
func TestFetchCopiesFromRunningDownload(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		const chunk = 64 << 10
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mn := cappedMesh(t, 3, 256<<10) // 4 chunks a second per link
		hosts := mn.Hosts()
		x := randomData(16*chunk, 31)
		y := append(bytes.Clone(x), randomData(chunk, 32)...)
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		rx, ry := build(t, blocks, "x", x, chunk), build(t, blocks, "y", y, chunk)
		sx := New(hosts[0], blocks, Config{Logger: quiet()})
		defer sx.Close()
		sx.Serve(rx, &memSource{l: layoutOf(t, blocks, rx), data: x})
		sy := New(hosts[1], blocks, Config{Logger: quiet()})
		defer sy.Close()
		sy.Serve(ry, &memSource{l: layoutOf(t, blocks, ry), data: y})
		fetcher := New(hosts[2], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		defer fetcher.Close()
		dir := t.TempDir()

		half := make(chan int64, 1)
		xDone := make(chan error, 1)
		go func() {
			_, err := fetcher.Fetch(ctx, rx, FetchOptions{Dest: filepath.Join(dir, "x"), NoConnected: true,
				Hints: []peer.AddrInfo{{ID: hosts[0].ID()}},
				Progress: func(p Progress) {
					if p.Chunks >= 8 {
						select {
						case half <- p.Chunks:
						default:
						}
					}
				}})
			xDone <- err
		}()
		had := <-half
		res, err := fetcher.Fetch(ctx, ry, FetchOptions{Dest: filepath.Join(dir, "y"), NoConnected: true,
			Hints: []peer.AddrInfo{{ID: hosts[1].ID()}}})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "y")); !bytes.Equal(got, y) {
			t.Fatal("fetched file differs")
		}
		if res.Progress.Local < had*chunk {
			t.Fatalf("copied %d bytes from the running download, which had %d", res.Progress.Local, had*chunk)
		}
		if err := <-xDone; err != nil {
			t.Fatal(err)
		}
	})
}

// TestFromRunningAtLaterIndex: a fetch copies a chunk from another
// download of the swarm that holds it only at a later index of its root
// (a repeated chunk whose first place is not fetched yet). Before the
// copy looked at every index of the chunk, it saw only the first, which
// the download lacked, and asked the swarm.
func TestFromRunningAtLaterIndex(t *testing.T) {
	const chunk = 64 << 10
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	c := randomData(chunk, 41)
	x := append(append(bytes.Clone(c), randomData(chunk, 42)...), c...)
	rx := build(t, blocks, "x", x, chunk)
	lx := layoutOf(t, blocks, rx)
	if !lx.Chunks[0].CID.Equals(lx.Chunks[2].CID) {
		t.Fatal("chunks 0 and 2 differ")
	}
	mn, err := mocknet.FullMeshLinked(1)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	sw := New(mn.Hosts()[0], blocks, Config{Logger: quiet()})
	defer sw.Close()
	dl, err := openDownload(lx, filepath.Join(t.TempDir(), "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer dl.closeFiles()
	if _, err := dl.write(2, c); err != nil {
		t.Fatal(err)
	}
	running := &fetch{sw: sw, root: rx, layout: lx, dl: dl}
	other := &fetch{sw: sw, root: integrity.Block([]byte("another root"))}
	sw.mu.Lock()
	sw.fetches[rx] = append(sw.fetches[rx], running)
	sw.fetches[other.root] = append(sw.fetches[other.root], other)
	sw.mu.Unlock()
	defer func() {
		sw.mu.Lock()
		delete(sw.fetches, rx)
		delete(sw.fetches, other.root)
		sw.mu.Unlock()
	}()
	var buf []byte
	if got := other.fromRunning(lx.Chunks[0].CID, chunk, &buf); !bytes.Equal(got, c) {
		t.Fatalf("copied %d bytes from the download that holds the chunk at index 2; want %d", len(got), chunk)
	}
}
