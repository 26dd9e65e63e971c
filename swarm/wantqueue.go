package swarm

import "time"

// wantQueue is a session's chunk requests waiting to be served, in arrival
// order; a CANCEL withdraws the earliest waiting request of its chunk. It
// behaves as a slice that CANCEL searches, but every operation costs O(1),
// amortized: a CANCEL does not scan the queue (it only drops the request's
// number from its chunk's list; the entry stays in q and is skipped when it
// comes up), so a peer's CANCELs cost us no more than they cost it. Dead
// entries are compacted away once they outnumber the live ones, so q stays
// within twice the live requests, plus a little. It is guarded by its
// server's mu.
type wantQueue struct {
	q    []want              // requests in arrival order, cancelled ones too
	live map[uint64][]uint64 // each chunk's waiting requests, by number, ascending
	seq  uint64              // number of the next request
	n    int                 // requests waiting: the lengths of live

	// The order the requests came in (inOrder): the latest one's chunk,
	// how many requests the ascending run that ends with it holds, and
	// whether a request ever failed to ascend. CHOKE keeps them: they
	// describe the fetcher, not the queue.
	last   uint64
	run    int
	broken bool
}

// want is one request: its chunk, its number and when it came, and
// whether the spread rules held it back (spread.go).
type want struct {
	idx, seq uint64
	at       time.Time
	held     bool
}

// len returns the number of requests waiting.
func (w *wantQueue) len() int { return w.n }

// pushAt queues requests for the chunks idx, in order, that came at at.
func (w *wantQueue) pushAt(idx []uint64, at time.Time) {
	if w.live == nil {
		w.live = map[uint64][]uint64{}
	}
	for _, i := range idx {
		if w.run == 0 || i > w.last {
			w.run++
		} else {
			w.run, w.broken = 1, true
		}
		w.last = i
		w.q = append(w.q, want{idx: i, seq: w.seq, at: at})
		w.live[i] = append(w.live[i], w.seq)
		w.seq++
	}
	w.n += len(idx)
}

// inOrder reports whether the fetcher asks for chunks in index order, as
// a streaming reader does (its scheduler asks for its priority range in
// order, package sched): every request so far, or the last streamRun,
// named a chunk past the one before. The spread rules ask it only of a
// fetcher of protocol 2.0, which cannot say IN_ORDER (spread.go). A
// fetcher picking rarest first, in random order, keeps streamRun requests
// ascending about once in streamRun! (1 in 40320); its first few requests
// may pass.
func (w *wantQueue) inOrder() bool {
	return w.run > 0 && (!w.broken || w.run >= streamRun)
}

// cancel withdraws the earliest waiting request for chunk i and reports
// whether there was one.
func (w *wantQueue) cancel(i uint64) bool {
	l := w.live[i]
	if len(l) == 0 {
		return false
	}
	w.drop(i, l)
	if dead := len(w.q) - w.n; dead > w.n+64 {
		w.compact()
	}
	return true
}

// drop removes the first request of l, the list of chunk i.
func (w *wantQueue) drop(i uint64, l []uint64) {
	if len(l) == 1 {
		delete(w.live, i)
	} else {
		w.live[i] = l[1:]
	}
	w.n--
}

// peek returns the next request to serve, dropping the cancelled entries in
// front of it; ok is false when none waits.
func (w *wantQueue) peek() (i uint64, ok bool) {
	for len(w.q) > 0 {
		h := w.q[0]
		// Entries come in the order of their numbers, so a live one is
		// the first of its chunk's list.
		if l := w.live[h.idx]; len(l) > 0 && l[0] == h.seq {
			return h.idx, true
		}
		w.q = w.q[1:]
	}
	return 0, false
}

// pop removes and returns the next request to serve.
func (w *wantQueue) pop() (i uint64, ok bool) {
	i, ok = w.peek()
	if ok {
		w.q = w.q[1:]
		w.drop(i, w.live[i])
	}
	return i, ok
}

// reset drops every request (CHOKE).
func (w *wantQueue) reset() {
	w.q, w.live, w.n = nil, nil, 0
}

// compact drops the cancelled entries from q.
func (w *wantQueue) compact() {
	next := make(map[uint64]int, len(w.live)) // position in each chunk's list
	out := make([]want, 0, w.n)
	for _, h := range w.q {
		l, k := w.live[h.idx], next[h.idx]
		if k < len(l) && l[k] == h.seq {
			next[h.idx] = k + 1
			out = append(out, h)
		}
	}
	w.q = out
}

// scan calls fn with up to n waiting requests, in the order they are
// served, until fn returns false. A chunk asked for twice is seen once, at
// its earliest request. fn may set the request's held, and must not change
// the queue otherwise.
func (w *wantQueue) scan(n int, fn func(h *want) bool) {
	for k := range w.q {
		h := &w.q[k]
		if n == 0 {
			return
		}
		if l := w.live[h.idx]; len(l) == 0 || l[0] != h.seq {
			continue // cancelled, or a later request of a chunk seen
		}
		n--
		if !fn(h) {
			return
		}
	}
}
