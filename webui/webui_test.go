package webui

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is a Backend that records what it is asked to change.
type fake struct {
	mu     sync.Mutex
	calls  []string
	shares []Share
	limits Limits
}

func (f *fake) record(c string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
}

func (f *fake) changes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fake) Overview(context.Context) (Overview, error) {
	return Overview{ID: "12D3KooWTestPeerIDxxxxxxxxxxxxxxxxxxxxxxxxx", Version: "test", DownloadDir: "/tmp",
		Reach: Reach{State: "private", HolePunching: true}, Limits: f.limits}, nil
}
func (f *fake) Peers(context.Context) ([]Peer, error) {
	return []Peer{{ID: "12D3KooWPeerOne", Direct: true, Addrs: []string{"/ip4/127.0.0.1/tcp/1"}},
		{ID: "12D3KooWPeerTwo", Relays: []string{"12D3KooWRelay"}, Limited: true}}, nil
}
func (f *fake) Shares(context.Context) ([]Share, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Share(nil), f.shares...), nil
}
func (f *fake) Share(_ context.Context, path string) (Share, error) {
	f.record("share " + path)
	if strings.HasSuffix(path, "missing") {
		return Share{}, fmt.Errorf("%w: share: %s does not exist", ErrNotFound, path)
	}
	s := Share{Root: "bafyroot" + fmt.Sprint(len(f.shares)), Name: path[strings.LastIndex(path, "/")+1:], Path: path, Ticket: "ticket", Link: "http://127.0.0.1:1/ipfs/x/"}
	f.mu.Lock()
	f.shares = append(f.shares, s)
	f.mu.Unlock()
	return s, nil
}
func (f *fake) Unshare(_ context.Context, root string) error { f.record("unshare " + root); return nil }
func (f *fake) Fetch(_ context.Context, target, dir string) error {
	f.record("fetch " + target + " " + dir)
	return nil
}
func (f *fake) Transfers() []Transfer {
	return []Transfer{{ID: 1, Target: "bafytarget", Dest: "/tmp/x", Bytes: 50, Total: 100, State: Running}}
}
func (f *fake) Bandwidth() []Sample {
	now := time.Now()
	return []Sample{{At: now.Add(-2 * time.Second), Up: 1000, Down: 5000}, {At: now.Add(-time.Second), Up: 2000, Down: 7000}}
}
func (f *fake) SetLimits(_ context.Context, l Limits) error {
	f.record(fmt.Sprintf("limits %+v", l))
	f.limits = l
	return nil
}

type harness struct {
	t    *testing.T
	ui   *UI
	b    *fake
	srv  *httptest.Server
	host string // 127.0.0.1:PORT
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	b := &fake{}
	ui, err := New(Config{Backend: b, Cookie: "peer_ui_test", Tick: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ui)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &harness{t: t, ui: ui, b: b, srv: srv, host: u.Host}
}

// do sends a request; it follows no redirect.
func (h *harness) do(method, path string, hdr map[string]string, form url.Values) (*http.Response, string) {
	h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.srv.URL+path, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, string(b)
}

// login signs in and returns the session cookie and the form token.
func (h *harness) login() (cookie, csrf string) {
	h.t.Helper()
	resp, _ := h.do("GET", "/ui/?token="+h.ui.NewLogin(), nil, nil)
	if resp.StatusCode != http.StatusSeeOther {
		h.t.Fatalf("login: %s", resp.Status)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "peer_ui_test" {
			cookie = c.Name + "=" + c.Value
		}
	}
	_, body := h.do("GET", "/ui/shares", map[string]string{"Cookie": cookie}, nil)
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		h.t.Fatalf("no form token in the shares page:\n%s", body)
	}
	return cookie, m[1]
}

func checkHeaders(t *testing.T, what string, resp *http.Response) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want)
		}
	}
	if !strings.Contains(CSP, "frame-ancestors 'none'") || strings.Contains(CSP, "unsafe-inline") {
		t.Errorf("CSP %q: want frame-ancestors 'none' and nothing inline", CSP)
	}
}

