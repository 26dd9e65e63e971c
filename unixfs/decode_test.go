package unixfs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	dag "github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	"github.com/peer-project/peer/integrity"
)

// TestDecodeBuilt decodes every node the builders make, of every kind, and
// checks what Decode reports against what was built.
func TestDecodeBuilt(t *testing.T) {
	bl := newBlocks()
	fb := newFileBuilder(3, bl.put)
	const leaves, chunk = 20, 10
	for i := range leaves {
		if err := fb.Add(Leaf(integrity.Chunk(bytes.Repeat([]byte{byte(i)}, chunk)), chunk)); err != nil {
			t.Fatal(err)
		}
	}
	file, err := fb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for c, data := range bl.got {
		n, err := Decode(c, data)
		if err != nil {
			t.Fatalf("Decode(%s): %v", c, err)
		}
		if n.Kind != KindFile {
			t.Errorf("%s: kind %s", c, n.Kind)
		}
		var sum uint64
		for _, l := range n.Links {
			sum += l.FileSize
		}
		if sum != n.FileSize {
			t.Errorf("%s: links hold %d bytes, node says %d", c, sum, n.FileSize)
		}
	}
	root, _ := Decode(file.CID, bl.got[file.CID])
	if root.FileSize != leaves*chunk {
		t.Errorf("root file size %d, want %d", root.FileSize, leaves*chunk)
	}
	// A sharded folder and its shards; a plain one.
	for _, last := range []int{21, 22} {
		dir, bl := kuboDir(t, 4766, 11, last)
		shards, entries := 0, 0
		for c, data := range bl.got {
			n, err := Decode(c, data)
			if err != nil {
				t.Fatalf("Decode(%s): %v", c, err)
			}
			switch n.Kind {
			case KindHAMT:
				shards++
				for _, l := range n.Links {
					if len(l.Name) > 2 {
						entries++
					}
				}
			case KindDir:
				entries += len(n.Links)
				if c != dir.CID {
					t.Errorf("a plain folder %s besides the root", c)
				}
			default:
				t.Errorf("%s: kind %s in a folder", c, n.Kind)
			}
		}
		if entries != 4766 {
			t.Errorf("folder %s: %d entries decoded, want 4766 (%d shards)", dir.CID, entries, shards)
		}
	}
}

// pbNode encodes a dag-pb node with the UnixFS data d and links.
func pbNode(t *testing.T, d *pb.Data, links ...*ipld.Link) (cid.Cid, []byte) {
	t.Helper()
	data, err := proto.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	pn := dag.NodeWithData(data)
	if err := pn.SetCidBuilder(cidBuilder); err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if err := pn.AddRawLink(l.Name, l); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := pn.EncodeProtobuf(false)
	if err != nil {
		t.Fatal(err)
	}
	return pn.Cid(), raw
}

func typ(t pb.Data_DataType) *pb.Data_DataType { return &t }

