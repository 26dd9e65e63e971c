package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	ic "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/names"
	"github.com/peer-project/peer/ticket"
)

// Where names live in the home directory.
const (
	// KeysDir holds the named keys (names.Keystore), mode 0700.
	KeysDir = "keys"
	// namesDir holds one file per published name: its last sequence, so
	// that a record after a restart is newer than every one before.
	namesDir = "names"
)

// Defaults of PublishOptions and FollowOptions.
const (
	DefaultWatchInterval = 2 * time.Second
	// DefaultResolvePeers bounds how long Resolve waits for connected
	// peers before it asks the DHT.
	DefaultResolvePeers = 5 * time.Second
	// firstLookup bounds the look for a name's records before the first
	// publish from a home.
	firstLookup = 10 * time.Second
)

// ErrName: a name is not an IPNS name, or no record of it was found.
var ErrName = errors.New("node: name")

// PublishOptions tune Publish.
type PublishOptions struct {
	// Key names a key of the home's keystore (Home/keys), made if it is
	// missing; empty means the node's own key (its name is its peer ID's).
	Key string
	// Share tunes how PATH is shared.
	Share ShareOptions
	// Watch republishes whenever PATH changes, until Close or Unpublish:
	// the tree's stamps (size, modification time, inode of every entry)
	// are compared every WatchInterval, and once a change has settled (two
	// looks that agree) PATH is shared again and the name pointed at the
	// new root, debounced (names.DefaultDebounce).
	Watch bool
	// WatchInterval is how often a watched PATH is looked at; zero means
	// DefaultWatchInterval.
	WatchInterval time.Duration
	// OnRepublish, if set, hears of each republish of a watched PATH (and
	// of its error). It must not block.
	OnRepublish func(PublishResult, error)
}

// PublishResult is a name pointed at a root.
type PublishResult struct {
	Name  string // "/ipns/k51…"
	Path  string // what was shared
	Key   string // the key's name; "" for the node's own
	Root  cid.Cid
	Seq   uint64
	Share *ShareResult // nil for a republish that found nothing changed
	// Ticket names the name, this node and its addresses: a fetch of it
	// resolves the name (asking this node first) and gets its latest root.
	Ticket string
	// DHTErr says why the record could not be put in the DHT (no DHT
	// peer, say); connected peers have it anyway.
	DHTErr error
}

// NameRecord is a resolved name.
type NameRecord struct {
	Name string // "/ipns/k51…"
	Root cid.Cid
	Seq  uint64
	EOL  time.Time // valid until
	// From says where it was found: "peers" or "dht".
	From string
}

// publication is a name this node publishes.
type publication struct {
	pub  *names.Publisher
	path string
	seqf string // the file that keeps its last sequence

	mu      sync.Mutex // serialises writes of seqf (the only I/O under it)
	lastSeq uint64
	root    cid.Cid
	key     string // the key's name in the keystore; "" for the node's own
	watch   bool
	share   ShareOptions       // how path is shared, kept for Republish
	cancel  context.CancelFunc // stops the watch, if any
}

// startNames starts the names resolver on the node's host.
func (n *Node) startNames() error {
	r, err := names.NewResolver(names.Config{Host: n.host, Logger: n.log, Now: n.cfg.Now, OnRefused: n.nameRefused})
	if err != nil {
		return fmt.Errorf("node: names: %w", err)
	}
	n.names = r
	n.pubs = map[names.Name]*publication{}
	n.follows = map[*follower]struct{}{}
	return nil
}

// closeNames stops every publisher, then the resolver.
func (n *Node) closeNames() error {
	n.namesMu.Lock()
	pubs := n.pubs
	n.pubs = map[names.Name]*publication{}
	n.namesMu.Unlock()
	for _, p := range pubs {
		if p.cancel != nil {
			p.cancel()
		}
		p.pub.Close()
	}
	return n.names.Close()
}

// nameRefused hears of a record a peer sent for name that was refused,
// and tells the follows of that name; a message about no one name (a
// broken one, a flood) is only logged.
func (n *Node) nameRefused(p peer.ID, name names.Name, err error) {
	n.log.Info("refused a name record", "peer", p.String(), "name", name.String(), "err", err)
	if name.IsZero() {
		return
	}
	n.namesMu.Lock()
	fs := make([]*follower, 0, len(n.follows))
	for f := range n.follows {
		if f.name == name {
			fs = append(fs, f)
		}
	}
	n.namesMu.Unlock()
	for _, f := range fs {
		f.event(FollowEvent{Name: f.name.String(), Peer: p, Err: fmt.Errorf("follow %s: refused a record from %s: %w", f.name, p.ShortString(), err)})
	}
}

