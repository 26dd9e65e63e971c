package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peer-project/peer/dht"
	"github.com/peer-project/peer/importer"
	"github.com/peer-project/peer/names"
	"github.com/peer-project/peer/store"
	"github.com/peer-project/peer/swarm"
	"github.com/peer-project/peer/ticket"
	"github.com/peer-project/peer/unixfs"
)

// dbFile is the database's name in the home directory.
const dbFile = "peer.db"

// Node is a peer: it shares files in place, serves them to other peers and
// fetches roots from every peer that has them. Make one with New; its
// methods are safe for concurrent use.
type Node struct {
	cfg      Config
	log      *slog.Logger
	host     host.Host
	ownsHost bool
	store    *store.Store
	swarm    *swarm.Swarm
	dht      *dht.DHT // nil with NoDHT
	mdns     *dht.MDNS
	// bandwidth counts stream bytes by protocol on a host the node built
	// (nil on the caller's); relays finds a public node's relay
	// candidates (nil on the caller's host).
	bandwidth *protocolCounter
	relays    *relayCandidates

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu        sync.Mutex
	closed    bool
	transfers map[*Transfer]struct{} // fetches in progress, guarded by mu
	metrics   nodeMetrics

	streamMu sync.Mutex
	streams  map[cid.Cid]*stream // Open's fetches in flight, by root

	// unshares counts the shares Unshare removed, each after the store
	// forgot it: a partial share whose holdings were looked up before
	// the count moved looks them up again (source.go, serve).
	unshares atomic.Uint64

	names   *names.Resolver // names.go
	namesMu sync.Mutex
	pubs    map[names.Name]*publication // guarded by namesMu
	follows map[*follower]struct{}      // guarded by namesMu
}

