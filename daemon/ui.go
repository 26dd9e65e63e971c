package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/peer-project/peer/node"
	"github.com/peer-project/peer/webui"
)

// The web UI (package webui) is served on the API's listener, under /ui/:
// that listener is on loopback whatever the settings say, while the
// gateway's may be on any address and must stay read-only. A browser signs
// in with a one-time link (POST /v1/ui/login, what `peer ui` prints); the
// UI then knows it by a cookie named after the API's port, checked against
// the sessions this daemon holds.

const (
	// uiSamples is how many bandwidth samples the daemon keeps: one a
	// second, five minutes.
	uiSamples = 300
	// uiJobs is how many fetches started from the UI it remembers.
	uiJobs = 32
)

// UILogin is POST /v1/ui/login's answer.
type UILogin struct {
	// URL signs a browser in to the UI, once, within webui.LoginTTL.
	URL string `json:"url"`
}

// uiState is what the daemon keeps for its UI.
type uiState struct {
	d  *Daemon
	ui *webui.UI

	mu      sync.Mutex
	samples []webui.Sample // a ring of uiSamples, oldest at next once full
	next    int
	jobs    []*uiJob // oldest first, at most uiJobs
	lastID  int64
}

// uiJob is a fetch started from the UI.
type uiJob struct {
	id      int64
	target  string
	started time.Time
	// guarded by uiState.mu
	p     ProgressInfo
	dest  string
	state string
	err   string
}

func newUIState(d *Daemon) (*uiState, error) {
	s := &uiState{d: d}
	_, port, _ := net.SplitHostPort(d.apiLn.Addr().String())
	ui, err := webui.New(webui.Config{Backend: uiBackend{s}, Cookie: "peer_ui_" + port, Logger: d.log.With("part", "ui")})
	if err != nil {
		return nil, err
	}
	s.ui = ui
	return s, nil
}

// isUIPath reports whether the UI serves p.
func isUIPath(p string) bool { return p == "/ui" || strings.HasPrefix(p, webui.Prefix) }

// UIURL returns a one-time link that signs a browser in to the UI. It is
// safe for concurrent use.
func (d *Daemon) UIURL() string {
	return "http://" + d.APIAddr() + webui.Prefix + "?token=" + d.ui.ui.NewLogin()
}

// uiRoutes adds the UI's API endpoint.
func (d *Daemon) uiRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/ui/login", d.jsonHandler(func(r *http.Request) (any, error) {
		return UILogin{URL: d.UIURL()}, nil
	}))
}

// UILogin asks the daemon for a one-time link to its web UI.
func (c *Client) UILogin(ctx context.Context) (string, error) {
	var out UILogin
	err := c.call(ctx, "POST", "/v1/ui/login", struct{}{}, &out)
	return out.URL, err
}

// record adds a bandwidth sample (the smoothed rates Local.sample keeps);
// the daemon calls it every second.
func (s *uiState) record(now time.Time) {
	l := s.d.local
	l.mu.Lock()
	x := webui.Sample{At: now, Up: l.rateUp, Down: l.rateDown}
	l.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) < uiSamples {
		s.samples = append(s.samples, x)
		return
	}
	s.samples[s.next] = x
	s.next = (s.next + 1) % uiSamples
}

// uiBackend is webui.Backend over the daemon.
type uiBackend struct{ s *uiState }

// uiError gives an API error the UI's kind, and keeps its message.
type uiError struct{ kind, err error }

func (e uiError) Error() string   { return e.err.Error() }
func (e uiError) Unwrap() []error { return []error{e.kind, e.err} }

func toUI(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrExists):
		return uiError{webui.ErrBadRequest, err}
	case errors.Is(err, ErrNotFound):
		return uiError{webui.ErrNotFound, err}
	}
	return err
}

func (b uiBackend) Overview(ctx context.Context) (webui.Overview, error) {
	d := b.s.d
	st, err := d.local.Status(ctx)
	if err != nil {
		return webui.Overview{}, err
	}
	c := d.local.n.Caps()
	r := st.Reachability
	ov := webui.Overview{
		ID: st.ID, Addrs: st.Addrs, Version: st.Version, Peers: st.Peers, Shares: st.Shares,
		BytesUp: st.BytesUp, BytesDown: st.BytesDown, RateUp: st.RateUp, RateDown: st.RateDown,
		Limits:  webui.Limits{UploadRate: c.UploadRate, DownloadRate: c.DownloadRate, PeerUploadRate: c.PeerUploadRate, PeerDownloadRate: c.PeerDownloadRate},
		Gateway: d.GatewayURL(""), DownloadDir: downloadDir(),
		Reach: webui.Reach{
			State: r.State, Forced: r.Forced, PublicAddrs: r.PublicAddrs, Relays: r.Relays,
			NATPortMap: r.NATPortMap, HolePunching: r.HolePunching, Direct: r.Direct, Relayed: r.Relayed,
		},
	}
	for _, rv := range r.Reservations {
		ov.Reach.Reservations = append(ov.Reach.Reservations, webui.Reservation{Relay: rv.Relay, Addrs: rv.Addrs})
	}
	if r.RelayService != nil {
		ov.Reach.RelayService = "on: " + r.RelayService.Summary
	}
	return ov, nil
}

