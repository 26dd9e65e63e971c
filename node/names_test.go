package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/chunker"
)

// TestPublishSeqAcrossRestarts: a name's sequence number grows across a
// restart of the node (it is kept in the home), for the node's own key and
// a named one.
func TestPublishSeqAcrossRestarts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.NoDHT = true
	src := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(src, []byte("one"), 0o644)
	for _, key := range []string{"", "site"} {
		var want uint64
		for run := range 2 {
			n := startNode(t, cfg)
			for range 2 {
				want++
				res, err := n.Publish(ctx, src, PublishOptions{Key: key})
				if err != nil {
					t.Fatal(err)
				}
				if res.Seq != want {
					t.Fatalf("key %q, run %d: sequence %d, want %d", key, run, res.Seq, want)
				}
			}
			n.Close()
		}
	}
	st, err := os.Stat(filepath.Join(cfg.Home, KeysDir, "site.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the named key: %v, %v; want a file of mode 0600", st, err)
	}
}

// TestResolveThroughDHT: A publishes; C is connected only to B, which holds
// no record of the name: C resolves it through the DHT, and fetches the
// name's root by name.
func TestResolveThroughDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := func(boot ...*Node) *Node {
		cfg := testConfig(t)
		cfg.DHTMode = DHTServer
		cfg.DHTNoAutoRefresh = true
		for _, b := range boot {
			cfg.Bootstrap = append(cfg.Bootstrap, bootstrapOf(b)...)
		}
		return startNode(t, cfg)
	}
	b := server()
	a, c := server(b), server(b)
	src := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(src, []byte("by name"), 0o644)
	pub, err := a.Publish(ctx, src, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pub.DHTErr != nil {
		t.Fatalf("the record did not go into the DHT: %v", pub.DHTErr)
	}
	rec, err := c.Resolve(ctx, pub.Name)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Root != pub.Root || rec.Seq != 1 {
		t.Fatalf("Resolve = %+v; want %s at 1", rec, pub.Root)
	}
	target, err := ParseTarget(pub.Name)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "got.txt")
	if _, err := c.Fetch(ctx, target, dest, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, []byte("by name"))

	// A name nobody published: a clear error, in bounded time.
	other := startNode(t, testConfig(t))
	_, err = c.Resolve(ctx, "/ipns/"+other.ID().String())
	if !errors.Is(err, ErrName) || !strings.Contains(err.Error(), "no record") {
		t.Fatalf("resolving an unpublished name: %v; want ErrName saying no record was found", err)
	}
}

// TestParseTargetName reads /ipns/NAME and /ipns/NAME/path, and refuses a
// name that is not one.
func TestParseTargetName(t *testing.T) {
	n := startNode(t, func() Config { c := testConfig(t); c.NoDHT = true; return c }())
	name := "/ipns/" + n.ID().String()
	for in, path := range map[string]string{name: "", name + "/a/b.txt": "a/b.txt"} {
		tg, err := ParseTarget(in)
		if err != nil {
			t.Fatalf("ParseTarget(%q): %v", in, err)
		}
		if !strings.HasPrefix(tg.IPNS, "/ipns/k51") || tg.Path != path || tg.Root.Defined() {
			t.Fatalf("ParseTarget(%q) = %+v", in, tg)
		}
	}
	if _, err := ParseTarget("/ipns/not-a-name"); !errors.Is(err, ErrName) {
		t.Fatalf("ParseTarget of a bad name: %v", err)
	}
}

