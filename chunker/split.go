package chunker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/integrity"
)

// Chunk is one piece of a stream, handed to the callback of Split.
type Chunk struct {
	// Index is the chunk's position in the stream, from 0.
	Index int64
	// Offset is where the chunk starts in the stream.
	Offset int64
	// Size is the chunk's length in bytes, len(Data).
	Size int
	// CID names the chunk: CIDv1, raw codec, sha2-256, as integrity.Chunk.
	CID cid.Cid
	// Data holds the chunk's bytes. It is valid only during the callback:
	// the buffer is reused afterwards. Copy what must outlive the call.
	Data []byte
}

// ErrNilFunc is returned by Split when it is given no callback.
var ErrNilFunc = errors.New("chunker: nil chunk callback")

// ReadError reports that the stream failed: Err is what its Read returned,
// Offset how many bytes of the stream had been read before. Chunks that ended
// before Offset were delivered first.
type ReadError struct {
	Offset int64
	Err    error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("chunker: read at offset %d: %v", e.Offset, e.Err)
}

// Unwrap returns the reader's error.
func (e *ReadError) Unwrap() error { return e.Err }

// Splitter cuts streams into chunks with Params, hashing them on Workers
// goroutines. A Splitter is a plain value: copy it freely, and call Split
// from as many goroutines as you like.
type Splitter struct {
	// Params say where to cut. They must pass Params.Validate.
	Params Params
	// Workers is how many goroutines hash chunks at once; 0 means
	// runtime.GOMAXPROCS(0). Negative is invalid. Split runs max(Workers, 2)
	// goroutines, which take turns to read the stream and find the
	// boundaries (one at a time, and in preference to hashing) and hash
	// chunks otherwise. With FastCDC and Workers > 1, the worker that
	// reads a buffer while others wait for work finds its boundaries in up
	// to 1 + (workers waiting) segments at once, on goroutines it starts
	// and waits for.
	Workers int
}

// Split cuts r into chunks per p, hashes them on runtime.GOMAXPROCS(0)
// goroutines and calls fn for each chunk in order. It is
// Splitter{Params: p}.Split(ctx, r, fn); see there.
func Split(ctx context.Context, r io.Reader, p Params, fn func(Chunk) error) error {
	return Splitter{Params: p}.Split(ctx, r, fn)
}

// Split cuts r into chunks per s.Params, hashes them (CIDv1, raw, sha2-256,
// as integrity.Chunk) on s.Workers goroutines, and calls fn for each chunk in
// stream order, from the calling goroutine, one call at a time (so a panic
// in fn reaches the caller, after Split's goroutines have stopped). An empty
// stream has no chunks, so fn is never called.
//
// Split blocks until the stream ends or it stops, and returns:
//   - nil when every chunk was delivered;
//   - the first error fn returns (Split stops at once);
//   - ctx.Err() when ctx ends; ctx is checked before every chunk and
//     between reads;
//   - a *ReadError when r fails, after the chunks that ended before the
//     failure were delivered;
//   - an error wrapping ErrParams when s is invalid, before reading.
//
// r is read by one goroutine at a time (whichever worker is free to read;
// each Read happens after the previous one returned), in pieces of up to
// 1 MiB (a reader that returns short reads gives the same chunks); Split
// does not close it. No goroutine that Split starts outlives it, so a Read
// that blocks forever blocks Split even after ctx ends: close the reader to
// unblock it.
//
// Memory is bounded whatever the stream's length: Workers + 2 buffers of
// max(Size, 1 MiB) bytes for Fixed (1 MiB for the default 1 MiB chunks), or
// of Max + 1 MiB for FastCDC (and, with Workers > 1, two bitmaps of one bit
// per byte of a buffer, to cut it in segments). Each chunk's bytes are
// copied once, from the reader into a buffer, except that FastCDC moves the
// unfinished chunk at the end of a buffer to the start of the next.
//
// Split is safe for concurrent use (each call has its own state).
func (s Splitter) Split(ctx context.Context, r io.Reader, fn func(Chunk) error) error {
	if err := s.Params.Validate(); err != nil {
		return err
	}
	if s.Workers < 0 {
		return fmt.Errorf("%w: %d workers", ErrParams, s.Workers)
	}
	if fn == nil {
		return ErrNilFunc
	}
	workers := s.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return run(ctx, r, s.Params, workers, slabSize(s.Params), fn)
}