// New starts a node: it opens (or creates) its home directory, identity and
// database, starts libp2p unless cfg.Host is given, the exchange, the DHT and
// (on a LAN address) mDNS, and serves every share it had. It returns a
// working node or an error with nothing left running. ctx bounds the
// start-up (DHT bootstrap) only.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("node: home %s: %w", cfg.Home, err)
	}
	if cfg.Seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		cfg.Seed = binary.LittleEndian.Uint64(b[:])
	}
	n := &Node{cfg: cfg, transfers: map[*Transfer]struct{}{}, streams: map[cid.Cid]*stream{}}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()

	n.host = cfg.Host
	var gate *gater // of the host the node builds
	if n.host == nil {
		key, err := loadIdentity(cfg.Home)
		if err != nil {
			return nil, err
		}
		gate = newGater(cfg.AllowPeers)
		n.bandwidth = newProtocolCounter()
		n.relays = &relayCandidates{}
		if n.host, err = buildHost(&n.cfg, key, gate, hostDeps{bandwidth: n.bandwidth, relays: n.relays}); err != nil {
			return nil, err
		}
		n.ownsHost = true
		cleanup = append(cleanup, func() { n.host.Close() })
	}
	n.log = cfg.Logger.With("node", n.host.ID().ShortString())

	n.store, err = store.Open(filepath.Join(cfg.Home, dbFile), store.Options{NoSync: cfg.NoSync, Logger: n.log, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	cleanup = append(cleanup, func() { n.store.Close() })

	scfg := swarm.Config{
		Logger: n.log, Seed: cfg.Seed, RequestTimeout: cfg.RequestTimeout, Now: cfg.Now, Lookup: n.lookup,
		UploadRate: cfg.UploadRate, DownloadRate: cfg.DownloadRate,
		PeerUploadRate: cfg.PeerUploadRate, PeerDownloadRate: cfg.PeerDownloadRate,
		UploadSlots: cfg.UploadSlots, Bitswap: cfg.bitswap(),
	}
	if len(cfg.AllowPeers) > 0 {
		scfg.Allow = newGater(cfg.AllowPeers).allowed
	}
	if gate != nil {
		// A banned peer is cut off, not only refused the exchange: its
		// connections close and it may not connect again (DHT included)
		// until the ban ends.
		scfg.OnBan = func(p peer.ID) {
			n.goroutine(func() { n.host.Network().ClosePeer(p) })
		}
	}
	n.swarm = swarm.New(n.host, n.store, scfg)
	cleanup = append(cleanup, func() { n.swarm.Close() })
	if err := n.startNames(); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, func() { n.names.Close() })
	if gate != nil {
		gate.setBanned(n.swarm.Banned)
	}

	if !cfg.NoDHT {
		dcfg := cfg.dhtConfig(n.log)
		n.dht, err = dht.New(n.host, dcfg)
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		cleanup = append(cleanup, func() { n.dht.Close() })
		if n.relays != nil {
			n.relays.setTable(n.dht.Kad().RoutingTable().ListPeers)
		}
		if len(dcfg.Bootstrap) > 0 {
			if err := n.dht.Bootstrap(ctx); err != nil {
				n.log.Warn("DHT bootstrap", "err", err)
			}
		}
	}
	if n.ownsHost && cfg.mdnsOn(n.host.Addrs()) {
		if n.mdns, err = dht.StartMDNS(n.host, n.log, nil); err != nil {
			n.log.Warn("mDNS off", "err", err)
			n.mdns, err = nil, nil
		} else {
			cleanup = append(cleanup, func() { n.mdns.Close() })
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.startPunchRetry(); err != nil {
		n.cancel()
		return nil, err
	}
	if err := n.serveShares(); err != nil {
		n.cancel()
		return nil, err
	}
	return n, nil
}

// serveShares registers every share in the database with the exchange and
// announces it.
func (n *Node) serveShares() error {
	shares, err := n.store.Shares()
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	for _, sh := range shares {
		if err := n.serve(n.ctx, sh.Root); err != nil {
			n.log.Warn("not serving a share", "root", sh.Root, "path", sh.Path, "err", err)
		}
	}
	return nil
}

// serve builds the layout of a share from the database and registers it.
func (n *Node) serve(ctx context.Context, root cid.Cid) error {
	l, err := swarm.BuildLayout(ctx, n.store, root)
	if err != nil {
		return err
	}
	gen := n.unshares.Load()
	src, err := newShareSource(ctx, n.store, root, l, shareHolds(n.store, root, l))
	if err != nil {
		return err
	}
	if have := src.have.Load(); have != nil {
		n.log.Info("serving part of a share: it indexes only some of its files", "root", root,
			"chunks", have.Count(), "of", l.NumChunks())
	}
	n.swarm.Serve(root, src)
	if n.unshares.Load() != gen {
		// An unshare since its holdings were looked up, which may have
		// looked at the registered sources before src was one of them.
		n.reheld(src)
	}
	n.provide(root)
	return nil
}

// provide announces root on the DHT in the background.
func (n *Node) provide(root cid.Cid) {
	if n.dht == nil {
		return
	}
	n.goroutine(func() {
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Minute)
		defer cancel()
		if err := n.dht.Provide(ctx, root); err != nil && n.ctx.Err() == nil {
			n.log.Debug("provide", "root", root, "err", err)
		}
	})
}

func (n *Node) goroutine(fn func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		fn()
	}()
}

// Close stops the node: shares being indexed and fetches end (their partial
// files stay, to resume) and Close waits for them, but that a fetch of Open
// that holds every chunk first moves its file into place and indexes it;
// sessions close, the DHT and libp2p stop (unless the host was the
// caller's), and the database is flushed and closed. It waits for every
// goroutine of the node. It is idempotent; later calls return nil.
func (n *Node) Close() error {
	var errs []error
	n.once.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		n.cancel()
		n.finishStreams()
		if n.mdns != nil {
			n.mdns.Close()
		}
		n.swarm.Close()
		n.wg.Wait()
		errs = append(errs, n.closeNames())
		if n.dht != nil {
			errs = append(errs, n.dht.Close())
		}
		if n.ownsHost {
			errs = append(errs, n.host.Close())
		}
		errs = append(errs, n.store.Close())
	})
	return errors.Join(errs...)
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// enter starts a long call (Share, Fetch): Close cancels the context it
// returns and waits until done is called.
func (n *Node) enter(ctx context.Context) (_ context.Context, done func(), _ error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, nil, ErrClosed
	}
	n.wg.Add(1)
	n.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(n.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
		n.wg.Done()
	}, nil
}

