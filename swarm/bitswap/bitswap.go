package bitswap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bsmsg "github.com/ipfs/boxo/bitswap/message"
	pb "github.com/ipfs/boxo/bitswap/message/pb"
	bsnetwork "github.com/ipfs/boxo/bitswap/network"
	"github.com/ipfs/boxo/bitswap/network/bsnet"
	"github.com/ipfs/boxo/bitswap/server"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Errors of the exchange.
var (
	ErrClosed   = errors.New("bitswap: closed")
	ErrRefused  = errors.New("bitswap: peer refused (banned, or not on the allowlist)")
	ErrTooMany  = errors.New("bitswap: too many wants outstanding with one peer")
	ErrReadOnly = errors.New("bitswap: the blockstore is read-only")
	ErrLinkDone = errors.New("bitswap: the link is closed")
)

// Protocols are the Bitswap protocol IDs this node speaks, newest first.
var Protocols = []protocol.ID{bsnet.ProtocolBitswap, bsnet.ProtocolBitswapOneOne, bsnet.ProtocolBitswapOneZero, bsnet.ProtocolBitswapNoVers}

// Blocks is what the server may send: a read-only view. Its methods are
// called from the server's goroutines, at once.
type Blocks interface {
	// Block returns c's bytes verified against c, or an error that
	// wraps ipld.ErrNotFound for a block that is not served here.
	Block(ctx context.Context, c cid.Cid) ([]byte, error)
	// BlockSize returns c's size and true if Block would give c, without
	// reading it.
	BlockSize(ctx context.Context, c cid.Cid) (int, bool)
}

// Config says what an Exchange serves and to whom.
type Config struct {
	// Blocks is what is served. Required.
	Blocks Blocks
	// Admit, if not nil, says which peers may exchange at all: a peer it
	// refuses is sent nothing and heard not at all.
	Admit func(peer.ID) bool
	// Sending, if not nil, is called before n bytes of blocks go to p, and
	// waits until they may (the upload slots and caps); an error drops
	// the message. Otherwise the message is written, and then done, if
	// not nil, is called with the write's error, whatever it is.
	Sending func(ctx context.Context, p peer.ID, n int) (done func(error), err error)
	// Sent, if not nil, is told the bytes of blocks sent to p.
	Sent func(p peer.ID, n int)
	// Received, if not nil, is told the bytes of blocks received from p.
	Received func(p peer.ID, n int)
	// Refused, if not nil, is told of each message dropped because Admit
	// refused its sender. It must not block.
	Refused func(p peer.ID)
	// Gone, if not nil, is told that p is gone: its last connection
	// closed, or it stopped answering (it may come back: Sending is then
	// called for it again). What was kept for p may go. It must not block.
	Gone func(p peer.ID)
	// Workers is how many messages the server prepares and sends at once
	// (its task workers), each to one peer; zero means 8. With a Sending
	// that makes peers wait their turn, a worker waits with its peer.
	Workers int
	// Logger receives the logs; nil means slog.Default().
	Logger *slog.Logger
}

// ask is what was asked of a peer for one CID: how many answers (a block
// or DONT_HAVE) may still come (a want sent again after a cancel may be
// answered twice; one sent again while open is the same wantlist entry,
// answered once), and whether the last was cancelled. A cancelled entry stays, so that a block that crossed the
// CANCEL is no stray, until it is answered or the table is full.
type ask struct {
	wants     uint32
	cancelled bool
}

// maxAsked bounds the wants one peer may have outstanding from this node,
// over all its links: a fetch asks a window of a few dozen at a time.
const maxAsked = 1 << 16

// Exchange serves blocks over Bitswap and lets fetches ask peers for
// blocks. Its methods are safe for concurrent use.
type Exchange struct {
	cfg    Config
	log    *slog.Logger
	net    bsnetwork.BitSwapNetwork
	server *server.Server
	host   host.Host
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once

	mu     sync.Mutex
	closed bool
	links  map[peer.ID]map[*Link]struct{}
	asked  map[peer.ID]map[cid.Cid]ask // CIDs wanted of a peer and not yet sent
	wg     sync.WaitGroup              // CANCELs of links closed, being sent

	strays  atomic.Int64
	refused atomic.Int64
}

