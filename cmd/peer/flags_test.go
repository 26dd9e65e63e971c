package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/peer-project/peer/daemon"
)

// settingsWith runs settingsOf under the daemon command's flags.
func settingsWith(t *testing.T, args ...string) daemon.Settings {
	t.Helper()
	var got daemon.Settings
	cmd := daemonCommand()
	cmd.Action = func(c *cli.Context) error {
		_, s, err := settingsOf(c, true)
		got = s
		return err
	}
	app := &cli.App{Name: "peer", Commands: []*cli.Command{cmd}, Writer: &strings.Builder{}, ErrWriter: &strings.Builder{}}
	if err := app.RunContext(context.Background(), append([]string{"peer", "daemon"}, args...)); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPrecedence: flags over PEER_* variables over config.json over the
// defaults.
func TestPrecedence(t *testing.T) {
	for _, k := range []string{"PEER_FIND_TIMEOUT", "PEER_BOOTSTRAP", "PEER_LISTEN", "PEER_METRICS", "PEER_DHT", "PEER_API", "PEER_CHUNK_SIZE", "PEER_CHUNKER", "PEER_NO_MDNS"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	home := t.TempDir()
	// A new home gets a config file with the defaults.
	s := settingsWith(t, "--home", home)
	if s.FindTimeout != "60s" || s.DHT != "server" || len(s.Bootstrap) != 0 || s.API != "127.0.0.1:0" {
		t.Fatalf("defaults: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(home, daemon.ConfigFile)); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, daemon.ConfigFile), []byte(`{"find_timeout": "11s", "dht": "client", "metrics": "127.0.0.1:9101",
		"bootstrap": ["/ip4/127.0.0.1/tcp/1/p2p/12D3KooWSjwcmskyjMqsGiqdCdY31yxcwvi1HcPkzknFMQVWseDx"]}`), 0o600)
	s = settingsWith(t, "--home", home)
	if s.FindTimeout != "11s" || s.DHT != "client" || s.Metrics != "127.0.0.1:9101" || len(s.Bootstrap) != 1 {
		t.Fatalf("config file: %+v", s)
	}
	t.Setenv("PEER_FIND_TIMEOUT", "22s")
	t.Setenv("PEER_BOOTSTRAP", "") // set but empty: none
	t.Setenv("PEER_HOME", home)
	s = settingsWith(t)
	if s.FindTimeout != "22s" || s.DHT != "client" || len(s.Bootstrap) != 0 {
		t.Fatalf("environment over the file: %+v", s)
	}
	s = settingsWith(t, "--find-timeout", "33s", "--dht", "auto", "--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1")
	if s.FindTimeout != "33s" || s.DHT != "auto" || len(s.Listen) != 2 {
		t.Fatalf("flags over the environment: %+v", s)
	}
	cfg, err := s.NodeConfig(home, nil)
	if err != nil || cfg.FindTimeout != 33*time.Second || cfg.Home != home {
		t.Fatalf("node config %+v, %v", cfg, err)
	}
	// A broken config file is an error that names the file.
	os.WriteFile(filepath.Join(home, daemon.ConfigFile), []byte(`{"find_timeout": 5`), 0o600)
	_, err = daemon.LoadSettings(home, false)
	if err == nil || !strings.Contains(err.Error(), daemon.ConfigFile) {
		t.Fatalf("broken config: %v", err)
	}
}

func TestProgressLine(t *testing.T) {
	l := progressLine(daemon.ProgressInfo{Bytes: 3 << 20, Total: 12 << 20, Peers: 2, Rate: 1 << 20, ETA: 9}, 20)
	for _, want := range []string{" 25%", "3.0 MiB / 12.0 MiB", "1.0 MiB/s", "2 peers", "ETA 9s"} {
		if !strings.Contains(l, want) {
			t.Errorf("progress line %q lacks %q", l, want)
		}
	}
}
