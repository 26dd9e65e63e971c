package swarm

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/bitfield"
	"github.com/peer-project/peer/swarm/choker"
	"github.com/peer-project/peer/swarm/wire"
)

// errNotProvided is said to a peer that asks for a root not served here.
var errNotProvided = errors.New("root not provided here")

// helloTimeout bounds how long an accepted stream may take to say HELLO.
const helloTimeout = 20 * time.Second

// maxClientMsg bounds a message from the fetching side: it sends WANT,
// CANCEL and WANT_NODE only, all small.
const maxClientMsg = 16 << 10

// maxNodeResends is how many times a session is sent one DAG node: a
// fetcher asks again only when the first answer was late (it waits 30 s)
// or could not be kept.
const maxNodeResends = 2

// server is the serving side of one stream: a peer fetching a root from us.
type server struct {
	sw     *Swarm
	stream network.Stream
	peer   peer.ID
	root   cid.Cid
	id     choker.SessionID // the session's name with the swarm's choker
	lim    *peerLimit       // the peer's upload cap

	mu       sync.Mutex
	src      Source          // nil until this node has chunks of root to serve
	wake     chan struct{}   // one token: the queues changed
	wants    wantQueue       // chunk requests, in arrival order; changed under slots.mu too
	asked    int64           // chunks WANTed minus chunks CANCELled: the CANCEL budget
	nodes    []cid.Cid       // DAG node requests
	sent     map[cid.Cid]int // NODEs sent, by CID: the WANT_NODE budget
	haves    []uint64        // announcements to send
	began    bool            // the first HAVE is decided (writeFirst)
	toldAll  bool            // the first HAVE was HAVE_ALL
	told     []uint64        // bit i: chunk i was announced (first HAVE or HAVE), or is queued in haves
	choked   bool            // told (or about to be told) CHOKE: WANTs are dropped
	ctl      []wire.Msg      // CHOKE and UNCHOKE to send, in order
	closeMsg *wire.Error     // a final ERROR to send, then close
	done     bool
	active   time.Time   // the last message read or batch written
	idle     *time.Timer // runs idleCheck
	spread   *spread     // shared by the root's sessions; set by admit
	holdT    *time.Timer // wakes the sender when a held-back request may go
	// holdsMissed counts held-back requests served when their hold ran
	// out (see spread.go).
	holdsMissed int
	inflight    spreadSend // the chunk being written, as recorded by the spread rules
	// prev: the stream speaks wire.PrevProtocolID, whose fetcher cannot
	// say IN_ORDER (the spread rules guess from the order of its
	// requests); set before the session starts.
	prev bool
	// inOrder: the fetcher said IN_ORDER, it reads as it asks.
	inOrder bool
}

func (s *Swarm) handleStream(st network.Stream) {
	p := st.Conn().RemotePeer()
	if s.Banned(p) || s.cfg.Allow != nil && !s.cfg.Allow(p) {
		st.Reset()
		return
	}
	if !s.goroutines.Go(func() { s.serve(st, p) }) {
		st.Reset()
	}
}

// serve runs one serving session: HELLO, admission, then the session's
// reader here and its sender on a goroutine of its own, until either ends.
func (s *Swarm) serve(st network.Stream, p peer.ID) {
	// The stream's memory (its block buffers) is reserved in the swarm's
	// service scope, which the resource manager's limits bound.
	if err := st.Scope().SetService(ServiceName); err != nil {
		s.log.Debug("resource manager refused a session", "peer", p, "err", err)
		endWith(st, wire.NewWriter(st), wire.NewError(wire.CodeTooManyRequests, "resource limit: "+err.Error()+"; try again later"), s.cfg.Now())
		return
	}
	r := wire.NewReader(st, maxClientMsg)
	hello, ok := s.readHello(st, r)
	if !ok {
		return
	}
	sv := &server{sw: s, stream: st, peer: p, root: hello.Root, wake: make(chan struct{}, 1), lim: s.lim.peer(p),
		prev: st.Protocol() == wire.PrevProtocolID}
	defer s.lim.release(p, sv.lim)
	if !s.admit(sv) {
		return
	}
	defer s.dismiss(sv)
	s.fetching(hello.Root, p)
	s.chk.join(sv)
	defer s.chk.leave(sv)

	var g group
	g.Go(sv.sendLoop)
	sv.touch()
	sv.mu.Lock()
	sv.idle = time.AfterFunc(s.cfg.IdleTimeout, sv.idleCheck)
	sv.mu.Unlock()
	sv.readLoop(r)
	sv.stop() // before Stop: idleCheck re-arms the timer only before done
	sv.idle.Stop()
	g.wait()
	sv.mu.Lock()
	if sv.holdT != nil {
		sv.holdT.Stop()
	}
	sv.mu.Unlock()
}

