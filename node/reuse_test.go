package node

// Move only what changed (issue 20, item 4): a publisher shares a folder,
// followers follow its name, the publisher changes it (1 MiB changed in
// one file, a file of 10 MiB added, one deleted) and publishes it again,
// and the follows bring their folders to the new version. Each follower must
// receive at most the changed bytes plus 2 chunks per changed file (the
// rest it copies from the previous version it holds), and the publisher
// must upload at most 1.5× the changed bytes (the followers serve each
// other: the publisher, their only seed, sends each new chunk about once,
// see swarm/spread.go). TestUpdateMovesOnlyWhatChanged runs it on mocknet
// in virtual time, scaled down; BenchmarkUpdate runs it full size on
// 127.0.0.1.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/internal/bubble"
	"github.com/peer-project/peer/swarm"
)

// updateSpec is one run of the update measure.
type updateSpec struct {
	Files    int   // files in version 1
	Size     int64 // bytes in all of them
	Chunking Chunking
	Front    bool  // insert the changed bytes at the front of a file; else overwrite them in place
	Change   int64 // bytes changed in one file
	Add      int64 // bytes of the file added
	Seed     uint64
}

// updateFigures is what a run measured.
type updateFigures struct {
	Changed      int64         // Change + Add
	ChangedFiles int           // the changed file and the added one
	Chunk        int64         // the chunker's chunk size (FastCDC: its average)
	Received     []int64       // per follower: verified bytes from peers
	Local        []int64       // per follower: bytes copied from its own files
	Uploaded     int64         // the publisher's chunk bytes sent for version 2
	Sync         time.Duration // from the second publish's start to the last follower in sync
	Publish      time.Duration // of Sync, the second publish itself (sharing the folder again)
	First        time.Duration // the followers' fetch of version 1, all of it
	Size         int64         // version 1's bytes
}

// followerLimit is the most a follower may receive.
func (f updateFigures) followerLimit() int64 {
	return f.Changed + 2*f.Chunk*int64(f.ChangedFiles)
}

// publisherLimit is the most the publisher may upload.
func (f updateFigures) publisherLimit() int64 { return f.Changed * 3 / 2 }

// String prints the figures beside their limits, as ratios.
func (f updateFigures) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "changed %.1f MiB in %d files, chunk %d KiB; ", mib(f.Changed), f.ChangedFiles, f.Chunk>>10)
	for i, r := range f.Received {
		fmt.Fprintf(&b, "follower %d received %.2f MiB = %.2f× its limit (%.2f MiB), copied %.1f MiB locally; ",
			i, mib(r), float64(r)/float64(f.followerLimit()), mib(f.followerLimit()), mib(f.Local[i]))
	}
	fmt.Fprintf(&b, "publisher uploaded %.2f MiB = %.2f× the changed bytes = %.2f× its limit (1.5×, %.2f MiB); in sync after %v",
		mib(f.Uploaded), float64(f.Uploaded)/float64(f.Changed), float64(f.Uploaded)/float64(f.publisherLimit()),
		mib(f.publisherLimit()), f.Sync.Round(time.Millisecond))
	fmt.Fprintf(&b, " (of which the publish took %v)", f.Publish.Round(time.Millisecond))
	return b.String()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// fill writes n bytes drawn from r to the file at path.
func fill(tb testing.TB, path string, r *rand.Rand, n int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		for i := 0; i < int(k); i += 8 {
			v := r.Uint64()
			for j := 0; j < 8 && i+j < int(k); j++ {
				buf[i+j] = byte(v >> (8 * j))
			}
		}
		if _, err := f.Write(buf[:k]); err != nil {
			tb.Fatal(err)
		}
		n -= k
	}
}

