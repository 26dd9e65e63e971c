package benchrec

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKuboBinary(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == EnvKubo {
				return v
			}
			return ""
		}
	}
	if bin, err := KuboBinary(env("")); bin != "" || err != nil {
		t.Fatalf("unset: %q, %v; want no binary and no error", bin, err)
	}
	_, err := KuboBinary(env(filepath.Join(t.TempDir(), "no-ipfs-here")))
	if !errors.Is(err, ErrKubo) || !strings.Contains(err.Error(), EnvKubo) {
		t.Fatalf("missing binary: %v; want an error naming %s", err, EnvKubo)
	}
	fake := writeFakeKubo(t)
	if bin, err := KuboBinary(env(fake)); bin != fake || err != nil {
		t.Fatalf("executable: %q, %v; want %q", bin, err, fake)
	}
}

// kuboDefaults is the part of a fresh Kubo configuration (`ipfs init`, no
// profile) that reaches the public network.
const kuboDefaults = `{
  "Addresses": {"Swarm": ["/ip4/0.0.0.0/tcp/4001", "/ip6/::/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"],
    "API": "/ip4/127.0.0.1/tcp/5001", "Gateway": "/ip4/127.0.0.1/tcp/8080", "Announce": [], "AppendAnnounce": []},
  "Bootstrap": ["/dnsaddr/bootstrap.libp2p.io/p2p/QmNnooDu7bfjPFoTZYxMNLWUQJyrVwtbZg5gBMjTezGAJN"],
  "Peering": {"Peers": null},
  "Discovery": {"MDNS": {"Enabled": true}},
  "Routing": {"Type": "auto"},
  "Swarm": {"DisableNatPortMap": false, "RelayClient": {}, "RelayService": {}},
  "AutoNAT": {},
  "AutoConf": {}
}`

// setKey sets the dotted key of a configuration map to the JSON value v, as
// `ipfs config --json key v` does.
func setKey(t *testing.T, m map[string]any, key, v string) {
	t.Helper()
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	var val any
	if err := json.Unmarshal([]byte(v), &val); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	m[parts[len(parts)-1]] = val
}

// TestKuboSettingsKeepLoopback checks that the default configuration is
// refused, naming what reaches out, and that the settings the helper
// applies make it pass.
func TestKuboSettingsKeepLoopback(t *testing.T) {
	err := checkKuboConfig([]byte(kuboDefaults))
	if !errors.Is(err, ErrKubo) {
		t.Fatalf("defaults: %v; want them refused", err)
	}
	for _, want := range []string{"0.0.0.0", "Bootstrap has 1", "MDNS", "Routing.Type", "DisableNatPortMap",
		"RelayClient", "RelayService", "AutoNAT", "AutoConf"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %s: %v", want, err)
		}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(kuboDefaults), &m); err != nil {
		t.Fatal(err)
	}
	for _, s := range kuboSettings() {
		setKey(t, m, s.key, s.json)
	}
	b, _ := json.Marshal(m)
	if err := checkKuboConfig(b); err != nil {
		t.Fatalf("after the settings: %v", err)
	}
	// Any one required setting left out is caught.
	for i, s := range kuboSettings() {
		switch s.key {
		case "Addresses.API", "Addresses.Gateway", "Addresses.Announce", "Addresses.AppendAnnounce", "Peering.Peers":
			continue // already on loopback or empty in the defaults
		}
		if s.optional {
			continue
		}
		var m map[string]any
		json.Unmarshal([]byte(kuboDefaults), &m)
		for j, s2 := range kuboSettings() {
			if j != i {
				setKey(t, m, s2.key, s2.json)
			}
		}
		b, _ := json.Marshal(m)
		if err := checkKuboConfig(b); err == nil {
			t.Errorf("without %s the configuration passes", s.key)
		}
	}
	// An older Kubo without AutoConf passes; one with it on does not.
	delete(m, "AutoConf")
	b, _ = json.Marshal(m)
	if err := checkKuboConfig(b); err != nil {
		t.Errorf("without AutoConf: %v", err)
	}
	if err := checkKuboConfig([]byte(`not json`)); !errors.Is(err, ErrKubo) {
		t.Errorf("garbage: %v", err)
	}
}

