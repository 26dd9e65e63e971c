package wire

import (
	"errors"
	"fmt"

	"github.com/peer-project/peer/chunker"
)

// ProtocolID is the libp2p protocol identifier of the exchange protocol. It is
// a plain string so that this package need not import libp2p; convert it with
// protocol.ID(wire.ProtocolID).
//
// Version 2 names UnixFS DAGs: a root is a dag-pb node or a raw leaf,
// chunks are the file's raw leaves in DAG order, NODE carries dag-pb nodes
// (and the raw root of a file of one chunk). Version 1 named DAG-CBOR
// manifests; the two do not speak to each other. 2.1 (this one) is 2.0
// and the message IN_ORDER. A node speaks both 2.1 and 2.0 (PrevProtocolID):
// the opener of a stream offers 2.1 first, and a peer of the version
// before, which knows only 2.0, is asked on 2.0, where no IN_ORDER is sent.
const ProtocolID = "/peer/xfer/2.1.0"

// PrevProtocolID is the protocol of the version before, 2.0: ProtocolID
// without IN_ORDER. A node serves it and asks on it peers that do not
// speak ProtocolID.
const PrevProtocolID = "/peer/xfer/2.0.0"

// Version is the major protocol version this package speaks, sent in
// Hello.Version: 2 on both 2.0 and 2.1 (the minor version is the protocol
// ID's, negotiated before HELLO).
const Version = 2

// Limits of the protocol. A message that breaks one is refused by the Reader
// before any memory is allocated for it, and by the Writer before any byte of
// it is written.
const (
	// MaxMessageSize bounds the length prefix of a frame: the type byte and
	// the payload. It leaves room for a BLOCK of MaxBlockSize and its header.
	MaxMessageSize = 4<<20 + 64<<10
	// MaxBlockSize bounds Block.Data: the largest chunk a root can name.
	MaxBlockSize = chunker.MaxSize
	// MaxNodeSize bounds Node.Data: the largest block of a DAG, the raw
	// root of a file of one chunk (dag-pb nodes are far smaller; a
	// receiver decodes none above unixfs.MaxNodeSize).
	MaxNodeSize = MaxBlockSize
	// MaxWant bounds the number of indices in one WANT, CANCEL or DONT_HAVE.
	MaxWant = 256
	// MaxErrorMsg bounds the length in bytes of Error.Msg.
	MaxErrorMsg = 256
	// MaxCIDSize bounds the length field of a CID on the wire. Every CID
	// that passes integrity.Check is 36 bytes long.
	MaxCIDSize = 64
	// MaxBitfieldChunks is the largest chunk count a HAVE_BITFIELD can cover
	// within MaxMessageSize. A peer with more chunks announces them with
	// HAVE_ALL or HAVE.
	MaxBitfieldChunks = (MaxMessageSize - 1) * 8
)

// maxVarintLen is the longest uvarint: ten bytes carry 64 bits.
const maxVarintLen = 10

// Type is the first byte of a frame: it names the message that follows.
type Type uint8

// Message types. The values are the bytes on the wire; 0 and every value not
// listed are unknown and refused.
const (
	TypeHello         Type = 0x01
	TypeHaveAll       Type = 0x02
	TypeHaveNone      Type = 0x03
	TypeHaveBitfield  Type = 0x04
	TypeHave          Type = 0x05
	TypeWant          Type = 0x06
	TypeCancel        Type = 0x07
	TypeDontHave      Type = 0x08
	TypeBlock         Type = 0x09
	TypeWantNode      Type = 0x0a
	TypeNode          Type = 0x0b
	TypeNodeMissing   Type = 0x0c
	TypeError         Type = 0x0d
	TypeChoke         Type = 0x0e
	TypeUnchoke       Type = 0x0f
	TypeNotInterested Type = 0x10
	TypeInOrder       Type = 0x11 // 2.1 on (ProtocolID), unknown on 2.0
)

var typeNames = [...]string{
	TypeHello:         "HELLO",
	TypeHaveAll:       "HAVE_ALL",
	TypeHaveNone:      "HAVE_NONE",
	TypeHaveBitfield:  "HAVE_BITFIELD",
	TypeHave:          "HAVE",
	TypeWant:          "WANT",
	TypeCancel:        "CANCEL",
	TypeDontHave:      "DONT_HAVE",
	TypeBlock:         "BLOCK",
	TypeWantNode:      "WANT_NODE",
	TypeNode:          "NODE",
	TypeNodeMissing:   "NODE_MISSING",
	TypeError:         "ERROR",
	TypeChoke:         "CHOKE",
	TypeUnchoke:       "UNCHOKE",
	TypeNotInterested: "NOT_INTERESTED",
	TypeInOrder:       "IN_ORDER",
}

// String returns the name of t as the protocol spec writes it, e.g. "WANT".
func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("TYPE(%#02x)", uint8(t))
}

// Known reports whether t is a message type of this protocol version.
func (t Type) Known() bool { return maxPayload(t) >= 0 }