// runUpdate runs sp with pub publishing and followers following; the nodes
// can reach each other (the followers are told of each other). It checks
// that every follower ends with the publisher's folder.
func runUpdate(tb testing.TB, ctx context.Context, pub *Node, followers []*Node, sp updateSpec) updateFigures {
	tb.Helper()
	r := rand.New(rand.NewPCG(sp.Seed, 20))
	dir := filepath.Join(tb.TempDir(), "folder")
	if err := os.Mkdir(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	per := sp.Size / int64(sp.Files)
	for i := range sp.Files {
		fill(tb, filepath.Join(dir, fmt.Sprintf("file-%03d.bin", i)), r, per)
	}
	// The publisher publishes the folder under its name; each follower
	// follows the name into a folder of its own, told of the others.
	popts := PublishOptions{Share: ShareOptions{Chunking: sp.Chunking}}
	pub1, err := pub.Publish(ctx, dir, popts)
	if err != nil {
		tb.Fatal(err)
	}
	dests := make([]string, len(followers))
	type applied struct {
		e  FollowEvent
		at time.Time
	}
	events := make([]chan applied, len(followers))
	fctx, fcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		fcancel()
		wg.Wait()
	}()
	t0 := time.Now()
	for i, f := range followers {
		dests[i] = filepath.Join(tb.TempDir(), "follow")
		// The publisher first, as a ticket of the name would name it.
		others := []peer.AddrInfo{pub.AddrInfo()}
		for j, g := range followers {
			if j != i {
				others = append(others, g.AddrInfo())
			}
		}
		ch := make(chan applied, 256)
		events[i] = ch
		opts := FollowOptions{Peers: others, OnEvent: func(e FollowEvent) {
			select {
			case ch <- applied{e, time.Now()}:
			default:
			}
		}}
		wg.Go(func() {
			if err := f.Follow(fctx, pub1.Name, dests[i], opts); err != nil {
				tb.Errorf("follower %d: %v", i, err)
			}
		})
	}
	// waitAll waits for every follower to apply root, and returns their
	// events and when the last applied it.
	waitAll := func(root cid.Cid) ([]FollowEvent, time.Time) {
		out := make([]FollowEvent, len(followers))
		var last time.Time
		for i := range followers {
			for out[i].Root != root {
				select {
				case a := <-events[i]:
					if a.e.Err != nil {
						tb.Logf("follower %d: %v", i, a.e.Err)
					}
					if a.e.Applied && a.e.Root == root {
						out[i] = a.e
						if a.at.After(last) {
							last = a.at
						}
					}
				case <-ctx.Done():
					tb.Fatalf("follower %d: version %s not applied: %v", i, root, ctx.Err())
				}
			}
		}
		return out, last
	}
	_, t1 := waitAll(pub1.Root)

	// Version 2.
	first := filepath.Join(dir, "file-000.bin")
	old, err := os.ReadFile(first)
	if err != nil {
		tb.Fatal(err)
	}
	change := make([]byte, sp.Change)
	for i := range change {
		change[i] = byte(r.Uint32())
	}
	changed := sp.Change
	if sp.Front {
		err = os.WriteFile(first, append(change, old...), 0o644)
	} else {
		// In place: as much of it as the file holds past the offset.
		changed = int64(copy(old[int64(len(old))/3+12345:], change))
		err = os.WriteFile(first, old, 0o644)
	}
	if err != nil {
		tb.Fatal(err)
	}
	fill(tb, filepath.Join(dir, "added.bin"), r, sp.Add)
	if err := os.Remove(filepath.Join(dir, "file-001.bin")); err != nil {
		tb.Fatal(err)
	}
	up := pub.Stats().BytesUp
	start := time.Now()
	pub2, err := pub.Publish(ctx, dir, popts)
	if err != nil {
		tb.Fatal(err)
	}
	published := time.Now()
	res, end := waitAll(pub2.Root)

	fig := updateFigures{
		Changed: changed + sp.Add, ChangedFiles: 2, Uploaded: pub.Stats().BytesUp - up, Sync: end.Sub(start), Publish: published.Sub(start),
		Chunk: int64(sp.Chunking.Size), First: t1.Sub(t0), Size: per * int64(sp.Files),
	}
	if sp.Chunking.Algorithm == chunker.FastCDC {
		fig.Chunk = int64(sp.Chunking.Avg)
	}
	for i, e := range res {
		fig.Received = append(fig.Received, e.Received)
		fig.Local = append(fig.Local, e.Local)
		sameFolder(tb, dests[i], dir)
	}
	return fig
}

// sameFolder fails unless the flat folder got holds the files of want,
// byte for byte, and nothing else (by hash: the benchmark's are 1 GiB).
func sameFolder(tb testing.TB, got, want string) {
	tb.Helper()
	list := func(dir string) map[string][32]byte {
		out := map[string][32]byte{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() == FollowDir {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				tb.Fatal(err)
			}
			out[e.Name()] = sha256.Sum256(b)
		}
		return out
	}
	g, w := list(got), list(want)
	names := func(m map[string][32]byte) []string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		slices.Sort(s)
		return s
	}
	if !slices.Equal(names(g), names(w)) {
		tb.Fatalf("%s holds %v, want %v", got, names(g), names(w))
	}
	for k, h := range w {
		if g[k] != h {
			tb.Fatalf("%s/%s differs from the publisher's", got, k)
		}
	}
}

