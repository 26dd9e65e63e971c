package wire

import (
	"bufio"
	"fmt"
	"io"
	"sync"
)

// readBufferSize is the Reader's read-ahead buffer. Payloads larger than it
// are read straight from the underlying reader into their destination.
const readBufferSize = 32 << 10

// readBuffers holds the read-ahead buffers of idle Readers. A Reader waits
// for the first byte of a frame with no buffer, takes one from the pool for
// the rest of the frame, and gives it back when it has nothing read ahead:
// a node with hundreds of quiet sessions holds buffers only for those that
// are receiving.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}

// growStep is the most the payload buffer grows ahead of the bytes that have
// actually arrived, so that a peer that claims a large message and sends
// little makes the Reader allocate little.
const growStep = 64 << 10

// BlockAllocFunc supplies the Block that a Reader decodes a BLOCK message
// into. Read calls it once the frame's header has been read and checked,
// before the data arrives, with the chunk index and the data size (at most
// MaxBlockSize). It returns a Block whose Data has capacity for size bytes,
// typically taken from a pool; Read sets Index and Data = Data[:size], fills
// Data and returns that Block, which belongs to the caller: nothing of it
// aliases the Reader. If it returns nil, Read decodes the block as it would
// without a BlockAllocFunc; if cap(Data) < size, Read replaces Data with a new
// slice of size bytes.
//
// It is called on the goroutine that called Read and must not call the
// Reader. If the stream fails before Data is filled, Read returns the error
// and drops the Block.
type BlockAllocFunc func(index uint64, size int) *Block

// Reader reads frames from an io.Reader and decodes them into messages. Make
// one with NewReader.
//
// A Reader is not safe for concurrent use: a session has one goroutine that
// reads. Its errors are sticky: after Read fails, every later call returns
// the same error, so a stream that broke the protocol can't be read on.
type Reader struct {
	src   io.Reader
	br    *bufio.Reader // from readBuffers; nil while nothing is read ahead
	first int           // the frame's first byte, read without a buffer; -1 when none
	one   [1]byte
	max   int
	buf   []byte // payload buffer, reused; byte slices of messages alias it
	alloc BlockAllocFunc
	err   error
}

// NewReader returns a Reader of the frames in r that refuses any frame longer
// than maxSize bytes (type byte and payload). A maxSize ≤ 0 or above
// MaxMessageSize means MaxMessageSize; a smaller one suits a session that
// expects no BLOCK, say one that fetches DAG nodes only.
func NewReader(r io.Reader, maxSize int) *Reader {
	if maxSize <= 0 || maxSize > MaxMessageSize {
		maxSize = MaxMessageSize
	}
	return &Reader{src: r, first: -1, max: maxSize}
}

// begin waits for the first byte of a frame with no buffer held, then takes
// a buffer for the rest of it.
func (r *Reader) begin() error {
	if r.br == nil {
		if _, err := io.ReadFull(r.src, r.one[:]); err != nil {
			return err
		}
		r.first = int(r.one[0])
		r.br = readBuffers.Get().(*bufio.Reader)
		r.br.Reset(r.src)
	}
	return nil
}

// end gives the buffer back once nothing is read ahead in it.
func (r *Reader) end() {
	if r.br != nil && r.br.Buffered() == 0 {
		r.br.Reset(nil)
		readBuffers.Put(r.br)
		r.br = nil
	}
}

// readByte returns the next byte of the frame.
func (r *Reader) readByte() (byte, error) {
	if r.first >= 0 {
		c := byte(r.first)
		r.first = -1
		return c, nil
	}
	return r.br.ReadByte()
}

// SetBlockAlloc makes Read decode BLOCK messages into Blocks that fn
// supplies; nil restores the default. It does not block; call it before Read,
// not concurrently with it.
func (r *Reader) SetBlockAlloc(fn BlockAllocFunc) { r.alloc = fn }

// Read reads and decodes the next message. It blocks until a whole message
// has arrived or the underlying reader fails.
//
// The message and its fields belong to the caller, except byte slices:
// Block.Data, Node.Data and HaveBitfield.Bits alias the Reader's buffer and
// are valid only until the next call to Read. Copy what must live longer, or
// give the Reader a BlockAllocFunc so that block data lands in buffers the
// caller owns. Read never allocates for the Block itself when a
// BlockAllocFunc supplies it.
//
// Read returns io.EOF when the stream ends between two messages and
// io.ErrUnexpectedEOF when it ends inside one. An error that wraps
// ErrProtocol (ErrTooLarge, ErrMalformed, ErrUnknownType) blames the bytes
// received: the caller should send an ERROR with CodeProtocol, reset the
// stream and strike the peer. A length that breaks a limit is refused before
// the payload is read or any memory is allocated for it. Read does not check
// that HELLO comes first, nor indices against the chunk count, nor data
// against CIDs: those are the session's.
func (r *Reader) Read() (Msg, error) {
	if r.err != nil {
		return nil, r.err
	}
	if err := r.begin(); err != nil {
		r.err = err
		return nil, err
	}
	m, err := r.read()
	r.end()
	if err != nil {
		r.err = err
		return nil, err
	}
	return m, nil
}

