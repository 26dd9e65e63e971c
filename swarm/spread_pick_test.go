package swarm

import (
	"context"
	"io"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/peer-project/peer/swarm/wire"
)

// pickRig is a seed's Swarm on a mesh of hosts, all connected, serving a
// file of 16 chunks, with a session admitted for each other host and not
// started: the tests drive the spread rules by hand.
type pickRig struct {
	seed  *Swarm
	root  cid.Cid
	src   *memSource
	sv    []*server // sv[k]: the session of hosts[k+1]
	hosts []host.Host
}

func newPickRig(t *testing.T, sessions int) *pickRig {
	t.Helper()
	const chunk = 1 << 10
	mn := cappedMesh(t, sessions+1, 0)
	hosts := mn.Hosts()
	data := randomData(16*chunk, 22)
	blocks := &memBlocks{m: map[cid.Cid][]byte{}}
	root := build(t, blocks, "new.bin", data, chunk)
	l, err := BuildLayout(context.Background(), blocks, root)
	if err != nil {
		t.Fatal(err)
	}
	seed := New(hosts[0], blocks, Config{Logger: quiet()})
	t.Cleanup(func() { seed.Close() })
	src := &memSource{l: l, data: data}
	seed.Serve(root, src)
	rig := &pickRig{seed: seed, root: root, src: src, hosts: hosts}
	t.Cleanup(func() { // before Close: the sessions have no stream
		for _, sv := range rig.sv {
			seed.dismiss(sv)
		}
	})
	for _, h := range hosts[1:] {
		p := h.ID()
		sv := &server{sw: seed, peer: p, root: root, wake: make(chan struct{}, 1), lim: seed.lim.peer(p)}
		if !seed.admit(sv) {
			t.Fatal("session not admitted")
		}
		rig.sv = append(rig.sv, sv)
	}
	return rig
}

// stream gives sv (of hosts[k+1]) a stream to its host, for the write
// deadlines and the memory scope, and returns a prefetcher on it; the test
// writes elsewhere.
func (rig *pickRig) stream(t *testing.T, sv *server) *prefetcher {
	t.Helper()
	for _, h := range rig.hosts[1:] {
		h.SetStreamHandler("/test/sink", func(st network.Stream) {
			io.Copy(io.Discard, st) // until the test resets it
			st.Reset()
		})
	}
	st, err := rig.seed.host.NewStream(context.Background(), sv.peer, "/test/sink")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Reset() })
	sv.stream = st
	pf := newPrefetcher(context.Background(), st.Scope())
	t.Cleanup(pf.release)
	return pf
}

// take takes sv's next chunk request as the send loop does.
func (rig *pickRig) take(sv *server) (i uint64, ok, more bool) {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.nextWantLocked()
}

// shuffled gives sv a history of requests out of index order, as a fetch
// picking rarest first has: on protocol 2.0 (server.prev) too, the spread
// rules apply to its requests, not the order of a streaming reader's
// (wantQueue.inOrder). It leaves none waiting.
func (rig *pickRig) shuffled(sv *server) {
	sv.wants.pushAt([]uint64{1, 0}, rig.seed.cfg.Now())
	sv.wants.cancel(1)
	sv.wants.cancel(0)
	sv.wants.peek() // drops them from q
}

// recipient returns the peer chunk i is recorded as sent to.
func (rig *pickRig) recipient(sv *server, i uint64) string {
	sv.spread.mu.Lock()
	defer sv.spread.mu.Unlock()
	p, _ := sv.spread.recipient(i)
	return p.String()
}

