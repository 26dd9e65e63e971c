package swarm

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
)

// prefetcher reads the chunks one session serves. While one block is
// written, the next one wanted is read and verified on another goroutine:
// two buffers take turns. They come from the process's pool, their memory
// reserved in the stream's resource scope, and go back (release) whenever
// nothing is queued, so that a node with many quiet sessions holds few. It
// is used by one goroutine, the session's sender.
type prefetcher struct {
	ctx   context.Context
	scope network.ResourceScope
	bufs  [2][]byte
	held  [2]int // bytes reserved in scope for bufs
	cur   int    // the buffer the next read fills
	pre   *preload
	// misses counts chunks read ahead that were not the next read: a
	// read and a hash wasted.
	misses int
}

// preload is a chunk being read and verified ahead of its turn, into the
// buffer that is not cur.
type preload struct {
	src  Source
	idx  uint64
	data []byte
	err  error
	done chan struct{}
}

func newPrefetcher(ctx context.Context, scope network.ResourceScope) *prefetcher {
	return &prefetcher{ctx: ctx, scope: scope}
}

// read returns chunk i of src, verified: the one read ahead, or read now.
// A chunk read ahead from another source (Serve replaced it since) is
// taken only if that read succeeded. The bytes are good until the next
// read or release.
func (pf *prefetcher) read(src Source, i uint64) ([]byte, error) {
	if p := pf.pre; p != nil {
		<-p.done // a preload of another chunk was cancelled; its buffer is free again
		pf.pre = nil
		if p.idx == i && (p.src == src || p.err == nil) {
			pf.cur = 1 - pf.cur
			return p.data, p.err
		}
		pf.misses++
	}
	buf, err := pf.buffer(pf.cur, int(src.Layout().Chunks[i].Size))
	if err != nil {
		return nil, err
	}
	data, err := src.ReadChunk(pf.ctx, int64(i), buf)
	pf.cur = 1 - pf.cur
	return data, err
}

// ahead starts reading chunk i of src into the other buffer, if src has it.
func (pf *prefetcher) ahead(src Source, i uint64) {
	if pf.pre != nil || !src.Has(int64(i)) {
		return
	}
	k := pf.cur
	buf, err := pf.buffer(k, int(src.Layout().Chunks[i].Size))
	if err != nil {
		return // read when its turn comes, or answered DONT_HAVE then
	}
	p := &preload{src: src, idx: i, done: make(chan struct{})}
	pf.pre = p
	go func() { // waited for by read and release
		defer close(p.done)
		p.data, p.err = src.ReadChunk(pf.ctx, int64(i), buf)
	}()
}

// buffer returns buffer k, of n bytes' capacity at least, reserving its
// memory first.
func (pf *prefetcher) buffer(k, n int) ([]byte, error) {
	if cap(pf.bufs[k]) >= n {
		return pf.bufs[k][:0], nil
	}
	pf.put(k)
	size := max(n, minPooled)
	if c := sizeClass(n); c >= 0 {
		size = minPooled << c
	}
	if err := pf.scope.ReserveMemory(size, network.ReservationPriorityMedium); err != nil {
		return nil, fmt.Errorf("a %d-byte block buffer: %w", size, err)
	}
	pf.bufs[k], pf.held[k] = getBuf(n)[:0], size
	return pf.bufs[k], nil
}

// put gives buffer k back to the pool, and its memory to the scope.
func (pf *prefetcher) put(k int) {
	if pf.bufs[k] != nil {
		putBuf(pf.bufs[k])
		pf.bufs[k] = nil
	}
	if pf.held[k] > 0 {
		pf.scope.ReleaseMemory(pf.held[k])
		pf.held[k] = 0
	}
}

// release waits for a preload, then gives both buffers back.
func (pf *prefetcher) release() {
	if pf.pre != nil {
		<-pf.pre.done
		pf.pre = nil
	}
	pf.put(0)
	pf.put(1)
}