// TestLogin: a login token signs a browser in once: an HttpOnly,
// SameSite=Strict cookie on Path=/ and a redirect to the URL without the
// token; the same token again is refused (403) and sets nothing.
func TestLogin(t *testing.T) {
	h := newHarness(t)
	tok := h.ui.NewLogin()
	resp, _ := h.do("GET", "/ui/transfers?token="+tok+"&x=1", nil, nil)
	checkHeaders(t, "login", resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login = %s, want 303", resp.Status)
	}
	if loc := resp.Header.Get("Location"); loc != "/ui/transfers?x=1" {
		t.Errorf("login redirects to %q, want the same URL without the token", loc)
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"peer_ui_test=", "Path=/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	cookie := strings.SplitN(sc, ";", 2)[0]
	if resp, _ := h.do("GET", "/ui/peers", map[string]string{"Cookie": cookie}, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("with the cookie: %s, want 200", resp.Status)
	}

	resp, body := h.do("GET", "/ui/?token="+tok, nil, nil)
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Set-Cookie") != "" {
		t.Errorf("a replayed token: %s, Set-Cookie %q; want 403 and no cookie", resp.Status, resp.Header.Get("Set-Cookie"))
	}
	if !strings.Contains(body, "peer ui") {
		t.Errorf("the refusal does not say what to do:\n%s", body)
	}
	if resp, _ := h.do("GET", "/ui/?token=00"+tok[2:], nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a made-up token: %s, want 403", resp.Status)
	}
	// A cookie this UI did not make is no session.
	forged := "peer_ui_test=" + strings.Repeat("ab", secretLen)
	if resp, _ := h.do("GET", "/ui/shares", map[string]string{"Cookie": forged}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forged cookie: %s, want 401", resp.Status)
	}
}

