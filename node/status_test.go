package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/integrity"
)

// TestInspectDescribe reads a shared folder's manifest on the sharer, and on
// another node that has nothing but a ticket (it fetches the blocks).
func TestInspectDescribe(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "folder")
	_, big := randomFile(t, dir, "a/big.bin", 700<<10, 5)
	_, small := randomFile(t, dir, "small.bin", 1000, 6)
	a := startNode(t, testConfig(t))
	sh, err := a.Share(ctx, dir, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := startNode(t, testConfig(t))
	tk, err := ParseTarget(sh.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]*Node{"sharer": a, "other": b} {
		m, err := n.Inspect(ctx, tk, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.Root != sh.Root || !m.Dir || m.Name != sh.Root.String() || m.Size != int64(len(big)+len(small)) || len(m.Files) != 2 || len(m.Dirs) != 1 {
			t.Fatalf("%s: manifest %+v", name, m)
		}
		want := map[string][]byte{"a/big.bin": big, "small.bin": small}
		for _, f := range m.Files {
			data := want[f.Path]
			var off int64
			for _, c := range f.Chunks {
				if c.Offset != off || integrity.Chunk(data[off:off+int64(c.Size)]) != c.CID {
					t.Fatalf("%s: %s chunk at %d: %+v", name, f.Path, off, c)
				}
				off += int64(c.Size)
			}
			if off != int64(len(data)) || f.Size != off {
				t.Fatalf("%s: %s covers %d bytes of %d", name, f.Path, off, len(data))
			}
		}
	}
	sub := tk
	sub.Path = "a/big.bin"
	e, err := b.Describe(ctx, sub, nil)
	if err != nil || e.Dir || e.Name != "big.bin" || e.Size != int64(len(big)) {
		t.Fatalf("describe a/big.bin: %+v, %v", e, err)
	}
	sub.Path = "a/missing"
	if _, err := b.Describe(ctx, sub, nil); err == nil {
		t.Fatal("describe of a missing path succeeded")
	}
}

// TestStatusTransfersMetrics follows a fetch through DHT discovery: while it
// runs it is listed in Transfers; afterwards Metrics counts the lookup.
func TestStatusTransfersMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startNode(t, testConfig(t))
	cfg := testConfig(t)
	cfg.Bootstrap = bootstrapOf(a)
	b := startNode(t, cfg)
	path, data := randomFile(t, t.TempDir(), "f.bin", 4<<20, 8)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// b knows of a only through the DHT: the record is on both.
	if err := a.dht.Provide(ctx, sh.Root); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "f.bin")
	seen := make(chan []Transfer, 1)
	res, err := b.Fetch(ctx, Target{Root: sh.Root}, dest, FetchOptions{Progress: func(Progress) {
		select {
		case seen <- b.Transfers():
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, data)
	ts := <-seen
	if len(ts) != 1 || ts[0].Dest != dest || ts[0].Target.Root != sh.Root {
		t.Fatalf("transfers during the fetch: %+v", ts)
	}
	if len(b.Transfers()) != 0 {
		t.Fatalf("transfers after the fetch: %+v", b.Transfers())
	}
	st, err := b.Status()
	if err != nil {
		t.Fatal(err)
	}
	m := st.Metrics
	if st.ID != b.ID() || st.Peers < 1 || st.Shares != 1 || m.Swarm.BytesDown < int64(len(data)) || res.Progress.Bytes != int64(len(data)) {
		t.Fatalf("status %+v", st)
	}
	// The fetch looked the root up; whether the lookup or the connected
	// peer answered first is a race. A lookup on its own finds a.
	if m.DHTLookups < 1 {
		t.Fatalf("the fetch made no DHT lookup: %+v", m)
	}
	var found []peer.ID
	for ai := range b.findProviders(ctx, sh.Root, 20) {
		found = append(found, ai.ID)
	}
	if len(found) != 1 || found[0] != a.ID() {
		t.Fatalf("lookup found %v, want %s", found, a.ID())
	}
	m = b.Metrics()
	h := m.DHTLookupSeconds
	if m.DHTLookups < 2 || m.DHTLookupsFound < 1 || h.Count != uint64(m.DHTLookups) || h.Cumulative[len(h.Cumulative)-1] > h.Count || h.Sum <= 0 {
		t.Fatalf("lookup metrics: %d lookups, %d found, histogram %+v", m.DHTLookups, m.DHTLookupsFound, h)
	}
	for i := 1; i < len(h.Cumulative); i++ {
		if h.Cumulative[i] < h.Cumulative[i-1] {
			t.Fatalf("histogram not cumulative: %v", h.Cumulative)
		}
	}
}

func TestIdentityOf(t *testing.T) {
	cfg := testConfig(t)
	id, err := IdentityOf(cfg.Home)
	if err != nil {
		t.Fatal(err)
	}
	n := startNode(t, cfg)
	if n.ID() != id {
		t.Fatalf("IdentityOf = %s, node = %s", id, n.ID())
	}
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, keyFile), []byte("not a key"), 0o600)
	if _, err := IdentityOf(bad); err == nil {
		t.Fatal("a damaged key was accepted")
	}
}