// Config returns the configuration the node runs with: the one New was
// given, with every default filled in (see Config.WithDefaults) and Seed
// set. It is safe for concurrent use; the caller may change the copy.
func (n *Node) Config() Config {
	c := n.cfg
	c.Listen, c.Bootstrap, c.Relays, c.AnnounceAddrs = slices.Clone(c.Listen), slices.Clone(c.Bootstrap), slices.Clone(c.Relays), slices.Clone(c.AnnounceAddrs)
	c.AllowPeers, c.SwarmKey = slices.Clone(c.AllowPeers), slices.Clone(c.SwarmKey)
	return c
}

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host returns the libp2p host the node runs on.
func (n *Node) Host() host.Host { return n.host }

// Addrs returns the node's listen addresses, each with /p2p/ID appended.
func (n *Node) Addrs() []ma.Multiaddr {
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	return addrs
}

// AddrInfo returns the node's ID and listen addresses.
func (n *Node) AddrInfo() peer.AddrInfo {
	addrs := n.host.Addrs()
	// AutoRelay publishes circuit addresses only through relays with public
	// addresses; a node behind NAT that holds a reservation elsewhere (a
	// relay on a LAN, say) still needs them in its tickets.
	circuit := false
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_CIRCUIT); err == nil {
			circuit = true
			break
		}
	}
	if !circuit {
		for _, r := range n.Reachability().Reservations {
			addrs = append(addrs, r.Addrs...)
		}
	}
	return peer.AddrInfo{ID: n.host.ID(), Addrs: addrs}
}

// Connect connects to a peer (and adds it to the DHT's view).
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	return n.host.Connect(ctx, ai)
}