// TestLoginExpires: an unused token ends after LoginTTL; the oldest of too
// many goes first.
func TestLoginExpires(t *testing.T) {
	now := time.Unix(1e9, 0)
	ui, err := New(Config{Backend: &fake{}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	tok := ui.NewLogin()
	now = now.Add(LoginTTL)
	if _, ok := ui.redeem(tok); ok {
		t.Error("a token was good after LoginTTL")
	}
	first := ui.NewLogin()
	for range maxLogins {
		now = now.Add(time.Second)
		ui.NewLogin()
	}
	if _, ok := ui.redeem(first); ok {
		t.Errorf("%d logins kept; want at most %d", maxLogins+1, maxLogins)
	}
}

// TestRefusals: each request that must be refused gets its status, the
// security headers, and changes nothing.
func TestRefusals(t *testing.T) {
	h := newHarness(t)
	cookie, csrf := h.login()
	origin := "http://" + h.host
	form := func(kv ...string) url.Values {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	_, port, _ := strings.Cut(h.host, ":")
	for _, tc := range []struct {
		name   string
		method string
		path   string
		hdr    map[string]string
		form   url.Values
		want   int
	}{
		{"Host evil.example", "GET", "/ui/shares", map[string]string{"Host": "evil.example:" + port, "Cookie": cookie}, nil, 403},
		{"Host evil.example, no port", "GET", "/ui/shares", map[string]string{"Host": "evil.example", "Cookie": cookie}, nil, 403},
		{"Host evil.example POST", "POST", "/ui/shares/add", map[string]string{"Host": "evil.example:" + port, "Cookie": cookie, "Origin": "http://evil.example:" + port}, form("csrf", csrf, "path", "/etc"), 403},
		{"Host of another port", "GET", "/ui/shares", map[string]string{"Host": "127.0.0.1:1", "Cookie": cookie}, nil, 403},
		{"Host evil.example, login", "GET", "/ui/?token=" + h.ui.NewLogin(), map[string]string{"Host": "evil.example:" + port}, nil, 403},
		{"page without cookie", "GET", "/ui/shares", nil, nil, 401},
		{"events without cookie", "GET", "/ui/events", nil, nil, 401},
		{"POST without cookie", "POST", "/ui/shares/add", map[string]string{"Origin": origin}, form("csrf", csrf, "path", "/etc"), 401},
		{"POST with cookie, cross Origin", "POST", "/ui/shares/add", map[string]string{"Cookie": cookie, "Origin": "http://evil.example"}, form("csrf", csrf, "path", "/etc"), 403},
		{"POST with cookie, Origin of another port", "POST", "/ui/shares/remove", map[string]string{"Cookie": cookie, "Origin": "http://127.0.0.1:1"}, form("csrf", csrf, "root", "bafy"), 403},
		{"POST with cookie, Origin null", "POST", "/ui/network/limits", map[string]string{"Cookie": cookie, "Origin": "null"}, form("csrf", csrf, "upload", "1M"), 403},
		{"POST with cookie, cross Referer", "POST", "/ui/shares/add", map[string]string{"Cookie": cookie, "Referer": "http://evil.example/ui/shares"}, form("csrf", csrf, "path", "/etc"), 403},
		{"POST with cookie, no Origin or Referer", "POST", "/ui/shares/add", map[string]string{"Cookie": cookie}, form("csrf", csrf, "path", "/etc"), 403},
		{"POST with cookie, no form token", "POST", "/ui/shares/add", map[string]string{"Cookie": cookie, "Origin": origin}, form("path", "/etc"), 403},
		{"POST with cookie, wrong form token", "POST", "/ui/transfers/fetch", map[string]string{"Cookie": cookie, "Origin": origin}, form("csrf", strings.Repeat("0", len(csrf)), "target", "bafy", "dir", "/tmp"), 403},
		{"path with ..", "GET", "/ui/static/../shares", map[string]string{"Cookie": cookie}, nil, 400},
		{"path with encoded ..", "GET", "/ui/static/%2e%2e/shares", map[string]string{"Cookie": cookie}, nil, 400},
		{"path with NUL", "GET", "/ui/shares%00", map[string]string{"Cookie": cookie}, nil, 400},
		{"POST to a path with ..", "POST", "/ui/x/../shares/add", map[string]string{"Cookie": cookie, "Origin": origin}, form("csrf", csrf, "path", "/etc"), 400},
		{"share a relative path", "POST", "/ui/shares/add", map[string]string{"Cookie": cookie, "Origin": origin}, form("csrf", csrf, "path", "etc/passwd"), 400},
		{"share a path with ..", "POST", "/ui/shares/add", map[string]string{"Cookie": cookie, "Origin": origin}, form("csrf", csrf, "path", "/tmp/../etc"), 400},
		{"share a path with NUL", "POST", "/ui/shares/add", map[string]string{"Cookie": cookie, "Origin": origin}, form("csrf", csrf, "path", "/tmp/a\x00b"), 400},
		{"fetch into a relative folder", "POST", "/ui/transfers/fetch", map[string]string{"Cookie": cookie, "Origin": origin}, form("csrf", csrf, "target", "bafy", "dir", "tmp"), 400},
		{"a rate that is not one", "POST", "/ui/network/limits", map[string]string{"Cookie": cookie, "Origin": origin}, form("csrf", csrf, "upload", "1M", "download", "fast"), 400},
		{"a negative rate", "POST", "/ui/network/limits", map[string]string{"Cookie": cookie, "Origin": origin}, form("csrf", csrf, "upload", "-5"), 400},
		{"GET of a POST endpoint", "GET", "/ui/shares/add?path=/etc", map[string]string{"Cookie": cookie}, nil, 405},
		{"static file, POST", "POST", "/ui/static/ui.js", map[string]string{"Origin": origin}, form(), 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(tc.method, tc.path, tc.hdr, tc.form)
			checkHeaders(t, tc.name, resp)
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %s, want %d\n%s", tc.method, tc.path, resp.Status, tc.want, body)
			}
			if sc := resp.Header.Get("Set-Cookie"); sc != "" {
				t.Errorf("a refusal set a cookie: %q", sc)
			}
			if c := h.b.changes(); len(c) != 0 {
				t.Errorf("the backend was asked to change something: %q", c)
			}
		})
	}
}

// TestForms: the forms work without JavaScript: a POST from the UI's own
// page is answered with a redirect to a page that shows the result, and a
// mistake with the page again, the error and what was typed.
func TestForms(t *testing.T) {
	h := newHarness(t)
	cookie, csrf := h.login()
	hdr := map[string]string{"Cookie": cookie, "Origin": "http://" + h.host}
	resp, _ := h.do("POST", "/ui/shares/add", hdr, url.Values{"csrf": {csrf}, "path": {"/srv/film.mkv"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("share: %s", resp.Status)
	}
	_, body := h.do("GET", resp.Header.Get("Location"), map[string]string{"Cookie": cookie}, nil)
	for _, want := range []string{"Shared film.mkv", `value="ticket"`, `href="http://127.0.0.1:1/ipfs/x/"`, "Unshare"} {
		if !strings.Contains(body, want) {
			t.Errorf("shares page lacks %q:\n%s", want, body)
		}
	}
	h.b.mu.Lock()
	h.b.shares = append(h.b.shares, Share{Root: "bafystale", Name: "draft.txt", Path: "/srv/draft.txt", Stale: true})
	h.b.mu.Unlock()
	_, body = h.do("GET", "/ui/shares", map[string]string{"Cookie": cookie}, nil)
	if !regexp.MustCompile(`<tr data-root="bafystale" class="stale">[\s\S]*?<span class="badge"[^>]*>stale</span>`).MatchString(body) ||
		strings.Count(body, `class="stale"`) != 1 {
		t.Errorf("the stale share is not marked, or not it alone:\n%s", body)
	}
	resp, body = h.do("POST", "/ui/shares/add", hdr, url.Values{"csrf": {csrf}, "path": {"/srv/missing"}})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "/srv/missing does not exist") || !strings.Contains(body, `value="/srv/missing"`) {
		t.Errorf("share of a missing path: %s; want 404, the error and the path kept\n%s", resp.Status, body)
	}
	// A Referer of the UI stands for a missing Origin.
	resp, _ = h.do("POST", "/ui/network/limits", map[string]string{"Cookie": cookie, "Referer": "http://" + h.host + "/ui/network"},
		url.Values{"csrf": {csrf}, "upload": {"1.5MiB"}, "download": {"10M"}, "peer_upload": {""}, "peer_download": {"0"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("limits: %s", resp.Status)
	}
	_, body = h.do("GET", "/ui/network", map[string]string{"Cookie": cookie}, nil)
	if !strings.Contains(body, `value="1572864"`) && !strings.Contains(body, `value="1536KiB"`) {
		t.Errorf("the caps form does not show 1.5 MiB:\n%s", body)
	}
	resp, _ = h.do("POST", "/ui/transfers/fetch", hdr, url.Values{"csrf": {csrf}, "target": {"bafyx"}, "dir": {"/tmp"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("fetch: %s", resp.Status)
	}
	want := []string{"share /srv/film.mkv", "share /srv/missing", "limits {UploadRate:1572864 DownloadRate:10485760 PeerUploadRate:0 PeerDownloadRate:0}", "fetch bafyx /tmp"}
	if got := h.b.changes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("backend calls %q, want %q", got, want)
	}
	for _, p := range []string{"/ui/transfers", "/ui/peers", "/ui/network"} {
		resp, body := h.do("GET", p, map[string]string{"Cookie": cookie}, nil)
		if resp.StatusCode != 200 || strings.Contains(body, "<script>") || strings.Contains(body, " style=") {
			t.Errorf("%s: %s; want 200, no inline script or style", p, resp.Status)
		}
	}
	if _, body := h.do("GET", "/ui/peers", map[string]string{"Cookie": cookie}, nil); !strings.Contains(body, "relayed") || !strings.Contains(body, "12D3KooW…yRelay") && !strings.Contains(body, "12D3KooWRelay") {
		t.Errorf("peers page does not show the relayed peer and its relay:\n%s", body)
	}
}

// TestEvents: /ui/events streams the transfers and the bandwidth.
func TestEvents(t *testing.T) {
	h := newHarness(t)
	cookie, _ := h.login()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.srv.URL+"/ui/events", nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	seen := map[string]bool{}
	for sc.Scan() && len(seen) < 2 {
		if ev, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			seen[ev] = true
			sc.Scan()
			if ev == "transfers" && !strings.Contains(sc.Text(), `"percent":50`) {
				t.Errorf("transfers event %q: want 50%%", sc.Text())
			}
		}
	}
	if !seen["transfers"] || !seen["bandwidth"] {
		t.Errorf("events seen: %v", seen)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "0": 0, "1000": 1000, "500K": 500 << 10, "500 kb": 500e3, "2KiB": 2048, "1.5MiB": 1572864, "10M/s": 10 << 20, "10MB/s": 10e6, "1G": 1 << 30, "1GB": 1e9,
	} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "fast", "1X", "1e400", "NaN", "1..2M", "9999999P"} {
		if got, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error", in, got)
		}
	}
	for _, v := range []int64{1, 1000, 1024, 1536 << 10, 10e6, 3 << 30, 123457} {
		if got, err := ParseRate(formatCap(v)); err != nil || got != v {
			t.Errorf("ParseRate(formatCap(%d)) = %d, %v", v, got, err)
		}
	}
}

// FuzzParseRate: ParseRate never panics, takes only rates from 0 to 2^50,
// and reads back exactly what formatCap writes of what it took.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"", "0", "500K", "1.5MiB", "10M/s", "  2 gib ", "-1", "1e9", "NaN", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseRate(s)
		if err != nil {
			return
		}
		if v < 0 || v > 1<<50 {
			t.Fatalf("ParseRate(%q) = %d: out of range", s, v)
		}
		if back, err := ParseRate(formatCap(v)); err != nil || back != v {
			t.Fatalf("ParseRate(formatCap(%d)) = %d, %v", v, back, err)
		}
	})
}
