package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/peer-project/peer/swarm"
)

// streamsDir is the folder of the home directory where Open keeps what it
// fetches: one file per root, named by its CID, served like any download.
const streamsDir = "streams"

// toTheEnd ends a priority range at the end of the file, whatever its
// size: the scheduler clamps a range to the file.
const toTheEnd = math.MaxInt64

// Open returns a reader of the file that target names (a file root, or a
// path below a folder root). Reads are served as soon as the chunks under
// the read position are verified, so a file can be read, played or copied
// while it downloads: the fetch asks for the chunks at the read position
// before any other, and a Seek moves that priority.
//
// A root this node shares or has fetched is read from where it lies. Any
// other is fetched into the home directory's streams folder, with every
// other source a fetch has (ticket hint, opts.Peers, the DHT, connected
// peers); the fetch goes on while the reader is open, and when complete
// the file is served like any download. Closing the last reader of a root
// that is not complete stops its fetch; the next Open resumes it (once the
// stopped fetch has ended: an Open right after the Close waits for it).
//
// Open blocks until it knows the file (its DAG), ctx is done, or no
// peer has it. ctx bounds the whole life of the reader: once it is done,
// reads that would wait fail with its error. Safe for concurrent use; each
// Reader is for one goroutine at a time.
func (n *Node) Open(ctx context.Context, target Target, opts FetchOptions) (*Reader, error) {
	target, err := n.resolveName(ctx, target, opts.Peers)
	if err != nil {
		return nil, err
	}
	r, err := n.open(ctx, target, opts)
	return r, translate(err)
}

func (n *Node) open(ctx context.Context, target Target, opts FetchOptions) (*Reader, error) {
	ectx, done, err := n.enter(ctx)
	if err != nil {
		return nil, err
	}
	src := n.sourcesOf(target, opts.Peers)
	root := target.Root
	// blame bans those who sent the nodes a path led through, when the
	// DAG below turns out invalid.
	blame := func(err error) error { return err }
	if here, _ := n.store.HasBlock(root); target.Path != "" || here || n.swarm.Source(root) != nil {
		// The DAG is here, or the path must be looked up in it.
		r, g, err := n.resolve(ectx, target, src)
		if err != nil {
			done()
			return nil, err
		}
		blame = g.blame
		root = r.link.CID
		isFile, size := r.file()
		if !isFile {
			done()
			return nil, folderError(root)
		}
		// Shared here, or fetched already: read it where it lies.
		if s := n.swarm.Source(root); s != nil && s.Complete() {
			done()
			return newReader(ctx, &stream{layout: s.Layout(), src: s, done: closedChan}), nil
		}
		if size == 0 {
			done()
			return newReader(ctx, &stream{layout: &swarm.Layout{Root: root, Files: []swarm.FileSpan{{CID: root}}}, done: closedChan}), nil
		}
	}
	// Else the fetch loads the DAG over the sessions it then fetches
	// the chunks with (a session less before the first byte), and the
	// reader finds out from the layout whether it is a file.

	n.streamMu.Lock()
	if st := n.streams[root]; st != nil {
		if !st.stopping {
			st.refs++
			n.streamMu.Unlock()
			done()
			return st.reader(ctx)
		}
		// Its last reader closed a moment ago (a player that seeks drops
		// one request and sends the next at once): the next fetch into
		// the same place starts once this one has ended, and from the
		// start: the ended fetch may have held every chunk and put the
		// file in place, to be read there.
		n.streamMu.Unlock()
		select {
		case <-st.done:
			done()
			return n.open(ctx, target, opts)
		case <-ectx.Done(): // ctx, or the node closing
			done()
			if n.ctx.Err() != nil {
				return nil, ErrClosed
			}
			return nil, ctx.Err()
		}
	}
	// The fetch belongs to the node and to every reader of the root, not
	// to the first caller: it stops when the last reader closes.
	// A fetch that holds every chunk is left to finish, by the last
	// reader and by Close (which waits for it: finishStreams): it moves
	// the file into place and indexes it, which the last Read may well
	// precede (the fetch hears of a chunk after its readers). It stays in
	// n.streams until then, so that an Open meanwhile reads it rather
	// than fetching it again into the same place.
	// Close decides its fate (finishStreams, under streamMu): a stream
	// registered after it has looked is refused here, under the same lock.
	if n.ctx.Err() != nil {
		n.streamMu.Unlock()
		done()
		return nil, ErrClosed
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	st := &stream{
		refs:    1,
		changed: make(chan struct{}),
		focus:   make(chan swarm.Range, 1),
		ready:   make(chan struct{}),
		done:    make(chan struct{}),
		cancel:  cancel,
	}
	st.unref = func() {
		n.streamMu.Lock()
		st.refs--
		last := st.refs == 0
		finishing := last && !st.ended && st.verifiedAll()
		switch {
		case !last || finishing:
		case st.ended:
			if n.streams[root] == st {
				delete(n.streams, root)
			}
		default:
			// Kept in n.streams until its fetch has ended (the
			// goroutine below removes it): an Open meanwhile waits.
			st.stopping = true
		}
		n.streamMu.Unlock()
		if last && !finishing {
			cancel()
		}
	}
	n.streams[root] = st
	n.streamMu.Unlock()
	// Readers start at the beginning, most of them: the fetch's first
	// requests are for it, in order (see Reader.steer), not for chunks a
	// Read would then cancel.
	st.focus <- swarm.Range{From: 0, To: toTheEnd}

	dest := filepath.Join(n.cfg.Home, streamsDir, root.String())
	go func() {
		defer done()
		defer close(st.done)
		defer cancel()
		defer func() {
			n.streamMu.Lock()
			st.ended = true
			if st.refs == 0 && n.streams[root] == st {
				delete(n.streams, root)
			}
			n.streamMu.Unlock()
		}()
		if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
			st.fail(fmt.Errorf("open %s: %w", root, err))
			return
		}
		// A file left in the streams folder but no longer served (it was
		// unshared, or moved) is fetched again: force replaces it.
		fo := opts
		fo.Force = true
		_, err := n.fetch(fctx, root, dest, fo, src, fetchHooks{
			// A folder is refused before its tree is laid out in the
			// streams folder, where nothing would ever read it.
			accept: func(l *swarm.Layout) error {
				if l.Dir {
					return folderError(root)
				}
				return nil
			},
			started:  st.start,
			verified: func(int64) { st.notify() },
			focus:    st.focus,
		})
		if err != nil && n.ctx.Err() != nil {
			err = ErrClosed
		}
		st.fail(blame(err))
	}()
	return st.reader(ctx)
}

