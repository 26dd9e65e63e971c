package swarm

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/peer-project/peer/integrity"
	"github.com/peer-project/peer/swarm/bitswap"
	"github.com/peer-project/peer/swarm/sched"
	"github.com/peer-project/peer/swarm/wire"
)

// dialTimeout bounds connecting to a peer and opening a stream.
const dialTimeout = 15 * time.Second

// asked is what a conn has asked its peer for one chunk: WANTs the peer
// may still answer (a cancelled one may cross its CANCEL on the wire), and
// how many of them are not cancelled. A chunk can be wanted again after a
// cancel, so a BLOCK or DONT_HAVE is expected while sent > 0.
type asked struct{ sent, live uint8 }

// conn is the fetching side of one stream: this node asks, the peer serves.
type conn struct {
	f      *fetch
	peer   peer.ID
	stream network.Stream // nil for a Bitswap peer
	link   *bitswap.Link  // a Bitswap peer's (see bsconn.go); nil for ours
	bs     *bsWants       // a Bitswap peer's wants in flight (under mu); nil for ours
	done   chan struct{}  // closed when the reader ends
	wdone  chan struct{}  // closed when the writeLoop ends

	// Owned by the fetch loop (written under f.mu where noted).
	up        bool     // under f.mu
	firstHave wire.Msg // under f.mu
	joined    bool
	hasSome   bool // it said it has a chunk; the fetch loop's own
	choked    bool // it said CHOKE last; the fetch loop's own

	mu        sync.Mutex
	wake      chan struct{}
	wants     []uint64
	cancels   []uint64
	nodes     []cid.Cid
	nodeWait  map[cid.Cid][]chan []byte
	nodeAsked map[cid.Cid]int // WANT_NODEs not answered yet, by CID
	requested map[int64]asked // by chunk; absent when nothing is expected
	closeMsg  *wire.Error
	notInt    bool     // send NOT_INTERESTED
	haves     []uint64 // chunks announced with HAVE, a bit each (bit i%64 of word i/64)
	dupHaves  int      // HAVEs of a chunk announced before
	missing   bool     // its last answer to WANT_NODE was NODE_MISSING or none
	choking   bool     // it said CHOKE last (the reader's view)
	wantMsgs  int64    // WANT messages written, less one per CHOKE read
}

// maxDupHaves is how many HAVEs of chunks it announced already a session
// may send before it is a violation: a peer announces each chunk once
// (a race between a late source and its announcements may repeat a few).
const maxDupHaves = 1024

