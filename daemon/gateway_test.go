package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startGatewayDaemon starts a daemon whose gateway listens on addr.
func startGatewayDaemon(t *testing.T, home, addr string) *Daemon {
	t.Helper()
	s := DefaultSettings()
	s.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	s.NoMDNS = true
	cfg, err := s.NodeConfig(home, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoSync = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := Start(ctx, Options{Home: home, Node: cfg, Gateway: addr, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func httpGet(t *testing.T, method, u, host string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// TestGateway: the daemon serves its gateway where the settings say,
// names it in gateway.addr for `peer share`, refuses other Hosts and every
// method that is not a read, and removes gateway.addr when it stops.
func TestGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	d := startGatewayDaemon(t, home, "127.0.0.1:0")
	if !d.GatewayFetches() {
		t.Error("a loopback gateway should serve any root")
	}
	data := []byte(strings.Repeat("through the gateway ", 5000))
	src := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	c := dial(t, ctx, home)
	sh, err := c.Share(ctx, ShareRequest{Path: src})
	if err != nil {
		t.Fatal(err)
	}
	u := GatewayURL(home, sh.Root)
	if want := "http://" + d.GatewayAddr() + "/ipfs/" + sh.Root + "/"; u != want || d.GatewayURL(sh.Root) != want {
		t.Fatalf("GatewayURL = %q and %q, want %q", u, d.GatewayURL(sh.Root), want)
	}
	u = strings.TrimSuffix(u, "/") // a file
	if code, body := httpGet(t, "GET", u, ""); code != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET %s = %d, %d bytes", u, code, len(body))
	}
	if code, _ := httpGet(t, "GET", u, "evil.example"); code != http.StatusForbidden {
		t.Fatalf("Host evil.example = %d, want 403", code)
	}
	for _, m := range []string{"POST", "PUT", "DELETE"} {
		if code, _ := httpGet(t, m, u, ""); code != http.StatusMethodNotAllowed {
			t.Fatalf("%s = %d, want 405", m, code)
		}
	}
	// The API is not served on the gateway's port.
	if code, _ := httpGet(t, "GET", "http://"+d.GatewayAddr()+"/v1/shares", ""); code != http.StatusNotFound {
		t.Fatalf("/v1/shares on the gateway = %d, want 404", code)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, GatewayFile)); !os.IsNotExist(err) {
		t.Fatalf("%s after Close: %v", GatewayFile, err)
	}
	if GatewayURL(home, sh.Root) != "" {
		t.Fatal("GatewayURL names a gateway after Close")
	}
}

// TestGatewayOff: "off" runs no gateway and writes no gateway.addr.
func TestGatewayOff(t *testing.T) {
	s := DefaultSettings()
	if a, err := s.GatewayAddr(); err != nil || a != DefaultGateway {
		t.Fatalf("default GatewayAddr = %q, %v; want %s", a, err, DefaultGateway)
	}
	s.Gateway = ""
	if a, err := s.GatewayAddr(); err != nil || a != DefaultGateway {
		t.Fatalf("empty GatewayAddr = %q, %v; want %s", a, err, DefaultGateway)
	}
	s.Gateway = "8080"
	if _, err := s.GatewayAddr(); err == nil || !strings.Contains(err.Error(), "HOST:PORT") {
		t.Fatalf("GatewayAddr of a bare port = %v, want an error that shows HOST:PORT", err)
	}
	s.Gateway = GatewayOff
	a, err := s.GatewayAddr()
	if err != nil || a != "" {
		t.Fatalf("off: %q, %v", a, err)
	}
	home := t.TempDir()
	d := startGatewayDaemon(t, home, a)
	if d.GatewayAddr() != "" || d.GatewayURL("x") != "" {
		t.Fatalf("gateway off serves at %q", d.GatewayAddr())
	}
	if _, err := os.Stat(filepath.Join(home, GatewayFile)); !os.IsNotExist(err) {
		t.Fatalf("%s with the gateway off: %v", GatewayFile, err)
	}
}

// TestGatewayDefaultPortTaken: when another program holds the default
// port, the daemon serves its gateway on a free one; a port the user chose
// is not replaced.
func TestGatewayDefaultPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", DefaultGateway)
	if err == nil {
		defer ln.Close()
	} // else another program holds it already
	d := startGatewayDaemon(t, t.TempDir(), DefaultGateway)
	if a := d.GatewayAddr(); a == "" || a == DefaultGateway {
		t.Fatalf("gateway at %q, want a free port", a)
	}
	taken := d.GatewayAddr()
	s := DefaultSettings()
	s.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	s.NoMDNS = true
	cfg, err := s.NodeConfig(t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Start(context.Background(), Options{Home: cfg.Home, Node: cfg, Gateway: taken, Logger: cfg.Logger})
	if err == nil || !strings.Contains(err.Error(), "--gateway") {
		t.Fatalf("a gateway address in use = %v, want an error naming --gateway", err)
	}
}

func TestIsLoopbackAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8089": true, "[::1]:1": true, "localhost:80": true,
		"0.0.0.0:8089": false, "[::]:1": false, "192.0.2.1:80": false, "bad": false,
	} {
		if got := isLoopbackAddr(addr); got != want {
			t.Errorf("isLoopbackAddr(%q) = %v, want %v", addr, got, want)
		}
	}
}
