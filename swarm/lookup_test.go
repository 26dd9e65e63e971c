package swarm

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm/wire"
)

// hello opens a session from h to the swarm on to for root and returns
// the first message it is answered with.
func hello(t *testing.T, ctx context.Context, h host.Host, to host.Host, root cid.Cid) wire.Msg {
	t.Helper()
	st, err := h.NewStream(ctx, to.ID(), wire.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Reset()
	st.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := st.Write(encode(t, &wire.Hello{Version: wire.Version, Root: root})); err != nil {
		t.Fatal(err)
	}
	m, err := wire.NewReader(st, 0).Read()
	if err != nil {
		t.Fatalf("no answer to HELLO: %v", err)
	}
	return m
}

// TestLookupsCachedAndBounded is finding 5 of issue 15 in the swarm: a
// root that no share registered is looked up once and kept (it was looked
// up three times a session, and never kept when not found), a peer may
// cause only lookupBurst lookups a window, and the cache holds at most
// maxDerived roots.
func TestLookupsCachedAndBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	blocks, root, l, data := hostileRoot(t)
	mn, err := mocknet.FullMeshConnected(3)
	if err != nil {
		t.Fatal(err)
	}
	defer mn.Close()
	hosts := mn.Hosts()
	var (
		mu      sync.Mutex
		lookups = map[cid.Cid]int{}
	)
	now := time.Unix(1e9, 0)
	server := New(hosts[0], blocks, Config{Logger: quiet(), Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}, Lookup: func(_ context.Context, c cid.Cid) Source {
		mu.Lock()
		defer mu.Unlock()
		lookups[c]++
		// Every root is "inside a share": root's source answers for it.
		return strictSource{&memSource{l: l, data: data}}
	}})
	defer server.Close()

	// The same root, five sessions: looked up once.
	for range 5 {
		if m := hello(t, ctx, hosts[1], hosts[0], root); m.Type() != wire.TypeHaveAll {
			t.Fatalf("answer to HELLO: %v", m.Type())
		}
	}
	if lookups[root] != 1 {
		t.Errorf("5 sessions for one root looked it up %d times, want 1", lookups[root])
	}
	// Roots the cache does not hold: the peer's lookups run out.
	other := func(i int) cid.Cid { return integrity.Block(binary.BigEndian.AppendUint64(nil, uint64(i))) }
	refused := 0
	for i := range 2 * lookupBurst {
		if m := hello(t, ctx, hosts[1], hosts[0], other(i)); m.Type() == wire.TypeError {
			if e := m.(*wire.Error); e.Code != wire.CodeTooManyRequests {
				t.Fatalf("HELLO %d answered ERROR %v, want too many requests", i, e.Code)
			}
			refused++
		}
	}
	mu.Lock()
	total := 0
	for _, n := range lookups {
		total += n
	}
	mu.Unlock()
	if total != lookupBurst || refused != lookupBurst+1 {
		t.Errorf("%d lookups and %d refusals for %d new roots, want %d and %d", total, refused, 2*lookupBurst, lookupBurst, lookupBurst+1)
	}
	// Another peer has its own lookups; the first one's come back after
	// the window.
	if m := hello(t, ctx, hosts[2], hosts[0], other(1000)); m.Type() != wire.TypeHaveAll {
		t.Errorf("another peer's first lookup answered %v", m.Type())
	}
	mu.Lock()
	now = now.Add(lookupWindow)
	mu.Unlock()
	if m := hello(t, ctx, hosts[1], hosts[0], other(1001)); m.Type() != wire.TypeHaveAll {
		t.Errorf("a lookup after the window answered %v", m.Type())
	}
	// The cache is bounded.
	for i := range maxDerived + 10 {
		server.Source(other(2000 + i))
	}
	server.lookups.mu.Lock()
	kept := len(server.lookups.derived)
	server.lookups.mu.Unlock()
	if kept > maxDerived {
		t.Errorf("%d roots kept, limit %d", kept, maxDerived)
	}
}
