package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multistream"

	"github.com/peer-project/peer/swarm/bitswap"
	"github.com/peer-project/peer/swarm/sched"
	"github.com/peer-project/peer/swarm/wire"
)

// A Bitswap peer is a session of the fetch like one of ours, with a Link
// (package bitswap) where ours have a stream: it joins the scheduler as a
// peer that has every chunk (Bitswap has no bitfield; a chunk it lacks is
// answered with DONT_HAVE, or times out), a WANT becomes a want-block of
// the chunk's CID, a CANCEL a cancel, and a block that arrives is given to
// every chunk index asked of it with that CID, checked against the size
// the root declares, verified and written as ours are (conn.bsBlock). It
// never chokes. A block that answers no want of ours is a violation, as an
// unrequested BLOCK is: Bitswap names a block by the hash of its bytes, so
// a block with the wrong bytes arrives as one nobody asked for.
//
// Some Bitswap peers never send DONT_HAVE, even when asked to: a chunk
// they lack would cost a request timeout each, and a peer held to one
// request after a timeout would sit idle for as long. So a session
// learns: once the peer has let bsSilentAfter wants go unanswered (a
// request timed out with neither block nor DONT_HAVE, or the peer sent
// later blocks and skipped it for bsPresumeRTTs round trips, or it has
// sent blocks before and left it half a request timeout) and has never
// sent a DONT_HAVE, a want it skips is taken as a DONT_HAVE (the chunk
// goes to another peer, and the want is cancelled), as boxo's client
// does for peers that cannot send one. What it was presumed to lack is
// given back to it once if no session has a chunk the fetch lacks, so a
// wrong guess costs time, never the fetch. A guess proven wrong (the
// block of a want taken as lacking comes after all: the peer answers out
// of order, or slowly, as a loaded Kubo node does) makes the session
// patient: from then on a want is taken as lacking only once it has
// waited half a request timeout, never because later ones were answered
// first, rather than have the same chunk come from two peers.

const (
	// bsSilentAfter is how many wants a Bitswap peer may leave
	// unanswered (no block, no DONT_HAVE) before a want it skips is taken
	// as a DONT_HAVE.
	bsSilentAfter = 2
	// bsPresumeRTTs is how many of the peer's smoothed want-to-block
	// times a want may wait, while later blocks come, before it counts as
	// skipped; the wait is kept within [RequestTimeout/8, RequestTimeout/2].
	bsPresumeRTTs = 4
)

// bsWants is what a Bitswap session knows of its wants in flight, to
// learn whether the peer answers what it lacks (see above). Guarded by
// conn.mu.
type bsWants struct {
	sent      map[int64]bsSent // each live want: when, in which message
	msgs      uint64           // want messages sent
	answered  uint64           // the latest message a block answered a want of
	skipped   map[int64]bool   // overdue wants already counted as silent
	presumed  map[int64]bool   // chunks taken as lacking; given back once
	restored  map[int64]bool   // given back: never presumed again
	srtt      time.Duration    // smoothed want-to-block time; 0 while unknown
	lastBlock time.Time        // when the last block that answered a want came
	silent    int              // wants left unanswered
	dontHaves bool             // it sent a DONT_HAVE: it answers what it lacks
	late      bool             // a block came of a want taken as lacking: wait timeout/2
	learned   bool             // logged that it does not
}

// bsSent is when a want went out, and in which of the session's messages.
type bsSent struct {
	at  time.Time
	msg uint64
}

func newBSWants() *bsWants {
	return &bsWants{sent: map[int64]bsSent{}, skipped: map[int64]bool{}, presumed: map[int64]bool{}, restored: map[int64]bool{}}
}

// requestTimeout is the scheduler's base request timeout, its default
// filled in by the scheduler. For the loop, with the scheduler started.
func (f *fetch) requestTimeout() time.Duration { return f.sched.Config().RequestTimeout }

