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

// valueMap is a routing.ValueStore of one map, as kad-dht's GetValue and
// PutValue look to PutDHT, GetDHT and ResolveDHT (no validation of its own).
type valueMap map[string][]byte

func (m valueMap) PutValue(_ context.Context, key string, val []byte, _ ...routing.Option) error {
	m[key] = val
	return nil
}

func (m valueMap) GetValue(_ context.Context, key string, _ ...routing.Option) ([]byte, error) {
	if v, ok := m[key]; ok {
		return v, nil
	}
	return nil, routing.ErrNotFound
}

func (m valueMap) SearchValue(context.Context, string, ...routing.Option) (<-chan []byte, error) {
	return nil, routing.ErrNotSupported
}

// TestResolveDHT: ResolveDHT returns a record found in the DHT, keeps it
// if the name is followed (and the subscribers get it), returns the held
// record when that is newer, and refuses a forged one without keeping it.
func TestResolveDHT(t *testing.T) {
	tn := newTestNet(t, 1, 0, Config{})
	r := tn.rs[0]
	ctx := context.Background()
	sk, name := newKey(t)
	eol := time.Now().Add(time.Hour)
	vs := valueMap{}
	if _, err := r.ResolveDHT(ctx, vs, name); !errors.Is(err, routing.ErrNotFound) {
		t.Fatalf("a name nobody published: %v, want routing.ErrNotFound", err)
	}
	vs[name.RoutingKey()] = mustRecord(t, sk, "v1", 1, eol).Raw
	rec, err := r.ResolveDHT(ctx, vs, name)
	if err != nil || rec.Seq != 1 || rec.Root != rootOfBytes("v1") {
		t.Fatalf("ResolveDHT = %+v, %v; want sequence 1", rec, err)
	}
	if _, ok := r.Best(name); ok {
		t.Fatal("a record of a name not followed was kept")
	}
	sub, err := r.Follow(name)
	if err != nil {
		t.Fatal(err)
	}
	if rec, err := r.ResolveDHT(ctx, vs, name); err != nil || rec.Seq != 1 {
		t.Fatalf("followed: %+v, %v", rec, err)
	}
	recvSeq(t, sub.C, 1)
	if err := r.Learn(mustRecord(t, sk, "v3", 3, eol)); err != nil {
		t.Fatal(err)
	}
	recvSeq(t, sub.C, 3)
	if rec, err := r.ResolveDHT(ctx, vs, name); err != nil || rec.Seq != 3 {
		t.Fatalf("with sequence 3 held and 1 in the DHT: %+v, %v; want the held one", rec, err)
	}
	forged := *mustRecord(t, sk, "evil", 4, eol)
	vs[name.RoutingKey()] = rewrite(t, forged.Raw, func(pb *ipnsRecordPB) { pb.SignatureV2[0] ^= 0x80 })
	if _, err := r.ResolveDHT(ctx, vs, name); !errors.Is(err, ErrSignature) {
		t.Fatalf("a forged record in the DHT: %v, want ErrSignature", err)
	}
	if best, _ := r.Best(name); best.Seq != 3 {
		t.Fatalf("after the forged record %d is held, want 3", best.Seq)
	}
}