// TestUpdateMovesOnlyWhatChanged: the update measure, scaled for CI (a
// 32 MiB folder of 20 files, 256 KiB chunks, 3 followers) on mocknet in
// virtual time: the publisher's links carry 8 MB/s, the followers' 32 MB/s.
func TestUpdateMovesOnlyWhatChanged(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chunking Chunking
		front    bool
	}{
		{"fixed, changed in place", chunker.FixedParams(256 << 10), false},
		{"fastcdc, inserted at the front", chunker.CDCParams(256 << 10), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				mn, nodes := mockNodes(t, 4)
				pub, followers := nodes[0], nodes[1:]
				for i, a := range nodes {
					for _, b := range nodes[i+1:] {
						bw := 32e6
						if a == pub {
							bw = 8e6
						}
						link(t, mn, a, b, bw)
					}
				}
				fig := runUpdate(t, ctx, pub, followers, updateSpec{
					Files: 20, Size: 32 << 20, Chunking: tc.chunking, Front: tc.front,
					Change: 1 << 20, Add: 10 << 20, Seed: 1,
				})
				t.Log(fig)
				for i, r := range fig.Received {
					if r > fig.followerLimit() {
						t.Errorf("follower %d received %d bytes, more than the changed bytes plus 2 chunks per changed file (%d)", i, r, fig.followerLimit())
					}
				}
				if fig.Uploaded > fig.publisherLimit() {
					t.Errorf("the publisher uploaded %d bytes = %.2f× the changed bytes, more than 1.5× (%d)",
						fig.Uploaded, float64(fig.Uploaded)/float64(fig.Changed), fig.publisherLimit())
				}
			})
		})
	}
}

// TestUpdateReplacesOnlyWhatItWrote: a forced fetch of a new version into
// the folder of an earlier one removes the files the new root dropped
// only while they hold what the earlier fetch wrote there: a file the user
// added or changed refuses the fetch (ErrWontReplace), and the folder
// stays as it was.
func TestUpdateReplacesOnlyWhatItWrote(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(t *testing.T, dest string)
	}{
		{"a file added", func(t *testing.T, dest string) {
			os.WriteFile(filepath.Join(dest, "mine.txt"), []byte("mine"), 0o644)
		}},
		{"the dropped file changed", func(t *testing.T, dest string) {
			os.WriteFile(filepath.Join(dest, "b.bin"), []byte("edited"), 0o644)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				mn, nodes := mockNodes(t, 2)
				pub, fol := nodes[0], nodes[1]
				link(t, mn, pub, fol, 0)
				dir := t.TempDir()
				randomFile(t, dir, "a.bin", 300<<10, 1)
				randomFile(t, dir, "b.bin", 300<<10, 2)
				v1, err := pub.Share(ctx, dir, ShareOptions{})
				if err != nil {
					t.Fatal(err)
				}
				hint := pub.AddrInfo()
				dest := filepath.Join(t.TempDir(), "got")
				if _, err := fol.Fetch(ctx, Target{Root: v1.Root, Hint: &hint}, dest, FetchOptions{}); err != nil {
					t.Fatal(err)
				}
				os.Remove(filepath.Join(dir, "b.bin"))
				v2, err := pub.Share(ctx, dir, ShareOptions{})
				if err != nil {
					t.Fatal(err)
				}
				tc.edit(t, dest)
				before, _ := os.ReadDir(dest)
				_, err = fol.Fetch(ctx, Target{Root: v2.Root, Hint: &hint}, dest, FetchOptions{Force: true})
				if !errors.Is(err, swarm.ErrWontReplace) {
					t.Fatalf("forced fetch over %s = %v, want ErrWontReplace", tc.name, err)
				}
				after, _ := os.ReadDir(dest)
				if len(after) != len(before) {
					t.Fatalf("the folder held %d entries, now %d", len(before), len(after))
				}
			})
		})
	}
}

// TestFetchSkipsChangedLocalCopy: a chunk indexed in a share whose file
// was rewritten behind the store's back (same size, modification time set
// back) is not copied from it: the fetch hashes it, finds it wrong, takes
// it from the network, and writes the right bytes.
func TestFetchSkipsChangedLocalCopy(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mn, nodes := mockNodes(t, 2)
		pub, fol := nodes[0], nodes[1]
		link(t, mn, pub, fol, 0)
		path, data := randomFile(t, t.TempDir(), "x.bin", 1<<20, 3) // 4 chunks of 256 KiB
		sh, err := pub.Share(ctx, path, ShareOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The follower shares the same bytes, then they change under it.
		mine, _ := randomFile(t, t.TempDir(), "mine.bin", 1<<20, 3)
		if _, err := fol.Share(ctx, mine, ShareOptions{}); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(mine)
		bad := bytes.Clone(data)
		bad[(1<<20)/2] ^= 1 // chunk 2
		os.WriteFile(mine, bad, 0o644)
		os.Chtimes(mine, fi.ModTime(), fi.ModTime())
		hint := pub.AddrInfo()
		dest := filepath.Join(t.TempDir(), "got.bin")
		res, err := fol.Fetch(ctx, Target{Root: sh.Root, Hint: &hint}, dest, FetchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		sameFile(t, dest, data)
		if res.Progress.Received != 256<<10 || res.Progress.Local != 3*256<<10 {
			t.Fatalf("received %d bytes, copied %d; want the changed chunk (%d) from the network, the rest (%d) copied",
				res.Progress.Received, res.Progress.Local, 256<<10, 3*256<<10)
		}
	})
}
