package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/peer-project/peer/dht"
	"github.com/peer-project/peer/node"
)

// TestNetworkSettings: a new home's settings keep the node off the
// public network with no bootstrap peer; "public" joins it through
// kad-dht's bootstrap peers unless the settings name others; a bad name,
// and a swarm key with the public network, are refused with what to do.
func TestNetworkSettings(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	home := t.TempDir()
	def := DefaultSettings()
	if def.Network != "local" || len(def.Bootstrap) != 0 {
		t.Fatalf("default settings: network %q, bootstrap %v", def.Network, def.Bootstrap)
	}
	cfg, err := def.NodeConfig(home, log)
	if err != nil {
		t.Fatal(err)
	}
	if boot, err := cfg.BootstrapPeers(); cfg.Network != node.NetworkLocal || len(boot) != 0 || err != nil {
		t.Fatalf("default settings: network %s, bootstrap peers %v, %v; want local and none", cfg.Network, boot, err)
	}

	pub := DefaultSettings()
	pub.Network = "public"
	if cfg, err = pub.NodeConfig(home, log); err != nil {
		t.Fatal(err)
	}
	if boot, _ := cfg.BootstrapPeers(); cfg.Network != node.NetworkPublic || len(boot) == 0 || !reflect.DeepEqual(boot, dht.AminoBootstrapPeers()) {
		t.Fatalf("public: network %s, bootstrap peers %v; want kad-dht's", cfg.Network, boot)
	}
	own := "/ip4/192.0.0.129/tcp/4001/p2p/12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf"
	pub.Bootstrap = []string{own}
	if cfg, err = pub.NodeConfig(home, log); err != nil {
		t.Fatal(err)
	}
	if boot, _ := cfg.BootstrapPeers(); len(boot) != 1 || boot[0].ID.String() != "12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf" {
		t.Fatalf("public with its own list: bootstrap peers %v, want %s only", boot, own)
	}

	if _, err := (Settings{Network: "internet"}).NodeConfig(home, log); err == nil || !strings.Contains(err.Error(), "want local") {
		t.Errorf("network internet: %v", err)
	}
	key := "/key/swarm/psk/1.0.0/\n/base16/\n" + strings.Repeat("ab", 32) + "\n"
	if err := os.WriteFile(filepath.Join(home, SwarmKeyFile), []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err = pub.NodeConfig(home, log)
	if err == nil {
		_, err = cfg.WithDefaults()
	}
	if err == nil || !strings.Contains(err.Error(), "can't join the public network") {
		t.Errorf("public with a swarm key: %v; want it refused", err)
	}
}
