package unixfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	bchunker "github.com/ipfs/boxo/chunker"
	dag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	"github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/peer-project/peer/integrity"
)

// Kubo's test/sharness/t0047-add-mode-mtime.sh: `ipfs add` with
// --preserve-mode, --preserve-mtime, --mode, --mtime and --mtime-nsecs of
// an empty file, a symlink to "nothing" and an empty folder, with CIDv0
// (Import.CidVersion 0), so the builders are asked for CIDv0 nodes here.
var (
	t0047PreserveMtime = time.Unix(1604320482, 0)
	t0047CustomMtime   = time.Unix(1603539720, 0)
	t0047CustomNsecs   = time.Unix(1603539720, 54321)
	t0047DirMtime      = time.Unix(1655158632+90, 0) // DIR_TIME+90, dir1's
)

func TestKuboMetaVectors(t *testing.T) {
	v0 := withPrefix(cid.V0Builder{})
	for _, tc := range []struct {
		name, want string
		meta       Meta
	}{
		{"HASH_PRESERVE_MODE", "QmQLgxypSNGNFTuUPGCecq6dDEjb6hNB5xSyVmP3cEuNtq", Meta{Mode: 0o640}},
		{"HASH_PRESERVE_MTIME", "QmQ6kErEW8kztQFV8vbwNU8E4dmtGsYpRiboiLxUEwibvj", Meta{Mtime: t0047PreserveMtime}},
		{"HASH_PRESERVE_MODE_AND_MTIME", "QmYkvboLsvLFcSYmqVJRxvBdYRQLroLv9kELf3LRiCqBri", Meta{Mode: 0o640, Mtime: t0047PreserveMtime}},
		{"HASH_CUSTOM_MODE", "QmchD3BN8TQ3RW6jPLxSaNkqvfuj7syKhzTRmL4EpyY1Nz", Meta{Mode: 0o764}},
		{"HASH_CUSTOM_MTIME", "QmT3aY4avDcYXCWpU8CJzqUkW7YEuEsx36S8cTNoLcuK1B", Meta{Mtime: t0047CustomMtime}},
		{"HASH_CUSTOM_MTIME_NSECS", "QmaKH8H5rXBUBCX4vdxi7ktGQEL7wejV7L9rX2qpZjwncz", Meta{Mtime: t0047CustomNsecs}},
		{"HASH_CUSTOM_MODE_AND_MTIME", "QmUkxrtBA8tPjwCYz1HrsoRfDz6NgKut3asVeHVQNH4C8L", Meta{Mode: 0o764, Mtime: t0047CustomNsecs}},
	} {
		t.Run("file/"+tc.name, func(t *testing.T) {
			bl := newBlocks()
			root, err := NewFileBuilder(bl.put, WithMeta(tc.meta), v0).Finish()
			if err != nil {
				t.Fatal(err)
			}
			if root.CID.String() != tc.want {
				t.Errorf("empty file with %+v: %s, Kubo %s", tc.meta, root.CID, tc.want)
			}
			checkMeta(t, root.CID, bl.got[root.CID], KindFile, tc.meta)
		})
	}
	for _, tc := range []struct {
		name, want string
		mtime      time.Time
	}{
		{"HASH_PRESERVE_LINK_MTIME", "QmbJwotgtr84JxcnjpwJ86uZiyMoxbZuNH4YrdJMypkYaB", t0047PreserveMtime},
		{"HASH_CUSTOM_LINK_MTIME", "QmV1Uot2gy4bhY9yvYiZxhhchhyYC6MKKoGV1XtWNmpCLe", t0047CustomMtime},
		{"HASH_CUSTOM_LINK_MTIME_NSECS", "QmPHYCxYvvHj6VxiPNJ3kXxcPsnJLDYUJqsDJWjvytmrmY", t0047CustomNsecs},
	} {
		t.Run("symlink/"+tc.name, func(t *testing.T) {
			bl := newBlocks()
			// A mode is not stored on a symlink, as by Kubo ("cannot set
			// mode on symbolic link").
			l, err := Symlink("nothing", bl.put, WithMeta(Meta{Mode: 0o764, Mtime: tc.mtime}), v0)
			if err != nil {
				t.Fatal(err)
			}
			if l.CID.String() != tc.want {
				t.Errorf("symlink with mtime %v: %s, Kubo %s", tc.mtime, l.CID, tc.want)
			}
			n := checkMeta(t, l.CID, bl.got[l.CID], KindSymlink, Meta{Mtime: tc.mtime})
			if string(n.Data) != "nothing" {
				t.Errorf("target %q", n.Data)
			}
		})
	}
	for _, tc := range []struct {
		name, want string
		meta       Meta
	}{
		{"HASH_DIR1_NO_PRESERVE", "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn", Meta{}},
		{"HASH_DIR1_PRESERVE_MODE", "QmRviohgafvCsbkiTgfQFipbuXJ6k1YtoiaQW4quttJPKu", Meta{Mode: 0o755}},
		{"HASH_DIR1_PRESERVE_MTIME", "QmYMy7CZGb498QFSQBF5ZFwv1FYbrAtYZMe4VxhDXxAcvf", Meta{Mtime: t0047DirMtime}},
		{"HASH_DIR1_CUSTOM_MODE", "QmQ1ABnw2iip7sj23EzzBZ9T77KyyfESP6SUboiXPyzNQe", Meta{Mode: 0o713}},
		{"HASH_DIR1_CUSTOM_MTIME", "QmfWitW6F13WHFXLbJzXRYmwrS1p4gaAJAfucUSMytRPn3", Meta{Mtime: t0047CustomMtime}},
		{"HASH_DIR1_CUSTOM_MTIME_NSECS", "QmZFdCLJay31hT3Tx1LygJ7XfiLEs3qLCXtbeBfhf38aZg", Meta{Mtime: t0047CustomNsecs}},
	} {
		t.Run("folder/"+tc.name, func(t *testing.T) {
			bl := newBlocks()
			d, err := NewDirBuilder(bl.put, WithMeta(tc.meta), v0)
			if err != nil {
				t.Fatal(err)
			}
			root, err := d.Finish(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if root.CID.String() != tc.want {
				t.Errorf("empty folder with %+v: %s, Kubo %s", tc.meta, root.CID, tc.want)
			}
			checkMeta(t, root.CID, bl.got[root.CID], KindDir, tc.meta)
		})
	}
}

// checkMeta decodes the block c and checks its kind and metadata.
func checkMeta(t *testing.T, c cid.Cid, data []byte, kind Kind, want Meta) *Node {
	t.Helper()
	n, err := Decode(c, data)
	if err != nil {
		t.Fatalf("Decode(%s): %v", c, err)
	}
	if n.Kind != kind {
		t.Errorf("%s: kind %s, want %s", c, n.Kind, kind)
	}
	if got := n.Meta(); got.Mode != want.Mode || !got.Mtime.Equal(want.Mtime) {
		t.Errorf("%s: meta %+v, want %+v", c, got, want)
	}
	return n
}

// TestFileMetaLikeBoxo checks files with metadata against boxo's balanced
// importer given FileMode and FileModTime, with raw leaves: the same
// roots for every file of two leaves or more (narrow nodes and tiny
// chunks reach every shape, a full tree of each depth included). A file
// of one leaf or none differs on purpose: boxo leaves the raw block as
// the root and drops the metadata, which a dag-pb root keeps here.
func TestFileMetaLikeBoxo(t *testing.T) {
	const chunk = 16
	meta := Meta{Mode: 0o4755, Mtime: time.Unix(1700000000, 123456789)}
	for _, maxLinks := range []int{2, 3, 1024} {
		for _, leaves := range []int{0, 1, 2, 3, 4, 8, 9, 10, 27, 28, 1024, 1025} {
			for _, tail := range []int{0, 1} {
				size := leaves*chunk + tail
				if leaves == 0 && tail > 0 {
					continue
				}
				t.Run(fmt.Sprintf("links=%d/size=%d", maxLinks, size), func(t *testing.T) {
					data := make([]byte, size)
					for i := range data {
						data[i] = byte(i*7 + i>>8)
					}
					bl := newBlocks()
					fb := newFileBuilder(maxLinks, bl.put, WithMeta(meta))
					for off := 0; off < size; off += chunk {
						c := data[off:min(off+chunk, size)]
						if err := fb.Add(Leaf(integrity.Chunk(c), len(c))); err != nil {
							t.Fatal(err)
						}
					}
					got, err := fb.Finish()
					if err != nil {
						t.Fatal(err)
					}
					if got.FileSize != uint64(size) {
						t.Errorf("file size %d, want %d", got.FileSize, size)
					}
					n := checkMeta(t, got.CID, bl.got[got.CID], KindFile, Meta{Mode: meta.Mode & os.ModePerm, Mtime: meta.Mtime})
					if n.FileSize != uint64(size) {
						t.Errorf("root says %d bytes, want %d", n.FileSize, size)
					}
					if size <= chunk {
						return // one leaf or none: boxo drops the metadata
					}
					want := boxoMetaRoot(t, data, chunk, maxLinks, meta)
					if got.CID != want.Cid() {
						t.Fatalf("root %s, boxo %s", got.CID, want.Cid())
					}
					if wantSize, _ := want.Size(); got.Size != wantSize {
						t.Errorf("Tsize %d, boxo %d", got.Size, wantSize)
					}
				})
			}
		}
	}
}

func boxoMetaRoot(t *testing.T, data []byte, chunk, maxLinks int, m Meta) interface {
	Cid() cid.Cid
	Size() (uint64, error)
} {
	t.Helper()
	params := helpers.DagBuilderParams{
		Maxlinks:    maxLinks,
		RawLeaves:   true,
		CidBuilder:  cidBuilder,
		Dagserv:     discardDAG{},
		FileMode:    m.Mode,
		FileModTime: m.Mtime,
	}
	db, err := params.New(bchunker.NewSizeSplitter(bytes.NewReader(data), int64(chunk)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := balanced.Layout(db)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDirMeta checks a folder's metadata on a plain folder and on the root
// shard of a sharded one, and that Stat reports the entries' kinds,
// metadata and a symlink's target.
func TestDirMeta(t *testing.T) {
	ctx := context.Background()
	meta := Meta{Mode: 0o750, Mtime: time.Unix(1700000000, 5)}
	for _, entries := range []int{3, 6000} {
		bl := newBlocks()
		d, err := NewDirBuilder(bl.put, WithMeta(meta))
		if err != nil {
			t.Fatal(err)
		}
		fileMeta := Meta{Mode: 0o600, Mtime: time.Unix(1600000000, 0)}
		fb := NewFileBuilder(bl.put, WithMeta(fileMeta))
		if err := fb.Add(Leaf(integrity.Chunk([]byte("x")), 1)); err != nil {
			t.Fatal(err)
		}
		file, err := fb.Finish()
		if err != nil {
			t.Fatal(err)
		}
		link, err := Symlink("../somewhere/else", bl.put, WithMeta(Meta{Mtime: time.Unix(1500000000, 0)}))
		if err != nil {
			t.Fatal(err)
		}
		for i := range entries - 2 {
			if err := d.Add(ctx, fmt.Sprintf("a rather long entry name number %05d", i), Leaf(integrity.Chunk(nil), 0)); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.Add(ctx, "file", file); err != nil {
			t.Fatal(err)
		}
		if err := d.Add(ctx, "link", link); err != nil {
			t.Fatal(err)
		}
		root, err := d.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kind := KindDir
		if entries > 10 {
			kind = KindHAMT
		}
		checkMeta(t, root.CID, bl.got[root.CID], kind, meta)

		w := NewWalker(GetterFunc(func(_ context.Context, c cid.Cid) ([]byte, error) {
			if d, ok := bl.got[c]; ok {
				return d, nil
			}
			return nil, errors.New("no such block")
		}), DefaultLimits())
		got := map[string]Entry{}
		if err := w.List(ctx, root.CID, func(name string, l Link) error {
			if name != "file" && name != "link" && !strings.HasPrefix(name, "a rather long entry name number 0000") {
				return nil
			}
			e, err := w.Stat(ctx, name, l)
			got[name] = e
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if e := got["file"]; e.Kind != KindFile || e.Meta.Mode != fileMeta.Mode || !e.Meta.Mtime.Equal(fileMeta.Mtime) {
			t.Errorf("%d entries: file: %+v", entries, e)
		}
		if e := got["link"]; e.Kind != KindSymlink || string(e.Target) != "../somewhere/else" || e.Meta.Mode != 0 || e.Meta.Mtime.Unix() != 1500000000 {
			t.Errorf("%d entries: link: %+v", entries, e)
		}
		if e := got["a rather long entry name number 00000"]; e.Kind != KindRaw || !e.Meta.IsZero() {
			t.Errorf("%d entries: raw entry: %+v", entries, e)
		}
	}
}

func TestSymlinkTargets(t *testing.T) {
	for _, target := range []string{"", strings.Repeat("a", MaxSymlinkTarget+1), "a\x00b"} {
		if _, err := Symlink(target, newBlocks().put); !errors.Is(err, ErrSymlink) {
			t.Errorf("Symlink(%.20q...) = %v, want ErrSymlink", target, err)
		}
	}
	// A target is bytes: an absolute path, "..", any byte but NUL.
	for _, target := range []string{"/etc/passwd", "../../..", "\xff\xfe", strings.Repeat("a", MaxSymlinkTarget)} {
		bl := newBlocks()
		l, err := Symlink(target, bl.put)
		if err != nil {
			t.Errorf("Symlink(%.20q): %v", target, err)
			continue
		}
		if n := checkMeta(t, l.CID, bl.got[l.CID], KindSymlink, Meta{}); string(n.Data) != target {
			t.Errorf("target %.20q came back as %.20q", target, n.Data)
		}
	}
}

// encodeNode makes a dag-pb node (CIDv1) of the UnixFS data d.
func encodeNode(t *testing.T, d *pb.Data) (cid.Cid, []byte) {
	t.Helper()
	raw, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	pn := dag.NodeWithData(raw)
	if err := pn.SetCidBuilder(cidBuilder); err != nil {
		t.Fatal(err)
	}
	data, err := pn.EncodeProtobuf(false)
	if err != nil {
		t.Fatal(err)
	}
	return pn.Cid(), data
}

// TestDecodeMetaHostile: a symlink whose target no file system can hold,
// and an mtime whose nanoseconds are out of range, are refused.
func TestDecodeMetaHostile(t *testing.T) {
	symlink, file := pb.Data_Symlink, pb.Data_File
	for _, tc := range []struct {
		name string
		d    *pb.Data
	}{
		{"long target", &pb.Data{Type: &symlink, Data: bytes.Repeat([]byte("a"), MaxSymlinkTarget+1)}},
		{"huge target", &pb.Data{Type: &symlink, Data: bytes.Repeat([]byte("a"), 1<<20)}},
		{"empty target", &pb.Data{Type: &symlink}},
		{"NUL in target", &pb.Data{Type: &symlink, Data: []byte("a\x00b")}},
		{"nanoseconds of a second or more", &pb.Data{Type: &file, Filesize: proto.Uint64(0),
			Mtime: &pb.IPFSTimestamp{Seconds: proto.Int64(1), Nanos: proto.Uint32(1_000_000_000)}}},
		{"zero nanoseconds stored", &pb.Data{Type: &file, Filesize: proto.Uint64(0),
			Mtime: &pb.IPFSTimestamp{Seconds: proto.Int64(1), Nanos: proto.Uint32(0)}}},
	} {
		c, data := encodeNode(t, tc.d)
		if n, err := Decode(c, data); err == nil {
			t.Errorf("%s: Decode accepted it (a %s, %d bytes of data), want ErrBadNode", tc.name, n.Kind, len(n.Data))
		} else if !errors.Is(err, ErrBadNode) {
			t.Errorf("%s: %v, want ErrBadNode", tc.name, err)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
	// What boxo writes is read back whole: every mode bit it keeps, an
	// mtime before 1970.
	fsn := ft.NewFSNode(ft.TFile)
	fsn.SetMode(0o777)
	fsn.SetModTime(time.Unix(-1000, 999_999_999))
	raw, err := fsn.GetBytes()
	if err != nil {
		t.Fatal(err)
	}
	var d pb.Data
	if err := proto.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	c, data := encodeNode(t, &d)
	checkMeta(t, c, data, KindFile, Meta{Mode: 0o777, Mtime: time.Unix(-1000, 999_999_999)})
}

// TestFileMetaLeaves walks the files whose root exists only to hold
// metadata: the empty one (no leaf) and one of a single leaf.
func TestFileMetaLeaves(t *testing.T) {
	ctx := context.Background()
	for _, content := range []string{"", "one leaf"} {
		bl := newBlocks()
		fb := NewFileBuilder(bl.put, WithMeta(Meta{Mode: 0o600}))
		if content != "" {
			if err := fb.Add(Leaf(integrity.Chunk([]byte(content)), len(content))); err != nil {
				t.Fatal(err)
			}
		}
		root, err := fb.Finish()
		if err != nil {
			t.Fatal(err)
		}
		w := NewWalker(GetterFunc(func(_ context.Context, c cid.Cid) ([]byte, error) {
			if d, ok := bl.got[c]; ok {
				return d, nil
			}
			return nil, errors.New("no such block")
		}), DefaultLimits())
		var got []Link
		size, err := w.Leaves(ctx, root.CID, func(off uint64, l Link) error {
			got = append(got, l)
			return nil
		})
		if err != nil {
			t.Fatalf("%q: %v", content, err)
		}
		if size != uint64(len(content)) || root.FileSize != size {
			t.Errorf("%q: size %d, root says %d", content, size, root.FileSize)
		}
		if content == "" && len(got) != 0 || content != "" && (len(got) != 1 || got[0].CID != integrity.Chunk([]byte(content))) {
			t.Errorf("%q: leaves %v", content, got)
		}
	}
}
