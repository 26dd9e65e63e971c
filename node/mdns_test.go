package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestMDNSOffWhenPrivate: mDNS announces the node to everyone on the LAN,
// so a node that talks only to the holders of a swarm key, or only to an
// allowlist, never runs it. (The decision alone is tested: a test sends no
// multicast.)
func TestMDNSOffWhenPrivate(t *testing.T) {
	lan := []ma.Multiaddr{ma.StringCast("/ip4/0.0.0.0/tcp/4001"), ma.StringCast("/ip4/192.168.1.20/tcp/4001")}
	loop := []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}
	key := []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n")
	id, err := peer.Decode("12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		addrs []ma.Multiaddr
		want  bool
	}{
		{"public on a LAN", func(*Config) {}, lan, true},
		{"loopback only", func(*Config) {}, loop, false},
		{"NoMDNS", func(c *Config) { c.NoMDNS = true }, lan, false},
		{"swarm key", func(c *Config) { c.SwarmKey = key }, lan, false},
		{"allowlist", func(c *Config) { c.AllowPeers = []peer.ID{id} }, lan, false},
	} {
		cfg := DefaultConfig()
		tc.edit(&cfg)
		if got := cfg.mdnsOn(tc.addrs); got != tc.want {
			t.Errorf("%s: mDNS on = %v, want %v", tc.name, got, tc.want)
		}
	}
}