// readHello reads the session's HELLO. On anything else it ends the stream
// (with ERROR when the peer spoke the protocol wrong) and reports false.
func (s *Swarm) readHello(st network.Stream, r *wire.Reader) (*wire.Hello, bool) {
	st.SetReadDeadline(s.cfg.Now().Add(helloTimeout))
	m, err := r.Read()
	if err != nil {
		st.Reset()
		return nil, false
	}
	hello, ok := m.(*wire.Hello)
	if !ok || hello.Version != wire.Version {
		// Counted before the stream ends, so that whoever sees it end
		// sees the count too.
		s.count(func(st *Stats) { st.ProtocolViolations++ })
		endWith(st, wire.NewWriter(st), wire.NewError(wire.CodeProtocol, fmt.Sprintf("expected HELLO version %d", wire.Version)), s.cfg.Now())
		return nil, false
	}
	st.SetReadDeadline(time.Time{})
	return hello, true
}

// admit registers sv with the swarm if its root is served here, and
// reports whether it did; if not, the session ends with ERROR.
func (s *Swarm) admit(sv *server) bool {
	// A node that is itself fetching root takes the session too, with
	// HAVE_NONE, and announces each chunk as it gets it: peers that
	// download the same root at the same time trade.
	// Only roots served here are answered: shared (or inside a share), or
	// being fetched. A root whose DAG is merely stored (inspected,
	// unshared, a failed fetch) is not.
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	src, err := s.sourceFor(sv.peer, sv.root)
	if err == nil && src == nil && !s.isFetching(sv.root) {
		err = errNotProvided
	}
	if err != nil {
		s.refuse(sv, err)
		return false
	}
	if s.admitting != nil {
		s.admitting(sv.root)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		sv.stream.Reset()
		return false
	}
	// A Serve of the root since sourceFor has not seen sv (it is not in
	// the set yet): what it registered is the source, not what was found
	// before it. A root that stopped being served since (an unshare) has
	// not seen sv either: what was found before may be what it withdrew,
	// so only what is registered or cached now serves sv.
	if reg := s.sources[sv.root]; reg != nil {
		src = reg
	} else if s.gen != gen {
		if src = s.lookups.cached(sv.root); src == nil && len(s.fetches[sv.root]) == 0 {
			s.mu.Unlock()
			s.refuse(sv, errNotProvided)
			return false
		}
	}
	defer s.mu.Unlock()
	sv.src = src
	set := s.serving[sv.root]
	if set == nil {
		set = map[*server]struct{}{}
		s.serving[sv.root] = set
	}
	if s.spreads == nil {
		s.spreads = map[cid.Cid]*spread{}
	}
	if sv.spread = s.spreads[sv.root]; sv.spread == nil {
		// Kept until the root is no longer served: a fetcher that comes
		// later is spared what earlier ones can give.
		sv.spread = &spread{}
		s.spreads[sv.root] = sv.spread
	}
	sv.spread.setUsers(sv.spread.users+1, s.cfg.UploadSlots)
	set[sv] = struct{}{}
	s.stats.ServeSessions++
	return true
}

// refuse ends sv, which admit did not register, with ERROR saying why.
func (s *Swarm) refuse(sv *server, err error) {
	code := wire.CodeNotFound
	if err == errTooManyLookups {
		code = wire.CodeTooManyRequests
	}
	endWith(sv.stream, wire.NewWriter(sv.stream), wire.NewError(code, err.Error()), s.cfg.Now())
}

