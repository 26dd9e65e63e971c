package carfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	car "github.com/ipld/go-car/v2"
	"github.com/ipld/go-car/v2/storage"
	_ "github.com/ipld/go-codec-dagpb" // dag-pb for go-car's own traversal
	_ "github.com/ipld/go-ipld-prime/codec/raw"
	cidlink "github.com/ipld/go-ipld-prime/linking/cid"
	selectorparse "github.com/ipld/go-ipld-prime/traversal/selector/parse"
	mh "github.com/multiformats/go-multihash"
	"github.com/multiformats/go-varint"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/unixfs"
)

// mapStore is a block store in memory: the builders' put, Export's getter
// and go-car's read storage.
type mapStore map[cid.Cid][]byte

func (m mapStore) put(b unixfs.Block) error { m[b.CID] = bytes.Clone(b.Data); return nil }

func (m mapStore) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	if d, ok := m[c]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("no block %s", c)
}

// Get and Has make mapStore a go-ipld-prime read storage (keys are binary
// CIDs).
func (m mapStore) Get(_ context.Context, k string) ([]byte, error) {
	c, err := cid.Cast([]byte(k))
	if err != nil {
		return nil, err
	}
	return m.GetBlock(context.Background(), c)
}

func (m mapStore) Has(_ context.Context, k string) (bool, error) {
	c, err := cid.Cast([]byte(k))
	_, ok := m[c]
	return ok && err == nil, nil
}

// leaf stores data as a raw leaf and returns its link.
func (m mapStore) leaf(data []byte) unixfs.Link {
	c := integrity.Chunk(data)
	m[c] = bytes.Clone(data)
	return unixfs.Leaf(c, len(data))
}