// keyOf returns the private key called name in the home's keystore, made
// if missing, or the node's own key for "".
func (n *Node) keyOf(name string) (ic.PrivKey, bool, error) {
	if name == "" {
		sk := n.host.Peerstore().PrivKey(n.host.ID())
		if sk == nil {
			return nil, false, fmt.Errorf("%w: the node's host has no private key to sign with; name a key", ErrName)
		}
		return sk, false, nil
	}
	ks, err := names.OpenKeystore(filepath.Join(n.cfg.Home, KeysDir))
	if err != nil {
		return nil, false, err
	}
	sk, err := ks.Get(name)
	if errors.Is(err, names.ErrNoKey) {
		sk, err = ks.Generate(name)
		return sk, true, err
	}
	return sk, false, err
}

// Publish shares path (see Share) and points a name at its root: the
// node's own name, or the name of the key opts.Key. The record goes at
// once to every connected peer that follows the name and into the DHT; it
// is signed again before it expires, until Close. Its sequence number is
// kept in the home, so it grows across restarts. It blocks until the path
// is shared and the DHT has answered. Publishing a name again (another
// path, or the same after a change) replaces what it points at.
func (n *Node) Publish(ctx context.Context, path string, opts PublishOptions) (*PublishResult, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	sk, _, err := n.keyOf(opts.Key)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", path, err)
	}
	p, err := n.publication(ctx, sk)
	if err != nil {
		return nil, fmt.Errorf("publish %s: %w", path, err)
	}
	p.mu.Lock()
	// A watch of an earlier Publish stops first: it would share its path
	// again and point the name back at it.
	if p.cancel != nil {
		p.cancel()
		p.cancel = nil
	}
	p.path, p.key, p.watch, p.share = path, opts.Key, opts.Watch, opts.Share
	p.mu.Unlock()
	sh, err := n.Share(ctx, path, opts.Share)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	rec, dhtErr := p.pub.Publish(ctx, sh.Root)
	if rec == nil {
		return nil, fmt.Errorf("publish %s: %w", path, dhtErr)
	}
	p.mu.Lock()
	p.root = sh.Root
	p.mu.Unlock()
	res := &PublishResult{Name: rec.Name.String(), Path: path, Key: opts.Key, Root: rec.Root, Seq: rec.Seq, Share: sh, DHTErr: dhtErr,
		Ticket: ticket.Ticket{Root: rec.Root, Provider: n.AddrInfo(), Name: rec.Name.Peer()}.String()}
	if opts.Watch {
		n.watch(p, path, opts)
	}
	return res, nil
}