func (r *Reader) read() (Msg, error) {
	n, err := r.readLength()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, malformed("empty frame")
	}
	if n > uint64(r.max) {
		return nil, tooLarge("frame of %d bytes exceeds %d", n, r.max)
	}
	b, err := r.readByte()
	if err != nil {
		return nil, noEOF(err)
	}
	t := Type(b)
	limit := maxPayload(t)
	if limit < 0 {
		return nil, fmt.Errorf("%w: type byte %#02x", ErrUnknownType, b)
	}
	size := int(n) - 1
	if size > limit {
		return nil, tooLarge("%v of %d bytes exceeds %d", t, size, limit)
	}
	if t == TypeBlock && r.alloc != nil {
		return r.readBlock(size)
	}
	p, err := r.readPayload(size)
	if err != nil {
		return nil, err
	}
	return decode(t, p)
}

// readLength reads the uvarint length prefix of a frame: io.EOF if the stream
// ends before it, io.ErrUnexpectedEOF if inside it.
func (r *Reader) readLength() (uint64, error) {
	var x uint64
	var s uint
	for i := 0; ; i++ {
		c, err := r.readByte()
		if err != nil {
			if i > 0 {
				return 0, noEOF(err)
			}
			return 0, err
		}
		if i == maxVarintLen-1 && c > 1 {
			return 0, malformed("frame length: %v", errVarintOverflow)
		}
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, malformed("frame length: %v", errVarintNonMinimal)
			}
			return x | uint64(c)<<s, nil
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
}

// readPayload reads the next n bytes into the Reader's buffer. While the
// buffer is smaller than n it grows by at most growStep beyond the bytes
// received, so memory follows what the peer sends, not what it claims.
func (r *Reader) readPayload(n int) ([]byte, error) {
	if n <= cap(r.buf) {
		p := r.buf[:n]
		if _, err := io.ReadFull(r.br, p); err != nil {
			return nil, noEOF(err)
		}
		return p, nil
	}
	p := r.buf[:0]
	for len(p) < n {
		if len(p) == cap(p) {
			grown := make([]byte, len(p), min(n, max(2*cap(p), growStep)))
			copy(grown, p)
			p = grown
			r.buf = grown
		}
		end := min(n, cap(p))
		k, err := io.ReadFull(r.br, p[len(p):end])
		p = p[:len(p)+k]
		if err != nil {
			return nil, noEOF(err)
		}
	}
	return p, nil
}

// readBlock reads the payload of a BLOCK of size bytes into a Block from
// r.alloc. The index is read a byte at a time so that the data can go
// straight from the stream into the caller's buffer.
func (r *Reader) readBlock(size int) (Msg, error) {
	var x uint64
	var s uint
	k := 0
	for {
		if k == size {
			return nil, malformed("BLOCK index: %v", errVarintShort)
		}
		c, err := r.br.ReadByte()
		if err != nil {
			return nil, noEOF(err)
		}
		if k == maxVarintLen-1 && c > 1 {
			return nil, malformed("BLOCK index: %v", errVarintOverflow)
		}
		k++
		if c < 0x80 {
			if c == 0 && k > 1 {
				return nil, malformed("BLOCK index: %v", errVarintNonMinimal)
			}
			x |= uint64(c) << s
			break
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	size -= k
	if size > MaxBlockSize {
		return nil, tooLarge("BLOCK of %d bytes exceeds %d", size, MaxBlockSize)
	}
	b := r.alloc(x, size)
	if b == nil {
		p, err := r.readPayload(size)
		if err != nil {
			return nil, err
		}
		return &Block{Index: x, Data: p}, nil
	}
	if cap(b.Data) < size {
		b.Data = make([]byte, size)
	}
	b.Index, b.Data = x, b.Data[:size]
	if _, err := io.ReadFull(r.br, b.Data); err != nil {
		return nil, noEOF(err)
	}
	return b, nil
}

// noEOF turns io.EOF, which means a clean end between frames, into
// io.ErrUnexpectedEOF for a stream that ended inside one.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
