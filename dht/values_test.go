package dht

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/boxo/ipns"
	"github.com/ipfs/boxo/path"
	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/integrity"
)

// ipnsRecord signs a record of sk's name pointing at a raw root, and
// returns its routing key and bytes.
func ipnsRecord(t *testing.T, sk crypto.PrivKey, seq uint64) (string, []byte) {
	t.Helper()
	root := integrity.Chunk([]byte("version"))
	rec, err := ipns.NewRecord(sk, path.FromCid(root), seq, time.Now().Add(time.Hour), time.Minute, ipns.WithPublicKey(true))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ipns.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	return string(ipns.NameFromPeer(id).RoutingKey()), raw
}

// TestIPNSValues: A puts an IPNS record through the DHT, C (who knows only
// B) gets it; a newer one replaces it; a tampered record, an older one and
// a value of another namespace are refused.
func TestIPNSValues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ha, hb, hc := newHost(t), newHost(t), newHost(t)
	defer ha.Close()
	defer hb.Close()
	defer hc.Close()
	da, db, dc := newDHT(t, ha, hb), newDHT(t, hb), newDHT(t, hc, hb)
	defer da.Close()
	defer db.Close()
	defer dc.Close()
	for _, d := range []*DHT{db, da, dc} {
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	sk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, rec1 := ipnsRecord(t, sk, 1)
	if err := da.ValueStore().PutValue(ctx, key, rec1); err != nil {
		t.Fatalf("put of a valid IPNS record: %v", err)
	}
	got, err := dc.ValueStore().GetValue(ctx, key)
	if err != nil || !bytes.Equal(got, rec1) {
		t.Fatalf("get = %d bytes, %v; want the record put", len(got), err)
	}
	_, rec2 := ipnsRecord(t, sk, 2)
	if err := dc.ValueStore().PutValue(ctx, key, rec2); err != nil {
		t.Fatalf("put of a newer record: %v", err)
	}
	if got, err := da.ValueStore().GetValue(ctx, key); err != nil || !bytes.Equal(got, rec2) {
		t.Fatalf("after a newer put, get = %d bytes, %v; want the newer record", len(got), err)
	}
	if err := da.ValueStore().PutValue(ctx, key, rec1); err == nil {
		t.Error("an older record was put over a newer one")
	}
	bad := bytes.Clone(rec2)
	bad[len(bad)/2] ^= 1
	if err := da.ValueStore().PutValue(ctx, key, bad); err == nil {
		t.Error("a tampered record was accepted")
	}
	if err := da.ValueStore().PutValue(ctx, "/pk/"+key[len("/ipns/"):], []byte("x")); err == nil {
		t.Error("a value of the /pk namespace was accepted")
	}
}

// TestValueStoreCap: a server keeps at most max values for others, none
// over the size limit; replacing a value kept is always
// allowed, and deleting one frees its place.
func TestValueStoreCap(t *testing.T) {
	ctx := context.Background()
	s := newValueDatastore(3)
	key := func(i int) ds.Key { return ds.NewKey(fmt.Sprintf("/ipns/k%d", i)) }
	for i := range 3 {
		if err := s.Put(ctx, key(i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, key(3), []byte{3}); !errors.Is(err, ErrValueStoreFull) {
		t.Fatalf("a 4th value of 3: %v, want ErrValueStoreFull", err)
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
	if err := b.Commit(ctx); !errors.Is(err, ErrValueStoreFull) {
		t.Fatalf("a batch past the cap: %v, want ErrValueStoreFull", err)
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