// have records a HAVE of chunk i and reports whether it is news, to be told
// the fetch. A HAVE past the end of the root (of any root while the
// DAG loads), or more repeated HAVEs than maxDupHaves, is an error.
// The record is a bit per chunk up to the highest announced, so a flood
// costs at most MaxLayoutChunks/8 bytes (2 MiB) before the DAG is
// known, and one bit per chunk of the root after.
func (c *conn) have(i uint64) (bool, error) {
	limit := uint64(MaxLayoutChunks)
	if l, _ := c.f.current(); l != nil {
		limit = uint64(l.NumChunks())
	}
	if i >= limit {
		return false, fmt.Errorf("swarm: HAVE of chunk %d, past the end (%d chunks at most)", i, limit)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	w, bit := int(i/64), uint64(1)<<(i%64)
	if w >= len(c.haves) {
		c.haves = append(c.haves, make([]uint64, w+1-len(c.haves))...)
	}
	if c.haves[w]&bit != 0 {
		if c.dupHaves++; c.dupHaves > maxDupHaves {
			return false, fmt.Errorf("swarm: more than %d HAVEs of chunks already announced", maxDupHaves)
		}
		return false, nil
	}
	c.haves[w] |= bit
	return true, nil
}

// announced returns the chunks announced with HAVE so far, ascending.
func (c *conn) announced() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int64
	for w, word := range c.haves {
		for word != 0 {
			out = append(out, int64(w*64+bits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	return out
}

// noDAG reports whether the peer failed the last DAG node it was
// asked for (NODE_MISSING, or no answer in time).
func (c *conn) noDAG() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.missing
}

// session connects to ai, says HELLO and serves the conn until it ends.
// It runs on a goroutine of the fetch.
func (f *fetch) session(ai peer.AddrInfo) {
	h := f.sw.host
	if len(ai.Addrs) > 0 {
		h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	}
	st, w, r, first, err := f.hello(ai.ID)
	if refused := (*refusedErr)(nil); errors.As(err, &refused) {
		// libp2p sent HELLO behind the protocol's name, without waiting
		// for the peer to accept it, as identify said the peer speaks
		// it. A peer whose identify was stale (it has since stopped
		// speaking that version, or never spoke ours) refuses the name.
		// Forget the claim and ask again: this time libp2p negotiates
		// first, and picks the version the peer speaks or reads its
		// refusal (at open, where the Bitswap peer is told below).
		st.Reset()
		h.Peerstore().RemoveProtocols(ai.ID, Protocols()...)
		f.log.Debug("HELLO refused, maybe its protocol: negotiating anew", "peer", ai.ID, "err", err)
		st, w, r, first, err = f.hello(ai.ID)
	}
	if err != nil {
		if st != nil {
			st.Reset()
		}
		if notOurs(err) && f.bitswapPeer(ai.ID) {
			// It does not speak our protocol, but Bitswap: a slower source.
			f.bsSession(ai.ID)
			return
		}
		f.post(event{kind: evDown, conn: &conn{peer: ai.ID}, err: err})
		return
	}
	switch m := first.(type) {
	case *wire.HaveAll, *wire.HaveNone, *wire.HaveBitfield:
	case *wire.Error:
		st.Close()
		f.post(event{kind: evDown, conn: &conn{peer: ai.ID}, err: fmt.Errorf("it answered: %w", m), refused: m.Code == wire.CodeNotFound})
		return
	default:
		err := fmt.Errorf("first message %s, want a HAVE", first.Type())
		endWith(st, w, wire.NewError(wire.CodeProtocol, err.Error()), f.sw.cfg.Now())
		f.strikeEarly(ai.ID, err)
		f.post(event{kind: evDown, conn: &conn{peer: ai.ID}})
		return
	}
	c := &conn{
		f: f, peer: ai.ID, stream: st, done: make(chan struct{}), wdone: make(chan struct{}), wake: make(chan struct{}, 1),
		nodeWait: map[cid.Cid][]chan []byte{}, nodeAsked: map[cid.Cid]int{}, requested: map[int64]asked{},
	}
	defer close(c.done)
	if bf, ok := first.(*wire.HaveBitfield); ok {
		first = &wire.HaveBitfield{Bits: append([]byte(nil), bf.Bits...)}
	}
	if !f.sessionUp(c, first) {
		st.Reset()
		return
	}
	f.post(event{kind: evUp, conn: c})
	f.goroutine(func() {
		defer close(c.wdone)
		c.writeLoop(w)
	})
	err = c.readLoop(r)
	c.mu.Lock()
	final := c.closeMsg != nil
	c.mu.Unlock()
	var peerErr *wire.Error
	switch {
	case final:
		// The writer sends the ERROR and closes the stream (endWith); a
		// write it is stuck in (the peer reads nothing) fails by then.
		c.stream.SetWriteDeadline(f.sw.cfg.Now().Add(closeTimeout))
		c.signal()
		<-c.wdone
	case errors.As(err, &peerErr):
		c.stream.Close() // the peer said why; nothing to answer
	default:
		c.stream.Reset()
	}
	c.signal()
	if err != nil {
		err = fmt.Errorf("the session ended: %w", err)
	}
	f.post(event{kind: evDown, conn: c, err: err})
}

// hello opens a stream to p, says HELLO (and IN_ORDER for a streaming
// reader on 2.1) and reads the peer's first message. On an error it
// returns the stream to be reset if it is still open: a first message
// that breaks the protocol ends it (ERROR) and strikes the peer. An error
// of the first read that may be the peer refusing the protocol is a
// *refusedErr.
func (f *fetch) hello(p peer.ID) (network.Stream, *wire.Writer, *wire.Reader, wire.Msg, error) {
	ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
	st, err := f.sw.openStream(ctx, p)
	cancel()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	w := wire.NewWriter(st)
	st.SetDeadline(time.Now().Add(dialTimeout))
	err = w.Write(&wire.Hello{Version: wire.Version, Root: f.root})
	if err == nil && f.opts.Focus != nil && st.Protocol() == wire.ProtocolID {
		// A streaming reader's fetch: it waits on the chunks it asks for,
		// in order (spread.go). A peer of 2.0 cannot be told.
		err = w.Write(&wire.InOrder{})
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		return st, nil, nil, nil, fmt.Errorf("sending HELLO: %w", err)
	}
	r := wire.NewReader(st, 0)
	first, err := r.Read()
	st.SetDeadline(time.Time{})
	switch {
	case err == nil:
		return st, w, r, first, nil
	case notOurs(err) || f.staleProtocol(p, err):
		return st, nil, nil, nil, &refusedErr{err}
	case errors.Is(err, wire.ErrProtocol):
		err = fmt.Errorf("first message: %w", err)
		endWith(st, w, wire.NewError(wire.CodeProtocol, err.Error()), f.sw.cfg.Now())
		f.strikeEarly(p, err)
		return nil, nil, nil, nil, fmt.Errorf("no answer to HELLO: %w", err)
	}
	return st, nil, nil, nil, fmt.Errorf("no answer to HELLO: %w", err)
}

// refusedErr is an error of a session's first read that may be the peer
// refusing the protocol that libp2p proposed without waiting for its
// answer, which it does when identify said the peer speaks it. The
// stream's protocol is then negotiated as it is first read: the refusal
// is read (ErrNotSupported), or the peer, reading HELLO as the next
// protocol name, resets the stream, and the reset drops the refusal
// unread (yamux, mocknet; see staleProtocol).
type refusedErr struct{ err error }

func (e *refusedErr) Error() string { return "no answer to HELLO: " + e.err.Error() }
func (e *refusedErr) Unwrap() error { return e.err }

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) request(i int64) {
	c.mu.Lock()
	c.wants = append(c.wants, uint64(i))
	a := c.requested[i]
	if a.sent < 255 {
		a.sent++
		a.live++
	}
	c.requested[i] = a
	c.mu.Unlock()
}

// cancel withdraws a request of chunk i. One not written yet is simply
// never sent: the peer sees no WANT and no CANCEL of it (a CANCEL written
// before its WANT, as the batch order would have it, would look to the
// peer like a CANCEL of what was never asked for).
func (c *conn) cancel(i int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.requested[i]
	if a.live == 0 {
		return
	}
	if c.link != nil {
		c.bsCancel(i)
		return
	}
	a.live--
	if k := slices.Index(c.wants, uint64(i)); k >= 0 {
		c.wants = slices.Delete(c.wants, k, k+1)
		a.sent--
	} else {
		c.cancels = append(c.cancels, uint64(i))
	}
	if a.sent == 0 {
		delete(c.requested, i)
	} else {
		c.requested[i] = a
	}
}

func (c *conn) flush() { c.signal() }

// notInterested has NOT_INTERESTED sent, unless a WANT goes first.
func (c *conn) notInterested() {
	c.mu.Lock()
	c.notInt = true
	c.mu.Unlock()
	c.signal()
}

// close sends ERROR and ends the session: the writer sends it and closes
// the stream, which ends the reader. The first reason given is the one sent.
func (c *conn) close(code wire.ErrCode, msg string) {
	c.mu.Lock()
	if c.closeMsg == nil {
		c.closeMsg = wire.NewError(code, msg)
	}
	c.mu.Unlock()
	c.signal()
}

// violation ends the session for a breach of the protocol that the reader
// found: ERROR (code 1) is sent, the reading side is closed so that the
// read loop ends, and the fetch's loop is told, to strike the peer.
func (c *conn) violation(err error) {
	c.close(wire.CodeProtocol, err.Error())
	if c.link != nil {
		c.link.Close() // which ends the reader
	} else {
		c.stream.CloseRead()
	}
	c.f.post(event{kind: evSched, what: sched.Event{Kind: sched.Misbehaved}, conn: c, err: err})
}

// getNode asks the peer for a DAG node and waits for the answer.
func (c *conn) getNode(ctx context.Context, id cid.Cid) ([]byte, error) {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.nodeWait[id] = append(c.nodeWait[id], ch)
	c.nodeAsked[id]++
	c.nodes = append(c.nodes, id)
	c.mu.Unlock()
	c.signal()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	select {
	case data := <-ch:
		c.mu.Lock()
		c.missing = data == nil
		c.mu.Unlock()
		if data == nil {
			return nil, fmt.Errorf("swarm: %s does not have block %s", c.peer, id)
		}
		return data, nil
	case <-c.done:
		return nil, fmt.Errorf("swarm: session with %s ended", c.peer)
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			c.mu.Lock()
			c.missing = true // no answer in time
			c.mu.Unlock()
		}
		return nil, ctx.Err()
	}
}

// writeLoop sends what the loop queued, a batch at a time.
func (c *conn) writeLoop(w *wire.Writer) {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		wants, cancels, nodes, closeMsg := c.wants, c.cancels, c.nodes, c.closeMsg
		notInt := c.notInt && len(wants) == 0
		c.wants, c.cancels, c.nodes, c.notInt = nil, nil, nil, false
		c.mu.Unlock()
		if closeMsg != nil {
			endWith(c.stream, w, closeMsg, c.f.sw.cfg.Now())
			return
		}
		var err error
		for len(cancels) > 0 && err == nil {
			n := min(len(cancels), wire.MaxWant)
			err = w.Write(&wire.Cancel{Indices: cancels[:n]})
			cancels = cancels[n:]
		}
		for _, id := range nodes {
			if err == nil {
				err = w.Write(&wire.WantNode{CID: id})
			}
		}
		if notInt && err == nil {
			err = w.Write(&wire.NotInterested{})
		}
		if len(wants) > 0 {
			c.mu.Lock()
			c.wantMsgs += int64((len(wants) + wire.MaxWant - 1) / wire.MaxWant) // before they can reach the peer
			c.mu.Unlock()
		}
		for len(wants) > 0 && err == nil {
			n := min(len(wants), wire.MaxWant)
			err = w.Write(&wire.Want{Indices: wants[:n]})
			wants = wants[n:]
		}
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			c.stream.Reset()
			return
		}
	}
}