// answeredLocked records that the want of chunk i was answered at now, by
// a block if block. A block of a want taken as lacking (it crossed the
// CANCEL) shows that the peer answers late rather than never: from then
// on a want of it is taken as lacking only after half a request timeout,
// never for being overtaken. c.mu is held.
func (w *bsWants) answeredLocked(i int64, now time.Time, block bool) {
	s, ok := w.sent[i]
	if !ok && block && w.presumed[i] {
		w.late = true // it was not skipped: be patient from now on
		delete(w.presumed, i)
	}
	delete(w.sent, i)
	delete(w.skipped, i)
	if !ok || !block {
		return
	}
	w.answered = max(w.answered, s.msg)
	lat := max(now.Sub(s.at), 0)
	if w.srtt == 0 {
		w.srtt = lat
	} else {
		w.srtt = (7*w.srtt + lat) / 8
	}
	w.lastBlock = now
}

// withdrawnLocked records that the want of chunk i was cancelled at now:
// one that waited a whole request timeout unanswered (the scheduler's
// timeout) counts as silent. c.mu is held.
func (w *bsWants) withdrawnLocked(i int64, now time.Time, timeout time.Duration) {
	if s, ok := w.sent[i]; ok && !w.skipped[i] && now.Sub(s.at) >= timeout {
		w.silent++
	}
	delete(w.sent, i)
	delete(w.skipped, i)
}

// overdueLocked returns the chunks whose wants the peer skipped, to be
// taken as DONT_HAVEs, once it is known to leave wants unanswered. A want
// is skipped when a want of a later message was answered by a block and
// it has waited one want-to-block time more (a Bitswap server answers
// wants of equal priority in order, but not strictly), or when it has
// waited bsPresumeRTTs of those times (within [timeout/8, timeout/2])
// while a block came after it went out, or timeout/2 from a peer that
// has sent a block before (all its wants in flight may be of chunks it
// lacks, so that no later block comes): each counts as silent, as a
// timed-out want does. Once bsSilentAfter have, every overdue want is
// taken as lacking, also the only one in flight (a peer held to one
// request after a timeout sends no later block). Once a block came of a
// want taken as lacking (late: the peer answers, only out of order or
// slowly), neither of the first two rules applies: a want is overdue only
// after timeout/2. Each is forgotten here and marked presumed; the caller
// tells the scheduler and has them cancelled. c.mu is held.
func (w *bsWants) overdueLocked(now time.Time, timeout time.Duration) []int64 {
	if w.dontHaves {
		return nil
	}
	wait := min(max(bsPresumeRTTs*w.srtt, timeout/8), timeout/2)
	if w.late {
		wait = timeout / 2
	}
	var out []int64
	for i, s := range w.sent {
		waited := now.Sub(s.at)
		overtaken := !w.late && s.msg < w.answered && waited >= w.srtt
		if w.restored[i] || (!overtaken && waited < wait) {
			continue
		}
		quiet := !w.lastBlock.IsZero() && waited >= timeout/2
		if (overtaken || w.lastBlock.After(s.at) || quiet) && !w.skipped[i] {
			w.skipped[i] = true
			w.silent++
		}
		out = append(out, i)
	}
	if w.silent < bsSilentAfter {
		return nil
	}
	slices.Sort(out)
	for _, i := range out {
		delete(w.sent, i)
		delete(w.skipped, i)
		w.presumed[i] = true
	}
	return out
}