// dismiss unregisters sv, from admit.
func (s *Swarm) dismiss(sv *server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sv.spread.setUsers(sv.spread.users-1, s.cfg.UploadSlots)
	// After StopServing and Serve again, the root's record may be a newer
	// one than sv's: that one is not sv's to drop.
	if sv.spread.users == 0 && !sv.spread.recorded() && s.spreads[sv.root] == sv.spread {
		delete(s.spreads, sv.root) // nothing to remember
	}
	delete(s.serving[sv.root], sv)
	if len(s.serving[sv.root]) == 0 {
		delete(s.serving, sv.root)
	}
	s.stats.ServeSessions--
}

// touch records traffic on the session, either way.
func (sv *server) touch() {
	now := sv.sw.cfg.Now()
	sv.mu.Lock()
	sv.active = now
	sv.mu.Unlock()
}

// idleCheck ends the session with ERROR (idle) when nothing went either
// way for IdleTimeout while the peer waited on nothing of ours (no request
// queued, not waiting for UNCHOKE): a session past HELLO is not kept for
// ever. Otherwise it checks again when the session could next be idle.
func (sv *server) idleCheck() {
	idle := sv.sw.cfg.IdleTimeout
	now := sv.sw.cfg.Now()
	sv.mu.Lock()
	if sv.done || sv.closeMsg != nil {
		sv.mu.Unlock()
		return
	}
	waiting := sv.choked || sv.wants.len() > 0 || len(sv.nodes) > 0
	quiet := now.Sub(sv.active)
	if waiting || quiet < idle {
		next := idle
		if !waiting {
			next = idle - quiet
		}
		sv.idle.Reset(next)
		sv.mu.Unlock()
		return
	}
	sv.mu.Unlock()
	sv.close(wire.CodeIdle, fmt.Sprintf("nothing asked for %v; open a new session to ask again", idle))
}

// readLoop reads the fetcher's requests until the stream ends.
func (sv *server) readLoop(r *wire.Reader) {
	for first := true; ; first = false {
		m, err := r.Read()
		if err != nil {
			if errors.Is(err, wire.ErrProtocol) {
				sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
				sv.close(wire.CodeProtocol, err.Error())
			}
			return
		}
		sv.touch()
		switch m := m.(type) {
		case *wire.Want:
			if !sv.want(m.Indices) {
				return
			}
		case *wire.Cancel:
			if !sv.cancel(m.Indices) {
				return
			}
		case *wire.NotInterested:
			sv.sw.chk.notInterested(sv)
		case *wire.InOrder:
			why := ""
			switch {
			case sv.prev:
				why = "IN_ORDER on " + wire.PrevProtocolID + ", which has no such message"
			case !first:
				why = "IN_ORDER after another message: it comes right after HELLO"
			}
			if why != "" {
				sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
				sv.close(wire.CodeProtocol, why)
				return
			}
			sv.mu.Lock()
			sv.inOrder = true
			sv.mu.Unlock()
		case *wire.WantNode:
			sv.mu.Lock()
			if len(sv.nodes) >= 64 {
				sv.mu.Unlock()
				sv.close(wire.CodeTooManyRequests, "more than 64 node requests waiting")
				return
			}
			if sv.sent[m.CID] >= maxNodeResends {
				// A fetcher keeps what it got: asking again is a flood
				// (74 bytes in, up to 1 MiB out).
				sv.mu.Unlock()
				sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
				sv.sw.ban(sv.peer, "WANT_NODE of a block it was sent again and again",
					sv, wire.CodeProtocol, fmt.Sprintf("WANT_NODE of %s, sent %d times already", m.CID, maxNodeResends))
				return
			}
			sv.nodes = append(sv.nodes, m.CID)
			sv.mu.Unlock()
			sv.signal()
		case *wire.Error:
			return
		default:
			sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
			sv.close(wire.CodeProtocol, "unexpected "+m.Type().String()+" from the fetching side")
			return
		}
	}
}

