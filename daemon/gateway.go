package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/peer-project/peer/gateway"
	"github.com/peer-project/peer/node"
)

const (
	// GatewayFile holds the host:port of the running daemon's HTTP
	// gateway; there is none when the gateway is off.
	GatewayFile = "gateway.addr"
	// DefaultGateway is where the gateway listens unless the settings
	// say otherwise: loopback, port 8089 (or, when another program holds
	// that port, a free one; GatewayFile says which).
	DefaultGateway = "127.0.0.1:8089"
	// GatewayOff in Settings.Gateway turns the gateway off.
	GatewayOff = "off"
)

// GatewayAddr returns where the settings put the gateway: "" when it is
// off, DefaultGateway when they do not say. It refuses an address that is
// not host:port.
func (s Settings) GatewayAddr() (string, error) {
	switch a := strings.TrimSpace(s.Gateway); a {
	case GatewayOff:
		return "", nil
	case "":
		return DefaultGateway, nil
	default:
		if _, _, err := net.SplitHostPort(a); err != nil {
			return "", fmt.Errorf("daemon: gateway address %q: %v (want HOST:PORT, e.g. %s, or %q)", a, err, DefaultGateway, GatewayOff)
		}
		return a, nil
	}
}

// isLoopbackAddr reports whether host:port listens on loopback only: the
// test of checkLoopback (server.go), without its error.
func isLoopbackAddr(addr string) bool { return checkLoopback(addr) == nil }

// listenGateway listens on the gateway's address. The default address
// falls back to a free loopback port when another program holds it (a
// second daemon of another home, say); an address the user chose does not.
func (d *Daemon) listenGateway(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && addr == DefaultGateway && errors.Is(err, syscall.EADDRINUSE) {
		d.log.Warn("the gateway's default port is taken: serving it on a free loopback port (see "+GatewayFile+")", "addr", addr)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("daemon: gateway address %s: %w", addr, explainListen(err, "--gateway (or --gateway off)"))
	}
	return ln, nil
}

// startGateway readies the gateway on ln (Start serves it): on loopback it answers loopback
// Host names only and fetches any root; elsewhere it serves this node's
// shares only, unless fetch.
func (d *Daemon) startGateway(n *node.Node, ln net.Listener, fetch bool) error {
	loopback := isLoopbackAddr(ln.Addr().String())
	g, err := gateway.New(gateway.Config{Node: n, Loopback: loopback, Fetch: loopback || fetch, Logger: d.log.With("part", "gateway")})
	if err != nil {
		return err
	}
	d.gwLn, d.gwAny = ln, loopback || fetch
	d.gw = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return d.base },
	}
	if err := writeFileAtomic(filepath.Join(d.home, GatewayFile), []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("daemon: writing %s: %w", GatewayFile, err)
	}
	return nil
}

// GatewayAddr returns the gateway's host:port, or "" when it is off.
func (d *Daemon) GatewayAddr() string {
	if d.gwLn == nil {
		return ""
	}
	return d.gwLn.Addr().String()
}

// GatewayFetches reports whether the gateway serves any root, fetched from
// the swarm (on loopback, or with GatewayFetch), not only this node's
// shares.
func (d *Daemon) GatewayFetches() bool { return d.gwAny }

// GatewayURL returns the URL of root on the gateway of the daemon that
// runs for home (http://HOST:PORT/ipfs/ROOT/), or "" when none runs one.
// It reads home's GatewayFile and does not check that a daemon answers.
func GatewayURL(home, root string) string {
	b, err := os.ReadFile(filepath.Join(home, GatewayFile))
	if err != nil {
		return ""
	}
	return urlOf(strings.TrimSpace(string(b)), root)
}

// GatewayURL returns the URL of root on this daemon's gateway (root ""
// gives the gateway's /ipfs/), or "" when it is off.
func (d *Daemon) GatewayURL(root string) string {
	if d.gwLn == nil {
		return ""
	}
	return urlOf(d.GatewayAddr(), root)
}

// ShareURL returns the gateway URL of a share, given u, the gateway URL
// of its root (GatewayURL): a folder's as it is; a file's with
// ?filename= its name, so that the gateway types it by its extension and
// a browser saves it under that name (a file root alone names no file).
// It returns "" when u is "".
func ShareURL(u string, si ShareInfo) string {
	if u == "" || si.Dir || si.Name == "" {
		return u
	}
	return strings.TrimSuffix(u, "/") + "?filename=" + url.QueryEscape(si.Name)
}

func urlOf(addr, root string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1" // listening everywhere: this machine's own name for it
	}
	u := "http://" + net.JoinHostPort(host, port) + "/ipfs/"
	if root != "" {
		u += root + "/"
	}
	return u
}

// closeGateway stops the gateway and removes GatewayFile if it is ours.
func (d *Daemon) closeGateway(ctx context.Context) error {
	if d.gw == nil {
		return nil
	}
	err := d.gw.Shutdown(ctx)
	f := filepath.Join(d.home, GatewayFile)
	if b, rerr := os.ReadFile(f); rerr == nil && strings.TrimSpace(string(b)) == d.GatewayAddr() {
		os.Remove(f)
	}
	return err
}
