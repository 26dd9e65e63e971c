package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/node"
)

// Error is an API error: a Kind to match with errors.Is (ErrNotFound,
// ErrExists, ErrBadRequest, ...) and a message for the user.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func errorf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Local is the API over a node in this process: what the daemon serves, and
// what the CLI uses when no daemon runs. It is safe for concurrent use.
type Local struct {
	n       *node.Node
	cfg     node.Config // what n runs with, defaults filled in
	started time.Time

	mu                 sync.Mutex
	lastAt             time.Time
	lastUp, lastDown   int64
	rateUp, rateDown   float64
	sampled, haveRates bool
}

// NewLocal returns the API of n: the node's FindTimeout bounds how long
// resolving a target waits for a provider, and Status reports the caps,
// access and reachability settings it runs with (n.Config).
func NewLocal(n *node.Node) *Local {
	return &Local{n: n, cfg: n.Config(), started: time.Now()}
}

// Node returns the node.
func (l *Local) Node() *node.Node { return l.n }

// sample updates the bandwidth rates from the node's byte counters; the
// daemon calls it every second.
func (l *Local) sample(now time.Time) {
	st := l.n.Stats()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sampled {
		if dt := now.Sub(l.lastAt).Seconds(); dt > 0 {
			up := float64(st.BytesUp-l.lastUp) / dt
			down := float64(st.BytesDown-l.lastDown) / dt
			if l.haveRates {
				// Smooth over a few seconds.
				l.rateUp, l.rateDown = 0.5*l.rateUp+0.5*up, 0.5*l.rateDown+0.5*down
			} else {
				l.rateUp, l.rateDown, l.haveRates = up, down, true
			}
		}
	}
	l.lastAt, l.lastUp, l.lastDown, l.sampled = now, st.BytesUp, st.BytesDown, true
}

// ID implements API.
func (l *Local) ID(ctx context.Context) (IDInfo, error) {
	return IDInfo{ID: l.n.ID().String(), Addrs: addrStrings(l.n)}, nil
}

func addrStrings(n *node.Node) []string {
	out := []string{}
	for _, a := range n.Addrs() {
		out = append(out, a.String())
	}
	return out
}

// Status implements API.
func (l *Local) Status(ctx context.Context) (StatusInfo, error) {
	st, err := l.n.Status()
	if err != nil {
		return StatusInfo{}, err
	}
	m := st.Metrics
	out := StatusInfo{
		ID: st.ID.String(), Addrs: addrStrings(l.n), Version: node.Version,
		Uptime: time.Since(l.started).Seconds(), Peers: st.Peers, DHTPeers: m.DHTPeers,
		Shares: st.Shares, Transfers: []TransferInfo{}, Uploads: m.Swarm.ServeSessions,
		BytesUp: m.Swarm.BytesUp, BytesDown: m.Swarm.BytesDown,
		Verified: m.Swarm.ChunksVerified, Rejected: m.Swarm.ChunksRejected, Served: m.Swarm.ChunksServed,
		Banned: m.Banned,
	}
	for _, t := range st.Transfers {
		out.Transfers = append(out.Transfers, TransferInfo{
			Target: targetString(t.Target), Dest: t.Dest, Started: t.Started,
			Bytes: t.Progress.Bytes, Total: t.Progress.Total, Peers: t.Progress.Peers,
		})
	}
	l.mu.Lock()
	out.RateUp, out.RateDown = l.rateUp, l.rateDown
	l.mu.Unlock()
	caps := l.n.Caps() // as the UI may have changed them
	out.Limits = LimitsInfo{
		UploadRate: caps.UploadRate, DownloadRate: caps.DownloadRate,
		PeerUploadRate: caps.PeerUploadRate, PeerDownloadRate: caps.PeerDownloadRate,
		UploadSlots: l.cfg.UploadSlots,
	}
	out.Protocols = []ProtocolBytesInfo{}
	for _, pb := range m.Protocols {
		out.Protocols = append(out.Protocols, ProtocolBytesInfo{Protocol: string(pb.Protocol), In: pb.In, Out: pb.Out})
	}
	out.Network = l.cfg.Network.String()
	out.DHTProtocol = string(l.n.DHTProtocol())
	if boot, err := l.cfg.BootstrapPeers(); err == nil {
		out.BootstrapPeers = len(boot)
	}
	out.PrivateNetwork = len(l.cfg.SwarmKey) > 0
	out.AllowPeers = []string{}
	for _, p := range l.cfg.AllowPeers {
		out.AllowPeers = append(out.AllowPeers, p.String())
	}
	out.Reachability = l.reachability()
	shares, err := l.n.Shares()
	if err != nil {
		return StatusInfo{}, err
	}
	out.StaleShares = []ShareInfo{}
	for _, s := range shares {
		if s.Stale {
			out.StaleShares = append(out.StaleShares, l.shareInfo(s))
		}
	}
	return out, nil
}