// New starts Bitswap on h: it handles the Bitswap protocols until Close.
func New(h host.Host, cfg Config) *Exchange {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	ctx, cancel := context.WithCancel(context.Background())
	x := &Exchange{
		cfg: cfg, log: cfg.Logger.With("component", "bitswap"), host: h,
		ctx: ctx, cancel: cancel,
		links: map[peer.ID]map[*Link]struct{}{},
		asked: map[peer.ID]map[cid.Cid]ask{},
	}
	x.net = bsnet.NewFromIpfsHost(h)
	x.server = server.New(ctx, &gatedNet{BitSwapNetwork: x.net, x: x}, readOnly{cfg.Blocks},
		server.TaskWorkerCount(cfg.Workers),
		server.WithPeerBlockRequestFilter(func(p peer.ID, _ cid.Cid) bool { return x.admits(p) }),
	)
	x.net.Start(receiver{x})
	return x
}

// Close stops serving and ends every link; it waits for the server's
// workers and for the CANCELs of closed links being sent. Messages on
// Bitswap streams still open are dropped, and those streams reset. It is
// idempotent; it does not close the host.
func (x *Exchange) Close() error {
	x.once.Do(func() {
		for _, p := range Protocols {
			x.host.RemoveStreamHandler(p)
		}
		x.mu.Lock()
		x.closed = true
		x.mu.Unlock()
		x.net.Stop()
		x.resetInbound()
		x.server.Close()
		x.cancel()
		x.wg.Wait()
		x.mu.Lock()
		var all []*Link
		for _, set := range x.links {
			for l := range set {
				all = append(all, l)
			}
		}
		x.mu.Unlock()
		for _, l := range all {
			l.Close()
		}
	})
	return nil
}

// resetInbound resets the Bitswap streams that peers opened to us: boxo's
// network reads them until they end, Stop or not.
func (x *Exchange) resetInbound() {
	for _, c := range x.host.Network().Conns() {
		for _, st := range c.GetStreams() {
			if st.Stat().Direction == network.DirInbound && slices.Contains(Protocols, st.Protocol()) {
				st.Reset()
			}
		}
	}
}

// Speaks reports whether p said (through identify) that it speaks Bitswap.
func (x *Exchange) Speaks(p peer.ID) bool {
	ps, err := x.host.Peerstore().SupportsProtocols(p, Protocols...)
	return err == nil && len(ps) > 0
}

// Probe reports whether p speaks Bitswap: what identify said, or, when
// it said nothing of Bitswap (it may not have told of protocols the peer
// took up since), whether a Bitswap stream opens, which is then reset. It
// blocks until then or until ctx is done.
func (x *Exchange) Probe(ctx context.Context, p peer.ID) bool {
	if x.Speaks(p) {
		return true
	}
	if !x.admits(p) {
		return false
	}
	st, err := x.host.NewStream(ctx, p, Protocols...)
	if err != nil {
		return false
	}
	st.Reset()
	return true
}

// Strays counts the blocks that answered no want of ours.
func (x *Exchange) Strays() int64 { return x.strays.Load() }

// Refused counts the messages dropped because Admit refused their sender.
func (x *Exchange) Refused() int64 { return x.refused.Load() }

func (x *Exchange) admits(p peer.ID) bool { return x.cfg.Admit == nil || x.cfg.Admit(p) }

// Message is what a peer sent one link: blocks (each named by the hash of
// its bytes, so verified as far as its CID goes), the CIDs it said it does
// not have, and Strays: blocks that answered no want this node sent it.
type Message struct {
	Blocks    []blocks.Block
	DontHaves []cid.Cid
	Strays    []cid.Cid
}

// linkQueue is how many messages a link holds for its reader; past it the
// peer's stream waits (Bitswap has no other flow control).
const linkQueue = 16

