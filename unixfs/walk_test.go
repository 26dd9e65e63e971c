package unixfs

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/ipfs/boxo/ipld/unixfs/pb"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/spaolacci/murmur3"
	"google.golang.org/protobuf/proto"

	"github.com/peer-project/peer/integrity"
)

// getter serves the blocks collected by a builder, counting the reads.
func (b *blocks) getter() Getter {
	return GetterFunc(func(_ context.Context, c cid.Cid) ([]byte, error) {
		if d, ok := b.got[c]; ok {
			return d, nil
		}
		return nil, fmt.Errorf("no block %s", c)
	})
}

func TestWalkLeaves(t *testing.T) {
	bl := newBlocks()
	fb := newFileBuilder(3, bl.put)
	var want []Link
	for i := range 20 {
		data := make([]byte, 10+i)
		data[0] = byte(i)
		l := Leaf(integrity.Chunk(data), len(data))
		want = append(want, l)
		if err := fb.Add(l); err != nil {
			t.Fatal(err)
		}
	}
	root, err := fb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	w := NewWalker(bl.getter(), DefaultLimits())
	var got []Link
	var wantOff uint64
	size, err := w.Leaves(context.Background(), root.CID, func(off uint64, l Link) error {
		if off != wantOff {
			return fmt.Errorf("leaf %d at offset %d, want %d", len(got), off, wantOff)
		}
		wantOff += l.FileSize
		got = append(got, l)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if size != root.FileSize || len(got) != len(want) {
		t.Fatalf("size %d with %d leaves, want %d with %d", size, len(got), root.FileSize, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("leaf %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if w.Visits() != int64(len(bl.got)) {
		t.Errorf("%d visits for %d nodes", w.Visits(), len(bl.got))
	}
}

func TestWalkFolder(t *testing.T) {
	dir, bl := kuboDir(t, 4766, 11, 22) // sharded
	ctx := context.Background()
	w := NewWalker(bl.getter(), DefaultLimits())
	entries := map[string]Link{}
	var order []string
	if err := w.List(ctx, dir.CID, func(name string, l Link) error {
		if _, dup := entries[name]; dup {
			return fmt.Errorf("%q listed twice", name)
		}
		entries[name] = l
		order = append(order, name)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4766 {
		t.Fatalf("listed %d entries, want 4766", len(entries))
	}
	x := integrity.Chunk([]byte("x"))
	for _, name := range []string{order[0], order[len(order)/2], order[len(order)-1]} {
		w := NewWalker(bl.getter(), DefaultLimits())
		l, err := w.Resolve(ctx, dir.CID, []string{name})
		if err != nil {
			t.Fatalf("Resolve(%q): %v", name, err)
		}
		if l.CID != x {
			t.Errorf("Resolve(%q) = %s, want %s", name, l.CID, x)
		}
		if w.Visits() > 3 {
			t.Errorf("Resolve(%q) read %d shards: it should follow the hash, not list", name, w.Visits())
		}
	}
	if _, err := NewWalker(bl.getter(), DefaultLimits()).Resolve(ctx, dir.CID, []string{"not-there"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve of a missing name: %v", err)
	}
	if _, err := NewWalker(bl.getter(), DefaultLimits()).Resolve(ctx, dir.CID, []string{".."}); !errors.Is(err, ErrName) {
		t.Errorf("Resolve of ..: %v", err)
	}
	// A plain folder, and a path through it into a file.
	bl2 := newBlocks()
	d, _ := NewDirBuilder(bl2.put)
	d.Add(ctx, "sub", dir)
	top, err := d.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for c, data := range bl.got {
		bl2.got[c] = data
	}
	l, err := NewWalker(bl2.getter(), DefaultLimits()).Resolve(ctx, top.CID, []string{"sub", order[7]})
	if err != nil || l.CID != x {
		t.Errorf("Resolve(sub/%s) = %v, %v", order[7], l.CID, err)
	}
	if _, err := NewWalker(bl2.getter(), DefaultLimits()).Resolve(ctx, top.CID, []string{"sub", order[7], "deeper"}); err == nil {
		t.Errorf("a path through a file resolved")
	}
}

// bomb builds a file that claims levels^width × 1 MiB: each level's node
// links width times to the one below, so the DAG is a few small blocks.
func bomb(t *testing.T, bl *blocks, width, levels int) cid.Cid {
	leaf := integrity.Chunk(make([]byte, 1<<20))
	cur, size, tsize := leaf, uint64(1<<20), uint64(1<<20)
	for range levels {
		links := make([]*ipld.Link, width)
		sizes := make([]uint64, width)
		for i := range links {
			links[i] = &ipld.Link{Cid: cur, Size: tsize}
			sizes[i] = size
		}
		c, data := pbNode(t, &pb.Data{Type: typ(pb.Data_File), Filesize: proto.Uint64(size * uint64(width)), Blocksizes: sizes}, links...)
		bl.got[c] = data
		cur, size, tsize = c, size*uint64(width), tsize*uint64(width)+uint64(len(data))
	}
	return cur
}

func TestWalkBomb(t *testing.T) {
	bl := newBlocks()
	root := bomb(t, bl, 1024, 3) // 1 Gi leaves, 1 PiB claimed, 3 blocks
	lim := Limits{Visits: 2000, Bytes: 1 << 30, Depth: 64}
	w := NewWalker(bl.getter(), lim)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	leaves := 0
	_, err := w.Leaves(context.Background(), root, func(uint64, Link) error { leaves++; return nil })
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrLimit) {
		t.Fatalf("walk of a 1 PiB bomb: %v after %d leaves", err, leaves)
	}
	if w.Visits() != lim.Visits+1 {
		t.Errorf("%d visits, limit %d", w.Visits(), lim.Visits)
	}
	// Each visit decodes one node of 1024 links (about 46 KB); what the
	// walk allocated is bounded by the visits, not by the claim.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(lim.Visits)*512<<10 {
		t.Errorf("the walk allocated %d MiB for %d visits", alloc>>20, lim.Visits)
	}
	t.Logf("stopped after %d visits, %d leaves named, %d MiB allocated", w.Visits(), leaves, (after.TotalAlloc-before.TotalAlloc)>>20)

	// A chain deeper than the limit.
	bl2 := newBlocks()
	deep := bomb(t, bl2, 1, 80)
	if _, err := NewWalker(bl2.getter(), DefaultLimits()).Leaves(context.Background(), deep, func(uint64, Link) error { return nil }); !errors.Is(err, ErrLimit) {
		t.Errorf("a chain of 80 nodes: %v", err)
	}
}

func TestWalkLies(t *testing.T) {
	bl := newBlocks()
	leaf := integrity.Chunk([]byte("0123456789"))
	child, childData := pbNode(t, &pb.Data{Type: typ(pb.Data_File), Filesize: proto.Uint64(10), Blocksizes: []uint64{10}},
		&ipld.Link{Cid: leaf, Size: 10})
	bl.got[child] = childData
	// The parent says its child holds 5 bytes; the child says 10.
	root, rootData := pbNode(t, &pb.Data{Type: typ(pb.Data_File), Filesize: proto.Uint64(5), Blocksizes: []uint64{5}},
		&ipld.Link{Cid: child, Size: uint64(len(childData)) + 10})
	bl.got[root] = rootData
	_, err := NewWalker(bl.getter(), DefaultLimits()).Leaves(context.Background(), root, func(uint64, Link) error { return nil })
	if !errors.Is(err, ErrBadNode) {
		t.Errorf("a parent that lies about its child's size: %v", err)
	}
	// A file that links to a folder.
	d, _ := NewDirBuilder(bl.put)
	empty, _ := d.Finish(context.Background())
	f, fData := pbNode(t, &pb.Data{Type: typ(pb.Data_File), Filesize: proto.Uint64(0), Blocksizes: []uint64{0}},
		&ipld.Link{Cid: empty.CID, Size: empty.Size})
	bl.got[f] = fData
	_, err = NewWalker(bl.getter(), DefaultLimits()).Leaves(context.Background(), f, func(uint64, Link) error { return nil })
	if !errors.Is(err, ErrBadNode) {
		t.Errorf("a file that links to a folder: %v", err)
	}
	// A block served for the wrong CID.
	bad := GetterFunc(func(_ context.Context, c cid.Cid) ([]byte, error) { return childData, nil })
	if _, err := NewWalker(bad, DefaultLimits()).Node(context.Background(), root); !errors.Is(err, ErrMismatch) {
		t.Errorf("a block that is not its CID's: %v", err)
	}
}

// TestWalkVisitor walks Kubo's HAMT folder: every entry once, in name
// order, each a file of one raw leaf whose size its link gives; and a
// parent that lies about a leaf's size is refused before the leaf is named.
func TestWalkVisitor(t *testing.T) {
	dir, bl := kuboDir(t, 4766, 11, 22)
	ctx := context.Background()
	var files []string
	leaves := 0
	err := NewWalker(bl.getter(), DefaultLimits()).Walk(ctx, dir.CID, Visitor{
		Dir: func(p string, _ Link) error {
			if p != "" {
				return fmt.Errorf("a folder %q below the root", p)
			}
			return nil
		},
		File: func(p string, f Link) error {
			if f.FileSize != 1 || f.CID.Prefix().Codec != cid.Raw {
				return fmt.Errorf("%s: %+v", p, f)
			}
			files = append(files, p)
			return nil
		},
		Leaf: func(off uint64, l Link) error { leaves++; return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4766 || leaves != 4766 {
		t.Fatalf("%d files, %d leaves; want 4766 of each", len(files), leaves)
	}
	for i := 1; i < len(files); i++ {
		if files[i-1] >= files[i] {
			t.Fatalf("%q before %q", files[i-1], files[i])
		}
	}

	leaf := integrity.Chunk([]byte("0123456789"))
	u := proto.Uint64
	for _, tc := range []struct {
		name string
		d    *pb.Data
		size uint64
		want string
	}{
		{"Tsize and blocksize differ", &pb.Data{Type: pb.Data_File.Enum(), Filesize: u(4 << 20), Blocksizes: []uint64{4 << 20}}, 10, "in a block of 10 bytes"},
		{"a petabyte leaf", &pb.Data{Type: pb.Data_File.Enum(), Filesize: u(1 << 50), Blocksizes: []uint64{1 << 50}}, 1 << 50, "more than the"},
	} {
		c, data := pbNode(t, tc.d, &ipld.Link{Cid: leaf, Size: tc.size})
		g := GetterFunc(func(context.Context, cid.Cid) ([]byte, error) { return data, nil })
		named := 0
		err := NewWalker(g, DefaultLimits()).Walk(ctx, c, Visitor{Leaf: func(uint64, Link) error { named++; return nil }})
		if !errors.Is(err, ErrBadNode) || !strings.Contains(err.Error(), tc.want) || named != 0 {
			t.Errorf("%s: %v after %d leaves, want ErrBadNode saying %q before any", tc.name, err, named, tc.want)
		}
	}
}

// TestWalkMisfiledHAMTEntry: an entry must sit in the slots its name's hash
// gives, at every level; one filed elsewhere would be listed by a walk but
// never found by a lookup, so the walk refuses the folder.
func TestWalkMisfiledHAMTEntry(t *testing.T) {
	const name = "misfiled.txt"
	h := murmur3.Sum64([]byte(name))
	slot0, slot1 := h>>56, h>>48&0xff
	leaf := integrity.Chunk([]byte("hello"))
	// shard encodes a fanout-256 shard whose one link sits in slot.
	shard := func(bl *blocks, slot uint64, entry string, to cid.Cid, size uint64) cid.Cid {
		bf := make([]byte, 32)
		bf[31-slot/8] = 1 << (slot % 8)
		c, data := pbNode(t, &pb.Data{Type: typ(pb.Data_HAMTShard), HashType: proto.Uint64(0x22), Fanout: proto.Uint64(256), Data: bf},
			&ipld.Link{Name: fmt.Sprintf("%02X", slot) + entry, Cid: to, Size: size})
		bl.got[c] = data
		return c
	}
	walk := func(bl *blocks, root cid.Cid) error {
		var names []string
		err := NewWalker(bl.getter(), DefaultLimits()).Walk(context.Background(), root, Visitor{
			File: func(p string, _ Link) error { names = append(names, p); return nil },
		})
		if err == nil && (len(names) != 1 || names[0] != name) {
			return fmt.Errorf("walked %q, want [%q]", names, name)
		}
		return err
	}
	for _, tc := range []struct {
		what   string
		build  func(bl *blocks) cid.Cid
		refuse bool
	}{
		{"in its slot", func(bl *blocks) cid.Cid { return shard(bl, slot0, name, leaf, 5) }, false},
		{"in another slot", func(bl *blocks) cid.Cid { return shard(bl, (slot0+1)%256, name, leaf, 5) }, true},
		{"two levels, both right", func(bl *blocks) cid.Cid {
			return shard(bl, slot0, "", shard(bl, slot1, name, leaf, 5), 0)
		}, false},
		{"two levels, child under the wrong slot", func(bl *blocks) cid.Cid {
			return shard(bl, (slot0+7)%256, "", shard(bl, slot1, name, leaf, 5), 0)
		}, true},
		{"two levels, wrong slot in the child", func(bl *blocks) cid.Cid {
			return shard(bl, slot0, "", shard(bl, (slot1+1)%256, name, leaf, 5), 0)
		}, true},
	} {
		bl := newBlocks()
		err := walk(bl, tc.build(bl))
		switch {
		case tc.refuse && !errors.Is(err, ErrBadNode):
			t.Errorf("%s: %v, want ErrBadNode", tc.what, err)
		case tc.refuse && !strings.Contains(err.Error(), "hash puts it"):
			t.Errorf("%s: %v does not say where the hash puts the entry", tc.what, err)
		case !tc.refuse && err != nil:
			t.Errorf("%s: %v", tc.what, err)
		}
	}
}