// reachability reports the node's reachability and its settings.
func (l *Local) reachability() ReachInfo {
	r := l.n.Reachability()
	out := ReachInfo{
		State: r.State.String(), Forced: r.Forced, PublicAddrs: []string{},
		Relays: append([]string{}, l.cfg.Relays...), Reservations: []ReservationInfo{},
		NATPortMap: l.cfg.NATPortMap, HolePunching: !l.cfg.NoHolePunch,
		AutoNATService: l.cfg.AutoNATService || l.cfg.Network == node.NetworkPublic,
	}
	for _, a := range r.PublicAddrs {
		out.PublicAddrs = append(out.PublicAddrs, a.String())
	}
	for _, rv := range r.Reservations {
		ri := ReservationInfo{Relay: rv.Relay.String(), Addrs: []string{}}
		for _, a := range rv.Addrs {
			ri.Addrs = append(ri.Addrs, a.String())
		}
		out.Reservations = append(out.Reservations, ri)
	}
	if rs := r.RelayService; rs != nil {
		out.RelayService = &RelayServiceInfo{
			Unlimited: rs.Unlimited, Data: rs.Data, Duration: rs.Duration.Seconds(),
			Reservations: rs.Reservations, Circuits: rs.Circuits, Summary: rs.String(),
		}
	}
	for _, p := range r.Peers {
		if p.Direct {
			out.Direct++
		} else {
			out.Relayed++
		}
	}
	return out
}

func targetString(t node.Target) string {
	if t.IPNS != "" && !t.Root.Defined() {
		if t.Path != "" {
			return t.IPNS + "/" + t.Path
		}
		return t.IPNS
	}
	if t.Path != "" {
		return t.Root.String() + "/" + t.Path
	}
	return t.Root.String()
}

// Peers implements API.
func (l *Local) Peers(ctx context.Context) ([]PeerInfo, error) {
	out := []PeerInfo{}
	banned := map[peer.ID]bool{}
	for _, p := range l.n.Bans() {
		banned[p] = true
	}
	paths := map[peer.ID]node.PeerPath{}
	for _, pp := range l.n.Reachability().Peers {
		paths[pp.Peer] = pp
	}
	for _, p := range l.n.Peers() {
		pi := PeerInfo{ID: p.String(), Banned: banned[p], Addrs: []string{}}
		if pp, ok := paths[p]; ok {
			pi.Direct, pi.Limited, pi.Path = pp.Direct, pp.Limited, pp.String()
			for _, r := range pp.Relays {
				pi.Relays = append(pi.Relays, r.String())
			}
		}
		for _, c := range l.n.Host().Network().ConnsToPeer(p) {
			pi.Addrs = append(pi.Addrs, c.RemoteMultiaddr().String())
		}
		sort.Strings(pi.Addrs)
		out = append(out, pi)
	}
	return out, nil
}

