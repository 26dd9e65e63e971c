package swarm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/internal/bubble"
)

// TestFetchWant: a fetch of a folder with Want gets only the files it
// picks: the peer is asked for their chunks alone, the destination holds
// them and every folder, a file an earlier fetch staged but this one does
// not want is gone from the staging area, and the download never says it
// is complete (it must not be served as the whole root).
func TestFetchWant(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mn := cappedMesh(t, 2, 4<<20)
		hosts := mn.Hosts()
		files := map[string][]byte{
			"a.bin":     randomData(100<<10, 71),
			"sub/b.bin": randomData(50<<10, 72),
			"c/d.bin":   randomData(70<<10, 73),
		}
		var list []dirFile
		for p, d := range files {
			list = append(list, dirFile{p, d})
		}
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root := buildDir(t, blocks, "v", list)
		l := layoutOf(t, blocks, root)

		// The seeder serves the folder from a download it completed.
		seed, err := openDownload(l, filepath.Join(t.TempDir(), "seed"))
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, seed, l, files)
		if err := seed.finish(false); err != nil {
			t.Fatal(err)
		}
		defer seed.closeFiles()
		seeder := New(hosts[0], blocks, Config{Logger: quiet()})
		defer seeder.Close()
		seeder.Serve(root, seed)

		fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		defer fetcher.Close()
		dest := filepath.Join(t.TempDir(), "got")
		// An earlier fetch staged a.bin, which this one does not want.
		partial := PartialPath(dest, root)
		if err := os.MkdirAll(partial, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(partial, "a.bin"), files["a.bin"][:1000], 0o600); err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"sub/b.bin": true}
		var asked []string
		res, err := fetcher.Fetch(ctx, root, FetchOptions{
			Dest: dest, Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true,
			Want: func(f FileSpan) bool { asked = append(asked, f.Path); return want[f.Path] },
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(asked) != len(files) {
			t.Errorf("Want was asked of %v, want each of the %d files once", asked, len(files))
		}
		got := treeOf(t, dest)
		wantTree := map[string]string{"sub/": "", "sub/b.bin": string(files["sub/b.bin"]), "c/": ""}
		if len(got) != len(wantTree) {
			t.Errorf("dest holds %d entries, want %d", len(got), len(wantTree))
		}
		for p, s := range wantTree {
			if g, ok := got[p]; !ok || g != s {
				t.Errorf("dest: %q missing or wrong", p)
			}
		}
		p := res.Progress
		if p.Received != int64(len(files["sub/b.bin"])) || p.Total != p.Received || p.Of != 4 {
			t.Errorf("received %d bytes of %d (%d chunks); want the %d bytes (4 chunks) of sub/b.bin only", p.Received, p.Total, p.Of, len(files["sub/b.bin"]))
		}
		if n := seeder.Stats().ChunksServed; n != 4 {
			t.Errorf("the seeder served %d chunks, want sub/b.bin's 4", n)
		}
		if res.Source.Complete() {
			t.Error("a download of some files says it is complete")
		}
	})
}

// TestFetchWantFileRoot: Want picks the files of a folder; on a root that
// is a single file it is refused with ErrWantFile before anything is
// written (it used to drop the staging file and then fail to rename it),
// and a partial an earlier fetch staged is left as it was.
func TestFetchWantFileRoot(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		mn := cappedMesh(t, 2, 4<<20)
		hosts := mn.Hosts()
		data := randomData(300<<10, 74)
		blocks := &memBlocks{m: map[cid.Cid][]byte{}}
		root := build(t, blocks, "", data, 100<<10)
		l := layoutOf(t, blocks, root)
		seeder := New(hosts[0], blocks, Config{Logger: quiet()})
		defer seeder.Close()
		seeder.Serve(root, &memSource{l: l, data: data})

		fetcher := New(hosts[1], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet(), Seed: 1})
		defer fetcher.Close()
		dest := filepath.Join(t.TempDir(), "got")
		partial := PartialPath(dest, root)
		staged := data[:1000]
		if err := os.WriteFile(partial, staged, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, want := range []bool{false, true} {
			_, err := fetcher.Fetch(ctx, root, FetchOptions{
				Dest: dest, Hints: []peer.AddrInfo{{ID: hosts[0].ID()}}, NoConnected: true,
				Want: func(FileSpan) bool { return want },
			})
			if !errors.Is(err, ErrWantFile) {
				t.Fatalf("Fetch of a file root with a Want that says %v: %v, want ErrWantFile", want, err)
			}
			t.Logf("Want says %v: %v", want, err)
			if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("dest after the refused fetch: %v, want none", err)
			}
			if got, err := os.ReadFile(partial); err != nil || !bytes.Equal(got, staged) {
				t.Errorf("the staged partial after the refused fetch: %d bytes, %v; want it as it was", len(got), err)
			}
		}
	})
}
