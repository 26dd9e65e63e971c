package names

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	kad "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/routing"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/peer-project/peer/internal/bubble"
)

// TestDHT puts records through one kad-dht node of five on mocknet and
// gets them from another, as the node will on its own DHT.
func TestDHT(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		mn := mocknet.New()
		defer mn.Close()
		mn.SetLinkDefaults(mocknet.LinkOptions{Latency: 10 * time.Millisecond})
		var dhts []*kad.IpfsDHT
		for range 5 {
			h, err := mn.GenPeer()
			if err != nil {
				t.Fatal(err)
			}
			d, err := kad.New(h,
				kad.Mode(kad.ModeServer),
				kad.ProtocolPrefix("/peer-names-test"),
				kad.NamespacedValidator("ipns", DHTValidator(h.Peerstore())),
				kad.DisableAutoRefresh())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			dhts = append(dhts, d)
		}
		if err := mn.LinkAll(); err != nil {
			t.Fatal(err)
		}
		if err := mn.ConnectAllButSelf(); err != nil {
			t.Fatal(err)
		}
		// kad-dht adds a peer to its table after identify and a check of
		// its own; on the virtual clock, wait for every table to fill.
		start := time.Now()
		for i := 0; i < len(dhts); {
			synctest.Wait()
			if dhts[i].RoutingTable().Size() == len(dhts)-1 {
				i++
				continue
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("DHT %d knows %d peers after a minute", i, dhts[i].RoutingTable().Size())
			}
			time.Sleep(10 * time.Millisecond) // virtual: lets kad-dht's timers run
		}
		t.Logf("routing tables full after %v (virtual)", time.Since(start))

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		sk, name := newKey(t)
		eol := time.Now().Add(time.Hour)
		put, get := dhts[0], dhts[4]

		if _, err := GetDHT(ctx, get, name, time.Now()); !errors.Is(err, routing.ErrNotFound) {
			t.Fatalf("get of an unpublished name: %v, want routing.ErrNotFound", err)
		}
		v1 := mustRecord(t, sk, "v1", 1, eol)
		if err := PutDHT(ctx, put, v1); err != nil {
			t.Fatal(err)
		}
		rec, err := GetDHT(ctx, get, name, time.Now())
		if err != nil || rec.Seq != 1 || rec.Root != rootOfBytes("v1") {
			t.Fatalf("got %+v, %v", rec, err)
		}
		v2 := mustRecord(t, sk, "v2", 2, eol)
		if err := PutDHT(ctx, put, v2); err != nil {
			t.Fatal(err)
		}
		if rec, err := GetDHT(ctx, get, name, time.Now()); err != nil || rec.Seq != 2 {
			t.Fatalf("after the update got %+v, %v", rec, err)
		}
		// The DHT's validator refuses an older record and a forged one.
		if err := PutDHT(ctx, put, v1); err == nil {
			t.Error("the DHT took an older record over a newer one")
		}
		forged := *mustRecord(t, sk, "evil", 3, eol)
		forged.Raw = rewrite(t, forged.Raw, func(pb *ipnsRecordPB) { pb.SignatureV2[0] ^= 1 })
		if err := PutDHT(ctx, put, &forged); err == nil {
			t.Error("the DHT took a forged record")
		}
		if rec, err := GetDHT(ctx, get, name, time.Now()); err != nil || rec.Seq != 2 {
			t.Fatalf("after the refused puts got %+v, %v", rec, err)
		}
	})
}