func TestKuboParse(t *testing.T) {
	id := []byte(`{"ID":"12D3KooWExample","Addresses":["/ip4/127.0.0.1/udp/4001/quic-v1/p2p/12D3KooWExample",
		"/ip4/127.0.0.1/tcp/4001/ws/p2p/12D3KooWExample","/ip4/192.168.1.5/tcp/4001/p2p/12D3KooWExample",
		"/ip4/127.0.0.1/tcp/39999/p2p/12D3KooWExample"]}`)
	if a, err := parseKuboID(id); err != nil || a != "/ip4/127.0.0.1/tcp/39999/p2p/12D3KooWExample" {
		t.Errorf("parseKuboID: %q, %v", a, err)
	}
	if a, err := parseKuboID([]byte(`{"ID":"X","Addresses":["/ip4/127.0.0.1/tcp/5"]}`)); err != nil || a != "/ip4/127.0.0.1/tcp/5/p2p/X" {
		t.Errorf("parseKuboID without /p2p: %q, %v", a, err)
	}
	for _, bad := range []string{`{"ID":"X","Addresses":["/ip4/10.0.0.1/tcp/4001"]}`, `{"ID":"X"}`, `[`} {
		if _, err := parseKuboID([]byte(bad)); !errors.Is(err, ErrKubo) {
			t.Errorf("parseKuboID(%s): %v, want an error", bad, err)
		}
	}
	if c, err := parseKuboAdd([]byte("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi\n")); err != nil ||
		c != "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi" {
		t.Errorf("parseKuboAdd: %q, %v", c, err)
	}
	for _, bad := range []string{"", "a b", "added bafy… file", "short"} {
		if _, err := parseKuboAdd([]byte(bad)); !errors.Is(err, ErrKubo) {
			t.Errorf("parseKuboAdd(%q): %v, want an error", bad, err)
		}
	}
	for a, want := range map[string]bool{"/ip4/127.0.0.1/tcp/1": true, "/ip4/127.3.2.1/tcp/1": true,
		"/ip4/0.0.0.0/tcp/1": false, "/ip6/::1/tcp/1": false, "/dns4/localhost/tcp/1": false, "": false} {
		if loopbackAddr(a) != want {
			t.Errorf("loopbackAddr(%q) = %v", a, !want)
		}
	}
	args := kuboAddArgs("/f", 1<<20)
	for _, want := range []string{"--raw-leaves", "--cid-version=1", "--chunker=size-1048576", "-Q", "/f"} {
		if !slices.Contains(args, want) {
			t.Errorf("add arguments %q lack %s", args, want)
		}
	}
	env := kuboEnv([]string{"HOME=/h", "IPFS_PATH=/old", "IPFS_TELEMETRY=on"}, "/new")
	if !slices.Equal(env, []string{"HOME=/h", "IPFS_PATH=/new", "IPFS_TELEMETRY=off"}) {
		t.Errorf("kuboEnv: %q", env)
	}
}

// writeFakeKubo writes a shell script that answers as ipfs does to the
// commands the helper runs, logging each to $IPFS_PATH/log, and returns its
// path. Its daemon says it is ready, then waits on a FIFO that its shutdown
// writes to.
func writeFakeKubo(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	path := filepath.Join(t.TempDir(), "ipfs")
	script := `#!/bin/sh
echo "$*" >> "$IPFS_PATH/log"
case "$1" in
init) mkfifo "$IPFS_PATH/stop" ;;
config) [ "$2" = show ] && cat "$IPFS_PATH/config.json" ;;
daemon) echo "Initializing daemon..."; echo "Daemon is ready"; cat "$IPFS_PATH/stop" > /dev/null ;;
shutdown) echo > "$IPFS_PATH/stop" ;;
id) echo '{"ID":"12D3KooWFake","Addresses":["/ip4/127.0.0.1/tcp/40001/p2p/12D3KooWFake"]}' ;;
add) echo bafkreifakefakefakefake ;;
cat) printf 'hello, kubo' ;;
get) shift; while [ "$1" != -o ]; do shift; done; echo x > "$2" ;;
esac
exit 0
`
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKuboFake runs the helper against a fake ipfs and checks the commands
// it runs, in order, and what it makes of their output. It says nothing of
// real Kubo, which is not here.
func TestKuboFake(t *testing.T) {
	bin := writeFakeKubo(t)
	dir := t.TempDir()
	var m map[string]any
	json.Unmarshal([]byte(kuboDefaults), &m)
	for _, s := range kuboSettings() {
		setKey(t, m, s.key, s.json)
	}
	b, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := StartKubo(ctx, bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if a, err := n.Addr(ctx); err != nil || a != "/ip4/127.0.0.1/tcp/40001/p2p/12D3KooWFake" {
		t.Errorf("Addr: %q, %v", a, err)
	}
	if err := n.Connect(ctx, "/ip4/127.0.0.1/tcp/40001/p2p/12D3KooWFake"); err != nil {
		t.Errorf("Connect: %v", err)
	}
	if err := n.Connect(ctx, "/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWFake"); !errors.Is(err, ErrKubo) {
		t.Errorf("Connect to a public address: %v, want a refusal", err)
	}
	if c, err := n.Add(ctx, "/some/file", 1<<20); err != nil || c != "bafkreifakefakefakefake" {
		t.Errorf("Add: %q, %v", c, err)
	}
	if _, err := n.Get(ctx, "bafkreifakefakefakefake", filepath.Join(dir, "got")); err != nil {
		t.Errorf("Get: %v", err)
	}
	if _, nb, err := n.Cat(ctx, "bafkreifakefakefakefake"); err != nil || nb != int64(len("hello, kubo")) {
		t.Errorf("Cat: %d bytes, %v", nb, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	log, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"init --profile=test --empty-repo"}
	for _, s := range kuboSettings() {
		want = append(want, "config --json "+s.key+" "+s.json)
	}
	want = append(want, "config show", "daemon --init=false --migrate=false --enable-gc=false", "id",
		"swarm connect /ip4/127.0.0.1/tcp/40001/p2p/12D3KooWFake",
		"add -Q --pin=true --raw-leaves --cid-version=1 --chunker=size-1048576 /some/file",
		"get --progress=false -o "+filepath.Join(dir, "got")+" bafkreifakefakefakefake", "repo gc --quiet",
		"cat bafkreifakefakefakefake", "repo gc --quiet", "shutdown")
	got := strings.Split(strings.TrimSpace(string(log)), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("commands run:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestKuboRefusesAnOpenConfig checks that StartKubo stops before the daemon
// when the configuration read back could reach past the machine.
func TestKuboRefusesAnOpenConfig(t *testing.T) {
	bin := writeFakeKubo(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(kuboDefaults), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := StartKubo(context.Background(), bin, dir)
	if !errors.Is(err, ErrKubo) {
		n.Close()
		t.Fatalf("StartKubo: %v, want a refusal", err)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "log"))
	if strings.Contains(string(log), "daemon") {
		t.Errorf("the daemon was started: %s", log)
	}
}