// publication returns the publication of sk's name, starting its
// Publisher with the last sequence kept in the home.
func (n *Node) publication(ctx context.Context, sk ic.PrivKey) (*publication, error) {
	name, err := names.NameFromKey(sk.GetPublic())
	if err != nil {
		return nil, err
	}
	n.namesMu.Lock()
	p := n.pubs[name]
	n.namesMu.Unlock()
	if p != nil {
		return p, nil
	}
	dir := filepath.Join(n.cfg.Home, namesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p = &publication{seqf: filepath.Join(dir, strings.TrimPrefix(name.String(), names.Prefix)+".json")}
	if b, err := os.ReadFile(p.seqf); err == nil {
		var st struct{ Seq uint64 }
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, fmt.Errorf("%s is corrupt (%v): it keeps the name's last sequence number; move it away only if no record of the name was ever published", p.seqf, err)
		}
		p.lastSeq = st.Seq
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else {
		// The first publish from this home: the key may have published
		// elsewhere (a key copied from another home, a home restored
		// from an old backup). Followers ignore a record that is not
		// newer than theirs, so start above the best one found.
		rctx, cancel := context.WithTimeout(ctx, firstLookup)
		if rec, err := n.Resolve(rctx, name.String()); err == nil {
			p.lastSeq = rec.Seq
		}
		cancel()
	}
	pcfg := names.PublisherConfig{Key: sk, Resolver: n.names, LastSeq: p.lastSeq, Now: n.cfg.Now, Logger: n.log, OnPublish: p.saved(n)}
	if n.dht != nil {
		pcfg.DHT = n.dht.ValueStore()
	}
	pub, err := names.NewPublisher(pcfg)
	if err != nil {
		return nil, err
	}
	p.pub = pub
	n.namesMu.Lock()
	// Publish runs inside enter, so Close waits for it and closeNames then
	// closes p with the others: no check of n.closed is needed here.
	if q := n.pubs[name]; q != nil {
		n.namesMu.Unlock()
		pub.Close()
		return q, nil
	}
	n.pubs[name] = p
	n.namesMu.Unlock()
	return p, nil
}

// saved returns the OnPublish of p: it keeps each record's sequence in the
// home (written to a temporary file, synced, renamed).
func (p *publication) saved(n *Node) func(*names.Record, error) {
	return func(rec *names.Record, err error) {
		if rec == nil {
			n.log.Warn("publish", "err", err)
			return
		}
		if err != nil {
			n.log.Debug("publish: DHT", "name", rec.Name.String(), "err", err)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if rec.Seq <= p.lastSeq {
			return
		}
		b, _ := json.Marshal(savedName{Seq: rec.Seq, Root: rec.Root.String(), Key: p.key, Path: p.path, Watch: p.watch, Share: p.share})
		if err := writeFileSync(p.seqf, b, 0o600); err != nil {
			n.log.Error("keeping a name's sequence number", "file", p.seqf, "err", err)
			return
		}
		p.lastSeq = rec.Seq
	}
}

// savedName is what Home/names/NAME.json keeps of a published name.
type savedName struct {
	Seq   uint64 `json:"seq"`
	Root  string `json:"root"`
	Key   string `json:"key,omitempty"`
	Path  string `json:"path,omitempty"`
	Watch bool   `json:"watch,omitempty"`
	// Share is how Path was shared (chunking, links, metadata): shared
	// again otherwise, unchanged bytes would get another root.
	Share ShareOptions `json:"share"`
}

// Republish publishes again every name this home published before (kept
// in Home/names): each path is shared again (a change made while the node
// was stopped is taken in) and its name pointed at it with a higher
// sequence, and a path that was watched is watched again. It returns what
// it published, and the errors of the names it could not. It blocks until
// every path is shared; the daemon calls it at start.
func (n *Node) Republish(ctx context.Context) ([]PublishResult, error) {
	dir := filepath.Join(n.cfg.Home, namesDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("republish: %w", err)
	}
	var (
		out  []PublishResult
		errs []error
	)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var sn savedName
		if err := json.Unmarshal(b, &sn); err != nil {
			errs = append(errs, fmt.Errorf("republish: %s: %w", e.Name(), err))
			continue
		}
		if sn.Path == "" {
			continue
		}
		res, err := n.Publish(ctx, sn.Path, PublishOptions{Key: sn.Key, Watch: sn.Watch, Share: sn.Share})
		if err != nil {
			errs = append(errs, fmt.Errorf("republish %s: %w", strings.TrimSuffix(e.Name(), ".json"), err))
			continue
		}
		out = append(out, *res)
	}
	return out, errors.Join(errs...)
}

// writeFileSync writes b to path through a temporary file, synced and
// renamed into place, and syncs the folder.
func writeFileSync(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// watch republishes p whenever path changes, until Close.
//
// Why a poll of the tree's stamps and not fsnotify: fsnotify is not a
// dependency; inotify needs one watch per folder (a limit of 8192 by
// default on many systems) and drops events when its queue overflows, so a
// rescan is needed anyway; the poll is portable, costs one stat per entry
// per interval, runs on the node's clock in tests, and sees a change made
// while the node was stopped.
func (n *Node) watch(p *publication, path string, opts PublishOptions) {
	every := opts.WatchInterval
	if every <= 0 {
		every = DefaultWatchInterval
	}
	ctx, cancel := context.WithCancel(n.ctx)
	p.mu.Lock()
	if p.cancel != nil {
		p.cancel()
	}
	p.cancel = cancel
	p.mu.Unlock()
	n.goroutine(func() {
		defer cancel()
		last := treeStamp(path)
		tick := time.NewTicker(every)
		defer tick.Stop()
		changed := false
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			st := treeStamp(path)
			if st != last {
				// Still changing: wait until two looks agree.
				last, changed = st, true
				continue
			}
			if !changed {
				continue
			}
			changed = false
			sh, err := n.Share(ctx, path, opts.Share)
			if err != nil {
				if ctx.Err() == nil && opts.OnRepublish != nil {
					opts.OnRepublish(PublishResult{Name: p.pub.Name().String()}, fmt.Errorf("republish %s: %w", path, err))
				}
				continue
			}
			p.mu.Lock()
			same := sh.Root == p.root
			p.root = sh.Root
			p.mu.Unlock()
			if same {
				continue
			}
			p.pub.Set(sh.Root)
			n.log.Info("publishing a changed path again", "name", p.pub.Name().String(), "path", path, "root", sh.Root.String())
			if opts.OnRepublish != nil {
				opts.OnRepublish(PublishResult{Name: p.pub.Name().String(), Root: sh.Root, Share: sh}, nil)
			}
		}
	})
}

// treeStamp digests the size, modification time and inode of every entry
// below path (path itself included); an error reads as a stamp too.
func treeStamp(path string) uint64 {
	h := fnv.New64a()
	filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		fmt.Fprintf(h, "%s\x00", p)
		if err != nil {
			fmt.Fprintf(h, "err %v\x00", err)
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		fmt.Fprintf(h, "%d %d %d %o\x00", info.Size(), info.ModTime().UnixNano(), inode(info), info.Mode())
		return nil
	})
	return h.Sum64()
}

