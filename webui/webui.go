package webui

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/peer-project/peer/internal/loopback"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the UI lives on its listener.
const Prefix = "/ui/"

// CSP is the Content-Security-Policy of every answer: scripts and styles
// from the UI itself only (no inline script or style), no frames, forms
// posted only to the UI.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Config configures New.
type Config struct {
	// Backend is what the UI shows and changes; required.
	Backend Backend
	// Cookie is the name of the session cookie. Browsers share cookies
	// between the ports of a host, so two daemons on one machine need two
	// names (the daemon puts its port in it); "" means "peer_ui".
	Cookie string
	// Logger gets the UI's errors; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of logins and sessions; nil means time.Now.
	Now func() time.Time
	// Tick is how often /ui/events sends an update; 0 means 500 ms.
	Tick time.Duration
}

// UI is the web UI's handler. Make one with New. It is safe for concurrent
// use; its event streams end when their requests' contexts are done.
type UI struct {
	b      Backend
	log    *slog.Logger
	now    func() time.Time
	cookie string
	tick   time.Duration
	pages  map[string]*template.Template
	static http.Handler
	mux    *http.ServeMux

	mu       sync.Mutex
	logins   map[string]time.Time // one-time login token → expiry
	sessions map[string]*session  // cookie value → session
}

var funcs = template.FuncMap{
	"bytes": formatBytes,
	"rate":  func(r float64) string { return formatBytes(int64(r)) + "/s" },
	"short": short,
	"onoff": func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	},
}

// New returns the UI of cfg.Backend.
func New(cfg Config) (*UI, error) {
	if cfg.Backend == nil {
		return nil, errors.New("webui: Config.Backend is nil")
	}
	u := &UI{
		b: cfg.Backend, log: cfg.Logger, now: cfg.Now, cookie: cfg.Cookie, tick: cfg.Tick,
		pages: map[string]*template.Template{}, logins: map[string]time.Time{}, sessions: map[string]*session{},
	}
	if u.log == nil {
		u.log = slog.Default()
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.cookie == "" {
		u.cookie = "peer_ui"
	}
	if u.tick <= 0 {
		u.tick = 500 * time.Millisecond
	}
	for _, p := range []string{"message", "shares", "transfers", "peers", "network"} {
		t, err := template.New(p).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("webui: template %s: %w", p, err)
		}
		u.pages[p] = t
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	u.static = http.StripPrefix(Prefix+"static/", http.FileServerFS(sub))
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/shares", http.StatusSeeOther)
	})
	m.HandleFunc("GET /ui/shares", u.getShares)
	m.HandleFunc("POST /ui/shares/add", u.postShare)
	m.HandleFunc("POST /ui/shares/remove", u.postUnshare)
	m.HandleFunc("GET /ui/transfers", u.getTransfers)
	m.HandleFunc("POST /ui/transfers/fetch", u.postFetch)
	m.HandleFunc("GET /ui/peers", u.getPeers)
	m.HandleFunc("GET /ui/network", u.getNetwork)
	m.HandleFunc("POST /ui/network/limits", u.postLimits)
	m.HandleFunc("GET /ui/events", u.events)
	u.mux = m
	return u, nil
}

// ServeHTTP serves the UI under Prefix. Every answer carries CSP and
// refuses framing and sniffing. It refuses (before anything else) a Host
// that is not a loopback name with the listener's port (403), a path with
// NUL, "." or ".." (400); then serves the static files to anyone, signs a
// browser in with a login token (?token=, once), and serves the rest only
// to a signed-in browser (401), a POST only from a page of the UI (Origin
// or Referer, 403) with the session's form token (403).
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if !loopback.Request(r) { // a loopback name with this listener's port: no DNS rebinding
		u.message(w, http.StatusForbidden, "Wrong address", "This UI answers only at its loopback address (http://127.0.0.1:PORT/ui/), not at "+r.Host+".")
		return
	}
	if badPath(r.URL.Path) || badPath(r.URL.RawPath) {
		u.message(w, http.StatusBadRequest, "Bad path", "A path of the UI holds no NUL, \".\" or \"..\".")
		return
	}
	if r.URL.Path == "/ui" {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
		return
	}
	if strings.HasPrefix(r.URL.Path, Prefix+"static/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Cache-Control", "no-cache")
		u.static.ServeHTTP(w, r)
		return
	}
	if tok := r.URL.Query().Get("token"); tok != "" && r.Method == http.MethodGet {
		u.login(w, r, tok)
		return
	}
	s := u.sessionOf(r)
	if s == nil {
		u.message(w, http.StatusUnauthorized, "Sign in", "This browser is not signed in to this daemon's UI.")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if !sameOrigin(r) {
			u.message(w, http.StatusForbidden, "Refused", "This request does not come from a page of this UI (its Origin is "+strconv.Quote(r.Header.Get("Origin"))+"): nothing was changed.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			u.message(w, http.StatusBadRequest, "Bad form", "The form could not be read: "+err.Error())
			return
		}
		if !equalSecret(r.PostForm.Get("csrf"), s.csrf) {
			u.message(w, http.StatusForbidden, "Refused", "The form's token is missing or stale: reload the page and try again. Nothing was changed.")
			return
		}
	}
	r = r.WithContext(context.WithValue(r.Context(), sessionKey{}, s))
	u.mux.ServeHTTP(w, r)
}

