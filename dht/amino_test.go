package dht

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
)

// TestValueStoreCapped: an Amino server keeps at most max values for
// others, none over the size limit; replacing a value kept is always
// allowed, and deleting one frees its place.
func TestValueStoreCapped(t *testing.T) {
	ctx := context.Background()
	s := newValueStore(3)
	key := func(i int) ds.Key { return ds.NewKey(fmt.Sprintf("/ipns/k%d", i)) }
	for i := range 3 {
		if err := s.Put(ctx, key(i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, key(3), []byte{3}); !errors.Is(err, ErrValuesFull) {
		t.Fatalf("a 4th value of 3: %v, want ErrValuesFull", err)
	}
	if err := s.Put(ctx, key(0), []byte("newer")); err != nil {
		t.Fatalf("replacing a value kept: %v", err)
	}
	if err := s.Put(ctx, key(1), bytes.Repeat([]byte{1}, maxValueBytes+1)); err == nil {
		t.Fatal("a value over the size limit was kept")
	}
	b, err := s.Batch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b.Put(ctx, key(4), []byte{4})
	if err := b.Commit(ctx); !errors.Is(err, ErrValuesFull) {
		t.Fatalf("a batch past the cap: %v, want ErrValuesFull", err)
	}
	if err := s.Delete(ctx, key(2)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, key(3), []byte{3}); err != nil {
		t.Fatalf("after a delete: %v", err)
	}
	res, err := s.Query(ctx, dsq.Query{Prefix: "/ipns"})
	if err != nil {
		t.Fatal(err)
	}
	all, err := res.Rest()
	if err != nil || len(all) != 3 {
		t.Fatalf("query: %d entries, %v; want 3", len(all), err)
	}
	if v, err := s.Get(ctx, key(0)); err != nil || string(v) != "newer" {
		t.Fatalf("get: %q, %v", v, err)
	}
}