// closedChan is a closed channel: the done of a stream with no fetch.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// stream is the shared state of the readers of one root and of the fetch
// that feeds them. A stream without a fetch (a complete source) has nil
// focus and unref.
type stream struct {
	refs   int              // readers open; guarded by Node.streamMu
	ended  bool             // the fetch has returned; guarded by Node.streamMu
	unref  func()           // drops a reader; the last one stops the fetch
	cancel func()           // stops the fetch; nil without one
	focus  chan swarm.Range // to the fetch; the latest range wins
	ready  chan struct{}    // closed once layout and src are set, or the fetch ended
	done   chan struct{}    // closed when the fetch has ended
	once   sync.Once        // closes ready

	// stopping: the last reader closed before the fetch held every chunk;
	// the fetch is cancelled and ending. Guarded by Node.streamMu.
	stopping bool

	// layout, src and read are set before ready is closed and never
	// change.
	layout *swarm.Layout
	src    swarm.Source
	read   func(ctx context.Context, i int64, buf []byte) ([]byte, error) // src.ReadChunk, or its ReadBack

	mu      sync.Mutex
	err     error         // why the fetch ended; nil while it runs or when complete
	changed chan struct{} // closed and replaced when a chunk is verified
}

// readBacker is the download of a fetch: its ReadBack reads a chunk it
// verified before writing it, without hashing it again.
type readBacker interface {
	ReadBack(ctx context.Context, i int64, buf []byte) ([]byte, error)
}

// start is called by the stream's own fetch, into the streams folder: the
// readers read its chunks back without hashing them a second time (the
// fetch verified each in memory before writing it there, and nothing but
// this node writes in its home). A source found where it lies (a share, a
// finished fetch into a folder of the user's) is read through ReadChunk,
// which verifies.
func (st *stream) start(l *swarm.Layout, src swarm.Source) {
	st.layout, st.src, st.read = l, src, src.ReadChunk
	if rb, ok := src.(readBacker); ok {
		st.read = rb.ReadBack
	}
	st.once.Do(func() { close(st.ready) })
}

// finishStreams decides, once and alone, the fate of every fetch of Open:
// it cancels those that do not hold every chunk and waits until the others
// have moved their file into place and indexed it. Close calls it after it
// cancelled n.ctx (after which open registers no stream) and before it
// closes the swarm. Each stream is checked once, under streamMu, so a chunk
// verified meanwhile cannot leave a fetch neither cancelled nor waited for.
func (n *Node) finishStreams() {
	n.streamMu.Lock()
	var wait []chan struct{}
	for _, st := range n.streams {
		switch {
		case st.cancel == nil:
		case st.verifiedAll():
			wait = append(wait, st.done)
		default:
			st.cancel()
		}
	}
	n.streamMu.Unlock()
	for _, done := range wait {
		<-done
	}
}