// downloadDir is the folder the fetch form proposes: ~/Downloads if there
// is one, else the user's home.
func downloadDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	if fi, err := os.Stat(filepath.Join(home, "Downloads")); err == nil && fi.IsDir() {
		return filepath.Join(home, "Downloads")
	}
	return home
}

func (b uiBackend) Peers(ctx context.Context) ([]webui.Peer, error) {
	ps, err := b.s.d.local.Peers(ctx)
	out := make([]webui.Peer, 0, len(ps))
	for _, p := range ps {
		out = append(out, webui.Peer{ID: p.ID, Addrs: p.Addrs, Direct: p.Direct, Relays: p.Relays, Limited: p.Limited, Banned: p.Banned, Path: p.Path})
	}
	return out, toUI(err)
}

func (b uiBackend) share(si ShareInfo) webui.Share {
	return webui.Share{
		Root: si.Root, Name: si.Name, Path: si.Path, Ticket: si.Ticket, Link: ShareURL(b.s.d.GatewayURL(si.Root), si),
		Dir: si.Dir, Stale: si.Stale, Size: si.Size, Files: si.Files,
	}
}

func (b uiBackend) Shares(ctx context.Context) ([]webui.Share, error) {
	ss, err := b.s.d.local.Shares(ctx)
	out := make([]webui.Share, 0, len(ss))
	for _, si := range ss {
		out = append(out, b.share(si))
	}
	return out, toUI(err)
}

func (b uiBackend) Share(ctx context.Context, path string) (webui.Share, error) {
	si, err := b.s.d.local.Share(ctx, ShareRequest{Path: path})
	if err != nil {
		return webui.Share{}, toUI(err)
	}
	return b.share(si), nil
}

func (b uiBackend) Unshare(ctx context.Context, root string) error {
	return toUI(b.s.d.local.Unshare(ctx, root))
}

// Fetch checks the target and the folder, then runs the fetch in a
// goroutine of the daemon's until it ends or the daemon stops (its partial
// file stays, to resume).
func (b uiBackend) Fetch(ctx context.Context, target, dir string) error {
	s, d := b.s, b.s.d
	if d.base.Err() != nil {
		return errors.New("daemon: stopping: the fetch was not started")
	}
	if _, _, err := parseTarget(target, nil); err != nil {
		return toUI(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return uiError{webui.ErrBadRequest, fmt.Errorf("the folder %s does not exist: create it, or choose another", dir)}
	}
	j := &uiJob{target: target, started: time.Now(), state: webui.Running}
	s.mu.Lock()
	s.lastID++
	j.id = s.lastID
	if len(s.jobs) >= uiJobs {
		// Forget the oldest that ended; if all run, the oldest.
		drop := 0
		for i, o := range s.jobs {
			if o.state != webui.Running {
				drop = i
				break
			}
		}
		s.jobs = append(s.jobs[:drop], s.jobs[drop+1:]...)
	}
	s.jobs = append(s.jobs, j)
	s.mu.Unlock()
	d.spawn(func() {
		res, err := d.local.Get(d.base, GetRequest{Target: target, Dir: dir}, func(p ProgressInfo) {
			s.mu.Lock()
			defer s.mu.Unlock()
			if p.Dest != "" {
				j.dest = p.Dest
			}
			if p.Total > 0 || p.Done {
				j.p = p
			}
		})
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			j.state, j.err = webui.Failed, err.Error()
			d.log.Info("a fetch from the UI failed", "target", target, "err", err)
			return
		}
		j.state, j.dest = webui.Done, res.Dest
		j.p.Bytes, j.p.Total = res.Size, res.Size
	})
	return nil
}

func (b uiBackend) Transfers() []webui.Transfer {
	s := b.s
	var out []webui.Transfer
	mine := map[string]bool{}
	s.mu.Lock()
	for _, j := range s.jobs {
		out = append(out, webui.Transfer{
			ID: j.id, Target: j.target, Dest: j.dest, Started: j.started, Bytes: j.p.Bytes, Total: j.p.Total,
			Peers: j.p.Peers, Rate: j.p.Rate, State: j.state, Err: j.err,
		})
		if j.state == webui.Running && j.dest != "" {
			mine[j.dest] = true
		}
	}
	s.mu.Unlock()
	// Fetches the UI did not start: `peer get` through this daemon.
	for _, t := range s.d.local.n.Transfers() {
		if mine[t.Dest] {
			continue
		}
		out = append(out, webui.Transfer{
			Target: targetString(t.Target), Dest: t.Dest, Started: t.Started, Bytes: t.Progress.Bytes,
			Total: t.Progress.Total, Peers: t.Progress.Peers, State: webui.Running,
		})
	}
	return out
}

func (b uiBackend) Bandwidth() []webui.Sample {
	s := b.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]webui.Sample, 0, len(s.samples))
	out = append(out, s.samples[s.next:]...)
	return append(out, s.samples[:s.next]...)
}

func (b uiBackend) SetLimits(ctx context.Context, l webui.Limits) error {
	err := b.s.d.local.n.SetCaps(node.Caps{
		UploadRate: l.UploadRate, DownloadRate: l.DownloadRate, PeerUploadRate: l.PeerUploadRate, PeerDownloadRate: l.PeerDownloadRate,
	})
	if err != nil && !errors.Is(err, node.ErrClosed) {
		return uiError{webui.ErrBadRequest, err}
	}
	return err
}