func TestDecodeHostile(t *testing.T) {
	leaf := integrity.Chunk([]byte("leaf"))
	cbor := cid.NewCidV1(cid.DagCBOR, integrity.Chunk([]byte("a manifest")).Hash()) // a DAG-CBOR block
	file := typ(pb.Data_File)
	dir := typ(pb.Data_Directory)
	hamt := typ(pb.Data_HAMTShard)
	l := func(name string, c cid.Cid, size uint64) *ipld.Link {
		return &ipld.Link{Name: name, Cid: c, Size: size}
	}
	u := proto.Uint64
	for _, tc := range []struct {
		name string
		d    *pb.Data
		ls   []*ipld.Link
		want string
	}{
		{"file size lies", &pb.Data{Type: file, Filesize: u(10), Blocksizes: []uint64{4}}, []*ipld.Link{l("", leaf, 4)}, "filesize 10"},
		{"blocksizes short", &pb.Data{Type: file, Filesize: u(4)}, []*ipld.Link{l("", leaf, 4)}, "1 links but 0 blocksizes"},
		{"blocksizes overflow", &pb.Data{Type: file, Filesize: u(0), Blocksizes: []uint64{1 << 63, 1 << 63}},
			[]*ipld.Link{l("", leaf, 4), l("", leaf, 4)}, "overflow"},
		{"named file link", &pb.Data{Type: file, Filesize: u(4), Blocksizes: []uint64{4}}, []*ipld.Link{l("x", leaf, 4)}, "named"},
		{"link to dag-cbor", &pb.Data{Type: file, Filesize: u(4), Blocksizes: []uint64{4}}, []*ipld.Link{l("", cbor, 4)}, "codec"},
		{"folder escapes", &pb.Data{Type: dir}, []*ipld.Link{l("..", leaf, 4)}, "bad entry name"},
		{"folder slash", &pb.Data{Type: dir}, []*ipld.Link{l("a/b", leaf, 4)}, "slash"},
		{"folder twice", &pb.Data{Type: dir}, []*ipld.Link{l("a", leaf, 4), l("a", leaf, 4)}, "duplicate"},
		{"folder data", &pb.Data{Type: dir, Data: []byte("x")}, nil, "folder with data"},
		{"hamt hash", &pb.Data{Type: hamt, HashType: u(0x12), Fanout: u(256), Data: []byte{1}}, []*ipld.Link{l("00a", leaf, 4)}, "hash function"},
		{"hamt fanout", &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(100)}, nil, "fanout 100"},
		{"hamt huge fanout", &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(1 << 40)}, nil, "fanout"},
		{"hamt bitfield count", &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(256), Data: []byte{3}}, []*ipld.Link{l("00a", leaf, 4)}, "2 slots set"},
		{"hamt empty slot", &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(256), Data: []byte{1}}, []*ipld.Link{l("05a", leaf, 4)}, "leaves empty"},
		{"hamt no prefix", &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(256), Data: []byte{1}}, []*ipld.Link{l("a", leaf, 4)}, "prefix"},
		{"hamt bad entry", &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(256), Data: []byte{1}}, []*ipld.Link{l("00..", leaf, 4)}, "bad entry name"},
		{"hamt long bitfield", &pb.Data{Type: hamt, HashType: u(0x22), Fanout: u(8), Data: []byte{1, 1}}, nil, "bitfield of 2 bytes"},
		{"symlink links", &pb.Data{Type: typ(pb.Data_Symlink), Data: []byte("/etc")}, []*ipld.Link{l("", leaf, 4)}, "symlink with links"},
		{"metadata", &pb.Data{Type: typ(pb.Data_Metadata)}, nil, "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, data := pbNode(t, tc.d, tc.ls...)
			_, err := Decode(c, data)
			if err == nil || !errors.Is(err, ErrBadNode) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want ErrBadNode saying %q", err, tc.want)
			}
		})
	}
	// A petabyte claimed in a few bytes decodes (a node cannot refute it
	// alone) without an allocation in proportion: the walk that reads the
	// leaves holds the fetch to what arrives.
	c, data := pbNode(t, &pb.Data{Type: file, Filesize: u(1 << 50), Blocksizes: []uint64{1 << 50}}, l("", leaf, 4))
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := Decode(c, data); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 100 {
		t.Errorf("decoding a 1 PiB claim took %.0f allocations", allocs)
	}
	// Wrong bytes, too many bytes, an unreadable CID.
	if _, err := Decode(c, append(data, 0)); !errors.Is(err, ErrMismatch) {
		t.Errorf("a block that is not its CID's: %v", err)
	}
	big := make([]byte, MaxNodeSize+1)
	bigCID, _ := cidBuilder.Sum(big)
	if _, err := Decode(bigCID, big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a block over the limit: %v", err)
	}
	blake, _ := cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.BLAKE2B_MIN + 31}.Sum(data)
	if _, err := Decode(blake, data); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a blake2b CID: %v", err)
	}
	if _, err := Decode(cbor, []byte("a manifest")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("a dag-cbor CID: %v", err)
	}
}

// FuzzDecode feeds arbitrary dag-pb blocks to Decode: it must never panic,
// and what it accepts must be consistent.
func FuzzDecode(f *testing.F) {
	bl := newBlocks()
	fb := newFileBuilder(3, bl.put)
	for i := range 10 {
		fb.Add(Leaf(integrity.Chunk([]byte{byte(i)}), 1))
	}
	fb.Finish()
	d, _ := NewDirBuilder(bl.put)
	d.Add(context.Background(), "a", Leaf(integrity.Chunk(nil), 0))
	d.Finish(context.Background())
	// UnixFS 1.5 metadata and a symlink.
	meta := WithMeta(Meta{Mode: 0o640, Mtime: time.Unix(1604320482, 54321)})
	NewFileBuilder(bl.put, meta).Finish()
	md, _ := NewDirBuilder(bl.put, meta)
	md.Finish(context.Background())
	Symlink("../target", bl.put, meta)
	for _, data := range bl.got {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := cidBuilder.Sum(data)
		if err != nil {
			t.Fatal(err)
		}
		n, err := Decode(c, data)
		if err != nil {
			return
		}
		switch n.Kind {
		case KindFile:
			sum := uint64(len(n.Data))
			for _, l := range n.Links {
				sum += l.FileSize
			}
			if sum != n.FileSize {
				t.Fatalf("file node: links and data hold %d bytes, FileSize %d", sum, n.FileSize)
			}
		case KindDir:
			for _, l := range n.Links {
				if CheckName(l.Name) != nil {
					t.Fatalf("folder entry %q accepted", l.Name)
				}
			}
		case KindSymlink:
			if CheckSymlinkTarget(string(n.Data)) != nil {
				t.Fatalf("symlink target %q accepted", n.Data)
			}
		}
		if n.MtimeNs > 999_999_999 || (!n.MtimeSet && n.MtimeNs != 0) {
			t.Fatalf("mtime %d.%09d (set %v) accepted", n.Mtime, n.MtimeNs, n.MtimeSet)
		}
		for _, l := range n.Links {
			if CheckCID(l.CID) != nil {
				t.Fatalf("link %s accepted", l.CID)
			}
		}
	})
}