// blockBuffers is how many blocks a conn holds at once: one being read from
// the stream and the others queued for, or being, verified and written.
// Reading goes on while a block is hashed and written, so the stream keeps
// flowing (a stalled reader closes the muxer's window on the sender).
const blockBuffers = 4

// readLoop reads what the peer sends until the stream ends. Blocks go to a
// second goroutine that verifies and writes each before it tells the loop.
// That goroutine runs only while blocks wait for it: it starts at a block
// and ends when none is left, so that an idle session (a peer with nothing
// we lack, one that chokes us, a flash crowd's peers before their first
// chunk) holds no goroutine for it. A fetcher of a 1000-peer flash crowd
// has some 68 sessions, most of them idle.
func (c *conn) readLoop(r *wire.Reader) error {
	f := c.f
	layout, dl := f.current()
	free := make(chan *wire.Block, blockBuffers)
	for range blockBuffers {
		free <- &wire.Block{}
	}
	// A Block's Data comes from the shared pool as its header arrives and
	// goes back once the block is handled.
	r.SetBlockAlloc(func(_ uint64, size int) *wire.Block {
		b := <-free // waits while every buffer is queued or in use
		b.Data = getBuf(size)
		return b
	})
	recycle := func(m *wire.Block) {
		putBuf(m.Data)
		m.Data = nil
		free <- m
	}
	pl := f.sw.lim.peer(c.peer)
	defer f.sw.lim.release(c.peer, pl)
	var (
		mu       sync.Mutex
		queue    []*wire.Block // at most blockBuffers: each holds one of free's
		running  bool          // a verifier runs; under mu
		failed   error         // set by the verifier before it ends the stream; under mu
		verifier group
	)
	// verify handles the queued blocks, one at a time, and ends when none
	// is left. At most one runs: handOff starts it, under mu.
	verify := func() {
		for {
			mu.Lock()
			if len(queue) == 0 {
				running = false
				mu.Unlock()
				return
			}
			m := queue[0]
			queue = queue[1:]
			skip := failed != nil
			mu.Unlock()
			if !skip {
				var err error
				if err = f.sw.lim.received(f.ctx, pl, len(m.Data)); err != nil {
					c.abort()
				} else {
					if dl == nil {
						layout, dl = f.current()
					}
					err = c.block(layout, dl, m) // a violation: its ERROR ends the Read below
				}
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
			recycle(m)
		}
	}
	handOff := func(m *wire.Block) {
		mu.Lock()
		queue = append(queue, m)
		start := !running
		running = true
		mu.Unlock()
		if start {
			verifier.Go(verify)
		}
	}
	err := c.readMsgs(r, handOff)
	verifier.wait()
	if failed != nil {
		return failed
	}
	return err
}

// readMsgs reads messages until the stream ends, handing blocks on.
func (c *conn) readMsgs(r *wire.Reader, handOff func(*wire.Block)) error {
	f := c.f
	for {
		m, err := r.Read()
		if err != nil {
			if errors.Is(err, wire.ErrProtocol) {
				c.violation(err)
			}
			return err
		}
		switch m := m.(type) {
		case *wire.Have:
			news, err := c.have(m.Index)
			if err != nil {
				c.violation(err)
				return err
			}
			if news {
				f.post(peerSaid(c, sched.Have, int64(m.Index)))
			}
		case *wire.Block:
			handOff(m)
		case *wire.DontHave:
			for _, i := range m.Indices {
				c.mu.Lock()
				_, expected := c.requested[int64(i)]
				live := c.answered(int64(i))
				c.mu.Unlock()
				if !expected {
					// Like a BLOCK never requested: it answers nothing.
					err := fmt.Errorf("swarm: DONT_HAVE of chunk %d, which was never requested", i)
					c.violation(err)
					return err
				}
				if live {
					f.post(peerSaid(c, sched.DontHave, int64(i)))
				}
			}
		case *wire.Choke, *wire.Unchoke:
			if err := c.chokeMsg(m.Type() == wire.TypeChoke); err != nil {
				c.violation(err)
				return err
			}
			if m.Type() == wire.TypeChoke {
				c.dropRequests()
				f.post(peerSaid(c, sched.Choke, 0))
			} else {
				f.post(peerSaid(c, sched.Unchoke, 0))
			}
		case *wire.Node:
			if !c.deliver(m.CID, m.Data) {
				err := fmt.Errorf("swarm: NODE %s was never requested", m.CID)
				c.violation(err)
				return err
			}
		case *wire.NodeMissing:
			if !c.deliver(m.CID, nil) {
				err := fmt.Errorf("swarm: NODE_MISSING %s was never requested", m.CID)
				c.violation(err)
				return err
			}
		case *wire.Error:
			return m
		default:
			err := fmt.Errorf("swarm: unexpected %s from the serving side", m.Type())
			c.violation(err)
			return err
		}
	}
}

// block handles one BLOCK of our protocol (a Bitswap block goes through
// bsBlock): it must have been asked for; it is verified
// against its CID, credited to the peer (the swarm's choker serves first
// the peers that serve us), then written, then reported.
func (c *conn) block(l *Layout, dl *download, m *wire.Block) error {
	f := c.f
	i := int64(m.Index)
	c.mu.Lock()
	_, expected := c.requested[i]
	c.answered(i)
	c.mu.Unlock()
	n := int64(len(m.Data))
	f.sw.count(func(s *Stats) { s.BytesDown += n })
	switch {
	case !expected || dl == nil || i >= l.NumChunks():
		f.sw.count(func(s *Stats) { s.UnrequestedBlocks++ })
		err := fmt.Errorf("swarm: block %d was never requested", i)
		c.violation(err)
		return err
	}
	// A block that was cancelled (it timed out, or another peer sent it
	// first) is still checked and kept if it is new.
	if !c.sized(l, i, m.Data) || !c.verified(l, i, m.Data) {
		return nil
	}
	// Verified: the peer gave us something, and earns its credit with
	// our choker (a duplicate too: we asked for it).
	f.sw.chk.credit(c.peer, len(m.Data))
	if c.keep(dl, i, m.Data, int(n), true) {
		m.Data = nil // the download keeps it for a streaming reader: not recycled here
	}
	return nil
}

// sized checks the length of a block for chunk i first: bytes that hash
// to the chunk's CID but are not as long as the root declares (a sharer
// whose DAG lies) would overwrite a neighbour or change the file's size.
// Its sender is struck as for a hash failure.
func (c *conn) sized(l *Layout, i int64, data []byte) bool {
	f := c.f
	if want := int(l.Chunks[i].Size); len(data) != want {
		f.sw.count(func(s *Stats) { s.ChunksRejected++ })
		f.log.Warn("bad block", "peer", c.peer, "index", i, "err", fmt.Sprintf("%d bytes, the root declares %d", len(data), want))
		f.badBlock(c, i)
		return false
	}
	return true
}

// verified checks a block against chunk i's CID; its sender is struck if
// it fails.
func (c *conn) verified(l *Layout, i int64, data []byte) bool {
	f := c.f
	if err := integrity.VerifyFrom(l.Chunks[i].CID, data, c.peer.String()); err != nil {
		f.sw.count(func(s *Stats) { s.ChunksRejected++ })
		f.log.Warn("bad block", "peer", c.peer, "index", i, "err", err)
		f.badBlock(c, i)
		return false
	}
	return true
}

// keep writes the verified chunk i and tells the loop; n is the bytes
// it counts as received (0 for a block counted at another index). With
// own, data is a buffer from getBuf that the download may keep (see
// download.writeOwned): keep then reports true, and the caller must
// neither use nor recycle it.
func (c *conn) keep(dl *download, i int64, data []byte, n int, own bool) (kept bool) {
	f := c.f
	var (
		fresh bool
		err   error
	)
	if own {
		fresh, kept, err = dl.writeOwned(i, data)
	} else {
		fresh, err = dl.write(i, data)
	}
	switch {
	case err != nil:
		f.post(event{kind: evSched, what: sched.Event{Kind: sched.BlockWriteFailed, Index: i}, conn: c, err: err})
	case !fresh:
		bs := c.link != nil
		f.sw.count(func(s *Stats) {
			s.DuplicateBytes += int64(n)
			if bs {
				s.BitswapDuplicateBytes += int64(n)
			}
		})
		f.post(event{kind: evSched, what: sched.Event{Kind: sched.BlockVerified, Index: i}, conn: c, size: n, dup: true})
	default:
		f.sw.count(func(s *Stats) { s.ChunksVerified++ })
		if f.opts.Verified != nil {
			f.opts.Verified(i)
		}
		f.sw.Announce(f.root, i)
		f.post(event{kind: evSched, what: sched.Event{Kind: sched.BlockVerified, Index: i}, conn: c, size: n})
	}
	return kept
}

// chokeMsg checks a CHOKE (choke true) or UNCHOKE against the protocol:
// they alternate, starting with CHOKE, and a server chokes a peer only for
// a WANT it received while the peer was unchoked (it queued it, or served
// it), a different one for each CHOKE: so no more CHOKEs than WANT messages
// written before them. (Counting WANTs since the last UNCHOKE would be
// wrong: a WANT written while choked can reach the server after its
// UNCHOKE.) Each costs the fetch work (requests dropped, then asked again
// on UNCHOKE), so a blind flood of them is a violation at once.
func (c *conn) chokeMsg(choke bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case choke == c.choking && choke:
		return errors.New("swarm: CHOKE while choked")
	case choke == c.choking:
		return errors.New("swarm: UNCHOKE while not choked")
	case choke && c.wantMsgs <= 0:
		return errors.New("swarm: more CHOKEs than WANTs")
	}
	c.choking = choke
	if choke {
		c.wantMsgs--
	}
	return nil
}