// Shares implements API.
func (l *Local) Shares(ctx context.Context) ([]ShareInfo, error) {
	shares, err := l.n.Shares()
	if err != nil {
		return nil, err
	}
	out := []ShareInfo{}
	for _, s := range shares {
		out = append(out, l.shareInfo(s))
	}
	return out, nil
}

func (l *Local) shareInfo(s node.Share) ShareInfo {
	return ShareInfo{
		Root: s.Root.String(), Ticket: l.n.Ticket(s.Root), Path: s.Path, Name: s.Name, Dir: s.Dir,
		Size: s.Size, Files: s.Files, Chunker: s.Chunking, Created: s.Created, Stale: s.Stale,
	}
}

// Share implements API.
func (l *Local) Share(ctx context.Context, req ShareRequest) (ShareInfo, error) {
	if !filepath.IsAbs(req.Path) {
		return ShareInfo{}, errorf(ErrBadRequest, "share: %q is not an absolute path", req.Path)
	}
	opts := node.ShareOptions{FollowLinks: req.FollowLinks, PreserveMode: req.PreserveMode, PreserveMtime: req.PreserveMtime}
	if req.Chunker != "" || req.ChunkSize != "" {
		p, err := ParseChunking(req.Chunker, req.ChunkSize)
		if err != nil {
			return ShareInfo{}, errorf(ErrBadRequest, "share: %v", err)
		}
		opts.Chunking = p
	}
	if _, err := os.Stat(req.Path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ShareInfo{}, errorf(ErrNotFound, "share: %s does not exist", req.Path)
		}
		return ShareInfo{}, errorf(ErrBadRequest, "share: %v", err)
	}
	res, err := l.n.Share(ctx, req.Path, opts)
	if errors.Is(err, node.ErrPrivate) {
		return ShareInfo{}, errorf(ErrBadRequest, "%v", err)
	}
	if err != nil {
		return ShareInfo{}, err
	}
	return ShareInfo{
		Root: res.Root.String(), Ticket: res.Ticket, Path: req.Path, Name: res.Name, Dir: res.Dir,
		Size: res.Size, Files: int64(res.Files), Chunks: res.Chunks, Chunker: res.Chunking, Standard: &res.Standard, Skipped: res.Skipped,
		SkippedLinks: res.SkippedLinks, Reused: int64(res.Reused), ReusedBytes: res.ReusedBytes,
		KeepsStamps: &res.KeepsStamps,
	}, nil
}

// Unshare implements API.
func (l *Local) Unshare(ctx context.Context, root string) error {
	c, err := cid.Decode(root)
	if err != nil {
		return errorf(ErrBadRequest, "unshare: %q is not a root CID: %v", root, err)
	}
	if err := l.n.Unshare(c); err != nil {
		if errors.Is(err, node.ErrNotFound) {
			return errorf(ErrNotFound, "unshare: this node does not share %s (see peer ls)", root)
		}
		return err
	}
	return nil
}

// Inspect implements API.
func (l *Local) Inspect(ctx context.Context, req InspectRequest) (ListingInfo, error) {
	t, peers, err := parseTarget(req.Target, req.Peers)
	if err != nil {
		return ListingInfo{}, err
	}
	// Find the root's node within the find timeout first: the rest of
	// it comes from the peers that gave it.
	if _, err := l.describe(ctx, t, peers); err != nil {
		return ListingInfo{}, err
	}
	m, err := l.n.Inspect(ctx, t, peers)
	if err != nil {
		return ListingInfo{}, l.explain(t, err)
	}
	out := ListingInfo{Root: m.Root.String(), Name: m.Name, Dir: m.Dir, Size: m.Size, Files: []FileInfo{}, Dirs: m.Dirs}
	for _, f := range m.Files {
		fi := FileInfo{Path: f.Path, CID: f.CID.String(), Size: f.Size, Chunker: f.Chunking, Chunks: make([]ChunkInfo, 0, len(f.Chunks))}
		for _, c := range f.Chunks {
			fi.Chunks = append(fi.Chunks, ChunkInfo{CID: c.CID.String(), Offset: c.Offset, Size: c.Size})
		}
		out.Files = append(out.Files, fi)
	}
	return out, nil
}