// slabSize returns the size of the buffers that Split reads into for p. For
// Fixed it is a whole number of chunks, at least 1 MiB. For FastCDC it is
// Max plus one read piece: the unfinished chunk moved from one buffer to the
// next is shorter than Max, so every buffer gets at least a piece of new
// bytes and completes at least one chunk.
func slabSize(p Params) int {
	if p.Algorithm == Fixed {
		return max(1, readPiece/p.Size) * p.Size
	}
	return p.Max + readPiece
}

// A slab is one buffer of the pipeline with the chunks cut in it. A worker
// that reads fills and cuts it and queues it, workers hash its chunks, the
// last of them puts it in its delivery slot, and deliver hands the chunks to
// fn and puts the slab back in the free pool. Its fields are written by one
// goroutine at a time, handed on through the pipeline's lock or a channel;
// next and pending are under the lock; each chunk's CID is written by the
// worker that hashes it. Bytes past the last chunk (the unfinished one) are
// only ever read by the reader.
type slab struct {
	// mem is the slab's memory, readAlign bytes more than buf: fill
	// places buf in it as the stream's offsets lie modulo readAlign.
	mem   []byte
	buf   []byte
	seq   int64 // position in the stream of slabs, from 0
	base  int64 // stream offset of buf[0]
	index int64 // index of the first chunk
	ends  []int // end of each chunk in buf; the first starts at 0
	cids  []cid.Cid
	err   error // a *ReadError after the chunks, if the stream failed
	last  bool  // the stream ends with this slab

	next    int // the next chunk to hand out for hashing
	pending int // chunks not hashed yet
}

// newSlab returns a slab of n bytes.
func newSlab(n int) *slab {
	return &slab{mem: make([]byte, n+readAlign)}
}

// pipeline is what the goroutines of one Split share.
//
// Its workers are symmetric: each reads and cuts the next slab when a slab
// is free and no other worker is reading, and otherwise hashes the next
// chunk waiting. Reading goes first because it is the one part that cannot
// be shared out: it feeds every worker. So the goroutine that reads is never
// one more than there are CPUs to run it, as a dedicated reader goroutine
// was (with Workers = GOMAXPROCS it got its CPU only part of the time, and
// the stream was read more slowly than the workers could hash it).
type pipeline struct {
	// slots[seq % len(slots)] receives slab seq once hashed. As there are
	// len(slots) slabs, the slabs in flight have distinct slots, and each
	// slot (capacity 1) never holds more than one: sends never block.
	// deliver waits on the slot of the next slab in order, so it is woken
	// by the worker that hashed it last.
	slots []chan *slab
	stop  chan struct{} // closed when Split returns

	mu      sync.Mutex
	cond    sync.Cond // on mu: a worker waits on it for something to do
	free    []*slab   // slabs to fill
	queue   []*slab   // cut slabs with chunks not handed out yet, in order
	hashing int       // workers hashing a chunk now
	maxHash int       // at most so many hash at once (Splitter.Workers)
	reading bool      // a worker is reading; only that one uses rd
	waiting int       // workers waiting on cond: cores the cut may use
	readEnd bool      // the reader has queued its last slab, or stopped
	stopped bool      // Split is returning

	rd reader
}

// run is Split with checked arguments. Tests call it directly with small
// parameters and slabs. slabLen must be at least p.MaxChunk().
//
// It starts max(workers, 2) goroutines, of which at most workers hash at a
// time, so that with one worker reading and hashing still overlap.
func run(ctx context.Context, r io.Reader, p Params, workers, slabLen int, fn func(Chunk) error) error {
	nslabs := workers + 2
	pl := &pipeline{
		free:    make([]*slab, 0, nslabs),
		queue:   make([]*slab, 0, nslabs),
		slots:   make([]chan *slab, nslabs),
		stop:    make(chan struct{}),
		maxHash: workers,
	}
	pl.cond.L = &pl.mu
	pl.rd = reader{ctx: ctx, r: r, cut: newCutter(p), stop: pl.stop}
	if p.Algorithm == FastCDC && workers > 1 {
		pl.rd.segs = workers
	}
	for i := range nslabs {
		pl.free = append(pl.free, newSlab(slabLen))
		pl.slots[i] = make(chan *slab, 1)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		close(pl.stop)
		pl.mu.Lock()
		pl.stopped = true
		pl.cond.Broadcast()
		pl.mu.Unlock()
	}()
	for range max(workers, 2) {
		wg.Go(pl.work)
	}
	return pl.deliver(ctx, fn)
}