// TestSpreadChunkFlushed: a seed serving by the spread rules flushes each
// chunk it writes. A session asks for a chunk it was sent before (free:
// nobody else has it) and then a fresh one; the seed serves the fresh one
// first. Had it left it in the buffer because another request was free,
// that one can be held back before the next batch (another peer took the
// chunk meanwhile), and the written chunk would sit unsent for a hold.
func TestSpreadChunkFlushed(t *testing.T) {
	rig := newPickRig(t, 2)
	a, b := rig.sv[0], rig.sv[1]
	a.wants.pushAt([]uint64{3}, rig.seed.cfg.Now())
	if i, ok, _ := rig.take(a); !ok || i != 3 {
		t.Fatalf("first take: %d %v", i, ok)
	}
	a.wants.pushAt([]uint64{3, 4}, rig.seed.cfg.Now())
	i, ok, more := rig.take(a)
	if !ok || i != 4 {
		t.Fatalf("took %d %v, want the fresh chunk 4", i, ok)
	}
	// Another peer is sent chunk 3 now (its own hold ran out, say): a's
	// request of it is held back.
	b.spread.mu.Lock()
	b.spread.sentLocked(b.peer, 3, rig.src.l.NumChunks())
	b.spread.mu.Unlock()
	a.mu.Lock()
	ready := a.readyLocked()
	a.mu.Unlock()
	if ready {
		t.Fatal("a's request of chunk 3 is not held back; the test sets up nothing")
	}
	if more {
		t.Error("chunk 4 was taken with more: it would stay in the buffer while chunk 3 is held back")
	}
}

// TestDismissKeepsNewerSpread: a session of a root that stopped being
// served and then was served again ends after the new root's first
// session began: its end leaves the new session's record in place.
func TestDismissKeepsNewerSpread(t *testing.T) {
	rig := newPickRig(t, 1)
	old := rig.sv[0]
	rig.seed.StopServing(rig.root)
	rig.seed.Serve(rig.root, rig.src)
	sv := &server{sw: rig.seed, peer: old.peer, root: rig.root, wake: make(chan struct{}, 1), lim: rig.seed.lim.peer(old.peer)}
	if !rig.seed.admit(sv) {
		t.Fatal("session not admitted")
	}
	t.Cleanup(func() { rig.seed.dismiss(sv) })
	if sv.spread == old.spread {
		t.Fatal("the new session shares the old record; the test sets up nothing")
	}
	rig.seed.dismiss(old)
	rig.sv = nil // dismissed
	rig.seed.mu.Lock()
	got := rig.seed.spreads[rig.root]
	rig.seed.mu.Unlock()
	if got != sv.spread {
		t.Errorf("the old session's end dropped the new session's spread record")
	}
}

// failWriter fails every write, as a reset stream does.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, network.ErrReset }

// TestSpreadSendNotRecordedWhenWriteFails: a chunk whose write fails is
// not recorded as sent to that peer, and another session's request for it
// is served, not held back for a peer that does not have it.
func TestSpreadSendNotRecordedWhenWriteFails(t *testing.T) {
	rig := newPickRig(t, 2)
	a, b := rig.sv[0], rig.sv[1]
	// The writes go to failWriter.
	pf := rig.stream(t, a)

	a.wants.pushAt([]uint64{5}, rig.seed.cfg.Now())
	bt := rig.seed.chk.take(a)
	if !bt.serve || bt.chunk != 5 {
		t.Fatalf("took %+v", bt)
	}
	if err := a.writeBatch(wire.NewWriter(failWriter{}), pf, bt); err == nil {
		t.Fatal("the write did not fail")
	}
	if p := rig.recipient(a, 5); p == a.peer.String() {
		t.Errorf("chunk 5 is recorded as sent to %s, whose write failed", p)
	}
	b.wants.pushAt([]uint64{5}, rig.seed.cfg.Now())
	b.mu.Lock()
	ready := b.readyLocked()
	b.mu.Unlock()
	if !ready {
		t.Error("b's request of chunk 5 is held back for a peer that never got it")
	}
}

// TestSpreadUnheldRequestNoMiss: a request that waited longer than a hold
// before its chunk went to another peer is served, but was never held: it
// counts no miss, and the session's later requests are still held back.
func TestSpreadUnheldRequestNoMiss(t *testing.T) {
	rig := newPickRig(t, 2)
	a, b := rig.sv[0], rig.sv[1]
	rig.shuffled(a)
	n := rig.src.l.NumChunks()
	now := rig.seed.cfg.Now()
	a.wants.pushAt([]uint64{7}, now.Add(-2*spreadHold)) // it waited
	b.spread.mu.Lock()
	b.spread.sentLocked(b.peer, 7, n) // and only now is chunk 7 sent to b
	b.spread.sentLocked(b.peer, 8, n)
	b.spread.mu.Unlock()
	if i, ok, _ := rig.take(a); !ok || i != 7 {
		t.Fatalf("took %d %v, want 7", i, ok)
	}
	if a.holdsMissed != 0 {
		t.Errorf("holdsMissed is %d after a request that was never held", a.holdsMissed)
	}
	a.wants.pushAt([]uint64{8}, rig.seed.cfg.Now())
	a.mu.Lock()
	ready := a.readyLocked()
	a.mu.Unlock()
	if ready {
		t.Error("a's request of chunk 8, which b has, is not held back")
	}
}

