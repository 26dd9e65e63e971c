package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/node"
)

// PublishRequest asks to share a path and point a name at it.
type PublishRequest struct {
	Path string `json:"path"` // absolute
	// Key names a key of the home's keystore (made if missing); empty
	// means the node's own key.
	Key string `json:"key,omitempty"`
	// Watch republishes whenever the path changes, for as long as the
	// node runs.
	Watch     bool   `json:"watch,omitempty"`
	Chunker   string `json:"chunker,omitempty"`
	ChunkSize string `json:"chunk_size,omitempty"`
}

// PublishInfo is a name pointed at a share.
type PublishInfo struct {
	Name string `json:"name"` // /ipns/k51…
	Root string `json:"root"`
	Seq  uint64 `json:"seq"`
	Path string `json:"path"`
	// Ticket carries the name and this node's addresses: a fetch of it
	// gets the name's latest version.
	Ticket string `json:"ticket"`
	// DHTError says why the record is not in the DHT (connected peers
	// have it all the same).
	DHTError string `json:"dht_error,omitempty"`
	Watch    bool   `json:"watch,omitempty"`
}

// FollowRequest asks to keep a folder equal to a name's latest version.
type FollowRequest struct {
	Name  string   `json:"name"`
	Dir   string   `json:"dir"`             // absolute
	Peers []string `json:"peers,omitempty"` // multiaddrs with /p2p/ID
}

// FollowEventInfo is one event of a follow (see node.FollowEvent).
type FollowEventInfo struct {
	Name      string         `json:"name"`
	Root      string         `json:"root,omitempty"`
	Seq       uint64         `json:"seq,omitempty"`
	Applied   bool           `json:"applied,omitempty"`
	Written   int            `json:"written,omitempty"`
	Removed   int            `json:"removed,omitempty"`
	Kept      int            `json:"kept,omitempty"`
	Received  int64          `json:"received,omitempty"` // bytes received from peers
	Local     int64          `json:"local,omitempty"`    // bytes copied from files already here
	Conflicts []ConflictInfo `json:"conflicts,omitempty"`
	Peer      string         `json:"peer,omitempty"`
	Error     string         `json:"error,omitempty"`
}

// ConflictInfo is a file a follow left alone.
type ConflictInfo struct {
	Path string `json:"path"`
	Why  string `json:"why"`
}

// Namer is the part of the API that publishes and follows names. Local and
// Client implement it.
type Namer interface {
	// Publish shares a path and points a name at its root.
	Publish(ctx context.Context, req PublishRequest) (PublishInfo, error)
	// Follow keeps a folder equal to a name's latest version, calling
	// event with each event, until ctx is done (then it returns nil).
	Follow(ctx context.Context, req FollowRequest, event func(FollowEventInfo)) error
}

var (
	_ Namer = (*Local)(nil)
	_ Namer = (*Client)(nil)
)

// Publish implements Namer.
func (l *Local) Publish(ctx context.Context, req PublishRequest) (PublishInfo, error) {
	if !filepath.IsAbs(req.Path) {
		return PublishInfo{}, errorf(ErrBadRequest, "publish: %q is not an absolute path", req.Path)
	}
	opts := node.PublishOptions{Key: req.Key, Watch: req.Watch}
	if req.Chunker != "" || req.ChunkSize != "" {
		p, err := ParseChunking(req.Chunker, req.ChunkSize)
		if err != nil {
			return PublishInfo{}, errorf(ErrBadRequest, "publish: %v", err)
		}
		opts.Share.Chunking = p
	}
	res, err := l.n.Publish(ctx, req.Path, opts)
	if err != nil {
		return PublishInfo{}, explainName(err)
	}
	out := PublishInfo{Name: res.Name, Root: res.Root.String(), Seq: res.Seq, Path: req.Path, Ticket: res.Ticket, Watch: req.Watch}
	if res.DHTErr != nil {
		out.DHTError = res.DHTErr.Error()
	}
	return out, nil
}