type sessionKey struct{}

func csrfOf(r *http.Request) string {
	if s, ok := r.Context().Value(sessionKey{}).(*session); ok {
		return s.csrf
	}
	return ""
}

// login redeems tok: a good one sets the session cookie and sends the
// browser to the same URL without the token.
func (u *UI) login(w http.ResponseWriter, r *http.Request, tok string) {
	id, ok := u.redeem(tok)
	if !ok {
		u.message(w, http.StatusForbidden, "Link used or expired", "This sign-in link has been used already or has expired: each link works once, within "+LoginTTL.String()+".")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: u.cookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode,
		MaxAge: int(SessionTTL.Seconds()),
	})
	q := r.URL.Query()
	q.Del("token")
	to := r.URL.Path
	if len(q) > 0 {
		to += "?" + q.Encode()
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// page is what a template gets.
type page struct {
	Title, Nav    string
	CSRF          string
	Error, Notice string
	Message       string
	Form          map[string]string
	Overview      Overview
	Shares        []Share
	Transfers     []Transfer
	Peers         []Peer
	Chart         chart
}

func (u *UI) render(w http.ResponseWriter, status int, name string, p *page) {
	if p.Form == nil {
		p.Form = map[string]string{}
	}
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		u.log.Error("webui: rendering a page", "page", name, "err", err)
		http.Error(w, "webui: rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (u *UI) message(w http.ResponseWriter, status int, title, msg string) {
	u.render(w, status, "message", &page{Title: title, Message: msg})
}

// statusOf maps a Backend error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// base fills what every page shows; a failure to read the node is shown
// on the page.
func (u *UI) base(r *http.Request, title, nav string) *page {
	p := &page{Title: title, Nav: nav, CSRF: csrfOf(r), Notice: notices[r.URL.Query().Get("done")]}
	ov, err := u.b.Overview(r.Context())
	if err != nil {
		p.Error = err.Error()
	}
	p.Overview = ov
	return p
}

func (u *UI) sharesPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	shares, err := u.b.Shares(r.Context())
	if err != nil && p.Error == "" {
		p.Error, status = err.Error(), statusOf(err)
	}
	p.Shares = shares
	if root := r.URL.Query().Get("root"); p.Notice != "" && root != "" {
		for _, s := range shares {
			if s.Root == root {
				p.Notice = "Shared " + s.Name + ": copy its ticket or link below."
			}
		}
	}
	u.render(w, status, "shares", p)
}

func (u *UI) getShares(w http.ResponseWriter, r *http.Request) {
	u.sharesPage(w, r, http.StatusOK, u.base(r, "Shares", "shares"))
}

// postShare shares a path. A path that is not absolute and clean, or holds
// NUL, is refused before the backend sees it; on any error the page comes
// back with the path still in the form.
func (u *UI) postShare(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSpace(r.PostForm.Get("path"))
	var err error
	switch {
	case path == "":
		err = badInput("name the file or folder to share")
	case strings.ContainsRune(path, 0):
		err = badInput("the path holds a NUL byte")
	case !filepath.IsAbs(path):
		err = badInput("%q is not an absolute path: give the whole path, from /", path)
	case filepath.Clean(path) != path:
		err = badInput("%q holds \".\", \"..\" or repeated slashes: give the path as %q if that is what you mean", path, filepath.Clean(path))
	}
	var sh Share
	if err == nil {
		sh, err = u.b.Share(r.Context(), path)
	}
	if err != nil {
		p := u.base(r, "Shares", "shares")
		p.Error, p.Form = err.Error(), map[string]string{"path": path}
		u.sharesPage(w, r, statusOf(err), p)
		return
	}
	http.Redirect(w, r, "/ui/shares?done=shared&root="+url.QueryEscape(sh.Root), http.StatusSeeOther)
}

func (u *UI) postUnshare(w http.ResponseWriter, r *http.Request) {
	root := strings.TrimSpace(r.PostForm.Get("root"))
	if err := u.b.Unshare(r.Context(), root); err != nil {
		p := u.base(r, "Shares", "shares")
		p.Error = err.Error()
		u.sharesPage(w, r, statusOf(err), p)
		return
	}
	http.Redirect(w, r, "/ui/shares?done=unshared", http.StatusSeeOther)
}

func (u *UI) transfersPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	p.Transfers = u.b.Transfers()
	if p.Form == nil {
		p.Form = map[string]string{"dir": p.Overview.DownloadDir}
	}
	u.render(w, status, "transfers", p)
}

