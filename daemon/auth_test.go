package daemon

import (
	"context"
	"encoding/hex"
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

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/peer-project/peer/node"
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

// FuzzAuthorized: the daemon reads the Authorization header of anyone who
// connects. Whatever it holds, checking it never panics, and only the proof
// made with the token for this address (or the token itself) is accepted.
func FuzzAuthorized(f *testing.F) {
	const token, addr = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "127.0.0.1:5001"
	nc, ns := make([]byte, authNonceLen), make([]byte, authNonceLen)
	for i := range nc {
		nc[i], ns[i] = byte(i), byte(255-i)
	}
	good := clientAuth(token, nc, ns, addr)
	f.Add(good)
	f.Add("Bearer " + token)
	f.Add("Bearer ")
	f.Add(AuthScheme + " ..")
	f.Add(AuthScheme + " " + strings.Repeat("zz", authNonceLen) + "." + strings.Repeat("00", authNonceLen) + ".00")
	f.Fuzz(func(t *testing.T, h string) {
		ok := authorized(h, token, addr)
		if ok && h != good && h != "Bearer "+token {
			// Another header can only be accepted if it is the same
			// proof spelled in other hex case.
			if !strings.EqualFold(h, good) {
				t.Fatalf("accepted %q", h)
			}
		}
		if authorized(h, token, "127.0.0.1:5002") && !strings.HasPrefix(h, "Bearer ") {
			t.Fatalf("a proof for another address accepted: %q", h)
		}
	})
}

// TestAuthRoundTrip: the daemon's answer passes the client's checks only
// for the address it was made for, the identity that signed it and the
// token it was made with; the proof the client then sends opens the API
// at that address only.
func TestAuthRoundTrip(t *testing.T) {
	home := t.TempDir()
	id, err := node.IdentityOf(home)
	if err != nil {
		t.Fatal(err)
	}
	key, err := loadKeyForTest(home)
	if err != nil {
		t.Fatal(err)
	}
	other, err := node.IdentityOf(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const token, addr = "secret", "127.0.0.1:5001"
	nc, _ := newNonce()
	a, err := answerAuth(key, token, authHello{Nonce: hex.EncodeToString(nc)}, addr)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := checkAnswer(a, id, token, nc, addr)
	if err != nil {
		t.Fatalf("the daemon's own answer: %v", err)
	}
	if _, err := checkAnswer(a, id, token, nc, "127.0.0.1:5002"); !errors.Is(err, ErrImpostor) {
		t.Errorf("an answer made at another address: %v, want ErrImpostor", err)
	}
	if _, err := checkAnswer(a, other, token, nc, addr); !errors.Is(err, ErrImpostor) {
		t.Errorf("an answer signed by another node: %v, want ErrImpostor", err)
	}
	if _, err := checkAnswer(a, id, "another token", nc, addr); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("an answer made with another token: %v, want ErrUnauthorized", err)
	}
	h := clientAuth(token, nc, ns, addr)
	if !authorized(h, token, addr) || authorized(h, token, "127.0.0.1:5002") || authorized(h, "another token", addr) || strings.Contains(h, token) {
		t.Errorf("the client's proof %q", h)
	}
	if _, err := answerAuth(key, token, authHello{Nonce: "00"}, addr); !errors.Is(err, ErrBadRequest) {
		t.Errorf("a short nonce: %v", err)
	}
}

// loadKeyForTest reads the node's identity key from home, as node does.
func loadKeyForTest(home string) (crypto.PrivKey, error) {
	b, err := os.ReadFile(filepath.Join(home, node.KeyFile))
	if err != nil {
		return nil, err
	}
	return crypto.UnmarshalPrivateKey(b)
}
