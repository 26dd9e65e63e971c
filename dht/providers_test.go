package dht

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/integrity"
)

func randomID(t testing.TB) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// kadUnflushed bounds the records kad-dht's provider manager holds before
// it writes them to the store (a batch of 256, kept for a retry up to 320),
// which its GetProviders shows beside the store's.
const kadUnflushed = 320

// TestProviderRecordsCapped: every ADD_PROVIDER a DHT server accepts is
// stored through its provider manager (the handler checks only that the
// sender is the provider, and a peer ID costs nothing). A flood of 3000
// fake providers of one root leaves at most the per-root cap (and kad-dht's
// unflushed buffer) of them, and the provider that came first is among
// them; records for many roots stop at the overall cap.
func TestProviderRecordsCapped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := newHost(t)
	defer h.Close()
	d := newDHT(t, h)
	defer d.Close()
	ps := d.Kad().ProviderStore()
	root := integrity.Block([]byte("a root that fakes crowd"))
	addr := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/9")}
	real := randomID(t)
	if err := ps.AddProvider(ctx, root.Hash(), peer.AddrInfo{ID: real, Addrs: addr}); err != nil {
		t.Fatal(err)
	}
	for range 3000 {
		if err := ps.AddProvider(ctx, root.Hash(), peer.AddrInfo{ID: randomID(t), Addrs: addr}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ps.GetProviders(ctx, root.Hash())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ai := range got {
		found = found || ai.ID == real
	}
	if len(got) > DefaultMaxProvidersPerRoot+kadUnflushed || !found {
		t.Fatalf("after 3000 fake providers: %d providers kept (want at most %d+%d), the first one among them: %v",
			len(got), DefaultMaxProvidersPerRoot, kadUnflushed, found)
	}
	if total, perRoot, dropped := d.records.counts(); total > DefaultMaxProvidersPerRoot || perRoot > DefaultMaxProvidersPerRoot || dropped == 0 {
		t.Fatalf("store: %d records, %d for the root, %d dropped", total, perRoot, dropped)
	}

	// The overall cap, over many roots.
	h2 := newHost(t)
	defer h2.Close()
	d2, err := New(h2, Config{NoAutoRefresh: true, MaxProviderRecords: 500, MaxProvidersPerRoot: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	for i := range 2000 {
		r := integrity.Block(fmt.Appendf(nil, "root %d", i%200))
		if err := d2.Kad().ProviderStore().AddProvider(ctx, r.Hash(), peer.AddrInfo{ID: randomID(t), Addrs: addr}); err != nil {
			t.Fatal(err)
		}
	}
	if total, perRoot, dropped := d2.records.counts(); total > 500 || perRoot > 10 || dropped == 0 {
		t.Fatalf("store with caps 500 and 10 per root: %d records, %d for one root, %d dropped", total, perRoot, dropped)
	}

	// A refresh of a record kept is never refused, and an expired record
	// makes room.
	s := newRecordStore(10, 2, time.Hour)
	now := time.Unix(1e6, 0)
	s.now = func() time.Time { return now }
	put := func(key string, at time.Time) {
		b := make([]byte, 16)
		s.Put(ctx, ds.NewKey(key), b[:binary.PutVarint(b, at.UnixNano())])
	}
	put("/providers/R/a", now.Add(-2*time.Hour))
	put("/providers/R/b", now)
	put("/providers/R/c", now) // a is expired: c takes its place
	put("/providers/R/d", now) // full
	put("/providers/R/b", now.Add(time.Minute))
	if ok, _ := s.Has(ctx, ds.NewKey("/providers/R/c")); !ok {
		t.Fatal("an expired record did not make room")
	}
	if ok, _ := s.Has(ctx, ds.NewKey("/providers/R/d")); ok {
		t.Fatal("a third record for a root capped at 2")
	}
	if total, perRoot, dropped := s.counts(); total != 2 || perRoot != 2 || dropped != 1 {
		t.Fatalf("store: %d records, %d for the root, %d dropped; want 2, 2, 1", total, perRoot, dropped)
	}
}

// TestRecordStoreQuery: a query for a root reads that root's records (none
// for a root nobody provides), one for the namespace reads them all, and
// the records come back as they were put.
func TestRecordStoreQuery(t *testing.T) {
	ctx := context.Background()
	s := newRecordStore(100, 10, time.Hour)
	b := make([]byte, 16)
	v := b[:binary.PutVarint(b, time.Now().UnixNano())]
	for _, k := range []string{"/providers/R1/a", "/providers/R1/b", "/providers/R2/a"} {
		s.Put(ctx, ds.NewKey(k), v)
	}
	count := func(prefix string) int {
		res, err := s.Query(ctx, dsq.Query{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		es, err := res.Rest()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if !strings.HasPrefix(e.Key, strings.TrimSuffix(prefix, "/")+"/") || !bytes.Equal(e.Value, v) {
				t.Fatalf("query %s gave %s = %x", prefix, e.Key, e.Value)
			}
		}
		return len(es)
	}
	for prefix, want := range map[string]int{"/providers/R1": 2, "/providers/R2": 1, "/providers/R3": 0, "/providers/": 3, "/providers/R": 0} {
		if got := count(prefix); got != want {
			t.Errorf("query %s: %d records, want %d", prefix, got, want)
		}
	}
}

// TestRecordStoreUnknownRootIsCheap: a GET_PROVIDERS for a root nobody
// provides must not read the whole store (a peer can ask for random roots
// in a loop). Allocations stand for the work, as they are counted exactly.
func TestRecordStoreUnknownRootIsCheap(t *testing.T) {
	ctx := context.Background()
	s := newRecordStore(1<<16, 128, time.Hour)
	b := make([]byte, 16)
	v := b[:binary.PutVarint(b, time.Now().UnixNano())]
	for i := range 1 << 16 {
		s.Put(ctx, ds.NewKey(fmt.Sprintf("/providers/ROOT%d/PEER", i)), v)
	}
	allocs := testing.AllocsPerRun(5, func() {
		res, _ := s.Query(ctx, dsq.Query{Prefix: "/providers/UNKNOWN"})
		res.Rest()
	})
	if allocs > 100 {
		t.Fatalf("a query for an unknown root in a store of %d records made %.0f allocations; want a few", 1<<16, allocs)
	}
}
