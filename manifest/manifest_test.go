package manifest

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// canonicalLess is DAG-CBOR's key order: shorter first, then bytewise.
func canonicalLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

func TestKeyTablesCanonical(t *testing.T) {
	tables := map[string][]string{
		"file": fileKeys, "page": pageKeys, "dir": dirKeys, "dirEntry": dirEntryKeys,
		"fixed": fixedKeys, "cdc": cdcKeys, "common": commonKeys,
	}
	for name, keys := range tables {
		for i := 1; i < len(keys); i++ {
			if !canonicalLess(keys[i-1], keys[i]) {
				t.Errorf("%s keys: %q before %q is not DAG-CBOR order", name, keys[i-1], keys[i])
			}
		}
	}
	for name, keys := range tables {
		if name != "common" && name != "dirEntry" && name != "fixed" && name != "cdc" && !reflect.DeepEqual(keys[:2], commonKeys) {
			t.Errorf("%s keys do not start with %q", name, commonKeys)
		}
	}
}

// sampleNodes returns valid nodes of every kind and shape.
func sampleNodes() map[string]Node {
	c := func(i uint64) cid.Cid { return fakeRef(i, 1).CID }
	page := func(i uint64) cid.Cid { return integrity.Block([]byte{byte(i)}) }
	return map[string]Node{
		"empty file": &File{Name: "empty", Chunking: chunker.DefaultParams()},
		"one chunk": &File{Name: "a.txt", Size: 5, Chunking: chunker.DefaultParams(), Count: 1,
			Entries: []Entry{{CID: c(0), Size: 5, Count: 1}}},
		"fixed three chunks": &File{Name: "b", Size: 2<<20 + 7, Chunking: chunker.DefaultParams(), Count: 3,
			Entries: []Entry{{c(0), 1 << 20, 1}, {c(1), 1 << 20, 1}, {c(2), 7, 1}}},
		"cdc": &File{Name: "ünïcode name.tar", Size: 200000 + 70000 + 3, Chunking: chunker.CDCParams(64 << 10), Count: 3,
			Entries: []Entry{{c(0), 200000, 1}, {c(1), 70000, 1}, {c(2), 3, 1}}},
		"depth 1 file": &File{Name: "big", Size: 3<<20 + 1, Chunking: chunker.DefaultParams(), Count: 4, Depth: 1,
			Entries: []Entry{{page(0), 2 << 20, 2}, {page(1), 1<<20 + 1, 2}}},
		"page 0":    &Page{Depth: 0, Entries: []Entry{{c(0), 1 << 20, 1}, {c(1), 1, 1}}},
		"page 2":    &Page{Depth: 2, Entries: []Entry{{page(0), 1 << 40, 1 << 20}}},
		"empty dir": &Dir{Name: "nothing"},
		"dir": &Dir{Name: "photos", Size: 12, Entries: []DirEntry{
			{Name: "2024", CID: page(1), Size: 10, Dir: true},
			{Name: "a.jpg", CID: page(2), Size: 2},
			{Name: "b.jpg", CID: page(3), Size: 0},
		}},
	}
}

func TestRoundTrip(t *testing.T) {
	for name, n := range sampleNodes() {
		t.Run(name, func(t *testing.T) {
			blk, err := Encode(n)
			if err != nil {
				t.Fatal(err)
			}
			if !blk.CID.Equals(integrity.Block(blk.Data)) {
				t.Fatalf("CID %s is not the block's", blk.CID)
			}
			got, err := Decode(blk.CID, blk.Data)
			if err != nil {
				t.Fatal(err)
			}
			if d, ok := n.(*Dir); ok && d.Entries == nil {
				d.Entries = []DirEntry{} // decoding gives an empty list
			}
			if f, ok := n.(*File); ok && f.Entries == nil {
				f.Entries = []Entry{}
			}
			if !reflect.DeepEqual(got, n) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, n)
			}
			again, err := Encode(got)
			if err != nil || !bytes.Equal(again.Data, blk.Data) {
				t.Fatalf("re-encoding differs (%v)", err)
			}
			ipldRoundTrip(t, blk.Data)
		})
	}
}