// bsPresume takes as DONT_HAVEs the wants that Bitswap peers known to
// leave wants unanswered have skipped (see bsWants), and gives back what
// they were presumed to lack, once, when no session has a chunk the fetch
// lacks. For the loop, with the scheduler started.
func (f *fetch) bsPresume(now time.Time) {
	f.mu.Lock()
	var cs []*conn
	for _, c := range f.conns {
		if c.bs != nil && c.joined {
			cs = append(cs, c)
		}
	}
	f.mu.Unlock()
	if len(cs) == 0 {
		return
	}
	slices.SortFunc(cs, func(a, b *conn) int { return strings.Compare(string(a.peer), string(b.peer)) })
	timeout := f.requestTimeout()
	held := false
	for _, c := range cs {
		c.mu.Lock()
		lacks := c.bs.overdueLocked(now, timeout)
		for _, i := range lacks {
			if c.requested[i].live > 0 {
				c.bsCancel(i)
			}
		}
		learned := len(lacks) > 0 && !c.bs.learned
		c.bs.learned = c.bs.learned || learned
		held = held || len(c.bs.presumed) > 0
		c.mu.Unlock()
		if learned {
			f.log.Debug("Bitswap peer leaves wants unanswered: a want it skips is taken as DONT_HAVE", "peer", c.peer, "silent", bsSilentAfter)
		}
		for _, i := range lacks {
			f.step(sched.Event{Kind: sched.DontHave, Peer: f.schedID(c.peer), Index: i, Time: now})
		}
		if len(lacks) > 0 {
			c.flush()
		}
	}
	if !held || f.usefulSessions() > 0 {
		return
	}
	for _, c := range cs {
		c.mu.Lock()
		var back []int64
		for i := range c.bs.presumed {
			if !f.sched.Verified(i) {
				back = append(back, i)
				c.bs.restored[i] = true
			}
		}
		clear(c.bs.presumed)
		c.mu.Unlock()
		slices.Sort(back)
		for _, i := range back {
			f.step(sched.Event{Kind: sched.Have, Peer: f.schedID(c.peer), Index: i, Time: now})
		}
	}
}

// errLinkClosed ends a Bitswap session whose link was closed.
var errLinkClosed = errors.New("swarm: the Bitswap link was closed")

// found records that discovery named ai as a provider of the root, then
// dials it.
func (f *fetch) found(ai peer.AddrInfo) {
	f.mu.Lock()
	if f.providers == nil {
		f.providers = map[peer.ID]bool{}
	}
	f.providers[ai.ID] = true
	f.mu.Unlock()
	f.dial(ai)
}

// bitswapPeer reports whether p, which refused our protocol, is to be
// asked over Bitswap: this swarm speaks it, p was named as a provider (a
// hint, or discovery), and p speaks it. A peer merely connected is not
// asked: it may be any IPFS node, and Bitswap has no way to say what it
// has short of asking for every block.
func (f *fetch) bitswapPeer(p peer.ID) bool {
	if f.sw.bs == nil || !f.provider(p) {
		return false
	}
	ctx, cancel := context.WithTimeout(f.ctx, dialTimeout)
	defer cancel()
	return f.sw.bs.Probe(ctx, p)
}

// notOurs reports whether err says that the peer does not speak our
// protocol.
func notOurs(err error) bool {
	return err != nil && errors.Is(err, multistream.ErrNotSupported[protocol.ID]{})
}