func parseTarget(s string, peerAddrs []string) (node.Target, []peer.AddrInfo, error) {
	t, err := node.ParseTarget(s)
	if err != nil {
		return t, nil, errorf(ErrBadRequest, "%v", err)
	}
	var peers []peer.AddrInfo
	for _, a := range peerAddrs {
		ai, err := peer.AddrInfoFromString(a)
		if err != nil {
			return t, nil, errorf(ErrBadRequest, "peer address %q: %v (want /ip4/ADDR/tcp/PORT/p2p/PEERID)", a, err)
		}
		peers = append(peers, *ai)
	}
	return t, peers, nil
}

// explain turns the node's errors about a target into the API's.
func (l *Local) explain(t node.Target, err error) error {
	name := targetString(t)
	switch {
	case errors.Is(err, node.ErrNoProviders), errors.Is(err, context.DeadlineExceeded):
		return errorf(ErrNotFound, "no peer provides %s: none found in %v; check the root, ask the sharer for a ticket, or name a peer with --peer", name, l.cfg.FindTimeout)
	case errors.Is(err, node.ErrExists):
		return errorf(ErrExists, "%v", err)
	}
	return err
}

// describe resolves t, waiting at most the find timeout for a provider.
func (l *Local) describe(ctx context.Context, t node.Target, peers []peer.AddrInfo) (node.Entry, error) {
	dctx, cancel := context.WithTimeout(ctx, l.cfg.FindTimeout)
	defer cancel()
	e, err := l.n.Describe(dctx, t, peers)
	if err != nil {
		if ctx.Err() != nil {
			return e, ctx.Err()
		}
		return e, l.explain(t, err)
	}
	return e, nil
}

