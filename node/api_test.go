package node

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
)

// TestNodeErrors: what the node's methods return matches the node's own
// sentinels with errors.Is, and still the lower package's, with the
// message unchanged.
func TestNodeErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.NoDHT = true
	cfg.FindTimeout = time.Second
	n := startNode(t, cfg)
	path, _ := randomFile(t, t.TempDir(), "f.bin", 1000, 1)
	h, err := Hash(ctx, path, HashOptions{Chunking: cfg.Chunking})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what        string
		err         error
		kind, below error
	}{
		{"unshare of a root not shared", n.Unshare(h.Root), ErrNotFound, store.ErrNotFound},
		{"fetch of a root nobody has", fetchErr(ctx, n, Target{Root: h.Root}, filepath.Join(t.TempDir(), "x")), ErrNoProviders, swarm.ErrNoProviders},
		{"fetch over an existing file", fetchErr(ctx, n, Target{Root: h.Root}, path), ErrExists, swarm.ErrExists},
	} {
		if !errors.Is(tc.err, tc.kind) || !errors.Is(tc.err, tc.below) || !strings.Contains(tc.err.Error(), tc.below.Error()) {
			t.Errorf("%s: %v; want %v, wrapping %v", tc.what, tc.err, tc.kind, tc.below)
		}
	}
	n.Close()
	if _, err := n.Share(ctx, path, ShareOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("share on a closed node: %v, want ErrClosed", err)
	}
}

func fetchErr(ctx context.Context, n *Node, t Target, dest string) error {
	_, err := n.Fetch(ctx, t, dest, FetchOptions{})
	return err
}

// TestHash: Hash gives the root Share announces for the same bytes and
// chunking, and every chunk's CID, offset and file, without a node.
func TestHash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.NoDHT = true
	n := startNode(t, cfg)
	dir := filepath.Join(t.TempDir(), "album")
	files := map[string][]byte{}
	for i, name := range []string{"a.bin", "sub/b.bin"} {
		p, data := randomFile(t, dir, name, 600<<10+i, uint64(i))
		files[p] = data
	}
	h, err := Hash(ctx, dir, HashOptions{Chunking: cfg.Chunking})
	if err != nil {
		t.Fatal(err)
	}
	sh, err := n.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h.Root != sh.Root || !h.Dir || h.Files != 2 || h.Size != sh.Size || int64(len(h.Chunks)) != sh.Chunks || h.Chunking != sh.Chunking {
		t.Fatalf("hash %+v; share %+v", h, sh)
	}
	next := map[string]int64{}
	for _, c := range h.Chunks {
		data, ok := files[c.Path]
		if !ok || c.Offset != next[c.Path] || c.Offset+int64(c.Size) > int64(len(data)) {
			t.Fatalf("chunk %+v: not the next chunk of a hashed file", c)
		}
		if want := integrity.Chunk(data[c.Offset : c.Offset+int64(c.Size)]); c.CID != want {
			t.Fatalf("chunk %+v: CID %s, want %s", c, c.CID, want)
		}
		next[c.Path] += int64(c.Size)
	}
	for p, data := range files {
		if next[p] != int64(len(data)) {
			t.Errorf("%s: chunks cover %d of %d bytes", p, next[p], len(data))
		}
	}
	// A single file: its chunks name no path.
	one := filepath.Join(dir, "a.bin")
	h, err = Hash(ctx, one, HashOptions{Chunking: cfg.Chunking})
	if err != nil || h.Dir || len(h.Chunks) != 3 || h.Chunks[0].Path != "" {
		t.Fatalf("a file: %+v, %v", h, err)
	}
	if _, err := Hash(ctx, one, HashOptions{Chunking: Chunking{Algorithm: ChunkerFixed, Size: 1}}); err == nil {
		t.Error("Hash took 1-byte chunks")
	}
}

// TestNodeConfig: a node reports the configuration it runs with, defaults
// filled in, as a copy.
func TestNodeConfig(t *testing.T) {
	cfg := testConfig(t)
	cfg.NoDHT = true
	cfg.UploadSlots, cfg.FindTimeout, cfg.StallTimeout, cfg.DHTMode = 0, 0, 0, DHTAuto
	n := startNode(t, cfg)
	got := n.Config()
	if got.UploadSlots != DefaultUploadSlots || got.FindTimeout != DefaultFindTimeout || got.StallTimeout != DefaultStallTimeout ||
		got.Home != cfg.Home || got.Seed == 0 || got.Logger == nil || got.Now == nil {
		t.Fatalf("n.Config() = %+v", got)
	}
	got.Listen[0] = "changed"
	if n.Config().Listen[0] == "changed" {
		t.Error("n.Config() shares its Listen with the node")
	}
	// WithDefaults checks what it fills: a negative is an error.
	if _, err := (Config{Home: t.TempDir(), UploadSlots: -1}).WithDefaults(); err == nil || !strings.Contains(err.Error(), "upload slots -1") {
		t.Errorf("negative upload slots: %v", err)
	}
}
