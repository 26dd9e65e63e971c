package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/peer-project/peer/webui"
)

// uiBrowser is an HTTP client that keeps cookies, as a browser does, and
// follows no redirect.
type uiBrowser struct {
	t    *testing.T
	c    *http.Client
	base string // http://127.0.0.1:PORT
}

func newUIBrowser(t *testing.T, d *Daemon) *uiBrowser {
	jar, _ := cookiejar.New(nil)
	return &uiBrowser{t: t, base: "http://" + d.APIAddr(), c: &http.Client{
		Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (b *uiBrowser) do(method, u string, form url.Values, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	if strings.HasPrefix(u, "/") {
		u = b.base + u
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", b.base)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// webuiTransfer is a transfer in /ui/events.
type webuiTransfer struct {
	State   string `json:"state"`
	Percent int    `json:"percent"`
	Bytes   int64  `json:"bytes"`
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// TestUI: `peer ui`'s login link (from the API, with the token) signs a
// browser in once, with a cookie named after the daemon's port; shares
// made through the UI's form are the daemon's, with a ticket and a
// gateway link; a ticket pasted into another daemon's UI is fetched there,
// to 100%; caps changed in the UI are the node's.
func TestUI(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	homeA, homeB := t.TempDir(), t.TempDir()
	a := startGatewayDaemon(t, homeA, "127.0.0.1:0")
	b := startDaemon(t, homeB)
	ca := dial(t, ctx, homeA)
	login, err := ca.UILogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(login, "http://"+a.APIAddr()+"/ui/?token=") {
		t.Fatalf("login URL %q", login)
	}
	ba := newUIBrowser(t, a)
	resp, _ := ba.do("GET", login, nil, nil)
	_, port, _ := strings.Cut(a.APIAddr(), ":")
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(resp.Header.Get("Set-Cookie"), "peer_ui_"+port+"=") {
		t.Fatalf("login: %s, Set-Cookie %q", resp.Status, resp.Header.Get("Set-Cookie"))
	}
	if resp, _ := newUIBrowser(t, a).do("GET", login, nil, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the login link used twice: %s, want 403", resp.Status)
	}
	_, page := ba.do("GET", "/ui/shares", nil, nil)
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token:\n%s", page)
	}
	csrf := m[1]

	data := []byte(strings.Repeat("through the web UI ", 60000))
	src := filepath.Join(t.TempDir(), "ui.txt")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, body := ba.do("POST", "/ui/shares/add", url.Values{"csrf": {csrf}, "path": {src}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("share through the UI: %s\n%s", resp.Status, body)
	}
	shares, err := ca.Shares(ctx)
	if err != nil || len(shares) != 1 || shares[0].Path != src {
		t.Fatalf("shares after the UI's form: %+v, %v", shares, err)
	}
	sh := shares[0]
	_, page = ba.do("GET", resp.Header.Get("Location"), nil, nil)
	link := a.GatewayURL(sh.Root)
	link = strings.TrimSuffix(link, "/") + "?filename=ui.txt" // the file's name, for its type and a download's
	for _, want := range []string{"Shared ui.txt", sh.Ticket, link} {
		if !strings.Contains(page, want) {
			t.Errorf("the shares page lacks %q", want)
		}
	}
	if code, got := httpGet(t, "GET", link, ""); code != 200 || string(got) != string(data) {
		t.Errorf("the share's gateway link: %d, %d bytes", code, len(got))
	}

	// Fetch the ticket through B's UI.
	cb := dial(t, ctx, homeB)
	loginB, err := cb.UILogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bb := newUIBrowser(t, b)
	bb.do("GET", loginB, nil, nil)
	_, page = bb.do("GET", "/ui/transfers", nil, nil)
	csrfB := csrfRE.FindStringSubmatch(page)[1]
	dir := t.TempDir()
	if resp, body := bb.do("POST", "/ui/transfers/fetch", url.Values{"csrf": {csrfB}, "target": {sh.Ticket}, "dir": {dir}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("fetch through the UI: %s\n%s", resp.Status, body)
	}
	// Follow it on the UI's event stream until it ends; then the page,
	// as a reload without JavaScript shows it, says 100%.
	ereq, _ := http.NewRequestWithContext(ctx, "GET", bb.base+"/ui/events", nil)
	eresp, err := bb.c.Do(ereq)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(eresp.Body)
	var last []webuiTransfer
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: [")
		if !ok {
			continue
		}
		if err := json.Unmarshal([]byte("["+line), &last); err != nil {
			t.Fatal(err)
		}
		if len(last) == 1 && last[0].State != webui.Running {
			break
		}
	}
	eresp.Body.Close()
	if len(last) != 1 || last[0].State != webui.Done || last[0].Percent != 100 || last[0].Bytes != int64(len(data)) {
		t.Fatalf("the fetch's last event: %+v (stream: %v)", last, sc.Err())
	}
	_, page = bb.do("GET", "/ui/transfers", nil, nil)
	if !strings.Contains(page, `value="100"`) || !strings.Contains(page, "100%") || !strings.Contains(page, ">done<") {
		t.Errorf("a done fetch does not show 100%%:\n%s", page)
	}
	if got, err := os.ReadFile(filepath.Join(dir, sh.Root)); err != nil || string(got) != string(data) {
		t.Fatalf("the fetched file: %d bytes, %v", len(got), err)
	}

	// Caps changed in the UI are the node's, and Status says so.
	if resp, body := ba.do("POST", "/ui/network/limits", url.Values{"csrf": {csrf}, "upload": {"2M"}, "peer_download": {"512KiB"}}, nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("caps: %s\n%s", resp.Status, body)
	}
	st, err := ca.Status(ctx)
	if err != nil || st.Limits.UploadRate != 2<<20 || st.Limits.PeerDownloadRate != 512<<10 || st.Limits.DownloadRate != 0 {
		t.Fatalf("status after the caps form: %+v, %v", st.Limits, err)
	}
	// One daemon's cookie is not a session at the other's.
	jarA := ba.c.Jar.Cookies(&url.URL{Scheme: "http", Host: a.APIAddr()})
	other := newUIBrowser(t, b)
	for _, c := range jarA {
		if strings.HasPrefix(c.Name, "peer_ui_") {
			other.c.Jar.SetCookies(&url.URL{Scheme: "http", Host: b.APIAddr()}, []*http.Cookie{{Name: "peer_ui_" + strings.Split(b.APIAddr(), ":")[1], Value: c.Value}})
		}
	}
	if resp, _ := other.do("GET", "/ui/shares", nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("A's session at B: %s, want 401", resp.Status)
	}
}

// TestUIRefusals: through the daemon, the UI refuses a foreign Host, a
// POST without the cookie and one from another origin; nothing changes.
func TestUIRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	d := startDaemon(t, home)
	c := dial(t, ctx, home)
	login, err := c.UILogin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	br := newUIBrowser(t, d)
	br.do("GET", login, nil, nil)
	_, page := br.do("GET", "/ui/shares", nil, nil)
	csrf := csrfRE.FindStringSubmatch(page)[1]
	src := filepath.Join(t.TempDir(), "f.txt")
	os.WriteFile(src, []byte("x"), 0o644)
	_, port, _ := strings.Cut(d.APIAddr(), ":")
	share := url.Values{"csrf": {csrf}, "path": {src}}
	for _, tc := range []struct {
		name string
		b    *uiBrowser
		hdr  map[string]string
		want int
	}{
		{"Host evil.example", br, map[string]string{"Host": "evil.example:" + port}, 403},
		{"without the cookie", newUIBrowser(t, d), nil, 401},
		{"cross Origin", br, map[string]string{"Origin": "http://evil.example:" + port}, 403},
	} {
		resp, body := tc.b.do("POST", "/ui/shares/add", share, tc.hdr)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d\n%s", tc.name, resp.Status, tc.want, body)
		}
		if resp.Header.Get("Content-Security-Policy") != webui.CSP {
			t.Errorf("%s: no CSP", tc.name)
		}
	}
	if ss, _ := c.Shares(ctx); len(ss) != 0 {
		t.Errorf("a refused request shared %+v", ss)
	}
}

// TestAPIHostPort: the API wants a loopback Host with its own port: a
// loopback name without it, or with another port, is refused (400), as a
// foreign name is.
func TestAPIHostPort(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	_, port, _ := strings.Cut(d.APIAddr(), ":")
	for _, host := range []string{"127.0.0.1:1", "localhost", "evil.example:" + port} {
		req, _ := http.NewRequest("GET", "http://"+d.APIAddr()+"/v1/id", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("API with Host %q: %s, want 400", host, resp.Status)
		}
	}
}

// TestUIEventsEndOnClose: an open event stream does not hold the daemon
// up: Close ends it and its API server shuts down cleanly (else Shutdown
// gives up after 10 s and Close returns its error).
func TestUIEventsEndOnClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	home := t.TempDir()
	d := startDaemon(t, home)
	br := newUIBrowser(t, d)
	br.do("GET", d.UIURL(), nil, nil)
	req, _ := http.NewRequestWithContext(ctx, "GET", br.base+"/ui/events", nil)
	resp, err := br.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "event: ") {
		t.Fatalf("no event: %q, %v", sc.Text(), sc.Err())
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close with an event stream open: %v", err)
	}
	for sc.Scan() {
	}
	if err := (uiBackend{d.ui}).Fetch(ctx, "bafkqaaa", t.TempDir()); err == nil {
		t.Error("a fetch started on a closed daemon")
	}
}

// TestUIBandwidthRing: the daemon keeps the last uiSamples samples, oldest
// first, however many it has taken.
func TestUIBandwidthRing(t *testing.T) {
	s := &uiState{d: &Daemon{local: &Local{}}}
	t0 := time.Unix(1e9, 0)
	for i := range uiSamples + 5 {
		s.d.local.rateDown = float64(i)
		s.record(t0.Add(time.Duration(i) * time.Second))
	}
	got := (uiBackend{s}).Bandwidth()
	if len(got) != uiSamples {
		t.Fatalf("%d samples, want %d", len(got), uiSamples)
	}
	for i, x := range got {
		if want := t0.Add(time.Duration(i+5) * time.Second); !x.At.Equal(want) || x.Down != float64(i+5) {
			t.Fatalf("sample %d: %v %v, want %v %d", i, x.At, x.Down, want, i+5)
		}
	}
}