// Link asks one peer for blocks and receives its answers. Close it when
// done. Safe for concurrent use.
type Link struct {
	x    *Exchange
	peer peer.ID
	in   chan Message
	done chan struct{}
	once sync.Once
	open map[cid.Cid]struct{} // wanted, not cancelled nor answered; guarded by x.mu
}

// Link opens a link to p: what p sends from now on comes out of
// Incoming until Close. It fails if p is refused or the exchange closed.
func (x *Exchange) Link(p peer.ID) (*Link, error) {
	if !x.admits(p) {
		return nil, fmt.Errorf("bitswap: link to %s: %w", p, ErrRefused)
	}
	l := &Link{x: x, peer: p, in: make(chan Message, linkQueue), done: make(chan struct{}), open: map[cid.Cid]struct{}{}}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil, ErrClosed
	}
	if x.links[p] == nil {
		x.links[p] = map[*Link]struct{}{}
	}
	x.links[p][l] = struct{}{}
	return l, nil
}

// Peer is the link's peer.
func (l *Link) Peer() peer.ID { return l.peer }

// Incoming carries what the peer sends; it is never closed. The reader
// must drain it until Done is closed (the peer's stream waits meanwhile).
func (l *Link) Incoming() <-chan Message { return l.in }

// Done is closed when the link is.
func (l *Link) Done() <-chan struct{} { return l.done }

// cancelTimeout bounds the sending of the CANCELs of a link closed.
const cancelTimeout = 10 * time.Second

// Close ends the link. The wants it sent that are still open, and that
// no other link to the peer has open, are cancelled: a CANCEL is sent to
// the peer (in the background; Exchange.Close waits for it), and what
// was asked is forgotten once answered or when the table fills. It does
// not block, and is idempotent.
func (l *Link) Close() {
	l.once.Do(func() {
		x := l.x
		x.mu.Lock()
		delete(x.links[l.peer], l)
		if len(x.links[l.peer]) == 0 {
			delete(x.links, l.peer)
		}
		var cancels []cid.Cid
		asked := x.asked[l.peer]
		for c := range l.open {
			if x.openLocked(l.peer, c) {
				continue // another link still wants it
			}
			cancels = append(cancels, c)
			if a, ok := asked[c]; ok {
				a.cancelled = true
				asked[c] = a
			}
		}
		clear(l.open)
		send := len(cancels) > 0 && !x.closed
		if send {
			x.wg.Add(1)
		}
		x.mu.Unlock()
		close(l.done)
		if send {
			go func() {
				defer x.wg.Done()
				x.sendCancels(l.peer, cancels)
			}()
		}
	})
}

// sendCancels sends p a CANCEL of each of cs, if it is still connected:
// a peer gone has forgotten our wants.
func (x *Exchange) sendCancels(p peer.ID, cs []cid.Cid) {
	ctx, cancel := context.WithTimeout(x.ctx, cancelTimeout)
	defer cancel()
	ctx = network.WithNoDial(ctx, "bitswap: cancels of a closed link")
	m := bsmsg.New(false)
	for _, c := range cs {
		m.Cancel(c)
	}
	if err := x.net.SendMessage(ctx, p, m); err != nil {
		x.log.Debug("cancels of a link closed", "peer", p, "err", err)
	}
}

// openLocked reports whether a link to p has a want of c open. x.mu is
// held.
func (x *Exchange) openLocked(p peer.ID, c cid.Cid) bool {
	for l := range x.links[p] {
		if _, ok := l.open[c]; ok {
			return true
		}
	}
	return false
}

// answerLocked records that p answered a want of c (a block, or
// DONT_HAVE): the links' wants of it are no longer open. It reports
// whether a want of c was outstanding. x.mu is held.
func (x *Exchange) answerLocked(p peer.ID, c cid.Cid) bool {
	for l := range x.links[p] {
		delete(l.open, c)
	}
	asked := x.asked[p]
	a, ok := asked[c]
	if !ok {
		return false
	}
	if a.wants--; a.wants == 0 {
		delete(asked, c)
	} else {
		asked[c] = a
	}
	return true
}

