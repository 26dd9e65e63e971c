package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"

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
// the root declares, verified and written as ours are (conn.block). It
// never chokes. A block that answers no want of ours is a violation, as an
// unrequested BLOCK is: Bitswap names a block by the hash of its bytes, so
// a block with the wrong bytes arrives as one nobody asked for.

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
	if err != nil && f.ctx.Err() == nil {
		f.log.Debug("Bitswap session ended", "peer", p, "err", err)
	}
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
// crossed the cancel is dropped, not counted against the peer). The cancel
// is sent unless the WANT never went out, or another chunk asked of the
// peer has the same CID. c.mu is held.
func (c *conn) bsCancel(i int64) {
	delete(c.requested, i)
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
			for _, i := range wants {
				want = append(want, l.Chunks[i].CID)
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
			if idx := c.bsAsked(layout, k); len(idx) > 0 {
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
			var lacks []int64
			for i := range c.requested {
				if layout.Chunks[i].CID.Equals(k) {
					lacks = append(lacks, i)
					delete(c.requested, i)
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
func (c *conn) bsBlock(pl *peerLimit, l *Layout, dl *download, data []byte, idx []int64) error {
	f := c.f
	n := len(data)
	if err := f.sw.lim.received(f.ctx, pl, n); err != nil {
		return err
	}
	c.mu.Lock()
	for _, i := range idx {
		c.answered(i)
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
	if !c.verified(l, fit[0], data) {
		for _, i := range fit[1:] {
			f.badBlock(c, i)
		}
		return nil
	}
	f.sw.chk.credit(c.peer, n)
	for k, i := range fit {
		if k > 0 {
			n = 0 // counted at the first
		}
		c.keep(dl, i, data, n)
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