// Follow implements Namer.
func (l *Local) Follow(ctx context.Context, req FollowRequest, event func(FollowEventInfo)) error {
	if !filepath.IsAbs(req.Dir) {
		return errorf(ErrBadRequest, "follow: %q is not an absolute path", req.Dir)
	}
	var peers []peer.AddrInfo
	for _, a := range req.Peers {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return errorf(ErrBadRequest, "peer address %q: %v (want /ip4/ADDR/tcp/PORT/p2p/PEERID)", a, err)
		}
		peers = append(peers, *ai)
	}
	opts := node.FollowOptions{Peers: peers}
	if event != nil {
		opts.OnEvent = func(e node.FollowEvent) { event(followEventInfo(e)) }
	}
	return explainName(l.n.Follow(ctx, req.Name, req.Dir, opts))
}

func followEventInfo(e node.FollowEvent) FollowEventInfo {
	out := FollowEventInfo{Name: e.Name, Seq: e.Seq, Applied: e.Applied, Written: e.Written, Removed: e.Removed, Kept: e.Kept,
		Received: e.Received, Local: e.Local}
	if e.Root.Defined() {
		out.Root = e.Root.String()
	}
	if e.Peer != "" {
		out.Peer = e.Peer.String()
	}
	if e.Err != nil {
		out.Error = e.Err.Error()
	}
	for _, c := range e.Conflicts {
		out.Conflicts = append(out.Conflicts, ConflictInfo(c))
	}
	return out
}

// explainName turns the node's errors about names into the API's.
func explainName(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, node.ErrFollowTarget):
		return errorf(ErrBadRequest, "%v", err)
	case errors.Is(err, node.ErrName):
		return errorf(ErrNotFound, "%v", err)
	}
	return err
}

// Publish implements Namer.
func (c *Client) Publish(ctx context.Context, req PublishRequest) (PublishInfo, error) {
	var out PublishInfo
	return out, c.call(ctx, "POST", "/v1/publish", req, &out)
}

// followLine is one line of /v1/follow's NDJSON answer.
type followLine struct {
	Event *FollowEventInfo `json:"event,omitempty"`
	Error *wireError       `json:"error,omitempty"`
}

// Follow implements Namer: the daemon follows for as long as the request
// lasts.
func (c *Client) Follow(ctx context.Context, req FollowRequest, event func(FollowEventInfo)) error {
	resp, err := c.do(ctx, "POST", "/v1/follow", req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var line followLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("daemon: follow: reading the answer: %w", err)
		}
		switch {
		case line.Event != nil:
			if event != nil {
				event(*line.Event)
			}
		case line.Error != nil:
			return fromWire(*line.Error)
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("daemon: follow: the daemon went away: %w", err)
	}
	return errors.New("daemon: follow: the daemon stopped following (it was stopped?)")
}

// nameRoutes adds /v1/publish and /v1/follow.
func (d *Daemon) nameRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/publish", d.jsonHandler(func(r *http.Request) (any, error) {
		var req PublishRequest
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		return d.local.Publish(r.Context(), req)
	}))
	mux.HandleFunc("POST /v1/follow", d.handleFollow)
}

