package store

import (
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

func TestRecordRoundTrip(t *testing.T) {
	root := integrity.Block([]byte("root"))
	shares := []shareRecord{
		{state: statePending, path: "/data", created: -5},
		{state: stateCommitted, dir: true, stale: true, root: root, path: "/data/ü", name: "ü",
			size: math.MaxInt64, files: 3, created: 1e18, chunking: chunker.CDCParams(1 << 20)},
	}
	for _, r := range shares {
		got, err := decodeShare(encodeShare(r))
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Errorf("share %+v decoded as %+v, %v", r, got, err)
		}
	}
	f := fileRecord{path: "a/b", size: 1 << 40, mtime: -1, root: root}
	if got, err := decodeFile(encodeFile(f)); err != nil || got != f {
		t.Errorf("file %+v decoded as %+v, %v", f, got, err)
	}
	if got, err := decodeLoc(encodeLoc(chunker.MaxSize)); err != nil || got != chunker.MaxSize {
		t.Errorf("location decoded as %d, %v", got, err)
	}
	if v, err := decodeSchema(encodeSchema(SchemaVersion)); err != nil || v != SchemaVersion {
		t.Errorf("schema decoded as %d, %v", v, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	root := integrity.Block([]byte("root"))
	good := encodeShare(shareRecord{state: stateCommitted, root: root, path: "/p", name: "n",
		chunking: chunker.DefaultParams()})
	rawRoot := encodeShare(shareRecord{state: statePending, root: cid.NewCidV0(integrity.Chunk(nil).Hash())})
	tests := []struct {
		name   string
		decode func([]byte) error
		data   []byte
	}{
		{"empty share", shareErr, nil},
		{"share of another version", shareErr, append([]byte{2}, good[1:]...)},
		{"truncated share", shareErr, good[:len(good)-1]},
		{"share with trailing bytes", shareErr, append(good, 0)},
		{"share in an unknown state", shareErr, append([]byte{1, 9}, good[2:]...)},
		{"share with unknown flags", shareErr, append([]byte{1, stateCommitted, 0x80}, good[3:]...)},
		{"committed share without root", shareErr, encodeShare(shareRecord{state: stateCommitted, chunking: chunker.DefaultParams()})},
		{"committed share with bad chunking", shareErr, encodeShare(shareRecord{state: stateCommitted, root: root})},
		{"share with a CIDv0 root", shareErr, rawRoot},
		{"share with a huge path length", shareErr, []byte{1, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"share with a path past the end", shareErr, []byte{1, 1, 0, 0, 10, 'a'}},
		{"file without root", fileErr, encodeFile(fileRecord{path: "a"})},
		{"file without path", fileErr, encodeFile(fileRecord{root: root})},
		{"file with a size past int64", fileErr, []byte{1, 1, 'a', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"location over MaxSize", locErr, encodeLoc(chunker.MaxSize + 1)},
		{"location with a bad varint", locErr, []byte{1, 0x80}},
		{"schema with trailing bytes", func(b []byte) error { _, err := decodeSchema(b); return err }, []byte{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.decode(tt.data); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode(% x) = %v, want ErrCorrupt", tt.data, err)
			}
		})
	}
}

func shareErr(b []byte) error { _, err := decodeShare(b); return err }
func fileErr(b []byte) error  { _, err := decodeFile(b); return err }
func locErr(b []byte) error   { _, err := decodeLoc(b); return err }

// Record kinds of FuzzDecodeRecord.
const (
	kindShare = iota
	kindFile
	kindLoc
	kindSchema
	kindLocKey
	numKinds
)

// FuzzDecodeRecord feeds arbitrary bytes to every decoder of values and keys
// read from disk. None may panic or fail without ErrCorrupt, and what one
// accepts must encode back to bytes that decode to the same record.
func FuzzDecodeRecord(f *testing.F) {
	root := integrity.Block([]byte("root"))
	f.Add(uint8(kindShare), encodeShare(shareRecord{state: stateCommitted, dir: true, root: root, path: "/p",
		name: "n", size: 10, files: 2, created: 1, chunking: chunker.CDCParams(1 << 16)}))
	f.Add(uint8(kindShare), encodeShare(shareRecord{state: statePending, path: "/p"}))
	f.Add(uint8(kindFile), encodeFile(fileRecord{path: "a/b", size: 5, mtime: -3, root: root}))
	f.Add(uint8(kindLoc), encodeLoc(1<<20))
	f.Add(uint8(kindSchema), encodeSchema(SchemaVersion))
	f.Add(uint8(kindLocKey), locKey(integrity.Chunk(nil).Bytes(), 1, 2, 3))
	f.Fuzz(func(t *testing.T, kind uint8, data []byte) {
		check := func(err error) bool {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return err == nil
		}
		switch kind % numKinds {
		case kindShare:
			r, err := decodeShare(data)
			if check(err) {
				if r2, err := decodeShare(encodeShare(r)); err != nil || !reflect.DeepEqual(r, r2) {
					t.Fatalf("share %+v round-trips to %+v, %v", r, r2, err)
				}
			}
		case kindFile:
			r, err := decodeFile(data)
			if check(err) {
				if r2, err := decodeFile(encodeFile(r)); err != nil || r != r2 {
					t.Fatalf("file %+v round-trips to %+v, %v", r, r2, err)
				}
			}
		case kindLoc:
			n, err := decodeLoc(data)
			if check(err) {
				if n2, err := decodeLoc(encodeLoc(n)); err != nil || n != n2 {
					t.Fatalf("location %d round-trips to %d, %v", n, n2, err)
				}
			}
		case kindSchema:
			v, err := decodeSchema(data)
			if check(err) {
				if v2, err := decodeSchema(encodeSchema(v)); err != nil || v != v2 {
					t.Fatalf("schema %d round-trips to %d", v, v2)
				}
			}
		case kindLocKey:
			c, id, fileNo, off, err := parseLocKey(data)
			if check(err) {
				if k := locKey(c, id, fileNo, off); string(k) != string(data) {
					t.Fatalf("location key %x round-trips to %x", data, k)
				}
			}
		}
	})
}