// buildTree builds, with unixfs's builders, a folder that holds a file of
// two tree levels (2100 small leaves, some repeated), the same file a
// second time, an empty file, an empty folder, a folder nested in it, and
// a HAMT-sharded folder; every block goes to m.
func buildTree(t testing.TB, m mapStore) cid.Cid {
	t.Helper()
	ctx := context.Background()
	fb := unixfs.NewFileBuilder(m.put)
	for i := range 2100 {
		if err := fb.Add(m.leaf([]byte(fmt.Sprintf("leaf %d", i%1500)))); err != nil {
			t.Fatal(err)
		}
	}
	file, err := fb.Finish()
	if err != nil {
		t.Fatal(err)
	}
	dir := func(entries map[string]unixfs.Link) unixfs.Link {
		d, err := unixfs.NewDirBuilder(m.put)
		if err != nil {
			t.Fatal(err)
		}
		for name, l := range entries {
			if err := d.Add(ctx, name, l); err != nil {
				t.Fatal(err)
			}
		}
		l, err := d.Finish(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	empty := dir(nil)
	hamtEntries := map[string]unixfs.Link{}
	for i := range 5000 {
		hamtEntries[fmt.Sprintf("entry with a long name to pass the threshold %05d", i)] = m.leaf([]byte{byte(i), byte(i >> 8)})
	}
	hamt := dir(hamtEntries)
	link, err := unixfs.Symlink("../big", m.put, unixfs.WithMeta(unixfs.Meta{Mtime: time.Unix(1700000000, 1)}))
	if err != nil {
		t.Fatal(err)
	}
	withMeta, err := unixfs.NewFileBuilder(m.put, unixfs.WithMeta(unixfs.Meta{Mode: 0o640})).Finish()
	if err != nil {
		t.Fatal(err)
	}
	return dir(map[string]unixfs.Link{
		"big":        file,
		"big again":  file,
		"empty file": m.leaf(nil),
		"empty":      empty,
		"nested":     dir(map[string]unixfs.Link{"inner": dir(map[string]unixfs.Link{"x": m.leaf([]byte("x"))})}),
		"sharded":    hamt,
		"link":       link,
		"with mode":  withMeta,
		"ünïcødé 🌍":  m.leaf([]byte("hi")),
	}).CID
}

// goCarExport is what Kubo's `ipfs dag export` runs: go-car's TraverseV1
// with the explore-all selector, each block once.
func goCarExport(t testing.TB, m mapStore, root cid.Cid) []byte {
	t.Helper()
	ls := cidlink.DefaultLinkSystem()
	ls.SetReadStorage(m)
	var buf bytes.Buffer
	if _, err := car.TraverseV1(context.Background(), &ls, root, selectorparse.CommonSelector_ExploreAllRecursively,
		&buf, car.AllowDuplicatePuts(false)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExportImport(t *testing.T) {
	ctx := context.Background()
	src := mapStore{}
	root := buildTree(t, src)
	var out bytes.Buffer
	st, err := Export(ctx, src, root, &out)
	if err != nil {
		t.Fatal(err)
	}
	// Byte for byte what go-car's traversal (Kubo's export) writes.
	if want := goCarExport(t, src, root); !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("export differs from go-car's traversal: %d bytes, go-car %d", out.Len(), len(want))
	}
	// Every block reachable is in it, once: the tree holds nothing else.
	if st.Blocks != int64(len(src)) {
		t.Errorf("exported %d blocks, the store holds %d", st.Blocks, len(src))
	}
	t.Logf("export: %d blocks, %d bytes of blocks, CAR of %d bytes", st.Blocks, st.Bytes, out.Len())

	dst := mapStore{}
	res, err := Import(ctx, bytes.NewReader(out.Bytes()), dst.put)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Roots) != 1 || res.Roots[0] != root {
		t.Errorf("roots %v, want [%s]", res.Roots, root)
	}
	if res.Stats != st || len(dst) != len(src) {
		t.Errorf("imported %+v (%d blocks), exported %+v (%d)", res.Stats, len(dst), st, len(src))
	}
	for c, d := range src {
		if !bytes.Equal(dst[c], d) {
			t.Fatalf("block %s differs after the round trip", c)
		}
	}
}

// TestImportCARv2 reads a CARv2 that go-car wrote (with an index after
// the payload).
func TestImportCARv2(t *testing.T) {
	src := mapStore{}
	root := buildTree(t, src)
	f, err := os.Create(filepath.Join(t.TempDir(), "v2.car"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := storage.NewWritable(f, []cid.Cid{root})
	if err != nil {
		t.Fatal(err)
	}
	for c, d := range src {
		if err := w.Put(context.Background(), c.KeyString(), d); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finalize(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	dst := mapStore{}
	if _, err := Import(context.Background(), f, dst.put); err != nil {
		t.Fatal(err)
	}
	if len(dst) != len(src) {
		t.Errorf("imported %d blocks of %d", len(dst), len(src))
	}
}

// section is one block of a hand-made CAR.
type section struct {
	c    cid.Cid
	data []byte
}

// makeCAR writes a CARv1 with go-car's header and the sections as given.
func makeCAR(t testing.TB, roots []cid.Cid, secs ...section) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := storage.NewWritable(&buf, roots, car.WriteAsCarV1(true)); err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if err := writeSection(&buf, s.c, s.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// smallDAG is a folder of two files, with its blocks in export order.
func smallDAG(t testing.TB) (cid.Cid, []section) {
	t.Helper()
	m := mapStore{}
	d, err := unixfs.NewDirBuilder(m.put)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if err := d.Add(ctx, name, m.leaf([]byte("content of "+name))); err != nil {
			t.Fatal(err)
		}
	}
	root, err := d.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := Export(ctx, m, root.CID, &out); err != nil {
		t.Fatal(err)
	}
	br, err := car.NewBlockReader(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var secs []section
	for {
		b, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		secs = append(secs, section{b.Cid(), b.RawData()})
	}
	if len(secs) != 3 {
		t.Fatalf("%d blocks in the small DAG", len(secs))
	}
	return root.CID, secs
}

func TestImportHostile(t *testing.T) {
	root, secs := smallDAG(t)
	good := makeCAR(t, []cid.Cid{root}, secs...)
	wrong := slices.Clone(secs)
	wrong[1] = section{secs[1].c, []byte("content of c")}
	cbor, _ := cid.V1Builder{Codec: cid.DagCBOR, MhType: mh.SHA2_256}.Sum([]byte{0xa0})
	big := bytes.Repeat([]byte{7}, unixfs.MaxNodeSize+1)
	// A section whose length claims 4 EiB, followed by a real CID.
	hugeLen := append(makeCAR(t, []cid.Cid{root}), varint.ToUvarint(1<<62)...)
	hugeLen = append(hugeLen, secs[0].c.Bytes()...)
	for _, tc := range []struct {
		name string
		car  []byte
		want error
		put  int // blocks handed to put before the error
	}{
		{"empty", nil, ErrHeader, 0},
		{"not a CAR", []byte("hello, this is not a CAR file at all"), ErrHeader, 0},
		{"header cut", good[:10], ErrTruncated, 0},
		{"version 3", bytes.Replace(good, []byte("gversion\x01"), []byte("gversion\x03"), 1), ErrHeader, 0},
		{"no roots", makeCAR(t, nil, secs...), ErrHeader, 0},
		{"dag-cbor root", makeCAR(t, []cid.Cid{cbor}, secs...), unixfs.ErrUnsupported, 0},
		{"wrong CID", makeCAR(t, []cid.Cid{root}, wrong...), unixfs.ErrMismatch, 1},
		{"dag-cbor block", makeCAR(t, []cid.Cid{root}, append(slices.Clone(secs), section{cbor, []byte{0xa0}})...), unixfs.ErrUnsupported, 3},
		{"block over the limit", makeCAR(t, []cid.Cid{root}, append(slices.Clone(secs), section{integrity.Chunk(big), big})...), unixfs.ErrTooLarge, 3},
		{"huge varint length", hugeLen, unixfs.ErrTooLarge, 0},
		{"cut in a block", good[:len(good)-3], ErrTruncated, 2},
		{"duplicate block", makeCAR(t, []cid.Cid{root}, secs[0], secs[1], secs[1], secs[2]), ErrDuplicate, 2},
		{"missing block", makeCAR(t, []cid.Cid{root}, secs[0], secs[2]), ErrIncomplete, 2},
		{"missing root", makeCAR(t, []cid.Cid{root}, secs[1], secs[2]), ErrIncomplete, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			put := mapStore{}
			_, err := Import(context.Background(), bytes.NewReader(tc.car), put.put)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Logf("%v", err)
			if len(put) != tc.put {
				t.Errorf("%d blocks put, want %d", len(put), tc.put)
			}
			for c, d := range put {
				if s, err := c.Prefix().Sum(d); err != nil || s != c {
					t.Errorf("put a block that does not match its CID %s", c)
				}
			}
		})
	}
	// The incomplete CAR names its root and the block it lacks.
	_, err := Import(context.Background(), bytes.NewReader(makeCAR(t, []cid.Cid{root}, secs[0], secs[2])), mapStore{}.put)
	var inc *IncompleteError
	if !errors.As(err, &inc) || len(inc.Missing) != 1 || inc.Missing[0] != (Missing{Root: root, Block: secs[1].c}) {
		t.Errorf("incomplete CAR: %v, want root %s missing %s", err, root, secs[1].c)
	}
}

// TestImportEveryCut imports every prefix of a CAR: each is refused with
// a clear error (a cut between sections leaves a DAG incomplete), and
// only the whole CAR is accepted.
func TestImportEveryCut(t *testing.T) {
	root, secs := smallDAG(t)
	good := makeCAR(t, []cid.Cid{root}, secs...)
	for n := range len(good) + 1 {
		_, err := Import(context.Background(), bytes.NewReader(good[:n]), mapStore{}.put)
		switch {
		case n == len(good):
			if err != nil {
				t.Errorf("the whole CAR: %v", err)
			}
		case err == nil:
			t.Errorf("a CAR cut at %d of %d bytes was accepted", n, len(good))
		case !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrIncomplete) && !errors.Is(err, ErrHeader):
			t.Errorf("cut at %d: %v", n, err)
		}
	}
}

func TestImportLimits(t *testing.T) {
	root, secs := smallDAG(t)
	_, err := ImportLimits(context.Background(), bytes.NewReader(makeCAR(t, []cid.Cid{root}, secs...)), mapStore{}.put, Limits{CIDs: 2})
	if !errors.Is(err, ErrLimit) {
		t.Errorf("err = %v, want ErrLimit", err)
	}
}

func TestExportErrors(t *testing.T) {
	ctx := context.Background()
	m := mapStore{}
	root := buildTree(t, m)
	// A corrupt block in the store is not exported.
	for c, d := range m {
		if c.Prefix().Codec == cid.Raw && len(d) > 0 {
			m[c] = append(bytes.Clone(d), '!')
			break
		}
	}
	if _, err := Export(ctx, m, root, io.Discard); !errors.Is(err, unixfs.ErrMismatch) {
		t.Errorf("corrupt store: %v, want ErrMismatch", err)
	}
	// A missing block fails the export.
	if _, err := Export(ctx, mapStore{}, root, io.Discard); err == nil {
		t.Errorf("export from an empty store succeeded")
	}
}

// FuzzImport feeds Import arbitrary bytes: it never panics, never hands
// put a block that does not match its CID, and accepts only what it can
// account for.
func FuzzImport(f *testing.F) {
	root, secs := smallDAG(f)
	f.Add(makeCAR(f, []cid.Cid{root}, secs...))
	f.Add(makeCAR(f, []cid.Cid{root}, secs[0], secs[2]))
	f.Add(makeCAR(f, []cid.Cid{root}, secs[0], secs[1], secs[1], secs[2]))
	f.Add(makeCAR(f, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		put := mapStore{}
		res, err := ImportLimits(context.Background(), bytes.NewReader(data), func(b unixfs.Block) error {
			if s, err := b.CID.Prefix().Sum(b.Data); err != nil || s != b.CID {
				t.Fatalf("put %s with bytes that do not match", b.CID)
			}
			if len(b.Data) > unixfs.MaxNodeSize {
				t.Fatalf("put a block of %d bytes", len(b.Data))
			}
			return put.put(b)
		}, Limits{CIDs: 1 << 12})
		if int(res.Blocks) != len(put) {
			t.Fatalf("result says %d blocks, put saw %d", res.Blocks, len(put))
		}
		if err == nil && len(res.Roots) == 0 {
			t.Fatalf("a CAR without roots was accepted")
		}
	})
}
