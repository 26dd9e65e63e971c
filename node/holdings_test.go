package node

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
)

// TestPartialShareForgetsUnshared: a share of folder two that indexes z
// only holds x as well while folder one (x) is shared, and w never. Once
// one is unshared, the partial share holds z alone: it announces and
// claims no chunk of x. x's own root, served on its own from inside one
// while one was shared, is then served no more: two holds nothing of it.
func TestPartialShareForgetsUnshared(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t)
	cfg.NoDHT = true
	n := startNode(t, cfg)
	_, x := randomFile(t, t.TempDir(), "x", 600<<10, 11) // 3 chunks
	_, z := randomFile(t, t.TempDir(), "z", 300<<10, 12) // 2 chunks
	_, w := randomFile(t, t.TempDir(), "w", 300<<10, 13) // 2 chunks
	one, two := filepath.Join(t.TempDir(), "one"), filepath.Join(t.TempDir(), "two")
	writeTree(t, one, map[string]string{"x": string(x)})
	writeTree(t, two, map[string]string{"x": string(x), "z": string(z), "w": string(w)})
	sh1, err := n.Share(ctx, one, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sh2, err := n.Share(ctx, two, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := n.swarm.Registered(sh2.Root).Layout()
	file := func(name string) swarm.FileSpan {
		i := slices.IndexFunc(l.Files, func(f swarm.FileSpan) bool { return f.Path == name })
		if i < 0 {
			t.Fatalf("no %s in two", name)
		}
		return l.Files[i]
	}
	fx, fz := file("x"), file("z")
	bits := func(files ...swarm.FileSpan) []byte {
		b := bitfield.New(l.NumChunks())
		for _, f := range files {
			for i := f.First; i < f.First+f.Count; i++ {
				b.Set(i)
			}
		}
		return b.Bytes()
	}

	// Two again, indexing z only (as a follow indexes the files it
	// placed): its blocks stay in the store after the unshare.
	if err := n.Unshare(sh2.Root); err != nil {
		t.Fatal(err)
	}
	tx, err := n.store.BeginShare(two)
	if err != nil {
		t.Fatal(err)
	}
	zPath := filepath.Join(two, "z")
	fi, err := os.Stat(zPath)
	if err != nil {
		t.Fatal(err)
	}
	var locs []store.ChunkLoc
	for i := fz.First; i < fz.First+fz.Count; i++ {
		c := l.Chunks[i]
		locs = append(locs, store.ChunkLoc{CID: c.CID, Offset: c.Offset, Size: uint32(c.Size)})
	}
	if err := tx.AddFile(zPath, fi.Size(), fi.ModTime(), fz.CID, locs); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(sh2.Root, store.ShareInfo{Name: "two", Size: fz.Size, Files: 1, Dir: true, Chunking: chunkingOf(l, n.cfg.Chunking)}); err != nil {
		t.Fatal(err)
	}
	if err := n.serve(ctx, sh2.Root); err != nil {
		t.Fatal(err)
	}
	src := n.swarm.Registered(sh2.Root)
	if src == nil || src.Complete() || !bytes.Equal(src.Bits(), bits(fx, fz)) {
		t.Fatalf("the partial share of two, while one is shared: %T, complete %v; want x's and z's chunks", src, src != nil && src.Complete())
	}
	// x's root, found inside one (whole), served on its own.
	if xs := n.swarm.Source(fx.CID); xs == nil || !xs.Complete() {
		t.Fatalf("x's root inside one: %T; want it served whole", xs)
	}

	if err := n.Unshare(sh1.Root); err != nil {
		t.Fatal(err)
	}
	src = n.swarm.Registered(sh2.Root)
	if src == nil || src.Complete() || !bytes.Equal(src.Bits(), bits(fz)) {
		t.Errorf("the partial share of two, once one is unshared: %T, complete %v; want z's chunks only", src, src != nil && src.Complete())
	}
	if src != nil {
		for i := fx.First; i < fx.First+fx.Count; i++ {
			if src.Has(i) {
				t.Errorf("the partial share of two claims chunk %d of x, which no share indexes now", i)
			}
		}
	}
	if xs := n.swarm.Registered(fx.CID); xs != nil {
		t.Errorf("x's root is still served (%T, complete %v) once one is unshared; two holds none of it", xs, xs.Complete())
	}
}