// handleFollow follows a name for as long as the request lasts, streaming
// its events as NDJSON; a heartbeat line every 15 s notices a client that
// went away.
func (d *Daemon) handleFollow(w http.ResponseWriter, r *http.Request) {
	var req FollowRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var (
		mu     sync.Mutex
		queue  []FollowEventInfo
		signal = make(chan struct{}, 1)
		done   = make(chan error, 1)
	)
	event := func(e FollowEventInfo) {
		mu.Lock()
		if len(queue) < 256 { // a client that does not read loses events, never memory
			queue = append(queue, e)
		}
		mu.Unlock()
		select {
		case signal <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() { done <- d.local.Follow(ctx, req, event) }()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	flush := func() {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	flush()
	send := func() {
		mu.Lock()
		q := queue
		queue = nil
		mu.Unlock()
		for i := range q {
			enc.Encode(followLine{Event: &q[i]})
		}
		flush()
	}
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	for {
		select {
		case <-signal:
			send()
		case <-beat.C:
			w.Write([]byte("{}\n"))
			flush()
		case err := <-done:
			send()
			if err != nil {
				we, _ := toWire(err)
				enc.Encode(followLine{Error: &we})
			}
			return
		}
	}
}

// PublishSetting is a path the daemon publishes under a name while it
// runs: at start, and again whenever the path changes.
type PublishSetting struct {
	Path string `json:"path"`          // absolute
	Key  string `json:"key,omitempty"` // a key of the home's keystore; empty: the node's own
}

// FollowSetting is a folder the daemon keeps equal to a name's latest
// version while it runs.
type FollowSetting struct {
	Name  string   `json:"name"` // /ipns/k51…
	Dir   string   `json:"dir"`  // absolute
	Peers []string `json:"peers,omitempty"`
}

// checkNameSettings refuses settings that cannot work, before anything
// starts.
func checkNameSettings(pubs []PublishSetting, follows []FollowSetting) error {
	for i, p := range pubs {
		if !filepath.IsAbs(p.Path) {
			return fmt.Errorf("daemon: publish setting %d: path %q must be absolute", i+1, p.Path)
		}
	}
	for i, f := range follows {
		if !filepath.IsAbs(f.Dir) {
			return fmt.Errorf("daemon: follow setting %d: dir %q must be absolute", i+1, f.Dir)
		}
		if _, err := node.ParseName(f.Name); err != nil {
			return fmt.Errorf("daemon: follow setting %d: %w", i+1, err)
		}
	}
	return nil
}

// startNames publishes and follows what the settings say, in the
// daemon's goroutines (Close cancels and waits for them). A failure is
// logged: the daemon runs on.
//
// The names this home published before (`peer publish`, kept in the home)
// are published again first, then the settings' paths not among them.
func (d *Daemon) startNames(pubs []PublishSetting, follows []FollowSetting) {
	d.spawn(func() {
		done := map[[2]string]bool{}
		again, err := d.local.n.Republish(d.base)
		if err != nil {
			d.log.Error("publishing again the names of this home", "err", err)
		}
		for _, r := range again {
			d.log.Info("published again", "name", r.Name, "root", r.Root.String(), "seq", r.Seq)
			if r.Share != nil {
				done[[2]string{r.Path, r.Key}] = true
			}
		}
		for _, p := range pubs {
			if done[[2]string{p.Path, p.Key}] {
				continue
			}
			info, err := d.local.Publish(d.base, PublishRequest{Path: p.Path, Key: p.Key, Watch: true})
			if err != nil {
				d.log.Error("publish setting", "path", p.Path, "err", err)
				continue
			}
			d.log.Info("published", "name", info.Name, "root", info.Root, "seq", info.Seq, "path", p.Path)
		}
	})
	for _, f := range follows {
		d.spawn(func() {
			err := d.local.Follow(d.base, FollowRequest(f), func(e FollowEventInfo) {
				switch {
				case e.Error != "":
					d.log.Warn("follow", "name", e.Name, "dir", f.Dir, "err", e.Error)
				case e.Applied:
					d.log.Info("follow: version applied", "name", e.Name, "seq", e.Seq, "root", e.Root, "dir", f.Dir,
						"written", e.Written, "removed", e.Removed, "conflicts", len(e.Conflicts))
				}
				for _, c := range e.Conflicts {
					d.log.Warn("follow: conflict, left alone", "dir", f.Dir, "path", c.Path, "why", c.Why)
				}
			})
			if err != nil {
				d.log.Error("follow setting", "name", f.Name, "dir", f.Dir, "err", err)
			}
		})
	}
}
