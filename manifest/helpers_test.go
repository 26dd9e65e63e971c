package manifest

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/chunker"
	"github.com/peer-project/peer/integrity"
)

// memStore is a Getter over blocks held in memory, counting fetches.
type memStore struct {
	mu     sync.Mutex
	blocks map[string][]byte
	gets   int
}

func newMemStore() *memStore { return &memStore{blocks: map[string][]byte{}} }

func (s *memStore) put(b Block) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocks[b.CID.KeyString()] = b.Data
	return nil
}

func (s *memStore) GetBlock(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets++
	d, ok := s.blocks[c.KeyString()]
	if !ok {
		return nil, fmt.Errorf("memstore: no block %s", c)
	}
	return d, nil
}

func (s *memStore) fetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets
}

// fakeRef returns a valid chunk ref whose CID is that of the bytes of i.
func fakeRef(i uint64, size uint32) ChunkRef {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return ChunkRef{CID: integrity.Chunk(b[:]), Size: size}
}

// fakeRefs returns n refs of size bytes, the last of last bytes.
func fakeRefs(n int, size, last uint32) []ChunkRef {
	refs := make([]ChunkRef, n)
	for i := range refs {
		refs[i] = fakeRef(uint64(i), size)
	}
	if n > 0 {
		refs[n-1].Size = last
	}
	return refs
}

// buildFile builds a file from refs with the given fan-out into s.
func buildFile(t testing.TB, s *memStore, name string, p chunker.Params, refs []ChunkRef, fanout int) (Block, *File) {
	t.Helper()
	b, err := newFileBuilder(name, p, s.put, fanout)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		if err := b.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	blk, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	n, err := Decode(blk.CID, blk.Data)
	if err != nil {
		t.Fatal(err)
	}
	return blk, n.(*File)
}

// Test-side CBOR writer that can write what the package's encoder never
// does (wrong order, long forms, unknown keys), to build hostile blocks.

type kv struct {
	k string
	v any
}

type rawCBOR []byte // written as is

func cborOf(v any) []byte { return appendAny(nil, v) }

func appendAny(b []byte, v any) []byte {
	switch v := v.(type) {
	case int:
		return appendUint(b, uint64(v))
	case uint64:
		return appendUint(b, v)
	case string:
		return appendText(b, v)
	case bool:
		return appendBool(b, v)
	case cid.Cid:
		return appendLink(b, v)
	case rawCBOR:
		return append(b, v...)
	case []any:
		b = appendHead(b, majArray, uint64(len(v)))
		for _, x := range v {
			b = appendAny(b, x)
		}
		return b
	case []kv:
		b = appendHead(b, majMap, uint64(len(v)))
		for _, p := range v {
			b = appendText(b, p.k)
			b = appendAny(b, p.v)
		}
		return b
	}
	panic(fmt.Sprintf("appendAny %T", v))
}

// fileMap returns the pairs of a valid one-chunk fixed file manifest of
// 1000 bytes, in canonical order, for tests to alter.
func fileMap(chunk cid.Cid) []kv {
	return []kv{
		{"t", "file"}, {"v", 1}, {"name", "a.txt"}, {"size", 1000}, {"count", 1}, {"depth", 0},
		{"chunker", []kv{{"alg", "fixed"}, {"size", 1 << 20}}},
		{"entries", []any{[]any{chunk, 1000}}},
	}
}

// set returns a copy of m with key k's value replaced.
func set(m []kv, k string, v any) []kv {
	out := append([]kv(nil), m...)
	for i := range out {
		if out[i].k == k {
			out[i].v = v
			return out
		}
	}
	panic("no key " + k)
}
