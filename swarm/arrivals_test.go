package swarm

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestProbeArrivalsSkipsTried: peers that connected while the fetch had
// not tried them, but that it tried since (a hint, a lookup), are not
// counted against maxConnectedProbe: with the nearest maxConnectedProbe
// of them tried already, the next one is asked in the same round. Before,
// the tried ones took the whole quota and nobody was asked.
func TestProbeArrivalsSkipsTried(t *testing.T) {
	mn := cappedMesh(t, 1, 0)
	s := New(mn.Hosts()[0], &memBlocks{m: map[cid.Cid][]byte{}}, Config{Logger: quiet()})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := s.newFetch(ctx, cid.Cid{}, FetchOptions{RediscoverEvery: time.Second})
	// The sessions probeArrivals would start are not started: dial still
	// marks the peers it asks as tried.
	f.goroutines.stop()

	self := s.host.ID()
	var ids []peer.ID
	for range maxConnectedProbe + 3 {
		_, pub, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b peer.ID) int { return xorCompare(self, a, b) })
	f.arrivals = map[peer.ID]bool{}
	for _, id := range ids {
		f.arrivals[id] = true
	}
	for _, id := range ids[:maxConnectedProbe] {
		f.tried[id] = true
	}

	f.probeArrivals(time.Unix(1000, 0))
	if f.probed != 3 {
		t.Errorf("probed %d peers, want the 3 not tried before", f.probed)
	}
	for _, id := range ids[maxConnectedProbe:] {
		if !f.tried[id] {
			t.Errorf("a peer not tried before, %d-th nearest, was not asked", slices.Index(ids, id)+1)
		}
	}
	if len(f.arrivals) != 0 {
		t.Errorf("%d peers still wait after the round, want none", len(f.arrivals))
	}
}
