package swarm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/go-cid"
	format "github.com/ipfs/go-ipld-format"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/unixfs"
)

// symlinkDir builds a folder of one file, "f", and the given symlinks.
func symlinkDir(t *testing.T, blocks *memBlocks, links map[string]string) cid.Cid {
	t.Helper()
	ctx := context.Background()
	put := func(bl unixfs.Block) error { return blocks.PutBlock(bl.CID, bl.Data) }
	d, err := unixfs.NewDirBuilder(put)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("file contents")
	c := build(t, blocks, "f", data, 16<<10)
	if err := d.Add(ctx, "f", unixfs.Link{CID: c, Size: uint64(len(data)), FileSize: uint64(len(data))}); err != nil {
		t.Fatal(err)
	}
	for name, target := range links {
		l, err := unixfs.Symlink(target, put)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Add(ctx, name, l); err != nil {
			t.Fatal(err)
		}
	}
	l, err := d.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return l.CID
}

// TestSymlinksWritten: a folder's symlinks are written with their targets
// as stored, an absolute one and one that climbs out included, after the
// files; nothing is written where they point.
func TestSymlinksWritten(t *testing.T) {
	outside := t.TempDir()
	links := map[string]string{
		"abs":   filepath.Join(outside, "x"),
		"climb": "../../../../" + filepath.Base(outside) + "/y",
		"near":  "f",
	}
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := symlinkDir(t, blocks, links)
	l := layoutOf(t, blocks, root)
	if len(l.Symlinks) != 3 {
		t.Fatalf("layout has %d symlinks, want 3", len(l.Symlinks))
	}
	dest := filepath.Join(t.TempDir(), "tree")
	d, err := openDownload(l, dest)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, d, l, map[string][]byte{"f": []byte("file contents")})
	if err := d.finish(false); err != nil {
		t.Fatal(err)
	}
	d.closeFiles()
	for name, target := range links {
		got, err := os.Readlink(filepath.Join(dest, name))
		if err != nil || got != target {
			t.Errorf("%s -> %q (%v), want -> %q", name, got, err, target)
		}
	}
	if b, err := os.ReadFile(filepath.Join(dest, "near")); err != nil || string(b) != "file contents" {
		t.Errorf("near reads %q, %v", b, err)
	}
	if left, _ := os.ReadDir(outside); len(left) != 0 {
		t.Errorf("something was written outside: %v", left)
	}
}

// TestSymlinkNeverWrittenThrough: a folder whose symlink "a" -> OUTSIDE is
// followed by a folder "a" holding a file "b" is refused by the walk (one
// name, two entries); and a layout that holds both anyway (were the walk
// to let one through) is refused at finish, with nothing written outside
// and nothing moved into place.
func TestSymlinkNeverWrittenThrough(t *testing.T) {
	outside := t.TempDir()
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	put := func(c cid.Cid, b []byte) {
		if err := blocks.PutBlock(c, b); err != nil {
			t.Fatal(err)
		}
	}
	// The DAG, made by hand: a folder node with two links named "a".
	link, err := unixfs.Symlink(outside, func(bl unixfs.Block) error { put(bl.CID, bl.Data); return nil })
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("bytes that must not land outside")
	leaf := integrity.Chunk(data)
	put(leaf, data)
	sub := dag.NodeWithData(ft.FolderPBData())
	sub.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: 0x12})
	if err := sub.AddRawLink("b", &format.Link{Cid: leaf, Size: uint64(len(data))}); err != nil {
		t.Fatal(err)
	}
	subRaw, _ := sub.EncodeProtobuf(false)
	put(sub.Cid(), subRaw)
	top := dag.NodeWithData(ft.FolderPBData())
	top.SetCidBuilder(cid.V1Builder{Codec: cid.DagProtobuf, MhType: 0x12})
	top.AddRawLink("a", &format.Link{Cid: link.CID, Size: link.Size})
	top.AddRawLink("a", &format.Link{Cid: sub.Cid(), Size: uint64(len(subRaw)) + uint64(len(data))})
	topRaw, _ := top.EncodeProtobuf(false)
	put(top.Cid(), topRaw)
	if _, err := BuildLayout(context.Background(), blocks, top.Cid()); !errors.Is(err, ErrBadDAG) {
		t.Fatalf("BuildLayout = %v, want ErrBadDAG", err)
	}

	// The same, as a layout.
	l := &Layout{
		Root: top.Cid(), Dir: true, Size: int64(len(data)), Dirs: []string{"a"},
		Files:    []FileSpan{{Path: "a/b", CID: leaf, Size: int64(len(data)), First: 0, Count: 1}},
		Chunks:   []ChunkInfo{{CID: leaf, File: 0, Size: int32(len(data))}},
		Symlinks: []SymlinkSpan{{Path: "a", Target: outside}},
	}
	dest := filepath.Join(t.TempDir(), "tree")
	d, err := openDownload(l, dest)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, d, l, map[string][]byte{"a/b": data})
	err = d.finish(false)
	d.closeFiles()
	if !errors.Is(err, ErrBadDAG) {
		t.Fatalf("finish = %v, want ErrBadDAG", err)
	}
	if left, _ := os.ReadDir(outside); len(left) != 0 {
		t.Errorf("something was written outside: %v", left)
	}
	if _, err := os.Lstat(dest); !os.IsNotExist(err) {
		t.Errorf("%s exists after a refused finish (%v)", dest, err)
	}
}
