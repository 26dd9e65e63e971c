package swarm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peer-project/peer/swarm/wire"
)

// errNotProvided is said to a peer that asks for a root not served here.
var errNotProvided = errors.New("root not provided here")

// helloTimeout bounds how long an accepted stream may take to say HELLO.
const helloTimeout = 20 * time.Second

// maxClientMsg bounds a message from the fetching side: it sends WANT,
// CANCEL and WANT_NODE only, all small.
const maxClientMsg = 16 << 10

// maxNodeResends is how many times a session is sent one manifest block: a
// fetcher asks again only when the first answer was late (it waits 30 s)
// or could not be kept.
const maxNodeResends = 2

// server is the serving side of one stream: a peer fetching a root from us.
type server struct {
	sw     *Swarm
	stream network.Stream
	peer   peer.ID
	root   cid.Cid

	mu     sync.Mutex
	src    Source          // nil until this node has chunks of root to serve
	wake   chan struct{}   // one token: the queues changed
	wants  wantQueue       // chunk requests, in arrival order
	asked  int64           // chunks WANTed minus chunks CANCELled: the CANCEL budget
	nodes  []cid.Cid       // manifest block requests
	sent   map[cid.Cid]int // NODEs sent, by CID: the WANT_NODE budget
	haves  []uint64        // announcements to send
	none   bool            // the session began with HAVE_NONE and no source yet
	choked bool            // told (or about to be told) CHOKE: WANTs are dropped
	ctl    []wire.Msg      // CHOKE and UNCHOKE to send, in order
	cs     chokeState      // guarded by the swarm's choker
	lim    *peerLimit      // the peer's upload cap
	errMsg *wire.Error     // a final ERROR to send, then close
	done   bool
	active time.Time   // the last message read or batch written
	idle   *time.Timer // runs idleCheck
}

func (s *Swarm) handleStream(st network.Stream) {
	p := st.Conn().RemotePeer()
	if s.Banned(p) || s.cfg.Allow != nil && !s.cfg.Allow(p) {
		st.Reset()
		return
	}
	if !s.goroutine(func() { s.serve(st, p) }) {
		st.Reset()
	}
}

func (s *Swarm) serve(st network.Stream, p peer.ID) {
	st.SetReadDeadline(s.cfg.Now().Add(helloTimeout))
	r := wire.NewReader(st, maxClientMsg)
	m, err := r.Read()
	if err != nil {
		st.Reset()
		return
	}
	hello, ok := m.(*wire.Hello)
	if !ok || hello.Version != wire.Version {
		// Counted before the reset, so that whoever sees the stream end
		// sees the count too.
		s.count(func(st *Stats) { st.ProtocolViolations++ })
		w := wire.NewWriter(st)
		w.Write(wire.NewError(wire.CodeProtocol, "expected HELLO version 1"))
		w.Flush()
		st.Close() // not Reset, which would drop the ERROR unread
		return
	}
	st.SetReadDeadline(time.Time{})
	sv := &server{sw: s, stream: st, peer: p, root: hello.Root, wake: make(chan struct{}, 1), lim: s.lim.peer(p)}
	defer s.lim.release(p, sv.lim)
	// A node that is itself fetching root takes the session too, with
	// HAVE_NONE, and announces each chunk as it gets it: peers that
	// download the same root at the same time trade.
	// Only roots served here are answered: shared (or inside a share), or
	// being fetched. A root whose manifest is merely stored (inspected,
	// unshared, a failed fetch) is not.
	src, err := s.sourceFor(p, hello.Root)
	if err == nil && src == nil && !s.isFetching(hello.Root) {
		err = errNotProvided
	}
	if err != nil {
		code := wire.CodeNotFound
		if err == errTooManyLookups {
			code = wire.CodeTooManyRequests
		}
		w := wire.NewWriter(st)
		w.Write(wire.NewError(code, err.Error()))
		w.Flush()
		st.Close()
		return
	}
	sv.src = src
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.Reset()
		return
	}
	set := s.serving[hello.Root]
	if set == nil {
		set = map[*server]struct{}{}
		s.serving[hello.Root] = set
	}
	set[sv] = struct{}{}
	s.stats.ServeSessions++
	s.mu.Unlock()
	s.fetching(hello.Root, p)
	defer func() {
		s.mu.Lock()
		delete(s.serving[hello.Root], sv)
		if len(s.serving[hello.Root]) == 0 {
			delete(s.serving, hello.Root)
		}
		s.stats.ServeSessions--
		s.mu.Unlock()
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sv.sendLoop()
	}()
	sv.touch()
	sv.mu.Lock()
	sv.idle = time.AfterFunc(s.cfg.IdleTimeout, sv.idleCheck)
	sv.mu.Unlock()
	sv.readLoop(r)
	sv.stop() // before Stop: idleCheck re-arms the timer only before done
	sv.idle.Stop()
	wg.Wait()
	s.chk.leave(sv)
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
	if sv.done || sv.errMsg != nil {
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
	sv.fail(wire.CodeIdle, fmt.Sprintf("nothing asked for %v; open a new session to ask again", idle))
}