// TestSpreadHeldRequestMisses: a request held back until its hold ran out
// counts a miss, and the session's later requests are not held back.
func TestSpreadHeldRequestMisses(t *testing.T) {
	rig := newPickRig(t, 2)
	a, b := rig.sv[0], rig.sv[1]
	rig.shuffled(a)
	n := rig.src.l.NumChunks()
	b.spread.mu.Lock()
	b.spread.sentLocked(b.peer, 7, n)
	b.spread.sentLocked(b.peer, 8, n)
	b.spread.mu.Unlock()
	a.wants.pushAt([]uint64{7}, rig.seed.cfg.Now())
	a.mu.Lock()
	ready := a.readyLocked()
	a.wants.q[0].at = a.wants.q[0].at.Add(-2 * spreadHold) // its hold runs out
	a.mu.Unlock()
	if ready {
		t.Fatal("a's request of chunk 7, which b has, is not held back")
	}
	if i, ok, _ := rig.take(a); !ok || i != 7 {
		t.Fatalf("took %d %v, want 7", i, ok)
	}
	if a.holdsMissed != 1 {
		t.Errorf("holdsMissed is %d after a held request ran out its hold, want 1", a.holdsMissed)
	}
	a.wants.pushAt([]uint64{8}, rig.seed.cfg.Now())
	a.mu.Lock()
	ready = a.readyLocked()
	a.mu.Unlock()
	if !ready {
		t.Error("a's request of chunk 8 is held back after a miss")
	}
}

// TestSpreadPrefetchesWhatIsServed: while spreading, the chunk read ahead
// is the one served next. A session asks for a chunk held back (another
// peer has it) and two fresh ones: the seed serves the fresh ones first,
// and read ahead the held one, in arrival order, before: one read and
// hash wasted per chunk.
func TestSpreadPrefetchesWhatIsServed(t *testing.T) {
	rig := newPickRig(t, 2)
	a, b := rig.sv[0], rig.sv[1]
	rig.shuffled(a)
	pf := rig.stream(t, a)
	b.spread.mu.Lock()
	b.spread.sentLocked(b.peer, 3, rig.src.l.NumChunks())
	b.spread.mu.Unlock()
	a.wants.pushAt([]uint64{3, 4, 5}, rig.seed.cfg.Now())
	w := wire.NewWriter(io.Discard)
	for _, want := range []uint64{4, 5} {
		bt := rig.seed.chk.take(a)
		if !bt.serve || bt.chunk != want {
			t.Fatalf("took %+v, want chunk %d", bt, want)
		}
		if err := a.writeBatch(w, pf, bt); err != nil {
			t.Fatal(err)
		}
	}
	if pf.misses != 0 {
		t.Errorf("%d chunks read ahead were not served next", pf.misses)
	}
}