// dropRequests forgets the requests the peer dropped when it sent CHOKE: the
// ones not yet written are never sent, and the others stay expected but
// count as cancelled, because a WANT that crossed the CHOKE on the wire may
// be answered after an UNCHOKE, and that BLOCK is no violation.
func (c *conn) dropRequests() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, i := range c.wants {
		a := c.requested[int64(i)]
		if a.sent == 0 {
			continue
		}
		a.sent--
		a.live = min(a.live, a.sent)
		if a.sent == 0 {
			delete(c.requested, int64(i))
		} else {
			c.requested[int64(i)] = a
		}
	}
	c.wants = nil
	for i, a := range c.requested {
		a.live = 0
		c.requested[i] = a
	}
}

// answered records an answer (BLOCK or DONT_HAVE) to a WANT of chunk i and
// reports whether it was a live one. A cancelled WANT is taken to be
// answered before live ones: the peer answers in order. c.mu is held.
func (c *conn) answered(i int64) (live bool) {
	a, ok := c.requested[i]
	if !ok {
		return false
	}
	cancelled := a.sent - a.live
	live = cancelled == 0
	a.sent--
	if live {
		a.live--
	}
	if a.sent == 0 {
		delete(c.requested, i)
	} else {
		c.requested[i] = a
	}
	return live
}

