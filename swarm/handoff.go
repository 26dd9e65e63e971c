package swarm

// handoffBytes bounds the verified chunks a download keeps in memory for a
// streaming reader (see handoff): a few chunks, not a cache of the file.
const handoffBytes = 4 << 20

// handoff keeps the last chunks a download verified and wrote, in the very
// buffers they were received and hashed in, for a reader in this process
// that reads them next: node.Open's reader, through ReadBack, gets each
// with one copy from memory instead of a pread of what the download has
// just written (and, with writeBehind, may already have dropped from the
// page cache). It starts keeping at the first ReadBack, so a download that
// no one reads as it goes (Fetch, `peer get -o FILE`) keeps nothing.
//
// Ownership: a buffer is the handoff's from the moment writeOwned keeps it
// (its sender then forgets it) until ReadBack takes it out, or it is
// dropped to make room or by closeFiles; whoever removes it from kept,
// under the download's mu, is its only owner from then on and gives it
// back to the pool (putBuf) when done. So no buffer is read after it went
// back to the pool, and the bytes handed over are those verified.
//
// Its fields are guarded by the download's mu.
type handoff struct {
	kept   []keptChunk // oldest first; at most max bytes in all
	bytes  int         // of kept
	max    int         // handoffBytes; tests lower it
	on     bool        // a ReadBack has been called: keep chunks
	closed bool        // closeFiles ran: keep no more
	hits   int64       // ReadBacks served from kept
}

// keptChunk is chunk i's verified bytes, in a buffer from getBuf.
type keptChunk struct {
	i    int64
	data []byte
}

// keepLocked keeps data, chunk i's verified bytes, dropping the oldest
// kept chunks to make room. It reports false, and keeps nothing, when no
// reader reads the download as it goes, or data alone is over the bound.
func (h *handoff) keepLocked(i int64, data []byte) bool {
	if !h.on || h.closed || len(data) > h.max || len(data) == 0 {
		return false
	}
	for h.bytes+len(data) > h.max {
		h.dropLocked()
	}
	h.kept = append(h.kept, keptChunk{i: i, data: data})
	h.bytes += len(data)
	return true
}

// dropLocked gives the oldest kept chunk's buffer back to the pool (no I/O:
// a sync.Pool put).
func (h *handoff) dropLocked() {
	putBuf(h.kept[0].data)
	h.bytes -= len(h.kept[0].data)
	h.kept[0] = keptChunk{}
	h.kept = h.kept[1:]
}

// takeLocked removes chunk i from kept and returns its buffer, which the
// caller then owns (and gives back with putBuf); nil if it is not kept.
func (h *handoff) takeLocked(i int64) []byte {
	for k, c := range h.kept {
		if c.i != i {
			continue
		}
		copy(h.kept[k:], h.kept[k+1:])
		h.kept[len(h.kept)-1] = keptChunk{}
		h.kept = h.kept[:len(h.kept)-1]
		h.bytes -= len(c.data)
		h.hits++
		return c.data
	}
	return nil
}

// closeLocked gives every kept buffer back and keeps no more.
func (h *handoff) closeLocked() {
	h.closed = true
	for len(h.kept) > 0 {
		h.dropLocked()
	}
	h.kept = nil
}