// verifiedAll reports whether the stream's fetch has started and holds
// every chunk of its file.
func (st *stream) verifiedAll() bool {
	select {
	case <-st.ready: // layout and src are set, or never will be
		return st.src != nil && st.src.Complete()
	default:
		return false
	}
}

func (st *stream) notify() {
	st.mu.Lock()
	close(st.changed)
	st.changed = make(chan struct{})
	st.mu.Unlock()
}

func (st *stream) fail(err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = translate(err)
	}
	st.mu.Unlock()
	st.once.Do(func() { close(st.ready) })
}

// reader waits until the fetch knows its layout and returns a reader.
func (st *stream) reader(ctx context.Context) (*Reader, error) {
	select {
	case <-st.ready:
	case <-ctx.Done():
		st.unref()
		return nil, ctx.Err()
	}
	if st.layout == nil {
		st.mu.Lock()
		err := st.err
		st.mu.Unlock()
		if err == nil {
			err = errors.New("node: the fetch ended before it started")
		}
		st.unref()
		return nil, err
	}
	if st.layout.Dir {
		st.unref()
		return nil, folderError(st.layout.Root)
	}
	return newReader(ctx, st), nil
}

func folderError(root cid.Cid) error {
	return fmt.Errorf("open %s: it is a folder; open a file in it (ROOT/path/to/file)", root)
}

// Reader reads one file of a root while it downloads; see Node.Open. It is
// an io.ReadSeekCloser, an io.ReaderAt and an io.WriterTo. A Reader is for
// one goroutine at a time; Close may be called from any goroutine and
// unblocks a waiting Read.
type Reader struct {
	st     *stream
	ctx    context.Context
	size   int64
	closed chan struct{}
	once   sync.Once
	stop   func() bool // stops closing the reader when ctx is done

	mu    sync.Mutex // guards the fields below
	off   int64
	buf   []byte // the chunk read last
	bufAt int64  // its index, or -1
	focus int64  // the chunk the last focus started at, or -1
}

func newReader(ctx context.Context, st *stream) *Reader {
	r := &Reader{st: st, ctx: ctx, size: st.layout.Size, closed: make(chan struct{}), bufAt: -1, focus: -1}
	r.stop = context.AfterFunc(ctx, func() { r.Close() })
	return r
}

// Size returns the file's length in bytes.
func (r *Reader) Size() int64 { return r.size }

// Here reports whether the byte at off is verified here, so that a Read
// there returns without waiting for the fetch (false past the end of the
// file). It neither blocks nor moves the fetch's priority, and is safe for
// concurrent use.
func (r *Reader) Here(off int64) bool {
	if off < 0 || off >= r.size || r.st.src == nil {
		return false
	}
	i, _ := r.st.layout.Span(0, off, 1)
	return r.st.src.Has(i)
}

// Read reads from the current position. It blocks until the chunk there is
// verified, the fetch fails, ctx is done or the reader is closed.
func (r *Reader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, err := r.readAtLocked(p, r.off)
	r.off += int64(n)
	return n, err
}

// WriteTo writes the file from the current position to its end into w and
// moves the position there: what io.Copy from a Reader calls. Each chunk is
// written whole from the buffer it was read into, as soon as it is
// verified, with no copy in between. It waits for chunks like Read.
func (r *Reader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		r.mu.Lock()
		data, err := r.chunkAtLocked(r.off)
		r.mu.Unlock()
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		// data is the reader's own buffer: only this goroutine reads
		// into it, so it holds while w writes it, without the lock.
		n, err := w.Write(data)
		total += int64(n)
		r.mu.Lock()
		r.off += int64(n)
		r.mu.Unlock()
		if err == nil && n < len(data) {
			err = io.ErrShortWrite
		}
		if err != nil {
			return total, err
		}
	}
}