// provider reports whether p is a hint or was found by discovery.
func (f *fetch) provider(p peer.ID) bool {
	for _, h := range f.opts.Hints {
		if h.ID == p {
			return true
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.providers[p]
}

// bsSession runs a session with Bitswap peer p until it ends. It runs on
// a goroutine of the fetch.
func (f *fetch) bsSession(p peer.ID) {
	l, err := f.sw.bs.Link(p)
	if err != nil {
		f.post(event{kind: evDown, conn: &conn{peer: p}, err: err})
		return
	}
	c := &conn{
		f: f, peer: p, link: l, done: make(chan struct{}), wdone: make(chan struct{}), wake: make(chan struct{}, 1),
		nodeWait: map[cid.Cid][]chan []byte{}, nodeAsked: map[cid.Cid]int{}, requested: map[int64]asked{},
		bs: newBSWants(),
	}
	defer close(c.done)
	if !f.sessionUp(c, &wire.HaveAll{}) {
		l.Close()
		return
	}
	f.log.Debug("Bitswap session", "peer", p)
	f.post(event{kind: evUp, conn: c})
	f.goroutine(func() {
		defer close(c.wdone)
		c.bsWriteLoop()
	})
	err = c.bsReadLoop()
	l.Close()
	c.signal()
	f.post(event{kind: evDown, conn: c, err: fmt.Errorf("the Bitswap session ended: %w", err)})
}

// abort ends the session at once: its stream is reset, or its link closed.
func (c *conn) abort() {
	if c.link != nil {
		c.link.Close()
		return
	}
	c.stream.Reset()
}

// bsCancel withdraws the want of chunk i from a Bitswap peer: Bitswap
// does not answer a cancelled want, so it is forgotten here (a block that
// crossed the cancel is no violation: it is kept if still new, or counted
// as a duplicate, see bsLate). The cancel
// is sent unless the WANT never went out, or another chunk asked of the
// peer has the same CID. From the fetch's loop (a Cancel of the
// scheduler, or bsPresume); c.mu is held.
func (c *conn) bsCancel(i int64) {
	delete(c.requested, i)
	c.bs.withdrawnLocked(i, c.f.sw.cfg.Now(), c.f.requestTimeout())
	if k := indexOf(c.wants, uint64(i)); k >= 0 {
		c.wants = append(c.wants[:k], c.wants[k+1:]...)
		return
	}
	c.cancels = append(c.cancels, uint64(i))
}

func indexOf(s []uint64, v uint64) int {
	for k, x := range s {
		if x == v {
			return k
		}
	}
	return -1
}

// bsWriteLoop sends what the loop queued: wants and cancels of chunks by
// their CID, and the DAG nodes asked for.
func (c *conn) bsWriteLoop() {
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		l, _ := c.f.current()
		c.mu.Lock()
		wants, cancels, nodes, closeMsg := c.wants, c.cancels, c.nodes, c.closeMsg
		c.wants, c.cancels, c.nodes, c.notInt = nil, nil, nil, false
		var want, cancel []cid.Cid
		if l != nil {
			now := c.f.sw.cfg.Now()
			if len(wants) > 0 {
				c.bs.msgs++
			}
			for _, i := range wants {
				want = append(want, l.Chunks[i].CID)
				c.bs.sent[int64(i)] = bsSent{at: now, msg: c.bs.msgs}
			}
			for _, i := range cancels {
				k := l.Chunks[i].CID
				if !c.bsWantedLocked(l, k) {
					cancel = append(cancel, k)
				}
			}
		}
		c.mu.Unlock()
		if closeMsg != nil {
			c.link.Close()
			return
		}
		want = append(want, nodes...)
		if len(want)+len(cancel) == 0 {
			continue
		}
		if err := c.link.Want(c.f.ctx, want, cancel); err != nil {
			c.f.log.Debug("Bitswap want", "peer", c.peer, "err", err)
			c.link.Close()
			return
		}
	}
}

// bsWantedLocked reports whether a chunk with CID k is still asked of the
// peer. c.mu is held.
func (c *conn) bsWantedLocked(l *Layout, k cid.Cid) bool {
	for i := range c.requested {
		if l.Chunks[i].CID.Equals(k) {
			return true
		}
	}
	return false
}

// bsReadLoop hands what the peer sends to the fetch until the link ends.
func (c *conn) bsReadLoop() error {
	f := c.f
	pl := f.sw.lim.peer(c.peer)
	defer f.sw.lim.release(c.peer, pl)
	for {
		var m bitswap.Message
		select {
		case msg, ok := <-c.link.Incoming():
			if !ok {
				return errLinkClosed
			}
			m = msg
		case <-c.link.Done():
			return errLinkClosed
		case <-f.ctx.Done():
			return f.ctx.Err()
		}
		if len(m.Strays) > 0 {
			f.sw.count(func(s *Stats) { s.UnrequestedBlocks += int64(len(m.Strays)) })
			err := fmt.Errorf("swarm: Bitswap block %s answers no want of ours (wrong bytes, or never asked for)", m.Strays[0])
			c.violation(err)
			return err
		}
		layout, dl := f.current()
		for _, b := range m.Blocks {
			k := b.Cid()
			c.deliverIfAsked(k, b.RawData())
			if dl == nil {
				continue
			}
			idx := c.bsAsked(layout, k)
			if len(idx) == 0 {
				idx = bsLate(layout, dl, k)
			}
			if len(idx) > 0 {
				if err := c.bsBlock(pl, layout, dl, b.RawData(), idx); err != nil {
					return err
				}
			}
		}
		for _, k := range m.DontHaves {
			c.deliverIfAsked(k, nil)
			if layout == nil {
				continue
			}
			c.mu.Lock()
			c.bs.dontHaves = true
			var lacks []int64
			now := f.sw.cfg.Now()
			for i := range c.requested {
				if layout.Chunks[i].CID.Equals(k) {
					lacks = append(lacks, i)
					delete(c.requested, i)
					c.bs.answeredLocked(i, now, false)
				}
			}
			c.mu.Unlock()
			for _, i := range lacks {
				f.post(peerSaid(c, sched.DontHave, i))
			}
		}
	}
}

// bsBlock takes a block that answers the chunks idx asked of the peer,
// which share its CID: one block, however many chunks of the file hold
// these bytes. It is charged to the download caps, counted, verified and
// credited once, checked against the size the root declares for each
// chunk, and written at each. It blocks while the caps hold it back.
// data's CID must be the chunks': bsReadLoop gives only a block whose
// bytes hash to it.
func (c *conn) bsBlock(pl *peerLimit, l *Layout, dl *download, data []byte, idx []int64) error {
	f := c.f
	n := len(data)
	if err := f.sw.lim.received(f.ctx, pl, n); err != nil {
		return err
	}
	c.mu.Lock()
	now := f.sw.cfg.Now()
	for _, i := range idx {
		c.answered(i)
		c.bs.answeredLocked(i, now, true)
	}
	c.mu.Unlock()
	f.sw.count(func(s *Stats) { s.BytesDown += int64(n); s.BitswapBytesDown += int64(n) })
	// A root may declare other sizes for the same CID (a lying DAG): the
	// chunks it does not fit are bad blocks.
	fit := idx[:0]
	for _, i := range idx {
		if c.sized(l, i, data) {
			fit = append(fit, i)
		}
	}
	if len(fit) == 0 {
		return nil
	}
	// Verified already: boxo's message decoder names each block by the
	// hash of its bytes (message.NewWantlistBlock: the sender's prefix,
	// summed over the data), and idx are the chunks whose CID equals
	// that name, sha2-256 and all. A block whose bytes are wrong answers
	// no want (a stray, bsReadLoop). Hashing again would cost as much as
	// the decoder's hash.
	f.sw.chk.credit(c.peer, n)
	for k, i := range fit {
		if k > 0 {
			n = 0 // counted at the first
		}
		c.keep(dl, i, data, n, false)
	}
	return nil
}

// bsAsked returns the chunks asked of the peer whose CID is k, in order.
func (c *conn) bsAsked(l *Layout, k cid.Cid) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int64
	for i := range c.requested {
		if l.Chunks[i].CID.Equals(k) {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// bsLate returns the chunks a block with CID k that answers no want in
// flight is to be given to: one that crossed our CANCEL (the Link passes
// on only blocks of wants we sent). Like a late BLOCK of ours, it is used
// if the download still lacks a chunk with its CID (each such chunk), and
// is otherwise counted as a duplicate (the first such chunk): either way
// the bytes that came are counted, not dropped unseen. A CID that is no
// chunk of the root (a DAG node) gives none.
func bsLate(l *Layout, dl *download, k cid.Cid) []int64 {
	var all, lack []int64
	l.ChunkIndexFunc(k, func(i int64) bool {
		all = append(all, i)
		if !dl.Has(i) {
			lack = append(lack, i)
		}
		return false
	})
	if len(lack) > 0 {
		return lack
	}
	if len(all) > 0 {
		return all[:1]
	}
	return nil
}

// deliverIfAsked hands a DAG node (nil: the peer lacks it) to those
// waiting for it, if it was asked for.
func (c *conn) deliverIfAsked(k cid.Cid, data []byte) {
	c.mu.Lock()
	asked := c.nodeAsked[k] > 0
	c.mu.Unlock()
	if asked {
		c.deliver(k, data)
	}
}