func (sv *server) want(idx []uint64) bool {
	n := int64(-1)
	if src := sv.source(); src != nil {
		n = src.Layout().NumChunks()
	}
	sv.mu.Lock()
	sv.asked += int64(len(idx))
	if sv.wants.len()+len(idx) > sv.sw.cfg.MaxQueue {
		sv.mu.Unlock()
		// Only a flooder gets here: a fetcher's window is far smaller.
		sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
		sv.sw.ban(sv.peer, fmt.Sprintf("more than %d requests waiting", sv.sw.cfg.MaxQueue),
			sv, wire.CodeTooManyRequests, "too many requests outstanding")
		return false
	}
	for _, i := range idx {
		if n < 0 || i >= uint64(n) { // unsigned: an index of 2^63 or more is past any end
			sv.mu.Unlock()
			sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
			sv.close(wire.CodeProtocol, "WANT of a chunk index past the end")
			return false
		}
	}
	sv.mu.Unlock()
	sv.sw.chk.want(sv, idx)
	return true
}

// source returns what serves the session's root, looking again while there
// is none (the node may be fetching it and not have its layout yet).
func (sv *server) source() Source {
	sv.mu.Lock()
	src := sv.src
	sv.mu.Unlock()
	if src != nil {
		return src
	}
	if src = sv.sw.Registered(sv.root); src != nil {
		sv.mu.Lock()
		sv.src = src
		sv.mu.Unlock()
	}
	return src
}

// cancel withdraws requests, at O(1) each. A fetcher cancels only what it
// asked for, so more chunks CANCELled than WANTed (beyond a slack of
// MaxQueue, for a WANT and its CANCEL written in the wrong order) is a flood:
// the session ends with ERROR and the peer is banned. It reports whether the
// session goes on.
func (sv *server) cancel(idx []uint64) bool {
	sv.mu.Lock()
	sv.asked -= int64(len(idx))
	over := sv.asked < -int64(sv.sw.cfg.MaxQueue)
	sv.mu.Unlock()
	if over {
		sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
		sv.sw.ban(sv.peer, "CANCEL of more chunks than it asked for",
			sv, wire.CodeProtocol, "CANCEL of more chunks than were asked for")
		return false
	}
	sv.sw.chk.cancel(sv, idx)
	return true
}

func (sv *server) announce(i int64) {
	sv.mu.Lock()
	sv.tellLocked(uint64(i))
	sv.mu.Unlock()
	sv.signal()
}

// tellLocked queues a HAVE of chunk i unless the session was told of it
// already: each chunk is announced once per session (wire: Budgets).
func (sv *server) tellLocked(i uint64) {
	if sv.toldAll {
		return
	}
	w, bit := int(i/64), uint64(1)<<(i%64)
	sv.growTold(w + 1)
	if sv.told[w]&bit != 0 {
		return
	}
	sv.told[w] |= bit
	sv.haves = append(sv.haves, i)
}

// replaceSourceLocked serves the session from src from now on, and queues
// a HAVE of each chunk of src that the session was not told of yet
// (nothing is taken back: the wire has no way to, and a chunk src lacks is
// answered DONT_HAVE). bits is src's bitfield, nil when src is complete.
// A read of the old source that is under way finishes on it (writeChunk
// reads again from src if it failed).
func (sv *server) replaceSourceLocked(src Source, bits *bitfield.Bitfield) {
	sv.src = src
	if !sv.began || sv.toldAll {
		return // writeFirst announces what src has; or all was said
	}
	if bits == nil {
		for i := range src.Layout().NumChunks() {
			sv.tellLocked(uint64(i))
		}
		return
	}
	for i := range bits.Len() {
		if bits.Has(i) {
			sv.tellLocked(uint64(i))
		}
	}
}

func (sv *server) signal() {
	select {
	case sv.wake <- struct{}{}:
	default:
	}
}

// close sends ERROR and ends the session, as conn.close does on the
// fetching side: the sender writes it and closes the stream (endWith),
// which ends the reader. The first reason given is the one sent.
func (sv *server) close(code wire.ErrCode, msg string) {
	sv.mu.Lock()
	if sv.closeMsg == nil && !sv.done {
		sv.closeMsg = wire.NewError(code, msg)
	}
	sv.mu.Unlock()
	sv.signal()
}