// ReadAt reads len(p) bytes at off, waiting for them like Read; it moves
// the fetch's priority but not the position Read uses. A negative off is an
// error.
func (r *Reader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("node: read at %d: negative offset (offsets run from 0 to the file's size, %d)", off, r.size)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	for total < len(p) {
		n, err := r.readAtLocked(p[total:], off+int64(total))
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// readAtLocked reads what one chunk holds at off.
func (r *Reader) readAtLocked(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		if err := r.closedErr(); err != nil {
			return 0, err
		}
		if off >= r.size {
			return 0, io.EOF
		}
		return 0, nil
	}
	data, err := r.chunkAtLocked(off)
	if err != nil {
		return 0, err
	}
	return copy(p, data), nil
}

// chunkAtLocked returns the bytes from off to the end of the chunk that
// holds off, in the reader's buffer (valid until the next read), once that
// chunk is verified; io.EOF at the end of the file.
func (r *Reader) chunkAtLocked(off int64) ([]byte, error) {
	if err := r.closedErr(); err != nil {
		return nil, err
	}
	if off >= r.size {
		return nil, io.EOF
	}
	l := r.st.layout
	i, _ := l.Span(0, off, 1)
	if i != r.bufAt {
		if err := r.wait(i); err != nil {
			return nil, err
		}
		read := r.st.read
		if read == nil {
			read = r.st.src.ReadChunk
		}
		data, err := read(r.ctx, i, r.buf)
		if err != nil {
			r.bufAt = -1
			return nil, fmt.Errorf("node: reading chunk %d: %w", i, err)
		}
		r.buf, r.bufAt = data, i
	}
	return r.buf[off-l.Chunks[i].Offset:], nil
}

// closedErr returns why reads fail once the reader is closed, else nil.
func (r *Reader) closedErr() error {
	select {
	case <-r.closed:
		if err := r.ctx.Err(); err != nil {
			return err
		}
		return os.ErrClosed
	default:
		return nil
	}
}

// wait blocks until chunk i is verified, asking the fetch for it and what
// follows first when it is missing. A chunk that is here moves nothing: a
// reader that reads what the fetch has already verified leaves the
// priority where the fetch still works.
func (r *Reader) wait(i int64) error {
	st := r.st
	if st.src.Has(i) {
		return nil
	}
	r.steer(i)
	for {
		st.mu.Lock()
		changed, err := st.changed, st.err
		st.mu.Unlock()
		if st.src.Has(i) {
			return nil
		}
		if err != nil {
			return err
		}
		select {
		case <-changed:
		case <-st.done:
			// The fetch ended: complete (every chunk is had) or failed.
			st.mu.Lock()
			err := st.err
			st.mu.Unlock()
			if st.src.Has(i) {
				return nil
			}
			if err == nil {
				err = errors.New("node: the fetch ended without the chunk")
			}
			return err
		case <-r.closed:
			if err := r.ctx.Err(); err != nil {
				return err
			}
			return os.ErrClosed
		}
	}
}

// steer asks the fetch for every chunk from i to the end of the file
// before any other, in index order: a reader reads on from where it is, and
// a chunk fetched out of that order is written to the streams folder and
// read back long after, from the disk (the download drops what it wrote
// from the page cache as it goes, see swarm's writeBehind), one synchronous
// read at a time. With the read position a few chunks ahead of the rest
// (the old policy), the stdout path of a 256 MiB transfer on loopback ran
// at 0.26-0.46x raw stream beside 0.41-0.62x for the same fetch to a file;
// in order, the two are alike. Rarest first still orders every fetch that
// nobody reads while it runs (Fetch, `peer get -o FILE`).
func (r *Reader) steer(i int64) {
	st := r.st
	if st.focus == nil || i == r.focus {
		return
	}
	r.focus = i
	rg := swarm.Range{From: i, To: toTheEnd}
	st.mu.Lock()
	defer st.mu.Unlock()
	select {
	case st.focus <- rg:
	default:
		select { // replace the range the fetch has not taken yet
		case <-st.focus:
		default:
		}
		st.focus <- rg
	}
}

// Seek sets the position of the next Read (io.SeekStart, SeekCurrent or
// SeekEnd) and moves the fetch's priority there at once.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return r.off, fmt.Errorf("node: seek: bad whence %d", whence)
	}
	if offset < 0 {
		return r.off, fmt.Errorf("node: seek to %d: before the start", offset)
	}
	r.off = offset
	if offset < r.size && r.st.src != nil {
		i, _ := r.st.layout.Span(0, offset, 1)
		if !r.st.src.Has(i) {
			r.steer(i)
		}
	}
	return offset, nil
}

// Close ends the reader; closing the last reader of a root that is still
// downloading stops its fetch (the partial file stays, for the next Open),
// unless the fetch holds every chunk already: it then finishes, and the
// file is indexed and served as a finished download's.
// It is idempotent, and called by itself when the ctx given to Open is
// done.
func (r *Reader) Close() error {
	r.once.Do(func() {
		r.stop()
		close(r.closed)
		if r.st.unref != nil {
			r.st.unref()
		}
	})
	return nil
}

// Root returns the CID of the file being read.
func (r *Reader) Root() cid.Cid { return r.st.layout.Root }