func (u *UI) getTransfers(w http.ResponseWriter, r *http.Request) {
	u.transfersPage(w, r, http.StatusOK, u.base(r, "Transfers", "transfers"))
}

func (u *UI) postFetch(w http.ResponseWriter, r *http.Request) {
	target := strings.TrimSpace(r.PostForm.Get("target"))
	dir := strings.TrimSpace(r.PostForm.Get("dir"))
	var err error
	switch {
	case target == "":
		err = badInput("paste a ticket or a root to fetch")
	case strings.ContainsRune(dir, 0) || !filepath.IsAbs(dir) || filepath.Clean(dir) != dir:
		err = badInput("the folder %q is not a clean absolute path (from /, without \".\" or \"..\")", dir)
	default:
		err = u.b.Fetch(r.Context(), target, dir)
	}
	if err != nil {
		p := u.base(r, "Transfers", "transfers")
		p.Error, p.Form = err.Error(), map[string]string{"target": target, "dir": dir}
		u.transfersPage(w, r, statusOf(err), p)
		return
	}
	http.Redirect(w, r, "/ui/transfers", http.StatusSeeOther)
}

func (u *UI) getPeers(w http.ResponseWriter, r *http.Request) {
	p := u.base(r, "Peers", "peers")
	peers, err := u.b.Peers(r.Context())
	if err != nil && p.Error == "" {
		p.Error = err.Error()
	}
	p.Peers = peers
	u.render(w, http.StatusOK, "peers", p)
}

func limitsForm(l Limits) map[string]string {
	f := formatCap
	return map[string]string{
		"upload": f(l.UploadRate), "download": f(l.DownloadRate),
		"peer_upload": f(l.PeerUploadRate), "peer_download": f(l.PeerDownloadRate),
	}
}

func (u *UI) networkPage(w http.ResponseWriter, r *http.Request, status int, p *page) {
	if p.Form == nil {
		p.Form = limitsForm(p.Overview.Limits)
	}
	p.Chart = newChart(u.b.Bandwidth(), u.now())
	u.render(w, status, "network", p)
}

func (u *UI) getNetwork(w http.ResponseWriter, r *http.Request) {
	u.networkPage(w, r, http.StatusOK, u.base(r, "Network", "network"))
}

// postLimits changes the caps: all four fields are read first, and a bad
// one changes nothing.
func (u *UI) postLimits(w http.ResponseWriter, r *http.Request) {
	form := map[string]string{}
	var l Limits
	var errs []error
	for _, f := range []struct {
		name, label string
		dst         *int64
	}{
		{"upload", "upload", &l.UploadRate}, {"download", "download", &l.DownloadRate},
		{"peer_upload", "upload per peer", &l.PeerUploadRate}, {"peer_download", "download per peer", &l.PeerDownloadRate},
	} {
		v := strings.TrimSpace(r.PostForm.Get(f.name))
		form[f.name] = v
		n, err := ParseRate(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.label, err))
		}
		*f.dst = n
	}
	err := errors.Join(errs...)
	if err != nil {
		err = badInput("%v; nothing was changed", err)
	} else {
		err = u.b.SetLimits(r.Context(), l)
	}
	if err != nil {
		p := u.base(r, "Network", "network")
		p.Error, p.Form = err.Error(), form
		u.networkPage(w, r, statusOf(err), p)
		return
	}
	http.Redirect(w, r, "/ui/network?done=caps", http.StatusSeeOther)
}

// transferJSON is a transfer as /ui/events sends it.
type transferJSON struct {
	ID      int64  `json:"id"`
	Target  string `json:"target"`
	Short   string `json:"short"`
	Dest    string `json:"dest"`
	Bytes   int64  `json:"bytes"`
	Total   int64  `json:"total"`
	Percent int    `json:"percent"`
	Rate    string `json:"rate"`
	Peers   int    `json:"peers"`
	State   string `json:"state"`
	Err     string `json:"err,omitempty"`
}

type bandwidthJSON struct {
	Up         string `json:"up"`
	Down       string `json:"down"`
	UpPoints   string `json:"up_points"`
	DownPoints string `json:"down_points"`
	Max        string `json:"max"`
}