// deliver calls fn for every chunk of every slab, in order, and recycles the
// slabs.
func (pl *pipeline) deliver(ctx context.Context, fn func(Chunk) error) error {
	for seq := 0; ; seq++ {
		var s *slab
		select {
		case s = <-pl.slots[seq%len(pl.slots)]:
		case <-ctx.Done(): // the reader stops too, without sending more
			return ctx.Err()
		}
		start := 0
		for i, end := range s.ends {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := fn(Chunk{
				Index:  s.index + int64(i),
				Offset: s.base + int64(start),
				Size:   end - start,
				CID:    s.cids[i],
				Data:   s.buf[start:end:end],
			})
			if err != nil {
				return err
			}
			start = end
		}
		if s.err != nil {
			return s.err
		}
		if s.last {
			return nil
		}
		pl.mu.Lock()
		pl.free = append(pl.free, s)
		pl.cond.Signal() // any waiting worker can read into it
		pl.mu.Unlock()
	}
}

// work is a worker: it reads and cuts a slab when it can, hashes a chunk
// otherwise, and waits when there is neither, until Split returns.
func (pl *pipeline) work() {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for !pl.stopped {
		switch {
		case !pl.reading && !pl.readEnd && len(pl.free) > 0:
			s := pl.free[len(pl.free)-1]
			pl.free = pl.free[:len(pl.free)-1]
			pl.reading = true
			spare := pl.waiting
			pl.mu.Unlock()
			queue, last := pl.rd.fill(s, spare)
			pl.mu.Lock()
			pl.reading = false
			pl.readEnd = last
			if !queue {
				continue
			}
			if len(s.ends) == 0 { // nothing to hash: an empty end or an error
				pl.mu.Unlock()
				pl.slots[s.seq%int64(len(pl.slots))] <- s
				pl.mu.Lock()
				continue
			}
			s.next, s.pending = 0, len(s.ends)
			pl.queue = append(pl.queue, s)
			pl.cond.Broadcast() // chunks for every worker
		case len(pl.queue) > 0 && pl.hashing < pl.maxHash:
			s := pl.queue[0]
			i := s.next
			if s.next++; s.next == len(s.ends) {
				pl.queue = append(pl.queue[:0], pl.queue[1:]...)
			}
			pl.hashing++
			pl.mu.Unlock()
			start := 0
			if i > 0 {
				start = s.ends[i-1]
			}
			sum := sha256.Sum256(s.buf[start:s.ends[i]])
			s.cids[i] = integrity.FromDigest(integrity.Raw, sum[:])
			pl.mu.Lock()
			pl.hashing--
			if len(pl.queue) > 0 {
				pl.cond.Signal() // a worker held back by maxHash may go on
			}
			if s.pending--; s.pending == 0 {
				pl.mu.Unlock()
				pl.slots[s.seq%int64(len(pl.slots))] <- s
				// Let deliver, which the send may have woken on this P,
				// run now rather than after the next chunk: it recycles
				// the slabs that the reader needs, and the other Ps are
				// busy reading and hashing.
				runtime.Gosched()
				pl.mu.Lock()
			}
		default:
			pl.waiting++
			pl.cond.Wait()
			pl.waiting--
		}
	}
}

// reader is the state of the reading, used by one worker at a time.
type reader struct {
	ctx  context.Context
	r    io.Reader
	cut  *cutter
	stop <-chan struct{} // closed when Split returns
	// segs > 1 lets FastCDC boundaries be found in up to segs segments of
	// a slab at once (cutPar), when workers are idle; see fill.
	segs int

	seq    int64  // sequence number of the next slab
	offset int64  // stream offset of the next slab's buf[0]
	index  int64  // index of the next chunk
	carry  []byte // the unfinished chunk at the end of the last slab
}

// parMinSeg is the length of the shortest segment that cutPar is given.
const parMinSeg = 64 << 10

// readPiece is how much the reader reads before it cuts: small enough that
// the bytes are still in the CPU's cache when the cutter scans them.
const readPiece = 1 << 20