// Want asks the peer for blocks cs (want-block, and DONT_HAVE for those
// it lacks) and cancels cancels, in one message; a cancel of a CID that
// another link to the peer still wants is not sent (Bitswap keeps one
// wantlist per peer). It blocks until the message is written or ctx is
// done.
func (l *Link) Want(ctx context.Context, cs, cancels []cid.Cid) error {
	x := l.x
	if !x.admits(l.peer) {
		return fmt.Errorf("bitswap: want of %s: %w", l.peer, ErrRefused)
	}
	// A message holds one entry per CID: a CID wanted twice in it is
	// answered once.
	cs = dedup(cs)
	x.mu.Lock()
	if x.closed {
		x.mu.Unlock()
		return fmt.Errorf("bitswap: want of %s: %w", l.peer, ErrClosed)
	}
	select {
	case <-l.done:
		x.mu.Unlock()
		return fmt.Errorf("bitswap: want of %s: %w", l.peer, ErrLinkDone)
	default:
	}
	asked := x.asked[l.peer]
	if asked == nil {
		asked = map[cid.Cid]ask{}
		x.asked[l.peer] = asked
	}
	if len(asked)+len(cs) > maxAsked {
		// Wants cancelled and never answered linger: drop them first.
		for c, a := range asked {
			if a.cancelled {
				delete(asked, c)
			}
		}
	}
	if len(asked)+len(cs) > maxAsked {
		x.mu.Unlock()
		return fmt.Errorf("bitswap: want of %s: %w", l.peer, ErrTooMany)
	}
	sent := cancels[:0:0]
	for _, c := range cancels {
		delete(l.open, c)
		if x.openLocked(l.peer, c) {
			continue
		}
		sent = append(sent, c)
		if a, ok := asked[c]; ok {
			a.cancelled = true
			asked[c] = a
		}
	}
	cancels = sent
	for _, c := range cs {
		// A want still open at the peer (another link's, or this
		// one's again) is the same entry of its wantlist, answered
		// once: only a want after a CANCEL may bring a second answer.
		if a, ok := asked[c]; !ok || a.cancelled {
			asked[c] = ask{wants: a.wants + 1}
		}
		l.open[c] = struct{}{}
	}
	x.mu.Unlock()
	m := bsmsg.New(false)
	for _, c := range cancels {
		m.Cancel(c)
	}
	for _, c := range cs {
		m.AddEntry(c, 1, pb.Message_Wantlist_Block, true)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(x.ctx, cancel)
	defer stop()
	if err := x.net.SendMessage(ctx, l.peer, m); err != nil {
		return fmt.Errorf("bitswap: want of %s: %w", l.peer, err)
	}
	return nil
}

// dedup returns cs without repeats, in order; cs is not changed.
func dedup(cs []cid.Cid) []cid.Cid {
	seen := make(map[cid.Cid]struct{}, len(cs))
	out := make([]cid.Cid, 0, len(cs))
	for _, c := range cs {
		if _, ok := seen[c]; !ok {
			seen[c] = struct{}{}
			out = append(out, c)
		}
	}
	return out
}

// receive sorts a peer's message: wants go to the server, blocks and
// DONT_HAVEs to the peer's links.
func (x *Exchange) receive(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) {
	x.mu.Lock()
	closed := x.closed
	x.mu.Unlock()
	if closed {
		return // a stream opened before Close, read until it is reset
	}
	if !x.admits(p) {
		x.refused.Add(1)
		if x.cfg.Refused != nil {
			x.cfg.Refused(p)
		}
		return
	}
	x.server.ReceiveMessage(ctx, p, m)
	bs, dh := m.Blocks(), m.DontHaves()
	if len(bs) == 0 && len(dh) == 0 {
		return
	}
	var msg Message
	msg.DontHaves = dh
	n := 0
	x.mu.Lock()
	for _, b := range bs {
		n += len(b.RawData())
		if x.answerLocked(p, b.Cid()) {
			msg.Blocks = append(msg.Blocks, b)
		} else {
			msg.Strays = append(msg.Strays, b.Cid())
		}
	}
	for _, c := range dh {
		x.answerLocked(p, c)
	}
	links := make([]*Link, 0, len(x.links[p]))
	for l := range x.links[p] {
		links = append(links, l)
	}
	x.mu.Unlock()
	if n > 0 && x.cfg.Received != nil {
		x.cfg.Received(p, n)
	}
	if len(msg.Strays) > 0 {
		x.strays.Add(int64(len(msg.Strays)))
		x.log.Warn("blocks that answer no want", "peer", p, "count", len(msg.Strays))
	}
	for _, l := range links {
		select {
		case l.in <- msg:
		case <-l.done:
		case <-x.ctx.Done():
			return
		}
	}
}

// forget drops what was asked of p, which is gone (its wantlist went
// with it).
func (x *Exchange) forget(p peer.ID) {
	x.mu.Lock()
	delete(x.asked, p)
	for l := range x.links[p] {
		clear(l.open)
	}
	x.mu.Unlock()
}

// receiver hands the network's messages and events to the exchange.
type receiver struct{ x *Exchange }

func (r receiver) ReceiveMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) {
	r.x.receive(ctx, p, m)
}