// Peers lists the peers the node is connected to, sorted.
func (n *Node) Peers() []peer.ID {
	ps := n.host.Network().Peers()
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// Stats returns the exchange's counters. It is safe for concurrent use.
func (n *Node) Stats() Stats { return statsOf(n.swarm.Stats()) }

// Bans lists the peers banned now.
func (n *Node) Bans() []peer.ID { return n.swarm.Bans() }

// ShareResult is what Share returns.
type ShareResult struct {
	Root     cid.Cid // what people pass around
	Ticket   string  // root and this node's addresses
	Name     string  // the base name of the shared path
	Dir      bool    // a folder, not a single file
	Size     int64   // bytes in all files
	Files    int     // regular files shared
	Chunks   int64   // chunks in all files (a chunk in two files counts twice)
	Chunking string  // how the files were cut, as Chunking.String says
	// Standard says whether Root is the unixfs-v1-2025 root that Kubo
	// computes for the same bytes (see HashResult.Standard).
	Standard bool
	// Skipped are special files inside a folder that were left out.
	Skipped []string
	// SkippedLinks are the symbolic links inside a folder that lead out of
	// it and were left out (see ShareOptions.FollowLinks).
	SkippedLinks []string
	// Reused counts the files that were not read again: unchanged since
	// an earlier share of the same path (see Share), and ReusedBytes
	// their bytes.
	Reused      int
	ReusedBytes int64
	// KeepsStamps says whether the shared path lies on a file system
	// where the store keeps stamps (store.KeepsStamps: ext4, xfs, btrfs,
	// f2fs, bcachefs, zfs, on Linux). Elsewhere (tmpfs, overlayfs, FAT, a
	// network file system, any system but Linux) every chunk served is
	// hashed again each time it is read, and sharing the path again reads
	// every file again: sharing from a disk file system costs less. Only
	// the path's own file system is looked at, not those mounted inside a
	// folder.
	KeepsStamps bool
}

// ShareOptions tune Share.
type ShareOptions struct {
	// Chunking overrides Config.Chunking for this share.
	Chunking Chunking
	// Progress, if not nil, is called after each file with the bytes
	// read so far. It is not kept with a published name (Republish).
	Progress func(bytes int64) `json:"-"`
	// FollowLinks shares what the symbolic links in the folder point at;
	// without it a link that stays inside the folder is shared as a
	// symlink and one that leads out is left out (ShareResult.SkippedLinks).
	FollowLinks bool
	// PreserveMode and PreserveMtime store each file's and folder's mode
	// and modification time as UnixFS 1.5 metadata (Kubo's
	// --preserve-mode and --preserve-mtime); a fetch applies them. The
	// root then is not the unixfs-v1-2025 one.
	PreserveMode, PreserveMtime bool

	// read, if set, wraps each file the import reads, once opened (tests
	// count what is read); nil reads the file as it is.
	read func(name string, f *os.File) io.ReadCloser
}

// Share indexes the file or folder at path in place (nothing is copied),
// serves it and announces it. It blocks until every byte has been read and
// hashed. Sharing the same path again replaces the earlier share, and
// reads only what changed: a file whose stamp (device, inode, size,
// modification and change times) is the one the last share of the path
// recorded, on a file system that keeps stamps (ext4, xfs, btrfs...; not
// tmpfs), last changed safely before that share started, keeps the chunks
// hashed then (ShareResult.Reused; package store says why that is safe).
// Hash computes the same root without a node.
func (n *Node) Share(ctx context.Context, path string, opts ShareOptions) (*ShareResult, error) {
	res, err := n.share(ctx, path, opts)
	return res, translate(err)
}

func (n *Node) share(ctx context.Context, path string, opts ShareOptions) (*ShareResult, error) {
	ctx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	params := n.cfg.Chunking
	if opts.Chunking != (Chunking{}) {
		params = opts.Chunking
	}
	// The home (identity key, API token, database) is never shared.
	iopts := importer.Options{Params: params, Progress: opts.Progress, Private: []string{n.cfg.Home}, FollowLinks: opts.FollowLinks,
		PreserveMode: opts.PreserveMode, PreserveMtime: opts.PreserveMtime}
	tx, err := n.store.BeginShare(path)
	if err != nil {
		return nil, fmt.Errorf("share %s: %w", path, err)
	}
	iopts.Open = func(name string) (io.ReadCloser, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		// Before the import reads a byte of it: if nothing can write the
		// file now, the store seals it at once (store.ShareTx.Opened).
		tx.Opened(name, f)
		if opts.read != nil {
			return opts.read(name, f), nil
		}
		return f, nil
	}
	// What the last share of path recorded: unchanged files are not read.
	reuser, err := tx.Reuser(params)
	if err != nil {
		tx.Abort()
		return nil, fmt.Errorf("share %s: %w", path, err)
	}
	iopts.Reuse = func(p string, info fs.FileInfo) (cid.Cid, []importer.Loc, bool) {
		root, chunks, ok := reuser.File(p, info.Size(), info.ModTime())
		if !ok {
			return cid.Undef, nil, false
		}
		locs := make([]importer.Loc, len(chunks))
		for i, c := range chunks {
			locs[i] = importer.Loc{CID: c.CID, Offset: c.Offset, Size: c.Size}
		}
		return root, locs, true
	}
	sink := &shareSink{tx: tx, store: n.store, pending: map[string][]store.ChunkLoc{}}
	res, err := importer.Import(ctx, path, iopts, sink)
	if err == nil {
		err = sink.flushBlocks()
	}
	if err == nil {
		err = tx.Commit(res.Root, store.ShareInfo{Name: res.Name, Size: res.Size, Files: int64(res.Files), Dir: res.Dir, Chunking: params})
	}
	if err != nil {
		tx.Abort()
		return nil, fmt.Errorf("share %s: %w", path, err)
	}
	if err := n.serve(ctx, res.Root); err != nil {
		return nil, fmt.Errorf("share %s: %w", path, err)
	}
	return &ShareResult{
		Root: res.Root, Ticket: n.Ticket(res.Root), Name: res.Name, Dir: res.Dir, Size: res.Size, Files: res.Files,
		Chunks: res.Chunks, Chunking: params.String(), Standard: res.Standard, Skipped: res.Skipped, SkippedLinks: res.SkippedLinks,
		Reused: res.Reused, ReusedBytes: res.ReusedBytes, KeepsStamps: store.KeepsStamps(path),
	}, nil
}

// Ticket returns a ticket for root naming this node and its addresses.
func (n *Node) Ticket(root cid.Cid) string {
	return ticket.Ticket{Root: root, Provider: n.AddrInfo()}.String()
}

// Unshare stops serving and announcing root and forgets its index: from
// then on nothing of it is answered to peers (no HAVE, no DAG node,
// no chunk), unless another share holds it. A fetch of root that is
// running goes on, and serves what it has fetched, as every fetch does;
// it seeds root when it is done. The files themselves are untouched.
func (n *Node) Unshare(root cid.Cid) error {
	if n.isClosed() {
		return ErrClosed
	}
	sh, err := n.store.Share(root)
	if err != nil {
		return translate(fmt.Errorf("unshare %s: %w", root, err))
	}
	n.swarm.StopServing(root)
	if n.dht != nil {
		n.dht.StopProviding(root)
	}
	if err := n.store.Unshare(root); err != nil {
		return fmt.Errorf("unshare %s: %w", root, err)
	}
	// The partial shares that held some of its chunks hold them no
	// more; folders and files of it that were served on their own go
	// too, unless another share still holds them (and then hold what it
	// does).
	n.unshares.Add(1)
	srcs, err := n.servedShares()
	if err != nil {
		n.log.Warn("looking up what partial shares hold", "err", err)
	}
	n.reheldShares(srcs)
	n.swarm.ForgetLookups(func(root cid.Cid, src swarm.Source) bool { return n.keepLookup(srcs, root, src) })
	n.dropImported(sh.Path)
	return nil
}

// Shares lists what the node shares. A share one of whose files changed on
// disk since it was indexed (size or modification time: the files are
// looked at, not read) is marked Stale: share the path again. It is safe
// for concurrent use.
func (n *Node) Shares() ([]Share, error) {
	shares, err := n.store.Shares()
	if err != nil {
		return nil, translate(fmt.Errorf("node: shares: %w", err))
	}
	changed := false
	for _, sh := range shares {
		if !sh.Stale && n.edited(sh) {
			changed = true
		}
	}
	if changed {
		if shares, err = n.store.Shares(); err != nil {
			return nil, translate(fmt.Errorf("node: shares: %w", err))
		}
	}
	out := make([]Share, 0, len(shares))
	for _, sh := range shares {
		out = append(out, shareOf(sh))
	}
	return out, nil
}

// shareSink writes what the importer produces into a share transaction.
// A file's chunk locations wait until its root is known (the store indexes
// them under it).
type shareSink struct {
	tx      *store.ShareTx
	store   *store.Store
	blocks  []store.Block
	pending map[string][]store.ChunkLoc
}

func (s *shareSink) PutBlock(b unixfs.Block) error {
	s.blocks = append(s.blocks, store.Block{CID: b.CID, Data: b.Data})
	if len(s.blocks) >= 256 {
		return s.flushBlocks()
	}
	return nil
}

func (s *shareSink) flushBlocks() error {
	if len(s.blocks) == 0 {
		return nil
	}
	err := s.store.PutBlocks(s.blocks)
	s.blocks = s.blocks[:0]
	return err
}

func (s *shareSink) AddChunks(path string, locs []importer.Loc) error {
	p := s.pending[path]
	for _, l := range locs {
		p = append(p, store.ChunkLoc{CID: l.CID, Offset: l.Offset, Size: l.Size})
	}
	s.pending[path] = p
	return nil
}

func (s *shareSink) FileDone(f importer.File) error {
	locs := s.pending[f.Path]
	delete(s.pending, f.Path)
	return addFile(s.tx, f.Path, f.Size, f.ModTime, f.Root, locs)
}

// addFile indexes a file's chunks in batches of a few thousand (the store
// writes them a megabyte or so per transaction); a file without chunks is
// indexed too.
func addFile(tx *store.ShareTx, path string, size int64, mtime time.Time, root cid.Cid, locs []store.ChunkLoc) error {
	for {
		k := min(len(locs), 4096)
		if err := tx.AddFile(path, size, mtime, root, locs[:k]); err != nil {
			return err
		}
		if locs = locs[k:]; len(locs) == 0 {
			return nil
		}
	}
}
