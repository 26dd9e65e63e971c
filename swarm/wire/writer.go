package wire

import (
	"bufio"
	"io"
)

// writeBufferSize is the Writer's buffer: large enough for a batch of WANTs
// and HAVEs, small next to a block, which mostly bypasses it.
const writeBufferSize = 64 << 10

// Writer frames messages onto an io.Writer through a buffer. Write encodes
// into the buffer; Flush sends what is buffered. Make one with NewWriter.
//
// A Writer is not safe for concurrent use: a session has one goroutine (or a
// mutex) that writes. After the underlying writer fails, every later Write
// and Flush returns that error.
type Writer struct {
	bw      *bufio.Writer
	scratch []byte // head of the message being written, reused
}

// NewWriter returns a Writer that writes frames to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, writeBufferSize), scratch: make([]byte, maxVarintLen, 512)}
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
	if _, err := w.bw.Write(head[start:]); err != nil {
		return err
	}
	if len(tail) > 0 {
		if _, err := w.bw.Write(tail); err != nil {
			return err
		}
	}
	return nil
}

// Flush writes everything buffered to the underlying writer. It blocks while
// the underlying writer does.
func (w *Writer) Flush() error { return w.bw.Flush() }

// Buffered returns the number of bytes written into the buffer and not yet
// flushed.
func (w *Writer) Buffered() int { return w.bw.Buffered() }