func (r receiver) ReceiveError(err error) { r.x.log.Debug("bitswap stream", "err", err) }

func (r receiver) PeerConnected(p peer.ID) { r.x.server.PeerConnected(p) }

func (r receiver) PeerDisconnected(p peer.ID) {
	r.x.server.PeerDisconnected(p)
	r.x.forget(p)
	if r.x.cfg.Gone != nil {
		r.x.cfg.Gone(p)
	}
}

// gatedNet is the server's network: a message with blocks goes only to a
// peer admitted, after the upload caps let its bytes go, and is counted.
type gatedNet struct {
	bsnetwork.BitSwapNetwork
	x *Exchange
}

func (g *gatedNet) SendMessage(ctx context.Context, p peer.ID, m bsmsg.BitSwapMessage) error {
	x := g.x
	if !x.admits(p) {
		return fmt.Errorf("bitswap: send to %s: %w", p, ErrRefused)
	}
	n := 0
	for _, b := range m.Blocks() {
		n += len(b.RawData())
	}
	var done func(error)
	if n > 0 && x.cfg.Sending != nil {
		var err error
		if done, err = x.cfg.Sending(ctx, p, n); err != nil {
			return fmt.Errorf("bitswap: send to %s: %w", p, err)
		}
	}
	err := g.BitSwapNetwork.SendMessage(ctx, p, m)
	if done != nil {
		done(err)
	}
	if err != nil {
		return err
	}
	if n > 0 && x.cfg.Sent != nil {
		x.cfg.Sent(p, n)
	}
	return nil
}

// readOnly is the server's blockstore: the Blocks view, nothing written.
type readOnly struct{ b Blocks }

func (r readOnly) Has(ctx context.Context, c cid.Cid) (bool, error) {
	_, ok := r.b.BlockSize(ctx, c)
	return ok, nil
}

func (r readOnly) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	data, err := r.b.Block(ctx, c)
	if err != nil {
		return nil, err
	}
	return blocks.NewBlockWithCid(data, c)
}

func (r readOnly) GetSize(ctx context.Context, c cid.Cid) (int, error) {
	n, ok := r.b.BlockSize(ctx, c)
	if !ok {
		return -1, ipld.ErrNotFound{Cid: c}
	}
	return n, nil
}

func (readOnly) DeleteBlock(context.Context, cid.Cid) error          { return ErrReadOnly }
func (readOnly) Put(context.Context, blocks.Block) error             { return ErrReadOnly }
func (readOnly) PutMany(context.Context, []blocks.Block) error       { return ErrReadOnly }
func (readOnly) AllKeysChan(context.Context) (<-chan cid.Cid, error) { return nil, ErrReadOnly }