// TestTicketOfName: a publish's ticket carries the name; a fetch of it,
// by a node that knows no one, asks the ticket's provider and gets the
// name's latest root, not the one the ticket was made with.
func TestTicketOfName(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.NoDHT = true
	a := startNode(t, cfg)
	src := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(src, []byte("one"), 0o644)
	pub, err := a.Publish(ctx, src, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(src, []byte("two"), 0o644)
	if _, err := a.Publish(ctx, src, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	target, err := ParseTarget(pub.Ticket)
	if err != nil {
		t.Fatal(err)
	}
	if target.IPNS != pub.Name || target.Hint == nil || target.Hint.ID != a.ID() {
		t.Fatalf("ParseTarget(ticket) = %+v; want the name %s and the provider %s", target, pub.Name, a.ID())
	}
	cfg = testConfig(t)
	cfg.NoDHT = true
	b := startNode(t, cfg)
	dest := filepath.Join(t.TempDir(), "got.txt")
	if _, err := b.Fetch(ctx, target, dest, FetchOptions{}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, dest, []byte("two"))
}

// TestRepublish: after a restart, Republish publishes every name of the
// home again, with a higher sequence, and takes in a change made while
// the node was stopped.
func TestRepublish(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.NoDHT = true
	src := filepath.Join(t.TempDir(), "site")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("one"), 0o644)
	n := startNode(t, cfg)
	pub, err := n.Publish(ctx, src, PublishOptions{Key: "site", Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("two"), 0o644)
	want, err := Hash(ctx, src, HashOptions{Chunking: cfg.Chunking})
	if err != nil {
		t.Fatal(err)
	}
	n = startNode(t, cfg)
	got, err := n.Republish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Name != pub.Name || got[0].Seq != 2 || got[0].Root != want.Root {
		t.Fatalf("Republish = %+v; want %s at sequence 2 pointing at %s", got, pub.Name, want.Root)
	}
	rec, err := n.Resolve(ctx, pub.Name)
	if err != nil || rec.Root != want.Root {
		t.Fatalf("Resolve after Republish = %+v, %v", rec, err)
	}
}

// TestPublishAboveCopiedKey: a named key copied to another home publishes
// above the sequence the first home reached (found among connected
// peers), so followers take its record.
func TestPublishAboveCopiedKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfgA, cfgB := testConfig(t), testConfig(t)
	cfgA.NoDHT, cfgB.NoDHT = true, true
	a, b := startNode(t, cfgA), startNode(t, cfgB)
	src := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(src, []byte("one"), 0o644)
	for range 3 {
		if _, err := a.Publish(ctx, src, PublishOptions{Key: "site"}); err != nil {
			t.Fatal(err)
		}
	}
	key, err := os.ReadFile(filepath.Join(cfgA.Home, KeysDir, "site.key"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(cfgB.Home, KeysDir), 0o700)
	if err := os.WriteFile(filepath.Join(cfgB.Home, KeysDir, "site.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Connect(ctx, a.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	res, err := b.Publish(ctx, src, PublishOptions{Key: "site"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Seq != 4 {
		t.Fatalf("the copied key published at sequence %d, want 4 (above A's 3)", res.Seq)
	}
}

// TestRepublishKeepsShareOptions: a name published with its own chunking
// is shared again after a restart with that chunking, so unchanged bytes
// keep their root (and followers rewrite nothing).
func TestRepublishKeepsShareOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := testConfig(t)
	cfg.NoDHT = true
	path, _ := randomFile(t, t.TempDir(), "f.bin", 1<<20, 41)
	n := startNode(t, cfg)
	pub, err := n.Publish(ctx, path, PublishOptions{Key: "site", Share: ShareOptions{Chunking: chunker.FixedParams(64 << 10)}})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	n = startNode(t, cfg)
	got, err := n.Republish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Root != pub.Root {
		t.Fatalf("Republish = %+v; want %s still at %s (the chunking it was published with)", got, pub.Name, pub.Root)
	}
}

// TestDHTRecordPassedOn: C follows A's name and finds its record in the
// DHT only (A is gone; B, which serves the same folder, holds no record).
// D runs no DHT and is connected to C alone: it resolves the name through
// C, which passed the record it found on to its names resolver.
func TestDHTRecordPassedOn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	server := func(boot ...*Node) *Node {
		cfg := testConfig(t)
		cfg.DHTMode = DHTServer
		cfg.DHTNoAutoRefresh = true
		for _, b := range boot {
			cfg.Bootstrap = append(cfg.Bootstrap, bootstrapOf(b)...)
		}
		return startNode(t, cfg)
	}
	b := server()
	a, c := server(b), server(b)
	src := filepath.Join(t.TempDir(), "site")
	writeTree(t, src, map[string]string{"a.txt": "alpha", "b.txt": "bravo"})
	pub, err := a.Publish(ctx, src, PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pub.DHTErr != nil {
		t.Fatalf("the record did not go into the DHT: %v", pub.DHTErr)
	}
	if _, err := b.Share(ctx, src, ShareOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	ev := follow(t, ctx, c, pub.Name, filepath.Join(t.TempDir(), "c"), FollowOptions{})
	waitEvent(t, ctx, "C", ev, appliedRoot(pub.Root.String()))

	cfg := testConfig(t)
	cfg.NoDHT = true
	d := startNode(t, cfg)
	dir := filepath.Join(t.TempDir(), "d")
	e, err := d.SyncName(ctx, pub.Name, dir, FollowOptions{Peers: []peer.AddrInfo{c.AddrInfo()}})
	if err != nil {
		t.Fatalf("D, through C: %v", err)
	}
	if e.Root != pub.Root {
		t.Fatalf("D applied %s, want %s", e.Root, pub.Root)
	}
	cancel()
}