func TestEncodeDirSortsAndRefuses(t *testing.T) {
	c := integrity.Block([]byte("x"))
	d := Dir{Name: "d", Size: 3, Entries: []DirEntry{
		{Name: "b", CID: c, Size: 1}, {Name: "B", CID: c, Size: 1}, {Name: "a", CID: c, Size: 1},
	}}
	blk, err := EncodeDir(d)
	if err != nil {
		t.Fatal(err)
	}
	if d.Entries[0].Name != "b" {
		t.Fatal("EncodeDir sorted the caller's slice")
	}
	n, _ := Decode(blk.CID, blk.Data)
	var names []string
	for _, e := range n.(*Dir).Entries {
		names = append(names, e.Name)
	}
	if strings.Join(names, ",") != "B,a,b" {
		t.Fatalf("order %v, want bytewise B,a,b", names)
	}

	tests := []struct {
		name string
		d    Dir
		want []error
		msg  string
	}{
		{"duplicate", Dir{Name: "d", Size: 2, Entries: []DirEntry{{Name: "a", CID: c, Size: 1}, {Name: "a", CID: c, Size: 1}}},
			[]error{ErrInvalid}, `duplicate name "a"`},
		{"bad name", Dir{Name: "d", Entries: []DirEntry{{Name: "..", CID: c}}}, []error{ErrInvalid, ErrName}, `".."`},
		{"bad dir name", Dir{Name: "a/b"}, []error{ErrInvalid, ErrName}, `"a/b"`},
		{"raw link", Dir{Name: "d", Entries: []DirEntry{{Name: "a", CID: integrity.Chunk(nil)}}}, []error{ErrInvalid}, "codec"},
		{"sizes", Dir{Name: "d", Size: 5, Entries: []DirEntry{{Name: "a", CID: c, Size: 1}}}, []error{ErrInvalid}, "claims 5"},
		{"too many", Dir{Name: "d", Entries: manyEntries(FanOut+1, 4, c)}, []error{ErrInvalid, ErrTooLarge}, "sharding"},
		{"too big", Dir{Name: "d", Entries: manyEntries(FanOut, 200, c)}, []error{ErrInvalid, ErrTooLarge}, "block of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := EncodeDir(tc.d)
			checkErr(t, err, tc.want, tc.msg)
		})
	}
}

func manyEntries(n, nameLen int, c cid.Cid) []DirEntry {
	es := make([]DirEntry, n)
	for i := range es {
		name := []byte(strings.Repeat("_", nameLen))
		for j, k := len(name)-1, i; j >= 0 && k > 0; j, k = j-1, k/26 {
			name[j] = byte('a' + k%26)
		}
		es[i] = DirEntry{Name: string(name), CID: c}
	}
	return es
}

func checkErr(t *testing.T, err error, want []error, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", msg)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Errorf("error %q does not wrap %v", err, w)
		}
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not say %q", err, msg)
	}
}

// goldenTree builds a small deterministic share: a directory "golden" with
// an empty file, a 40000-byte file cut in 16 KiB chunks, and a directory
// "sub" holding the same content cut by FastCDC bounds (fake chunks).
func goldenTree(t *testing.T, s *memStore) (file, dir Block) {
	t.Helper()
	data := make([]byte, 40000)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	p := chunker.FixedParams(16 << 10)
	var refs []ChunkRef
	for off := 0; off < len(data); off += p.Size {
		chunk := data[off:min(off+p.Size, len(data))]
		refs = append(refs, ChunkRef{CID: integrity.Chunk(chunk), Size: uint32(len(chunk))})
	}
	file, _ = buildFile(t, s, "small.bin", p, refs, FanOut)
	empty, _ := buildFile(t, s, "empty", chunker.DefaultParams(), nil, FanOut)
	cdcRefs := []ChunkRef{fakeRef(0, 20000), fakeRef(1, 16384), fakeRef(2, 3616)}
	cdc, _ := buildFile(t, s, "small.bin", chunker.CDCParams(16<<10), cdcRefs, FanOut)
	sub, err := EncodeDir(Dir{Name: "sub", Size: 40000, Entries: []DirEntry{{Name: "small.bin", CID: cdc.CID, Size: 40000}}})
	if err != nil {
		t.Fatal(err)
	}
	s.put(sub)
	dir, err = EncodeDir(Dir{Name: "golden", Size: 80000, Entries: []DirEntry{
		{Name: "sub", CID: sub.CID, Size: 40000, Dir: true},
		{Name: "small.bin", CID: file.CID, Size: 40000},
		{Name: "empty", CID: empty.CID},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s.put(dir)
	return file, dir
}

// The root CIDs of the golden tree, computed once and pinned: if they
// change, the format changed, and every CID users hold breaks.
const (
	goldenFileCID = "bafyreibyyzc3uq5sngby7asajkxhrmvolhsczhkoqz26a7vyhuzlds7ukm"
	goldenDirCID  = "bafyreidkmsbf4jww62dg4j3yuq52gyftol2tkdtwnqsa7ycysflvc73qma"
)

func TestGolden(t *testing.T) {
	for range 2 { // and the same again
		file, dir := goldenTree(t, newMemStore())
		if got := file.CID.String(); got != goldenFileCID {
			t.Errorf("file root %s, pinned %s", got, goldenFileCID)
		}
		if got := dir.CID.String(); got != goldenDirCID {
			t.Errorf("dir root %s, pinned %s", got, goldenDirCID)
		}
		ipldRoundTrip(t, file.Data)
		ipldRoundTrip(t, dir.Data)
	}
}