// maxPayload returns the largest payload (the frame without its type byte) a
// message of type t can have, or -1 when t is unknown.
func maxPayload(t Type) int {
	const cidField = maxVarintLen + MaxCIDSize // a generous bound
	const indexList = 2 + MaxWant*maxVarintLen // count (256 takes 2 bytes) and indices
	switch t {
	case TypeHello:
		return maxVarintLen + cidField + maxVarintLen
	case TypeHaveAll, TypeHaveNone, TypeChoke, TypeUnchoke, TypeNotInterested, TypeInOrder:
		return 0
	case TypeHaveBitfield:
		return MaxMessageSize - 1
	case TypeHave:
		return maxVarintLen
	case TypeWant, TypeCancel, TypeDontHave:
		return indexList
	case TypeBlock:
		return maxVarintLen + MaxBlockSize
	case TypeWantNode, TypeNodeMissing:
		return cidField
	case TypeNode:
		return cidField + MaxNodeSize
	case TypeError:
		return 3 + MaxErrorMsg // a uint16 takes at most 3 uvarint bytes
	}
	return -1
}

// ErrCode says why a peer sends ERROR. The values are on the wire; a receiver
// treats a code it does not know as CodeInternal.
type ErrCode uint16

// Error codes. This is the one place where codes are defined.
const (
	// CodeProtocol: the receiver broke the protocol (a malformed, oversized
	// or unexpected message, or no HELLO first).
	CodeProtocol ErrCode = 1
	// CodeNotFound: the sender does not have the root named in HELLO.
	CodeNotFound ErrCode = 2
	// CodeRateLimited: the receiver sent more bytes or requests than the
	// sender's rate limits allow.
	CodeRateLimited ErrCode = 3
	// CodeTooManyRequests: more requests are outstanding than the sender
	// serves at once, or it has no upload slot free.
	CodeTooManyRequests ErrCode = 4
	// CodeBanned: the sender has banned the receiver (for bad blocks, say).
	CodeBanned ErrCode = 5
	// CodeInternal: the sender failed on its own side (a disk error, say).
	CodeInternal ErrCode = 6
	// CodeIdle: nothing went either way for too long while the receiver
	// asked nothing; it may open a new session when it wants something.
	CodeIdle ErrCode = 7
)

var codeNames = [...]string{
	CodeProtocol:        "protocol error",
	CodeNotFound:        "not found",
	CodeRateLimited:     "rate limited",
	CodeTooManyRequests: "too many requests",
	CodeBanned:          "banned",
	CodeInternal:        "internal error",
	CodeIdle:            "idle",
}

// String returns a short description of c, e.g. "rate limited".
func (c ErrCode) String() string {
	if int(c) < len(codeNames) && codeNames[c] != "" {
		return codeNames[c]
	}
	return fmt.Sprintf("error code %d", uint16(c))
}

// Errors of Reader.Read and Writer.Write. Each of ErrTooLarge, ErrMalformed
// and ErrUnknownType wraps ErrProtocol, so that one errors.Is(err,
// ErrProtocol) tells a peer's misbehaviour (reset the stream, strike the peer,
// answer CodeProtocol) from an I/O failure. The errors returned carry detail
// and wrap one of these.
var (
	// ErrProtocol is wrapped by every error that blames the bytes received.
	ErrProtocol = errors.New("wire: protocol violation")
	// ErrTooLarge: a length beyond MaxMessageSize, the Reader's limit or
	// what the message type allows, or a list or field over its limit.
	ErrTooLarge error = &kindError{"wire: message too large"}
	// ErrMalformed: a payload that does not parse: bad or non-minimal
	// varint, trailing bytes, empty index list, unsupported CID, invalid
	// UTF-8, an empty frame.
	ErrMalformed error = &kindError{"wire: malformed message"}
	// ErrUnknownType: a type byte this version does not know.
	ErrUnknownType error = &kindError{"wire: unknown message type"}
)

// kindError is a sentinel that wraps ErrProtocol.
type kindError struct{ msg string }

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return ErrProtocol }

func tooLarge(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrTooLarge}, args...)...)
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// uvarintLen returns the number of bytes of the uvarint encoding of x.
func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// appendUvarint appends the minimal uvarint encoding of x to b.
func appendUvarint(b []byte, x uint64) []byte {
	for x >= 0x80 {
		b = append(b, byte(x)|0x80)
		x >>= 7
	}
	return append(b, byte(x))
}

// errVarint is why a uvarint failed to decode; callers wrap it with context.
type errVarint string

func (e errVarint) Error() string { return string(e) }

const (
	errVarintShort      errVarint = "truncated varint"
	errVarintOverflow   errVarint = "varint overflows 64 bits"
	errVarintNonMinimal errVarint = "non-minimal varint"
)

// uvarint decodes a minimal uvarint from the start of b and returns it and the
// number of bytes it took.
func uvarint(b []byte) (uint64, int, error) {
	var x uint64
	var s uint
	for i, c := range b {
		if i == maxVarintLen {
			return 0, 0, errVarintOverflow
		}
		if c < 0x80 {
			if i == maxVarintLen-1 && c > 1 {
				return 0, 0, errVarintOverflow
			}
			if c == 0 && i > 0 {
				return 0, 0, errVarintNonMinimal
			}
			return x | uint64(c)<<s, i + 1, nil
		}
		x |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, 0, errVarintShort
}