// Resolve finds the root a name ("/ipns/k51…", "k51…" or a peer ID) points
// at now: first among connected peers (for at most DefaultResolvePeers),
// then in the DHT. A record is refused if its signature does not verify
// against the name, if it has expired, or if it is older than one this
// node holds. A record found in the DHT of a name this node follows is
// kept, and pushed to the connected peers that follow the name. It blocks until found or ctx is done; safe for concurrent
// use.
func (n *Node) Resolve(ctx context.Context, name string) (*NameRecord, error) {
	nm, err := names.ParseName(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a name (want /ipns/k51…): %w", ErrName, name, err)
	}
	if n.isClosed() {
		return nil, ErrClosed
	}
	pctx, cancel := context.WithTimeout(ctx, DefaultResolvePeers)
	rec, perr := n.names.Resolve(pctx, nm)
	cancel()
	if perr == nil {
		return nameRecord(rec, "peers"), nil
	}
	if n.dht == nil {
		return nil, fmt.Errorf("%w: no connected peer has a record of %s (%v), and the node runs no DHT", ErrName, nm, perr)
	}
	// Kept if the name is followed here, and passed on at once to the
	// peers that follow it through this node; validated once.
	rec, err = n.names.ResolveDHT(ctx, n.dht.ValueStore(), nm)
	if err != nil {
		return nil, fmt.Errorf("%w: no record of %s among connected peers (%v) nor in the DHT: %w", ErrName, nm, perr, err)
	}
	return nameRecord(rec, "dht"), nil
}

// ParseName reads a name ("/ipns/k51…", "k51…" or a peer ID) and returns
// it as it prints, "/ipns/k51…". It is pure.
func ParseName(s string) (string, error) {
	nm, err := names.ParseName(s)
	if err != nil {
		return "", fmt.Errorf("%w: %q is not a name (want /ipns/k51…): %w", ErrName, s, err)
	}
	return nm.String(), nil
}

func nameRecord(r *names.Record, from string) *NameRecord {
	return &NameRecord{Name: r.Name.String(), Root: r.Root, Seq: r.Seq, EOL: r.EOL, From: from}
}

// resolveName resolves a target that names a name: its Root becomes the
// name's root now. The peers given are connected first, to be asked.
func (n *Node) resolveName(ctx context.Context, t Target, peers []peer.AddrInfo) (Target, error) {
	if t.IPNS == "" || t.Root.Defined() {
		return t, nil
	}
	if t.Hint != nil {
		peers = append([]peer.AddrInfo{*t.Hint}, peers...)
	}
	for _, ai := range peers {
		if err := n.host.Connect(ctx, ai); err != nil {
			n.log.Debug("resolve: connect", "peer", ai.ID.String(), "err", err)
		}
	}
	rec, err := n.Resolve(ctx, t.IPNS)
	if err != nil {
		return t, err
	}
	t.Root = rec.Root
	return t, nil
}