// readLoop reads the fetcher's requests until the stream ends.
func (sv *server) readLoop(r *wire.Reader) {
	for {
		m, err := r.Read()
		if err != nil {
			if errors.Is(err, wire.ErrProtocol) {
				sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
				sv.fail(wire.CodeProtocol, err.Error())
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
		case *wire.WantNode:
			sv.mu.Lock()
			if len(sv.nodes) >= 64 {
				sv.mu.Unlock()
				sv.fail(wire.CodeTooManyRequests, "more than 64 manifest requests waiting")
				return
			}
			if sv.sent[m.CID] >= maxNodeResends {
				// A fetcher keeps what it got: asking again is a flood
				// (74 bytes in, up to 1 MiB out).
				sv.mu.Unlock()
				sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
				sv.fail(wire.CodeProtocol, fmt.Sprintf("WANT_NODE of %s, sent %d times already", m.CID, maxNodeResends))
				sv.sw.Ban(sv.peer, "WANT_NODE of a block it was sent again and again")
				return
			}
			sv.nodes = append(sv.nodes, m.CID)
			sv.mu.Unlock()
			sv.signal()
		case *wire.Error:
			return
		default:
			sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
			sv.fail(wire.CodeProtocol, "unexpected "+m.Type().String()+" from the fetching side")
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
		sv.fail(wire.CodeTooManyRequests, "too many requests outstanding")
		sv.sw.Ban(sv.peer, fmt.Sprintf("more than %d requests waiting", sv.sw.cfg.MaxQueue))
		return false
	}
	for _, i := range idx {
		if n < 0 || i >= uint64(n) { // unsigned: an index of 2^63 or more is past any end
			sv.mu.Unlock()
			sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
			sv.fail(wire.CodeProtocol, "WANT of a chunk index past the end")
			return false
		}
	}
	sv.mu.Unlock()
	sv.sw.chk.want(sv, idx)
	return true
}

func (sv *server) hasWants() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.wants.len() > 0
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
	if !over {
		for _, i := range idx {
			sv.wants.cancel(i)
		}
	}
	sv.mu.Unlock()
	if over {
		sv.sw.count(func(st *Stats) { st.ProtocolViolations++ })
		sv.fail(wire.CodeProtocol, "CANCEL of more chunks than were asked for")
		sv.sw.Ban(sv.peer, "CANCEL of more chunks than it asked for")
		return false
	}
	return true
}

func (sv *server) announce(i int64) {
	sv.mu.Lock()
	sv.haves = append(sv.haves, uint64(i))
	sv.mu.Unlock()
	sv.signal()
}

func (sv *server) signal() {
	select {
	case sv.wake <- struct{}{}:
	default:
	}
}

// fail sends ERROR and ends the session.
func (sv *server) fail(code wire.ErrCode, msg string) {
	sv.mu.Lock()
	if sv.errMsg == nil && !sv.done {
		sv.errMsg = wire.NewError(code, msg)
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

// preload is a chunk being read and verified ahead of its turn.
type preload struct {
	idx  uint64
	data []byte
	err  error
	done chan struct{}
}

// preload starts reading the next chunk wanted into *buf, or returns nil
// when none is queued.
func (sv *server) preload(ctx context.Context, src Source, buf *[]byte) *preload {
	sv.mu.Lock()
	idx, ok := sv.wants.peek()
	sv.mu.Unlock()
	if !ok {
		return nil
	}
	if !src.Has(int64(idx)) {
		return nil
	}
	p := &preload{idx: idx, done: make(chan struct{})}
	if *buf == nil {
		*buf = getBuf(int(src.Layout().Chunks[idx].Size))
	}
	b := (*buf)[:0]
	go func() {
		defer close(p.done)
		p.data, p.err = src.ReadChunk(ctx, int64(idx), b)
		if p.err == nil {
			*buf = p.data[:0] // keep a grown buffer; only this goroutine touches *buf until done
		}
	}()
	return p
}

// sendLoop writes the answers: first HAVE, then blocks and manifest blocks
// as they are asked for, announcements as they come.
func (sv *server) sendLoop() {
	w := wire.NewWriter(sv.stream)
	ctx := sv.sw.ctx
	defer sv.stream.Close()
	// The first HAVE, decided under sv.mu so that a Serve of the root
	// racing with it either is seen here or sees none set (see Serve).
	var first wire.Msg = &wire.HaveNone{}
	sv.mu.Lock()
	if sv.src == nil {
		sv.src = sv.sw.Registered(sv.root)
	}
	if src := sv.src; src == nil {
		sv.none = true
	} else if src.Complete() {
		first = &wire.HaveAll{}
	} else {
		first = &wire.HaveBitfield{Bits: src.Bits()}
	}
	sv.mu.Unlock()
	if err := w.Write(first); err != nil || w.Flush() != nil {
		sv.stream.Reset()
		return
	}
	// While one block is written, the next one wanted is read and verified
	// on another goroutine: two buffers take turns. They come from the
	// process's pool and go back whenever nothing is queued, so that a
	// node with many quiet sessions holds few.
	var (
		bufs [2][]byte
		cur  int
		pre  *preload
	)
	release := func() {
		if pre != nil {
			<-pre.done
			pre = nil
		}
		for k, b := range bufs {
			if b != nil {
				putBuf(b)
				bufs[k] = nil
			}
		}
	}
	defer release()
	for {
		sv.mu.Lock()
		if sv.wants.len() == 0 {
			sv.mu.Unlock()
			release() // waits for a preload first: it writes into bufs
			sv.mu.Lock()
		}
		for !sv.done && sv.errMsg == nil && sv.wants.len() == 0 && len(sv.nodes) == 0 && len(sv.haves) == 0 && len(sv.ctl) == 0 {
			sv.mu.Unlock()
			select {
			case <-sv.wake:
			case <-ctx.Done():
				sv.stream.Reset()
				return
			}
			sv.mu.Lock()
		}
		if sv.errMsg != nil {
			// The ERROR, then the end of the stream (the deferred Close):
			// a Reset would have the peer drop the ERROR unread. Closing
			// our reading side also ends readLoop.
			e := sv.errMsg
			sv.done = true
			sv.mu.Unlock()
			w.Write(e)
			w.Flush()
			return
		}
		if sv.done {
			sv.mu.Unlock()
			return
		}
		ctl := sv.ctl
		sv.ctl = nil
		haves := sv.haves
		sv.haves = nil
		nodes := sv.nodes
		sv.nodes = nil
		idx, have := sv.wants.pop()
		more := sv.wants.len() > 0 || len(sv.ctl) > 0
		sv.mu.Unlock()
		sv.touch()

		for _, m := range ctl {
			if err := w.Write(m); err != nil {
				sv.stream.Reset()
				return
			}
		}
		for _, h := range haves {
			if err := w.Write(&wire.Have{Index: h}); err != nil {
				sv.stream.Reset()
				return
			}
		}
		for _, c := range nodes {
			// Only the session root's own blocks: not another root's
			// (not served, or served to whoever names it), and none
			// before this node knows the root's layout.
			var m wire.Msg = &wire.NodeMissing{CID: c}
			if src := sv.source(); src != nil && src.Layout().HasBlock(c) {
				if data, err := sv.sw.blocks.GetBlock(ctx, c); err == nil {
					m = &wire.Node{CID: c, Data: data}
					sv.mu.Lock()
					if sv.sent == nil {
						sv.sent = map[cid.Cid]int{}
					}
					sv.sent[c]++
					sv.mu.Unlock()
				}
			}
			if err := w.Write(m); err != nil {
				sv.stream.Reset()
				return
			}
		}
		if have {
			sv.sw.chk.writing(sv)
			var err error
			if src := sv.source(); src == nil || !src.Has(int64(idx)) {
				err = w.Write(&wire.DontHave{Indices: []uint64{idx}})
			} else {
				var buf []byte
				if pre != nil && pre.idx == idx {
					<-pre.done
					buf, err, cur = pre.data, pre.err, 1-cur
				} else {
					if pre != nil {
						<-pre.done // it was cancelled; its buffer is free again
					}
					if bufs[cur] == nil {
						bufs[cur] = getBuf(int(src.Layout().Chunks[idx].Size))
					}
					buf, err = src.ReadChunk(ctx, int64(idx), bufs[cur][:0])
				}
				bufs[cur] = buf[:0]
				pre = sv.preload(ctx, src, &bufs[1-cur])
				if err != nil {
					sv.sw.log.Warn("serving a chunk", "root", sv.root, "index", idx, "err", err)
					err = w.Write(&wire.DontHave{Indices: []uint64{idx}})
				} else if err = sv.sw.lim.sending(ctx, sv.lim, len(buf)); err == nil {
					err = w.Write(&wire.Block{Index: idx, Data: buf})
					n := int64(len(buf))
					sv.sw.count(func(st *Stats) { st.BytesUp += n; st.ChunksServed++ })
				}
			}
			sv.sw.chk.sent(sv)
			if err != nil {
				sv.stream.Reset()
				return
			}
		}
		if !more {
			if err := w.Flush(); err != nil {
				sv.stream.Reset()
				return
			}
		}
	}
}
