package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"

	"github.com/peer-project/peer/integrity"
)

func TestBlocks(t *testing.T) {
	s, _ := openTest(t, Options{})
	ctx := context.Background()
	data := []byte{0xa1, 0x61, 0x61, 0x01} // {"a": 1}
	c := integrity.Block(data)
	if ok, err := s.HasBlock(c); ok || err != nil {
		t.Fatalf("HasBlock before Put = %v, %v", ok, err)
	}
	if _, err := s.GetBlock(ctx, c); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetBlock before Put = %v, want ErrNotFound", err)
	}
	if err := s.PutBlock(c, data); err != nil {
		t.Fatalf("PutBlock: %v", err)
	}
	if err := s.PutBlock(c, data); err != nil {
		t.Fatalf("PutBlock again: %v", err)
	}
	got, err := s.GetBlock(ctx, c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetBlock = % x, %v; want % x", got, err, data)
	}
	got[0] = 0 // the caller owns the copy
	if again, _ := s.GetBlock(ctx, c); !bytes.Equal(again, data) {
		t.Fatal("GetBlock returned memory shared with the database")
	}
	if ok, err := s.HasBlock(c); !ok || err != nil {
		t.Fatalf("HasBlock = %v, %v", ok, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.GetBlock(cctx, c); !errors.Is(err, context.Canceled) {
		t.Fatalf("GetBlock with a cancelled context = %v", err)
	}
}

func TestPutBlockRejects(t *testing.T) {
	s, _ := openTest(t, Options{})
	data := []byte{0xa0}
	big := make([]byte, MaxBlockSize+1)
	tests := []struct {
		name string
		c    cid.Cid
		data []byte
		want func(error) bool
	}{
		{"wrong bytes", integrity.Block([]byte{0xa1}), data, func(err error) bool {
			var me *integrity.MismatchError
			return errors.As(err, &me)
		}},
		{"dag-cbor codec", cid.NewCidV1(cid.DagCBOR, integrity.Chunk(data).Hash()), data, func(err error) bool { return errors.Is(err, integrity.ErrUnsupported) }},
		{"undefined", cid.Undef, data, func(err error) bool { return errors.Is(err, integrity.ErrUnsupported) }},
		{"too big", integrity.Block(big), big, func(err error) bool { return errors.Is(err, ErrInvalid) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.PutBlock(tt.c, tt.data); !tt.want(err) {
				t.Fatalf("PutBlock = %v", err)
			}
		})
	}
	if n := bucketLen(t, s, bucketBlocks); n != 0 {
		t.Fatalf("%d blocks stored after rejected puts", n)
	}
}

func TestPutBlocksAllOrNothing(t *testing.T) {
	s, _ := openTest(t, Options{})
	var blocks []Block
	for i := range 5 {
		d := []byte{0x82, byte(i), byte(i)}
		blocks = append(blocks, Block{CID: integrity.Block(d), Data: d})
	}
	bad := append(append([]Block(nil), blocks...), Block{CID: integrity.Block([]byte{1}), Data: []byte{2}})
	if err := s.PutBlocks(bad); err == nil {
		t.Fatal("PutBlocks with a bad block succeeded")
	}
	if n := bucketLen(t, s, bucketBlocks); n != 0 {
		t.Fatalf("%d blocks stored by a failed PutBlocks", n)
	}
	if err := s.PutBlocks(blocks); err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if got, err := s.GetBlock(context.Background(), b.CID); err != nil || !bytes.Equal(got, b.Data) {
			t.Fatalf("GetBlock(%s) = %x, %v", b.CID, got, err)
		}
	}
}

func TestGetBlockDetectsDiskCorruption(t *testing.T) {
	s, _ := openTest(t, Options{})
	data := []byte{0xa0}
	c := integrity.Block(data)
	s.PutBlock(c, data)
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketBlocks).Put(c.Bytes(), []byte{0xa1}) })
	_, err := s.GetBlock(context.Background(), c)
	var me *integrity.MismatchError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &me) {
		t.Fatalf("GetBlock of a damaged block = %v, want ErrCorrupt and a MismatchError", err)
	}
}

// TestGetBlockRawRoot: the root of a shared file of one chunk is that
// chunk, a raw block the store does not hold as a block: GetBlock reads it
// from the shared file (so a peer's WANT_NODE for the root is answered),
// and finds it gone once the file is edited.
func TestGetBlockRawRoot(t *testing.T) {
	s, _ := openTest(t, Options{})
	dir := t.TempDir()
	f := writeFile(t, dir, "small.txt", []byte("one chunk"))
	f.root = f.chunks[0].CID // a file of one chunk is its own root
	shareFiles(t, s, dir, f.root, 10, f)
	got, err := s.GetBlock(context.Background(), f.root)
	if err != nil || string(got) != "one chunk" {
		t.Fatalf("GetBlock(raw root) = %q, %v", got, err)
	}
	if err := os.WriteFile(f.path, []byte("edited!!!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetBlock(context.Background(), f.root); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetBlock after the file changed = %v, want ErrNotFound", err)
	}
	if _, err := s.GetBlock(context.Background(), integrity.Chunk([]byte("nowhere"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetBlock of a raw block nobody holds = %v, want ErrNotFound", err)
	}
}
