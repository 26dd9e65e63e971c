package names

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The names protocol: one stream per pair of peers and direction, opened by
// whoever wants records; both ends may send any message. A frame is a
// uvarint length (1..maxMessage) and that many bytes: a type byte and its
// fields, each byte string preceded by its uvarint length.
//
//	FOLLOW  count, count × name   the names the sender wants pushed (replaces the last FOLLOW)
//	GET     name                  ask for the best record of name: answered by RECORD or NONE
//	RECORD  name, record          a record (a push, or an answer)
//	NONE    name                  no record for name
const (
	msgFollow byte = 1
	msgGet    byte = 2
	msgRecord byte = 3
	msgNone   byte = 4
)

const (
	// maxNameBytes bounds a name's multihash (ed25519: 38 bytes, sha2-256: 34).
	maxNameBytes = 128
	// MaxFollow is how many names one peer may follow on one session.
	MaxFollow = 64
	// maxMessage bounds a frame: a RECORD with the largest record, or a
	// FOLLOW with the most names.
	maxMessage = 1 + 2*binary.MaxVarintLen64 + maxNameBytes + MaxRecordSize
)

// ErrProtocol: a peer sent a message that breaks the protocol (too long,
// unknown type, truncated, trailing bytes).
var ErrProtocol = errors.New("names: protocol violation")

// message is one decoded frame. Names are checked (valid multihashes) but
// records are not: that costs a signature check, done after rate limits.
type message struct {
	typ    byte
	names  []Name // FOLLOW
	name   Name   // GET, RECORD, NONE
	record []byte // RECORD
}

// appendMessage appends m's frame to b.
func appendMessage(b []byte, m *message) []byte {
	var body []byte
	body = append(body, m.typ)
	switch m.typ {
	case msgFollow:
		body = binary.AppendUvarint(body, uint64(len(m.names)))
		for _, n := range m.names {
			body = appendBytes(body, n.bytes())
		}
	case msgGet, msgNone:
		body = appendBytes(body, m.name.bytes())
	case msgRecord:
		body = appendBytes(body, m.name.bytes())
		body = appendBytes(body, m.record)
	}
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readMessage reads one frame from r. It refuses a frame longer than
// maxMessage before allocating for it. io.EOF means a clean end between
// frames.
func readMessage(r *bufio.Reader) (*message, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > uint64(maxMessage) {
		return nil, fmt.Errorf("%w: frame of %d bytes (limit %d)", ErrProtocol, n, maxMessage)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return decodeMessage(buf)
}

// readUvarint reads a frame length: an unsigned varint in its shortest
// form (as multiformats' unsigned-varint says), so that each frame has one
// encoding. io.EOF means no byte came.
func readUvarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := range binary.MaxVarintLen64 {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return 0, fmt.Errorf("%w: frame length overflows 64 bits", ErrProtocol)
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, fmt.Errorf("%w: frame length not in its shortest form", ErrProtocol)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: frame length overflows 64 bits", ErrProtocol)
}

// decodeMessage decodes one frame's body.
func decodeMessage(b []byte) (*message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty message", ErrProtocol)
	}
	d := decoder{b: b[1:]}
	m := &message{typ: b[0]}
	switch m.typ {
	case msgFollow:
		count := d.uvarint()
		if d.err == nil && count > MaxFollow {
			return nil, fmt.Errorf("%w: FOLLOW of %d names (limit %d)", ErrProtocol, count, MaxFollow)
		}
		if d.err == nil {
			m.names = make([]Name, 0, count)
		}
		for i := uint64(0); i < count && d.err == nil; i++ {
			if n := d.name(); d.err == nil {
				m.names = append(m.names, n)
			}
		}
	case msgGet, msgNone:
		m.name = d.name()
	case msgRecord:
		m.name = d.name()
		m.record = d.bytes(MaxRecordSize, "record")
	default:
		return nil, fmt.Errorf("%w: unknown message type %d", ErrProtocol, m.typ)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after message type %d", ErrProtocol, len(d.b), m.typ)
	}
	return m, nil
}

// decoder reads fields from a frame; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrProtocol)
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.err = fmt.Errorf("%w: varint not in its shortest form", ErrProtocol)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(limit int, what string) []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(limit) {
		d.err = fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrProtocol, what, n, limit)
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: %s truncated", ErrProtocol, what)
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) name() Name {
	b := d.bytes(maxNameBytes, "name")
	if d.err != nil {
		return Name{}
	}
	n, err := nameFromBytes(b)
	if err != nil {
		d.err = fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return n
}