// TestSpreadServesInOrderSession: a session of protocol 2.0, whose
// fetcher cannot say IN_ORDER, and whose requests ascend (a streaming
// reader) is served in the order it asks, while the seed spreads: neither
// held back for a chunk another connected peer got, nor passed by a fresh
// chunk; each send is still recorded. Once its requests come out of order
// it is served by the spread rules, until streamRun ascend again.
func TestSpreadServesInOrderSession(t *testing.T) {
	rig := newPickRig(t, 2)
	a, b := rig.sv[0], rig.sv[1]
	a.prev = true
	n := rig.src.l.NumChunks()
	b.spread.mu.Lock()
	for _, i := range []uint64{2, 3, 9, 10} {
		b.spread.sentLocked(b.peer, i, n) // b has them, and is connected
	}
	b.spread.mu.Unlock()
	a.wants.pushAt([]uint64{2, 3, 4, 5}, rig.seed.cfg.Now())
	for _, want := range []uint64{2, 3, 4} {
		if i, ok, _ := rig.take(a); !ok || i != want {
			t.Fatalf("took %d %v, want chunk %d: the reader's requests in order", i, ok, want)
		}
		if got := rig.recipient(a, want); got != a.peer.String() {
			t.Errorf("chunk %d recorded as sent to %s, want a", want, got)
		}
	}
	// Out of order now (chunk 9 after 5, then 1): the rules apply, the
	// request of chunk 9 (b has it) is held and the fresh 1 goes first.
	a.wants.pushAt([]uint64{9, 1}, rig.seed.cfg.Now())
	for _, want := range []uint64{5, 1} {
		if i, ok, _ := rig.take(a); !ok || i != want {
			t.Fatalf("took %d %v, want chunk %d: fresh first", i, ok, want)
		}
	}
	if i, ok, _ := rig.take(a); ok {
		t.Fatalf("took %d, want the request of chunk 9 held back", i)
	}
	// With chunk 1, streamRun requests ascending: in order again, the
	// held chunk 9 first.
	a.wants.cancel(9)
	run := []uint64{9}
	for i := range uint64(streamRun - 2) {
		run = append(run, 11+i)
	}
	a.wants.pushAt(run[:len(run)-1], rig.seed.cfg.Now())
	if i, ok, _ := rig.take(a); ok && i == 9 {
		t.Fatalf("took chunk 9 after %d requests in order, fewer than streamRun", len(run))
	}
	a.wants.pushAt(run[len(run)-1:], rig.seed.cfg.Now())
	if i, ok, _ := rig.take(a); !ok || i != 9 {
		t.Fatalf("took %d %v after streamRun requests in order, want chunk 9", i, ok)
	}
}

// TestSpreadHoldsAscendingFetcher: a fetcher of protocol 2.1 that did not
// say IN_ORDER is held back by the spread rules whatever the order of its
// requests: the first requests of one picking rarest first may ascend
// ([0 1], [0 13], [7 8] were seen), and serving them as asked sent the
// chunks a second time that another peer had.
func TestSpreadHoldsAscendingFetcher(t *testing.T) {
	for _, first := range [][]uint64{{0, 1}, {0, 13}, {7, 8}} {
		rig := newPickRig(t, 2)
		a, b := rig.sv[0], rig.sv[1]
		n := rig.src.l.NumChunks()
		b.spread.mu.Lock()
		for _, i := range first {
			b.spread.sentLocked(b.peer, i, n) // b has them, and is connected
		}
		b.spread.mu.Unlock()
		a.wants.pushAt(first, rig.seed.cfg.Now())
		if i, ok, _ := rig.take(a); ok {
			t.Errorf("first requests %v: took chunk %d, want both held back (b has them)", first, i)
		}
	}
}

// TestSpreadServesInOrderFlagged: a session whose fetcher said IN_ORDER
// is served in the order it asks from its first request on, and after a
// seek back, while the seed spreads: neither held back for a chunk
// another connected peer got, nor passed by a fresh one; each send is
// still recorded for the others.
func TestSpreadServesInOrderFlagged(t *testing.T) {
	rig := newPickRig(t, 2)
	a, b := rig.sv[0], rig.sv[1]
	a.inOrder = true
	n := rig.src.l.NumChunks()
	b.spread.mu.Lock()
	for _, i := range []uint64{2, 3, 9, 10} {
		b.spread.sentLocked(b.peer, i, n) // b has them, and is connected
	}
	b.spread.mu.Unlock()
	a.wants.pushAt([]uint64{9, 10, 11}, rig.seed.cfg.Now())
	// A seek back: the reader asks for chunk 2 on.
	a.wants.pushAt([]uint64{2, 3, 4}, rig.seed.cfg.Now())
	for _, want := range []uint64{9, 10, 11, 2, 3, 4} {
		if i, ok, _ := rig.take(a); !ok || i != want {
			t.Fatalf("took %d %v, want chunk %d: the reader's requests in the order it asked", i, ok, want)
		}
		if got := rig.recipient(a, want); got != a.peer.String() {
			t.Errorf("chunk %d recorded as sent to %s, want a", want, got)
		}
	}
}
