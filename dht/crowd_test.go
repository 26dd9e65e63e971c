package dht

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/internal/bubble"
)

// crowd starts n DHT servers on a mocknet with 4 ms links, as a simulation
// starts them: node 0 alone, then each from three random earlier nodes
// (one self-lookup each). Identities and choices come from fixed seeds.
func crowd(ctx context.Context, t *testing.T, n int) []*DHT {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	mn.SetLinkDefaults(mocknet.LinkOptions{Latency: 4 * time.Millisecond})
	keys := rand.NewChaCha8([32]byte{1})
	for i := range n {
		k, _, err := crypto.GenerateEd25519Key(keys)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mn.AddPeer(k, ma.StringCast(fmt.Sprintf("/ip4/10.0.%d.%d/tcp/4001", i>>8, i&0xff))); err != nil {
			t.Fatal(err)
		}
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	hosts := mn.Hosts()
	ds := make([]*DHT, 0, n)
	for i, h := range hosts {
		var boot []peer.AddrInfo
		for range min(i, 3) {
			b := hosts[rng.IntN(i)]
			boot = append(boot, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()})
		}
		d, err := New(h, Config{Bootstrap: boot, NoAutoRefresh: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

// TestFlashCrowdLookups: every node of 100 looks a root up while node 0
// starts announcing it (10 ms later, virtual), as the fetchers of a flash
// crowd do when a root has just been shared. A lookup ends in 24–40 ms,
// before the announcement has reached the root's closest peers (34 ms):
// 40–46 of 99 lookups found nothing when a lookup was one round (3e9b013). Every
// lookup must find node 0. Then a root nobody provides: the lookup gives up
// after its last round, 7.75 s of pauses and the rounds themselves.
func TestFlashCrowdLookups(t *testing.T) {
	bubble.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		ds := crowd(ctx, t, 100)
		root := integrity.Block([]byte("flash crowd"))
		t0 := time.Now()
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(10 * time.Millisecond) // the lookups are under way
			if err := ds[0].Provide(ctx, root); err != nil {
				t.Error(err)
			}
			t.Logf("the announcement reached the closest peers after %v", time.Since(t0))
		}()
		missed := make([]string, len(ds))
		for i, d := range ds[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				table := d.Peers()
				ai, ok := <-d.FindProviders(ctx, root, 1)
				switch {
				case !ok:
					missed[i] = fmt.Sprintf("node %d (routing table %d) found nothing in %v", i+1, table, time.Since(t0))
				case ai.ID != ds[0].host.ID():
					missed[i] = fmt.Sprintf("node %d found %s, not node 0", i+1, ai.ID)
				}
			}()
		}
		wg.Wait()
		n := 0
		for _, m := range missed {
			if m != "" {
				n++
				t.Log(m)
			}
		}
		if n > 0 {
			t.Fatalf("%d of %d lookups missed the provider", n, len(ds)-1)
		}

		t0 = time.Now()
		for ai := range ds[1].FindProviders(ctx, integrity.Block([]byte("nobody")), 0) {
			t.Fatalf("found a provider %s of a root nobody provides", ai.ID)
		}
		if took := time.Since(t0); took < 7750*time.Millisecond || took > 9*time.Second {
			t.Fatalf("a lookup of a root nobody provides ended after %v, want its %d rounds over 7.75 s of pauses", took, lookupRounds)
		}
	})
}