// readAlign is the boundary modulo which fill places each slab's bytes as
// the stream's offsets are, whatever the length of the unfinished chunk it
// moves to the start of a slab. A kernel copies a file's bytes from its
// page cache fastest into a buffer that lies as far past such a boundary as
// the bytes lie in the file. Measured on this project's 2-core AMD EPYC
// machine, 1 GiB read in 1 MiB pieces: 0.13 CPU-ns a byte with the two
// equally placed, 0.16 from a file offset 7 or 40 bytes past a multiple of
// 64 into a buffer on one, 0.36 from a multiple of 64 into a buffer 7 or 8
// bytes past one. In Split over a 1 GiB file in the page cache, FastCDC
// around 1 MiB, the reads took 0.084-0.113 CPU-ns a byte with slabs placed
// at 0, 0.063-0.088 placed so.
const readAlign = 64

// maxEmptyReads is how many reads in a row may return nothing before the
// reader is deemed stuck (io.ErrNoProgress), as bufio does.
const maxEmptyReads = 100

// fill reads the next part of the stream into s after the carried
// unfinished chunk, and cuts it. It reports whether s is to be queued (not
// when Split is stopping) and whether it is the last slab (the stream
// ended or failed, or Split is stopping).
//
// spare is how many workers wait for work as the reading starts. With
// FastCDC and a spare worker, fill reads the whole slab and then cuts it in
// up to 1+spare segments (at most rd.segs) at once, with cutPar, which costs
// more CPU in all (what the markers take is scanned whole) but takes
// the cut off the one reading core; with none, it cuts as the bytes arrive.
func (rd *reader) fill(s *slab, spare int) (queue, last bool) {
	// Read in pieces and cut as the bytes arrive, while they are still in
	// the CPU's cache; or, to cut in segments at once, cut once all are
	// read. After a read error the bytes read are not the end of the
	// stream: cut only the chunks they complete.
	//
	// buf is placed in mem (whose start is on a readAlign boundary: the
	// allocator aligns large blocks to pages) so that each of its bytes
	// lies as far past such a boundary as its offset in the stream does:
	// reads of full pieces land as a file's page cache holds the bytes,
	// modulo readAlign.
	pad := int(rd.offset % readAlign)
	s.buf = s.mem[pad : pad+len(s.mem)-readAlign]
	n := copy(s.buf, rd.carry)
	start := 0
	s.ends = s.ends[:0]
	par := rd.segs > 1 && spare > 0
	var err error
	for {
		for !par {
			l := rd.cut.next(s.buf[start:n], err == io.EOF)
			if l == 0 {
				break
			}
			start += l
			s.ends = append(s.ends, start)
		}
		if err != nil || n == len(s.buf) {
			break
		}
		var m int
		m, err = rd.read(s.buf[n:min(n+readPiece, len(s.buf))])
		n += m
	}
	eof := err == io.EOF
	s.base, s.index, s.err, s.last = rd.offset, rd.index, nil, eof
	if err != nil && !eof {
		if err == errStopped || rd.ctx.Err() != nil {
			return false, true // deliver has returned or is returning ctx.Err()
		}
		s.err = &ReadError{Offset: rd.offset + int64(n), Err: err}
	}
	if par {
		// Starting a goroutine costs about as much as scanning a few
		// KiB: no segment is shorter than parMinSeg.
		segs := min(rd.segs, 1+spare, n/parMinSeg)
		s.ends = rd.cut.cutPar(s.buf[:n], eof, segs, s.ends)
		if len(s.ends) > 0 {
			start = s.ends[len(s.ends)-1]
		}
	}
	if cap(s.cids) < len(s.ends) {
		s.cids = make([]cid.Cid, len(s.ends), cap(s.ends))
	}
	s.cids = s.cids[:len(s.ends)]
	rd.index += int64(len(s.ends))
	rd.offset += int64(start)
	rd.carry = s.buf[start:n] // read by the next fill only
	s.seq = rd.seq
	rd.seq++
	return true, eof || s.err != nil
}

// read reads into buf until it is full, the stream ends (io.EOF, with the
// count read), or an error. It checks ctx between reads.
func (rd *reader) read(buf []byte) (int, error) {
	n, empty := 0, 0
	done := rd.ctx.Done()
	for n < len(buf) {
		select {
		case <-done:
			return n, rd.ctx.Err()
		case <-rd.stop:
			return n, errStopped
		default:
		}
		m, err := rd.r.Read(buf[n:])
		if m < 0 || m > len(buf)-n {
			return n, fmt.Errorf("chunker: reader returned %d bytes for a %d-byte buffer", m, len(buf)-n)
		}
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			if empty++; empty >= maxEmptyReads {
				return n, io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
	return n, nil
}

// errStopped ends the reader when Split returns early; nobody sees it.
var errStopped = errors.New("chunker: stopped")