// deliver hands a DAG node (nil: NODE_MISSING) to those waiting for
// it, each its own copy of data, which aliases the reader's buffer. It
// reports false when it answers no WANT_NODE of ours (each has one answer):
// an unrequested NODE costs no copy, and ends the session.
func (c *conn) deliver(id cid.Cid, data []byte) bool {
	c.mu.Lock()
	n := c.nodeAsked[id]
	if n == 0 {
		c.mu.Unlock()
		return false
	}
	if n == 1 {
		delete(c.nodeAsked, id)
	} else {
		c.nodeAsked[id] = n - 1
	}
	ws := c.nodeWait[id] // none when every asker gave up waiting
	delete(c.nodeWait, id)
	c.mu.Unlock()
	for _, ch := range ws {
		var b []byte
		if data != nil {
			b = append(make([]byte, 0, len(data)), data...)
		}
		ch <- b
	}
	return true
}

// badNode strikes the peer for a DAG node that failed its hash, and
// ends the session with ERROR: a NODE names its sender without doubt, as a
// BLOCK does. It is called where the block is verified, so that it holds on
// every path that reads one (a fetch, and GetBlock: inspect, Open,
// ROOT/path).
func (c *conn) badNode(id cid.Cid, err error) {
	err = fmt.Errorf("DAG node %s: %w", id, err)
	c.f.log.Warn("bad DAG node", "peer", c.peer, "err", err)
	c.f.sw.count(func(s *Stats) { s.ProtocolViolations++ })
	c.f.strikeEarly(c.peer, err)
	code := wire.CodeProtocol
	if c.f.sw.Banned(c.peer) {
		code = wire.CodeBanned
	}
	c.close(code, err.Error())
}

// staleProtocol reports whether err, the first read of a session's
// stream to p, may be p refusing the protocol that libp2p proposed
// without waiting (see refusedErr): a reset that p said was for a failed
// negotiation (yamux and QUIC carry the reason) or, from a provider this
// fetch could ask over Bitswap instead, one it gave no reason for
// (mocknet carries none; such a peer that speaks ours and resets is then
// asked once more).
func (f *fetch) staleProtocol(p peer.ID, err error) bool {
	if !errors.Is(err, network.ErrReset) {
		return false
	}
	if se := (*network.StreamError)(nil); errors.As(err, &se) {
		return se.Remote && se.ErrorCode == network.StreamProtocolNegotiationFailed
	}
	return f.sw.bs != nil && f.provider(p)
}
