package wire

import (
	"bufio"
	"io"
	"sync"
)

// writeBufferSize is the Writer's buffer: large enough for a batch of WANTs
// and HAVEs, small next to a block, which mostly bypasses it.
const writeBufferSize = 64 << 10

// writeBuffers holds the buffers of idle Writers: a Writer takes one for its
// first Write after a Flush and gives it back whenever it is empty again, so a
// node with hundreds of quiet sessions holds buffers only for those that
// are writing.
var writeBuffers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufferSize) }}

// Writer frames messages onto an io.Writer through a buffer. Write encodes
// into the buffer; Flush sends what is buffered. Make one with NewWriter.
//
// A Writer is not safe for concurrent use: a session has one goroutine (or a
// mutex) that writes. After the underlying writer fails, every later Write
// and Flush returns that error.
type Writer struct {
	w       io.Writer
	bw      *bufio.Writer // from writeBuffers; nil while nothing is buffered
	err     error         // the underlying writer's first error, sticky
	scratch []byte        // head of the message being written, reused
}

// NewWriter returns a Writer that writes frames to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, scratch: make([]byte, maxVarintLen, 512)}
}

// buffer returns the Writer's buffer, taking one from the pool if it has none.
func (w *Writer) buffer() *bufio.Writer {
	if w.bw == nil {
		w.bw = writeBuffers.Get().(*bufio.Writer)
		w.bw.Reset(w.w)
	}
	return w.bw
}

// release gives an empty buffer back to the pool, or keeps the error of a
// failed one (bufio's errors are sticky, the pool's buffers must not be).
func (w *Writer) release(err error) error {
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return w.err
	}
	if w.bw != nil && w.bw.Buffered() == 0 {
		w.bw.Reset(nil)
		writeBuffers.Put(w.bw)
		w.bw = nil
	}
	return nil
}

// Write encodes m into the buffer, which is written to the underlying writer
// when it fills; call Flush to send everything now, so that a batch of
// messages goes out in one write. It blocks only while the underlying writer
// does.
//
// The trailing bytes of a BLOCK, NODE or HAVE_BITFIELD are not copied into a
// new buffer: they go through the Writer's buffer, or straight to the
// underlying writer when larger than it. Write does not keep m or any of its
// slices after it returns.
//
// A message that breaks a limit of the protocol (see the Max constants and
// the doc of each type) is refused with an error wrapping ErrTooLarge or
// ErrMalformed, and nothing of it is written; the Writer stays usable.
func (w *Writer) Write(m Msg) error {
	// The head goes after room for the longest length prefix; the prefix is
	// then put right before it, so that head and prefix are one write.
	head, tail, err := encode(w.scratch[:maxVarintLen], m)
	w.scratch = head[:0]
	if err != nil {
		return err
	}
	n := len(head) - maxVarintLen + len(tail)
	// A limit per type keeps every valid message under MaxMessageSize: a
	// failure here is a bug in encode, not the caller's message.
	if n > MaxMessageSize {
		panic("wire: encoded message exceeds MaxMessageSize")
	}
	start := maxVarintLen - uvarintLen(uint64(n))
	appendUvarint(head[start:start], uint64(n))
	if w.err != nil {
		return w.err
	}
	bw := w.buffer()
	if _, err := bw.Write(head[start:]); err != nil {
		return w.release(err)
	}
	if len(tail) > 0 {
		if _, err := bw.Write(tail); err != nil {
			return w.release(err)
		}
	}
	// A large tail went straight through and left the buffer empty: give
	// it back now rather than at the next Flush, which may be a while.
	return w.release(nil)
}

// Flush writes everything buffered to the underlying writer. It blocks while
// the underlying writer does.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.bw == nil {
		return nil
	}
	return w.release(w.bw.Flush())
}

// Buffered returns the number of bytes written into the buffer and not yet
// flushed.
func (w *Writer) Buffered() int {
	if w.bw == nil {
		return 0
	}
	return w.bw.Buffered()
}
