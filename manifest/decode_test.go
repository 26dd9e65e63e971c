package manifest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

func TestDecodeRejects(t *testing.T) {
	chunk := fakeRef(0, 1).CID
	page := integrity.Block([]byte("page"))
	valid := fileMap(chunk)
	dirOf := func(entries ...any) []kv {
		return []kv{{"t", "dir"}, {"v", 1}, {"name", "d"}, {"size", 0}, {"entries", entries}}
	}
	dent := func(name string) []kv {
		return []kv{{"dir", false}, {"link", page}, {"name", name}, {"size", 0}}
	}
	pageOf := func(depth int, entries ...any) []kv {
		return []kv{{"t", "page"}, {"v", 1}, {"depth", depth}, {"entries", entries}}
	}

	tests := []struct {
		name string
		data []byte
		want []error
		msg  string
	}{
		{"unsorted keys", cborOf([]kv{valid[0], valid[1], valid[3], valid[2], valid[4], valid[5], valid[6], valid[7]}),
			nil, `key "size" where "name" belongs (out of canonical order`},
		{"long-form int", cborOf(set(valid, "depth", rawCBOR{0x18, 0x00})), nil, "not its shortest form"},
		{"long-form int 2", cborOf(set(valid, "v", rawCBOR{0x19, 0x00, 0x01})), nil, "not its shortest form"},
		{"long-form length", append([]byte{0xb8, 0x08}, cborOf(valid)[1:]...), nil, "not its shortest form"},
		{"indefinite map", append(append([]byte{0xbf}, cborOf(valid)[1:]...), 0xff), nil, "indefinite-length"},
		{"float", cborOf(set(valid, "size", rawCBOR{0xf9, 0x3c, 0x00})), nil, "float"},
		{"negative int", cborOf(set(valid, "size", rawCBOR{0x20})), nil, "a negative integer where an unsigned integer belongs"},
		{"unknown key", cborOf(append(append([]kv(nil), valid...), kv{"zzzzzzzz", 1})), nil, `unknown key "zzzzzzzz"`},
		{"missing key", cborOf(valid[:7]), nil, `missing key "entries"`},
		{"missing key inside", cborOf(append(append([]kv(nil), valid[:2]...), valid[3:]...)), nil, `or "name" missing`},
		{"duplicate key", cborOf([]kv{valid[0], valid[1], valid[2], valid[2], valid[3], valid[4], valid[5], valid[6], valid[7]}),
			nil, `key "name" repeated`},
		{"version 2", cborOf(set(valid, "v", 2)), nil, "format version 2"},
		{"unknown type", cborOf(set(valid, "t", "blob")), nil, `unknown block type "blob"`},
		{"trailing bytes", append(cborOf(valid), 0), nil, "1 bytes after the end"},
		{"truncated", cborOf(valid)[:50], nil, "end of input"},
		{"not a map", cborOf([]any{1}), nil, "an array where a map belongs"},
		{"huge array", cborOf(set(valid, "entries", rawCBOR{0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
			[]error{ErrTooLarge}, "limit 8192"},
		{"array past end", cborOf(set(valid, "entries", rawCBOR{0x99, 0x10, 0x00})), nil, "runs past the end"},
		{"huge text", cborOf(set(valid, "name", rawCBOR{0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})), nil, "limit"},
		{"bad utf-8", cborOf(set(valid, "name", rawCBOR{0x62, 0xff, 0xfe})), nil, "not valid UTF-8"},
		{"wrong tag", cborOf(set(valid, "entries", []any{[]any{rawCBOR{0xd8, 0x2b, 0x41, 0x00}, 1000}})), nil, "tag 43"},
		{"link without prefix", cborOf(set(valid, "entries", []any{[]any{rawCBOR(append([]byte{0xd8, 0x2a, 0x58, 0x24}, chunk.Bytes()...)), 1000}})),
			nil, "0x00 multibase prefix"},
		{"dag-cbor chunk", cborOf(set(valid, "entries", []any{[]any{page, 1000}})), nil, "codec 0x71, want 0x55"},
		{"raw page", cborOf(set(set(valid, "depth", 1), "entries", []any{[]any{chunk, 1000, 1}})), nil, "codec 0x55, want 0x71"},
		{"CIDv0 link", cborOf(set(valid, "entries", []any{[]any{rawCBOR(append([]byte{0xd8, 0x2a, 0x58, 0x23, 0x00}, chunk.Hash()...)), 1000}})),
			[]error{integrity.ErrUnsupported}, "CIDv0"},
		{"entry shape", cborOf(set(valid, "entries", []any{[]any{chunk, 1000, 1}})), nil, "entry of 3 items, want 2"},
		{"petabyte claim", cborOf(set(set(valid, "size", uint64(1)<<51), "count", 1<<31)), []error{ErrTooLarge}, "exceeds the limit"},
		{"petabyte file of one chunk", cborOf(set(valid, "size", uint64(1)<<49)), nil, "1 chunks of at most 1048576 bytes cannot hold"},
		{"count too small", cborOf(set(set(valid, "size", 3<<20), "count", 2)), nil, "2 chunks of at most 1048576 bytes cannot hold"},
		{"sizes don't add up", cborOf(set(valid, "size", 999)), nil, "entries cover 1000 bytes in 1 chunks, the file claims 999"},
		{"count beyond depth", cborOf(set(set(valid, "size", 8193<<20), "count", 8193)), nil, "count 8193 exceeds what depth 0 holds"},
		{"depth > MaxDepth", cborOf(set(valid, "depth", 5)), []error{ErrTooLarge}, "depth 5 exceeds the limit of 4"},
		{"empty file with entries", cborOf(set(set(valid, "size", 0), "count", 0)), nil, "empty file with count 0, depth 0, 1 entries"},
		{"empty chunk", cborOf(set(valid, "entries", []any{[]any{chunk, 0}})), nil, "1 chunks cannot hold 0 bytes"},
		{"fixed short middle chunk", cborOf(set(set(set(valid, "size", 1<<20+500), "count", 2),
			"entries", []any{[]any{chunk, 500}, []any{chunk, 1 << 20}})), nil, "entries[0]: chunk: 500 bytes are too few for 1 chunks of at least 1048576 bytes"},
		{"bad chunker", cborOf(set(valid, "chunker", []kv{{"alg", "fixed"}, {"size", 100}})), []error{chunker.ErrParams}, "fixed chunk size 100"},
		{"chunker unknown alg", cborOf(set(valid, "chunker", []kv{{"alg", "rabin"}, {"size", 1 << 20}})), nil, `unknown algorithm "rabin"`},
		{"chunker mixed keys", cborOf(set(valid, "chunker", []kv{{"alg", "fixed"}, {"avg", 1 << 20}})), nil, `unknown key "avg"`},
		{"name ..", cborOf(set(valid, "name", "..")), []error{ErrName}, `name "..": a relative path element`},
		{"name /", cborOf(set(valid, "name", "a/b")), []error{ErrName}, `name "a/b": contains the path separator '/'`},
		{"name NUL", cborOf(set(valid, "name", "a\x00b")), []error{ErrName}, `contains NUL`},
		{"name empty", cborOf(set(valid, "name", "")), []error{ErrName}, `name "": empty`},
		{"name too long", cborOf(set(valid, "name", string(bytes.Repeat([]byte("n"), 256)))), []error{ErrName}, "256 bytes long"},
		{"page depth 4", cborOf(pageOf(4, []any{page, 1, 1})), []error{ErrTooLarge}, "page depth 4, limit 3"},
		{"empty page", cborOf(pageOf(0)), nil, "page has no entries"},
		{"page huge claim", cborOf(pageOf(2, []any{page, uint64(1) << 51, 1 << 20})), []error{ErrTooLarge}, "limit"},
		{"page count beyond capacity", cborOf(pageOf(1, []any{page, 8193 << 20, 8193})), nil, "page of depth 0 cannot hold 8193 chunks"},
		{"dir unsorted", cborOf(dirOf(dent("b"), dent("a"))), nil, `entries[1]: name "a" sorts before "b"`},
		{"dir duplicate", cborOf(dirOf(dent("a"), dent("a"))), nil, `entries[1]: duplicate name "a"`},
		{"dir entry name ..", cborOf(dirOf(dent(".."))), []error{ErrName}, `name ".."`},
		{"dir entry name /", cborOf(dirOf(dent("x/y"))), []error{ErrName}, `name "x/y"`},
		{"dir entry name NUL", cborOf(dirOf(dent("\x00"))), []error{ErrName}, `contains NUL`},
		{"dir entry name empty", cborOf(dirOf(dent(""))), []error{ErrName}, `empty`},
		{"dir sizes", cborOf(set(dirOf(dent("a")), "size", 7)), nil, "entries hold 0 bytes, the directory claims 7"},
		{"dir entry unknown key", cborOf(dirOf(append(dent("a"), kv{"mode", 0644}))), nil, `unknown key "mode"`},
		{"dir entry not bool", cborOf(dirOf(set(dent("a"), "dir", 1))), nil, "an unsigned integer where a boolean belongs"},
		{"dir entry null", cborOf(dirOf(set(dent("a"), "dir", rawCBOR{0xf6}))), nil, "a simple value or float where a boolean belongs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(integrity.Block(tc.data), tc.data)
			checkErr(t, err, append([]error{ErrInvalid}, tc.want...), tc.msg)
		})
	}
}

func TestDecodeRejectsBlock(t *testing.T) {
	blk, err := Encode(sampleNodes()["one chunk"])
	if err != nil {
		t.Fatal(err)
	}
	// Wrong codec: the raw CID of the same bytes.
	_, err = Decode(integrity.Chunk(blk.Data), blk.Data)
	checkErr(t, err, []error{ErrInvalid, integrity.ErrUnsupported}, "codec 0x55")
	// Not a CID at all.
	_, err = Decode(cid.Undef, blk.Data)
	checkErr(t, err, []error{ErrInvalid, integrity.ErrUnsupported}, "undefined")
	// Hash mismatch: names what the bytes hash to.
	other := integrity.Block([]byte("other"))
	_, err = Decode(other, blk.Data)
	checkErr(t, err, []error{ErrInvalid}, "hash to")
	var mm *integrity.MismatchError
	if !errors.As(err, &mm) || !mm.Got.Equals(blk.CID) || !mm.CID.Equals(other) {
		t.Errorf("error %v is not a MismatchError naming both CIDs", err)
	}
	// A 2 MiB block is refused before it is hashed or parsed.
	big := make([]byte, 2<<20)
	_, err = Decode(integrity.Block(big), big)
	checkErr(t, err, []error{ErrInvalid, ErrTooLarge}, "2097152 bytes, limit 1048576")
}