// checkDest refuses a destination that exists (without force) or whose
// folder cannot be written, before anything is fetched.
func checkDest(dest string, force bool) error {
	if !filepath.IsAbs(dest) {
		return errorf(ErrBadRequest, "destination %q is not an absolute path", dest)
	}
	if _, err := os.Lstat(dest); err == nil && !force {
		return errorf(ErrExists, "%s exists: pass --force to replace it, or choose another path with -o", dest)
	}
	dir := filepath.Dir(dest)
	fi, err := os.Stat(dir)
	if err != nil {
		return errorf(ErrBadRequest, "cannot write %s: %v (create the folder, or choose another path with -o)", dest, err)
	}
	if !fi.IsDir() {
		return errorf(ErrBadRequest, "cannot write %s: %s is not a folder", dest, dir)
	}
	f, err := os.CreateTemp(dir, ".peer-probe-*")
	if err != nil {
		return errorf(ErrBadRequest, "cannot write in %s: %v (choose another path with -o)", dir, errors.Unwrap(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// Get implements API. progress is called from the fetch's loop and must not
// block.
func (l *Local) Get(ctx context.Context, req GetRequest, progress func(ProgressInfo)) (GetResult, error) {
	t, peers, err := parseTarget(req.Target, req.Peers)
	if err != nil {
		return GetResult{}, err
	}
	dest := req.Dest
	var entry node.Entry
	if dest == "" {
		if !filepath.IsAbs(req.Dir) {
			return GetResult{}, errorf(ErrBadRequest, "get: no destination and no absolute folder to put it in")
		}
		if entry, err = l.describe(ctx, t, peers); err != nil {
			return GetResult{}, err
		}
		// The sharer picked this name: one the user would not see is
		// refused.
		if dest, err = node.DefaultDest(req.Dir, entry.Name); err != nil {
			return GetResult{}, errorf(ErrBadRequest, "%v", err)
		}
	}
	if err := checkDest(dest, req.Force); err != nil {
		return GetResult{}, err
	}
	meter := newMeter(time.Now())
	opts := node.FetchOptions{Force: req.Force, Peers: peers}
	if progress != nil {
		// Where it goes is said before anything is written.
		progress(ProgressInfo{Dest: dest})
		opts.Progress = func(p node.Progress) {
			pi := meter.update(p, time.Now())
			pi.Dest = dest
			progress(pi)
		}
	}
	res, err := l.n.Fetch(ctx, t, dest, opts)
	if err != nil {
		if ctx.Err() != nil {
			return GetResult{}, ctx.Err()
		}
		return GetResult{}, l.explain(t, err)
	}
	out := GetResult{
		Root: res.Root.String(), Dest: res.Dest, Name: res.Name, Dir: res.Dir, Size: res.Size,
		Chunks: res.Chunks, Resumed: res.Progress.Resumed, Local: res.Progress.Local, Seconds: time.Since(meter.start).Seconds(),
		Duplicate: res.Progress.Duplicate, FromPeers: map[string]int64{},
	}
	for p, b := range res.Progress.PerPeer {
		out.FromPeers[p.String()] = b
	}
	return out, nil
}

// Cat implements API: it reads the file through node.Open, which fetches
// the chunks at the read position first (into the home's streams folder)
// or reads a file this node has from where it lies, verifying every chunk.
func (l *Local) Cat(ctx context.Context, req GetRequest, w io.Writer) error {
	t, peers, err := parseTarget(req.Target, req.Peers)
	if err != nil {
		return err
	}
	e, err := l.describe(ctx, t, peers)
	if err != nil {
		return err
	}
	if e.Dir {
		return errorf(ErrBadRequest, "%s is a folder: -o - streams one file; name a file inside it (ROOT/path) or pass -o FOLDER", req.Target)
	}
	r, err := l.n.Open(ctx, node.Target{Root: e.Root, Hint: t.Hint}, node.FetchOptions{Peers: peers})
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return l.explain(t, err)
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("daemon: streaming %s: %w", req.Target, err)
	}
	return nil
}

// meter turns the node's progress reports into ProgressInfo with a rate
// (over quarter-second windows, smoothed; the average until the first
// window and at the end) and an ETA.
type meter struct {
	start   time.Time
	lastAt  time.Time
	last    int64
	base    int64 // bytes at the first report of a resumed fetch (found on disk)
	seen    bool
	windows int
	rate    float64
}

func newMeter(now time.Time) *meter { return &meter{start: now, lastAt: now} }

func (m *meter) update(p node.Progress, now time.Time) ProgressInfo {
	if !m.seen {
		m.seen, m.last, m.lastAt = true, p.Bytes, now
		if p.Resumed > 0 || p.Local > 0 {
			m.base = p.Bytes // found on disk, not transferred
		}
	}
	average := func() float64 {
		if el := now.Sub(m.start).Seconds(); el > 0 {
			return float64(p.Bytes-m.base) / el
		}
		return 0
	}
	switch dt := now.Sub(m.lastAt).Seconds(); {
	case p.Done:
		m.rate = average()
	case dt >= 0.25:
		r := float64(p.Bytes-m.last) / dt
		if m.windows == 0 {
			m.rate = r
		} else {
			m.rate = 0.7*m.rate + 0.3*r
		}
		m.windows++
		m.lastAt, m.last = now, p.Bytes
	case m.windows == 0:
		m.rate = average()
	}
	out := ProgressInfo{
		Bytes: p.Bytes, Total: p.Total, Chunks: p.Chunks, Of: p.Of, Resumed: p.Resumed,
		Peers: p.Peers, Rate: m.rate, Elapsed: now.Sub(m.start).Seconds(), Done: p.Done,
	}
	if p.Root.Defined() {
		out.Root = p.Root.String()
	}
	if m.rate > 0 && !p.Done && p.Total > p.Bytes {
		out.ETA = float64(p.Total-p.Bytes) / m.rate
	}
	return out
}