// events streams Server-Sent Events: "transfers" (every transfer, as
// transferJSON) and "bandwidth" (the rates and the chart's points) every
// tick, until the client goes away or the daemon stops.
func (u *UI) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "webui: streaming is not supported here", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	send := func(event string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
		return err
	}
	t := time.NewTicker(u.tick)
	defer t.Stop()
	for {
		ts := []transferJSON{}
		for _, x := range u.b.Transfers() {
			ts = append(ts, transferJSON{
				ID: x.ID, Target: x.Target, Short: short(x.Target), Dest: x.Dest, Bytes: x.Bytes, Total: x.Total,
				Percent: x.Percent(), Rate: formatRate(int64(x.Rate)), Peers: x.Peers, State: x.State, Err: x.Err,
			})
		}
		samples := u.b.Bandwidth()
		c := newChart(samples, u.now())
		bw := bandwidthJSON{UpPoints: string(c.Up), DownPoints: string(c.Down), Max: formatRate(int64(c.Max)), Up: formatRate(0), Down: formatRate(0)}
		if len(samples) > 0 {
			last := samples[len(samples)-1]
			bw.Up, bw.Down = formatRate(int64(last.Up)), formatRate(int64(last.Down))
		}
		if send("transfers", ts) != nil || send("bandwidth", bw) != nil {
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
	}
}

// chart is the bandwidth graph: SVG polylines over the last minutes.
type chart struct {
	W, H     int
	Minutes  int
	Grid     []int             // x of a line each minute
	Mid      int               // y of the scale's middle line
	NowX     int               // x of the right-hand labels
	LabelY   int               // y of the bottom labels
	Up, Down template.HTMLAttr // the points
	Max      float64           // the top of the scale, bytes per second
}

const chartSpan = 5 * time.Minute

func newChart(s []Sample, now time.Time) chart {
	c := chart{W: 720, H: 160, Minutes: int(chartSpan.Minutes()), Max: 64 << 10}
	c.Mid, c.NowX, c.LabelY = c.H/2, c.W-4, c.H-4
	for m := 1; m < c.Minutes; m++ {
		c.Grid = append(c.Grid, c.W*m/c.Minutes)
	}
	for _, x := range s {
		c.Max = max(c.Max, x.Up, x.Down)
	}
	c.Max *= 1.1
	pts := func(f func(Sample) float64) template.HTMLAttr {
		var b strings.Builder
		for _, x := range s {
			age := now.Sub(x.At)
			if age > chartSpan || age < 0 {
				continue
			}
			px := float64(c.W) * (1 - age.Seconds()/chartSpan.Seconds())
			py := float64(c.H) * (1 - f(x)/c.Max)
			fmt.Fprintf(&b, "%.1f,%.1f ", px, py)
		}
		return template.HTMLAttr(strings.TrimSpace(b.String()))
	}
	c.Up = pts(func(x Sample) float64 { return x.Up })
	c.Down = pts(func(x Sample) float64 { return x.Down })
	return c
}

// ParseRate reads a rate in bytes per second: a number with an optional
// unit, K, KB, KiB, M, MB, MiB, G, GB or GiB, with the daemon's meanings
// (daemon.ParseRate, --upload-rate and config.json: K and KiB are 1024,
// KB is 1000; case does not matter; "/s" may follow), so that a cap typed
// in the UI is the cap the same text sets elsewhere. "" and "0" mean no
// cap.
func ParseRate(s string) (int64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if s == "" {
		return 0, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	mult := map[string]float64{
		"": 1, "b": 1, "k": 1 << 10, "kb": 1e3, "kib": 1 << 10, "m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
		"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	}[unit]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || mult == 0 || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a rate: write bytes per second, e.g. 500K, 10M or 1.5MiB (0 for no cap)", s)
	}
	r := v * mult
	if r > 1<<50 {
		return 0, fmt.Errorf("%q is more than any link carries: write bytes per second, e.g. 10M", s)
	}
	return int64(r), nil
}

func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

func formatRate(n int64) string { return formatBytes(n) + "/s" }

// short abbreviates a long ID or CID for a table: its start and end.
func short(s string) string {
	if len(s) <= 20 {
		return s
	}
	return s[:8] + "…" + s[len(s)-6:]
}

// inputError is a mistake in what the user typed: 400, shown as it is.
type inputError string

func (e inputError) Error() string        { return string(e) }
func (e inputError) Is(target error) bool { return target == ErrBadRequest }

func badInput(format string, args ...any) error { return inputError(fmt.Sprintf(format, args...)) }

func equalSecret(a, b string) bool {
	return len(b) > 0 && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// formatCap writes a cap so that ParseRate reads it back exactly.
func formatCap(v int64) string {
	for _, u := range []struct {
		n    int64
		name string
	}{{1 << 30, "GiB"}, {1e9, "GB"}, {1 << 20, "MiB"}, {1e6, "MB"}, {1 << 10, "KiB"}, {1e3, "KB"}} {
		if v >= u.n && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10)
}

// notices are the messages a redirect after a POST may show (?done=KEY):
// fixed texts, so that a link cannot make the UI say anything else.
var notices = map[string]string{
	"shared":   "Shared.",
	"unshared": "Stopped sharing.",
	"caps":     "Caps changed: they hold until the daemon stops.",
}
