package daemon

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// squatter listens at addr (the port of a daemon that stopped without
// cleaning up) and records every request it gets, whole; handler answers
// them.
type squatter struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []string
}

func newSquatter(t *testing.T, addr string, handler http.Handler) *squatter {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("taking the daemon's port %s: %v", addr, err)
	}
	s := &squatter{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		dump, _ := httputil.DumpRequest(r, false)
		s.mu.Lock()
		s.got = append(s.got, string(dump)+string(b))
		s.mu.Unlock()
		handler.ServeHTTP(w, r)
	}))
	s.srv.Listener.Close()
	s.srv.Listener = ln
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	return s
}

// leaked reports the first request that holds secret, if one does.
func (s *squatter) leaked(secret string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.got {
		if strings.Contains(r, secret) {
			return r
		}
	}
	return ""
}

func readToken(t *testing.T, home string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home, TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestDialRefusesSquatter: a daemon stops without cleaning up (api.addr
// stays) and another program takes its port. The client must find out that
// it is not the daemon before it sends anything, and say what to do; the
// token never reaches it. A cleverer squatter that relays to the daemon,
// started again on another port, gets nothing the daemon accepts either,
// and the token it could have caught before is no longer the daemon's.
func TestDialRefusesSquatter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	d := startDaemon(t, home)
	if _, err := Dial(ctx, home); err != nil {
		t.Fatal(err)
	}
	stale, tok := d.APIAddr(), readToken(t, home)
	d.Close()
	// What a crash leaves: api.addr names the port nobody holds now.
	if err := os.WriteFile(filepath.Join(home, AddrFile), []byte(stale+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A squatter that says yes to everything, as the daemon would.
	yes := newSquatter(t, stale, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf","addrs":[],"nonce":"00","proof":"00","sig":"00"}`)
	}))
	c, err := Dial(ctx, home)
	if err == nil {
		c.Status(ctx)
	}
	if !errors.Is(err, ErrImpostor) || !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), "peer daemon") || !strings.Contains(err.Error(), stale) {
		t.Errorf("Dial with a squatter at %s: %v; want ErrImpostor saying to start the daemon", stale, err)
	}
	if r := yes.leaked(tok); r != "" {
		t.Errorf("the squatter caught the token:\n%s", r)
	}

	// The daemon starts again (api.addr is the squatter's: it is not the
	// daemon, so the start goes on), on another port, with a new token:
	// the old one no longer opens it.
	d = startDaemon(t, home)
	fresh := readToken(t, home)
	if fresh == tok {
		t.Fatal("the daemon kept its token across a restart")
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+d.APIAddr()+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old token at the new daemon: %v, %v; want 401", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, err := Dial(ctx, home); err != nil {
		t.Fatalf("Dial of the new daemon: %v", err)
	}

	// A relay: a client that read the stale address reaches a squatter
	// that forwards everything to the real daemon. The daemon's answer is
	// bound to its own address, so the client refuses it, and nothing that
	// crosses the relay opens the daemon.
	yes.srv.Close()
	target, _ := url.Parse("http://" + d.APIAddr())
	relay := newSquatter(t, stale, httputil.NewSingleHostReverseProxy(target))
	if err := os.WriteFile(filepath.Join(home, AddrFile), []byte(stale+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(ctx, home); !errors.Is(err, ErrImpostor) {
		t.Errorf("Dial through a relay to the daemon: %v; want ErrImpostor", err)
	}
	if r := relay.leaked(fresh); r != "" {
		t.Errorf("the relay caught the token:\n%s", r)
	}
	relay.mu.Lock()
	got := append([]string(nil), relay.got...)
	relay.mu.Unlock()
	for _, r := range got {
		if strings.Contains(r, "Authorization:") {
			t.Errorf("a request with credentials crossed the relay:\n%s", r)
		}
	}
}