// stop ends the send loop.
func (sv *server) stop() {
	sv.mu.Lock()
	sv.done = true
	sv.mu.Unlock()
	sv.signal()
}

// sendLoop writes the answers until the session ends: first HAVE, then
// blocks and DAG nodes as they are asked for, announcements as they
// come, CHOKE and UNCHOKE as the choker decides; the final ERROR, if any,
// then the end of the stream.
func (sv *server) sendLoop() {
	w := wire.NewWriter(sv.stream)
	if err := sv.writeFirst(w); err != nil {
		sv.stream.Reset()
		return
	}
	pf := newPrefetcher(sv.sw.ctx, sv.stream.Scope())
	defer pf.release()
	for {
		end, ok := sv.await(pf)
		switch {
		case end != nil:
			// Closing our side also ends readLoop.
			endWith(sv.stream, w, end, sv.sw.cfg.Now())
			return
		case !ok && sv.sw.ctx.Err() != nil:
			sv.stream.Reset() // the swarm closes
			return
		case !ok:
			sv.stream.Close()
			return
		}
		if err := sv.writeBatch(w, pf, sv.sw.chk.take(sv)); err != nil {
			sv.stream.Reset()
			return
		}
	}
}

// writeFirst sends the session's first HAVE, decided under sv.mu so that a
// Serve of the root racing with it either is seen here or sees none set
// (see Serve).
func (sv *server) writeFirst(w *wire.Writer) error {
	var first wire.Msg = &wire.HaveNone{}
	sv.mu.Lock()
	if sv.src == nil {
		sv.src = sv.sw.Registered(sv.root)
	}
	sv.began = true
	if src := sv.src; src == nil {
		// Serve tells the session of what a source has, once there is one.
	} else if src.Complete() {
		first = &wire.HaveAll{}
		sv.toldAll, sv.told, sv.haves = true, nil, nil // HAVEs queued before say nothing more
	} else {
		bits := src.Bits()
		first = &wire.HaveBitfield{Bits: bits}
		sv.toldBitsLocked(bits)
	}
	sv.mu.Unlock()
	sv.writeDeadline()
	if err := w.Write(first); err != nil {
		return err
	}
	return w.Flush()
}

// toldBitsLocked records that the session is told of the chunks of bits,
// a HAVE_BITFIELD (most significant bit first), and drops the HAVEs of them
// queued before it.
func (sv *server) toldBitsLocked(bits []byte) {
	kept := sv.haves[:0]
	for _, i := range sv.haves {
		if !bitfield.Get(bits, int64(i)) {
			kept = append(kept, i)
		}
	}
	sv.haves = kept
	// Whole bytes: no bit lies past n, so Words cannot refuse them.
	w, _ := bitfield.Words(nil, int64(len(bits))*8, bits)
	sv.growTold(len(w))
	for k, v := range w {
		sv.told[k] |= v
	}
}

// growTold makes told at least n words long.
func (sv *server) growTold(n int) {
	if n > len(sv.told) {
		sv.told = append(sv.told, make([]uint64, n-len(sv.told))...)
	}
}

// await waits until the session has something to send. It returns the
// final ERROR to send, or ok false when the session ends without one
// (the peer closed it, or the swarm closes). While no chunk request is
// queued the block buffers go back to the pool.
func (sv *server) await(pf *prefetcher) (end *wire.Error, ok bool) {
	sv.mu.Lock()
	if sv.wants.len() == 0 {
		sv.mu.Unlock()
		pf.release() // waits for a preload first: it writes into the buffers
		sv.mu.Lock()
	}
	for !sv.done && sv.closeMsg == nil && !sv.readyLocked() && len(sv.nodes) == 0 && len(sv.haves) == 0 && len(sv.ctl) == 0 {
		sv.mu.Unlock()
		select {
		case <-sv.wake:
		case <-sv.sw.ctx.Done():
			return nil, false
		}
		sv.mu.Lock()
	}
	defer sv.mu.Unlock()
	if sv.closeMsg != nil {
		sv.done = true
		return sv.closeMsg, false
	}
	return nil, !sv.done
}

