package node

import (
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

// settled returns c as validate leaves it, without the fields that cannot
// be compared (funcs) or that come from the machine.
func settled(t *testing.T, c Config) Config {
	t.Helper()
	c.Home = t.TempDir()
	c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	c.Home, c.Logger, c.Now = "", nil, nil
	return c
}

// TestZeroConfigIsDefault: the zero Config means the defaults: it runs as
// DefaultConfig does, and every default is filled in where a node (and a
// daemon reporting its settings) can read it.
func TestZeroConfigIsDefault(t *testing.T) {
	zero, def := settled(t, Config{}), settled(t, DefaultConfig())
	if !reflect.DeepEqual(zero, def) {
		t.Errorf("the zero Config runs as\n%+v\nDefaultConfig as\n%+v", zero, def)
	}
	if zero.UploadSlots != 4 || zero.FindTimeout != 60*time.Second || zero.StallTimeout != 2*time.Minute ||
		zero.ConnLow != 100 || zero.ConnHigh != 400 || zero.Chunking.String() != "fixed-1048576" || len(zero.Listen) != 4 {
		t.Errorf("defaults not filled in: %+v", zero)
	}
}

// TestSwarmKeyListensOnTCP: a node with a swarm key leaves its UDP listen
// addresses out (go-libp2p's QUIC cannot run on a private network), in
// one place, and one with nothing but UDP addresses is refused with an
// error that says what to do.
func TestSwarmKeyListensOnTCP(t *testing.T) {
	key := swarmKey(t)
	c := Config{
		Home: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SwarmKey: key,
		Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1", "/ip6/::1/udp/0/quic-v1/webtransport"},
	}
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Listen, []string{"/ip4/127.0.0.1/tcp/0"}) {
		t.Errorf("a keyed node listens on %v, want the TCP address only", c.Listen)
	}
	// Without a key, QUIC stays.
	c = Config{Home: t.TempDir(), Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}}
	if err := c.validate(); err != nil || len(c.Listen) != 2 {
		t.Errorf("no key: listen %v, %v", c.Listen, err)
	}
	c = Config{Home: t.TempDir(), SwarmKey: key, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}}
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "add a TCP address") {
		t.Errorf("a keyed node with QUIC addresses only: %v; want an error that asks for a TCP address", err)
	}
}
