package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/swarm"
)

// swarmKey returns the text of a fresh libp2p swarm.key file.
func swarmKey(t *testing.T) []byte {
	t.Helper()
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(k[:]) + "\n")
}

// refused asserts that from cannot fetch root from to, and with noConn
// that it cannot even connect. (A peer off an allowlist may see its side
// of a handshake finish before the other side drops the connection.)
func refused(t *testing.T, from, to *Node, root Target, noConn bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := from.Connect(ctx, to.AddrInfo()); err == nil && noConn {
		t.Errorf("%s connected to %s", from.ID(), to.ID())
	}
	hint := to.AddrInfo()
	root.Hint = &hint
	_, err := from.Fetch(ctx, root, filepath.Join(t.TempDir(), "x"), FetchOptions{})
	if !errors.Is(err, swarm.ErrNoProviders) {
		t.Errorf("fetch from a node that refuses us: %v, want ErrNoProviders", err)
	}
}

func TestSwarmKey(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := swarmKey(t)
	cfg := func() Config {
		c := testConfig(t)
		c.NoDHT = true
		c.FindTimeout = 2 * time.Second
		return c
	}
	ca := cfg()
	ca.SwarmKey = key
	a := startNode(t, ca)
	path, data := randomFile(t, t.TempDir(), "f.bin", 1<<20, 20)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Root: sh.Root}

	// Same key: the fetch works.
	cb := cfg()
	cb.SwarmKey = key
	b := startNode(t, cb)
	hint := a.AddrInfo()
	dest := filepath.Join(t.TempDir(), "f.bin")
	if _, err := b.Fetch(ctx, Target{Root: sh.Root, Hint: &hint}, dest, FetchOptions{}); err != nil {
		t.Fatalf("same key: %v", err)
	}
	sameFile(t, dest, data)

	// No key, or another key: no connection at all.
	refused(t, startNode(t, cfg()), a, target, true)
	cc := cfg()
	cc.SwarmKey = swarmKey(t)
	refused(t, startNode(t, cc), a, target, true)

	// A key that is not a swarm.key file is refused up front.
	cd := cfg()
	cd.SwarmKey = []byte("not a key")
	if n, err := New(ctx, cd); err == nil {
		n.Close()
		t.Error("New took a malformed swarm key")
	}
}

func TestAllowPeers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := func() Config {
		c := testConfig(t)
		c.NoDHT = true
		c.FindTimeout = 2 * time.Second
		return c
	}
	friend := startNode(t, cfg())
	ca := cfg()
	ca.AllowPeers = []peer.ID{friend.ID()}
	a := startNode(t, ca)
	path, data := randomFile(t, t.TempDir(), "f.bin", 1<<20, 21)
	sh, err := a.Share(ctx, path, ShareOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hint := a.AddrInfo()
	dest := filepath.Join(t.TempDir(), "f.bin")
	if _, err := friend.Fetch(ctx, Target{Root: sh.Root, Hint: &hint}, dest, FetchOptions{}); err != nil {
		t.Fatalf("allowed peer: %v", err)
	}
	sameFile(t, dest, data)

	stranger := startNode(t, cfg())
	refused(t, stranger, a, Target{Root: sh.Root}, false)
	// Nor does a dial the other way get through.
	if err := a.Connect(ctx, stranger.AddrInfo()); err == nil {
		t.Error("a node with an allowlist dialled a peer off it")
	}
}