// batch is what the send loop writes in one go, taken from the session's
// queues at once (slots.take).
type batch struct {
	ctl   []wire.Msg // CHOKE and UNCHOKE
	haves []uint64   // announcements
	nodes []cid.Cid  // DAG nodes asked for
	chunk uint64     // the chunk to serve, if serve
	serve bool
	more  bool // chunk requests wait after this one: no flush yet
}

// writeBatch writes b: control messages, announcements, DAG nodes,
// then the chunk; it flushes unless more is to come at once.
func (sv *server) writeBatch(w *wire.Writer, pf *prefetcher, b batch) (err error) {
	delivered := false
	if b.serve {
		// The chunk was recorded as sent to this peer when it was taken
		// (spread.go): undone unless it went out, whichever write fails.
		defer func() { sv.settleSend(delivered && err == nil) }()
	}
	sv.touch()
	sv.writeDeadline()
	for _, m := range b.ctl {
		if err := w.Write(m); err != nil {
			return err
		}
	}
	for _, h := range b.haves {
		if err := w.Write(&wire.Have{Index: h}); err != nil {
			return err
		}
	}
	for _, c := range b.nodes {
		if err := w.Write(sv.node(c)); err != nil {
			return err
		}
	}
	if b.serve {
		delivered, err = sv.writeChunk(w, pf, b.chunk)
		sv.sw.chk.sent(sv)
	}
	if err == nil && !b.more {
		err = w.Flush()
	}
	return err
}

// node returns the answer to a WANT_NODE of c: the block, or NODE_MISSING.
// Only the session root's own blocks are sent: not another root's (not
// served, or served to whoever names it), and none before this node knows
// the root's layout.
func (sv *server) node(c cid.Cid) wire.Msg {
	src := sv.source()
	if src == nil || !src.Layout().HasBlock(c) {
		return &wire.NodeMissing{CID: c}
	}
	data, err := sv.sw.blocks.GetBlock(sv.sw.ctx, c)
	if err != nil {
		return &wire.NodeMissing{CID: c}
	}
	sv.mu.Lock()
	if sv.sent == nil {
		sv.sent = map[cid.Cid]int{}
	}
	sv.sent[c]++
	sv.mu.Unlock()
	return &wire.Node{CID: c, Data: data}
}

// writeChunk writes chunk i, read and verified (by the prefetcher, which
// then starts on the one served next) and within the upload caps; or
// DONT_HAVE when it cannot be served here; sent says which. An error is
// the stream's.
func (sv *server) writeChunk(w *wire.Writer, pf *prefetcher, i uint64) (sent bool, err error) {
	src := sv.source()
	if src == nil || !src.Has(int64(i)) {
		return false, w.Write(&wire.DontHave{Indices: []uint64{i}})
	}
	data, err := pf.read(src, i)
	if err != nil {
		// Serve may have replaced the source while it was read (a
		// download moved into place, whose old paths are gone).
		if cur := sv.source(); cur != src && cur != nil && cur.Has(int64(i)) {
			src = cur
			data, err = pf.read(src, i)
		}
	}
	sv.mu.Lock()
	next, ok := sv.nextPrefetchLocked()
	sv.mu.Unlock()
	if ok {
		pf.ahead(src, next)
	}
	if err != nil {
		sv.sw.log.Warn("serving a chunk", "root", sv.root, "index", i, "err", err)
		return false, w.Write(&wire.DontHave{Indices: []uint64{i}})
	}
	if err := sv.sw.lim.sending(sv.sw.ctx, sv.lim, len(data)); err != nil {
		return false, err
	}
	sv.writeDeadline() // after the wait for the caps, which may be long
	err = w.Write(&wire.Block{Index: i, Data: data})
	n := int64(len(data))
	sv.sw.count(func(st *Stats) { st.BytesUp += n; st.ChunksServed++ })
	return err == nil, err
}

// writeDeadline gives the writes that follow IdleTimeout to go out: a
// fetcher that stops reading does not hold the session (and a slot, and
// its buffers) for good.
func (sv *server) writeDeadline() {
	sv.stream.SetWriteDeadline(sv.sw.cfg.Now().Add(sv.sw.cfg.IdleTimeout))
}
