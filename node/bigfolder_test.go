package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/peer-project/peer/unixfs"
)

// TestFolderOf10001Entries shares a folder of 10,001 files (one folder,
// past the HAMT threshold, and past the 8192 entries the manifests of
// before refused) and fetches it over loopback from a ticket: every file
// arrives whole, named as shared, and ROOT/path finds one file of it
// through the shards.
func TestFolderOf10001Entries(t *testing.T) {
	if testing.Short() {
		t.Skip("10,001 files")
	}
	const n = 10001
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	src := filepath.Join(t.TempDir(), "many")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	content := func(i int) []byte { return fmt.Appendf(nil, "file %d\n", i) }
	for i := range n {
		if err := os.WriteFile(filepath.Join(src, fmt.Sprintf("f%05d.txt", i)), content(i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := startNode(t, testConfig(t))
	start := time.Now()
	sh, err := a.Share(ctx, src, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shared := time.Since(start)
	// The root is a HAMT shard: the folder is past the threshold.
	data, err := a.store.GetBlock(ctx, sh.Root)
	if err != nil {
		t.Fatal(err)
	}
	if nd, err := unixfs.Decode(sh.Root, data); err != nil || nd.Kind != unixfs.KindHAMT {
		t.Fatalf("the root of %d entries is %v (%v), want a HAMT shard", n, nd.Kind, err)
	}
	b := startNode(t, testConfig(t))
	tk, err := ParseTarget(sh.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "got")
	start = time.Now()
	res, err := b.Fetch(ctx, tk, dest, FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fetched := time.Since(start)
	t.Logf("%d files: shared in %v, fetched in %v (%d chunks)", n, shared.Round(time.Millisecond), fetched.Round(time.Millisecond), res.Chunks)
	if res.Files != n || !res.Dir {
		t.Fatalf("fetched %d files (folder %v), want %d", res.Files, res.Dir, n)
	}
	es, err := os.ReadDir(dest)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != n {
		t.Fatalf("%s holds %d entries, want %d", dest, len(es), n)
	}
	for i := range n {
		sameFile(t, filepath.Join(dest, fmt.Sprintf("f%05d.txt", i)), content(i))
	}
	// One file by its path below the root: looked up in the shards.
	one := tk
	one.Path = "f07777.txt"
	p := filepath.Join(t.TempDir(), "one.txt")
	if _, err := b.Fetch(ctx, one, p, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, p, content(7777))
}
